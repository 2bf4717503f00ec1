"""Detection inside the TensorFlow graph, for the exported `detect` signature: ports of the NumPy post-processors.

  stpn_detect    `stpn_inference.stpn_detect` (Nguyen et al. CVPR 2018, Sec. 3.4, Eqs. 5-7): class rejection,
                 weighted T-CAMs, optional linear interpolation, (multi-)threshold connected components, Eq. 7
                 scoring, class-wise greedy NMS, indices to seconds.
  bgm_detect     `bgm_inference.bgm_detect` (Nguyen et al. ICCV 2019, Sec. 3.2, Eq. 12): proposals from the
                 modality-averaged attention pooled over thresholds, every kept class, Eq. 12.
  aumn_detect    `aumn_inference.aumn_detect` (Luo et al. CVPR 2021, Sec. 3.3, Eqs. 15-16): per-network proposals at
                 the video's mean attention (data-dependent, computed in the graph), Eq. 16.
  hamnet_detect  `hamnet_inference.hamnet_detect` (Islam et al. AAAI 2021, Eqs. 14-16): optional average pooling,
                 attention proposals pooled over thresholds, outer-inner contrast.

Each must reproduce its NumPy reference: same detections, in the same order. Everything is computed in float64 on
the float32 model outputs, with the same operations in the same order as the NumPy code, so threshold comparisons
and tie orders agree:

  * proposals are enumerated like `proposals.threshold_proposals`: by ascending threshold, then column (STPN,
    stream-major: column j is stream j // K, kept class j % K), then start; a run already found at a lower threshold
    is dropped. The class-agnostic proposals of the other models are paired with the kept classes in the NumPy
    order: class-major for bgm and hamnet (np.tile), interval-major for aumn (np.repeat);
  * AUMN's data-dependent threshold, the mean attention, is the float64 sum divided by T as in np.mean; the float64
    sum of float32 values is exact (hence independent of the summation order) unless they span more than ~2^29 in
    magnitude, so a > eta is decided as in NumPy;
  * prefix sums (scores, HAM-Net's average pooling) are sequential float64 cumulative sums, as np.cumsum;
  * NMS is the greedy result of `nms.class_wise_nms` (IoU strictly above the threshold suppresses, computed as
    inter > threshold * union on the interval [s, e + 1]), obtained the same way: suppression edges from a sorted
    sweep over class-shifted intervals, then the fixed point of "kept = not suppressed by a kept higher-ranked
    proposal" (rank: higher score, then lower proposal index);
  * soft-NMS (`nms = 'soft_gaussian' | 'soft_linear'`) is `nms.class_wise_soft_nms`: one loop over all classes
    whose selections and score products within each class are those of the NumPy per-class loops (other classes
    get a factor of exactly 1); exp may differ from NumPy's by an ulp, so decayed scores agree to ~1e-15;
  * the output is sorted by descending score, ties by ascending proposal index (a stable sort of the kept indices).

Settings are Python values fixed when the graph is traced (at export); tensors are per video, without a batch axis.
"""

import collections
from typing import Dict, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from stpn_tf.postprocess import aumn_inference
from stpn_tf.postprocess import bgm_inference
from stpn_tf.postprocess import hamnet_inference
from stpn_tf.postprocess import stpn_inference

RGB = 0   # stream ids, as in stpn_tf.postprocess.scoring
FLOW = 1

# One stream's outputs for one video: attention [T], raw tcam [T, C], probabilities [C] (any float dtype).
StreamTensors = collections.namedtuple("StreamTensors", ["attention", "tcam", "probabilities"])


def stpn_settings(feature_rate: float, class_threshold: float = 0.1, alpha: float = 0.5,
                  tcam_threshold: Union[float, Sequence[float]] = 0.5, interpolation_factor: int = 1,
                  nms_threshold: float = 0.5, probability_fusion: str = "mean", fallback_to_top_class: bool = False,
                  streams: Sequence[str] = ("rgb", "flow"),
                  nms: str = "greedy", soft_nms_sigma: float = 0.5,
                  soft_nms_score_floor: Optional[float] = None, soft_nms_top_n: Optional[int] = None) -> Dict:
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
  settings.update(nms_settings(nms, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n))
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


def threshold_proposals(signal, thresholds: Union[Sequence[float], tf.Tensor], keep_repeats: bool = False):
  """`proposals.threshold_proposals` in TF: connected components of signal > threshold, pooled over thresholds.

  Args:
    signal: float [T, M].
    thresholds: Python floats, sorted ascending and unique (see `stpn_settings`), or a float tensor [K] with the
      same property (a data-dependent threshold such as AUMN's eta_act, the video's mean attention).
    keep_repeats: Python bool; keep a run once per threshold that produces it (HAM-Net's code).

  Returns:
    (columns, starts, ends), int64 [P]: ordered by threshold, column, start; runs already found at a lower
    threshold are dropped.
  """
  length = tf.shape(signal, out_type=tf.int64)[0]
  num_columns = tf.shape(signal, out_type=tf.int64)[1]
  if isinstance(thresholds, (tf.Tensor, tf.Variable)):
    values = tf.reshape(tf.cast(thresholds, signal.dtype), [-1])
  else:
    values = tf.constant([float(t) for t in thresholds], signal.dtype)
  num_thresholds = tf.shape(values, out_type=tf.int64)[0]
  mask = tf.transpose(signal)[None, :, :] > values[:, None, None]             # [K, M, T]
  rows_mask = tf.reshape(mask, tf.stack([num_thresholds * num_columns, length]))  # [K * M, T]
  padded = tf.pad(rows_mask, [[0, 0], [1, 1]])                                # [R, T + 2], False padding
  changes = tf.not_equal(padded[:, 1:], padded[:, :-1])                       # [R, T + 1]
  where = tf.where(changes)                                                   # [2P, 2], row-major order
  rows = where[0::2, 0]
  starts = where[0::2, 1]
  ends = where[1::2, 1] - 1
  if keep_repeats:
    return rows % tf.maximum(num_columns, 1), starts, ends
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


