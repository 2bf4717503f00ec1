"""STPN test-time localization (Nguyen et al. CVPR 2018, Sec. 3.4 and 4.2), NumPy only.

Pipeline for one video: class rejection on video-level probabilities -> weighted T-CAMs (Eqs. 5-6) -> optional
linear interpolation -> (multi-)threshold connected components per stream and class -> pooled RGB + flow proposals
scored with Eq. 7 -> class-wise NMS -> segment indices to seconds.

All keyword arguments are plain typed values with defaults so the lead can expose them through gin without this
module importing gin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stpn_tf.postprocess import nms as nms_lib
from stpn_tf.postprocess import proposals
from stpn_tf.postprocess import scoring
from stpn_tf.postprocess.types import Detections
from stpn_tf.postprocess.types import StreamOutput

PROBABILITY_FUSIONS = ("mean", "max", "rgb", "flow")


def segments_to_seconds(
    starts: np.ndarray,
    ends: np.ndarray,
    feature_rate: float,
    interpolation_factor: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
  """Inclusive segment-index intervals to seconds.

  Segment i (at `feature_rate` segments per second) covers [i / rate, (i + 1) / rate) seconds, so the inclusive
  proposal [s, e] is [s / rate, (e + 1) / rate]. On a grid interpolated by `interpolation_factor` (see
  `proposals.interpolate`) each index is a sub-segment of 1 / (rate * factor) seconds: [s, e] is
  [s / (rate * factor), (e + 1) / (rate * factor)].

  For THUMOS14 I3D features (16-frame segments of 25 fps video) rate = 25 / 16; when a fixed number of segments is
  sampled uniformly from the whole video (STPN samples 400), rate = num_segments / duration_s.

  Args:
    starts: int array [P], inclusive start indices.
    ends: int array [P], inclusive end indices.
    feature_rate: segments per second of the original (non-interpolated) grid, > 0.
    interpolation_factor: integer >= 1 used to build the grid the indices live on.

  Returns:
    `(start_s, end_s)`, float64 arrays [P].

  Raises:
    ValueError: on a non-positive rate or a bad factor.
  """
  if not np.isfinite(feature_rate) or feature_rate <= 0:
    raise ValueError(f"feature_rate must be a positive number of segments per second, got {feature_rate}")
  if int(interpolation_factor) != interpolation_factor or interpolation_factor < 1:
    raise ValueError(f"interpolation_factor must be an integer >= 1, got {interpolation_factor}")
  step = 1.0 / (float(feature_rate) * int(interpolation_factor))  # Seconds per index of the grid.
  starts = np.asarray(starts, dtype=np.float64)
  ends = np.asarray(ends, dtype=np.float64)
  return starts * step, (ends + 1.0) * step


def _sigmoid(x: np.ndarray) -> np.ndarray:
  """Logistic function in a form that does not overflow for large |x|."""
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def fuse_probabilities(rgb: StreamOutput | None, flow: StreamOutput | None, fusion: str = "mean") -> np.ndarray:
  """Video-level class probabilities of the two-stream model used for class rejection (STPN Sec. 4.2).

  The paper rejects classes "whose video-level probabilities are below 0.1" without saying how the two separately
  trained streams are combined. Options: "mean" (default, average of the two sigmoid outputs), "max" (a class kept
  by either stream is kept), "rgb" / "flow" (one stream decides). With only one stream given, "mean" and "max"
  both return that stream's probabilities.

  Args:
    rgb: RGB stream outputs or None.
    flow: flow stream outputs or None.
    fusion: one of PROBABILITY_FUSIONS.

  Returns:
    float64 array [C].

  Raises:
    ValueError: on an unknown fusion, or "rgb"/"flow" naming a stream that is not given.
  """
  if fusion not in PROBABILITY_FUSIONS:
    raise ValueError(f"probability_fusion must be one of {PROBABILITY_FUSIONS}, got {fusion!r}")
  if fusion == "rgb" or fusion == "flow":
    stream = rgb if fusion == "rgb" else flow
    if stream is None:
      raise ValueError(f"probability_fusion={fusion!r} but the {fusion} stream is not given")
    return stream.probabilities
  present = [s.probabilities for s in (rgb, flow) if s is not None]
  if len(present) == 1:
    return present[0]
  stacked = np.stack(present)  # [2, C]
  return stacked.mean(axis=0) if fusion == "mean" else stacked.max(axis=0)


def stpn_detect(
    rgb: StreamOutput | None,
    flow: StreamOutput | None,
    feature_rate: float,
    class_threshold: float = 0.1,
    alpha: float = 0.5,
    tcam_threshold: float | Sequence[float] = 0.5,
    interpolation_factor: int = 1,
    nms_threshold: float = 0.5,
    probability_fusion: str = "mean",
    fallback_to_top_class: bool = False,
    nms: str = "greedy",
    soft_nms_sigma: float = 0.5,
    soft_nms_score_floor: float | None = None,
    soft_nms_top_n: int | None = None,
) -> Detections:
  """STPN detections for one video (Nguyen et al. CVPR 2018, Sec. 3.4, Eqs. 5-7; settings of Sec. 4.2).

  Steps:
    1. Keep classes c with fused video-level probability >= `class_threshold` (0.1 in Sec. 4.2; fusion see
       `fuse_probabilities`). If none passes, the video gets no detections: STPN describes no fallback. With
       `fallback_to_top_class=True` the single most probable class is kept instead (the rule of Nguyen et al. ICCV
       2019, Sec. 4.2).
    2. Weighted T-CAMs per stream, psi^c_t = lambda_t * sigmoid(a^c_t) (Eqs. 5-6), for the kept classes.
    3. Optionally interpolate psi linearly by `interpolation_factor` sub-segments per segment.
    4. Threshold psi (`tcam_threshold`: one value, or several whose proposals are pooled and de-duplicated; a
       segment is foreground when psi > threshold) and take 1-D connected components per stream and class.
    5. Pool the proposals of both streams and score each with Eq. 7: the mean over the proposal of
       lambda_{t,*} * (alpha * a_RGB + (1 - alpha) * a_FLOW), * = the proposal's own stream. On an interpolated
       grid, lambda and a are interpolated by the same factor so Eq. 7 runs on the proposal's grid.
    6. Class-wise greedy NMS at IoU `nms_threshold` (not given in STPN; 0.5 follows Nguyen et al. 2019).
    7. Indices to seconds: [s, e] -> [s / rate, (e + 1) / rate] (divided by the factor when interpolated).

  Either stream may be None for single-stream ablations; then only that stream makes proposals and Eq. 7 uses its
  T-CAM alone (alpha renormalized away).

  Args:
    rgb: RGB stream outputs (attention [T], raw tcam [T, C], probabilities [C]) or None.
    flow: flow stream outputs or None.
    feature_rate: segments per second of the T-CAM grid (see `segments_to_seconds`).
    class_threshold: video-level probability needed to localize a class.
    alpha: Eq. 7 modality balance (0.5 in Sec. 4.2; 0.1 for UntrimmedNet features).
    tcam_threshold: threshold(s) on the weighted T-CAM psi in [0, 1]; the paper gives no value.
    interpolation_factor: integer >= 1; 1 means no interpolation.
    nms_threshold: IoU above which a lower-scored proposal of the same class is suppressed.
    nms: class-wise suppression, "greedy" (NMS at `nms_threshold`), "soft_gaussian" or "soft_linear"
      (soft-NMS, `nms.class_wise_soft_nms`; the linear one decays above `nms_threshold`).
    soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n: soft-NMS settings (see `nms.class_wise_soft_nms`).
    probability_fusion: "mean", "max", "rgb" or "flow".
    fallback_to_top_class: keep the top class when no class passes `class_threshold`.

  Returns:
    Detections sorted by descending score.

  Raises:
    ValueError: if no stream is given, the streams disagree on T or C, or a setting is invalid. Bad arrays
      (mismatched shapes, NaN) are rejected when the StreamOutput is built.
  """
  present = [(stream_id, s) for stream_id, s in ((scoring.RGB, rgb), (scoring.FLOW, flow)) if s is not None]
  if not present:
    raise ValueError("stpn_detect needs at least one of the rgb and flow streams")
  for _, stream in present:
    if not isinstance(stream, StreamOutput):
      raise ValueError(f"streams must be StreamOutput or None, got {type(stream).__name__}")
  if rgb is not None and flow is not None and rgb.tcam.shape != flow.tcam.shape:
    raise ValueError(f"RGB tcam shape {rgb.tcam.shape} disagrees with flow tcam shape {flow.tcam.shape}")
  if not np.isfinite(feature_rate) or feature_rate <= 0:
    raise ValueError(f"feature_rate must be a positive number of segments per second, got {feature_rate}")
  if not np.isfinite(class_threshold):
    raise ValueError(f"class_threshold must be finite, got {class_threshold}")
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f"alpha must be in [0, 1], got {alpha}")
  nms_lib.check_nms_settings(nms, nms_threshold, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n)
  video_probabilities = fuse_probabilities(rgb, flow, probability_fusion)  # [C]
  length, num_classes = present[0][1].tcam.shape
  if length == 0 or num_classes == 0:
    return Detections.empty()

  # Step 1: class rejection.
  kept_classes = np.flatnonzero(video_probabilities >= class_threshold)  # [K]
  if kept_classes.size == 0:
    if not fallback_to_top_class:
      return Detections.empty()
    kept_classes = np.array([int(np.argmax(video_probabilities))])

  # Steps 2-3 per stream, on the kept classes only ([T, K] instead of [T, C]).
  attention = {}  # stream id -> lambda on the (possibly interpolated) grid, [T * f]
  tcam = {}  # stream id -> raw a on the grid, [T * f, K]
  weighted = []  # psi per stream on the grid, [T * f, K] each
  for stream_id, stream in present:
    raw = stream.tcam[:, kept_classes]  # [T, K]
    psi = stream.attention[:, None] * _sigmoid(raw)  # [T, K], Eqs. 5-6.
    weighted.append(proposals.interpolate(psi, interpolation_factor))  # [T * f, K]
    attention[stream_id] = proposals.interpolate(stream.attention, interpolation_factor)
    tcam[stream_id] = proposals.interpolate(raw, interpolation_factor)
  # Step 4 for all streams and classes in one vectorized call: column j of the stacked signal is stream j // K,
  # kept class j % K.
  num_kept = kept_classes.size
  column, starts, ends = proposals.threshold_proposals(np.concatenate(weighted, axis=1), tcam_threshold)
  local_class = column % num_kept  # [P], index into kept_classes.
  streams = np.array([stream_id for stream_id, _ in present], dtype=np.int64)[column // num_kept]  # [P]
  if starts.size == 0:
    return Detections.empty()

  # Step 5: Eq. 7 on the pooled proposals.
  scores = scoring.stpn_score(
      starts, ends, local_class, streams,
      attention.get(scoring.RGB), tcam.get(scoring.RGB),
      attention.get(scoring.FLOW), tcam.get(scoring.FLOW),
      alpha=alpha)

  # Step 6: class-wise NMS on continuous intervals [s, e + 1] (IoU is scale-free, so grid units are fine).
  keep, kept_scores = nms_lib.suppress(starts, ends + 1, scores, local_class, nms, nms_threshold, soft_nms_sigma,
                                      soft_nms_score_floor, soft_nms_top_n)  # Descending score.

  # Step 7: seconds.
  start_s, end_s = segments_to_seconds(starts[keep], ends[keep], feature_rate, interpolation_factor)
  return Detections(start_s, end_s, kept_classes[local_class[keep]], kept_scores)
