"""End-to-end tests for stpn_tf.postprocess.stpn_inference on tiny hand-made videos."""

import numpy as np
import pytest

from stpn_tf.postprocess import stpn_inference
from stpn_tf.postprocess.types import Detections
from stpn_tf.postprocess.types import StreamOutput

RATE = 2.0  # Segments per second: segment i covers [i / 2, (i + 1) / 2) seconds.


def _streams(rgb_probs=(0.9, 0.05), flow_probs=(0.7, 0.1)):
  """T = 6, C = 2. Threshold 0.3 on psi = lambda * sigmoid(a) gives (see inline comments):

  RGB  class 0: lambda [0 1 1 1 0 0], a [0 2 2 3 0 0] -> psi > 0.3 on [1, 3].
  RGB  class 1: a [0 5 5 0 0 0] -> psi [0 .99 .99 .5 0 0] -> [1, 3].
  Flow class 0: lambda [0 0 1 1 1 0], a [0 4 0 2 0 0] -> psi [0 0 .5 .88 .5 0] -> [2, 4].
  Flow class 1: a [0 1 3 0 0 0] -> psi [0 0 .95 .5 .5 0] -> [2, 4].
  """
  rgb = StreamOutput(
      attention=np.array([0.0, 1.0, 1.0, 1.0, 0.0, 0.0]),
      tcam=np.array([[0, 0], [2, 5], [2, 5], [3, 0], [0, 0], [0, 0]], dtype=float),
      probabilities=np.array(rgb_probs))
  flow = StreamOutput(
      attention=np.array([0.0, 0.0, 1.0, 1.0, 1.0, 0.0]),
      tcam=np.array([[0, 0], [4, 1], [0, 3], [2, 0], [0, 0], [0, 0]], dtype=float),
      probabilities=np.array(flow_probs))
  return rgb, flow


def test_segments_to_seconds():
  start_s, end_s = stpn_inference.segments_to_seconds(np.array([1, 0]), np.array([3, 0]), RATE)
  np.testing.assert_allclose(start_s, [0.5, 0.0])
  np.testing.assert_allclose(end_s, [2.0, 0.5])
  start_s, end_s = stpn_inference.segments_to_seconds(np.array([2]), np.array([7]), RATE, interpolation_factor=2)
  np.testing.assert_allclose(start_s, [0.5])
  np.testing.assert_allclose(end_s, [2.0])
  with pytest.raises(ValueError, match="feature_rate"):
    stpn_inference.segments_to_seconds(np.array([0]), np.array([0]), 0.0)


def test_detect_two_streams_by_hand():
  rgb, flow = _streams()
  # Mean probabilities [0.8, 0.075]: class 1 rejected.
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3)
  # Fused class-0 T-CAM (alpha 0.5) = [0, 3, 1, 2.5, 0, 0].
  # RGB [1, 3]: lambda_RGB = 1 there -> (3 + 1 + 2.5) / 3. Flow [2, 4]: lambda_FLOW = 1 -> (1 + 2.5 + 0) / 3.
  # IoU([1, 4), [2, 5)) = 2 / 4 = 0.5, not above the 0.5 NMS threshold: both kept.
  np.testing.assert_array_equal(det.class_index, [0, 0])
  np.testing.assert_allclose(det.score, [6.5 / 3, 3.5 / 3])
  np.testing.assert_allclose(det.start_s, [0.5, 1.0])
  np.testing.assert_allclose(det.end_s, [2.0, 2.5])
  # A stricter NMS threshold suppresses the lower-scored flow proposal.
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3, nms_threshold=0.4)
  np.testing.assert_allclose(det.score, [6.5 / 3])


def test_detect_multiple_thresholds_pools_without_duplicates():
  rgb, flow = _streams()
  # 0.4 repeats the 0.3 components (removed as duplicates); at 0.95 only RGB psi[3] = sigmoid(3) = 0.953 passes,
  # an extra RGB proposal [3, 3] scored lambda 1 * fused 2.5. It lies inside [1, 3] (IoU 1/3) and survives NMS at 0.9.
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=[0.3, 0.4, 0.95], nms_threshold=0.9)
  np.testing.assert_allclose(det.score, [2.5, 6.5 / 3, 3.5 / 3])
  np.testing.assert_allclose(det.start_s, [1.5, 0.5, 1.0])
  np.testing.assert_allclose(det.end_s, [2.0, 2.0, 2.5])


def test_detect_probability_fusion_max_keeps_class_at_threshold():
  rgb, flow = _streams()
  # max fusion: class 1 probability max(0.05, 0.1) = 0.1 >= 0.1 is kept.
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3, probability_fusion="max")
  # Fused class-1 T-CAM = [0, 3, 4, 0, 0, 0]. RGB [1, 3]: (3 + 4 + 0) / 3; flow [2, 4]: (4 + 0 + 0) / 3.
  # IoU([1, 4), [2, 5)) = 0.5: not suppressed.
  order = np.lexsort((det.start_s, det.class_index))
  np.testing.assert_array_equal(det.class_index[order], [0, 0, 1, 1])
  np.testing.assert_allclose(det.score[order], [6.5 / 3, 3.5 / 3, 7 / 3, 4 / 3])
  np.testing.assert_allclose(det.start_s[order], [0.5, 1.0, 0.5, 1.0])
  assert np.all(np.diff(det.score) <= 0)  # Sorted by descending score.


def test_detect_class_rejection_below_threshold():
  rgb, flow = _streams(rgb_probs=(0.09, 0.05), flow_probs=(0.1, 0.05))  # Means 0.095 and 0.05.
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3)
  assert len(det) == 0
  # Fallback (Nguyen et al. 2019) keeps the top class, class 0, which then gives the two class-0 detections.
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3, fallback_to_top_class=True)
  np.testing.assert_array_equal(det.class_index, [0, 0])
  # Fusion "rgb": class 0 at 0.09 is rejected, "flow": 0.1 is kept.
  assert len(stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3, probability_fusion="rgb")) == 0
  assert len(stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3, probability_fusion="flow")) == 2


