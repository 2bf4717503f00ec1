"""The training binary (stpn_tf/train.py) end to end on tiny datasets written by the tests."""

import json
import os
import signal
import subprocess
import sys
import time

from absl import flags
from absl.testing import flagsaver
import gin
import pytest
import tensorflow as tf

from stpn_tf import train
from stpn_tf.data import schema
from stpn_tf.training import trainer
from tests import testing_utils

FLAGS = flags.FLAGS
TINY_PARAMS = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
               "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0"]


def _run_main(data_dir, model_dir, num_steps, extra_params=()):
  argv = ["train", "--gin_file=stpn.gin", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
          f"--num_steps={num_steps}"] + [f"--gin_param={p}" for p in TINY_PARAMS + list(extra_params)]
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(argv)
    gin.clear_config()
    train.main([])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("data")
  testing_utils.write_random_dataset(path, num_train=8, num_test=3, dim=16)
  return str(path)


def test_two_steps_then_resume_continues_step_count(data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  _run_main(data_dir, model_dir, 2)
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
  for name in ("config.gin", "operative_config.gin", "run_info.json", "eval_test.json", "predictions_test.json"):
    assert os.path.exists(os.path.join(model_dir, name)), name
  assert "STPN.sparsity_weight" in open(os.path.join(model_dir, "operative_config.gin")).read()
  _run_main(data_dir, model_dir, 4)
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")
  result = json.load(open(os.path.join(model_dir, "eval_test.json")))
  assert len(result["mAP"]) == 9 and result["num_videos"] == 3


def test_other_model_in_model_dir_is_refused(data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  _run_main(data_dir, model_dir, 2)
  with pytest.raises(trainer.ModelDirError, match="another model"):
    _run_main(data_dir, model_dir, 4, ["STPN.modalities = ('rgb',)"])
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")   # nothing overwritten


def test_checkpoint_that_does_not_match_is_refused(data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  _run_main(data_dir, model_dir, 2)
  with pytest.raises(trainer.ModelDirError, match="does not match"):
    _run_main(data_dir, model_dir, 4, ["STPN.hidden_units = 5"])


def test_missing_and_empty_data_dir_fail_before_training(tmp_path):
  with pytest.raises(schema.DataFormatError, match="does not exist"):
    _run_main(str(tmp_path / "nope"), str(tmp_path / "m1"), 2)
  (tmp_path / "empty").mkdir()
  with pytest.raises(schema.DataFormatError, match="manifest.json is missing"):
    _run_main(str(tmp_path / "empty"), str(tmp_path / "m2"), 2)
  assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_feature_dimension_mismatch_is_clear(tmp_path):
  testing_utils.write_random_dataset(tmp_path / "d", dim=8)
  manifest = schema.read_manifest(str(tmp_path / "d"))
  manifest.feature_dims = {"rgb": 8}          # a dataset without flow
  schema.write_manifest(str(tmp_path / "d"), manifest)
  with pytest.raises(schema.DataFormatError, match="no 'flow' stream"):
    _run_main(str(tmp_path / "d"), str(tmp_path / "m"), 2)


def test_unwritable_model_dir_is_clear(data_dir, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(trainer.ModelDirError, match="not writable"):
    _run_main(data_dir, str(blocker / "model"), 2)


def test_gin_typo_names_the_binding(data_dir, tmp_path):
  with pytest.raises(ValueError, match="sparsity_wieght"):
    _run_main(data_dir, str(tmp_path / "m"), 2, ["STPN.sparsity_wieght = 0.1"])


def test_sigkill_then_rerun_resumes(data_dir, tmp_path):
  model_dir = tmp_path / "model"
  cmd = [sys.executable, "-m", "stpn_tf.train", "--gin_file=stpn.gin", f"--data_dir={data_dir}",
         f"--model_dir={model_dir}", "--num_steps=100000"] + [f"--gin_param={p}" for p in TINY_PARAMS]
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 120
    while time.time() < deadline and not tf.train.latest_checkpoint(str(model_dir)):
      time.sleep(0.5)
    time.sleep(1.0)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  killed_at = int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])
  assert killed_at >= 2
  cmd[cmd.index("--num_steps=100000")] = f"--num_steps={killed_at + 2}"
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Resumed from" in out.stderr and f"at step {killed_at}" in out.stderr
  assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{killed_at + 2}")


# ------------------------------------------------------------------------------------------- issue 19


def test_item3_num_steps_zero_evaluates_only(data_dir, tmp_path):
  model_dir = str(tmp_path / "model")
  with pytest.raises(trainer.ModelDirError, match="--num_steps=0 trains no step.*holds no checkpoint"):
    _run_main(data_dir, model_dir, 0)
  assert not os.path.exists(model_dir)
  # default_num_steps 4: 0 used to mean "the gin default" and trained on to step 4.
  _run_main(data_dir, model_dir, 2, ["train_eval.default_num_steps = 4"])
  os.remove(os.path.join(model_dir, "eval_test.json"))
  _run_main(data_dir, model_dir, 0, ["train_eval.default_num_steps = 4"])
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")
  assert json.load(open(os.path.join(model_dir, "eval_test.json")))["num_videos"] == 3   # evaluated again
  with pytest.raises(ValueError, match="--num_steps must be >= 0, got -1"):
    _run_main(data_dir, model_dir, -1)


def _run_binary(argv, capsys):
  """train's main as `python -m stpn_tf.train` runs it (user errors reported); returns (exit code, stderr)."""
  from stpn_tf import user_errors  # pylint: disable=import-outside-toplevel
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(["train", *argv])
    gin.clear_config()
    with pytest.raises(SystemExit) as info:
      user_errors.reporting("train", train.main)([])
  return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--gin_param=train_eval.batch_size = 'big'"],
     "train: error: train_eval.batch_size must be an integer >= 1, got 'big' (str)"),
    (["--gin_param=train_eval.checkpoint_every = 0"], "train: error: train_eval.checkpoint_every must be >= 1"),
    (["--gin_file=stnp.gin"], "train: error: gin file 'stnp.gin' not found"),
    (["--data_dir={tmp}/nope"], "train: error: data directory {tmp}/nope does not exist"),
    (["--model_dir={tmp}/file/model"], "train: error: model directory {tmp}/file/model is not writable"),
])
def test_item8_user_errors_print_one_error_line(data_dir, tmp_path, capsys, args, message):
  (tmp_path / "file").write_text("x")
  base = {"--gin_file": "--gin_file=stpn.gin", "--data_dir": f"--data_dir={data_dir}",
          "--model_dir": f"--model_dir={tmp_path / 'model'}"}
  args = [a.format(tmp=tmp_path) for a in args]
  for a in args:
    base.pop(a.split("=", 1)[0], None)
  code, err = _run_binary(list(base.values()) + [f"--gin_param={p}" for p in TINY_PARAMS] + args, capsys)
  assert code == 1
  assert err.startswith(message.format(tmp=tmp_path)), err
  assert "Traceback" not in err and len(err.strip().splitlines()) == 2, err   # the line and the --verbosity hint


def test_item8_binary_error_line_without_traceback_or_gin_noise(data_dir, tmp_path):
  cmd = [sys.executable, "-m", "stpn_tf.train", "--gin_file=stpn.gin", f"--data_dir={data_dir}",
         f"--model_dir={tmp_path / 'model'}", "--gin_param=STPN.sparsity_wieght = 0.1"]
  out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1
  assert "train: error:" in out.stderr and "sparsity_wieght" in out.stderr
  assert "Traceback" not in out.stderr and "Path not found" not in out.stderr, out.stderr[-3000:]


def test_item8_verbosity_1_keeps_the_traceback(data_dir, tmp_path):
  from stpn_tf import user_errors  # pylint: disable=import-outside-toplevel
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(["train", "--gin_file=stpn.gin", f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'm'}",
           "--gin_param=STPN.sparsity_wieght = 0.1", "--verbosity=1"])
    gin.clear_config()
    with pytest.raises(ValueError, match="sparsity_wieght"):   # the exception itself: absl prints its traceback
      user_errors.reporting("train", train.main)([])
