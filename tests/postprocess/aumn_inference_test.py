"""AUMN inference (stpn_tf/postprocess/aumn_inference.py, section 3.3 and Eq. 16) against hand-computed values."""

import numpy as np
import pytest

from stpn_tf.postprocess import aumn_inference
from stpn_tf.postprocess import scoring
from stpn_tf.postprocess.types import StreamOutput

LN3 = np.log(3.0)


def test_aumn_score_is_eq16_of_the_paper():
  """q = sum_{t=s}^{e} (theta a^R Cbar^R(t, c) + (1 - theta) a^F Cbar^F(t, c)) / (e - s + 1), Cbar = softmax(CAS)."""
  rgb_a = np.array([1.0, 0.5, 0.0])
  rgb_cas = np.array([[0.0, 0.0], [LN3, 0.0], [0.0, 0.0]])      # softmax rows: [.5 .5], [.75 .25], [.5 .5]
  flow_a = np.array([0.0, 1.0, 1.0])
  flow_cas = np.array([[0.0, LN3], [0.0, 0.0], [0.0, 0.0]])     # softmax rows: [.25 .75], [.5 .5], [.5 .5]
  q = scoring.aumn_score(np.array([0, 1, 2]), np.array([1, 2, 2]), np.array([0, 1, 1]),
                         rgb_a, rgb_cas, flow_a, flow_cas, theta=0.3)
  # [0, 1], class 0: t0 .3*1*.5 + .7*0*.25 = .15; t1 .3*.5*.75 + .7*1*.5 = .4625 -> mean .30625
  # [1, 2], class 1: t1 .3*.5*.25 + .7*.5 = .3875; t2 0 + .7*.5 = .35 -> mean .36875
  # [2, 2], class 1: .35
  np.testing.assert_allclose(q, [0.30625, 0.36875, 0.35], rtol=1e-12)


def test_proposals_are_runs_above_the_video_mean_attention():
  a = np.array([0.1, 0.9, 0.8, 0.1, 0.7, 0.1])                   # mean 0.45
  starts, ends = aumn_inference.attention_proposals(a)
  np.testing.assert_array_equal(starts, [1, 4])
  np.testing.assert_array_equal(ends, [2, 4])
  starts, ends = aumn_inference.attention_proposals(a, threshold=0.75)
  np.testing.assert_array_equal(starts, [1])
  np.testing.assert_array_equal(ends, [2])
  # strictly above: a constant attention gives no proposal
  assert aumn_inference.attention_proposals(np.full(4, 0.3))[0].size == 0


def _streams():
  t, c = 8, 3
  cas = np.zeros((t, c))
  cas[:, 0] = 2.0                                                  # class 0 dominates everywhere
  rgb = StreamOutput(attention=np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.8, 0.1]), tcam=cas,
                     probabilities=np.array([0.6, 0.32, 0.08]))
  flow = StreamOutput(attention=np.array([0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]), tcam=cas,
                      probabilities=np.array([0.5, 0.42, 0.08]))
  return rgb, flow


def test_detect_by_hand():
  rgb, flow = _streams()
  det = aumn_inference.aumn_detect(rgb, flow, feature_rate=2.0)
  # Fused y_hat = [.55, .37, .08]: class 2 is rejected (< 0.1).
  # RGB mean attention .3875 -> [0, 1], [6, 6]; flow mean .4 -> [0, 2]. Each for classes 0 and 1.
  # [0, 1] and [0, 2] overlap with IoU 2/3 > 0.3: per class, only the higher-scored one survives NMS.
  soft = np.exp([2.0, 0.0, 0.0]) / np.exp([2.0, 0.0, 0.0]).sum()  # Cbar rows (identical for every t)
  w = 0.3 * rgb.attention + 0.7 * flow.attention                  # the Eq. 16 weight of each segment
  score = lambda s, e, c: w[s:e + 1].mean() * soft[c]
  expected = []
  for c in (0, 1):
    best = max([(score(0, 1, c), 0, 1), (score(0, 2, c), 0, 2)])
    expected += [(best[0], best[1], best[2], c), (score(6, 6, c), 6, 6, c)]
  expected.sort(reverse=True)
  np.testing.assert_allclose(det.score, [e[0] for e in expected], rtol=1e-12)
  np.testing.assert_array_equal(det.class_index, [e[3] for e in expected])
  np.testing.assert_allclose(det.start_s, [e[1] / 2.0 for e in expected])          # [s, e] -> [s/r, (e+1)/r]
  np.testing.assert_allclose(det.end_s, [(e[2] + 1) / 2.0 for e in expected])


def test_nms_threshold_is_0_3():
  rgb, flow = _streams()
  # [0, 1] vs [0, 2] have IoU 2/3: suppressed at 0.3 and at 0.5, kept at 0.7.
  assert len(aumn_inference.aumn_detect(rgb, flow, 2.0, nms_threshold=0.7)) == 6
  assert len(aumn_inference.aumn_detect(rgb, flow, 2.0)) == 4


def test_single_stream_and_class_rejection():
  rgb, _ = _streams()
  det = aumn_inference.aumn_detect(rgb, None, feature_rate=1.0)
  assert set(det.class_index.tolist()) == {0, 1}
  np.testing.assert_allclose(sorted(zip(det.start_s, det.end_s)), [(0, 2), (0, 2), (6, 7), (6, 7)])
  low = StreamOutput(rgb.attention, rgb.tcam, np.array([0.05, 0.05, 0.09]))
  assert len(aumn_inference.aumn_detect(low, None, 1.0)) == 0
  fallback = aumn_inference.aumn_detect(low, None, 1.0, fallback_to_top_class=True)
  assert set(fallback.class_index.tolist()) == {2}


def test_bad_inputs_are_rejected():
  rgb, flow = _streams()
  with pytest.raises(ValueError, match="at least one"):
    aumn_inference.aumn_detect(None, None, 1.0)
  with pytest.raises(ValueError, match="feature_rate"):
    aumn_inference.aumn_detect(rgb, flow, 0.0)
  short = StreamOutput(np.ones(3), np.zeros((3, 3)), np.ones(3) / 3)
  with pytest.raises(ValueError, match="disagrees"):
    aumn_inference.aumn_detect(rgb, short, 1.0)
