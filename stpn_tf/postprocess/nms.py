"""Temporal IoU, class-wise greedy non-maximum suppression and soft-NMS (NumPy only).

STPN (Nguyen et al. 2018, end of Sec. 3.4): "we perform non-maximum suppression among temporal proposals of each
class independently to remove highly overlapped detections". The same class-wise NMS is used by Nguyen et al. 2019
(overlap threshold 0.5), AUMN (0.3) and HAM-Net.

`suppress` is the step every post-processor runs: greedy NMS (`class_wise_nms`) or Gaussian / linear soft-NMS
(`class_wise_soft_nms`, Bodla et al. ICCV 2017; what HAM-Net's code, OpenWTAL and most later WTAL code use),
chosen by `<model>_detect.nms`.

Intervals are continuous [start, end] (length end - start). Proposals given as inclusive segment indices [s, e]
must be passed as [s, e + 1] (or converted to seconds first), otherwise a one-segment proposal has length 0.
"""

from __future__ import annotations

import numpy as np


def interval_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Pairwise temporal intersection over union of continuous intervals.

  IoU = |a ∩ b| / |a ∪ b| with |[s, e]| = e - s. A pair whose union has zero length (two empty intervals) gets
  IoU 0.

  Args:
    a: float array [N, 2] of (start, end) rows, start <= end.
    b: float array [M, 2] of (start, end) rows, start <= end.

  Returns:
    float64 array [N, M].

  Raises:
    ValueError: if an input is not [*, 2] or has an interval with end < start.
  """
  a = _as_intervals(a, "a")
  b = _as_intervals(b, "b")
  inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]),
                  0.0, None)  # [N, M]
  union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter  # [N, M]
  return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _as_intervals(x: np.ndarray, name: str) -> np.ndarray:
  """Validates an [N, 2] interval array and returns it as float64."""
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2 or x.shape[1] != 2:
    raise ValueError(f"{name} must be [N, 2] (start, end) intervals, got shape {x.shape}")
  if np.isnan(x).any():
    raise ValueError(f"{name} contains NaN")
  if np.any(x[:, 1] < x[:, 0]):
    raise ValueError(f"{name} has an interval with end < start")
  return x


def candidate_pairs(starts: np.ndarray, ends: np.ndarray, min_iou: float = 0.0,
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Pairs of intervals that may have IoU > `min_iou`, found without forming an N x N matrix.

  Sorted by start, interval p can only reach IoU > min_iou with an interval q after it (start_q >= start_p) if
  start_q < end_p - min_iou * (end_p - start_p), because IoU <= (end_p - start_q) / (end_p - start_p). Those q form
  a contiguous run of the sorted order found with one `np.searchsorted`; the runs are expanded into index pairs
  with repeat/cumsum. With min_iou = 0 the result is every pair with a positive-length intersection. The bound is
  loosened by a relative 1e-9 so rounding can only add candidates, never drop one: callers must still check IoU.
  Cost is O(N log N + number of candidates).

  Args:
    starts: float array [N].
    ends: float array [N], ends >= starts.
    min_iou: IoU the candidates must be able to exceed, in [0, 1].

  Returns:
    `(first, second)`, int64 arrays [Q] of indices into the inputs with starts[first] <= starts[second]; each
    candidate unordered pair appears once.
  """
  by_start = np.argsort(starts)  # [N]; order among equal starts does not matter for the bound below.
  sorted_starts = starts[by_start]
  sorted_ends = ends[by_start]
  position = np.arange(starts.shape[0])
  reach = sorted_ends - min_iou * (sorted_ends - sorted_starts)  # [N]
  if reach.size:
    reach = reach + 1e-9 * (np.abs(sorted_ends).max() + 1.0)
  bound = np.searchsorted(sorted_starts, reach, side="left")  # [N]; candidates are positions p+1 .. bound-1.
  counts = np.maximum(bound - position - 1, 0)
  total = int(counts.sum())
  first = np.repeat(position, counts)  # [Q]
  # Offset of each pair inside its run: 0 .. counts[p] - 1.
  within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
  second = first + 1 + within
  return by_start[first], by_start[second]


