"""Tests of the serving export. `train_tiny_run` trains the tiny model the serving tests share (one per module)."""

import os

import gin
import keras

from tests import testing_utils

TINY_PARAMS = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
               "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
               "train_eval.final_evaluation = False",
               # psi = lambda * sigmoid(a) is near 0.25 for an untrained model: a threshold there gives detections.
               "stpn_detect.tcam_threshold = 0.25"]


def train_tiny_run(root, num_test=6, extra_params=()):
  """Writes a random dataset (3 classes, 16-d features) and trains STPN for 2 steps; returns (data_dir, model_dir)."""
  from stpn_tf import config  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import trainer  # pylint: disable=import-outside-toplevel
  data_dir, model_dir = os.path.join(root, "data"), os.path.join(root, "model")
  testing_utils.write_random_dataset(data_dir, num_train=8, num_test=num_test, dim=16, lengths=(5, 60))
  gin.clear_config()
  keras.utils.set_random_seed(0)      # the same initial weights whatever ran before in this process
  config.parse_gin(["stpn.gin"], TINY_PARAMS + list(extra_params))
  trainer.train_eval(model_dir, data_dir, num_steps=2)
  gin.clear_config()
  return data_dir, model_dir
