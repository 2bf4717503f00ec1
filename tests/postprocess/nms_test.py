"""Tests for stpn_tf.postprocess.nms."""

import numpy as np
import pytest

from stpn_tf.postprocess import nms


def test_interval_iou_by_hand():
  a = np.array([[0.0, 10.0], [2.0, 4.0]])
  b = np.array([[5.0, 15.0], [10.0, 20.0], [0.0, 10.0], [2.0, 4.0]])
  iou = nms.interval_iou(a, b)
  expected = np.array([
      [5 / 15, 0.0, 1.0, 2 / 10],  # Touching at 10 is no overlap.
      [0.0, 0.0, 2 / 10, 1.0],
  ])
  np.testing.assert_allclose(iou, expected)


def test_interval_iou_degenerate_and_errors():
  np.testing.assert_allclose(nms.interval_iou([[3.0, 3.0]], [[3.0, 3.0], [0.0, 6.0]]), [[0.0, 0.0]])
  assert nms.interval_iou(np.zeros((0, 2)), [[0.0, 1.0]]).shape == (0, 1)
  with pytest.raises(ValueError, match="end < start"):
    nms.interval_iou([[2.0, 1.0]], [[0.0, 1.0]])
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
    nms.interval_iou([0.0, 1.0], [[0.0, 1.0]])


def test_nms_suppresses_within_class_only():
  starts = np.array([0.0, 1.0, 20.0, 0.0])
  ends = np.array([10.0, 11.0, 30.0, 10.0])
  scores = np.array([0.9, 0.8, 0.7, 0.5])
  classes = np.array([0, 0, 0, 1])
  # IoU(0, 1) = 9 / 11 > 0.5 -> 1 suppressed; 2 does not overlap; 3 is identical to 0 but another class.
  keep = nms.class_wise_nms(starts, ends, scores, classes, 0.5)
  np.testing.assert_array_equal(keep, [0, 2, 3])


def test_nms_threshold_is_strict():
  # IoU([0, 10], [0, 5]) = 0.5 exactly: kept at threshold 0.5, suppressed at 0.4.
  args = (np.array([0.0, 0.0]), np.array([10.0, 5.0]), np.array([0.9, 0.8]), np.array([2, 2]))
  np.testing.assert_array_equal(nms.class_wise_nms(*args, 0.5), [0, 1])
  np.testing.assert_array_equal(nms.class_wise_nms(*args, 0.4), [0])


def test_nms_is_greedy_suppressed_boxes_do_not_suppress():
  # A=[0,10] .9, B=[6,16] .8, C=[12,22] .7: IoU(A,B) = IoU(B,C) = 0.25, IoU(A,C) = 0.
  # At 0.2 B is suppressed by A; C overlaps only the suppressed B, so it survives.
  starts = np.array([12.0, 0.0, 6.0])  # Input order C, A, B: the result follows scores, not input order.
  ends = np.array([22.0, 10.0, 16.0])
  scores = np.array([0.7, 0.9, 0.8])
  keep = nms.class_wise_nms(starts, ends, scores, np.zeros(3, dtype=int), 0.2)
  np.testing.assert_array_equal(keep, [1, 0])


def test_nms_output_sorted_by_score_across_classes_and_ties_by_index():
  starts = np.array([0.0, 0.0, 50.0, 0.0])
  ends = np.array([10.0, 10.0, 60.0, 10.0])
  scores = np.array([0.3, 0.9, 0.9, 0.3])
  classes = np.array([1, 0, 1, 2])
  np.testing.assert_array_equal(nms.class_wise_nms(starts, ends, scores, classes, 0.5), [1, 2, 0, 3])


def test_nms_empty_and_errors():
  empty = np.zeros(0)
  assert nms.class_wise_nms(empty, empty, empty, empty.astype(int), 0.5).size == 0
  with pytest.raises(ValueError, match="same length"):
    nms.class_wise_nms(np.zeros(2), np.ones(3), np.zeros(2), np.zeros(2), 0.5)
  with pytest.raises(ValueError, match="NaN"):
    nms.class_wise_nms(np.zeros(1), np.ones(1), np.array([np.nan]), np.zeros(1), 0.5)
  with pytest.raises(ValueError, match="iou_threshold"):
    nms.class_wise_nms(np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1), 1.5)