def class_wise_soft_nms(starts, ends, scores, classes, method: str = "gaussian", sigma: float = 0.5,
                        iou_threshold: float = 0.3, score_floor: Optional[float] = None,
                        top_n: Optional[int] = None):
  """`nms.class_wise_soft_nms` in TF: per-class soft-NMS (Bodla et al. ICCV 2017) on continuous intervals.

  One loop over all classes at once: each step selects the active proposal with the highest current score (ties:
  lowest index) and decays the active proposals of its class (gaussian exp(-IoU^2 / sigma), or linear 1 - IoU
  above iou_threshold); proposals of other classes get IoU 0, i.e. a factor of exactly 1, so every class sees the
  same sequence of selections and products as in the NumPy per-class loop. A selected score below score_floor
  ends everything (it is the highest left); a class that reached top_n selections is deactivated.

  Args:
    starts, ends, scores: float64 [N]; classes: int64 [N]. N may be 0.
    method, sigma, iou_threshold, score_floor, top_n: Python values, as for the NumPy version.

  Returns:
    (keep int64 [K], new_scores float64 [K]) by descending decayed score, ties by ascending index.
  """
  n = tf.size(starts, out_type=tf.int64)

  def nonempty():
    ids = classes - tf.reduce_min(classes)                                 # [N], >= 0
    num_ids = tf.reduce_max(ids) + 1
    position = tf.range(n)
    lengths = ends - starts

    def body(i, active, current, counts, selected, selected_scores, stopped):
      top = tf.reduce_max(tf.where(active, current, tf.constant(-np.inf, tf.float64)))
      best = tf.reduce_min(tf.where(tf.logical_and(active, tf.equal(current, top)), position, n))
      best_score = tf.gather(current, best)
      stop = tf.constant(False) if score_floor is None else best_score < float(score_floor)

      def select():
        best_class = tf.gather(ids, best)
        inter = tf.maximum(tf.minimum(tf.gather(ends, best), ends) - tf.maximum(tf.gather(starts, best), starts),
                           0.0)
        union = tf.gather(lengths, best) + lengths - inter
        iou = tf.where(union > 0, inter / tf.where(union > 0, union, tf.ones_like(union)), tf.zeros_like(inter))
        same = tf.equal(ids, best_class)
        iou = tf.where(same, iou, tf.zeros_like(iou))
        if method == "gaussian":
          weight = tf.exp(-(iou * iou) / float(sigma))
        else:
          weight = tf.where(iou > float(iou_threshold), 1.0 - iou, tf.ones_like(iou))
        still = tf.logical_and(active, tf.not_equal(position, best))
        new_counts = tf.tensor_scatter_nd_add(counts, [[best_class]], [1])
        if top_n is not None:
          full = tf.gather(new_counts, best_class) >= int(top_n)
          still = tf.logical_and(still, tf.logical_not(tf.logical_and(same, full)))
        return (i + 1, still, tf.where(still, current * weight, current), new_counts,
                tf.tensor_scatter_nd_update(selected, [[i]], [best]),
                tf.tensor_scatter_nd_update(selected_scores, [[i]], [best_score]), tf.constant(False))

      return tf.cond(stop, lambda: (i, active, current, counts, selected, selected_scores, tf.constant(True)),
                     select)

    def cond(i, active, current, counts, selected, selected_scores, stopped):
      del i, current, counts, selected, selected_scores
      return tf.logical_and(tf.logical_not(stopped), tf.reduce_any(active))

    state = (tf.constant(0, tf.int64), tf.ones([n], tf.bool), tf.cast(scores, tf.float64),
             tf.zeros(tf.reshape(num_ids, [1]), tf.int64), tf.zeros([n], tf.int64), tf.zeros([n], tf.float64),
             tf.constant(False))
    count, _, _, _, selected, selected_scores, _ = tf.while_loop(cond, body, state,
                                                                 maximum_iterations=tf.cast(n, tf.int32))
    selected, selected_scores = selected[:count], selected_scores[:count]
    by_index = tf.argsort(selected, stable=True)
    selected, selected_scores = tf.gather(selected, by_index), tf.gather(selected_scores, by_index)
    order = tf.argsort(-selected_scores, stable=True)
    return tf.gather(selected, order), tf.gather(selected_scores, order)

  return tf.cond(n > 0, nonempty, lambda: (tf.zeros([0], tf.int64), tf.zeros([0], tf.float64)))


