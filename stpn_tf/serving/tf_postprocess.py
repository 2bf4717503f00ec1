"""STPN detection inside the TensorFlow graph, for the exported `detect` signature.

A line-by-line port of the NumPy post-processor `stpn_tf.postprocess.stpn_inference.stpn_detect` (class rejection,
weighted T-CAMs of Eqs. 5-6, optional linear interpolation, (multi-)threshold connected components, Eq. 7 scoring,
class-wise greedy NMS, indices to seconds) whose result it must reproduce: same detections, in the same order.
Everything is computed in float64 on the float32 model outputs, with the same operations in the same order as the
NumPy code, so threshold comparisons and tie orders agree:

  * proposals are enumerated like `proposals.threshold_proposals`: by ascending threshold, then column (stream-major:
    column j is stream j // K, kept class j % K), then start; a run already found at a lower threshold is dropped;
  * NMS is the greedy result of `nms.class_wise_nms` (IoU strictly above the threshold suppresses, computed as
    inter > threshold * union on the interval [s, e + 1]), obtained the same way: suppression edges from a sorted
    sweep over class-shifted intervals, then the fixed point of "kept = not suppressed by a kept higher-ranked
    proposal" (rank: higher score, then lower proposal index);
  * the output is sorted by descending score, ties by ascending proposal index (a stable sort of the kept indices).

Settings are Python values fixed when the graph is traced (at export); tensors are per video, without a batch axis.
"""

import collections
from typing import Dict, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from stpn_tf.postprocess import stpn_inference

RGB = 0   # stream ids, as in stpn_tf.postprocess.scoring
FLOW = 1

# One stream's outputs for one video: attention [T], raw tcam [T, C], probabilities [C] (any float dtype).
StreamTensors = collections.namedtuple("StreamTensors", ["attention", "tcam", "probabilities"])


def stpn_settings(feature_rate: float, class_threshold: float = 0.1, alpha: float = 0.5,
                  tcam_threshold: Union[float, Sequence[float]] = 0.5, interpolation_factor: int = 1,
                  nms_threshold: float = 0.5, probability_fusion: str = "mean", fallback_to_top_class: bool = False,
                  streams: Sequence[str] = ("rgb", "flow")) -> Dict:
  """Validates `stpn_detect` keyword arguments and returns them as plain JSON-able values.

  The NumPy post-processor itself is run once on a dummy video with these settings, so every setting it refuses is
  refused here with its own message. tcam_threshold becomes a sorted list of unique floats.

  Raises:
    ValueError: on a setting the NumPy post-processor rejects, or a type the graph version cannot take.
  """
  streams = tuple(streams)
  if not streams or set(streams) - {"rgb", "flow"}:
    raise ValueError(f"STPN detection needs streams from ('rgb', 'flow'), got {streams!r}")
  if isinstance(interpolation_factor, (bool, np.bool_)) or int(interpolation_factor) != interpolation_factor \
      or interpolation_factor < 1:
    raise ValueError(f"interpolation_factor must be an integer >= 1, got {interpolation_factor!r}")
  thresholds = np.unique(np.atleast_1d(np.asarray(tcam_threshold, dtype=np.float64)))
  if thresholds.ndim != 1 or thresholds.size == 0 or not np.all(np.isfinite(thresholds)):
    raise ValueError(f"tcam_threshold must be one finite number or a non-empty sequence of them, got "
                     f"{tcam_threshold!r}")
  settings = dict(class_threshold=float(class_threshold), alpha=float(alpha),
                  tcam_threshold=[float(t) for t in thresholds], interpolation_factor=int(interpolation_factor),
                  nms_threshold=float(nms_threshold), probability_fusion=str(probability_fusion),
                  fallback_to_top_class=bool(fallback_to_top_class))
  # Let the reference implementation validate everything else (ranges, fusion names, missing streams).
  from stpn_tf.postprocess import types as pp_types  # pylint: disable=import-outside-toplevel
  dummy = pp_types.StreamOutput(np.ones(2), np.zeros((2, 1)), np.ones(1))
  kwargs = dict(settings, tcam_threshold=list(settings["tcam_threshold"]))
  stpn_inference.stpn_detect(dummy if "rgb" in streams else None, dummy if "flow" in streams else None,
                             float(feature_rate), **kwargs)
  return settings


