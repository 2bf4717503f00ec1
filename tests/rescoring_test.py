"""Re-scoring a trained run under other post-processing bindings (`evaluate --model_dir --gin_param`): new
outputs under a new name, the run's own files untouched (stpn_tf/runs.py)."""

import json
import os

from absl import flags
from absl.testing import flagsaver
import gin
import keras
import pytest

from stpn_tf import config
from stpn_tf import evaluate
from stpn_tf import runs
from stpn_tf.training import trainer
from tests import testing_utils

TINY_PARAMS = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
               "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
               "stpn_detect.tcam_threshold = 0.25", "stpn_detect.interpolation_factor = 1"]
OWN_FILES = ("eval_test.json", "predictions_test.json", "config.gin", "operative_config.gin")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("rescore")
  data_dir, model_dir = str(root / "data"), str(root / "model")
  testing_utils.write_random_dataset(data_dir, num_train=6, num_test=4, lengths=(20, 40))
  gin.clear_config()
  keras.utils.set_random_seed(0)
  config.parse_gin(["stpn.gin"], TINY_PARAMS)
  trainer.train_eval(model_dir, data_dir, num_steps=2)
  gin.clear_config()
  return data_dir, model_dir


def _own_bytes(model_dir):
  return {name: open(os.path.join(model_dir, name), "rb").read() for name in OWN_FILES}


def _detections(path):
  with open(path) as f:
    return json.load(f)["results"]


def test_other_bindings_give_other_detections_and_leave_the_run_alone(run):
  data_dir, model_dir = run
  before = _own_bytes(model_dir)
  low = runs.run_model_evaluation(model_dir, data_dir, gin_params=["stpn_detect.tcam_threshold = 0.05"],
                                  output_tag="low")
  high = runs.run_model_evaluation(model_dir, data_dir, gin_params=["stpn_detect.tcam_threshold = 0.6",
                                                                    "stpn_detect.interpolation_factor = 4"],
                                   output_tag="high")
  assert _own_bytes(model_dir) == before
  low_det = _detections(os.path.join(model_dir, "predictions_test.low.json"))
  high_det = _detections(os.path.join(model_dir, "predictions_test.high.json"))
  assert low_det != high_det
  assert low["num_predictions"] != high["num_predictions"]
  with open(os.path.join(model_dir, "eval_test.low.json")) as f:
    assert json.load(f)["num_predictions"] == low["num_predictions"]
  with open(os.path.join(model_dir, "rescore_test.high.gin")) as f:
    assert "stpn_detect.interpolation_factor = 4" in f.read()
  # The same bindings as the run reproduce the run's own detections.
  runs.run_model_evaluation(model_dir, data_dir, gin_params=["stpn_detect.tcam_threshold = 0.25"],
                            output_tag="same")
  assert _detections(os.path.join(model_dir, "predictions_test.same.json")) == \
      _detections(os.path.join(model_dir, "predictions_test.json"))


def test_default_tag_is_a_hash_of_the_bindings():
  a = runs.rescoring_tag(gin_params=["stpn_detect.tcam_threshold = 0.05"])
  assert a.startswith("rescore-") and len(a) == len("rescore-") + 8
  assert a == runs.rescoring_tag(gin_params=["stpn_detect.tcam_threshold = 0.05 "])
  assert a != runs.rescoring_tag(gin_params=["stpn_detect.tcam_threshold = 0.1"])


def test_bad_tag_is_refused(run):
  data_dir, model_dir = run
  with pytest.raises(ValueError, match="output tag"):
    runs.run_model_evaluation(model_dir, data_dir, gin_params=["stpn_detect.alpha = 0.4"], output_tag="../x")


def test_evaluate_binary_rescores(run, tmp_path):
  data_dir, model_dir = run
  before = _own_bytes(model_dir)
  extra = tmp_path / "post.gin"
  extra.write_text("stpn_detect.tcam_threshold = 0.05  # test\n")
  with flagsaver.flagsaver():   # restores every flag (and absl's logging level) afterwards
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["evaluate", f"--model_dir={model_dir}", f"--data_dir={data_dir}", f"--gin_file={extra}",
                 "--gin_param=stpn_detect.nms_threshold = 0.3"])
    evaluate.main(["evaluate"])
  tag = runs.rescoring_tag([str(extra)], ["stpn_detect.nms_threshold = 0.3"])
  assert os.path.exists(os.path.join(model_dir, f"eval_test.{tag}.json"))
  assert os.path.exists(os.path.join(model_dir, f"predictions_test.{tag}.json"))
  assert _own_bytes(model_dir) == before
