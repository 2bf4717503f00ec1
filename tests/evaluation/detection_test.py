"""Hand-computed cases for the ActivityNet-protocol detection mAP."""

import numpy as np
import pandas as pd
import pytest

from stpn_tf.evaluation import detection
from stpn_tf.evaluation.io import EvaluationInputError


def _gt(rows):
  """rows: (video_id, label, start, end)."""
  return pd.DataFrame(rows, columns=["video_id", "label", "t_start", "t_end"])


def _pred(rows):
  """rows: (video_id, label, start, end, score)."""
  return pd.DataFrame(rows, columns=["video_id", "label", "t_start", "t_end", "score"])


def _ap(gt_rows, pred_rows, thresholds, **kwargs):
  return detection.compute_detection_ap(_gt(gt_rows), _pred(pred_rows), thresholds, **kwargs)


def test_interval_tiou_values():
  iou = detection.interval_tiou([[0.0, 10.0]], [[5.0, 15.0], [10.0, 20.0], [0.0, 10.0], [2.0, 4.0], [-5.0, 25.0]])
  # 5/15, touching ends share nothing, identical, contained 2/10, containing 10/30.
  np.testing.assert_allclose(iou, [[1 / 3, 0.0, 1.0, 0.2, 1 / 3]])
  assert detection.interval_tiou(np.zeros((0, 2)), [[0.0, 1.0]]).shape == (0, 1)


def test_interval_tiou_two_empty_intervals_is_zero():
  # Union 0: defined as 0 (the reference divides by zero).
  np.testing.assert_array_equal(detection.interval_tiou([[3.0, 3.0]], [[3.0, 3.0], [3.0, 5.0]]), [[0.0, 0.0]])


def test_single_perfect_detection_has_ap_one():
  result = _ap([("v1", "A", 0, 10)], [("v1", "A", 0, 10, 0.9)], [0.5])
  np.testing.assert_allclose(result.mAP, [1.0])


def test_duplicate_detection_of_one_instance_is_false_positive():
  # Ranked: dup1 TP (A1), dup2 FP (A1 taken, A2 has tIoU 0), third TP (A2).
  # precision [1, 1/2, 2/3], recall [1/2, 1/2, 1]; envelope [1, 2/3, 2/3] -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
  result = _ap([("v1", "A", 0, 10), ("v1", "A", 20, 30)],
               [("v1", "A", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8), ("v1", "A", 20, 30, 0.7)], [0.5])
  np.testing.assert_allclose(result.ap, [[5 / 6]])


def test_prediction_falls_to_second_best_instance_when_best_is_taken():
  # GT a=[0,10], b=[4,14]. p1=[0,10] takes a (tIoU 1). p2=[1,11]: tIoU a=9/11, b=7/13=0.538.
  # At 0.5, a is taken so p2 takes b: AP 1. At 0.6, b is below threshold: p2 is FP -> AP 1/2.
  result = _ap([("v1", "A", 0, 10), ("v1", "A", 4, 14)],
               [("v1", "A", 0, 10, 0.9), ("v1", "A", 1, 11, 0.8)], [0.5, 0.6])
  np.testing.assert_allclose(result.ap[:, 0], [1.0, 0.5])


def test_matching_is_independent_per_threshold():
  # p1=[0,6] vs a=[0,10]: tIoU 0.6. At 0.7 p1 is FP and does not take a, so p2=[0,10] can; at 0.5 p1 takes a.
  result = _ap([("v1", "A", 0, 10)], [("v1", "A", 0, 6, 0.9), ("v1", "A", 0, 10, 0.8)], [0.5, 0.7])
  # 0.5: tp [1, 0] -> AP 1. 0.7: tp [0, 1], precision [0, 1/2], recall [0, 1] -> AP 1/2.
  np.testing.assert_allclose(result.ap[:, 0], [1.0, 0.5])


def test_class_with_ground_truth_and_no_predictions_scores_zero():
  result = _ap([("v1", "A", 0, 10), ("v1", "B", 20, 30)], [("v1", "A", 0, 10, 0.9)], [0.5])
  assert result.labels == ("A", "B")
  np.testing.assert_allclose(result.ap, [[1.0, 0.0]])
  np.testing.assert_allclose(result.mAP, [0.5])


def test_prediction_for_video_without_ground_truth_is_counted_false_positive():
  # Ranked: v2 (no GT at all) FP, then v1 TP: precision [0, 1/2], recall [0, 1] -> AP 1/2.
  result = _ap([("v1", "A", 0, 10)], [("v2", "A", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8)], [0.5])
  np.testing.assert_allclose(result.mAP, [0.5])
  assert result.num_predictions_without_ground_truth_video == 1
  assert result.num_predictions == 2


def test_prediction_in_video_with_other_class_only_is_false_positive():
  # v1 has only B; the A prediction there is FP but the video has ground truth, so it is not "without GT video".
  result = _ap([("v1", "B", 0, 10), ("v2", "A", 0, 10)],
               [("v1", "A", 0, 10, 0.9), ("v2", "A", 0, 10, 0.8), ("v1", "B", 0, 10, 0.5)], [0.5])
  np.testing.assert_allclose(result.ap, [[0.5, 1.0]])
  assert result.num_predictions_without_ground_truth_video == 0