def suppress(starts, ends, scores, classes, settings: Dict):
  """`nms.suppress` in TF: the suppression chosen by settings["nms"] ("greedy", "soft_gaussian", "soft_linear";
  missing = greedy) with the settings' nms_threshold and soft_nms_* values. starts, ends, scores: float64 [N],
  classes int64 [N]. Returns (keep int64 [K], scores float64 [K]) by descending score."""
  method = settings.get("nms", "greedy")
  if method == "greedy":
    keep = class_wise_nms(starts, ends, scores, classes, settings["nms_threshold"])
    return keep, tf.gather(scores, keep)
  return class_wise_soft_nms(starts, ends, scores, classes, method=method[len("soft_"):],
                             sigma=settings["soft_nms_sigma"], iou_threshold=settings["nms_threshold"],
                             score_floor=settings["soft_nms_score_floor"], top_n=settings["soft_nms_top_n"])


def nms_settings(nms: str = "greedy", soft_nms_sigma: float = 0.5, soft_nms_score_floor: Optional[float] = None,
                 soft_nms_top_n: Optional[int] = None) -> Dict:
  """The suppression settings shared by every post-processor, as JSON-able values (validated by the caller's
  NumPy post-processor, which runs `nms.check_nms_settings`)."""
  return dict(nms=str(nms), soft_nms_sigma=float(soft_nms_sigma),
              soft_nms_score_floor=None if soft_nms_score_floor is None else float(soft_nms_score_floor),
              soft_nms_top_n=soft_nms_top_n if soft_nms_top_n is None or isinstance(soft_nms_top_n, bool)
              or int(soft_nms_top_n) != soft_nms_top_n else int(soft_nms_top_n))


def select_classes(probabilities, class_threshold: float, fallback_to_top_class: bool, nonempty):
  """Class rejection shared by every post-processor: the indices c (ascending) with probabilities[c] >=
  class_threshold, as `np.flatnonzero`; when none passes and `fallback_to_top_class`, the first most probable class
  (`np.argmax`). Nothing when `nonempty` (a scalar bool: T > 0 and C > 0) is False. probabilities: float64 [C]."""
  passes = tf.logical_and(probabilities >= class_threshold, nonempty)
  kept = tf.where(passes)[:, 0]                                                           # [K]
  if fallback_to_top_class:
    top = tf.where(tf.equal(probabilities, tf.reduce_max(probabilities)))[:1, 0]
    use_top = tf.logical_and(tf.equal(tf.size(kept), 0), nonempty)
    kept = tf.cond(use_top, lambda: top, lambda: kept)
  return kept


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
                fallback_to_top_class: bool = False,
                nms: str = "greedy", soft_nms_sigma: float = 0.5,
                soft_nms_score_floor: Optional[float] = None,
                soft_nms_top_n: Optional[int] = None) -> Dict[str, tf.Tensor]:
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
                           nms_threshold, probability_fusion, fallback_to_top_class, streams=streams,
                           nms=nms, soft_nms_sigma=soft_nms_sigma, soft_nms_score_floor=soft_nms_score_floor,
                           soft_nms_top_n=soft_nms_top_n)
  factor = settings["interpolation_factor"]
  present = {sid: s for sid, s in ((RGB, rgb), (FLOW, flow)) if s is not None}
  first = next(iter(present.values()))
  length = tf.shape(first.tcam, out_type=tf.int64)[0]
  num_classes = tf.shape(first.tcam, out_type=tf.int64)[1]
  nonempty = tf.logical_and(length > 0, num_classes > 0)

  # Step 1: class rejection (fallback: the first most probable class).
  probabilities = _fuse_probabilities(present, settings["probability_fusion"])          # [C]
  kept_classes = select_classes(probabilities, settings["class_threshold"], settings["fallback_to_top_class"],
                                nonempty)                                                 # [K]
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
  keep, kept_scores = suppress(tf.cast(starts, tf.float64), tf.cast(ends + 1, tf.float64), scores, local_class,
                               settings)

  # Step 7: seconds.
  step = 1.0 / (float(feature_rate) * factor)
  return {"start_s": tf.cast(tf.gather(starts, keep), tf.float64) * step,
          "end_s": (tf.cast(tf.gather(ends, keep), tf.float64) + 1.0) * step,
          "class_index": tf.gather(kept_classes, tf.gather(local_class, keep)),
          "score": kept_scores}


def weighted_tcam(attention, tcam):
  """psi = lambda * sigmoid(a) (Eqs. 5-6) for batched [B, T] x [B, T, C] or single [T] x [T, C] tensors."""
  return attention[..., None] * tf.sigmoid(tcam)


# ---------------------------------------------------------------------------------------------------------------------
# Blocks of the other post-processors: prefix-sum windows, smoothing, softmax, scoring rules.
# ---------------------------------------------------------------------------------------------------------------------


def prefix_sums(signal):
  """`scoring.prefix_sums` in TF: float64 cumulative sums along axis 0 with a leading zero row.

  signal [T] or [T, C] (static rank) -> float64 [T + 1] or [T + 1, C], out[t] = sum(signal[:t]).
  """
  signal = tf.cast(signal, tf.float64)
  padding = [[1, 0]] + [[0, 0]] * (signal.shape.rank - 1)
  return tf.pad(tf.cumsum(signal, axis=0), padding)