def _reference_greedy_nms(starts, ends, scores, classes, iou_threshold):
  """Textbook greedy NMS, one class at a time, one proposal at a time (slow, for cross-checking)."""
  kept = []
  for c in np.unique(classes):
    members = [i for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)) if classes[i] == c]
    while members:
      best = members.pop(0)
      kept.append(best)
      ious = nms.interval_iou([[starts[best], ends[best]]], [[starts[j], ends[j]] for j in members])[0] \
          if members else []
      members = [j for j, iou in zip(members, ious) if iou <= iou_threshold]
  return sorted(kept, key=lambda i: (-scores[i], i))


@pytest.mark.parametrize("seed", range(6))
def test_nms_matches_reference_greedy_loop(seed):
  rng = np.random.default_rng(seed)
  n = 150
  # Integer grid intervals as produced by thresholding (many nested and shared boundaries), a few equal scores.
  starts = rng.integers(0, 60, n).astype(float)
  ends = starts + rng.integers(1, 25, n)
  scores = np.round(rng.random(n), 1)
  classes = rng.integers(0, 3, n)
  for threshold in (0.0, 0.3, 0.5, 0.7, 1.0):
    expected = _reference_greedy_nms(starts, ends, scores, classes, threshold)
    np.testing.assert_array_equal(nms.class_wise_nms(starts, ends, scores, classes, threshold), expected)


def test_nms_long_suppression_chain():
  # Sliding windows [i, i + 10] with decreasing scores: IoU(i, i + k) = (10 - k) / (10 + k), > 0.5 for k <= 3.
  # Greedy keeps 0, suppresses 1-3, keeps 4, ...: every decision depends on the previous one.
  starts = np.arange(40, dtype=float)
  ends = starts + 10
  scores = -starts
  expected = _reference_greedy_nms(starts, ends, scores, np.zeros(40, dtype=int), 0.5)
  np.testing.assert_array_equal(expected, [0, 4, 8, 12, 16, 20, 24, 28, 32, 36])  # IoU(0, 4) = 6/14 <= 0.5.
  np.testing.assert_array_equal(nms.class_wise_nms(starts, ends, scores, np.zeros(40, dtype=int), 0.5), expected)


# Soft-NMS. Three proposals of class 0: A = [0, 10] 0.9, B = [5, 15] 0.8, C = [20, 30] 0.7, and D = [0, 10] 0.6 of
# class 1. IoU(A, B) = 5 / 15 = 1/3, IoU(A, C) = IoU(B, C) = 0.
SOFT_ARGS = (np.array([0.0, 5.0, 20.0, 0.0]), np.array([10.0, 15.0, 30.0, 10.0]), np.array([0.9, 0.8, 0.7, 0.6]),
             np.array([0, 0, 0, 1]))


def test_soft_nms_gaussian_by_hand():
  keep, scores = nms.class_wise_soft_nms(*SOFT_ARGS, method="gaussian", sigma=0.3)
  decayed_b = 0.8 * np.exp(-(1 / 3) ** 2 / 0.3)          # = 0.8 * exp(-0.37037) = 0.55238
  np.testing.assert_allclose(decayed_b, 0.552383, atol=1e-6)
  # A, C (untouched: IoU 0), D (another class: untouched although identical to A), then decayed B.
  np.testing.assert_array_equal(keep, [0, 2, 3, 1])
  np.testing.assert_allclose(scores, [0.9, 0.7, 0.6, decayed_b], rtol=1e-12)


def test_soft_nms_linear_by_hand():
  # IoU(A, B) = 1/3 > 0.3: B decays to 0.8 * (1 - 1/3) and falls behind C and D.
  keep, scores = nms.class_wise_soft_nms(*SOFT_ARGS, method="linear", iou_threshold=0.3)
  np.testing.assert_array_equal(keep, [0, 2, 3, 1])
  np.testing.assert_allclose(scores, [0.9, 0.7, 0.6, 0.8 * 2 / 3], rtol=1e-12)
  # At 0.4 the overlap is below the threshold: nothing decays.
  keep, scores = nms.class_wise_soft_nms(*SOFT_ARGS, method="linear", iou_threshold=0.4)
  np.testing.assert_array_equal(keep, [0, 1, 2, 3])
  np.testing.assert_allclose(scores, [0.9, 0.8, 0.7, 0.6], rtol=1e-12)


