"""Attention health statistics and the collapse guard, against hand-computed values."""

import numpy as np
import pytest

from stpn_tf.evaluation import attention_health as ah


def test_segment_positives_overlap_by_hand():
  # rate 2/s: segment t covers [t/2, (t+1)/2). Instance [0.6, 1.5] overlaps segments 1 ([0.5, 1)) and 2 ([1, 1.5));
  # segment 3 ([1.5, 2)) only touches it at 1.5. Instance [2.9, 3.1] overlaps segments 5 and 6.
  pos = ah.segment_positives(8, np.array([[0.6, 1.5], [2.9, 3.1]]), 2.0)
  np.testing.assert_array_equal(pos, [0, 1, 1, 0, 0, 1, 1, 0])
  np.testing.assert_array_equal(ah.segment_positives(3, np.zeros((0, 2)), 2.0), [0, 0, 0])
  with pytest.raises(ValueError, match="feature_rate"):
    ah.segment_positives(3, np.zeros((0, 2)), 0.0)


def test_average_ranks_ties_get_the_mean_rank():
  np.testing.assert_array_equal(ah.average_ranks([0.3, 0.1, 0.3, 0.2, 0.3]), [4, 1, 4, 2, 4])
  np.testing.assert_array_equal(ah.average_ranks([5.0]), [1])


def test_rank_auc_by_hand():
  # Positives 0.8, 0.4; negatives 0.5, 0.1, 0.4. Pairs (pos > neg: 1, tie: 0.5): 0.8 beats all 3 -> 3;
  # 0.4 beats 0.1 (1), ties 0.4 (0.5), loses to 0.5 -> 1.5. AUC = 4.5 / 6 = 0.75.
  scores = np.array([0.8, 0.5, 0.4, 0.1, 0.4])
  pos = np.array([1, 0, 1, 0, 0], bool)
  assert ah.rank_auc(scores, pos) == pytest.approx(0.75)
  assert ah.rank_auc(np.full(5, 0.3), pos) == pytest.approx(0.5)        # constant attention
  assert ah.rank_auc(-scores, pos) == pytest.approx(0.25)
  assert ah.rank_auc(scores, np.ones(5, bool)) is None
  assert ah.rank_auc(scores, np.zeros(5, bool)) is None
  with pytest.raises(ValueError, match="NaN"):
    ah.rank_auc(np.array([np.nan, 1.0]), np.array([True, False]))


def test_rank_auc_equals_pair_count_on_random_ties():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 5, 40).astype(float)          # many ties
  pos = rng.random(40) < 0.4
  p, n = scores[pos], scores[~pos]
  pairs = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
  assert ah.rank_auc(scores, pos) == pytest.approx(pairs / (p.size * n.size))


def test_segment_statistics_and_sums_by_hand():
  s = ah.segment_statistics([0.01, 0.04, 0.05, 0.5, 0.96, 0.95])
  assert s["mean"] == pytest.approx(2.51 / 6)
  assert s["share_below"] == pytest.approx(2 / 6)      # 0.05 itself is not below 0.05
  assert s["share_above"] == pytest.approx(1 / 6)      # 0.95 itself is not above 0.95
  assert ah.statistics_from_sums(2.51, 2, 1, 6) == pytest.approx(
      {"mean": s["mean"], "share_below": s["share_below"], "share_above": s["share_above"]})


