"""Temporal IoU and class-wise greedy non-maximum suppression (NumPy only).

STPN (Nguyen et al. 2018, end of Sec. 3.4): "we perform non-maximum suppression among temporal proposals of each
class independently to remove highly overlapped detections". The same class-wise NMS is used by Nguyen et al. 2019
(overlap threshold 0.5), AUMN (0.3) and HAM-Net.

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


def class_wise_nms(
    starts: np.ndarray,
    ends: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    iou_threshold: float,
) -> np.ndarray:
  """Greedy NMS run independently for each class.

  Within a class, proposals are visited by descending score (ties: lower index first); the best remaining one is
  kept and every remaining proposal of the same class whose IoU with it is strictly greater than `iou_threshold`
  is dropped. Proposals of different classes never suppress each other. The Python loop runs once per kept
  proposal; each step is vectorized over the remaining proposals of that class.

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
  if np.isnan(starts).any() or np.isnan(ends).any() or np.isnan(scores).any():
    raise ValueError("starts, ends and scores must not contain NaN")
  if np.any(ends < starts):
    raise ValueError("an interval has end < start")
  if n == 0:
    return np.zeros(0, dtype=np.int64)

  # Global order: descending score, stable so ties keep input order. Then a second stable sort groups by class
  # while keeping that order inside each group.
  by_score = np.argsort(-scores, kind="stable")  # [N]
  order = by_score[np.argsort(classes[by_score], kind="stable")]  # [N], grouped by class, score-descending.
  group_bounds = np.flatnonzero(np.diff(classes[order])) + 1
  lengths = ends - starts
  kept = []
  for group in np.split(order, group_bounds):
    remaining = group
    while remaining.size:
      best = remaining[0]
      kept.append(best)
      rest = remaining[1:]
      inter = np.clip(np.minimum(ends[best], ends[rest]) - np.maximum(starts[best], starts[rest]), 0.0, None)
      union = lengths[best] + lengths[rest] - inter
      iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
      remaining = rest[iou <= iou_threshold]
  kept = np.asarray(kept, dtype=np.int64)
  # Back to a global descending-score order so callers can truncate to the top detections.
  return kept[np.lexsort((kept, -scores[kept]))]  # Primary key -score, ties by index.