# A chain where the second selection decays again: A = [0, 10] 1.0, B = [2, 12] 0.9, C = [4, 14] 0.85, one class.
# IoU(A, B) = 8/12, IoU(A, C) = 6/14, IoU(B, C) = 8/12. sigma = 0.5.
CHAIN = (np.array([0.0, 2.0, 4.0]), np.array([10.0, 12.0, 14.0]), np.array([1.0, 0.9, 0.85]), np.zeros(3, int))
W_AB = np.exp(-(8 / 12) ** 2 / 0.5)      # 0.41111
W_AC = np.exp(-(6 / 14) ** 2 / 0.5)      # 0.69257


def test_soft_nms_decays_sequentially_by_hand():
  # Select A; B -> 0.9 * 0.41111 = 0.37000, C -> 0.85 * 0.69257 = 0.58868; select C; B -> 0.37000 * 0.41111.
  keep, scores = nms.class_wise_soft_nms(*CHAIN, method="gaussian", sigma=0.5)
  np.testing.assert_array_equal(keep, [0, 2, 1])
  np.testing.assert_allclose(scores, [1.0, 0.85 * W_AC, 0.9 * W_AB * W_AB], rtol=1e-12)
  np.testing.assert_allclose(scores, [1.0, 0.588684, 0.152112], atol=1e-6)


def test_soft_nms_score_floor_and_top_n():
  keep, scores = nms.class_wise_soft_nms(*CHAIN, method="gaussian", sigma=0.5, score_floor=0.2)
  np.testing.assert_array_equal(keep, [0, 2])                 # B's 0.152 is below the floor
  keep, scores = nms.class_wise_soft_nms(*CHAIN, method="gaussian", sigma=0.5, top_n=1)
  np.testing.assert_array_equal(keep, [0])
  # Per class: top_n = 1 keeps the best of each class.
  keep, _ = nms.class_wise_soft_nms(*SOFT_ARGS, method="gaussian", sigma=0.3, top_n=1)
  np.testing.assert_array_equal(keep, [0, 3])


def test_soft_nms_negative_scores_move_towards_zero_and_ties_by_index():
  # Identical intervals (IoU 1): the second one's -0.5 becomes -0.5 * exp(-1 / 0.5), as in HAM-Net's code.
  keep, scores = nms.class_wise_soft_nms([0.0, 0.0], [4.0, 4.0], [1.0, -0.5], [0, 0], sigma=0.5)
  np.testing.assert_array_equal(keep, [0, 1])
  np.testing.assert_allclose(scores, [1.0, -0.5 * np.exp(-2.0)], rtol=1e-12)
  # Equal scores in disjoint intervals: lower index first.
  keep, _ = nms.class_wise_soft_nms([10.0, 0.0], [12.0, 2.0], [0.5, 0.5], [0, 0])
  np.testing.assert_array_equal(keep, [0, 1])


def test_suppress_dispatches_and_validates():
  keep, scores = nms.suppress(*SOFT_ARGS, nms="greedy", nms_threshold=0.3)
  np.testing.assert_array_equal(keep, [0, 2, 3])              # B suppressed, scores unchanged
  np.testing.assert_allclose(scores, [0.9, 0.7, 0.6])
  keep, scores = nms.suppress(*SOFT_ARGS, nms="soft_gaussian", soft_nms_sigma=0.3)
  np.testing.assert_array_equal(keep, [0, 2, 3, 1])
  keep, scores = nms.suppress(*SOFT_ARGS, nms="soft_linear", nms_threshold=0.3)
  np.testing.assert_allclose(scores[-1], 0.8 * 2 / 3)
  for bad, match in [({"nms": "soft"}, "nms must be one of"), ({"soft_nms_sigma": 0.0}, "soft_nms_sigma"),
                     ({"soft_nms_top_n": 0}, "soft_nms_top_n"), ({"soft_nms_score_floor": float("nan")}, "floor")]:
    with pytest.raises(ValueError, match=match):
      nms.suppress(*SOFT_ARGS, **bad)
