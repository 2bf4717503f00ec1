"""Tests for stpn_tf/data/synthetic.py: determinism, the tiny preset's layout, ground truth and the cache."""

import dataclasses
import itertools
import os

import numpy as np
import pytest

from stpn_tf.data import schema
from stpn_tf.data import synthetic


def _videos(split="train", seed=0, n=None, preset="tiny"):
  return list(itertools.islice(synthetic.generate_videos(preset, split, seed), n))


@pytest.fixture(scope="module")
def tiny():
  return {split: _videos(split) for split in synthetic.SPLITS}


def test_same_seed_gives_identical_videos():
  a, b = _videos(n=3), _videos(n=3)
  for x, y in zip(a, b):
    assert x.video_id == y.video_id
    np.testing.assert_array_equal(x.rgb, y.rgb)
    np.testing.assert_array_equal(x.flow, y.flow)
    np.testing.assert_array_equal(x.segments, y.segments)
    np.testing.assert_array_equal(x.segment_labels, y.segment_labels)


def test_different_seed_gives_different_videos():
  a, b = _videos(n=2, seed=0), _videos(n=2, seed=1)
  for x, y in zip(a, b):
    assert x.rgb.shape != y.rgb.shape or not np.allclose(x.rgb, y.rgb)


def test_tiny_layout(tiny):
  cfg = synthetic.TINY
  assert len(tiny["train"]) == 32 and len(tiny["test"]) == 16
  assert cfg.num_classes == 4 and set(cfg.class_names) <= set(synthetic.THUMOS14_CLASSES)
  for split, videos in tiny.items():
    prefix = "video_validation_" if split == "train" else "video_test_"
    assert all(v.video_id.startswith(prefix) for v in videos)
    assert len({v.video_id for v in videos}) == len(videos)
    for v in videos:
      assert 30 <= v.num_segments <= 150
      assert v.rgb.shape == v.flow.shape == (v.num_segments, 1024)
      assert v.rgb.dtype == v.flow.dtype == np.float32
      # duration = T / rate plus less than one segment.
      assert v.num_segments / cfg.feature_rate <= v.duration < (v.num_segments + 1) / cfg.feature_rate
  # Round-robin primary classes: every class appears in both splits.
  for videos in tiny.values():
    assert set(np.concatenate([v.labels for v in videos]).tolist()) == set(range(cfg.num_classes))


def test_features_are_non_negative_and_finite(tiny):
  for v in tiny["train"] + tiny["test"]:
    for x in (v.rgb, v.flow):
      assert np.all(np.isfinite(x)) and x.min() >= 0.0
      # Post-ReLU magnitudes: sparse but not degenerate.
      assert 0.05 < x.mean() < 2.0 and (x > 0).mean() > 0.2


def test_ground_truth_is_inside_the_video_and_matches_the_labels(tiny):
  for v in tiny["train"] + tiny["test"]:
    assert v.segments.shape == (v.segment_labels.size, 2) and v.segment_labels.size >= 1
    assert np.all(v.segments[:, 0] >= 0) and np.all(v.segments[:, 1] <= v.duration)
    assert np.all(v.segments[:, 1] > v.segments[:, 0])
    assert set(v.segment_labels.tolist()) == set(v.labels.tolist())
    assert np.all(np.diff(v.segments[:, 0]) >= 0)   # sorted by start


