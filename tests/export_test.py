"""The export binary (python -m stpn_tf.export): writes a complete SavedModel atomically, refuses clearly."""

import os
import shutil

from absl import app
from absl import flags
import pytest
import tensorflow as tf

from stpn_tf import export
from stpn_tf.data import schema
from stpn_tf.serving import module
from tests import testing_utils
from tests.serving import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("export")
  return train_tiny_run(str(root), num_test=2)


def _main(*args):
  """Runs the binary's main() on its own flag set, as `python -m stpn_tf.export ARGS` would."""
  values = flags.FlagValues()
  export.define_flags(values)
  values(["export", *args])
  export.main(["export"], values)


def _leftovers(parent):
  return [n for n in os.listdir(parent) if ".tmp-" in n]


def test_binary_writes_a_loadable_export_and_refuses_to_overwrite(run, tmp_path):
  data_dir, model_dir = run
  out = str(tmp_path / "export")
  _main(f"--model_dir={model_dir}", f"--export_dir={out}", f"--data_dir={data_dir}")
  loaded = tf.saved_model.load(out)
  assert set(loaded.signatures) == {"outputs", "outputs_batched", "detect", "metadata", "serving_default"}
  assert os.path.exists(os.path.join(out, "assets.extra", module.METADATA_FILE))
  assert not _leftovers(tmp_path)
  stamp = os.path.getmtime(os.path.join(out, "saved_model.pb"))
  with pytest.raises(SystemExit, match="already exists"):
    _main(f"--model_dir={model_dir}", f"--export_dir={out}", f"--data_dir={data_dir}")
  assert os.path.getmtime(os.path.join(out, "saved_model.pb")) == stamp
  _main(f"--model_dir={model_dir}", f"--export_dir={out}", f"--data_dir={data_dir}", "--overwrite")
  assert tf.saved_model.load(out).signatures["metadata"]()["task"].numpy() == b"stpn"
  assert not _leftovers(tmp_path)


def test_model_dir_without_checkpoint_is_a_clear_error(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(SystemExit, match="holds no checkpoint to export"):
    _main(f"--model_dir={tmp_path / 'empty'}", f"--export_dir={tmp_path / 'out'}")
  with pytest.raises(SystemExit, match="does not exist"):
    _main(f"--model_dir={tmp_path / 'nope'}", f"--export_dir={tmp_path / 'out'}")
  assert not (tmp_path / "out").exists()


def test_missing_flags_are_a_usage_error(tmp_path):
  with pytest.raises(app.UsageError, match="--export_dir"):
    _main(f"--model_dir={tmp_path}")


def test_failed_export_leaves_no_output(run, tmp_path, monkeypatch):
  data_dir, model_dir = run

  def failing_save(*args, **kwargs):
    del kwargs
    os.makedirs(args[1])
    raise OSError("disk full")

  monkeypatch.setattr(tf.saved_model, "save", failing_save)
  with pytest.raises(OSError, match="disk full"):
    module.export_saved_model(model_dir, str(tmp_path / "out"), data_dir)
  assert os.listdir(tmp_path) == []


def test_dataset_that_does_not_match_the_run_is_a_clear_error(run, tmp_path):
  _, model_dir = run
  testing_utils.write_random_dataset(tmp_path / "other", num_train=1, num_test=1, dim=16, num_classes=5)
  with pytest.raises(module.ExportError, match="does not match the run"):
    module.export_saved_model(model_dir, str(tmp_path / "out"), str(tmp_path / "other"))


def test_invalid_detect_settings_in_the_runs_config_are_refused_at_export(run, tmp_path):
  data_dir, model_dir = run
  copy = str(tmp_path / "model")
  shutil.copytree(model_dir, copy)
  with open(os.path.join(copy, "config.gin"), "a") as f:
    f.write("\nstpn_detect.alpha = 1.5\n")
  with pytest.raises(module.ExportError, match="alpha must be in"):
    module.export_saved_model(copy, str(tmp_path / "out"), data_dir)
  assert not (tmp_path / "out").exists()
  assert schema.read_manifest(data_dir).num_classes == 3


def test_checkpoint_that_does_not_match_config_is_a_clear_error(run, tmp_path):
  data_dir, model_dir = run
  copy = str(tmp_path / "model")
  shutil.copytree(model_dir, copy)
  with open(os.path.join(copy, "config.gin")) as f:
    text = f.read().replace("STPN.hidden_units = 8", "STPN.hidden_units = 5")
  with open(os.path.join(copy, "config.gin"), "w") as f:
    f.write(text)
  with pytest.raises(module.ExportError, match="cannot rebuild the model .* incompatible tensor"):
    module.export_saved_model(copy, str(tmp_path / "out"), data_dir)
