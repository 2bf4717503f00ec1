"""stpn_tf/visualization/summaries.py: images for TensorBoard from live models, and the choice of videos."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf import runs
from stpn_tf.visualization import summaries


@pytest.fixture
def restored(tiny_run):
  task, models = runs.restore_models(tiny_run.model_dir, tiny_run.data_dir)
  yield task, models
  gin.clear_config()


def test_summary_images_are_same_size_rgb_uint8_and_tensorboard_accepts_them(tiny_run, restored, tmp_path):
  task, models = restored
  weights = [w.numpy().copy() for m in models.values() for w in m.weights]
  images = summaries.summary_images(task, models, tiny_run.data_dir, "test", num_videos=2, figsize=(5.0, 3.5),
                                    dpi=40)
  assert [vid for vid, _ in images] == list(tiny_run.videos)[:2]
  for _, image in images:
    assert image.dtype == np.uint8 and image.shape == (140, 200, 3)
  with tf.summary.create_file_writer(str(tmp_path)).as_default(step=1):
    for vid, image in images:
      assert tf.summary.image(f"videos/{vid}", image[None])
  assert all(np.array_equal(a, w.numpy()) for a, w in zip(weights, [w for m in models.values() for w in m.weights]))
  assert summaries.summary_images(task, models, tiny_run.data_dir, num_videos=0) == []


def test_video_filter_and_unknown_ids(tiny_run, restored):
  task, models = restored
  got = summaries.collect_videos(task, models, tiny_run.data_dir, video_filter=lambda v: v.endswith("3"))
  assert [d.video_id for d in got] == ["test/3"]
  got = summaries.collect_videos(task, models, tiny_run.data_dir, video_filter={"test/1", "test/2"}, num_videos=1)
  assert [d.video_id for d in got] == ["test/1"]
  with pytest.raises(summaries.UnknownVideoError, match="'nope'"):
    summaries.collect_videos(task, models, tiny_run.data_dir, video_ids=["test/0", "nope"])
