"""Proposal scoring rules of STPN and its successors, vectorized over proposals with prefix sums (NumPy only).

Every rule is a mean (or a difference of means) of a per-segment signal over a proposal's inclusive index window
[start, end]. With a prefix-sum table P[t] = sum_{u < t} x[u] (one extra leading zero row), the window sum is
P[end + 1] - P[start], so each proposal costs O(1) after an O(T * C) table build, and all proposals of a video are
scored with a few fancy-indexing operations.

Proposals are given as parallel int arrays: `starts` [P], `ends` [P] (inclusive segment indices on the same grid as
the signals) and `classes` [P] (column of the class signals). When proposals were generated on an interpolated grid
(`proposals.interpolate`), pass signals interpolated by the same factor.
"""

from __future__ import annotations

import numpy as np

RGB = 0  # Stream id of proposals generated from the RGB stream (STPN Eq. 7, * = RGB).
FLOW = 1  # Stream id of proposals generated from the flow stream (STPN Eq. 7, * = FLOW).


# ---------------------------------------------------------------------------------------------------------------------
# Prefix-sum helpers.
# ---------------------------------------------------------------------------------------------------------------------


def prefix_sums(signal: np.ndarray) -> np.ndarray:
  """Prefix-sum table along time with a leading zero row.

  Accumulates in float64: scores are differences of prefix sums, and float32 cancellation on long videos would
  cost precision.

  Args:
    signal: float array [T] or [T, C].

  Returns:
    float64 array [T + 1] or [T + 1, C] with out[0] = 0 and out[t] = sum(signal[:t]).
  """
  signal = np.asarray(signal, dtype=np.float64)
  out = np.zeros((signal.shape[0] + 1,) + signal.shape[1:], dtype=np.float64)
  np.cumsum(signal, axis=0, out=out[1:])
  return out


def window_sums(prefix: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                columns: np.ndarray | None = None) -> np.ndarray:
  """Sums over inclusive windows [start, end] read from a prefix-sum table; empty windows (end < start) sum to 0.

  Args:
    prefix: float array [T + 1] or [T + 1, C] from `prefix_sums`.
    starts: int array [P], 0 <= start <= T.
    ends: int array [P], -1 <= end <= T - 1.
    columns: int array [P] of column (class) indices; required iff `prefix` is 2-D.

  Returns:
    float64 array [P].
  """
  starts = np.asarray(starts, dtype=np.int64)
  ends = np.asarray(ends, dtype=np.int64)
  # Clamp empty windows to a zero-length one at `start` so they sum to exactly 0.
  stops = np.maximum(ends + 1, starts)  # [P], exclusive window end.
  if prefix.ndim == 1:
    return prefix[stops] - prefix[starts]
  columns = np.asarray(columns, dtype=np.int64)
  return prefix[stops, columns] - prefix[starts, columns]


def window_means(prefix: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 columns: np.ndarray | None = None) -> np.ndarray:
  """Means over inclusive windows [start, end]; an empty window (end < start) has mean 0.

  Args:
    prefix: float array [T + 1] or [T + 1, C] from `prefix_sums`.
    starts: int array [P].
    ends: int array [P].
    columns: int array [P] of column indices; required iff `prefix` is 2-D.

  Returns:
    float64 array [P].
  """
  sums = window_sums(prefix, starts, ends, columns)
  counts = np.maximum(np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64) + 1, 0)
  return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


# ---------------------------------------------------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------------------------------------------------


def _check_stream(attention, signal, name: str) -> tuple[np.ndarray, np.ndarray] | None:
  """Validates one stream's attention [T] and class signal [T, C]; None when the stream is absent.

  Raises:
    ValueError: if only one of the two arrays is given, on bad ranks, disagreeing T, or non-finite values.
  """
  if attention is None and signal is None:
    return None
  if attention is None or signal is None:
    raise ValueError(f"{name}: attention and class signal must be given together (or both None)")
  attention = np.asarray(attention, dtype=np.float64)
  signal = np.asarray(signal, dtype=np.float64)
  if attention.ndim != 1:
    raise ValueError(f"{name} attention must be [T], got shape {attention.shape}")
  if signal.ndim != 2:
    raise ValueError(f"{name} class signal must be [T, C], got shape {signal.shape}")
  if attention.shape[0] != signal.shape[0]:
    raise ValueError(f"{name} attention has T={attention.shape[0]} but its class signal has "
                     f"T={signal.shape[0]} (shape {signal.shape})")
  if not np.all(np.isfinite(attention)):
    raise ValueError(f"{name} attention contains NaN or inf")
  if not np.all(np.isfinite(signal)):
    raise ValueError(f"{name} class signal contains NaN or inf")
  return attention, signal