def window_sums(prefix, starts, ends, columns=None):
  """`scoring.window_sums` in TF: sums over inclusive windows [start, end] from a `prefix_sums` table; an empty
  window (end < start) sums to exactly 0. starts, ends (and columns iff prefix is [T + 1, C]): int64 [P]."""
  stops = tf.maximum(ends + 1, starts)                                      # exclusive window end
  if columns is None:
    return tf.gather(prefix, stops) - tf.gather(prefix, starts)
  return (tf.gather_nd(prefix, tf.stack([stops, columns], axis=1)) -
          tf.gather_nd(prefix, tf.stack([starts, columns], axis=1)))


def window_means(prefix, starts, ends, columns=None):
  """`scoring.window_means` in TF: means over inclusive windows [start, end]; an empty window has mean 0."""
  sums = window_sums(prefix, starts, ends, columns)
  counts = tf.maximum(ends - starts + 1, 0)
  return tf.where(counts > 0, sums / tf.cast(tf.maximum(counts, 1), tf.float64), tf.zeros_like(sums))


def softmax(logits):
  """`scoring._softmax` in TF, in float64: exp(x - max) / sum(exp(x - max)) over the last axis."""
  logits = tf.cast(logits, tf.float64)
  shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
  exp = tf.exp(shifted)
  return exp / tf.reduce_sum(exp, axis=-1, keepdims=True)


def average_pool(signal, window: int):
  """`hamnet_inference.average_pool` in TF: centred moving average along axis 0 over an odd `window` (static),
  averaging only the positions inside the video (HAM-Net, "additional average pooling to post-process the final
  CAS" on ActivityNet). signal [T] or [T, C] -> float64, same shape; window 1 returns the signal as float64."""
  signal = tf.cast(signal, tf.float64)
  window = int(window)
  if window == 1:
    return signal
  half = window // 2
  length = tf.shape(signal, out_type=tf.int64)[0]
  prefix = prefix_sums(signal)
  position = tf.range(length)
  lo = tf.maximum(position - half, 0)
  hi = tf.minimum(position + half + 1, length)                              # exclusive
  counts = tf.cast(hi - lo, tf.float64)
  if signal.shape.rank == 2:
    counts = counts[:, None]
  return (tf.gather(prefix, hi) - tf.gather(prefix, lo)) / counts


def mix_streams(rgb_part, flow_part, rgb_weight: float):
  """`scoring._mix` in TF: rgb_weight * rgb + (1 - rgb_weight) * flow; a missing stream (None) gives the other one
  full weight (single-stream ablations)."""
  if rgb_part is None:
    return flow_part
  if flow_part is None:
    return rgb_part
  return rgb_weight * rgb_part + (1.0 - rgb_weight) * flow_part


def bgm_signal(rgb: Optional[StreamTensors], flow: Optional[StreamTensors], theta: float, columns=None):
  """The per-segment summand of Nguyen et al. ICCV 2019 Eq. 12 in float64:
  theta * lambda^RGB_t w_c^T x^RGB_t + (1 - theta) * lambda^FLOW_t w_c^T x^FLOW_t, [T, C] (or the `columns` of it).
  `tcam` of each stream is the raw foreground T-CAM w_c^T x_t of the real classes."""
  def weighted(stream):
    if stream is None:
      return None
    tcam = tf.cast(stream.tcam, tf.float64)
    if columns is not None:
      tcam = tf.gather(tcam, columns, axis=1)
    return tf.cast(stream.attention, tf.float64)[:, None] * tcam
  return mix_streams(weighted(rgb), weighted(flow), theta)


def aumn_signal(rgb: Optional[StreamTensors], flow: Optional[StreamTensors], theta: float):
  """The per-segment summand of AUMN Eq. 16 (Luo et al. CVPR 2021) in float64, [T, C]:
  theta * a^R(t) Cbar^R(t, c) + (1 - theta) * a^F(t) Cbar^F(t, c), Cbar = softmax over the C classes of the CAS of
  Eq. 15 (`tcam` of each stream)."""
  def weighted(stream):
    if stream is None:
      return None
    return tf.cast(stream.attention, tf.float64)[:, None] * softmax(stream.tcam)
  return mix_streams(weighted(rgb), weighted(flow), theta)


def outer_inner_contrast(starts, ends, classes, signal, video_scores=None, zeta: float = 0.2,
                         outer_ratio: float = 0.25, outer_window_rounding: str = "ceil"):
  """`scoring.outer_inner_contrast` in TF: HAM-Net's proposal score (Islam et al. AAAI 2021, Eqs. 14-16).

      psi = Avg(s^attn_c(t_s : t_e)) - Avg(s^attn_c(t_s - l_m : t_s) + s^attn_c(t_e : t_e + l_m)) + zeta p^attn_c

  with the NumPy version's reading of the paper: l_m = ceil(outer_ratio * (e - s + 1)) whole segments on each side,
  outer windows [s - l_m, s - 1] and [e + 1, e + l_m] clipped to the video and averaged together (0 when both are
  empty), zeta term dropped when video_scores is None; outer_window_rounding "floor_end" (the authors' code) makes
  the right window [e + 1, e + floor(l_m)].

  Args:
    starts, ends, classes: int64 [P], inclusive proposals and their columns of `signal`.
    signal: float [T, C], the attention-guided class logits s^attn.
    video_scores: float [C] (p^attn) or None.
    zeta, outer_ratio: Python floats.

  Returns:
    float64 [P].
  """
  signal = tf.cast(signal, tf.float64)
  length = tf.shape(signal, out_type=tf.int64)[0]
  prefix = prefix_sums(signal)                                              # [T + 1, C]
  inner = window_means(prefix, starts, ends, classes)                       # Eq. 15
  margin = tf.cast(tf.math.ceil(outer_ratio * tf.cast(ends - starts + 1, tf.float64)), tf.int64)   # Eq. 16, l_m
  left_start = tf.maximum(starts - margin, 0)
  if outer_window_rounding == "floor_end":
    margin = tf.cast(tf.math.floor(outer_ratio * tf.cast(ends - starts + 1, tf.float64)), tf.int64)
  right_end = tf.minimum(ends + margin, length - 1)
  outer_sum = (window_sums(prefix, left_start, starts - 1, classes) +
               window_sums(prefix, ends + 1, right_end, classes))
  outer_count = (starts - left_start) + (right_end - ends)
  outer = tf.where(outer_count > 0, outer_sum / tf.cast(tf.maximum(outer_count, 1), tf.float64),
                   tf.zeros_like(outer_sum))
  score = inner - outer                                                     # Eq. 14 without the zeta term
  if video_scores is not None:
    score = score + zeta * tf.gather(tf.cast(video_scores, tf.float64), classes)
  return score


