"""Video-level classification mAP, checked against hand-computed values."""

import numpy as np
import pytest

from stpn_tf.evaluation import classification


def test_ap_without_ties_by_hand():
  # Ranked labels 1, 0, 1, 0: precision at the positives 1 and 2/3 -> AP (1 + 2/3) / 2 = 5/6.
  ap = classification.classification_average_precision([[0.9], [0.8], [0.7], [0.6]], [[1], [0], [1], [0]])
  np.testing.assert_allclose(ap, [5 / 6])


def test_tied_scores_form_one_threshold():
  # Scores 0.5, 0.5 (one positive among them) are one threshold: recall 1/2 at precision 1/2; then 0.1 (positive)
  # reaches recall 1 at precision 2/4. AP = 1/2 * 1/2 + 1/2 * 1/2 = 1/2, whichever tied video is the positive
  # (ranking the tie one by one would give 0.75 when the positive comes first).
  scores = [[0.5], [0.5], [0.2], [0.1]]
  for labels in ([[0], [1], [0], [1]], [[1], [0], [0], [1]]):
    np.testing.assert_allclose(classification.classification_average_precision(scores, labels), [0.5])


def test_map_skips_classes_without_positives():
  scores = np.array([[0.9, 0.5, 0.3], [0.8, 0.5, 0.2], [0.7, 0.2, 0.1], [0.6, 0.1, 0.0]])
  labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
  result = classification.classification_map(scores, labels)
  np.testing.assert_allclose(result.ap[:2], [5 / 6, 0.5])
  assert np.isnan(result.ap[2])
  assert result.mAP == pytest.approx((5 / 6 + 0.5) / 2)
  assert result.num_classes_evaluated == 2 and result.num_videos == 4


def test_perfect_and_worst_ranking():
  ap = classification.classification_average_precision([[3.0, 0.0], [2.0, 1.0], [1.0, 2.0]],
                                                       [[1, 0], [1, 0], [0, 1]])
  # Column 0 perfect -> 1; column 1 positive ranked first -> 1.
  np.testing.assert_allclose(ap, [1.0, 1.0])
  # Single positive ranked last of 3: AP = 1/3.
  np.testing.assert_allclose(classification.classification_average_precision([[3.0], [2.0], [1.0]],
                                                                              [[0], [0], [1]]), [1 / 3])


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="NaN"):
    classification.classification_map([[np.nan]], [[1]])
  with pytest.raises(ValueError, match="num_videos, num_classes"):
    classification.classification_map([[0.1, 0.2]], [[1]])
  with pytest.raises(ValueError, match="multi-hot"):
    classification.classification_map([[0.1]], [[2]])
  with pytest.raises(ValueError, match="no class has a positive"):
    classification.classification_map([[0.1]], [[0]])


def test_evaluator_batches_equal_one_shot():
  rng = np.random.default_rng(0)
  scores = rng.random((10, 4))
  labels = rng.random((10, 4)) < 0.4
  labels[0] = True
  evaluator = classification.ClassificationEvaluator(num_classes=4)
  evaluator.update(scores[:3], labels[:3])
  evaluator.update(scores[3:], labels[3:])
  assert evaluator.result().mAP == pytest.approx(classification.classification_map(scores, labels).mAP)
  evaluator.reset()
  with pytest.raises(ValueError):
    evaluator.result()
  with pytest.raises(ValueError, match="expected 4 classes"):
    evaluator.update(scores[:, :3], labels[:, :3])