def _check_two_streams(rgb, flow) -> tuple[int, int]:
  """Checks that at least one stream is present and both agree on [T, C]; returns (T, C)."""
  present = [s for s in (rgb, flow) if s is not None]
  if not present:
    raise ValueError("at least one of the RGB and flow streams must be given")
  if len(present) == 2 and rgb[1].shape != flow[1].shape:
    raise ValueError(f"RGB class signal shape {rgb[1].shape} disagrees with flow class signal shape "
                     f"{flow[1].shape}")
  return present[0][1].shape


def _check_proposals(starts, ends, classes, length: int, num_classes: int):
  """Validates proposal index arrays against a [T, C] signal; returns them as int64.

  Raises:
    ValueError: on mismatched lengths, start > end, or indices out of range.
  """
  starts = np.asarray(starts, dtype=np.int64)
  ends = np.asarray(ends, dtype=np.int64)
  classes = np.asarray(classes, dtype=np.int64)
  if starts.ndim != 1 or starts.shape != ends.shape or starts.shape != classes.shape:
    raise ValueError("starts, ends and classes must be 1-D of the same length, got shapes "
                     f"{starts.shape}, {ends.shape}, {classes.shape}")
  if starts.size:
    if np.any(starts > ends):
      raise ValueError("a proposal has start > end")
    if starts.min() < 0 or ends.max() >= length:
      raise ValueError(f"proposal indices must lie in [0, {length - 1}] (T = {length})")
    if classes.min() < 0 or classes.max() >= num_classes:
      raise ValueError(f"proposal classes must lie in [0, {num_classes - 1}]")
  return starts, ends, classes


def _mix(rgb_part: np.ndarray | None, flow_part: np.ndarray | None, rgb_weight: float) -> np.ndarray:
  """rgb_weight * rgb_part + (1 - rgb_weight) * flow_part; a missing stream gives the other one full weight.

  Single-stream ablations renormalize the modality weights (a single stream gets weight 1) so that scores keep the
  scale of the signal; a constant factor would not change any ranking anyway.
  """
  if rgb_part is None:
    return flow_part
  if flow_part is None:
    return rgb_part
  return rgb_weight * rgb_part + (1.0 - rgb_weight) * flow_part


# ---------------------------------------------------------------------------------------------------------------------
# Scoring rules.
# ---------------------------------------------------------------------------------------------------------------------


