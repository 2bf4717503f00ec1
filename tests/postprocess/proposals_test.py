"""Tests for stpn_tf.postprocess.proposals."""

import numpy as np
import pytest

from stpn_tf.postprocess import components
from stpn_tf.postprocess import proposals


def test_interpolate_factor_one_is_identity_copy():
  signal = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
  out = proposals.interpolate(signal, 1)
  np.testing.assert_array_equal(out, signal)
  out[0, 0] = 9.0
  assert signal[0, 0] == 0.1  # A copy, not a view.


def test_interpolate_factor_two_by_hand():
  # New samples at x = (j + 0.5) / 2 - 0.5 = -0.25, 0.25, ..., 2.25; the outer half segments hold the edge value.
  out = proposals.interpolate(np.array([0.0, 2.0, 4.0]), 2)
  np.testing.assert_allclose(out, [0.0, 0.5, 1.5, 2.5, 3.5, 4.0])


def test_interpolate_factor_three_by_hand_2d():
  # x = -1/3, 0, 1/3, 2/3, 1, 4/3 -> clamped to 0, 0, 1/3, 2/3, 1, 1.
  signal = np.array([[0.0, 6.0], [3.0, 0.0]])
  out = proposals.interpolate(signal, 3)
  np.testing.assert_allclose(out[:, 0], [0.0, 0.0, 1.0, 2.0, 3.0, 3.0])
  np.testing.assert_allclose(out[:, 1], [6.0, 6.0, 4.0, 2.0, 0.0, 0.0])


def test_interpolate_single_sample_and_empty():
  np.testing.assert_allclose(proposals.interpolate(np.array([0.7]), 3), [0.7, 0.7, 0.7])
  assert proposals.interpolate(np.zeros((0, 4)), 2).shape == (0, 4)


def test_interpolate_rejects_bad_factor():
  for factor in (0, -1, 1.5):
    with pytest.raises(ValueError, match="factor"):
      proposals.interpolate(np.zeros(3), factor)


def test_threshold_proposals_multi_threshold_by_hand():
  signal = np.array([[0.1, 0.9],
                     [0.6, 0.9],
                     [0.7, 0.1]])  # [T=3, C=2]
  classes, starts, ends = proposals.threshold_proposals(signal, [0.5, 0.05])
  # Ascending thresholds first: > 0.05 -> class 0 [0, 2], class 1 [0, 2]; > 0.5 -> class 0 [1, 2], class 1 [0, 1].
  np.testing.assert_array_equal(classes, [0, 1, 0, 1])
  np.testing.assert_array_equal(starts, [0, 0, 1, 0])
  np.testing.assert_array_equal(ends, [2, 2, 2, 1])


def test_threshold_proposals_removes_duplicates_across_thresholds():
  signal = np.array([[0.0], [0.8], [0.9], [0.0], [0.95]])
  # Thresholds 0.2, 0.3 and 0.5 all give the same two components.
  classes, starts, ends = proposals.threshold_proposals(signal, [0.2, 0.3, 0.5])
  np.testing.assert_array_equal(classes, [0, 0])
  np.testing.assert_array_equal(starts, [1, 4])
  np.testing.assert_array_equal(ends, [2, 4])


def test_threshold_proposals_duplicate_only_at_same_boundaries():
  # At 0.5 the run [1, 2] equals the 0.2 run; at 0.7 the run [2, 2] is new (its neighbour 1 is above 0.5).
  # A run touching the array edge ([4, 4] with no right neighbour) is a duplicate only if it is a run lower too.
  signal = np.array([[0.1], [0.6], [0.8], [0.1], [0.9]])
  classes, starts, ends = proposals.threshold_proposals(signal, [0.7, 0.2, 0.5])
  np.testing.assert_array_equal(classes, [0, 0, 0])
  np.testing.assert_array_equal(starts, [1, 4, 2])
  np.testing.assert_array_equal(ends, [2, 4, 2])


def test_threshold_proposals_matches_per_threshold_loop():
  rng = np.random.default_rng(0)
  for _ in range(50):
    signal = np.round(rng.random((int(rng.integers(1, 25)), int(rng.integers(1, 4)))), 1)  # Ties with thresholds.
    thresholds = np.round(rng.random(int(rng.integers(1, 6))), 1)
    expected = set()
    for threshold in thresholds:
      for c in range(signal.shape[1]):
        starts, ends = components.connected_components(signal[:, c] > threshold)
        expected |= {(c, s, e) for s, e in zip(starts.tolist(), ends.tolist())}
    classes, starts, ends = proposals.threshold_proposals(signal, thresholds)
    got = list(zip(classes.tolist(), starts.tolist(), ends.tolist()))
    assert len(got) == len(set(got))
    assert set(got) == expected


def test_threshold_proposals_is_strict_and_accepts_scalar():
  signal = np.array([[0.5], [0.6], [0.5]])
  classes, starts, ends = proposals.threshold_proposals(signal, 0.5)  # 0.5 itself is not foreground.
  np.testing.assert_array_equal(classes, [0])
  np.testing.assert_array_equal(starts, [1])
  np.testing.assert_array_equal(ends, [1])


def test_threshold_proposals_empty_and_errors():
  classes, starts, ends = proposals.threshold_proposals(np.zeros((0, 3)), [0.1, 0.2])
  assert classes.size == starts.size == ends.size == 0
  classes, _, _ = proposals.threshold_proposals(np.zeros((4, 2)), 0.5)
  assert classes.size == 0
  with pytest.raises(ValueError, match="NaN"):
    proposals.threshold_proposals(np.array([[np.nan], [1.0]]), 0.5)
  with pytest.raises(ValueError, match=r"\[T, C\]"):
    proposals.threshold_proposals(np.zeros(4), 0.5)
  with pytest.raises(ValueError, match="at least one threshold"):
    proposals.threshold_proposals(np.zeros((4, 2)), [])


def test_threshold_proposals_keep_repeats_keeps_one_copy_per_threshold():
  # HAM-Net's code pools the proposals of every threshold as they are: the two components three times each.
  signal = np.array([[0.0], [0.8], [0.9], [0.0], [0.95]])
  classes, starts, ends = proposals.threshold_proposals(signal, [0.2, 0.3, 0.5], keep_repeats=True)
  np.testing.assert_array_equal(classes, [0] * 6)
  np.testing.assert_array_equal(starts, [1, 4, 1, 4, 1, 4])
  np.testing.assert_array_equal(ends, [2, 4, 2, 4, 2, 4])
  # A component that exists only at the lower threshold appears once.
  _, starts, ends = proposals.threshold_proposals(signal, [0.85, 0.5], keep_repeats=True)
  np.testing.assert_array_equal(starts, [1, 4, 2, 4])
  np.testing.assert_array_equal(ends, [2, 4, 2, 4])