def class_wise_nms(
    starts: np.ndarray,
    ends: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou_threshold: float,
) -> np.ndarray:
  """Greedy NMS run independently for each class.

  Result: exactly that of the textbook greedy loop. Within a class, proposals are visited by descending score
  (ties: lower index first); the best remaining one is kept and every remaining proposal of the same class whose
  IoU with it is strictly greater than `iou_threshold` is dropped. Proposals of different classes never suppress
  each other.

  Implementation (why not the loop): a THUMOS14 video can pool thousands of proposals from 20 thresholds x 2
  streams x 20 classes and keep thousands of them, so a Python loop over kept proposals dominated the run time.
  Instead, (1) classes are moved apart on the time axis so intervals of different classes cannot overlap, (2)
  candidate pairs are found by a sort + searchsorted sweep (`candidate_pairs`) and those with IoU above the
  threshold become "higher-ranked suppresses lower-ranked" edges, and (3) the greedy outcome is the unique fixed
  point of keep[j] = no kept i ranked above j has an edge to j, reached by iterating that rule from "keep all".
  Each iteration is one vectorized pass over the edges; the number of iterations is bounded by the longest chain
  of suppression edges (a handful in practice; pathological inputs such as long sliding-window chains with
  monotone scores need more, but the result stays exact).

  Args:
    starts: float array [N], interval starts (continuous, see module docstring).
    ends: float array [N], interval ends, ends >= starts.
    scores: float array [N].
    classes: int array [N].
    iou_threshold: suppression threshold in [0, 1].

  Returns:
    int64 array [K] of kept indices into the inputs, sorted by descending score (ties: lower index first).

  Raises:
    ValueError: on mismatched lengths, NaN inputs, end < start, or a threshold outside [0, 1].
  """
  starts = np.asarray(starts, dtype=np.float64)
  ends = np.asarray(ends, dtype=np.float64)
  scores = np.asarray(scores, dtype=np.float64)
  classes = np.asarray(classes)
  n = starts.shape[0] if starts.ndim == 1 else -1
  if any(x.ndim != 1 or x.shape[0] != n for x in (starts, ends, scores, classes)):
    raise ValueError("starts, ends, scores and classes must be 1-D of the same length, got shapes "
                     f"{starts.shape}, {ends.shape}, {scores.shape}, {classes.shape}")
  if not 0.0 <= iou_threshold <= 1.0:
    raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
  if not (np.all(np.isfinite(starts)) and np.all(np.isfinite(ends)) and not np.isnan(scores).any()):
    raise ValueError("starts and ends must be finite and scores must not contain NaN")
  if np.any(ends < starts):
    raise ValueError("an interval has end < start")
  if n == 0:
    return np.zeros(0, dtype=np.int64)

  # (1) Shift each class onto its own stretch of the time axis, one full span plus a gap apart. Only the candidate
  # search uses shifted times; IoU below is computed on the original values so no rounding enters the comparison.
  class_id = _dense_class_ids(classes)  # [N]
  origin = starts.min()
  span = ends.max() - origin + 1.0
  shift = class_id * span - origin  # [N]

  # (2) Suppression edges: candidate pairs with IoU > threshold, oriented from the higher to the lower rank.
  first, second = candidate_pairs(starts + shift, ends + shift, iou_threshold)  # [Q], same class each.
  # Candidates may be disjoint, so the intersection is clipped at 0 (max of the starts is taken explicitly: the
  # shifted times may round two nearly equal starts into either order).
  start_first, start_second = starts[first], starts[second]
  end_first, end_second = ends[first], ends[second]
  inter = np.maximum(np.minimum(end_first, end_second) - np.maximum(start_first, start_second), 0.0)  # [Q]
  union = (end_first - start_first) + (end_second - start_second) - inter
  strong = inter > iou_threshold * union  # IoU > threshold, without dividing (union = 0 gives False).
  first, second = first[strong], second[strong]
  # Higher score wins; on equal scores the lower index wins (the greedy visiting order).
  score_first, score_second = scores[first], scores[second]
  first_wins = (score_first > score_second) | ((score_first == score_second) & (first < second))
  winner = np.where(first_wins, first, second)  # [E]
  loser = np.where(first_wins, second, first)

  # (3) Fixed-point iteration of keep[j] = not any(keep[i] for edges i -> j), starting from "keep all".
  keep = np.ones(n, dtype=bool)
  while True:
    new_keep = np.ones(n, dtype=bool)
    new_keep[loser[keep[winner]]] = False
    if np.array_equal(new_keep, keep):
      break
    keep = new_keep
  kept = np.flatnonzero(keep)  # Ascending index, so the stable sort below breaks score ties by index.
  return kept[np.argsort(-scores[kept], kind="stable")].astype(np.int64)