def stpn_score(
    starts: np.ndarray,
    ends: np.ndarray,
    classes: np.ndarray,
    streams: np.ndarray,
    rgb_attention: np.ndarray | None,
    rgb_tcam: np.ndarray | None,
    flow_attention: np.ndarray | None,
    flow_tcam: np.ndarray | None,
    alpha: float = 0.5,
) -> np.ndarray:
  """STPN proposal score, Nguyen et al. CVPR 2018, Eq. 7.

      score = sum_{t = t_start}^{t_end} lambda_{t,*} * (alpha * a^c_{t,RGB} + (1 - alpha) * a^c_{t,FLOW})
              / (t_end - t_start + 1)

  where * is the stream the proposal was generated from (its own attention weights the fused T-CAM) and a are the
  raw T-CAMs of Eq. 4 (before the sigmoid of Eqs. 5-6). The paper prints the lower summation bound as t_end; that
  is a typo: the sum runs over the whole proposal, t_start .. t_end, which is what the normalization by
  t_end - t_start + 1 ("the weighted average T-CAM of all the frames within the proposal") requires.

  With one stream missing (single-stream ablation) the fused T-CAM is that stream's T-CAM alone (alpha is
  renormalized away), and every proposal must come from the present stream.

  Args:
    starts: int array [P], inclusive start indices.
    ends: int array [P], inclusive end indices.
    classes: int array [P], class columns of the T-CAMs.
    streams: int array [P], `RGB` (0) or `FLOW` (1): the stream that generated each proposal.
    rgb_attention: float array [T] (lambda_RGB) or None.
    rgb_tcam: float array [T, C] (raw a_RGB) or None.
    flow_attention: float array [T] (lambda_FLOW) or None.
    flow_tcam: float array [T, C] (raw a_FLOW) or None.
    alpha: modality balance in [0, 1]; 0.5 in the paper (Sec. 4.2).

  Returns:
    float64 array [P] of scores.

  Raises:
    ValueError: on inconsistent shapes, non-finite inputs, out-of-range proposals, or a proposal from a stream that
      is not given.
  """
  rgb = _check_stream(rgb_attention, rgb_tcam, "RGB")
  flow = _check_stream(flow_attention, flow_tcam, "flow")
  length, num_classes = _check_two_streams(rgb, flow)
  starts, ends, classes = _check_proposals(starts, ends, classes, length, num_classes)
  streams = np.asarray(streams, dtype=np.int64)
  if streams.shape != starts.shape:
    raise ValueError(f"streams must have shape {starts.shape}, got {streams.shape}")
  if np.any((streams != RGB) & (streams != FLOW)):
    raise ValueError("streams must be RGB (0) or FLOW (1)")
  for stream_id, stream, name in ((RGB, rgb, "RGB"), (FLOW, flow, "flow")):
    if stream is None and np.any(streams == stream_id):
      raise ValueError(f"a proposal comes from the {name} stream, which is not given")

  fused = _mix(rgb[1] if rgb else None, flow[1] if flow else None, alpha)  # [T, C]
  scores = np.zeros(starts.shape[0], dtype=np.float64)
  for stream_id, stream in ((RGB, rgb), (FLOW, flow)):
    selected = streams == stream_id
    if stream is None or not selected.any():
      continue
    prefix = prefix_sums(stream[0][:, None] * fused)  # [T + 1, C]; lambda_{t,*} times the fused T-CAM.
    scores[selected] = window_means(prefix, starts[selected], ends[selected], classes[selected])
  return scores


def bgm_score(
    starts: np.ndarray,
    ends: np.ndarray,
    classes: np.ndarray,
    rgb_attention: np.ndarray | None,
    rgb_tcam: np.ndarray | None,
    flow_attention: np.ndarray | None,
    flow_tcam: np.ndarray | None,
    theta: float = 0.5,
) -> np.ndarray:
  """Background-modeling proposal score, Nguyen et al. ICCV 2019 ("Weakly-supervised action localization with
  background modeling"), Eq. 12.

      score = sum_{t = t_start}^{t_end} (theta * lambda_t^RGB * w_c^T x_t^RGB + (1 - theta) * lambda_t^FLOW *
              w_c^T x_t^FLOW) / (t_end - t_start + 1)

  Unlike STPN Eq. 7, each modality's raw T-CAM w_c^T x_t is weighted by that modality's own attention, and the
  score does not depend on the stream a proposal came from (the paper generates proposals from the attention
  averaged over the modalities). theta = 0.5 in the paper. With one stream missing, that stream gets weight 1.

  Args:
    starts: int array [P], inclusive start indices.
    ends: int array [P], inclusive end indices.
    classes: int array [P], class columns of the T-CAMs.
    rgb_attention: float array [T] (lambda^RGB) or None.
    rgb_tcam: float array [T, C] (raw foreground T-CAM w_c^T x_t^RGB) or None.
    flow_attention: float array [T] (lambda^FLOW) or None.
    flow_tcam: float array [T, C] (raw w_c^T x_t^FLOW) or None.
    theta: relative importance of RGB, in [0, 1].

  Returns:
    float64 array [P] of scores.

  Raises:
    ValueError: on inconsistent shapes, non-finite inputs or out-of-range proposals.
  """
  rgb = _check_stream(rgb_attention, rgb_tcam, "RGB")
  flow = _check_stream(flow_attention, flow_tcam, "flow")
  length, num_classes = _check_two_streams(rgb, flow)
  starts, ends, classes = _check_proposals(starts, ends, classes, length, num_classes)
  signal = _mix(rgb[0][:, None] * rgb[1] if rgb else None,
                flow[0][:, None] * flow[1] if flow else None, theta)  # [T, C]
  return window_means(prefix_sums(signal), starts, ends, classes)


