"""The decode-once training cache (pipeline.DecodedSplit): same batches as streaming, budget fallback."""

import numpy as np
import pytest
from absl import logging

from stpn_tf.data import pipeline
from stpn_tf.data import sampling
from tests import testing_utils


def _batches(data_dir, n, **kwargs):
  ds = pipeline.make_train_dataset(str(data_dir), seed=3, deterministic=True, **kwargs)
  return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


@pytest.mark.parametrize("sampler,holdout", [(sampling.UniformPerturbedSampler(num_segments=12), None),
                                             (sampling.AllSegmentsSampler(), pipeline.Holdout(0.3, seed=1))])
def test_cached_batches_equal_streamed_batches_over_several_epochs(tmp_path, sampler, holdout):
  # 7 videos in 4 shards, batches of 2 for 12 steps: more than 3 passes, so the per-epoch file reshuffle and
  # the shuffle buffer's reshuffle are both exercised.
  testing_utils.write_random_dataset(tmp_path, num_train=7, lengths=(5, 30))
  kwargs = dict(batch_size=2, sampler=sampler, shuffle_buffer=3, holdout=holdout)
  streamed = _batches(tmp_path, 12, **kwargs)
  cached = _batches(tmp_path, 12, cache_decoded=True, **kwargs)
  assert len(streamed) == len(cached) == 12
  for a, b in zip(streamed, cached):
    assert sorted(a) == sorted(b)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  ids = {i for b in streamed for i in b["video_id"]}
  assert len(ids) > 2     # not one video repeated


def test_cache_over_budget_falls_back_to_streaming_with_a_log_line(tmp_path, monkeypatch):
  testing_utils.write_random_dataset(tmp_path, num_train=4)
  lines = []
  monkeypatch.setattr(logging, "info", lambda msg, *args: lines.append(msg % args))
  assert pipeline.DecodedSplit.load(str(tmp_path), "train", ("rgb", "flow"), budget_mb=1e-4) is None
  assert any("not caching the decoded split" in line for line in lines)
  kwargs = dict(batch_size=2, sampler=sampling.UniformPerturbedSampler(num_segments=6))
  for a, b in zip(_batches(tmp_path, 3, **kwargs), _batches(tmp_path, 3, cache_decoded=True, cache_budget_mb=1e-4,
                                                                 **kwargs)):
    np.testing.assert_array_equal(a["rgb"], b["rgb"])


def test_decoded_split_holds_every_video_once(tmp_path):
  testing_utils.write_random_dataset(tmp_path, num_train=5, lengths=(5, 9))
  table = pipeline.DecodedSplit.load(str(tmp_path), "train", ("rgb",))
  videos = {v.video_id: v for v in pipeline.schema.read_videos(str(tmp_path), "train")}
  assert sorted(i.decode() for i in table.video_ids.numpy()) == sorted(videos)
  for i, vid in enumerate(table.video_ids.numpy()):
    first, n = int(table.first_row[i]), int(table.num_segments[i])
    np.testing.assert_array_equal(table.features["rgb"].numpy()[first:first + n], videos[vid.decode()].rgb)
  assert "flow" not in table.features and table.nbytes == sum(v.rgb.nbytes for v in videos.values())


def test_cached_pipeline_iterator_checkpoints_and_resumes(tmp_path):
  """tf.train.Checkpoint(iterator=...) of a cached pipeline: a new pipeline restored from it continues with the
  same batches, and the state holds the shuffle buffer's table indices and the prefetched batches, not the table
  (it is no larger than the streaming pipeline's, whose shuffle buffer holds serialized videos)."""
  import tensorflow as tf
  # 256-d features: the table (~200 kB) would show in the checkpoint's size.
  testing_utils.write_random_dataset(tmp_path / "data", num_train=7, lengths=(5, 30), dim=256)
  sizes = {}
  for cache in (False, True):
    make = lambda: pipeline.make_train_dataset(str(tmp_path / "data"), batch_size=2, seed=3, deterministic=True,
                                               cache_decoded=cache, shuffle_buffer=3,
                                               sampler=sampling.UniformPerturbedSampler(num_segments=12))
    it = iter(make())
    for _ in range(5):
      next(it)
    path = tf.train.Checkpoint(iterator=it).write(str(tmp_path / f"ckpt_{cache}"))
    expected = [next(it)["rgb"].numpy() for _ in range(4)]
    resumed = iter(make())
    tf.train.Checkpoint(iterator=resumed).read(path).assert_consumed()
    for a in expected:
      np.testing.assert_array_equal(next(resumed)["rgb"].numpy(), a)
    sizes[cache] = sum(f.stat().st_size for f in tmp_path.iterdir() if f.name.startswith(f"ckpt_{cache}"))
  assert sizes[True] <= sizes[False], sizes
