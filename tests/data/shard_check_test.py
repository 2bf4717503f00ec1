"""The CRC pass over TFRecord shards (stpn_tf/data/shard_check.py) and the trainer's use of it (issue 19,
item 5)."""

import os

import gin
import pytest
import tensorflow as tf

from stpn_tf import config
from stpn_tf.data import schema
from stpn_tf.data import shard_check
from stpn_tf.training import trainer
from tests import testing_utils

TINY = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
        "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0"]


def _corrupt(path):
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0xFF      # a flipped byte inside a record's features: its data CRC fails
  with open(path, "wb") as f:
    f.write(bytes(data))


def _train(data_dir, model_dir, params=()):
  gin.clear_config()
  config.parse_gin(["stpn.gin"], TINY + list(params))
  try:
    return trainer.train_eval(str(model_dir), str(data_dir), num_steps=2)
  finally:
    gin.clear_config()


def _dataset(path):
  testing_utils.write_random_dataset(path, num_train=8, num_test=3, dim=16)
  return str(path)


def test_check_split_names_every_bad_shard(tmp_path):
  data_dir = _dataset(tmp_path / "d")
  shard_check.check_split(data_dir, "train")
  paths = schema.read_manifest(data_dir).shard_paths(data_dir, "train")
  _corrupt(paths[1])
  with open(paths[3], "r+b") as f:
    f.truncate(os.path.getsize(paths[3]) - 7)    # an interrupted copy
  assert [p for p, _ in shard_check.corrupt_shards(paths)] == [paths[1], paths[3]]
  with pytest.raises(shard_check.CorruptShardError, match=f"{paths[1]}: corrupted record at .*{paths[3]}:") as info:
    shard_check.check_split(data_dir, "train")
  assert "function_node" not in str(info.value) and "[Op:" not in str(info.value)


def test_item5_corrupted_shard_named(tmp_path):
  # A corrupt training shard: the error names it (was "DataLossError: corrupted record at N", no file name),
  # whether the split is decoded once into memory before training or streamed by the training steps.
  data_dir = _dataset(tmp_path / "a")
  bad = schema.read_manifest(data_dir).shard_paths(data_dir, "train")[2]
  _corrupt(bad)
  for cache in (True, False):
    with pytest.raises(shard_check.CorruptShardError, match=f"split 'train' of {data_dir}: {bad}: corrupted record"):
      _train(data_dir, tmp_path / f"model_a_{cache}", [f"train_eval.cache_train_split = {cache}"])
  # A corrupt test shard is found before training, not after it.
  data_dir = _dataset(tmp_path / "b")
  bad = schema.read_manifest(data_dir).shard_paths(data_dir, "test")[1]
  _corrupt(bad)
  with pytest.raises(shard_check.CorruptShardError, match=f"split 'test' of {data_dir}: {bad}: corrupted record"):
    _train(data_dir, tmp_path / "model_b")
  assert not tf.train.latest_checkpoint(str(tmp_path / "model_b"))
