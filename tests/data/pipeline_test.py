"""tf.data pipelines (stpn_tf/data/pipeline.py): shapes, masks, determinism, sharding."""

import numpy as np
import tensorflow as tf

from stpn_tf.data import pipeline
from stpn_tf.data import sampling
from stpn_tf.data import schema
from tests import testing_utils


def _video_rows(data_dir, split):
  return {v.video_id: v for v in schema.read_videos(str(data_dir), split)}


def test_train_batches_hold_sampled_rows_of_the_right_video(tmp_path):
  testing_utils.write_random_dataset(tmp_path, num_train=6, lengths=(5, 30))
  videos = _video_rows(tmp_path, "train")
  ds = pipeline.make_train_dataset(str(tmp_path), batch_size=3, seed=0, deterministic=True,
                                   sampler=sampling.UniformPerturbedSampler(num_segments=12))
  batch = next(iter(ds))
  assert batch["rgb"].shape == (3, 12, 8) and batch["mask"].shape == (3, 12) and batch["labels"].shape == (3, 3)
  for i in range(3):
    video = videos[batch["video_id"][i].numpy().decode()]
    n = int(batch["mask"][i].numpy().sum())
    assert n == min(12, video.num_segments)
    # Every real row is a row of that video's features, in temporal order.
    rows = batch["rgb"][i].numpy()[:n]
    matches = [int(np.flatnonzero((video.rgb == r).all(axis=1))[0]) for r in rows]
    assert matches == sorted(matches)
    np.testing.assert_array_equal(batch["rgb"][i].numpy()[n:], 0.0)
    assert batch["labels"][i].numpy()[video.labels[0]] == 1.0


def test_seeded_pipeline_is_deterministic(tmp_path):
  testing_utils.write_random_dataset(tmp_path, num_train=6)
  def first_batches(seed):
    ds = pipeline.make_train_dataset(str(tmp_path), batch_size=2, seed=seed, deterministic=True,
                                     sampler=sampling.UniformPerturbedSampler(num_segments=10))
    return [b["rgb"].numpy() for b in ds.take(4)]
  a, b, c = first_batches(1), first_batches(1), first_batches(2)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_all_segments_sampler_pads_to_longest(tmp_path):
  testing_utils.write_random_dataset(tmp_path, num_train=4, lengths=(5, 30))
  ds = pipeline.make_train_dataset(str(tmp_path), batch_size=4, seed=0, shuffle_buffer=1, repeat=False,
                                   sampler=sampling.AllSegmentsSampler(bucket_ratio=None))
  batch = next(iter(ds))
  lengths = batch["mask"].numpy().sum(axis=1)
  assert batch["rgb"].shape[1] == lengths.max()
  videos = _video_rows(tmp_path, "train")
  for i in range(4):
    assert lengths[i] == videos[batch["video_id"][i].numpy().decode()].num_segments


def test_eval_dataset_is_complete_and_in_order(tmp_path):
  testing_utils.write_random_dataset(tmp_path, num_test=5)
  ids = [b["video_id"][0].numpy().decode() for b in pipeline.make_eval_dataset(str(tmp_path), "test")]
  assert ids == [f"test_{i:03d}" for i in range(5)]


def test_input_context_gives_disjoint_shares(tmp_path):
  testing_utils.write_random_dataset(tmp_path, num_train=8)   # 4 shards of 2 videos
  seen = []
  for pid in range(2):
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid, num_replicas_in_sync=2)
    ds = pipeline.make_train_dataset(str(tmp_path), batch_size=2, seed=0, repeat=False, input_context=ctx,
                                     sampler=sampling.UniformPerturbedSampler(num_segments=4))
    ids = {v.decode() for b in ds for v in b["video_id"].numpy()}
    seen.append(ids)
  assert not seen[0] & seen[1]
  assert len(seen[0] | seen[1]) == 8


def test_several_datasets_mix_into_one_stream(tmp_path):
  testing_utils.write_random_dataset(tmp_path / "a", num_train=4)
  extra = [testing_utils.random_video(f"extra_{i}", 10, seed=50 + i) for i in range(4)]
  schema.write_dataset(str(tmp_path / "b"), {"train": extra}, ["class0", "class1", "class2"], 1.5625,
                       feature_dims={"rgb": 8, "flow": 8})
  ds = pipeline.make_train_dataset([str(tmp_path / "a"), str(tmp_path / "b")], batch_size=2, seed=0,
                                   sampler=sampling.UniformPerturbedSampler(num_segments=4))
  ids = [v.decode() for b in ds.take(30) for v in b["video_id"].numpy()]
  from_b = sum(i.startswith("extra_") for i in ids)
  assert 0 < from_b < len(ids)                     # both datasets feed the stream
  assert 15 <= from_b <= 45                        # about half, by their video counts (4 and 4)


def test_mixing_different_class_lists_is_refused(tmp_path):
  testing_utils.write_random_dataset(tmp_path / "a", num_classes=3)
  testing_utils.write_random_dataset(tmp_path / "b", num_classes=4)
  import pytest
  with pytest.raises(schema.DataFormatError, match="different class lists"):
    pipeline.make_train_dataset([str(tmp_path / "a"), str(tmp_path / "b")])