def test_detect_single_stream():
  rgb, flow = _streams()
  # RGB only: probabilities [0.9, 0.05]; Eq. 7 uses a_RGB alone: [1, 3] -> (2 + 2 + 3) / 3.
  det = stpn_inference.stpn_detect(rgb, None, RATE, tcam_threshold=0.3)
  np.testing.assert_array_equal(det.class_index, [0])
  np.testing.assert_allclose(det.score, [7 / 3])
  np.testing.assert_allclose(det.start_s, [0.5])
  np.testing.assert_allclose(det.end_s, [2.0])
  # Flow only: probabilities [0.7, 0.1], both classes kept. Class 0 [2, 4]: (0 + 2 + 0) / 3; class 1: (3 + 0 + 0) / 3.
  det = stpn_inference.stpn_detect(None, flow, RATE, tcam_threshold=0.3)
  np.testing.assert_array_equal(det.class_index, [1, 0])
  np.testing.assert_allclose(det.score, [1.0, 2 / 3])
  np.testing.assert_allclose(det.start_s, [1.0, 1.0])
  np.testing.assert_allclose(det.end_s, [2.5, 2.5])
  with pytest.raises(ValueError, match="rgb stream is not given"):
    stpn_inference.stpn_detect(None, flow, RATE, probability_fusion="rgb")


def test_detect_with_interpolation_maps_back_to_seconds():
  rgb, flow = _streams()
  det = stpn_inference.stpn_detect(rgb, flow, RATE, tcam_threshold=0.3, interpolation_factor=2)
  # Factor 2: sub-segment j sits at x = (j + 0.5) / 2 - 0.5 and covers [j / 4, (j + 1) / 4) seconds.
  # RGB class-0 psi passes 0.3 on j = 2..7 -> [0.5, 2.0] s; flow psi on j = 4..9 -> [1.0, 2.5] s.
  # Eq. 7 on the interpolated grid (lambda and a interpolated, fused a at x = .75 .. 3.25 and 1.75 .. 4.25):
  rgb_score = (0.75 * 2.25 + 2.5 + 1.5 + 1.375 + 2.125 + 0.75 * 1.875) / 6
  flow_score = (0.75 * 1.5 + 1.375 + 2.125 + 1.875 + 0.625 + 0.75 * 0.0) / 6
  np.testing.assert_array_equal(det.class_index, [0, 0])
  np.testing.assert_allclose(det.score, [rgb_score, flow_score])
  np.testing.assert_allclose(det.start_s, [0.5, 1.0])
  np.testing.assert_allclose(det.end_s, [2.0, 2.5])


def test_detect_empty_video():
  empty = StreamOutput(np.zeros(0), np.zeros((0, 2)), np.array([0.9, 0.9]))
  det = stpn_inference.stpn_detect(empty, empty, RATE)
  assert len(det) == 0
  assert det.to_activitynet("v", ["a", "b"]) == []
  assert len(stpn_inference.stpn_detect(empty, None, RATE, interpolation_factor=4)) == 0


def test_bad_inputs_raise_value_error():
  with pytest.raises(ValueError, match="attention has T=5 but tcam has T=6"):
    StreamOutput(np.zeros(5), np.zeros((6, 2)), np.zeros(2))
  with pytest.raises(ValueError, match="tcam contains NaN"):
    StreamOutput(np.zeros(2), np.array([[0.0, np.nan], [0.0, 0.0]]), np.zeros(2))
  with pytest.raises(ValueError, match="attention contains NaN"):
    StreamOutput(np.array([np.nan, 0.0]), np.zeros((2, 2)), np.zeros(2))
  with pytest.raises(ValueError, match="probabilities must be"):
    StreamOutput(np.zeros(2), np.zeros((2, 2)), np.zeros(3))
  rgb, _ = _streams()
  short = StreamOutput(np.zeros(5), np.zeros((5, 2)), np.zeros(2))
  with pytest.raises(ValueError, match="disagrees"):
    stpn_inference.stpn_detect(rgb, short, RATE)
  with pytest.raises(ValueError, match="at least one"):
    stpn_inference.stpn_detect(None, None, RATE)
  with pytest.raises(ValueError, match="probability_fusion"):
    stpn_inference.stpn_detect(rgb, None, RATE, probability_fusion="sum")
  with pytest.raises(ValueError, match="feature_rate"):
    stpn_inference.stpn_detect(rgb, None, -1.0)


def test_detections_helpers():
  a = Detections(np.array([0.5]), np.array([2.0]), np.array([1]), np.array([0.7]))
  b = Detections(np.array([3.0, 4.0]), np.array([3.5, 6.0]), np.array([0, 1]), np.array([0.2, 0.1]))
  both = Detections.concatenate([a, b])
  assert len(both) == 3 and len(Detections.concatenate([])) == 0
  np.testing.assert_allclose(both.start_s, [0.5, 3.0, 4.0])
  assert both.to_activitynet("video_1", ["Run", "Jump"]) == [
      {"label": "Jump", "score": 0.7, "segment": [0.5, 2.0]},
      {"label": "Run", "score": 0.2, "segment": [3.0, 3.5]},
      {"label": "Jump", "score": 0.1, "segment": [4.0, 6.0]},
  ]
  with pytest.raises(ValueError, match="video_1"):
    both.to_activitynet("video_1", ["Run"])
  with pytest.raises(ValueError, match="one length"):
    Detections(np.zeros(2), np.zeros(1), np.zeros(2), np.zeros(2))