def sigmoid(x):
  """The post-processor's logistic function, 0.5 * (1 + tanh(x / 2))."""
  return 0.5 * (1.0 + tf.tanh(0.5 * x))


def interpolate(signal, factor: int):
  """`proposals.interpolate` in TF: linear interpolation along axis 0 of [T] or [T, C], `factor` static."""
  factor = int(factor)
  if factor == 1:
    return signal
  length = tf.shape(signal, out_type=tf.int64)[0]
  x = (tf.cast(tf.range(length * factor), tf.float64) + 0.5) / float(factor) - 0.5     # [T * f]
  x = tf.clip_by_value(x, 0.0, tf.maximum(tf.cast(length - 1, tf.float64), 0.0))
  left = tf.minimum(tf.cast(tf.floor(x), tf.int64), tf.maximum(length - 2, 0))
  right = tf.minimum(left + 1, length - 1)
  weight = x - tf.cast(left, tf.float64)
  if signal.shape.rank == 2:
    weight = weight[:, None]
  weight = tf.cast(weight, signal.dtype)
  return (1.0 - weight) * tf.gather(signal, left) + weight * tf.gather(signal, right)


def threshold_proposals(signal, thresholds: Sequence[float]):
  """`proposals.threshold_proposals` in TF: connected components of signal > threshold, pooled over thresholds.

  Args:
    signal: float [T, M].
    thresholds: Python floats, sorted ascending and unique (see `stpn_settings`).

  Returns:
    (columns, starts, ends), int64 [P]: ordered by threshold, column, start; runs already found at a lower
    threshold are dropped.
  """
  length = tf.shape(signal, out_type=tf.int64)[0]
  num_columns = tf.shape(signal, out_type=tf.int64)[1]
  values = tf.constant(list(thresholds), signal.dtype)
  mask = tf.transpose(signal)[None, :, :] > values[:, None, None]             # [K, M, T]
  rows_mask = tf.reshape(mask, tf.stack([len(thresholds) * num_columns, length]))  # [K * M, T]
  padded = tf.pad(rows_mask, [[0, 0], [1, 1]])                                # [R, T + 2], False padding
  changes = tf.not_equal(padded[:, 1:], padded[:, :-1])                       # [R, T + 1]
  where = tf.where(changes)                                                   # [2P, 2], row-major order
  rows = where[0::2, 0]
  starts = where[0::2, 1]
  ends = where[1::2, 1] - 1
  flat = tf.reshape(mask, [-1])
  lower_row_offset = (rows - num_columns) * length
  # Clamp gather indices into range (values at clamped positions are not used: see the `fresh` rule).
  top = tf.maximum(tf.size(flat, out_type=tf.int64) - 1, 0)
  left_index = tf.clip_by_value(lower_row_offset + starts - 1, 0, top)
  right_index = tf.clip_by_value(lower_row_offset + ends + 1, 0, top)
  left_is_background = tf.logical_or(tf.equal(starts, 0), tf.logical_not(tf.gather(flat, left_index)))
  right_is_background = tf.logical_or(tf.equal(ends, length - 1), tf.logical_not(tf.gather(flat, right_index)))
  fresh = tf.logical_or(rows < num_columns,
                        tf.logical_not(tf.logical_and(left_is_background, right_is_background)))
  return (tf.boolean_mask(rows, fresh) % tf.maximum(num_columns, 1), tf.boolean_mask(starts, fresh),
          tf.boolean_mask(ends, fresh))


