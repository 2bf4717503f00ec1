"""The model directory's lock, run_info.json, data.json and clean-up (stpn_tf/training/model_dir.py), through
train_eval, evaluate and export (issue 19, items 2, 4, 8 and 10)."""

import json
import os
import socket
import subprocess
import sys

import gin
import pytest
import tensorflow as tf

from stpn_tf import config
from stpn_tf import runs
from stpn_tf.data import schema
from stpn_tf.serving import module
from stpn_tf.training import model_dir as model_dir_lib
from stpn_tf.training import trainer
from tests import testing_utils

TINY = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "train_eval.steps_per_loop = 1",
        "STPN.hidden_units = 8", "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
        "stpn_detect.tcam_threshold = 0.25"]


def _train(data_dir, model_dir, num_steps=2, params=()):
  gin.clear_config()
  config.parse_gin(["stpn.gin"], TINY + list(params))
  try:
    return trainer.train_eval(str(model_dir), str(data_dir), num_steps=num_steps)
  finally:
    gin.clear_config()


def _dataset(path, class_names):
  testing_utils.write_random_dataset(path, num_train=6, num_test=3, dim=16, num_classes=len(class_names))
  manifest = schema.read_manifest(str(path))
  manifest.class_names = list(class_names)
  schema.write_manifest(str(path), manifest)
  return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A run trained (2 steps) on a dataset whose classes are not the built-in dataset's."""
  root = tmp_path_factory.mktemp("run")
  data_dir = _dataset(root / "data", ["Zeta", "Alpha", "Mu"])
  _train(data_dir, root / "model")
  return data_dir, str(root / "model")


def _live_child():
  return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


# ------------------------------------------------------------------------------------------- item 4: lock


def test_item4_second_writer_refused(trained, tmp_path):
  data_dir, _ = trained
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  child = _live_child()   # stands for a training process that holds the directory
  try:
    (model_dir / model_dir_lib.LOCK_NAME).write_text(json.dumps({"pid": child.pid, "host": socket.gethostname(),
                                                                 "started": "earlier"}))
    with pytest.raises(model_dir_lib.ModelDirLockedError, match=f"being trained by process {child.pid} on this host"):
      _train(data_dir, model_dir)
    assert not tf.train.latest_checkpoint(str(model_dir))     # the second writer wrote nothing
  finally:
    child.kill()
    child.wait()
  # Its owner is gone: the lock is stale, taken over, and released at the end.
  _train(data_dir, model_dir)
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")
  assert not (model_dir / model_dir_lib.LOCK_NAME).exists()


def test_lock_of_another_host_is_refused_and_in_process_reentry_too(tmp_path):
  path = tmp_path / model_dir_lib.LOCK_NAME
  path.write_text(json.dumps({"pid": 1, "host": "other-machine", "started": "t"}))
  with pytest.raises(model_dir_lib.ModelDirLockedError, match="on host other-machine"):
    with model_dir_lib.exclusive_lock(str(tmp_path)):
      pass
  path.unlink()
  with model_dir_lib.exclusive_lock(str(tmp_path)):
    assert json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(model_dir_lib.ModelDirLockedError, match="by this process already"):
      with model_dir_lib.exclusive_lock(str(tmp_path)):
        pass
  assert not path.exists()
  assert os.listdir(tmp_path) == []    # no temporary left


# ------------------------------------------------------------------------------------------- item 2: data record


def test_item2_evaluate_and_export_use_the_recorded_data(trained, tmp_path):
  data_dir, model_dir = trained
  record = json.loads(open(os.path.join(model_dir, model_dir_lib.DATA_RECORD)).read())
  assert record["data_dir"] == os.path.abspath(data_dir)
  assert record["class_names"] == ["Zeta", "Alpha", "Mu"] and record["feature_rate"] == 1.5625

  # No --data_dir: the run's data (was the built-in dataset), and the output says which.
  result = runs.run_model_evaluation(model_dir)
  assert result["data_dir"] == os.path.abspath(data_dir) and result["split"] == "test"
  assert result["num_videos"] == 3

  # A dataset with other classes (same number, other order) is refused, naming both lists.
  other = _dataset(tmp_path / "other", ["Alpha", "Mu", "Zeta"])
  with pytest.raises(model_dir_lib.ModelDirError,
                     match=r"\['Alpha', 'Mu', 'Zeta'\].*\['Zeta', 'Alpha', 'Mu'\]"):
    runs.run_model_evaluation(model_dir, other)
  with pytest.raises(module.ExportError, match=r"\['Alpha', 'Mu', 'Zeta'\].*\['Zeta', 'Alpha', 'Mu'\]"):
    module.export_saved_model(model_dir, str(tmp_path / "bad_export"), other)
  assert not (tmp_path / "bad_export").exists()
  # The same classes at another feature rate would place every detection at the wrong time.
  slower = _dataset(tmp_path / "slower", ["Zeta", "Alpha", "Mu"])
  manifest = schema.read_manifest(slower)
  manifest.feature_rate = 1.0
  schema.write_manifest(slower, manifest)
  with pytest.raises(module.ExportError, match="feature rate is 1.0/s.* at 1.5625/s"):
    module.export_saved_model(model_dir, str(tmp_path / "bad_export"), slower)

  # export without --data_dir writes the run's class names (was the built-in dataset's).
  out = str(tmp_path / "export")
  module.export_saved_model(model_dir, out)
  metadata = json.loads(open(os.path.join(out, "assets.extra", module.METADATA_FILE)).read())
  assert metadata["data_dir"] == os.path.abspath(data_dir)
  assert json.dumps(["Zeta", "Alpha", "Mu"]) in json.dumps(metadata)