def _dense_class_ids(classes: np.ndarray) -> np.ndarray:
  """Maps class labels to small non-negative ints; integer labels are just offset (a sort is needed otherwise)."""
  if np.issubdtype(classes.dtype, np.integer) or np.issubdtype(classes.dtype, np.bool_):
    classes = classes.astype(np.int64)
    return classes - classes.min()
  return np.unique(classes, return_inverse=True)[1].reshape(-1)


# ---------------------------------------------------------------------------------------------------------------------
# Soft-NMS (Bodla et al., "Soft-NMS -- Improving Object Detection With One Line of Code", ICCV 2017), class-wise.
# ---------------------------------------------------------------------------------------------------------------------

NMS_METHODS = ("greedy", "soft_gaussian", "soft_linear")


def check_nms_settings(nms: str = "greedy", nms_threshold: float = 0.5, soft_nms_sigma: float = 0.5,
                       soft_nms_score_floor: float | None = None, soft_nms_top_n: int | None = None) -> None:
  """Raises ValueError on an invalid suppression setting (shared by every post-processor and its graph port)."""
  if nms not in NMS_METHODS:
    raise ValueError(f"nms must be one of {NMS_METHODS}, got {nms!r}")
  if not 0.0 <= nms_threshold <= 1.0:
    raise ValueError(f"nms_threshold must be in [0, 1], got {nms_threshold}")
  if not (np.isfinite(soft_nms_sigma) and soft_nms_sigma > 0):
    raise ValueError(f"soft_nms_sigma must be a positive number, got {soft_nms_sigma!r}")
  if soft_nms_score_floor is not None and not np.isfinite(soft_nms_score_floor):
    raise ValueError(f"soft_nms_score_floor must be None (no removal) or finite, got {soft_nms_score_floor!r}")
  if soft_nms_top_n is not None and (isinstance(soft_nms_top_n, (bool, np.bool_))
                                     or int(soft_nms_top_n) != soft_nms_top_n or soft_nms_top_n < 1):
    raise ValueError(f"soft_nms_top_n must be None (all) or an integer >= 1, got {soft_nms_top_n!r}")


