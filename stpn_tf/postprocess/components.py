"""One-dimensional connected components of boolean masks (NumPy only).

STPN (Nguyen et al., CVPR 2018, Sec. 3.4) turns a thresholded weighted T-CAM
into temporal proposals by taking the one-dimensional connected components of
the segments that pass the threshold; the follow-up models (Nguyen et al.
ICCV 2019 Sec. 3.2, AUMN Sec. 3.3, HAM-Net "Temporal Action Localization") do
the same on the thresholded attention. Everything here is vectorized with
``np.diff`` on a mask padded with False on both sides: a run of ``True`` values
starts where the padded mask steps 0 -> 1 and ends one index before it steps
1 -> 0. There is no Python loop over segments or components.
"""

from __future__ import annotations

import numpy as np


def _as_bool_mask(mask: np.ndarray, ndim: int) -> np.ndarray:
  """Checks the rank of a mask and returns it as a boolean array.

  Args:
    mask: array-like mask, boolean (or 0/1) values.
    ndim: expected rank.

  Returns:
    The mask as a ``bool`` ndarray.

  Raises:
    ValueError: if the rank is not ``ndim``.
  """
  mask = np.asarray(mask)
  if mask.ndim != ndim:
    raise ValueError(
        f"mask must have rank {ndim}, got shape {mask.shape}")
  if mask.dtype != np.bool_:
    mask = mask.astype(bool)
  return mask


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Runs of ``True`` in a 1-D mask as inclusive index intervals.

  Used for STPN Sec. 3.4 proposals ("the one-dimensional connected components
  extracted from each stream").

  Args:
    mask: bool array [T].

  Returns:
    ``(starts, ends)``, two int64 arrays [K] with ``starts[k] <= ends[k]``;
    component k covers mask indices ``starts[k] .. ends[k]`` inclusive. Sorted
    by start. Empty arrays for an all-False or empty mask.

  Raises:
    ValueError: if ``mask`` is not 1-D.
  """
  mask = _as_bool_mask(mask, 1)
  # Pad with False on both sides so runs touching index 0 or T-1 still
  # produce a rising and a falling edge.
  padded = np.zeros(mask.shape[0] + 2, dtype=np.int8)  # [T + 2]
  padded[1:-1] = mask
  edges = np.diff(padded)  # [T + 1]; +1 at a run start, -1 after a run end.
  starts = np.flatnonzero(edges == 1)
  ends = np.flatnonzero(edges == -1) - 1
  return starts.astype(np.int64), ends.astype(np.int64)


def connected_components_batched(
    mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Connected components of every row of a 2-D mask at once.

  Rows are independent (no component crosses a row boundary); this is how
  several classes and several thresholds are segmented in one vectorized
  call: stack the per-(threshold, class) masks as rows.

  Args:
    mask: bool array [N, T].

  Returns:
    ``(rows, starts, ends)``, three int64 arrays [K]: component k lies in row
    ``rows[k]`` and covers indices ``starts[k] .. ends[k]`` inclusive. Ordered
    by row, then by start.

  Raises:
    ValueError: if ``mask`` is not 2-D.
  """
  mask = _as_bool_mask(mask, 2)
  num_rows, length = mask.shape
  padded = np.zeros((num_rows, length + 2), dtype=bool)  # [N, T + 2]
  padded[:, 1:-1] = mask
  # Change points: changes[r, i] is True where padded[r, i] != padded[r, i + 1], i.e. a run starts at mask index i
  # or the run ending at mask index i - 1 stops. Inside a row they alternate start, stop, start, ... because the
  # padding is False on both sides, so one flatnonzero gives both (one pass instead of two np.nonzero calls).
  changes = np.diff(padded, axis=1)  # [N, T + 1]; np.diff of a bool array is the XOR of neighbours.
  flat = np.flatnonzero(changes)  # [2K], row-major.
  rows, positions = np.divmod(flat, length + 1)
  return rows[0::2], positions[0::2], positions[1::2] - 1
