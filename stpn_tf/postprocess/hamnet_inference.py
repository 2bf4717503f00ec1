"""HAM-Net localization (Islam, Long, Radke, AAAI 2021, section "Temporal Action Localization"), NumPy only.

  1. Keep classes whose video-level score p^attn_c (Eq. 6, softmax over the C+1 classes) is >= 0.1.
  2. Class-agnostic proposals: the 1-D connected components of a_i > theta for theta = 0.1, 0.15, ..., 0.9
     ("we apply different thresholds", thresholds from 0.1 to 0.9 with a step of 0.05, section "Implementation
     Details"), pooled over thresholds (an interval found at several thresholds is kept once).
  3. Each proposal, for each kept class c, is scored with the outer-inner contrast of Eqs. 14-16 on the
     attention-guided class logits s^attn_c = s_c * a (`scoring.outer_inner_contrast`: l_m = (t_e - t_s) / 4 and the
     zeta * p^attn_c term).
  4. Class-wise NMS (`nms.suppress`: greedy by default, or soft-NMS), then indices to seconds.
The authors' code differs in settings the paper does not print (gin_configs/hamnet_authors.gin selects them): class
threshold 0.2, thresholds linspace(0.1, 0.9, 10), every copy of an interval found at several thresholds kept
(`keep_repeated_proposals`), the right outer window ending at floor(e + l_m) (`outer_window_rounding='floor_end'`)
and Gaussian soft-NMS with sigma 0.3 and no removal (`nms='soft_gaussian'`).
ActivityNet ("apply additional average pooling to post-process the final CAS"): `smooth_window` > 1 averages the
attention and s^attn over a centred window before steps 2-3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stpn_tf.postprocess import nms as nms_lib
from stpn_tf.postprocess import proposals
from stpn_tf.postprocess import scoring
from stpn_tf.postprocess.stpn_inference import segments_to_seconds
from stpn_tf.postprocess.types import Detections

# 0.1 to 0.9 in steps of 0.05 (17 thresholds), rounded so that 0.15 etc. are exact decimals.
DEFAULT_ATTENTION_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.1, 0.9 + 1e-9, 0.05), 2))


def average_pool(signal: np.ndarray, window: int) -> np.ndarray:
  """Centred moving average along time with an odd `window`, averaging only over positions inside the video.

  (The authors' code pads with zeros and counts them; here the edges average fewer values instead, so a constant
  signal stays constant.) window 1 returns a float64 copy.

  Args:
    signal: float array [T] or [T, C].
    window: odd integer >= 1.

  Returns:
    float64 array of the same shape.
  """
  if int(window) != window or window < 1 or window % 2 == 0:
    raise ValueError(f"smoothing window must be an odd integer >= 1, got {window!r}")
  signal = np.asarray(signal, dtype=np.float64)
  if window == 1 or signal.shape[0] == 0:
    return signal.copy()
  half = int(window) // 2
  length = signal.shape[0]
  prefix = scoring.prefix_sums(signal)
  lo = np.maximum(np.arange(length) - half, 0)
  hi = np.minimum(np.arange(length) + half + 1, length)              # exclusive
  counts = (hi - lo).astype(np.float64)
  if signal.ndim == 2:
    counts = counts[:, None]
  return (prefix[hi] - prefix[lo]) / counts


def hamnet_detect(
    attention: np.ndarray,
    cas: np.ndarray,
    video_scores: np.ndarray,
    feature_rate: float,
    class_threshold: float = 0.1,
    attention_thresholds: float | Sequence[float] = DEFAULT_ATTENTION_THRESHOLDS,
    zeta: float = 0.2,
    outer_ratio: float = 0.25,
    nms_threshold: float = 0.5,
    smooth_window: int = 1,
    fallback_to_top_class: bool = False,
    outer_window_rounding: str = "ceil",
    keep_repeated_proposals: bool = False,
    nms: str = "greedy",
    soft_nms_sigma: float = 0.5,
    soft_nms_score_floor: float | None = None,
    soft_nms_top_n: int | None = None,
) -> Detections:
  """HAM-Net detections for one video.

  Args:
    attention: soft attention a [T] in [0, 1] (Eq. 4).
    cas: class logits s [T, C+1] (last column background, ignored here) or [T, C].
    video_scores: p^attn [C], the video-level scores of Eq. 6 for the C real classes.
    feature_rate: segments per second (see `stpn_inference.segments_to_seconds`).
    class_threshold: classes with p^attn_c >= this are localized (0.1 in the paper).
    attention_thresholds: thresholds on a (a segment is foreground when a_i > theta).
    zeta: weight of p^attn_c in Eq. 14 (not given in the paper).
    outer_ratio: l_m as a fraction of the proposal length (1/4, Eq. 16).
    nms_threshold: IoU above which a lower-scored proposal of the same class is suppressed (not given).
    nms: class-wise suppression, "greedy" (NMS at `nms_threshold`), "soft_gaussian" or "soft_linear"
      (soft-NMS, `nms.class_wise_soft_nms`; the linear one decays above `nms_threshold`).
    soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n: soft-NMS settings (see `nms.class_wise_soft_nms`).
    smooth_window: odd window of the average pooling applied to a and s^attn (1 = none; ActivityNet uses one).
    fallback_to_top_class: when no class passes `class_threshold`, localize the top class instead of nothing.
    outer_window_rounding: "ceil" (ours) or "floor_end" (authors' code), see `scoring.outer_inner_contrast`.
    keep_repeated_proposals: keep an interval once per attention threshold that finds it (authors' code) instead of
      once (see `proposals.threshold_proposals`).

  Returns:
    Detections sorted by descending score.

  Raises:
    ValueError: on inconsistent shapes, non-finite inputs or invalid settings.
  """
  attention = np.asarray(attention, dtype=np.float64)
  cas = np.asarray(cas, dtype=np.float64)
  video_scores = np.asarray(video_scores, dtype=np.float64)
  if attention.ndim != 1:
    raise ValueError(f"attention must be [T], got shape {attention.shape}")
  if video_scores.ndim != 1:
    raise ValueError(f"video_scores must be [C], got shape {video_scores.shape}")
  num_classes = video_scores.shape[0]
  if cas.ndim != 2 or cas.shape[0] != attention.shape[0] or cas.shape[1] not in (num_classes, num_classes + 1):
    raise ValueError(f"cas must be [T, C] or [T, C+1] with T={attention.shape[0]}, C={num_classes}; got "
                     f"{cas.shape}")
  for name, value in (("attention", attention), ("cas", cas), ("video_scores", video_scores)):
    if not np.all(np.isfinite(value)):
      raise ValueError(f"{name} contains NaN or inf")
  if outer_window_rounding not in scoring.OUTER_WINDOW_ROUNDINGS:
    raise ValueError(f"outer_window_rounding must be one of {scoring.OUTER_WINDOW_ROUNDINGS}, got "
                     f"{outer_window_rounding!r}")
  if not np.isfinite(feature_rate) or feature_rate <= 0:
    raise ValueError(f"feature_rate must be a positive number of segments per second, got {feature_rate}")
  nms_lib.check_nms_settings(nms, nms_threshold, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n)
  length = attention.shape[0]
  if length == 0 or num_classes == 0:
    return Detections.empty()

  # Step 1: class rejection on p^attn.
  kept = np.flatnonzero(video_scores >= class_threshold)                     # [K]
  if kept.size == 0:
    if not fallback_to_top_class:
      return Detections.empty()
    kept = np.array([int(np.argmax(video_scores))])

  # s^attn of the kept classes, optionally smoothed together with the attention (ActivityNet).
  guided = cas[:, kept] * attention[:, None]                                 # [T, K]
  attention = average_pool(attention, smooth_window)
  guided = average_pool(guided, smooth_window)

  # Step 2: class-agnostic proposals from the attention, pooled over thresholds.
  _, starts, ends = proposals.threshold_proposals(attention[:, None], attention_thresholds,
                                                  keep_repeats=keep_repeated_proposals)      # [P] each
  if starts.size == 0:
    return Detections.empty()
  num_kept, num_proposals = kept.size, starts.size
  starts = np.tile(starts, num_kept)                                         # [K * P]: every class, every proposal
  ends = np.tile(ends, num_kept)
  local_class = np.repeat(np.arange(num_kept), num_proposals)

  # Step 3: outer-inner contrast, Eqs. 14-16.
  scores = scoring.outer_inner_contrast(starts, ends, local_class, guided, video_scores[kept], zeta=zeta,
                                        outer_ratio=outer_ratio, outer_window_rounding=outer_window_rounding)

  # Step 4: class-wise NMS on continuous intervals [s, e + 1], then seconds.
  keep, kept_scores = nms_lib.suppress(starts, ends + 1, scores, local_class, nms, nms_threshold, soft_nms_sigma,
                                      soft_nms_score_floor, soft_nms_top_n)
  start_s, end_s = segments_to_seconds(starts[keep], ends[keep], feature_rate)
  return Detections(start_s, end_s, kept[local_class[keep]], kept_scores)