def test_attention_health_accumulates_over_videos_and_skips_one_class_videos():
  health = ah.AttentionHealth(["rgb", "flow"])
  rate = 1.0
  # Video a: 4 segments, instance [1, 3] -> segments 1, 2 positive.
  info_a = {"video_id": "a", "num_segments": 4, "segments": np.array([[1.0, 3.0]])}
  out_a = {"rgb": {"attention": np.array([0.1, 0.9, 0.8, 0.2])},     # AUC 1
           "flow": {"attention": np.array([0.99, 0.99, 0.99, 0.01])}}  # pos 0.99,0.99 vs neg 0.99,0.01: AUC 0.75
  # Video b: 2 segments, no instance -> no AUC (skipped), statistics still count.
  info_b = {"video_id": "b", "num_segments": 2, "segments": np.zeros((0, 2))}
  out_b = {"rgb": {"attention": np.array([0.02, 0.5])}, "flow": {"attention": np.array([0.97, 0.97])}}
  # Video c: 3 segments, instance [0, 1] -> segment 0 positive.
  info_c = {"video_id": "c", "num_segments": 3, "segments": np.array([[0.0, 1.0]])}
  out_c = {"rgb": {"attention": np.array([0.3, 0.4, 0.1])},          # pos 0.3 vs 0.4, 0.1: AUC 0.5
           "flow": {"attention": np.array([0.5, 0.5, 0.5])}}          # AUC 0.5
  for info, out in ((info_a, out_a), (info_b, out_b), (info_c, out_c)):
    health.update_video(info, out, rate)
  r = health.result()
  assert r["low"] == 0.05 and r["high"] == 0.95
  rgb, flow = r["networks"]["rgb"], r["networks"]["flow"]
  assert rgb["num_segments"] == flow["num_segments"] == 9
  assert rgb["mean"] == pytest.approx((0.1 + 0.9 + 0.8 + 0.2 + 0.02 + 0.5 + 0.3 + 0.4 + 0.1) / 9)
  assert rgb["share_below"] == pytest.approx(1 / 9) and rgb["share_above"] == 0
  assert flow["share_above"] == pytest.approx(5 / 9) and flow["share_below"] == pytest.approx(1 / 9)
  assert rgb["median_video_auc"] == pytest.approx(0.75)      # median of (1, 0.5)
  assert flow["median_video_auc"] == pytest.approx(0.625)    # median of (0.75, 0.5)
  assert rgb["num_videos_auc"] == 2 and rgb["num_videos_skipped"] == 1
  assert "median AUC 0.750 over 2 videos (1 without" in ah.format_result(r)
  health.reset()
  assert health.result()["networks"]["rgb"]["median_video_auc"] is None


