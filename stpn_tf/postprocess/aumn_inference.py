"""AUMN inference: detections of one video from the outputs of its RGB and flow networks (NumPy only).

Luo et al., CVPR 2021, section 3.3 ("Inference") with the settings of section 4.1:
  1. Discard classes whose video-level score y_hat (Eq. 8) is below eta_cls = 0.1.
  2. For each network (stream), proposals are the 1-D connected components of a(t) > eta_act, where a is that
     network's foreground attention (Eq. 7) and eta_act is the mean of a over the video. a is class-agnostic, so every
     remaining class gets the same intervals from one network; the proposals of both networks are collected.
  3. Each (class, interval) is scored with Eq. 16 (`scoring.aumn_score`): the mean over the interval of
     theta a^R(t) Cbar^R(t, c) + (1 - theta) a^F(t) Cbar^F(t, c), Cbar = the CAS of Eq. 15 passed through a softmax
     over all C classes, theta = 0.3. The printed denominator s - e + 1 is a typo for e - s + 1 (see aumn_score).
  4. Class-wise NMS at IoU 0.3.
"""

from __future__ import annotations

import numpy as np

from stpn_tf.postprocess import nms as nms_lib
from stpn_tf.postprocess import proposals
from stpn_tf.postprocess import scoring
from stpn_tf.postprocess.stpn_inference import fuse_probabilities
from stpn_tf.postprocess.stpn_inference import segments_to_seconds
from stpn_tf.postprocess.types import Detections
from stpn_tf.postprocess.types import StreamOutput


def attention_proposals(attention: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Step 2 for one network: inclusive intervals where a(t) > threshold; threshold None = mean of a (eta_act).

  Args:
    attention: float array [T], the foreground attention a of Eq. 7.
    threshold: eta_act, or None for the video's own mean attention (section 4.1).

  Returns:
    `(starts, ends)`, int64 arrays [P] of inclusive segment indices, sorted by start.
  """
  attention = np.asarray(attention, dtype=np.float64)
  if attention.size == 0:
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty.copy()
  eta = float(attention.mean()) if threshold is None else float(threshold)
  _, starts, ends = proposals.threshold_proposals(attention[:, None], eta)
  return starts, ends


def aumn_detect(
    rgb: StreamOutput | None,
    flow: StreamOutput | None,
    feature_rate: float,
    class_threshold: float = 0.1,
    attention_threshold: float | None = None,
    theta: float = 0.3,
    nms_threshold: float = 0.3,
    probability_fusion: str = "mean",
    fallback_to_top_class: bool = False,
    nms: str = "greedy",
    soft_nms_sigma: float = 0.5,
    soft_nms_score_floor: float | None = None,
    soft_nms_top_n: int | None = None,
) -> Detections:
  """AUMN detections for one video (section 3.3, Eqs. 15-16; settings of section 4.1).

  The paper thresholds "video-level prediction scores y_hat" without saying how the two separately trained
  networks' scores are combined: `probability_fusion` decides ("mean" of the two softmax outputs by default, as the
  project does for STPN; "max", "rgb" or "flow", see `stpn_inference.fuse_probabilities`).

  Args:
    rgb: RGB network outputs: attention a [T] (Eq. 7), tcam = the raw CAS [T, C] of Eq. 15, probabilities y_hat [C]
      (the softmax of Eq. 8); or None.
    flow: flow network outputs (same fields) or None.
    feature_rate: segments per second (see `segments_to_seconds`).
    class_threshold: eta_cls (0.1); classes with fused y_hat below it are discarded.
    attention_threshold: eta_act; None (the paper) = each network's mean attention over the video.
    theta: RGB weight of Eq. 16 (0.3).
    nms_threshold: class-wise NMS IoU (0.3).
    nms: class-wise suppression, "greedy" (NMS at `nms_threshold`), "soft_gaussian" or "soft_linear"
      (soft-NMS, `nms.class_wise_soft_nms`; the linear one decays above `nms_threshold`).
    soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n: soft-NMS settings (see `nms.class_wise_soft_nms`).
    probability_fusion: "mean", "max", "rgb" or "flow".
    fallback_to_top_class: keep the top class when no class passes `class_threshold` (the paper describes none).

  Returns:
    Detections sorted by descending score.

  Raises:
    ValueError: if no stream is given, the streams disagree on [T, C], or a setting is invalid.
  """
  present = [(stream_id, s) for stream_id, s in ((scoring.RGB, rgb), (scoring.FLOW, flow)) if s is not None]
  if not present:
    raise ValueError("aumn_detect needs at least one of the rgb and flow streams")
  for _, stream in present:
    if not isinstance(stream, StreamOutput):
      raise ValueError(f"streams must be StreamOutput or None, got {type(stream).__name__}")
  if rgb is not None and flow is not None and rgb.tcam.shape != flow.tcam.shape:
    raise ValueError(f"RGB CAS shape {rgb.tcam.shape} disagrees with flow CAS shape {flow.tcam.shape}")
  if not np.isfinite(feature_rate) or feature_rate <= 0:
    raise ValueError(f"feature_rate must be a positive number of segments per second, got {feature_rate}")
  if not 0.0 <= theta <= 1.0:
    raise ValueError(f"theta must be in [0, 1], got {theta}")
  nms_lib.check_nms_settings(nms, nms_threshold, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n)
  length, num_classes = present[0][1].tcam.shape
  if length == 0 or num_classes == 0:
    return Detections.empty()

  # Step 1: class rejection on y_hat.
  video_scores = fuse_probabilities(rgb, flow, probability_fusion)  # [C]
  kept_classes = np.flatnonzero(video_scores >= class_threshold)  # [K]
  if kept_classes.size == 0:
    if not fallback_to_top_class:
      return Detections.empty()
    kept_classes = np.array([int(np.argmax(video_scores))])

  # Step 2: class-agnostic intervals per network, paired with every kept class, collected over the networks.
  intervals = [attention_proposals(stream.attention, attention_threshold) for _, stream in present]
  starts = np.concatenate([s for s, _ in intervals])  # [I]
  ends = np.concatenate([e for _, e in intervals])
  if starts.size == 0:
    return Detections.empty()
  starts = np.repeat(starts, kept_classes.size)  # [I * K], interval-major.
  ends = np.repeat(ends, kept_classes.size)
  classes = np.tile(kept_classes, starts.size // kept_classes.size)

  # Step 3: Eq. 16. The softmax of Eq. 15 runs over all C classes, so the full CAS goes in.
  scores = scoring.aumn_score(
      starts, ends, classes,
      rgb.attention if rgb is not None else None, rgb.tcam if rgb is not None else None,
      flow.attention if flow is not None else None, flow.tcam if flow is not None else None,
      theta=theta, apply_softmax=True)

  # Step 4: class-wise NMS on continuous intervals [s, e + 1]; the same interval from both networks has the same
  # Eq. 16 score (the score does not depend on the network that proposed it), so NMS keeps one of them.
  keep, kept_scores = nms_lib.suppress(starts, ends + 1, scores, classes, nms, nms_threshold, soft_nms_sigma,
                                      soft_nms_score_floor, soft_nms_top_n)  # Descending score.
  start_s, end_s = segments_to_seconds(starts[keep], ends[keep], feature_rate)
  return Detections(start_s, end_s, classes[keep], kept_scores)
