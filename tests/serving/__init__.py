"""Tests of the serving export. `train_tiny_run` trains the tiny model the serving tests share (one per module)."""

import os
import subprocess
import sys

import gin
import keras
import numpy as np

from tests import testing_utils

TINY_PARAMS = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
               "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
               "train_eval.final_evaluation = False",
               # psi = lambda * sigmoid(a) is near 0.25 for an untrained model: a threshold there gives detections.
               "stpn_detect.tcam_threshold = 0.25"]


def train_tiny_run(root, num_test=6, extra_params=(), gin_file="stpn.gin", params=None, num_steps=2):
  """Writes a random dataset (3 classes, 16-d features) and trains a task (STPN by default, TINY_PARAMS) for
  `num_steps` steps; returns (data_dir, model_dir)."""
  from stpn_tf import config  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import trainer  # pylint: disable=import-outside-toplevel
  data_dir, model_dir = os.path.join(root, "data"), os.path.join(root, "model")
  testing_utils.write_random_dataset(data_dir, num_train=8, num_test=num_test, dim=16, lengths=(5, 60))
  gin.clear_config()
  keras.utils.set_random_seed(0)      # the same initial weights whatever ran before in this process
  config.parse_gin([gin_file], list(TINY_PARAMS if params is None else params) + list(extra_params))
  trainer.train_eval(model_dir, data_dir, num_steps=num_steps)
  gin.clear_config()
  return data_dir, model_dir


def assert_detections_equal(expected, got, context=""):
  """`detect` outputs (a dict of arrays) equal NumPy Detections: same number, classes and order; intervals and
  scores to float32 precision."""
  assert len(got["score"]) == len(expected), (context, len(got["score"]), len(expected))
  np.testing.assert_array_equal(got["class_index"], expected.class_index, err_msg=context)
  np.testing.assert_allclose(got["start_s"], expected.start_s, rtol=1e-6, atol=1e-5, err_msg=context)
  np.testing.assert_allclose(got["end_s"], expected.end_s, rtol=1e-6, atol=1e-5, err_msg=context)
  np.testing.assert_allclose(got["score"], expected.score, rtol=0, atol=1e-5, err_msg=context)


# Loads an export in a Python process that never imports stpn_tf and calls every signature on saved inputs.
SERVE_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path = sys.argv[1:4]
loaded = tf.saved_model.load(export_dir)
x = np.load(inputs_path)
result = {}
for name, kwargs in [("outputs", dict(rgb=x["rgb"], flow=x["flow"])),
                     ("outputs_batched", dict(rgb=x["batch_rgb"], flow=x["batch_flow"], mask=x["batch_mask"])),
                     ("detect", dict(rgb=x["rgb"], flow=x["flow"])), ("metadata", {})]:
  for key, value in loaded.signatures[name](**{k: tf.constant(v) for k, v in kwargs.items()}).items():
    value = np.asarray(value.numpy())
    if value.dtype.kind in "OS":
      value = np.array([s.decode() for s in value.reshape(-1).tolist()]).reshape(value.shape)
    result[name + "/" + key] = value
result["imported_stpn_tf"] = np.array(any(m.split(".")[0] == "stpn_tf" for m in sys.modules))
np.savez(outputs_path, **result)
"""


def serve_in_plain_process(export_dir, video, other, tmp_path, dim=16):
  """Runs SERVE_SCRIPT on `video` (single-video signatures) and the padded batch [video, other]; returns its
  {"<signature>/<key>": array} results."""
  length = max(video.num_segments, other.num_segments)
  batch = {s: np.zeros((2, length, dim), np.float32) for s in ("rgb", "flow")}
  mask = np.zeros((2, length), np.float32)
  for i, v in enumerate((video, other)):
    for s in ("rgb", "flow"):
      batch[s][i, :v.num_segments] = getattr(v, s)
    mask[i, :v.num_segments] = 1.0
  np.savez(tmp_path / "in.npz", rgb=video.rgb, flow=video.flow, batch_rgb=batch["rgb"], batch_flow=batch["flow"],
           batch_mask=mask)
  (tmp_path / "serve.py").write_text(SERVE_SCRIPT)
  proc = subprocess.run([sys.executable, str(tmp_path / "serve.py"), export_dir, str(tmp_path / "in.npz"),
                         str(tmp_path / "out.npz")], cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(np.load(tmp_path / "out.npz"))
