"""HAM-Net localization (stpn_tf/postprocess/hamnet_inference.py), checked on hand-computed cases."""

import numpy as np
import pytest

from stpn_tf.postprocess import hamnet_inference
from stpn_tf.postprocess import scoring

RATE = 1.5625
# T = 10. One action at segments 2..5 (attention 0.95); the segments just outside have low attention.
ATTENTION = np.array([0., 0.3, 0.95, 0.95, 0.95, 0.95, 0.2, 0., 0., 0.])
CAS = np.stack([np.arange(1.0, 11.0),              # class 0: s_i = i + 1
                np.full(10, -1.0),                 # class 1
                np.full(10, 5.0)], axis=1)         # background column: must be ignored
SCORES = np.array([0.6, 0.05])                     # class 1 is below the 0.1 threshold


def test_default_thresholds_are_0_1_to_0_9_in_steps_of_0_05():
  t = hamnet_inference.DEFAULT_ATTENTION_THRESHOLDS
  assert len(t) == 17 and t[0] == 0.1 and t[-1] == 0.9 and t[1] == 0.15 and t[8] == 0.5


def test_outer_inner_contrast_by_hand():
  dets = hamnet_inference.hamnet_detect(ATTENTION, CAS, SCORES, RATE, attention_thresholds=0.5, zeta=0.2)
  # Proposal [2, 5] (a > 0.5), class 0 only. s^attn = s * a: inside 3, 4, 5, 6 times 0.95 -> mean 4.275 (Eq. 15).
  # l_m = 4 / 4 = 1 segment each side: s^attn_1 = 2 * 0.3 = 0.6 and s^attn_6 = 7 * 0.2 = 1.4 -> mean 1.0 (Eq. 16).
  # psi = 4.275 - 1.0 + 0.2 * 0.6 = 3.395 (Eq. 14).
  assert len(dets) == 1
  np.testing.assert_allclose(dets.score, [3.395], rtol=1e-9)
  np.testing.assert_array_equal(dets.class_index, [0])
  np.testing.assert_allclose([dets.start_s[0], dets.end_s[0]], [2 / RATE, 6 / RATE])


def test_shared_outer_inner_contrast_matches_eqs_14_to_16():
  # The shared scorer on a longer proposal: [2, 9] has 8 segments, l_m = 2: outer = {0, 1} and {10, 11}.
  signal = np.arange(12, dtype=np.float64)[:, None]
  got = scoring.outer_inner_contrast([2], [9], [0], signal, np.array([0.5]), zeta=0.4)
  inner = np.mean(np.arange(2, 10))
  outer = np.mean([0, 1, 10, 11])
  np.testing.assert_allclose(got, [inner - outer + 0.4 * 0.5])


def test_proposals_pooled_over_thresholds_then_nms():
  dets = hamnet_inference.hamnet_detect(ATTENTION, CAS, SCORES, RATE, nms_threshold=0.5)
  # Distinct class-agnostic proposals over 0.1..0.9: [1, 6] (a > 0.1, 0.15), [1, 5] (a > 0.2, 0.25), [2, 5] (rest).
  guided = CAS[:, :1] * ATTENTION[:, None]
  candidates = scoring.outer_inner_contrast([1, 1, 2], [6, 5, 5], [0, 0, 0], guided, SCORES[:1], zeta=0.2)
  # They overlap by IoU >= 4/6 > 0.5, so NMS keeps only the best one.
  assert len(dets) == 1
  np.testing.assert_allclose(dets.score, [candidates.max()])
  without_nms = hamnet_inference.hamnet_detect(ATTENTION, CAS, SCORES, RATE, nms_threshold=1.0)
  np.testing.assert_allclose(np.sort(without_nms.score), np.sort(candidates))


def test_every_kept_class_scores_every_class_agnostic_proposal():
  scores = np.array([0.6, 0.3])
  dets = hamnet_inference.hamnet_detect(ATTENTION, CAS, scores, RATE, attention_thresholds=0.5)
  assert sorted(dets.class_index.tolist()) == [0, 1]
  # Class 1: s = -1 everywhere: inner -0.95, outer (-0.3 - 0.2) / 2 = -0.25, + 0.2 * 0.3.
  np.testing.assert_allclose(dets.score[dets.class_index == 1], [-0.95 + 0.25 + 0.06])


def test_cas_without_background_column_is_accepted():
  a = hamnet_inference.hamnet_detect(ATTENTION, CAS, SCORES, RATE)
  b = hamnet_inference.hamnet_detect(ATTENTION, CAS[:, :2], SCORES, RATE)
  np.testing.assert_allclose(a.score, b.score)