def class_wise_soft_nms(
    starts: np.ndarray,
    ends: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    method: str = "gaussian",
    sigma: float = 0.5,
    iou_threshold: float = 0.3,
    score_floor: float | None = None,
    top_n: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Soft-NMS run independently for each class: scores are decayed instead of proposals being dropped.

  Within a class, repeatedly: the proposal with the highest current score (ties: lower index first) is selected;
  every not yet selected proposal j of that class has its score multiplied by
      gaussian:  w = exp(-IoU(selected, j)^2 / sigma)                       (Bodla et al. 2017, Eq. after Eq. 3;
                                                                             the form of HAM-Net's code, utils.py)
      linear:    w = 1 - IoU(selected, j) if IoU > iou_threshold, else 1    (Bodla et al. 2017, Eq. 3)
  A selected proposal whose current score is below `score_floor` ends the class's list (it is the highest left, so
  every other one is below too); None keeps everything (HAM-Net's code: "no removal"). At most `top_n` proposals
  are kept per class (None: all). Scores are multiplied as they are, so a negative score (HAM-Net's outer-inner
  contrast can be negative) moves towards 0 when decayed, as in the authors' code.

  Args:
    starts, ends: float arrays [N], continuous intervals (see the module docstring), ends >= starts.
    scores: float array [N].
    classes: int array [N].
    method: "gaussian" or "linear".
    sigma: Gaussian width (> 0).
    iou_threshold: the linear method's threshold in [0, 1].
    score_floor: None or the lowest kept decayed score.
    top_n: None or the most proposals kept per class.

  Returns:
    `(keep, new_scores)`: int64 [K] kept indices into the inputs and float64 [K] their decayed scores, sorted by
    descending decayed score (ties: lower index first).

  Raises:
    ValueError: on mismatched lengths, NaN inputs, end < start, or invalid settings.
  """
  if method not in ("gaussian", "linear"):
    raise ValueError(f"soft-NMS method must be 'gaussian' or 'linear', got {method!r}")
  check_nms_settings("greedy", iou_threshold, sigma, score_floor, top_n)
  starts = np.asarray(starts, dtype=np.float64)
  ends = np.asarray(ends, dtype=np.float64)
  scores = np.asarray(scores, dtype=np.float64)
  classes = np.asarray(classes)
  n = starts.shape[0] if starts.ndim == 1 else -1
  if any(x.ndim != 1 or x.shape[0] != n for x in (starts, ends, scores, classes)):
    raise ValueError("starts, ends, scores and classes must be 1-D of the same length, got shapes "
                     f"{starts.shape}, {ends.shape}, {scores.shape}, {classes.shape}")
  if not (np.all(np.isfinite(starts)) and np.all(np.isfinite(ends)) and not np.isnan(scores).any()):
    raise ValueError("starts and ends must be finite and scores must not contain NaN")
  if np.any(ends < starts):
    raise ValueError("an interval has end < start")
  kept, kept_scores = [], []
  for label in np.unique(classes):
    members = np.flatnonzero(classes == label)                            # [M], ascending index
    current = scores[members].copy()
    member_starts, member_ends = starts[members], ends[members]
    active = np.ones(members.size, dtype=bool)
    count = 0
    while active.any() and (top_n is None or count < top_n):
      candidates = np.flatnonzero(active)
      best = candidates[np.argmax(current[candidates])]                   # first maximum: lowest index
      if score_floor is not None and current[best] < score_floor:
        break
      kept.append(members[best])
      kept_scores.append(current[best])
      count += 1
      active[best] = False
      # IoU of the selected interval with the others, computed as in `class_wise_nms` (no division by 0).
      inter = np.maximum(np.minimum(member_ends[best], member_ends) - np.maximum(member_starts[best], member_starts),
                         0.0)
      union = (member_ends[best] - member_starts[best]) + (member_ends - member_starts) - inter
      iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
      if method == "gaussian":
        weight = np.exp(-(iou * iou) / sigma)
      else:
        weight = np.where(iou > iou_threshold, 1.0 - iou, 1.0)
      current = np.where(active, current * weight, current)
  kept = np.asarray(kept, dtype=np.int64)
  kept_scores = np.asarray(kept_scores, dtype=np.float64)
  order = np.lexsort((kept, -kept_scores))                                # descending score, then index
  return kept[order], kept_scores[order]


def suppress(
    starts: np.ndarray,
    ends: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    nms: str = "greedy",
    nms_threshold: float = 0.5,
    soft_nms_sigma: float = 0.5,
    soft_nms_score_floor: float | None = None,
    soft_nms_top_n: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """The class-wise suppression step of every post-processor, chosen by `nms` (the `<model>_detect.nms` setting).

  "greedy": `class_wise_nms` at IoU `nms_threshold`, scores unchanged. "soft_gaussian" / "soft_linear":
  `class_wise_soft_nms` with `soft_nms_sigma` / IoU threshold `nms_threshold`, `soft_nms_score_floor` and
  `soft_nms_top_n`.

  Returns:
    `(keep, new_scores)`: kept indices [K] and their (possibly decayed) scores [K], by descending score.
  """
  check_nms_settings(nms, nms_threshold, soft_nms_sigma, soft_nms_score_floor, soft_nms_top_n)
  if nms == "greedy":
    keep = class_wise_nms(starts, ends, scores, classes, nms_threshold)
    return keep, np.asarray(scores, dtype=np.float64)[keep]
  return class_wise_soft_nms(starts, ends, scores, classes, method=nms[len("soft_"):], sigma=soft_nms_sigma,
                             iou_threshold=nms_threshold, score_floor=soft_nms_score_floor, top_n=soft_nms_top_n)
