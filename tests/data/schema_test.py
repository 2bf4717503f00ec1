"""Round trip and bad-input tests of the TFRecord format (stpn_tf/data/schema.py)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.data import pipeline
from stpn_tf.data import schema
from tests import testing_utils


def test_round_trip_preserves_arrays_labels_segments(tmp_path):
  videos = [testing_utils.random_video(f"v{i}", 3 + 7 * i, seed=i) for i in range(4)]
  videos[1].labels = np.array([0, 2])
  videos[1].segments = np.array([[0.0, 1.0], [2.5, 3.25]], np.float32)
  videos[1].segment_labels = np.array([2, 0])
  videos[2].segments = np.zeros((0, 2), np.float32)
  videos[2].segment_labels = np.zeros((0,), np.int64)
  schema.write_dataset(str(tmp_path), {"train": videos}, ["a", "b", "c"], 1.5625,
                       feature_dims={"rgb": 8, "flow": 8}, videos_per_shard=3)
  back = list(schema.read_videos(str(tmp_path), "train"))
  assert [v.video_id for v in back] == [v.video_id for v in videos]
  for a, b in zip(videos, back):
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.flow, b.flow)
    np.testing.assert_array_equal(np.sort(a.labels), b.labels)
    np.testing.assert_array_equal(a.segments, b.segments)
    np.testing.assert_array_equal(a.segment_labels, b.segment_labels)
    assert b.duration == pytest.approx(a.duration, rel=1e-6)


def test_manifest_written_last_and_describes_dataset(tmp_path):
  manifest = testing_utils.write_random_dataset(tmp_path, num_train=5, num_test=2)
  assert manifest.splits["train"]["num_videos"] == 5
  assert len(manifest.splits["train"]["shards"]) == 3       # 2 videos per shard
  assert manifest.feature_rate == pytest.approx(1.5625)
  assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
  payload = json.loads((tmp_path / schema.MANIFEST_NAME).read_text())
  assert payload["class_names"] == ["class0", "class1", "class2"]
  assert payload["format_version"] == schema.FORMAT_VERSION


def test_interrupted_write_leaves_no_complete_dataset(tmp_path):
  with pytest.raises(RuntimeError):
    with schema.DatasetWriter(str(tmp_path), ["a"], 1.0, feature_dims={"rgb": 8, "flow": 8}) as writer:
      writer.write("train", testing_utils.random_video("v0", 5, num_classes=1))
      raise RuntimeError("killed")
  assert os.listdir(tmp_path) == []
  with pytest.raises(schema.DataFormatError, match="manifest.json is missing"):
    schema.read_manifest(str(tmp_path))


def test_existing_dataset_needs_overwrite(tmp_path):
  testing_utils.write_random_dataset(tmp_path)
  with pytest.raises(FileExistsError, match="overwrite"):
    testing_utils.write_random_dataset(tmp_path)


@pytest.mark.parametrize("mutate, problem", [
    (lambda v: setattr(v, "rgb", v.rgb[:, :5]), "expected \\[T, 8\\]"),
    (lambda v: v.flow.__setitem__((1, 2), np.nan), "NaN or Inf"),
    (lambda v: (setattr(v, "rgb", v.rgb[:0]), setattr(v, "flow", v.flow[:0])), "zero-length"),
    (lambda v: setattr(v, "labels", np.array([7])), "class index out of range"),
    (lambda v: setattr(v, "segments", np.array([[3.0, 1.0]], np.float32)), "ends before it starts"),
])
def test_writer_rejects_bad_video_naming_it(tmp_path, mutate, problem):
  video = testing_utils.random_video("bad_video", 6)
  mutate(video)
  with pytest.raises(schema.DataFormatError, match=problem) as info:
    schema.write_dataset(str(tmp_path), {"train": [video]}, ["a", "b", "c"], 1.0,
                         feature_dims={"rgb": 8, "flow": 8})
  assert "bad_video" in str(info.value)


def _write_raw_record(path, video_id, rows, dim_in_manifest=8, labels=(0,), num_segments=None, drop=None):
  """Writes a record by hand (bypassing the writer's checks) plus a manifest, as another tool might."""
  context = {
      "video_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video_id.encode()])),
      "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=list(labels))),
      "duration": tf.train.Feature(float_list=tf.train.FloatList(value=[10.0])),
      "num_segments": tf.train.Feature(int64_list=tf.train.Int64List(
          value=[len(rows) if num_segments is None else num_segments])),
  }
  if drop:
    del context[drop]
  lists = {s: tf.train.FeatureList(feature=[tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[np.asarray(r, "<f4").tobytes()])) for r in rows]) for s in schema.STREAMS}
  example = tf.train.SequenceExample(context=tf.train.Features(feature=context),
                                     feature_lists=tf.train.FeatureLists(feature_list=lists))
  with tf.io.TFRecordWriter(str(path / "train-00000.tfrecord")) as w:
    w.write(example.SerializeToString())
  schema.write_manifest(str(path), schema.Manifest(
      class_names=["a", "b"], feature_rate=1.0, feature_dims={"rgb": dim_in_manifest, "flow": dim_in_manifest},
      splits={"train": {"num_videos": 1, "shards": ["train-00000.tfrecord"]}}))


@pytest.mark.parametrize("kwargs, problem", [
    (dict(rows=np.ones((4, 6))), "wrong feature dimension"),
    (dict(rows=np.array([[1.0] * 8, [np.inf] * 8])), "NaN or Inf"),
    (dict(rows=np.ones((0, 8))), "zero-length"),
    (dict(rows=np.ones((3, 8)), labels=(5,)), "class index out of range"),
    (dict(rows=np.ones((3, 8)), drop="video_id"), "missing field video_id"),
    (dict(rows=np.ones((3, 8)), drop="num_segments"), "missing field num_segments"),
])
def test_reader_names_file_video_and_problem(tmp_path, kwargs, problem):
  _write_raw_record(tmp_path, "vid_x", **kwargs)
  ds = pipeline.make_eval_dataset(str(tmp_path), "train")
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    next(iter(ds))
  message = str(info.value)
  assert problem in message
  assert "train-00000.tfrecord" in message
  if kwargs.get("drop") != "video_id":
    assert "vid_x" in message


def test_missing_data_dir_is_clear(tmp_path):
  with pytest.raises(schema.DataFormatError, match="does not exist"):
    schema.read_manifest(str(tmp_path / "nope"))


def test_fast_encoder_equals_protobuf_encoder():
  video = testing_utils.random_video("enc", 37, dim=300)   # 1200-byte rows: two-byte varint lengths
  video.labels = np.array([0, 2])
  fast = tf.train.SequenceExample.FromString(schema.serialize_video(video))
  slow = tf.train.SequenceExample.FromString(schema.serialize_video_reference(video))
  assert fast == slow
  assert len(fast.feature_lists.feature_list["rgb"].feature) == 37
  row = np.frombuffer(fast.feature_lists.feature_list["flow"].feature[5].bytes_list.value[0], "<f4")
  np.testing.assert_array_equal(row, video.flow[5])
