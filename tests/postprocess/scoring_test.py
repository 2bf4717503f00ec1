"""Tests for stpn_tf.postprocess.scoring (hand-computed examples)."""

import numpy as np
import pytest

from stpn_tf.postprocess import scoring

# A 5-segment, 2-class two-stream example used for STPN Eq. 7.
LAMBDA_RGB = np.array([1.0, 0.5, 0.0, 1.0, 1.0])
LAMBDA_FLOW = np.array([0.0, 1.0, 1.0, 0.5, 0.0])
TCAM_RGB = np.array([[2.0, 10.0], [4.0, 10.0], [0.0, 10.0], [-2.0, 10.0], [6.0, 10.0]])
TCAM_FLOW = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [2.0, 0.0], [-2.0, 0.0]])


def test_prefix_window_helpers():
  prefix = scoring.prefix_sums(np.array([1.0, 2.0, 3.0, 4.0]))
  np.testing.assert_allclose(prefix, [0, 1, 3, 6, 10])
  np.testing.assert_allclose(scoring.window_sums(prefix, [0, 1, 3, 2], [3, 2, 3, 1]), [10, 5, 4, 0])
  np.testing.assert_allclose(scoring.window_means(prefix, [0, 1, 3, 2], [3, 2, 3, 1]), [2.5, 2.5, 4, 0])
  prefix2 = scoring.prefix_sums(np.array([[1.0, 10.0], [2.0, 20.0]]))
  np.testing.assert_allclose(scoring.window_means(prefix2, [0, 0], [1, 1], [0, 1]), [1.5, 15.0])


def test_stpn_eq7_by_hand_uses_the_proposal_streams_lambda():
  # alpha = 0.5: fused class-0 T-CAM = [1, 3, 2, 0, 2].
  starts = np.array([1, 1, 0, 2, 3])
  ends = np.array([3, 3, 4, 2, 4])
  classes = np.array([0, 0, 0, 1, 1])
  streams = np.array([scoring.RGB, scoring.FLOW, scoring.RGB, scoring.RGB, scoring.RGB])
  scores = scoring.stpn_score(starts, ends, classes, streams, LAMBDA_RGB, TCAM_RGB, LAMBDA_FLOW, TCAM_FLOW)
  expected = [
      (0.5 * 3 + 0.0 * 2 + 1.0 * 0) / 3,  # RGB lambda over [1, 3]: 0.5.
      (1.0 * 3 + 1.0 * 2 + 0.5 * 0) / 3,  # Flow lambda over the same window: 5/3.
      (1 * 1 + 0.5 * 3 + 0 * 2 + 1 * 0 + 1 * 2) / 5,  # Whole video: 0.9.
      0.0,  # Class 1, fused = 5 everywhere, but lambda_RGB[2] = 0.
      5.0,  # Class 1 on [3, 4] with lambda_RGB = 1.
  ]
  np.testing.assert_allclose(scores, expected)


def test_stpn_eq7_alpha():
  # alpha = 0.25: fused class-0 T-CAM = 0.25 * a_RGB + 0.75 * a_FLOW = [0.5, 2.5, 3, 1, 0].
  score = scoring.stpn_score([1], [3], [0], [scoring.FLOW], LAMBDA_RGB, TCAM_RGB, LAMBDA_FLOW, TCAM_FLOW,
                             alpha=0.25)
  np.testing.assert_allclose(score, [(2.5 + 3 + 0.5 * 1) / 3])


def test_stpn_eq7_single_stream():
  # RGB only: the fused T-CAM is a_RGB itself.
  scores = scoring.stpn_score([1, 0], [3, 1], [0, 0], [scoring.RGB, scoring.RGB], LAMBDA_RGB, TCAM_RGB, None, None)
  np.testing.assert_allclose(scores, [(0.5 * 4 + 0 + 1 * -2) / 3, (1 * 2 + 0.5 * 4) / 2])
  with pytest.raises(ValueError, match="flow stream, which is not given"):
    scoring.stpn_score([1], [3], [0], [scoring.FLOW], LAMBDA_RGB, TCAM_RGB, None, None)