def test_rank_correlation_is_spearman_with_averaged_ties():
  assert ah.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
  assert ah.rank_correlation([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)
  # Ranks x: 1, 2, 3; y = (5, 5, 1): ranks 2.5, 2.5, 1. Centred: (-1, 0, 1) and (0.5, 0.5, -1):
  # sum of products -1.5; norms sqrt(2) and sqrt(1.5): rho = -1.5 / sqrt(3) = -0.8660.
  assert ah.rank_correlation([1, 2, 3], [5, 5, 1]) == pytest.approx(-1.5 / np.sqrt(3.0))
  assert ah.rank_correlation([1, 2, 3], [7, 7, 7]) is None     # constant: undefined
  assert ah.rank_correlation([1, 2], [1, 2]) is None           # too short


def test_network_mass_is_its_stream_or_the_sum_for_a_joint_network():
  masses = {"rgb": np.array([1.0, 2.0]), "flow": np.array([10.0, 0.0])}
  np.testing.assert_array_equal(ah.network_mass("flow", masses), [10.0, 0.0])
  np.testing.assert_array_equal(ah.network_mass("hamnet", masses), [11.0, 2.0])
  assert ah.network_mass("rgb", {}) is None


def test_attention_health_reports_the_median_mass_correlation():
  health = ah.AttentionHealth(["rgb", "hamnet"])
  # Video a: rgb attention follows the rgb mass exactly (+1); the joint network follows the summed mass inverted.
  info_a = {"video_id": "a", "num_segments": 4, "segments": np.array([[1.0, 3.0]]),
            "segment_l1_mass": {"rgb": np.array([1.0, 2.0, 3.0, 4.0]), "flow": np.array([0.0, 0.0, 0.0, 10.0])}}
  out_a = {"rgb": {"attention": np.array([0.1, 0.2, 0.3, 0.4])}, "hamnet": {"attention": np.array([0.9, 0.8, 0.7, 0.1])}}
  # Video b: rgb ranks 1, 2, 3 against masses (5, 5, 1): -0.866 (hand-computed in the test above).
  info_b = {"video_id": "b", "num_segments": 3, "segments": np.array([[0.0, 1.0]]),
            "segment_l1_mass": {"rgb": np.array([5.0, 5.0, 1.0]), "flow": np.array([0.0, 0.0, 0.0])}}
  out_b = {"rgb": {"attention": np.array([0.1, 0.2, 0.3])}, "hamnet": {"attention": np.array([0.3, 0.3, 0.3])}}
  # Video c: no masses (data without them): counted nowhere.
  info_c = {"video_id": "c", "num_segments": 3, "segments": np.array([[0.0, 1.0]])}
  out_c = {"rgb": {"attention": np.array([0.1, 0.2, 0.3])}, "hamnet": {"attention": np.array([0.1, 0.2, 0.3])}}
  for info, out in ((info_a, out_a), (info_b, out_b), (info_c, out_c)):
    health.update_video(info, out, 1.0)
  r = health.result()["networks"]
  assert r["rgb"]["median_mass_correlation"] == pytest.approx((1.0 - 1.5 / np.sqrt(3.0)) / 2)
  assert r["rgb"]["num_videos_mass"] == 2
  assert r["hamnet"]["median_mass_correlation"] == pytest.approx(-1.0)   # video b: constant attention, undefined
  assert r["hamnet"]["num_videos_mass"] == 1
  assert "rank correlation with the feature mass +0.07" in ah.format_result(health.result())
  with pytest.raises(ValueError, match="video d: 2 feature masses for 3 attention values"):
    health.update_video({"video_id": "d", "num_segments": 3, "segments": np.zeros((0, 2)),
                         "segment_l1_mass": {"rgb": np.ones(2)}}, {"rgb": {"attention": np.zeros(3)},
                                                                  "hamnet": {"attention": np.zeros(3)}}, 1.0)


def test_attention_health_checks_lengths():
  health = ah.AttentionHealth(["rgb"])
  with pytest.raises(ValueError, match="video v: network 'rgb' gives 3 attention values for 4 segments"):
    health.update_video({"video_id": "v", "num_segments": 4, "segments": np.zeros((0, 2))},
                        {"rgb": {"attention": np.zeros(3)}}, 1.0)


class _Task:
  networks = {"rgb": "rgb", "flow": "flow"}


def test_attention_networks_skip_a_model_without_attention():
  assert ah.attention_networks(_Task()) == ("rgb", "flow")
  task = _Task()
  task.use_attention = False
  assert ah.attention_networks(task) == ()


def _stats(below, above=0.0, mean=0.5):
  return {"mean": mean, "share_below": below, "share_above": above}


def test_guard_fires_after_patience_consecutive_reports_only():
  guard = ah.CollapseGuard(patience=3)
  healthy = {"rgb": _stats(0.3), "flow": _stats(0.0, 0.2)}
  assert guard.update(10, healthy) == []
  # Two collapsed reports, one healthy, two collapsed: never 3 in a row, silent.
  for step, below in ((20, 0.99), (30, 0.97), (40, 0.5), (50, 0.99), (60, 0.96)):
    assert guard.update(step, {"rgb": _stats(below, mean=0.01), "flow": _stats(0.0)}) == []
  assert guard.warnings == [] and guard.summary() == "" and guard.collapsed_networks() == []
  # The third consecutive report fires once; the fourth updates the same warning.
  (w,) = guard.update(70, {"rgb": _stats(0.98, mean=0.012), "flow": _stats(0.0)})
  assert (w.network, w.statistic, w.first_step, w.last_step, w.reports, w.where) == (
      "rgb", "share_below_0.05", 50, 70, 3, "training")
  assert "network 'rgb'" in w.message and "98.0% of its segments have attention below 0.05" in w.message
  assert "When the attention collapses" in w.message
  assert guard.summary() == w.message + "\n" + guard.advice() and "Known causes" in guard.advice()
  assert guard.collapsed_networks() == ["rgb < 0.05"]
  assert guard.update(80, {"rgb": _stats(0.999, mean=0.001), "flow": _stats(0.0)}) == []
  assert len(guard.warnings) == 1 and w.last_step == 80 and w.reports == 4 and w.value == pytest.approx(0.999)
  # Recovery closes the episode; the record stays.
  guard.update(90, {"rgb": _stats(0.2), "flow": _stats(0.0)})
  assert w.recovered_at_step == 90 and guard.collapsed_networks() == []
  assert "back under 95% at step 90" in w.message
  (d,) = guard.report()
  assert d["network"] == "rgb" and d["recovered_at_step"] == 90 and d["message"] == w.message


def test_guard_watches_both_sides_and_the_threshold_is_strict():
  guard = ah.CollapseGuard(patience=2, max_share=0.9)
  for step in (1, 2):
    fired = guard.update(step, {"flow": _stats(0.0, 0.95, mean=0.97), "rgb": _stats(0.9)})   # 0.9 is not > 0.9
  assert [(w.network, w.statistic) for w in fired] == [("flow", "share_above_0.95")]
  assert guard.collapsed_networks() == ["flow > 0.95"]


def test_guard_final_check_and_disabled_guard():
  result = {"low": 0.05, "high": 0.95, "networks": {
      "rgb": {"mean": 0.001, "share_below": 1.0, "share_above": 0.0, "num_segments": 100, "median_video_auc": 0.25},
      "flow": {"mean": 0.6, "share_below": 0.1, "share_above": 0.3, "num_segments": 100}}}
  guard = ah.CollapseGuard()
  (w,) = guard.final_check(result, step=500)
  assert (w.network, w.where, w.last_step) == ("rgb", "final_evaluation", 500)
  assert "at the final evaluation (median per-video attention AUC 0.250)" in w.message
  off = ah.CollapseGuard(enabled=False)
  assert off.final_check(result) == [] and off.update(1, {"rgb": _stats(1.0)}) == []


def test_guard_rejects_bad_settings():
  with pytest.raises(ValueError, match="patience"):
    ah.CollapseGuard(patience=0)
  with pytest.raises(ValueError, match="low"):
    ah.CollapseGuard(low=0.9, high=0.1)
  with pytest.raises(ValueError, match="max_share"):
    ah.CollapseGuard(max_share=1.0)


def test_segment_instance_depth_by_hand():
  # rate 1/s: centres 0.5, 1.5, ..., 9.5. Instance [1, 9] (half length 4): centre 1.5 -> 0.5 / 4 = 0.125,
  # 2.5 -> 0.375, 3.5 -> 0.625, 4.5 -> 0.875, 5.5 -> 0.875 (3.5 from the end), ...; 0.5 and 9.5 lie outside.
  depth = ah.segment_instance_depth(10, np.array([[1.0, 9.0]]), 1.0)
  np.testing.assert_allclose(depth, [0, 0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125, 0])
  # Two instances, the deeper one counts: centre 0.5 lies in [0, 4] at depth 0.5 / 2 = 0.25; centre 1.5 at depth
  # 0.75 in [0, 4] and at the exact middle of [1, 2] (depth 1); centre 2.5 in [0, 4] only: 1.5 / 2 = 0.75.
  depth = ah.segment_instance_depth(3, np.array([[0.0, 4.0], [1.0, 2.0]]), 1.0)
  np.testing.assert_allclose(depth, [0.25, 1.0, 0.75])
  np.testing.assert_array_equal(ah.segment_instance_depth(2, np.zeros((0, 2)), 1.0), [0, 0])
  with pytest.raises(ValueError, match="feature_rate"):
    ah.segment_instance_depth(2, np.zeros((0, 2)), -1.0)


def test_attention_health_reports_core_and_ends_aucs():
  # One video, rate 1/s, instance [1, 9]: positives 1..8; core (depth >= 0.5) 3..6, ends 1, 2, 7, 8; negatives 0, 9.
  # rgb: core 0.9 each, ends 0.1 / 0.3 / 0.3 / 0.1, negatives 0.2, 0.2.
  #   core vs negatives: all 4 x 2 = 8 pairs won -> 1.0; ends vs negatives: each 0.3 beats both (4 pairs), each 0.1
  #   loses both: 4 / 8 = 0.5. Overall: 8 positives x 2 negatives = 16 pairs, 8 + 4 won: 0.75.
  att = np.array([0.2, 0.1, 0.3, 0.9, 0.9, 0.9, 0.9, 0.3, 0.1, 0.2])
  info = {"video_id": "v", "num_segments": 10, "segments": np.array([[1.0, 9.0]])}
  health = ah.AttentionHealth(["rgb"])
  health.update_video(info, {"rgb": {"attention": att}}, 1.0)
  r = health.result()["networks"]["rgb"]
  assert r["median_video_auc"] == pytest.approx(0.75)
  assert r["median_video_auc_core"] == pytest.approx(1.0)
  assert r["median_video_auc_ends"] == pytest.approx(0.5)
  assert "instance cores 1.000 / ends 0.500" in ah.format_result(health.result())
  # Without the core mask (update() called directly) the parts are not reported; nor for a video with no negatives.
  plain = ah.AttentionHealth(["rgb"])
  plain.update("rgb", att, att > 0.25)
  plain.update("rgb", np.ones(3), np.ones(3, bool), core=np.array([1, 0, 1], bool))
  r = plain.result()["networks"]["rgb"]
  assert r["median_video_auc_core"] is None and r["median_video_auc_ends"] is None
  assert "instance cores" not in ah.format_result(plain.result())


def test_attention_health_rejects_a_core_mask_of_another_length():
  health = ah.AttentionHealth(["rgb"])
  with pytest.raises(ValueError, match="core mask has 2 segments, positives 3"):
    health.update("rgb", np.zeros(3), np.array([1, 0, 0], bool), core=np.ones(2, bool))