def test_prediction_with_label_unknown_to_ground_truth_is_dropped_and_counted():
  result = _ap([("v1", "A", 0, 10)], [("v1", "Z", 0, 10, 0.99), ("v1", "A", 0, 10, 0.5)], [0.5])
  np.testing.assert_allclose(result.mAP, [1.0])
  assert result.num_predictions_unknown_label == 1
  assert result.num_predictions == 1
  assert result.labels == ("A",)


def test_interpolation_uses_precision_envelope():
  # Ranked TP, FP, TP, TP with 4 instances: precision [1, 1/2, 2/3, 3/4], recall [1/4, 1/4, 1/2, 3/4].
  # Envelope from the right: [1, 3/4, 3/4, 3/4] -> AP = 1/4 * (1 + 3/4 + 3/4) = 0.625 (raw precision: 0.6042).
  precision = np.array([1, 1 / 2, 2 / 3, 3 / 4])
  recall = np.array([1 / 4, 1 / 4, 1 / 2, 3 / 4])
  assert detection.average_precision(precision, recall) == pytest.approx(0.625)
  gt = [("v1", "A", 10 * i, 10 * i + 5) for i in range(4)]
  pred = [("v1", "A", 0, 5, 0.9), ("v1", "A", 100, 105, 0.8), ("v1", "A", 10, 15, 0.7), ("v1", "A", 20, 25, 0.6)]
  np.testing.assert_allclose(_ap(gt, pred, [0.5]).ap, [[0.625]])


def test_average_precision_is_vectorized_over_leading_axes():
  precision = np.array([[1.0, 0.5], [0.0, 0.5]])
  recall = np.array([[0.5, 0.5], [0.0, 1.0]])
  np.testing.assert_allclose(detection.average_precision(precision, recall), [0.5, 0.5])


def test_equal_scores_are_ranked_like_numpy_argsort_reversed():
  # One TP and one FP with the same score: whichever argsort()[::-1] puts first decides AP (1 or 1/2).
  scores = np.array([0.5, 0.5])
  first = scores.argsort()[::-1][0]
  expected = 1.0 if first == 0 else 0.5
  result = _ap([("v1", "A", 0, 10)], [("v1", "A", 0, 10, 0.5), ("v1", "A", 50, 60, 0.5)], [0.5])
  np.testing.assert_allclose(result.mAP, [expected])


def test_string_valued_numbers_in_frames_are_accepted():
  result = detection.compute_detection_ap(_gt([("v1", "A", "0.0", "10.0")]), _pred([("v1", "A", "0", "10", "0.9")]),
                                          [0.5])
  np.testing.assert_allclose(result.mAP, [1.0])


def test_exclude_videos_removes_ground_truth_and_predictions():
  gt = [("v1", "A", 0, 10), ("v2", "A", 0, 10)]
  pred = [("v1", "A", 0, 10, 0.9), ("v2", "A", 50, 60, 0.8), ("v3", "A", 0, 1, 0.1)]
  full = _ap(gt, pred, [0.5])
  np.testing.assert_allclose(full.mAP, [0.5])  # tp [1, 0, 0], 2 instances
  assert (full.num_ground_truth_videos, full.num_ground_truth_instances, full.num_predictions) == (2, 2, 3)
  kept = _ap(gt, pred, [0.5], exclude_videos=["v2", "v3", "not_there"])
  np.testing.assert_allclose(kept.mAP, [1.0])
  assert (kept.num_ground_truth_videos, kept.num_ground_truth_instances, kept.num_predictions) == (1, 1, 1)
  assert (kept.num_excluded_videos, kept.num_excluded_ground_truth_instances, kept.num_excluded_predictions) == (
      2, 1, 2)


def test_no_predictions_gives_zero_map():
  result = detection.compute_detection_ap(_gt([("v1", "A", 0, 10)]), None, [0.5])
  np.testing.assert_allclose(result.mAP, [0.0])
  assert result.num_predictions == 0


def test_empty_ground_truth_is_an_error():
  with pytest.raises(EvaluationInputError, match="no annotation"):
    _ap([("v1", "A", 0, 10)], [], [0.5], exclude_videos=["v1"])


@pytest.mark.parametrize("bad_gt, bad_pred, match", [
    ([("v1", "A", 5, 1)], [], r"video 'v1'.*end 1.0 < start 5.0"),
    ([("v1", "A", 0, 10)], [("v9", "A", 0, 10, float("nan"))], r"video 'v9'.*score"),
    ([("v1", "A", 0, 10)], [("v7", "A", "x", 10, 0.5)], r"video 'v7'.*t_start"),
])
def test_bad_frame_rows_raise_input_error(bad_gt, bad_pred, match):
  with pytest.raises(EvaluationInputError, match=match):
    _ap(bad_gt, bad_pred, [0.5])


