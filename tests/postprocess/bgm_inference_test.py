"""stpn_tf.postprocess.bgm_inference (Nguyen et al. ICCV 2019, Sec. 3.2 / 4.2) on tiny hand-made videos."""

import numpy as np
import pytest

from stpn_tf.postprocess import bgm_inference
from stpn_tf.postprocess.types import StreamOutput

RATE = 2.0  # segments per second: segment i covers [i / 2, (i + 1) / 2) s


def _streams(rgb_probs=(0.8, 0.05), flow_probs=(0.6, 0.1)):
  """T = 6, C = 2.

  Averaged attention (0.5 * (rgb + flow)) = [0.1, 0.5, 0.7, 0.6, 0.1, 0.0]:
    > 0.3 on [1, 3], > 0.55 on [2, 3].
  Eq. 12 signal for class 0 (theta 0.5): 0.5 * lambda_rgb * a_rgb + 0.5 * lambda_flow * a_flow
    t1: 0.5 * 0.6 * 2 + 0.5 * 0.4 * 1 = 0.8;  t2: 0.5 * 0.8 * 1 + 0.5 * 0.6 * 4 = 1.6;
    t3: 0.5 * 0.7 * 3 + 0.5 * 0.5 * 2 = 1.55.
  So [1, 3] scores 3.95 / 3 and [2, 3] scores 3.15 / 2 = 1.575.
  Class 1 (a_rgb = a_flow = 1 on t1..t3): t1 0.5, t2 0.7, t3 0.6 -> [1, 3]: 0.6, [2, 3]: 0.65.
  """
  rgb = StreamOutput(attention=np.array([0.1, 0.6, 0.8, 0.7, 0.2, 0.0]),
                     tcam=np.array([[0, 0], [2, 1], [1, 1], [3, 1], [0, 0], [0, 0]], float),
                     probabilities=np.array(rgb_probs))
  flow = StreamOutput(attention=np.array([0.1, 0.4, 0.6, 0.5, 0.0, 0.0]),
                      tcam=np.array([[0, 0], [1, 1], [4, 1], [2, 1], [0, 0], [0, 0]], float),
                      probabilities=np.array(flow_probs))
  return rgb, flow


def test_paper_thresholds():
  assert len(bgm_inference.PAPER_ATTENTION_THRESHOLDS) == 21
  np.testing.assert_allclose(bgm_inference.PAPER_ATTENTION_THRESHOLDS, np.arange(21) * 0.025)


def test_detect_by_hand_with_nms():
  rgb, flow = _streams()
  # Fused p_fg [0.7, 0.075]: class 1 rejected. IoU([1, 4), [2, 4)) = 2/3 > 0.5: [2, 3] suppresses [1, 3].
  det = bgm_inference.bgm_detect(rgb, flow, RATE, attention_thresholds=[0.3, 0.55])
  np.testing.assert_array_equal(det.class_index, [0])
  np.testing.assert_allclose(det.score, [1.575])
  np.testing.assert_allclose(det.start_s, [1.0])
  np.testing.assert_allclose(det.end_s, [2.0])
  det = bgm_inference.bgm_detect(rgb, flow, RATE, attention_thresholds=[0.3, 0.55], nms_threshold=0.7)
  np.testing.assert_allclose(det.score, [1.575, 3.95 / 3])
  np.testing.assert_allclose(det.start_s, [1.0, 0.5])
  np.testing.assert_allclose(det.end_s, [2.0, 2.0])


def test_theta_weights_the_modalities():
  rgb, flow = _streams()
  # theta = 1: RGB only. [2, 3]: (0.8 * 1 + 0.7 * 3) / 2 = 1.45; [1, 3]: (1.2 + 0.8 + 2.1) / 3.
  det = bgm_inference.bgm_detect(rgb, flow, RATE, theta=1.0, attention_thresholds=[0.3, 0.55], nms_threshold=0.7)
  np.testing.assert_allclose(sorted(det.score), sorted([1.45, 4.1 / 3]))


def test_proposals_are_pooled_over_thresholds_and_shared_by_every_kept_class():
  rgb, flow = _streams(rgb_probs=(0.8, 0.3), flow_probs=(0.6, 0.2))
  det = bgm_inference.bgm_detect(rgb, flow, RATE, attention_thresholds=[0.3, 0.55], nms_threshold=0.7)
  order = np.lexsort((det.start_s, det.class_index))
  np.testing.assert_array_equal(det.class_index[order], [0, 0, 1, 1])
  np.testing.assert_allclose(det.score[order], [3.95 / 3, 1.575, 0.6, 0.65])
  assert np.all(np.diff(det.score) <= 0)


def test_no_class_passes_falls_back_to_top_class():
  rgb, flow = _streams(rgb_probs=(0.02, 0.08), flow_probs=(0.04, 0.06))
  det = bgm_inference.bgm_detect(rgb, flow, RATE, attention_thresholds=[0.3, 0.55])
  np.testing.assert_array_equal(det.class_index, [1])          # mean p = [0.03, 0.07]: class 1 is the top class
  np.testing.assert_allclose(det.score, [0.65])
  assert len(bgm_inference.bgm_detect(rgb, flow, RATE, attention_thresholds=[0.3],
                                      fallback_to_top_class=False)) == 0


def test_class_threshold_is_inclusive():
  rgb, flow = _streams(rgb_probs=(0.8, 0.1), flow_probs=(0.6, 0.1))
  det = bgm_inference.bgm_detect(rgb, flow, RATE, attention_thresholds=[0.55])
  assert set(det.class_index.tolist()) == {0, 1}


def test_single_stream():
  rgb, _ = _streams()
  # RGB attention alone: > 0.65 on [2, 3]; score = mean(lambda * a) = (0.8 + 2.1) / 2.
  det = bgm_inference.bgm_detect(rgb, None, RATE, attention_thresholds=[0.65])
  np.testing.assert_allclose(det.score, [1.45])
  np.testing.assert_allclose(det.start_s, [1.0])


def test_default_thresholds_include_zero():
  rgb, flow = _streams()
  det = bgm_inference.bgm_detect(rgb, flow, RATE, nms_threshold=1.0)
  # Threshold 0 keeps every segment with attention > 0: [0, 4] is one of the proposals.
  assert np.any(np.isclose(det.start_s, 0.0) & np.isclose(det.end_s, 2.5))


def test_bad_inputs():
  rgb, flow = _streams()
  with pytest.raises(ValueError, match="at least one"):
    bgm_inference.bgm_detect(None, None, RATE)
  with pytest.raises(ValueError, match="theta"):
    bgm_inference.bgm_detect(rgb, flow, RATE, theta=1.5)
  with pytest.raises(ValueError, match="feature_rate"):
    bgm_inference.bgm_detect(rgb, flow, 0.0)
  short = StreamOutput(np.zeros(3), np.zeros((3, 2)), np.array([0.5, 0.5]))
  with pytest.raises(ValueError, match="disagrees"):
    bgm_inference.bgm_detect(rgb, short, RATE)
