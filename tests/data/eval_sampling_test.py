"""Test-time sampling (`make_eval_dataset.sampler`): which rows are evaluated, and proposals mapped back to seconds
of the video (inference.predict_videos' per-video feature_rate)."""

import gin
import numpy as np
import pytest

from stpn_tf import inference
from stpn_tf.data import pipeline
from stpn_tf.data import sampling
from stpn_tf.data import schema
from stpn_tf.models import stpn
from stpn_tf.postprocess import stpn_inference
from tests import testing_utils

RATE = 1.5625   # testing_utils' feature rate (segments per second)


@pytest.fixture()
def data_dir(tmp_path):
  videos = [testing_utils.random_video("test_long", 40, seed=1), testing_utils.random_video("test_short", 5, seed=2)]
  schema.write_dataset(str(tmp_path), {"train": iter(videos[:1]), "test": iter(videos)},
                       ["class0", "class1", "class2"], RATE, feature_dims={"rgb": 8, "flow": 8})
  return str(tmp_path)


def test_uniform_test_sampling_takes_bin_centres(data_dir):
  rows = {v.video_id: v for v in schema.read_videos(data_dir, "test")}
  ds = pipeline.make_eval_dataset(data_dir, "test", batch_size=2,
                                  sampler=sampling.UniformPerturbedSampler(10, perturb=False))
  batch = next(iter(ds))
  by_id = {batch["video_id"][i].numpy().decode(): i for i in range(2)}
  i = by_id["test_long"]
  # 40 segments in 10 bins of 4: centres 4 j + 2.
  np.testing.assert_array_equal(batch["rgb"][i].numpy(), rows["test_long"].rgb[4 * np.arange(10) + 2])
  assert int(batch["num_positions"][i]) == 10 and int(batch["num_segments"][i]) == 40
  j = by_id["test_short"]                       # shorter than N: every segment once, padded
  assert int(batch["num_positions"][j]) == 5 and batch["mask"][j].numpy().sum() == 5
  np.testing.assert_array_equal(batch["rgb"][j].numpy()[:5], rows["test_short"].rgb)


def test_all_segments_by_default(data_dir):
  batch = next(iter(pipeline.make_eval_dataset(data_dir, "test", batch_size=2)))
  assert sorted(batch["num_positions"].numpy().tolist()) == [5, 40]


def test_random_samplers_are_refused(data_dir):
  with pytest.raises(ValueError, match="make_eval_dataset.sampler"):
    pipeline.make_eval_dataset(data_dir, "test", sampler=sampling.RandomWindowSampler(10))


def test_proposals_map_back_to_seconds_of_the_video(data_dir):
  gin.clear_config()
  try:
    gin.parse_config(["make_eval_dataset.sampler = @test/UniformPerturbedSampler()",
                      "test/UniformPerturbedSampler.num_segments = 10",
                      "test/UniformPerturbedSampler.perturb = False"])
    task = stpn.STPN(hidden_units=4)
    models = task.build_models(3, {"rgb": 8, "flow": 8})
    infos = {info["video_id"]: (info, outputs)
             for info, outputs in inference.predict_videos(task, models, data_dir, "test")}
  finally:
    gin.clear_config()
  info, outputs = infos["test_long"]
  assert info["num_segments"] == 10 and info["video_num_segments"] == 40
  assert outputs["rgb"]["attention"].shape == (10,)
  assert outputs["rgb"]["tcam"].shape == (10, 3)
  # Positions 2..4 (inclusive) cover segments 8..19 of the video: [8 / rate, 20 / rate] seconds.
  np.testing.assert_allclose(info["feature_rate"], RATE * 10 / 40)
  start, end = stpn_inference.segments_to_seconds(np.array([2]), np.array([4]), info["feature_rate"])
  np.testing.assert_allclose([start[0], end[0]], [8 / RATE, 20 / RATE])
  # ... and on the x24 interpolated grid of STPN (the TF1 reproduction's scale): index 48..119 is the same span.
  start, end = stpn_inference.segments_to_seconds(np.array([48]), np.array([119]), info["feature_rate"], 24)
  np.testing.assert_allclose([start[0], end[0]], [8 / RATE, 20 / RATE])
  short, _ = infos["test_short"]
  assert short["num_segments"] == short["video_num_segments"] == 5 and short["feature_rate"] == RATE
