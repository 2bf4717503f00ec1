"""Tests for stpn_tf.postprocess.components."""

import numpy as np
import pytest

from stpn_tf.postprocess import components


def test_components_interior_and_edges():
  mask = np.array([1, 1, 0, 1, 0, 0, 1], dtype=bool)  # Runs touch both ends of the array.
  starts, ends = components.connected_components(mask)
  np.testing.assert_array_equal(starts, [0, 3, 6])
  np.testing.assert_array_equal(ends, [1, 3, 6])
  assert starts.dtype == np.int64 and ends.dtype == np.int64


def test_components_all_true_all_false_and_empty():
  starts, ends = components.connected_components(np.ones(5, dtype=bool))
  np.testing.assert_array_equal(starts, [0])
  np.testing.assert_array_equal(ends, [4])
  for mask in (np.zeros(5, dtype=bool), np.zeros(0, dtype=bool)):
    starts, ends = components.connected_components(mask)
    assert starts.size == 0 and ends.size == 0


def test_components_single_element_and_int_mask():
  starts, ends = components.connected_components(np.array([True]))
  np.testing.assert_array_equal(starts, [0])
  np.testing.assert_array_equal(ends, [0])
  starts, ends = components.connected_components(np.array([0, 1, 1, 0, 1]))  # 0/1 ints are accepted.
  np.testing.assert_array_equal(starts, [1, 4])
  np.testing.assert_array_equal(ends, [2, 4])


def test_components_rejects_wrong_rank():
  with pytest.raises(ValueError, match="rank 1"):
    components.connected_components(np.zeros((2, 3), dtype=bool))
  with pytest.raises(ValueError, match="rank 2"):
    components.connected_components_batched(np.zeros(3, dtype=bool))


def test_batched_components_by_hand():
  mask = np.array([[1, 0, 1],
                   [0, 0, 0],
                   [1, 1, 1],
                   [0, 1, 0]], dtype=bool)
  rows, starts, ends = components.connected_components_batched(mask)
  np.testing.assert_array_equal(rows, [0, 0, 2, 3])
  np.testing.assert_array_equal(starts, [0, 2, 0, 1])
  np.testing.assert_array_equal(ends, [0, 2, 2, 1])


def test_batched_components_do_not_cross_rows():
  # Row 0 ends with True and row 1 starts with True: flattened they would merge into one run.
  mask = np.array([[0, 1, 1], [1, 1, 0]], dtype=bool)
  rows, starts, ends = components.connected_components_batched(mask)
  np.testing.assert_array_equal(rows, [0, 1])
  np.testing.assert_array_equal(starts, [1, 0])
  np.testing.assert_array_equal(ends, [2, 1])


def test_batched_matches_row_by_row():
  rng = np.random.default_rng(0)
  mask = rng.random((6, 40)) > 0.5
  rows, starts, ends = components.connected_components_batched(mask)
  for r in range(mask.shape[0]):
    expected_starts, expected_ends = components.connected_components(mask[r])
    np.testing.assert_array_equal(starts[rows == r], expected_starts)
    np.testing.assert_array_equal(ends[rows == r], expected_ends)
    # Every component is all True and bounded by False (or the array edge).
    for s, e in zip(expected_starts, expected_ends):
      assert mask[r, s:e + 1].all()
      assert s == 0 or not mask[r, s - 1]
      assert e == mask.shape[1] - 1 or not mask[r, e + 1]


def test_batched_empty_shapes():
  rows, starts, ends = components.connected_components_batched(np.zeros((3, 0), dtype=bool))
  assert rows.size == starts.size == ends.size == 0