def class_wise_nms(starts, ends, scores, classes, iou_threshold: float):
  """`nms.class_wise_nms` in TF: greedy NMS per class on continuous intervals [starts, ends].

  Args:
    starts, ends, scores: float64 [N]; classes: int64 [N]. N may be 0.
    iou_threshold: Python float in [0, 1]; IoU strictly above it suppresses.

  Returns:
    int64 [K] kept indices, by descending score, ties by ascending index.
  """
  n = tf.size(starts, out_type=tf.int64)

  def nonempty():
    class_id = tf.cast(classes - tf.reduce_min(classes), tf.float64)
    origin = tf.reduce_min(starts)
    span = tf.reduce_max(ends) - origin + 1.0
    shift = class_id * span - origin
    shifted_starts, shifted_ends = starts + shift, ends + shift
    # Candidate pairs by a sweep over the start-sorted intervals (nms.candidate_pairs): a superset of the pairs
    # with IoU > threshold, so the edge set below is exactly the NumPy one.
    by_start = tf.argsort(shifted_starts, stable=True)
    sorted_starts = tf.gather(shifted_starts, by_start)
    sorted_ends = tf.gather(shifted_ends, by_start)
    position = tf.range(n)
    reach = sorted_ends - iou_threshold * (sorted_ends - sorted_starts)
    reach = reach + 1e-9 * (tf.reduce_max(tf.abs(sorted_ends)) + 1.0)
    bound = tf.searchsorted(sorted_starts, reach, side="left", out_type=tf.int64)
    counts = tf.maximum(bound - position - 1, 0)
    total = tf.reduce_sum(counts)
    first = tf.repeat(position, counts)
    within = tf.range(total) - tf.repeat(tf.cumsum(counts) - counts, counts)
    second = first + 1 + within
    first, second = tf.gather(by_start, first), tf.gather(by_start, second)
    start_first, start_second = tf.gather(starts, first), tf.gather(starts, second)
    end_first, end_second = tf.gather(ends, first), tf.gather(ends, second)
    inter = tf.maximum(tf.minimum(end_first, end_second) - tf.maximum(start_first, start_second), 0.0)
    union = (end_first - start_first) + (end_second - start_second) - inter
    strong = inter > iou_threshold * union
    first, second = tf.boolean_mask(first, strong), tf.boolean_mask(second, strong)
    score_first, score_second = tf.gather(scores, first), tf.gather(scores, second)
    first_wins = tf.logical_or(score_first > score_second,
                               tf.logical_and(tf.equal(score_first, score_second), first < second))
    winner = tf.where(first_wins, first, second)
    loser = tf.where(first_wins, second, first)

    def body(keep, _):
      hits = tf.math.unsorted_segment_sum(tf.cast(tf.gather(keep, winner), tf.int32), loser, n)
      new_keep = tf.equal(hits, 0)
      return new_keep, tf.reduce_any(tf.not_equal(new_keep, keep))

    keep, _ = tf.while_loop(lambda keep, changed: changed, body, (tf.ones([n], tf.bool), tf.constant(True)),
                            maximum_iterations=tf.cast(n, tf.int32) + 1)
    kept = tf.where(keep)[:, 0]                                            # ascending index
    order = tf.argsort(-tf.gather(scores, kept), stable=True)
    return tf.gather(kept, order)

  return tf.cond(n > 0, nonempty, lambda: tf.zeros([0], tf.int64))


def _fuse_probabilities(present: Dict[int, StreamTensors], fusion: str):
  if fusion in ("rgb", "flow"):
    return tf.cast(present[RGB if fusion == "rgb" else FLOW].probabilities, tf.float64)
  probabilities = [tf.cast(s.probabilities, tf.float64) for s in present.values()]
  if len(probabilities) == 1:
    return probabilities[0]
  if fusion == "mean":
    return (probabilities[0] + probabilities[1]) / 2.0
  return tf.maximum(probabilities[0], probabilities[1])


