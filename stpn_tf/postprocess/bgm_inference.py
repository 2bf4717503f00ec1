"""Detections of the background-modeling model (Nguyen, Ramanan, Fowlkes, ICCV 2019, Sec. 3.2; settings of Sec. 4.2).

NumPy only; built from the shared blocks (proposals.threshold_proposals, scoring.bgm_score, nms.suppress).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stpn_tf.postprocess import nms as nms_lib
from stpn_tf.postprocess import proposals
from stpn_tf.postprocess import scoring
from stpn_tf.postprocess.stpn_inference import fuse_probabilities
from stpn_tf.postprocess.stpn_inference import segments_to_seconds
from stpn_tf.postprocess.types import Detections
from stpn_tf.postprocess.types import StreamOutput

# Sec. 4.2: "a large set of thresholds ranging from 0 to 0.5 with the 0.025 increment" (21 values, both ends in).
PAPER_ATTENTION_THRESHOLDS = tuple(round(0.025 * i, 3) for i in range(21))


def bgm_detect(
    rgb: StreamOutput | None,
    flow: StreamOutput | None,
    feature_rate: float,
    class_threshold: float = 0.1,
    theta: float = 0.5,
    attention_thresholds: float | Sequence[float] = PAPER_ATTENTION_THRESHOLDS,
    nms_threshold: float = 0.5,
    probability_fusion: str = "mean",
    fallback_to_top_class: bool = True,
    nms: str = "greedy",
    soft_nms_sigma: float = 0.5,
    soft_nms_score_floor: float | None = None,
    soft_nms_top_n: int | None = None,
) -> Detections:
  """Detections of one video (Nguyen et al. ICCV 2019, Sec. 3.2 and Fig. 3, Eq. 12; numbers of Sec. 4.2).

  Steps:
    1. Class selection: keep the classes c with fused video-level foreground probability p_fg[c] >= 0.1; "if no
       foreground class has probability greater than 0.1, we generate proposals and detections for the highest
       foreground class" (`fallback_to_top_class`). The two streams are trained separately and the paper does not
       say how their p_fg are combined: `probability_fusion` (default "mean", as for STPN).
    2. Proposals come from the attention lambda averaged over the modalities (not from weighted T-CAMs, unlike
       STPN): 1-D connected components of lambda > threshold for every threshold 0, 0.025, ..., 0.5, all pooled
       into one set (an interval found at several thresholds is kept once; NMS would remove the copy anyway).
       The proposals are class-agnostic, so every proposal is a candidate for every selected class.
    3. Each (proposal, class) is scored with Eq. 12 (`scoring.bgm_score`): the mean over the proposal of
       theta * lambda^RGB_t w_c^T x^RGB_t + (1 - theta) * lambda^FLOW_t w_c^T x^FLOW_t, theta = 0.5.
    4. Class-wise NMS at IoU 0.5.
    5. Indices to seconds: [s, e] -> [s / rate, (e + 1) / rate].
  With one stream missing (single-modality ablation) that stream alone gives the attention and the score.

  Args:
    rgb: RGB outputs: attention [T], raw foreground T-CAM w_c^T x_t over the C real classes [T, C] (the background
      column removed), p_fg over the real classes [C]; or None.
    flow: flow outputs, same layout; or None.
    feature_rate: segments per second.
    class_threshold: video-level probability needed to localize a class (0.1, Sec. 4.2).
    theta: RGB weight of Eq. 12 (0.5, Sec. 3.2).
    attention_thresholds: thresholds on the averaged attention; proposals of all of them are pooled.
    nms_threshold: class-wise NMS IoU threshold (0.5, Sec. 4.2).
    nms: class-wise suppression, "greedy" (NMS at `nms_threshold`), "soft_gaussian" or "soft_linear"
      (soft-NMS, `nms.class_wise_soft_nms`; the linear one decays above `nms_threshold`).
    soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n: soft-NMS settings (see `nms.class_wise_soft_nms`).
    probability_fusion: how the streams' p_fg are combined for step 1 ("mean", "max", "rgb", "flow").
    fallback_to_top_class: step 1's fallback to the most probable class.

  Returns:
    Detections sorted by descending score.

  Raises:
    ValueError: if no stream is given, the streams disagree on [T, C], or a setting is invalid.
  """
  present = [s for s in (rgb, flow) if s is not None]
  if not present:
    raise ValueError("bgm_detect needs at least one of the rgb and flow streams")
  for stream in present:
    if not isinstance(stream, StreamOutput):
      raise ValueError(f"streams must be StreamOutput or None, got {type(stream).__name__}")
  if len(present) == 2 and rgb.tcam.shape != flow.tcam.shape:
    raise ValueError(f"RGB tcam shape {rgb.tcam.shape} disagrees with flow tcam shape {flow.tcam.shape}")
  if not np.isfinite(feature_rate) or feature_rate <= 0:
    raise ValueError(f"feature_rate must be a positive number of segments per second, got {feature_rate}")
  if not 0.0 <= theta <= 1.0:
    raise ValueError(f"theta must be in [0, 1], got {theta}")
  nms_lib.check_nms_settings(nms, nms_threshold, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n)
  probabilities = fuse_probabilities(rgb, flow, probability_fusion)  # [C]
  length, num_classes = present[0].tcam.shape
  if length == 0 or num_classes == 0:
    return Detections.empty()

  # Step 1: class selection.
  kept_classes = np.flatnonzero(probabilities >= class_threshold)  # [K]
  if kept_classes.size == 0:
    if not fallback_to_top_class:
      return Detections.empty()
    kept_classes = np.array([int(np.argmax(probabilities))])
  num_kept = kept_classes.size

  # Step 2: class-agnostic proposals from the modality-averaged attention, pooled over the thresholds.
  attention = np.mean([s.attention for s in present], axis=0)  # [T]
  _, starts, ends = proposals.threshold_proposals(attention[:, None], attention_thresholds)  # [P] each
  if starts.size == 0:
    return Detections.empty()
  # Every proposal for every kept class: [P * K], class-major.
  local_class = np.repeat(np.arange(num_kept), starts.size)
  starts = np.tile(starts, num_kept)
  ends = np.tile(ends, num_kept)

  # Step 3: Eq. 12 on the kept classes' T-CAM columns.
  scores = scoring.bgm_score(
      starts, ends, local_class,
      rgb.attention if rgb is not None else None, rgb.tcam[:, kept_classes] if rgb is not None else None,
      flow.attention if flow is not None else None, flow.tcam[:, kept_classes] if flow is not None else None,
      theta=theta)

  # Step 4: class-wise NMS on continuous intervals [s, e + 1].
  keep, kept_scores = nms_lib.suppress(starts, ends + 1, scores, local_class, nms, nms_threshold, soft_nms_sigma,
                                      soft_nms_score_floor, soft_nms_top_n)  # descending score

  # Step 5: seconds.
  start_s, end_s = segments_to_seconds(starts[keep], ends[keep], feature_rate)
  return Detections(start_s, end_s, kept_classes[local_class[keep]], kept_scores)