# ---------------------------------------------------------------------------------------------------------------------
# Settings of the other post-processors: validated by the NumPy reference, returned as JSON-able values.
# ---------------------------------------------------------------------------------------------------------------------


def _sorted_thresholds(value, name: str):
  """One finite number or a non-empty sequence of them -> sorted unique Python floats (as np.unique)."""
  try:
    thresholds = np.unique(np.atleast_1d(np.asarray(value, dtype=np.float64)))
  except (TypeError, ValueError) as e:
    raise ValueError(f"{name} must be one finite number or a non-empty sequence of them, got {value!r}") from e
  if thresholds.ndim != 1 or thresholds.size == 0 or not np.all(np.isfinite(thresholds)):
    raise ValueError(f"{name} must be one finite number or a non-empty sequence of them, got {value!r}")
  return [float(t) for t in thresholds]


def _check_streams(streams: Sequence[str], name: str):
  streams = tuple(streams)
  if not streams or set(streams) - {"rgb", "flow"}:
    raise ValueError(f"{name} detection needs streams from ('rgb', 'flow'), got {streams!r}")
  return streams


def _dummy_streams(streams, attention_value: float):
  """Two-segment, one-class StreamOutputs of the given streams (for running the NumPy post-processors once)."""
  from stpn_tf.postprocess import types as pp_types  # pylint: disable=import-outside-toplevel
  dummy = pp_types.StreamOutput(np.full(2, attention_value), np.zeros((2, 1)), np.ones(1))
  return dummy if "rgb" in streams else None, dummy if "flow" in streams else None


def bgm_settings(feature_rate: float, class_threshold: float = 0.1, theta: float = 0.5,
                 attention_thresholds: Union[float, Sequence[float]] = bgm_inference.PAPER_ATTENTION_THRESHOLDS,
                 nms_threshold: float = 0.5, probability_fusion: str = "mean", fallback_to_top_class: bool = True,
                 streams: Sequence[str] = ("rgb", "flow"),
                 nms: str = "greedy", soft_nms_sigma: float = 0.5,
                 soft_nms_score_floor: Optional[float] = None, soft_nms_top_n: Optional[int] = None) -> Dict:
  """Validates `bgm_inference.bgm_detect` keyword arguments (running it once on a dummy video, so every setting it
  refuses is refused with its message) and returns them as JSON-able values; thresholds sorted and unique.

  Raises:
    ValueError: on a setting the NumPy post-processor rejects or a type the graph version cannot take.
  """
  streams = _check_streams(streams, "BGM")
  settings = dict(class_threshold=float(class_threshold), theta=float(theta),
                  attention_thresholds=_sorted_thresholds(attention_thresholds, "attention_thresholds"),
                  nms_threshold=float(nms_threshold), probability_fusion=str(probability_fusion),
                  fallback_to_top_class=bool(fallback_to_top_class))
  settings.update(nms_settings(nms, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n))
  rgb, flow = _dummy_streams(streams, settings["attention_thresholds"][-1] + 1.0)
  bgm_inference.bgm_detect(rgb, flow, float(feature_rate), **settings)
  return settings


def aumn_settings(feature_rate: float, class_threshold: float = 0.1, attention_threshold: Optional[float] = None,
                  theta: float = 0.3, nms_threshold: float = 0.3, probability_fusion: str = "mean",
                  fallback_to_top_class: bool = False, streams: Sequence[str] = ("rgb", "flow"),
                  nms: str = "greedy", soft_nms_sigma: float = 0.5,
                  soft_nms_score_floor: Optional[float] = None, soft_nms_top_n: Optional[int] = None) -> Dict:
  """Validates `aumn_inference.aumn_detect` keyword arguments (as `bgm_settings`). attention_threshold stays None
  for the paper's data-dependent eta_act (each network's mean attention over the video), computed in the graph.

  Raises:
    ValueError: on a setting the NumPy post-processor rejects or a type the graph version cannot take.
  """
  streams = _check_streams(streams, "AUMN")
  if attention_threshold is not None:
    attention_threshold = float(attention_threshold)
    if not np.isfinite(attention_threshold):
      raise ValueError(f"attention_threshold must be None (the mean attention) or finite, got {attention_threshold}")
  settings = dict(class_threshold=float(class_threshold), attention_threshold=attention_threshold,
                  theta=float(theta), nms_threshold=float(nms_threshold), probability_fusion=str(probability_fusion),
                  fallback_to_top_class=bool(fallback_to_top_class))
  settings.update(nms_settings(nms, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n))
  rgb, flow = _dummy_streams(streams, 1.0)
  aumn_inference.aumn_detect(rgb, flow, float(feature_rate), **settings)
  return settings