def stpn_detect(rgb: Optional[StreamTensors], flow: Optional[StreamTensors], feature_rate: float,
                class_threshold: float = 0.1, alpha: float = 0.5,
                tcam_threshold: Union[float, Sequence[float]] = 0.5, interpolation_factor: int = 1,
                nms_threshold: float = 0.5, probability_fusion: str = "mean",
                fallback_to_top_class: bool = False) -> Dict[str, tf.Tensor]:
  """STPN detections of one video in the graph; same arguments and result as the NumPy `stpn_detect`.

  Args:
    rgb, flow: StreamTensors (attention [T], raw tcam [T, C], probabilities [C]) or None (single-stream ablation).
    feature_rate, ...: Python values, as for `stpn_inference.stpn_detect`.

  Returns:
    {"start_s": float64 [N], "end_s": float64 [N], "class_index": int64 [N], "score": float64 [N]}, by descending
    score (ties: the post-processor's proposal order). Zero detections for T = 0 or C = 0.

  Raises:
    ValueError: (when traced) on settings the NumPy post-processor rejects.
  """
  streams = [name for name, s in (("rgb", rgb), ("flow", flow)) if s is not None]
  settings = stpn_settings(feature_rate, class_threshold, alpha, tcam_threshold, interpolation_factor,
                           nms_threshold, probability_fusion, fallback_to_top_class, streams=streams)
  factor = settings["interpolation_factor"]
  present = {sid: s for sid, s in ((RGB, rgb), (FLOW, flow)) if s is not None}
  first = next(iter(present.values()))
  length = tf.shape(first.tcam, out_type=tf.int64)[0]
  num_classes = tf.shape(first.tcam, out_type=tf.int64)[1]
  nonempty = tf.logical_and(length > 0, num_classes > 0)

  # Step 1: class rejection (fallback: the first most probable class).
  probabilities = _fuse_probabilities(present, settings["probability_fusion"])          # [C]
  passes = tf.logical_and(probabilities >= settings["class_threshold"], nonempty)
  kept_classes = tf.where(passes)[:, 0]                                                   # [K]
  if settings["fallback_to_top_class"]:
    top = tf.where(tf.equal(probabilities, tf.reduce_max(probabilities)))[:1, 0]
    use_top = tf.logical_and(tf.equal(tf.size(kept_classes), 0), nonempty)
    kept_classes = tf.cond(use_top, lambda: top, lambda: kept_classes)
  num_kept = tf.size(kept_classes, out_type=tf.int64)

  # Steps 2-3: weighted T-CAMs (Eqs. 5-6) on the kept classes, interpolated.
  attention, tcam, weighted = {}, {}, []
  for sid, stream in present.items():
    raw = tf.gather(tf.cast(stream.tcam, tf.float64), kept_classes, axis=1)             # [T, K]
    lam = tf.cast(stream.attention, tf.float64)                                         # [T]
    psi = lam[:, None] * sigmoid(raw)
    weighted.append(interpolate(psi, factor))
    attention[sid] = interpolate(lam, factor)
    tcam[sid] = interpolate(raw, factor)

  # Step 4: proposals of every (threshold, stream, class).
  columns, starts, ends = threshold_proposals(tf.concat(weighted, axis=1), settings["tcam_threshold"])
  safe_kept = tf.maximum(num_kept, 1)
  local_class = columns % safe_kept
  stream_position = columns // safe_kept                                   # index into `present` order

  # Step 5: Eq. 7, mean over the proposal of lambda_{t,*} * (alpha a_RGB + (1 - alpha) a_FLOW).
  if len(present) == 2:
    fused = settings["alpha"] * tcam[RGB] + (1.0 - settings["alpha"]) * tcam[FLOW]
  else:
    fused = tcam[next(iter(present))]
  tables = []
  for sid in present:
    weighted_fused = attention[sid][:, None] * fused                        # [T * f, K]
    tables.append(tf.pad(tf.cumsum(weighted_fused, axis=0), [[1, 0], [0, 0]]))   # [T * f + 1, K], leading 0
  prefix = tf.stack(tables)                                                 # [S, T * f + 1, K]
  window_end = tf.gather_nd(prefix, tf.stack([stream_position, ends + 1, local_class], axis=1))
  window_start = tf.gather_nd(prefix, tf.stack([stream_position, starts, local_class], axis=1))
  scores = (window_end - window_start) / tf.cast(ends - starts + 1, tf.float64)

  # Step 6: class-wise NMS on [s, e + 1].
  keep = class_wise_nms(tf.cast(starts, tf.float64), tf.cast(ends + 1, tf.float64), scores, local_class,
                        settings["nms_threshold"])

  # Step 7: seconds.
  step = 1.0 / (float(feature_rate) * factor)
  return {"start_s": tf.cast(tf.gather(starts, keep), tf.float64) * step,
          "end_s": (tf.cast(tf.gather(ends, keep), tf.float64) + 1.0) * step,
          "class_index": tf.gather(kept_classes, tf.gather(local_class, keep)),
          "score": tf.gather(scores, keep)}


def weighted_tcam(attention, tcam):
  """psi = lambda * sigmoid(a) (Eqs. 5-6) for batched [B, T] x [B, T, C] or single [T] x [T, C] tensors."""
  return attention[..., None] * tf.sigmoid(tcam)