def _softmax(logits: np.ndarray) -> np.ndarray:
  """Softmax over the last axis, shifted by the max for numerical stability."""
  shifted = logits - logits.max(axis=-1, keepdims=True)
  exp = np.exp(shifted)
  return exp / exp.sum(axis=-1, keepdims=True)


def aumn_score(
    starts: np.ndarray,
    ends: np.ndarray,
    classes: np.ndarray,
    rgb_attention: np.ndarray | None,
    rgb_cas: np.ndarray | None,
    flow_attention: np.ndarray | None,
    flow_cas: np.ndarray | None,
    theta: float = 0.3,
    apply_softmax: bool = True,
) -> np.ndarray:
  """AUMN proposal confidence, Luo et al. CVPR 2021 ("Action Unit Memory Network"), Eq. 16.

      q = sum_{t = s}^{e} (theta * a^R(t) * Cbar^R(t, c) + (1 - theta) * a^F(t) * Cbar^F(t, c)) / (e - s + 1)

  where a is the foreground attention of each stream and Cbar the class activation sequence of Eq. 15 passed
  through a softmax over the category dimension. The paper prints the denominator as s - e + 1, a typo for
  e - s + 1 (the number of segments in the proposal; s - e + 1 is <= 1 and would flip the sign of long proposals).
  theta = 0.3 in the paper. With one stream missing, that stream gets weight 1.

  Args:
    starts: int array [P], inclusive start indices s.
    ends: int array [P], inclusive end indices e.
    classes: int array [P], class columns c.
    rgb_attention: float array [T] (a^R) or None.
    rgb_cas: float array [T, C], RGB CAS of Eq. 15 (logits, or probabilities if `apply_softmax` is False) or None.
    flow_attention: float array [T] (a^F) or None.
    flow_cas: float array [T, C], flow CAS (same convention) or None.
    theta: relative importance of RGB, in [0, 1].
    apply_softmax: apply the per-segment softmax over classes here (True) or take the CAS as already normalized.

  Returns:
    float64 array [P] of confidences.

  Raises:
    ValueError: on inconsistent shapes, non-finite inputs or out-of-range proposals.
  """
  rgb = _check_stream(rgb_attention, rgb_cas, "RGB")
  flow = _check_stream(flow_attention, flow_cas, "flow")
  length, num_classes = _check_two_streams(rgb, flow)
  starts, ends, classes = _check_proposals(starts, ends, classes, length, num_classes)

  def weighted(stream):
    if stream is None:
      return None
    cas = _softmax(stream[1]) if apply_softmax else stream[1]  # [T, C]
    return stream[0][:, None] * cas

  signal = _mix(weighted(rgb), weighted(flow), theta)  # [T, C]
  return window_means(prefix_sums(signal), starts, ends, classes)


OUTER_WINDOW_ROUNDINGS = ("ceil", "floor_end")