def hamnet_settings(feature_rate: float, class_threshold: float = 0.1,
                    attention_thresholds: Union[float, Sequence[float]] =
                    hamnet_inference.DEFAULT_ATTENTION_THRESHOLDS,
                    zeta: float = 0.2, outer_ratio: float = 0.25, nms_threshold: float = 0.5, smooth_window: int = 1,
                    fallback_to_top_class: bool = False, outer_window_rounding: str = "ceil",
                    keep_repeated_proposals: bool = False,
                    nms: str = "greedy", soft_nms_sigma: float = 0.5,
                    soft_nms_score_floor: Optional[float] = None, soft_nms_top_n: Optional[int] = None) -> Dict:
  """Validates `hamnet_inference.hamnet_detect` keyword arguments (as `bgm_settings`; smoothing window and outer
  ratio are checked here too, since the NumPy code checks them only on videos that reach them).

  Raises:
    ValueError: on a setting the NumPy post-processor rejects or a type the graph version cannot take.
  """
  if isinstance(smooth_window, (bool, np.bool_)) or int(smooth_window) != smooth_window or smooth_window < 1 \
      or smooth_window % 2 == 0:
    raise ValueError(f"smoothing window must be an odd integer >= 1, got {smooth_window!r}")
  if not np.isfinite(outer_ratio) or outer_ratio < 0:
    raise ValueError(f"outer_ratio must be a finite number >= 0, got {outer_ratio!r}")
  if not np.isfinite(zeta):
    raise ValueError(f"zeta must be finite, got {zeta!r}")
  settings = dict(class_threshold=float(class_threshold),
                  attention_thresholds=_sorted_thresholds(attention_thresholds, "attention_thresholds"),
                  zeta=float(zeta), outer_ratio=float(outer_ratio), nms_threshold=float(nms_threshold),
                  smooth_window=int(smooth_window), fallback_to_top_class=bool(fallback_to_top_class),
                  outer_window_rounding=str(outer_window_rounding),
                  keep_repeated_proposals=bool(keep_repeated_proposals))
  settings.update(nms_settings(nms, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n))
  attention = np.full(3, settings["attention_thresholds"][-1] + 1.0)
  hamnet_inference.hamnet_detect(attention, np.zeros((3, 2)), np.ones(1), float(feature_rate), **settings)
  return settings


# ---------------------------------------------------------------------------------------------------------------------
# The detectors.
# ---------------------------------------------------------------------------------------------------------------------


def _seconds(starts, ends, keep, feature_rate: float):
  """Step "indices to seconds" of every post-processor (`stpn_inference.segments_to_seconds`, factor 1)."""
  step = 1.0 / float(feature_rate)
  return tf.cast(tf.gather(starts, keep), tf.float64) * step, (tf.cast(tf.gather(ends, keep), tf.float64) + 1.0) * step


def _present(rgb, flow):
  return {sid: s for sid, s in ((RGB, rgb), (FLOW, flow)) if s is not None}


def _streams_and_kept_classes(rgb: Optional[StreamTensors], flow: Optional[StreamTensors], settings: Dict):
  """The present streams, and the classes whose fused video-level probability passes the threshold (with the
  settings' fallback): ({name: StreamTensors}, kept class indices [K] int64, K). No class for an empty video."""
  present = _present(rgb, flow)
  first = next(iter(present.values()))
  shape = tf.shape(first.tcam, out_type=tf.int64)
  nonempty = tf.logical_and(shape[0] > 0, shape[1] > 0)
  probabilities = _fuse_probabilities(present, settings["probability_fusion"])
  kept = select_classes(probabilities, settings["class_threshold"], settings["fallback_to_top_class"], nonempty)
  return present, kept, tf.size(kept, out_type=tf.int64)