def test_action_segments_carry_class_evidence(tiny):
  """Nearest class mean on flow features of action segments, fitted on train, far above chance (0.25) on test."""
  rate = synthetic.TINY.feature_rate

  def labelled(videos):
    xs, ys = [], []
    for v in videos:
      centre = (np.arange(v.num_segments) + 0.5) / rate
      y = np.full(v.num_segments, -1)
      for (start, end), c in zip(v.segments, v.segment_labels):
        y[(centre >= start) & (centre < end)] = c
      xs.append(v.flow[y >= 0])
      ys.append(y[y >= 0])
    return np.concatenate(xs), np.concatenate(ys)

  x, y = labelled(tiny["train"])
  xt, yt = labelled(tiny["test"])
  means = np.stack([x[y == c].mean(0) for c in range(4)])
  pred = np.argmin(((xt[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
  assert (pred == yt).mean() > 0.6


def test_thumos14_preset_first_videos():
  cfg = synthetic.THUMOS14
  assert cfg.num_classes == 20 and cfg.class_names == synthetic.THUMOS14_CLASSES
  assert cfg.split_sizes() == {"train": 200, "test": 212}
  for v in _videos("test", n=2, preset="thumos14"):
    assert v.rgb.shape[1] == v.flow.shape[1] == 1024
    assert v.video_id.startswith("video_test_")
    assert cfg.min_duration_s <= v.duration <= cfg.max_duration_s


def test_coverage_matches_hand_computation():
  # [0, 2] and [1, 3] overlap: union 3 s of a 10 s video; [8, 9] adds 1 s.
  segments = np.array([[0.0, 2.0], [1.0, 3.0], [8.0, 9.0]])
  assert synthetic.coverage(segments, 10.0) == pytest.approx(0.4)
  assert synthetic.coverage(np.zeros((0, 2)), 10.0) == 0.0


def test_placed_events_do_not_overlap():
  rng = np.random.default_rng(0)
  lengths = rng.uniform(1, 5, size=50)
  starts = synthetic._place(lengths, 400.0, 0.5, rng)  # pylint: disable=protected-access
  ends = starts + lengths
  assert starts[0] >= 0 and ends[-1] <= 400.0 + 1e-9
  assert np.all(starts[1:] >= ends[:-1] - 1e-9)


def test_generate_writes_a_readable_dataset(tmp_path):
  out = str(tmp_path / "tiny")
  manifest = synthetic.generate(out, "tiny", seed=0)
  assert manifest.class_names == list(synthetic.TINY.class_names)
  assert manifest.extra["generator"] == "stpn_tf.data.synthetic"
  assert manifest.extra["preset"] == "tiny" and manifest.extra["seed"] == 0
  assert manifest.extra["config"]["flow"]["class_strength"] == synthetic.TINY.flow.class_strength
  assert manifest.extra["stats"]["train"]["num_videos"] == 32
  read = list(schema.read_videos(out, "test"))
  expected = _videos("test")
  assert [v.video_id for v in read] == [v.video_id for v in expected]
  np.testing.assert_array_equal(read[0].flow, expected[0].flow)
  np.testing.assert_allclose(read[0].segments, expected[0].segments)
  with pytest.raises(FileExistsError):
    synthetic.generate(out, "tiny", seed=0)


def test_ensure_dataset_reuses_a_complete_directory(tmp_path, monkeypatch):
  data_dir = synthetic.ensure_dataset(str(tmp_path), "tiny", seed=0)
  assert os.path.basename(data_dir) == f"tiny-seed0-v{synthetic.GENERATOR_VERSION}"
  manifest_path = os.path.join(data_dir, schema.MANIFEST_NAME)
  mtime = os.path.getmtime(manifest_path)

  def fail(*args, **kwargs):
    raise AssertionError("ensure_dataset regenerated a complete dataset")

  monkeypatch.setattr(synthetic, "generate", fail)
  assert synthetic.ensure_dataset(str(tmp_path), "tiny", seed=0) == data_dir
  assert os.path.getmtime(manifest_path) == mtime


def test_ensure_dataset_regenerates_an_interrupted_directory(tmp_path):
  data_dir = os.path.join(str(tmp_path), synthetic.dataset_name("tiny", 0))
  os.makedirs(data_dir)
  # What a killed generation leaves: a temporary shard and no manifest.
  with open(os.path.join(data_dir, ".tmp-deadbeef-train-00000.tfrecord"), "wb") as f:
    f.write(b"partial")
  assert synthetic.ensure_dataset(str(tmp_path), "tiny", seed=0) == data_dir
  manifest = schema.read_manifest(data_dir)
  assert manifest.splits["train"]["num_videos"] == 32
  assert not [n for n in os.listdir(data_dir) if n.startswith(".tmp-")]


def test_unknown_preset_is_rejected(tmp_path):
  with pytest.raises(ValueError, match="unknown synthetic preset"):
    synthetic.ensure_dataset(str(tmp_path), "kinetics")


def test_sparse_patterns_have_the_stated_density_and_unit_mean():
  rng = np.random.default_rng(0)
  p = synthetic._sparse_patterns(rng, 200, 1024, 0.04, 2.0)  # pylint: disable=protected-access
  assert p.shape == (200, 1024) and p.min() >= 0.0
  active = p > 0
  assert abs(active.mean() - 0.04) < 0.005
  # Mean over a pattern's active channels is exactly 1 (the unit of the *_strength settings).
  np.testing.assert_allclose(p.sum(1) / active.sum(1), 1.0, rtol=1e-5)


def test_dense_latent_feature_model_still_generates():
  """Generator v2's feature family stays available (preset thumos14_v2) for the comparison of families."""
  assert synthetic.THUMOS14_V2.feature_model == "dense_latent"
  v = next(synthetic.generate_videos("thumos14_v2", "test", 0))
  assert v.rgb.shape[1] == 1024 and v.rgb.min() >= 0.0
  # Same layout as v3 (the layout code is shared): same ids, durations and ground truth.
  w = next(synthetic.generate_videos("thumos14", "test", 0))
  assert v.video_id == w.video_id and v.duration == w.duration
  with pytest.raises(ValueError, match="unknown feature_model"):
    next(synthetic.generate_videos(dataclasses.replace(synthetic.TINY, feature_model="gan"), "test", 0))


def test_thumos14_is_v4_and_tiny_keeps_the_v2_family():
  assert synthetic.GENERATOR_VERSION == 4 and synthetic.PRESETS["thumos14"] is synthetic.THUMOS14
  assert synthetic.THUMOS14.feature_model == "sparse_parts" and synthetic.THUMOS14.foreground_occlusion == 0.9
  # v4 = v3 (the field defaults, preset thumos14_v3) with candidate V8's confusable, class-bearing context.
  assert synthetic.PRESETS["thumos14_v3"] == synthetic.SyntheticConfig()
  assert synthetic.THUMOS14.context_core_share == 0.8 and synthetic.THUMOS14_V3.context_core_share == 0.0
  assert synthetic.THUMOS14.rgb.class_strength == 3.0 and synthetic.THUMOS14.flow.actionness_strength == 4.0
  # v2 and v3 keep v3's layout knobs (not v4's).
  assert synthetic.THUMOS14_V2.distractors_per_instance == synthetic.THUMOS14_V3.distractors_per_instance == 0.35
  assert synthetic.TINY.feature_model == "dense_latent"
  v = next(synthetic.generate_videos("thumos14", "train", 0))
  assert v.flow.min() >= 0.0 and 0.1 < v.flow.mean() < 1.0


def test_tiny_v4_is_the_tiny_layout_with_v4_features():
  assert synthetic.PRESETS["tiny_v4"] is synthetic.TINY_V4
  assert synthetic.TINY_V4.feature_model == "sparse_parts" and synthetic.TINY_V4.rgb == synthetic.THUMOS14.rgb
  assert synthetic.TINY_V4.class_names == synthetic.TINY.class_names
  assert synthetic.TINY_V4.context_core_share == synthetic.THUMOS14.context_core_share
  a = next(synthetic.generate_videos("tiny_v4", "test", 0))
  b = next(synthetic.generate_videos("tiny", "test", 0))
  assert a.video_id == b.video_id and a.duration == b.duration and a.rgb.shape == b.rgb.shape
  np.testing.assert_array_equal(a.segments, b.segments)
  assert a.rgb.min() >= 0.0 and not np.array_equal(a.rgb, b.rgb)


def test_context_class_scale_changes_only_context_segments_of_its_stream():
  base = synthetic.THUMOS14
  cfg = dataclasses.replace(base, flow=dataclasses.replace(base.flow, context_class_scale=0.0))
  a = next(synthetic.generate_videos(base, "train", 0))
  b = next(synthetic.generate_videos(cfg, "train", 0))
  np.testing.assert_array_equal(a.rgb, b.rgb)                 # the other stream: identical
  changed = np.any(a.flow != b.flow, axis=1)
  assert changed.any() and not changed.all()
  assert np.all(b.flow.sum(axis=1)[changed] < a.flow.sum(axis=1)[changed])   # class evidence removed, not added


def test_small_v4_is_v4_with_fewer_shorter_videos():
  cfg = synthetic.PRESETS["small_v4"]
  assert cfg is synthetic.SMALL_V4 and cfg.num_classes == 20 and cfg.split_sizes() == {"train": 64, "test": 24}
  # Every v4 feature and confuser setting; only the number and length of the videos differ.
  same = dataclasses.replace(cfg, num_videos=synthetic.THUMOS14.num_videos,
                             videos_per_shard=synthetic.THUMOS14.videos_per_shard,
                             **{f: getattr(synthetic.THUMOS14, f) for f in (
                                 "duration_log_mean", "duration_log_std", "min_duration_s", "max_duration_s")})
  assert same == synthetic.THUMOS14
  v = next(synthetic.generate_videos("small_v4", "train", 0))
  assert 19.5 <= v.duration <= 95.0 and v.rgb.min() >= 0.0


def test_foreground_occlusion_changes_only_action_segments():
  """An action hides part of the context: with occlusion, segments with actionness lose context responses;
  segments with none are unchanged (the same random draws either way)."""
  cfg = dataclasses.replace(synthetic.TINY, feature_model="sparse_parts", rgb=synthetic.THUMOS14.rgb,
                            flow=synthetic.THUMOS14.flow, foreground_occlusion=0.0, context_prob=0.0,
                            distractors_per_instance=0.0, other_actions_per_minute=0.0)
  a = next(synthetic.generate_videos(cfg, "train", 0))
  b = next(synthetic.generate_videos(dataclasses.replace(cfg, foreground_occlusion=0.5), "train", 0))
  rate = cfg.feature_rate
  start, end = np.arange(a.num_segments) / rate, (np.arange(a.num_segments) + 1) / rate
  touched = ((start[:, None] < a.segments[:, 1]) & (end[:, None] > a.segments[:, 0])).any(1)
  np.testing.assert_array_equal(a.flow[~touched], b.flow[~touched])
  assert np.all(b.flow[touched].sum(1) < a.flow[touched].sum(1))


def test_fft_size_is_the_next_2_3_5_smooth_length():
  assert [synthetic._fft_size(n) for n in (1, 2, 7, 11, 17, 97, 378, 395, 1057)] == [
      1, 2, 8, 12, 18, 100, 384, 400, 1080]


@pytest.mark.parametrize("length", [1, 5, 49, 347])
def test_smooth_noise_is_the_linear_convolution_with_the_gaussian_taps(length):
  sigma = 2.0
  noise = synthetic._smooth_noise(np.random.default_rng(3), length, 4, sigma)
  white = np.random.default_rng(3).standard_normal((length, 4), dtype=np.float32)
  half = int(np.ceil(3 * sigma))
  taps = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
  taps /= np.linalg.norm(taps)
  direct = np.stack([np.convolve(white[:, j].astype(np.float64), taps)[half:half + length] for j in range(4)], 1)
  np.testing.assert_allclose(noise, direct, rtol=1e-5, atol=1e-5)


def test_per_stream_occlusion_overrides_the_global_one_for_that_stream_only():
  cfg = dataclasses.replace(synthetic.TINY, feature_model="sparse_parts", rgb=synthetic.THUMOS14.rgb,
                            flow=synthetic.THUMOS14.flow, foreground_occlusion=0.9)
  a = next(synthetic.generate_videos(cfg, "train", 0))
  same = dataclasses.replace(cfg, rgb=dataclasses.replace(cfg.rgb, foreground_occlusion=0.9))
  b = next(synthetic.generate_videos(same, "train", 0))
  np.testing.assert_array_equal(a.rgb, b.rgb)
  less = dataclasses.replace(cfg, rgb=dataclasses.replace(cfg.rgb, foreground_occlusion=0.3))
  c = next(synthetic.generate_videos(less, "train", 0))
  np.testing.assert_array_equal(a.flow, c.flow)
  assert c.rgb.sum() > a.rgb.sum()   # less of the context hidden where actions are


def test_context_core_share_moves_only_context_segments_toward_the_core_unit():
  cfg = dataclasses.replace(synthetic.TINY, feature_model="sparse_parts", rgb=synthetic.THUMOS14.rgb,
                            flow=synthetic.THUMOS14.flow, context_prob=1.0, distractors_per_instance=0.0,
                            other_actions_per_minute=0.0)
  a = next(synthetic.generate_videos(cfg, "train", 0))
  b = next(synthetic.generate_videos(dataclasses.replace(cfg, context_core_share=0.0), "train", 0))
  np.testing.assert_array_equal(a.rgb, b.rgb)   # 0 is the v3 generator
  c = next(synthetic.generate_videos(dataclasses.replace(cfg, context_core_share=0.6), "train", 0))
  changed = np.abs(c.rgb - a.rgb).max(axis=1) > 0
  assert changed.any()
  # Segments changed are context (next to instances), never inside a labeled instance away from its ends.
  rate = cfg.feature_rate
  centres = (np.arange(a.num_segments) + 0.5) / rate
  margin = 1.5 / rate   # more than a segment and a half inside a labeled instance
  deep = ((centres[:, None] > a.segments[:, 0] + margin) & (centres[:, None] < a.segments[:, 1] - margin)).any(axis=1)
  assert deep.any() and not (changed & deep).any()


def test_segment_event_kinds_by_hand():
  # rate 1.5625 segments / s: segment t covers [0.64 t, 0.64 (t + 1)).
  cfg = synthetic.TINY
  ev = synthetic._Events(start=np.array([0.64, 1.6, 3.2]), end=np.array([1.92, 2.56, 3.5]),
                         kind=np.array([synthetic._GT, synthetic._CONTEXT, synthetic._OTHER]),
                         label=np.zeros(3, int), class_mult=np.ones(3), act_mult=np.ones(3),
                         phase=np.full(3, -1))
  kinds = synthetic.segment_event_kinds(cfg, ev, 7)
  # t=0 [0, .64): nothing; t=1 [.64, 1.28): instance; t=2 [1.28, 1.92): instance (1.0) over context (0.5);
  # t=3 [1.92, 2.56): context; t=4 [2.56, 3.2): nothing; t=5 [3.2, 3.84): other covers 0.3 / 0.64 < half.
  np.testing.assert_array_equal(kinds, [-1, 0, 0, 4, -1, -1, -1])
  assert synthetic.EVENT_KINDS[4] == "context"


def test_video_event_kinds_lay_out_the_generated_videos(tiny):
  kinds = dict(synthetic.video_event_kinds("tiny", "test", 0))
  assert list(kinds) == [v.video_id for v in tiny["test"]]
  for video in tiny["test"]:
    k = kinds[video.video_id]
    assert k.shape == (video.rgb.shape[0],)
    assert set(np.unique(k)) <= {-1, 0, 1, 2, 3, 4}
    for start, end in video.segments:   # an instance's segments that it covers whole are instance segments
      first, last = int(np.ceil(start * 1.5625)), int(np.floor(end * 1.5625)) - 1
      if last >= first:
        assert np.all(k[first:last + 1] == 0), (video.video_id, start, end)
    assert np.any(k == -1)


def test_config_from_manifest_rebuilds_the_generator_config(tmp_path):
  cfg = dataclasses.replace(synthetic.TINY, num_videos=(("train", 2), ("test", 2)))
  manifest = synthetic.generate(str(tmp_path / "d"), cfg, seed=3)
  again, seed = synthetic.config_from_manifest(schema.read_manifest(str(tmp_path / "d")))
  assert again == cfg and seed == 3
  other = dataclasses.replace(manifest, extra={**manifest.extra, "generator_version": 2})
  with pytest.raises(ValueError, match="version 2"):
    synthetic.config_from_manifest(other)
  with pytest.raises(ValueError, match="not written by the built-in synthetic generator"):
    synthetic.config_from_manifest(dataclasses.replace(manifest, extra={"converter": "x"}))


def test_class_ramp_power_bends_the_class_envelope_only():
  cfg = dataclasses.replace(synthetic.TINY, class_edge_floor=0.0, class_ramp_fraction=0.5)
  ev = synthetic._Events(start=np.array([0.0]), end=np.array([6.4]), kind=np.array([synthetic._GT]),
                         label=np.zeros(1, int), class_mult=np.ones(1), act_mult=np.ones(1), phase=np.full(1, -1))
  cls1, act1 = synthetic._envelopes(cfg, ev, 10)
  cls2, act2 = synthetic._envelopes(dataclasses.replace(cfg, class_ramp_power=2.0), ev, 10)
  np.testing.assert_array_equal(act1, act2)
  env1, env2 = cls1.sum(axis=-1)[:, 0], cls2.sum(axis=-1)[:, 0]   # the phase hats sum to 1
  # Segment 1 (centre 0.96 s of a 6.4 s instance): edge 0.15, ramp 0.3 -> 0.3 and 0.09.
  np.testing.assert_allclose([env1[1], env2[1]], [0.3, 0.09], rtol=1e-5)
  np.testing.assert_allclose(env2, env1 ** 2, rtol=1e-5)