def test_run_without_data_record_needs_data_dir(trained, tmp_path):
  data_dir, model_dir = trained
  copy = tmp_path / "old_run"
  tf.io.gfile.makedirs(str(copy))
  for name in os.listdir(model_dir):
    if not os.path.isdir(os.path.join(model_dir, name)) and name != model_dir_lib.DATA_RECORD:
      tf.io.gfile.copy(os.path.join(model_dir, name), str(copy / name))
  with pytest.raises(model_dir_lib.ModelDirError, match="does not record the data.*pass --data_dir"):
    runs.run_model_evaluation(str(copy))
  assert runs.run_model_evaluation(str(copy), data_dir)["num_videos"] == 3


def test_resuming_on_data_with_other_classes_is_refused(trained, tmp_path):
  data_dir, model_dir = trained
  copy = str(tmp_path / "copy")
  tf.io.gfile.makedirs(copy)
  for name in os.listdir(model_dir):
    if not os.path.isdir(os.path.join(model_dir, name)):
      tf.io.gfile.copy(os.path.join(model_dir, name), os.path.join(copy, name))
  other = _dataset(tmp_path / "other", ["Alpha", "Mu", "Zeta"])
  with pytest.raises(model_dir_lib.ModelDirError, match=r"classes \['Zeta', 'Alpha', 'Mu'\].*\['Alpha', 'Mu'"):
    _train(other, copy, num_steps=4)


# ------------------------------------------------------------------------------------------- items 8 and 10


def test_item8_unreadable_run_info_is_named(trained, tmp_path):
  data_dir, _ = trained
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  (model_dir / model_dir_lib.RUN_INFO).write_text('{"task": "STPN", "netw')    # truncated by a kill
  with pytest.raises(model_dir_lib.ModelDirError, match=f"{model_dir / model_dir_lib.RUN_INFO}.*unreadable"):
    _train(data_dir, model_dir)


def test_item10_stale_checkpoint_temp_cleaned(trained, tmp_path):
  data_dir, _ = trained
  model_dir = tmp_path / "model"
  # What kills during CheckpointManager.save and during the atomic text writes leave behind.
  (model_dir / "ckpt-4_temp").mkdir(parents=True)
  (model_dir / "ckpt-4_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
  (model_dir / "config.gin.tmp-12345").write_text("half")
  _train(data_dir, model_dir, params=["train_eval.final_evaluation = False"])
  names = os.listdir(model_dir)
  assert "ckpt-4_temp" not in names and "config.gin.tmp-12345" not in names
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")


def test_item10_stale_export_temp_cleaned(trained, tmp_path):
  _, model_dir = trained
  stale = tmp_path / ".export.tmp-0123abcd"           # a kill during tf.saved_model.save
  (stale / "variables").mkdir(parents=True)
  moved = tmp_path / ".other.tmp-89abcdef-old"        # a kill between the two renames of an --overwrite
  (moved / "assets.extra").mkdir(parents=True)
  module.export_saved_model(model_dir, str(tmp_path / "export"))
  assert not stale.exists()
  assert sorted(os.listdir(tmp_path)) == [".other.tmp-89abcdef-old", "export"]   # other exports' files: untouched
  with pytest.raises(module.ExportError, match="already exists"):
    module.export_saved_model(model_dir, str(tmp_path / "other"))    # the previous export was put back first
  assert sorted(os.listdir(tmp_path)) == ["export", "other"]