def bgm_detect(rgb: Optional[StreamTensors], flow: Optional[StreamTensors], feature_rate: float,
               class_threshold: float = 0.1, theta: float = 0.5,
               attention_thresholds: Union[float, Sequence[float]] = bgm_inference.PAPER_ATTENTION_THRESHOLDS,
               nms_threshold: float = 0.5, probability_fusion: str = "mean",
               fallback_to_top_class: bool = True,
               nms: str = "greedy", soft_nms_sigma: float = 0.5,
               soft_nms_score_floor: Optional[float] = None,
                soft_nms_top_n: Optional[int] = None) -> Dict[str, tf.Tensor]:
  """Background-modeling detections of one video in the graph (Nguyen et al. ICCV 2019, Sec. 3.2, Eq. 12; settings
  of Sec. 4.2); same arguments and result as `bgm_inference.bgm_detect`.

  Steps: fused p_fg >= class_threshold (fallback: the top class); class-agnostic proposals from the
  modality-averaged attention, pooled over `attention_thresholds`; every proposal for every kept class
  (class-major), scored with Eq. 12 (`bgm_signal`, window mean); class-wise NMS; seconds.

  Args:
    rgb, flow: StreamTensors (attention [T], raw foreground T-CAM of the C real classes [T, C], p_fg of the real
      classes [C]) or None.
    feature_rate, ...: Python values, as for the NumPy version.

  Returns:
    {"start_s", "end_s", "class_index", "score"} [N] by descending score (ties: the NumPy proposal order).
  """
  streams = [name for name, s in (("rgb", rgb), ("flow", flow)) if s is not None]
  settings = bgm_settings(feature_rate, class_threshold, theta, attention_thresholds, nms_threshold,
                          probability_fusion, fallback_to_top_class, streams=streams,
                          nms=nms, soft_nms_sigma=soft_nms_sigma, soft_nms_score_floor=soft_nms_score_floor,
                          soft_nms_top_n=soft_nms_top_n)
  # Step 1: class selection.
  present, kept, num_kept = _streams_and_kept_classes(rgb, flow, settings)

  # Step 2: proposals of the modality-averaged attention (np.mean over the streams: sum, then divide).
  attentions = [tf.cast(s.attention, tf.float64) for s in present.values()]
  attention = attentions[0] if len(attentions) == 1 else (attentions[0] + attentions[1]) / 2.0
  _, proposal_starts, proposal_ends = threshold_proposals(attention[:, None], settings["attention_thresholds"])
  num_proposals = tf.size(proposal_starts, out_type=tf.int64)
  local_class = tf.repeat(tf.range(num_kept), num_proposals)               # [P * K], class-major
  starts = tf.tile(proposal_starts, tf.reshape(num_kept, [1]))
  ends = tf.tile(proposal_ends, tf.reshape(num_kept, [1]))

  # Step 3: Eq. 12 on the kept classes.
  signal = bgm_signal(rgb, flow, settings["theta"], columns=kept)          # [T, K]
  scores = window_means(prefix_sums(signal), starts, ends, local_class)

  # Steps 4-5: class-wise NMS on [s, e + 1], seconds.
  keep, kept_scores = suppress(tf.cast(starts, tf.float64), tf.cast(ends + 1, tf.float64), scores, local_class,
                               settings)
  start_s, end_s = _seconds(starts, ends, keep, feature_rate)
  return {"start_s": start_s, "end_s": end_s, "class_index": tf.gather(kept, tf.gather(local_class, keep)),
          "score": kept_scores}


def mean_attention(attention):
  """AUMN's eta_act (section 4.1: the video's mean foreground attention) as float64 `np.mean` computes it: the sum
  divided by T. (The float64 sum of float32 attention values is exact unless they span more than ~2^29 in
  magnitude, so the summation order, and hence the threshold, agrees with NumPy's.)"""
  attention = tf.cast(attention, tf.float64)
  return tf.reduce_sum(attention) / tf.cast(tf.size(attention), tf.float64)


def aumn_detect(rgb: Optional[StreamTensors], flow: Optional[StreamTensors], feature_rate: float,
                class_threshold: float = 0.1, attention_threshold: Optional[float] = None, theta: float = 0.3,
                nms_threshold: float = 0.3, probability_fusion: str = "mean",
                fallback_to_top_class: bool = False,
                nms: str = "greedy", soft_nms_sigma: float = 0.5,
                soft_nms_score_floor: Optional[float] = None,
                soft_nms_top_n: Optional[int] = None) -> Dict[str, tf.Tensor]:
  """AUMN detections of one video in the graph (Luo et al. CVPR 2021, section 3.3, Eqs. 15-16; settings of section
  4.1); same arguments and result as `aumn_inference.aumn_detect`.

  Steps: fused y_hat >= class_threshold; per network, the connected components of a(t) > eta_act (the network's
  mean attention when attention_threshold is None, computed in the graph), networks in (rgb, flow) order; every
  interval with every kept class (interval-major); Eq. 16 (`aumn_signal`, window mean); class-wise NMS; seconds.

  Args:
    rgb, flow: StreamTensors (attention a [T], raw CAS [T, C] of Eq. 15, y_hat [C]) or None.
    feature_rate, ...: Python values, as for the NumPy version.

  Returns:
    {"start_s", "end_s", "class_index", "score"} [N] by descending score (ties: the NumPy proposal order).
  """
  streams = [name for name, s in (("rgb", rgb), ("flow", flow)) if s is not None]
  settings = aumn_settings(feature_rate, class_threshold, attention_threshold, theta, nms_threshold,
                           probability_fusion, fallback_to_top_class, streams=streams,
                           nms=nms, soft_nms_sigma=soft_nms_sigma, soft_nms_score_floor=soft_nms_score_floor,
                           soft_nms_top_n=soft_nms_top_n)
  # Step 1: class rejection on y_hat.
  present, kept, num_kept = _streams_and_kept_classes(rgb, flow, settings)

  # Step 2: class-agnostic intervals per network, collected.
  interval_starts, interval_ends = [], []
  for stream in present.values():
    attention = tf.cast(stream.attention, tf.float64)
    if settings["attention_threshold"] is None:
      eta = tf.reshape(mean_attention(attention), [1])
    else:
      eta = [settings["attention_threshold"]]
    _, s, e = threshold_proposals(attention[:, None], eta)
    interval_starts.append(s)
    interval_ends.append(e)
  interval_starts = tf.concat(interval_starts, axis=0)                      # [I]
  interval_ends = tf.concat(interval_ends, axis=0)
  num_intervals = tf.size(interval_starts, out_type=tf.int64)
  starts = tf.repeat(interval_starts, num_kept)                             # [I * K], interval-major
  ends = tf.repeat(interval_ends, num_kept)
  classes = tf.tile(kept, tf.reshape(num_intervals, [1]))

  # Step 3: Eq. 16, softmax over all C classes.
  scores = window_means(prefix_sums(aumn_signal(rgb, flow, settings["theta"])), starts, ends, classes)

  # Step 4: class-wise NMS on [s, e + 1], seconds.
  keep, kept_scores = suppress(tf.cast(starts, tf.float64), tf.cast(ends + 1, tf.float64), scores, classes, settings)
  start_s, end_s = _seconds(starts, ends, keep, feature_rate)
  return {"start_s": start_s, "end_s": end_s, "class_index": tf.gather(classes, keep),
          "score": kept_scores}