def test_missing_column_raises_input_error():
  with pytest.raises(EvaluationInputError, match="missing columns"):
    detection.compute_detection_ap(_gt([("v1", "A", 0, 10)]), pd.DataFrame({"video_id": ["v1"]}), [0.5])


def test_thresholds_must_be_in_unit_interval():
  with pytest.raises(ValueError):
    _ap([("v1", "A", 0, 10)], [], [1.5])


def test_evaluator_accumulates_and_resets():
  gt = [("v1", "A", 0, 10), ("v2", "A", 0, 10), ("v2", "B", 3, 8)]
  pred = [("v1", "A", 0, 10, 0.2), ("v2", "A", 1, 10, 0.9), ("v2", "B", 0, 8, 0.4), ("v1", "B", 0, 4, 0.6)]
  once = _ap(gt, pred, detection.THUMOS14_TIOU_THRESHOLDS)
  evaluator = detection.DetectionEvaluator(detection.THUMOS14_TIOU_THRESHOLDS)
  evaluator.update(_gt(gt[:1]), _pred(pred[:1] + pred[3:]))
  evaluator.update(_gt(gt[1:]), _pred(pred[1:3]))
  np.testing.assert_allclose(evaluator.result().ap, once.ap)
  evaluator.reset()
  with pytest.raises(EvaluationInputError):
    evaluator.result()


def test_range_averages_only_for_present_thresholds():
  thresholds = detection.THUMOS14_TIOU_THRESHOLDS
  averages = detection.range_averages(thresholds, np.arange(9) / 10)
  assert averages["0.1:0.5"] == pytest.approx(0.2)
  assert averages["0.1:0.7"] == pytest.approx(0.3)
  assert "0.5:0.95" not in averages
  assert detection.range_averages([0.1, 0.2, 0.3], [1, 1, 1]) == {}
  assert detection.range_averages(np.linspace(0.5, 0.95, 10), np.ones(10))["0.5:0.95"] == pytest.approx(1.0)


def test_result_dict_schema():
  result = _ap([("v1", "A", 0, 10)], [("v1", "A", 0, 10, 0.9)], detection.THUMOS14_TIOU_THRESHOLDS)
  out = result.to_dict()
  for key in ("tiou_thresholds", "mAP", "average_mAP", "num_ground_truth_videos", "num_ground_truth_instances",
              "num_predictions", "average_mAP_0.1:0.5", "average_mAP_0.1:0.7", "per_class_AP"):
    assert key in out
  assert out["mAP"] == [1.0] * 9 and out["average_mAP"] == 1.0
  assert "100.00" in result.format_table()


def _naive_ap(gt, pred, thresholds):
  """Straightforward per-prediction loop of the protocol, to check the vectorized matcher."""
  labels = sorted(set(gt.label))
  ap = np.zeros((len(thresholds), len(labels)))
  for c, label in enumerate(labels):
    g = gt[gt.label == label].reset_index(drop=True)
    p = pred[pred.label == label].reset_index(drop=True)
    scores = p.score.to_numpy()
    p = p.iloc[scores.argsort()[::-1]].reset_index(drop=True)
    for t, thr in enumerate(thresholds):
      taken = set()
      hits = []
      for row in p.itertuples():
        cand = g[g.video_id == row.video_id]
        ious = detection.interval_tiou([[row.t_start, row.t_end]], cand[["t_start", "t_end"]].to_numpy())[0]
        hit = False
        for j in ious.argsort()[::-1]:
          if ious[j] < thr:
            break
          if cand.index[j] in taken:
            continue
          taken.add(cand.index[j])
          hit = True
          break
        hits.append(hit)
      hits = np.array(hits, dtype=float)
      if len(hits):
        tp = np.cumsum(hits)
        ap[t, c] = detection.average_precision(tp / np.arange(1, len(hits) + 1), tp / len(g))
  return ap


@pytest.mark.parametrize("seed", range(4))
def test_vectorized_matching_agrees_with_naive_loop(seed):
  # Integer segments and few score values: many tIoU and score ties, several instances per (class, video).
  rng = np.random.default_rng(seed)
  num_gt, num_pred = 30, 60
  def segments(n):
    start = rng.integers(0, 20, n).astype(float)
    return start, start + rng.integers(1, 8, n)
  gs, ge = segments(num_gt)
  ps, pe = segments(num_pred)
  gt = pd.DataFrame({"video_id": rng.choice(["v0", "v1"], num_gt), "label": rng.choice(["A", "B"], num_gt),
                     "t_start": gs, "t_end": ge})
  pred = pd.DataFrame({"video_id": rng.choice(["v0", "v1", "v2"], num_pred),
                       "label": rng.choice(["A", "B"], num_pred), "t_start": ps, "t_end": pe,
                       "score": rng.integers(0, 4, num_pred).astype(float)})
  thresholds = [0.1, 0.3, 0.5, 0.7, 0.9]
  np.testing.assert_allclose(detection.compute_detection_ap(gt, pred, thresholds).ap,
                             _naive_ap(gt, pred, thresholds), atol=1e-12)
