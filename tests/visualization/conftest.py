"""Session fixture: a tiny random dataset and a 2-step STPN run on it, shared by the picture tests."""

import types

import gin
import keras
import pytest

from stpn_tf.data import schema
from tests.visualization import write_dataset

# A 2-step STPN run in a few seconds; psi = lambda sigmoid(a) is near 0.25 untrained, so that threshold detects.
TINY_PARAMS = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
               "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
               "train_eval.final_evaluation = False", "stpn_detect.tcam_threshold = 0.25"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """A dataset (test ids contain a '/') and an STPN run trained for 2 steps on it; detections are made (the
  T-CAM threshold is 0.25, near psi of an untrained model)."""
  from stpn_tf import config  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import trainer  # pylint: disable=import-outside-toplevel
  root = tmp_path_factory.mktemp("viz")
  data_dir, model_dir = str(root / "data"), str(root / "model")
  write_dataset(data_dir)
  gin.clear_config()
  keras.utils.set_random_seed(0)
  config.parse_gin(["stpn.gin"], TINY_PARAMS)
  trainer.train_eval(model_dir, data_dir, num_steps=2)
  gin.clear_config()
  return types.SimpleNamespace(data_dir=data_dir, model_dir=model_dir,
                               videos={v.video_id: v for v in schema.read_videos(data_dir, "test")})