def hamnet_detect(attention, cas, video_scores, feature_rate: float, class_threshold: float = 0.1,
                  attention_thresholds: Union[float, Sequence[float]] =
                  hamnet_inference.DEFAULT_ATTENTION_THRESHOLDS,
                  zeta: float = 0.2, outer_ratio: float = 0.25, nms_threshold: float = 0.5, smooth_window: int = 1,
                  fallback_to_top_class: bool = False, outer_window_rounding: str = "ceil",
                  keep_repeated_proposals: bool = False,
                  nms: str = "greedy", soft_nms_sigma: float = 0.5,
                  soft_nms_score_floor: Optional[float] = None,
                soft_nms_top_n: Optional[int] = None) -> Dict[str, tf.Tensor]:
  """HAM-Net detections of one video in the graph (Islam et al. AAAI 2021, "Temporal Action Localization", Eqs.
  14-16); same arguments and result as `hamnet_inference.hamnet_detect`.

  Steps: p^attn >= class_threshold; s^attn = s * a on the kept classes, a and s^attn average-pooled over
  `smooth_window` (ActivityNet); class-agnostic proposals a > theta pooled over `attention_thresholds`; every
  proposal for every kept class (class-major), scored with the outer-inner contrast (`outer_inner_contrast`);
  class-wise NMS; seconds.

  Args:
    attention: a [T]; cas: s [T, C + 1] (last column background) or [T, C]; video_scores: p^attn [C].
    feature_rate, ...: Python values, as for the NumPy version.

  Returns:
    {"start_s", "end_s", "class_index", "score"} [N] by descending score (ties: the NumPy proposal order).
  """
  settings = hamnet_settings(feature_rate, class_threshold, attention_thresholds, zeta, outer_ratio, nms_threshold,
                             smooth_window, fallback_to_top_class, outer_window_rounding, keep_repeated_proposals,
                             nms=nms, soft_nms_sigma=soft_nms_sigma, soft_nms_score_floor=soft_nms_score_floor,
                             soft_nms_top_n=soft_nms_top_n)
  attention = tf.cast(attention, tf.float64)
  cas = tf.cast(cas, tf.float64)
  video_scores = tf.cast(video_scores, tf.float64)
  length = tf.shape(attention, out_type=tf.int64)[0]
  nonempty = tf.logical_and(length > 0, tf.size(video_scores) > 0)

  # Step 1: class rejection on p^attn.
  kept = select_classes(video_scores, settings["class_threshold"], settings["fallback_to_top_class"], nonempty)
  num_kept = tf.size(kept, out_type=tf.int64)

  # s^attn of the kept classes, optionally smoothed together with the attention.
  guided = tf.gather(cas, kept, axis=1) * attention[:, None]               # [T, K]
  attention = average_pool(attention, settings["smooth_window"])
  guided = average_pool(guided, settings["smooth_window"])

  # Step 2: class-agnostic proposals, pooled over thresholds.
  _, proposal_starts, proposal_ends = threshold_proposals(attention[:, None], settings["attention_thresholds"],
                                                          keep_repeats=settings["keep_repeated_proposals"])
  num_proposals = tf.size(proposal_starts, out_type=tf.int64)
  starts = tf.tile(proposal_starts, tf.reshape(num_kept, [1]))             # [K * P], class-major
  ends = tf.tile(proposal_ends, tf.reshape(num_kept, [1]))
  local_class = tf.repeat(tf.range(num_kept), num_proposals)

  # Step 3: outer-inner contrast, Eqs. 14-16.
  scores = outer_inner_contrast(starts, ends, local_class, guided, tf.gather(video_scores, kept),
                                zeta=settings["zeta"], outer_ratio=settings["outer_ratio"],
                                outer_window_rounding=settings["outer_window_rounding"])

  # Step 4: class-wise NMS on [s, e + 1], seconds.
  keep, kept_scores = suppress(tf.cast(starts, tf.float64), tf.cast(ends + 1, tf.float64), scores, local_class,
                               settings)
  start_s, end_s = _seconds(starts, ends, keep, feature_rate)
  return {"start_s": start_s, "end_s": end_s, "class_index": tf.gather(kept, tf.gather(local_class, keep)),
          "score": kept_scores}
