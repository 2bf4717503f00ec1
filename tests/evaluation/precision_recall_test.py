"""detection.precision_recall: hand-computed curves, and APs equal to compute_detection_ap's."""

import numpy as np
import pandas as pd
import pytest

from stpn_tf.evaluation import detection

GT = pd.DataFrame([("v1", "A", 0, 10), ("v1", "A", 20, 30), ("v2", "B", 5, 9), ("v3", "C", 0, 1)],
                  columns=["video_id", "label", "t_start", "t_end"])
PRED = pd.DataFrame([("v1", "A", 0, 10, 0.9), ("v1", "A", 0, 10, 0.8), ("v1", "A", 20, 30, 0.7),
                     ("v2", "B", 5, 7, 0.6), ("v2", "Q", 5, 9, 0.5)],
                    columns=["video_id", "label", "t_start", "t_end", "score"])


def test_hand_computed_curves():
  curves = detection.precision_recall(GT, PRED, 0.5)
  assert list(curves) == ["A", "B", "C"]           # the ground-truth classes; label Q is dropped
  a = curves["A"]                                  # TP, duplicate FP, TP
  np.testing.assert_allclose(a.precision, [1.0, 0.5, 2 / 3])
  np.testing.assert_allclose(a.recall, [0.5, 0.5, 1.0])
  np.testing.assert_allclose(a.scores, [0.9, 0.8, 0.7])
  assert (a.num_instances, a.ap) == (2, pytest.approx(5 / 6))
  np.testing.assert_allclose(curves["B"].precision, [1.0])       # tIoU 2/4 = 0.5: a match at 0.5
  assert detection.precision_recall(GT, PRED, 0.6)["B"].ap == 0.0
  assert curves["C"].precision.size == 0 and curves["C"].ap == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_equals_compute_detection_ap(seed):
  rng = np.random.default_rng(seed)
  def rows(n, with_score):
    start = rng.uniform(0, 50, n)
    out = {"video_id": rng.choice(["a", "b", "c"], n), "label": rng.choice(["x", "y"], n), "t_start": start,
           "t_end": start + rng.uniform(0.5, 10, n)}
    if with_score:
      out["score"] = rng.choice([0.1, 0.5, 0.9], n)   # ties: the ranking must be the reference's
    return pd.DataFrame(out)
  gt, pred = rows(30, False), rows(200, True)
  result = detection.compute_detection_ap(gt, pred, (0.3, 0.5))
  for i, t in enumerate((0.3, 0.5)):
    curves = detection.precision_recall(gt, pred, t, exclude_videos=[])
    assert [curves[label].ap for label in result.labels] == pytest.approx(list(result.ap[i]), abs=1e-12)