def test_class_rejection_and_fallback():
  low = np.array([0.05, 0.02])
  assert len(hamnet_inference.hamnet_detect(ATTENTION, CAS, low, RATE)) == 0
  dets = hamnet_inference.hamnet_detect(ATTENTION, CAS, low, RATE, fallback_to_top_class=True)
  assert len(dets) > 0 and set(dets.class_index.tolist()) == {0}


def test_no_proposal_gives_no_detections():
  assert len(hamnet_inference.hamnet_detect(np.full(10, 0.05), CAS, SCORES, RATE)) == 0
  assert len(hamnet_inference.hamnet_detect(np.zeros(0), np.zeros((0, 3)), SCORES, RATE)) == 0


def test_average_pool_by_hand():
  np.testing.assert_allclose(hamnet_inference.average_pool(np.array([0., 3., 6., 0.]), 3), [1.5, 3., 3., 3.])
  two = hamnet_inference.average_pool(np.array([[0., 1.], [3., 1.], [6., 1.], [0., 1.]]), 3)
  np.testing.assert_allclose(two[:, 1], 1.0)
  with pytest.raises(ValueError):
    hamnet_inference.average_pool(np.zeros(3), 2)


def test_smoothing_changes_the_proposals():
  smoothed = hamnet_inference.hamnet_detect(ATTENTION, CAS, SCORES, RATE, attention_thresholds=0.5,
                                            smooth_window=3)
  # Smoothed attention: segment 1 -> (0 + 0.3 + 0.95) / 3 < 0.5, segment 6 -> (0.95 + 0.2 + 0) / 3 < 0.5.
  assert len(smoothed) == 1
  np.testing.assert_allclose([smoothed.start_s[0], smoothed.end_s[0]], [2 / RATE, 6 / RATE])
  plain = hamnet_inference.hamnet_detect(ATTENTION, CAS, SCORES, RATE, attention_thresholds=0.5)
  assert smoothed.score[0] != pytest.approx(plain.score[0])


@pytest.mark.parametrize("args", [
    (np.zeros((10, 1)), CAS, SCORES),              # attention not [T]
    (ATTENTION, CAS[:5], SCORES),                  # T disagrees
    (ATTENTION, np.zeros((10, 5)), SCORES),        # C disagrees
    (ATTENTION, CAS, np.array([np.nan, 0.2])),     # NaN
])
def test_bad_inputs_are_rejected(args):
  with pytest.raises(ValueError):
    hamnet_inference.hamnet_detect(*args, RATE)


def test_authors_code_variant_repeats_and_gaussian_soft_nms_by_hand():
  # a = [0, .5, .6, 0], class 0 logits [0, 2, 2, 0]: s^attn = [0, 1, 1.2, 0]. Thresholds 0.1 and 0.2 both find [1, 2]
  # (l_m = 0.5: left window [0], right window [3] ("ceil") or none ("floor_end"), both 0): psi = 1.1 - 0 + 0.2 * 0.5.
  attention = np.array([0.0, 0.5, 0.6, 0.0])
  cas = np.array([[0.0, 9.0], [2.0, 9.0], [2.0, 9.0], [0.0, 9.0]])   # last column background, ignored
  video_scores = np.array([0.5])
  common = dict(class_threshold=0.2, attention_thresholds=(0.1, 0.2), outer_window_rounding="floor_end")
  once = hamnet_inference.hamnet_detect(attention, cas, video_scores, 1.0, **common, nms="soft_gaussian",
                                        soft_nms_sigma=0.3)
  np.testing.assert_allclose(once.score, [1.2])
  twice = hamnet_inference.hamnet_detect(attention, cas, video_scores, 1.0, **common, keep_repeated_proposals=True,
                                         nms="soft_gaussian", soft_nms_sigma=0.3)
  # The copy has IoU 1 with the first: decayed by exp(-1 / 0.3) = 0.0357, not removed.
  np.testing.assert_allclose(twice.score, [1.2, 1.2 * np.exp(-1 / 0.3)])
  np.testing.assert_allclose(twice.start_s, [1.0, 1.0])
  np.testing.assert_allclose(twice.end_s, [3.0, 3.0])
  # Greedy NMS removes the copy.
  greedy = hamnet_inference.hamnet_detect(attention, cas, video_scores, 1.0, **common, keep_repeated_proposals=True)
  np.testing.assert_allclose(greedy.score, [1.2])
  with pytest.raises(ValueError, match="outer_window_rounding"):
    hamnet_inference.hamnet_detect(attention, cas, video_scores, 1.0, outer_window_rounding="round")