def test_stpn_score_bad_inputs():
  with pytest.raises(ValueError, match="T=4"):
    scoring.stpn_score([0], [0], [0], [0], LAMBDA_RGB[:4], TCAM_RGB, None, None)
  bad = TCAM_RGB.copy()
  bad[2, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    scoring.stpn_score([0], [0], [0], [0], LAMBDA_RGB, bad, None, None)
  with pytest.raises(ValueError, match="lie in"):
    scoring.stpn_score([0], [5], [0], [0], LAMBDA_RGB, TCAM_RGB, None, None)
  with pytest.raises(ValueError, match="start > end"):
    scoring.stpn_score([3], [2], [0], [0], LAMBDA_RGB, TCAM_RGB, None, None)
  with pytest.raises(ValueError, match="disagrees"):
    scoring.stpn_score([0], [0], [0], [0], LAMBDA_RGB, TCAM_RGB, LAMBDA_FLOW, TCAM_FLOW[:, :1])
  with pytest.raises(ValueError, match="at least one"):
    scoring.stpn_score([0], [0], [0], [0], None, None, None, None)


def test_bgm_eq12_by_hand():
  lam_rgb = np.array([1.0, 0.5, 1.0, 0.0])
  a_rgb = np.array([[2.0], [4.0], [-2.0], [8.0]])
  lam_flow = np.array([0.0, 1.0, 0.5, 1.0])
  a_flow = np.array([[6.0], [2.0], [4.0], [-4.0]])
  # theta = 0.5: per segment 0.5 * lam_rgb * a_rgb + 0.5 * lam_flow * a_flow = [1, 2, 0, -2].
  scores = scoring.bgm_score([0, 1, 3], [2, 3, 3], [0, 0, 0], lam_rgb, a_rgb, lam_flow, a_flow)
  np.testing.assert_allclose(scores, [1.0, 0.0, -2.0])
  # theta = 0.75 on [0, 1]: (0.75 * 2 + 0) and (0.75 * 2 + 0.25 * 2) -> mean 1.75.
  np.testing.assert_allclose(
      scoring.bgm_score([0], [1], [0], lam_rgb, a_rgb, lam_flow, a_flow, theta=0.75), [1.75])
  # Flow only: lam_flow * a_flow = [0, 2, 2, -4].
  np.testing.assert_allclose(scoring.bgm_score([1], [3], [0], None, None, lam_flow, a_flow), [0.0])


def test_aumn_eq16_by_hand():
  ln3 = np.log(3.0)
  # Softmax over classes: [ln 3, 0] -> [0.75, 0.25]; [0, 0] -> [0.5, 0.5].
  cas_rgb = np.array([[ln3, 0.0], [0.0, 0.0], [0.0, ln3]])
  cas_flow = np.array([[0.0, 0.0], [ln3, 0.0], [ln3, 0.0]])
  att_rgb = np.array([1.0, 0.5, 1.0])
  att_flow = np.array([0.5, 1.0, 0.0])
  # Class 0, theta = 0.3, per segment: t0 .3*1*.75 + .7*.5*.5 = .4; t1 .3*.5*.5 + .7*1*.75 = .6;
  # t2 .3*1*.25 + .7*0*.75 = .075.
  scores = scoring.aumn_score([0, 0, 2], [2, 1, 2], [0, 0, 1], att_rgb, cas_rgb, att_flow, cas_flow)
  np.testing.assert_allclose(scores, [(0.4 + 0.6 + 0.075) / 3, 0.5, 0.3 * 0.75])
  # Already-normalized CAS are used as given.
  probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
  np.testing.assert_allclose(
      scoring.aumn_score([0], [2], [0], att_rgb, probs, None, None, apply_softmax=False), [(1 + 0.25 + 0) / 3])


def test_outer_inner_contrast_by_hand():
  signal = np.array([0, 0, 1, 1, 5, 5, 5, 5, 1, 0], dtype=float)[:, None]  # [T=10, C=1]
  video_scores = np.array([0.5])
  # [4, 7]: length 4, l_m = 1 -> inner 5, outer mean(signal[3], signal[8]) = 1; zeta term 0.2 * 0.5.
  np.testing.assert_allclose(
      scoring.outer_inner_contrast([4], [7], [0], signal, video_scores), [5 - 1 + 0.1])
  scores = scoring.outer_inner_contrast([2, 0, 0, 4], [7, 1, 9, 4], [0, 0, 0, 0], signal)
  expected = [
      22 / 6 - (0 + 0 + 1 + 0) / 4,  # Length 6, l_m = 1.5 -> 2 segments each side: [0, 1] and [8, 9].
      0 - 1,  # Left outer window clipped away; right one is signal[2] = 1.
      23 / 10,  # Whole video: no outer region, outer term 0.
      5 - (1 + 5) / 2,  # One segment, l_m = 0.25 rounded up to 1.
  ]
  np.testing.assert_allclose(scores, expected)


def test_outer_inner_contrast_picks_class_column_and_zeta():
  signal = np.array([[0.0, 2.0], [1.0, 4.0], [0.0, 0.0]])
  # Class 1 on [1, 1]: inner 4, outer (2 + 0) / 2 = 1, zeta 1 * 0.3.
  np.testing.assert_allclose(
      scoring.outer_inner_contrast([1], [1], [1], signal, np.array([0.9, 0.3]), zeta=1.0), [3.3])
  with pytest.raises(ValueError, match="video_scores"):
    scoring.outer_inner_contrast([1], [1], [1], signal, np.array([0.9]))


def test_outer_inner_contrast_floor_end_rounding_of_the_authors_code():
  signal = np.array([0, 0, 1, 1, 5, 5, 5, 5, 1, 0], dtype=float)[:, None]  # [T=10, C=1]
  starts, ends, classes = [2, 4, 4], [7, 4, 7], [0, 0, 0]
  scores = scoring.outer_inner_contrast(starts, ends, classes, signal, outer_window_rounding="floor_end")
  expected = [
      22 / 6 - (0 + 0 + 1) / 3,  # l_m = 1.5: left [0, 1] (ceil), right ends at floor(7 + 1.5) = 8: [8].
      5 - 1,                     # l_m = 0.25: left [3]; right ends at floor(4.25) = 4: empty.
      5 - (1 + 1) / 2,           # l_m = 1 exactly: [3] and [8], as with "ceil".
  ]
  np.testing.assert_allclose(scores, expected)
  ceil = scoring.outer_inner_contrast(starts, ends, classes, signal)
  np.testing.assert_allclose(ceil, [22 / 6 - 1 / 4, 5 - 3, 4])
  with pytest.raises(ValueError, match="outer_window_rounding"):
    scoring.outer_inner_contrast(starts, ends, classes, signal, outer_window_rounding="floor")