def outer_inner_contrast(
    starts: np.ndarray,
    ends: np.ndarray,
    classes: np.ndarray,
    signal: np.ndarray,
    video_scores: np.ndarray | None = None,
    zeta: float = 0.2,
    outer_ratio: float = 0.25,
    outer_window_rounding: str = "ceil",
) -> np.ndarray:
  """Outer-inner contrast score of HAM-Net, Islam et al. AAAI 2021, Eqs. 14-16 (after AutoLoc, Shou et al. 2018).

      psi       = psi_inner - psi_outer + zeta * p_c^attn                                (Eq. 14)
      psi_inner = Avg(s_c^attn(t_s : t_e))                                                (Eq. 15)
      psi_outer = Avg(s_c^attn(t_s - l_m : t_s) + s_c^attn(t_e : t_e + l_m)),  l_m = (t_e - t_s) / 4  (Eq. 16)

  Decisions where the paper is vague:
    * Continuous boundaries: an inclusive index proposal [s, e] spans t_s = s, t_e = e + 1, so
      t_e - t_s = e - s + 1 segments and l_m = outer_ratio * (e - s + 1).
    * l_m is rounded up to whole segments, n = ceil(l_m), on both sides, so even a one-segment proposal has a
      one-segment outer region (with rounding down, proposals shorter than 4 segments would have no contrast).
    * `outer_window_rounding = "floor_end"` is the authors' code instead (utils/utils.py `get_proposal_oic`): the
      left window starts at int(s - l_m), i.e. also n = ceil(l_m) segments, but the right one ends at
      int(e + l_m) = e + floor(l_m), so it has floor(l_m) segments (none for proposals shorter than 4 segments).
    * The outer region is strictly outside the proposal: segments [s - n, s - 1] and [e + 1, e + n], each clipped to
      the video. "Avg(left + right)" is read as the mean over the union of both outer windows (one mean over all
      outer segments, not the mean of the two window means).
    * If the clipped outer region is empty (the proposal spans the whole video), psi_outer = 0.
    * zeta is not given in the paper; the default 0.2 is an unverified choice to be tuned on validation data.
      Passing `video_scores=None` drops the zeta term.

  Args:
    starts: int array [P], inclusive start indices.
    ends: int array [P], inclusive end indices.
    classes: int array [P], class columns c.
    signal: float array [T, C], the attention-guided class logits s^attn (CAS times attention).
    video_scores: float array [C], video-level class scores p^attn, or None.
    zeta: weight of the video-level score.
    outer_ratio: l_m as a fraction of the proposal length (1/4 in the paper).
    outer_window_rounding: "ceil" (both windows ceil(l_m) segments, ours) or "floor_end" (the right window ends at
      floor(e + l_m), the authors' code).

  Returns:
    float64 array [P] of scores.

  Raises:
    ValueError: on bad shapes, non-finite inputs or out-of-range proposals.
  """
  signal = np.asarray(signal, dtype=np.float64)
  if signal.ndim != 2:
    raise ValueError(f"signal must be [T, C], got shape {signal.shape}")
  if not np.all(np.isfinite(signal)):
    raise ValueError("signal contains NaN or inf")
  length, num_classes = signal.shape
  starts, ends, classes = _check_proposals(starts, ends, classes, length, num_classes)
  if outer_ratio < 0:
    raise ValueError(f"outer_ratio must be >= 0, got {outer_ratio}")
  if outer_window_rounding not in OUTER_WINDOW_ROUNDINGS:
    raise ValueError(f"outer_window_rounding must be one of {OUTER_WINDOW_ROUNDINGS}, got {outer_window_rounding!r}")

  prefix = prefix_sums(signal)  # [T + 1, C]
  inner = window_means(prefix, starts, ends, classes)  # [P]
  margin = np.ceil(outer_ratio * (ends - starts + 1)).astype(np.int64)  # [P], n = ceil(l_m) segments.
  left_start = np.maximum(starts - margin, 0)
  if outer_window_rounding == "floor_end":
    margin = np.floor(outer_ratio * (ends - starts + 1)).astype(np.int64)  # [P], right window only.
  right_end = np.minimum(ends + margin, length - 1)
  # Left window [left_start, s - 1] and right window [e + 1, right_end]; either may be empty at the video edges.
  outer_sum = (window_sums(prefix, left_start, starts - 1, classes)
               + window_sums(prefix, ends + 1, right_end, classes))
  outer_count = (starts - left_start) + (right_end - ends)
  outer = np.divide(outer_sum, outer_count, out=np.zeros_like(outer_sum), where=outer_count > 0)
  score = inner - outer
  if video_scores is not None:
    video_scores = np.asarray(video_scores, dtype=np.float64)
    if video_scores.shape != (num_classes,):
      raise ValueError(f"video_scores must have shape ({num_classes},), got {video_scores.shape}")
    if not np.all(np.isfinite(video_scores)):
      raise ValueError("video_scores contains NaN or inf")
    score = score + zeta * video_scores[classes]
  return score
