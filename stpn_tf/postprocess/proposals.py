"""Temporal proposal generation: signal interpolation and multi-threshold segmentation (NumPy only).

Time grid convention (shared with `stpn_inference.segments_to_seconds`): feature segment i of a video sampled at
`rate` segments per second covers [i / rate, (i + 1) / rate) seconds and its value is taken to sit at the segment
centre. Interpolating by an integer `factor` splits every segment into `factor` equal sub-segments; sub-segment j
covers [j / (rate * factor), (j + 1) / (rate * factor)) seconds, so an inclusive proposal [s, e] on the
interpolated grid is [s / (rate * factor), (e + 1) / (rate * factor)] seconds. With factor 1 this is the plain
segment grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stpn_tf.postprocess import components


def interpolate(signal: np.ndarray, factor: int) -> np.ndarray:
  """Linear interpolation along time (STPN Sec. 3.4, "we linearly interpolate the weighted T-CAM signals").

  Output sample j (of T * factor) sits at the centre of sub-segment j, which in original index units (segment i's
  centre at i) is x_j = (j + 0.5) / factor - 0.5. The value is the linear interpolation between the two nearest
  original samples; for x_j before the first centre or after the last one (the outer half segment at each end) the
  edge value is held, since there is nothing to interpolate towards. `factor == 1` returns the signal unchanged
  (x_j = j), so the interpolated index j maps back to segment time [j / factor, (j + 1) / factor) in original
  segment units (see the module docstring for seconds).

  Args:
    signal: float array [T] or [T, C].
    factor: integer >= 1, number of sub-segments per segment.

  Returns:
    float array [T * factor] or [T * factor, C] (a copy, also for factor 1).

  Raises:
    ValueError: if factor is not an integer >= 1 or the signal is not rank 1 or 2.
  """
  signal = np.asarray(signal)
  if signal.ndim not in (1, 2):
    raise ValueError(f"signal must be [T] or [T, C], got shape {signal.shape}")
  if isinstance(factor, (bool, np.bool_)) or int(factor) != factor or factor < 1:
    raise ValueError(f"interpolation factor must be an integer >= 1, got {factor!r}")
  factor = int(factor)
  length = signal.shape[0]
  if factor == 1 or length == 0:
    return np.repeat(signal, factor, axis=0).astype(np.result_type(signal, np.float32), copy=True)
  # Positions of the new samples in original index units, clamped so the edge half segments hold the edge value.
  x = (np.arange(length * factor) + 0.5) / factor - 0.5  # [T * factor]
  x = np.clip(x, 0.0, length - 1)
  left = np.minimum(np.floor(x).astype(np.int64), max(length - 2, 0))  # [T * factor]
  right = np.minimum(left + 1, length - 1)
  weight = x - left  # In [0, 1]; exactly 1 only at the last sample, where right == left + 1 still holds.
  if signal.ndim == 2:
    weight = weight[:, None]  # [T * factor, 1], broadcast over classes.
  out = (1.0 - weight) * signal[left] + weight * signal[right]
  return out.astype(np.result_type(signal, np.float32), copy=False)


def _as_thresholds(thresholds: float | Sequence[float] | np.ndarray) -> np.ndarray:
  """Returns thresholds as a sorted unique finite float64 array [K] (K >= 1).

  Raises:
    ValueError: if there is no threshold or one is not finite.
  """
  values = np.unique(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
  if values.ndim != 1 or values.size == 0:
    raise ValueError(f"need at least one threshold, got {thresholds!r}")
  if not np.all(np.isfinite(values)):
    raise ValueError(f"thresholds must be finite, got {thresholds!r}")
  return values


def threshold_proposals(
    signal: np.ndarray,
    thresholds: float | Sequence[float] | np.ndarray,
    keep_repeats: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Proposals as connected components of `signal > threshold`, pooled over several thresholds.

  STPN Sec. 3.4 thresholds each weighted T-CAM once; Nguyen et al. ICCV 2019 Sec. 3.2/4.2 and HAM-Net pool the
  proposals of a set of thresholds. A segment is foreground when its value is strictly above the threshold (so a
  threshold of 0 on a non-negative signal drops exact zeros). All (threshold, class) rows are segmented in one
  vectorized call.

  The same (class, start, end) found at several thresholds is returned once, without sorting: runs are nested
  across thresholds (foreground at a higher threshold is foreground at every lower one), so a run [s, e] at
  threshold k is also a run at the next lower threshold k-1 exactly when segments s-1 and e+1 (where they exist)
  are background at k-1. Such runs are dropped, which keeps each distinct interval at the lowest threshold that
  produces it. `keep_repeats=True` keeps every copy instead (HAM-Net's code pools the proposals of all thresholds
  as they are, so an interval found at k thresholds enters its soft-NMS k times).

  Args:
    signal: float array [T, C] (one column per class; use signal[:, None] for a class-agnostic signal).
    thresholds: one threshold or a sequence of them (order and repeats do not matter).
    keep_repeats: keep an interval once per threshold that produces it.

  Returns:
    `(classes, starts, ends)`, int64 arrays [P]: proposal p is column `classes[p]`, inclusive indices
    `starts[p] .. ends[p]`. Ordered by the (ascending) threshold that first produces the interval, then class, then
    start; no duplicates.

  Raises:
    ValueError: on a signal that is not [T, C], NaN in the signal, or bad thresholds.
  """
  signal = np.asarray(signal)
  if signal.ndim != 2:
    raise ValueError(f"signal must be [T, C], got shape {signal.shape}")
  if np.isnan(signal).any():
    raise ValueError("signal contains NaN")
  values = _as_thresholds(thresholds)  # [K], ascending, unique.
  length, num_classes = signal.shape
  empty = np.zeros(0, dtype=np.int64)
  if length == 0 or num_classes == 0:
    return empty, empty, empty.copy()
  # mask[k, c, t] = signal[t, c] > thresholds[k]; rows of the flattened mask are (threshold, class) pairs.
  mask = np.ascontiguousarray(signal.T)[None, :, :] > values[:, None, None]  # [K, C, T]
  rows, starts, ends = components.connected_components_batched(mask.reshape(-1, length))  # [R] each
  if keep_repeats:
    return rows % num_classes, starts, ends
  # Duplicate test against the row of the same class one threshold lower (row - C), on the flat mask.
  flat = mask.reshape(-1)
  lower_row_offset = (rows - num_classes) * length  # [R]; negative for the lowest threshold (never a duplicate).
  left_is_background = (starts == 0) | ~flat[np.maximum(lower_row_offset + starts - 1, 0)]
  right_is_background = (ends == length - 1) | ~flat[np.maximum(lower_row_offset + ends + 1, 0)]
  fresh = (rows < num_classes) | ~(left_is_background & right_is_background)  # [R]
  return rows[fresh] % num_classes, starts[fresh], ends[fresh]
