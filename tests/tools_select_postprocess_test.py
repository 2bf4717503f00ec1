"""tools/select_postprocess.py / runs.select_postprocess: post-processing values chosen on the run's validation
holdout of the training videos; the test split is never read."""

import json
import os
import sys

from absl import flags
from absl.testing import flagsaver
import gin
import keras
import pytest

from stpn_tf import config
from stpn_tf import inference
from stpn_tf import runs
from stpn_tf.training import trainer
from tests import testing_utils

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import select_postprocess  # noqa: E402  pylint: disable=wrong-import-position

TINY_PARAMS = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
               "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
               "train_eval.final_evaluation = False", "stpn_detect.interpolation_factor = 1"]


def _train(root, params):
  data_dir, model_dir = str(root / "data"), str(root / "model")
  testing_utils.write_random_dataset(data_dir, num_train=16, num_test=3, lengths=(20, 40))
  gin.clear_config()
  keras.utils.set_random_seed(0)
  config.parse_gin(["stpn.gin"], TINY_PARAMS + params)
  trainer.train_eval(model_dir, data_dir, num_steps=2)
  gin.clear_config()
  return data_dir, model_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("select"), ["train_eval.validation_fraction = 0.4"])


def test_parse_grid():
  assert runs.parse_grid(["a.b=1,2", "c.d=(1, 2),'x,y'"]) == [
      ("a.b = 1", "c.d = (1, 2)"), ("a.b = 1", "c.d = 'x,y'"), ("a.b = 2", "c.d = (1, 2)"), ("a.b = 2", "c.d = 'x,y'")]
  with pytest.raises(ValueError, match="must look like"):
    runs.parse_grid(["a.b"])


def test_candidates_are_scored_on_held_out_training_videos_only(run, monkeypatch):
  data_dir, model_dir = run
  splits = []
  real = inference.predict_videos

  def spy(task, models, data_dir, split, *args, **kwargs):
    splits.append((split, kwargs.get("holdout")))
    return real(task, models, data_dir, split, *args, **kwargs)

  monkeypatch.setattr(inference, "predict_videos", spy)
  grid = runs.parse_grid(["stpn_detect.tcam_threshold=0.05,0.3,0.9"])
  result = runs.select_postprocess(model_dir, data_dir, grid)
  assert [s for s, _ in splits] == ["train"] and splits[0][1].fraction == 0.4
  assert result["holdout"]["num_videos"] > 0 and not result["holdout"]["includes_trained_videos"]
  assert [c["bindings"] for c in result["candidates"]] == [list(g) for g in grid]
  counts = [c["num_predictions"] for c in result["candidates"]]
  assert len(set(counts)) > 1                                                # the thresholds matter
  assert result["best"][result["metric"]] == max(c["average_mAP"] for c in result["candidates"])


def test_a_run_without_holdout_is_refused_unless_asked(tmp_path):
  data_dir, model_dir = _train(tmp_path, [])
  with pytest.raises(ValueError, match="no held-out validation set"):
    runs.select_postprocess(model_dir, data_dir, [("stpn_detect.tcam_threshold = 0.1",)])
  result = runs.select_postprocess(model_dir, data_dir, [("stpn_detect.tcam_threshold = 0.1",)],
                                   validation_fraction=0.5)
  assert result["holdout"]["includes_trained_videos"]


def test_binary_writes_the_choice(run, tmp_path, capsys):
  data_dir, model_dir = run
  out = tmp_path / "choice.json"
  with flagsaver.flagsaver():   # restores every flag (and absl's logging level) afterwards
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["select_postprocess", f"--model_dir={model_dir}", f"--data_dir={data_dir}",
                 "--grid=stpn_detect.tcam_threshold=0.05,0.5", f"--selection_json={out}"])
    select_postprocess.main(["select_postprocess"])
  assert "chosen: --gin_param='stpn_detect.tcam_threshold = " in capsys.readouterr().out
  assert len(json.loads(out.read_text())["candidates"]) == 2
