"""stpn_tf/evaluation/attention_events.py against hand-computed values, and tools/attention_by_event.py end to end
on a run trained for two steps on built-in synthetic data."""

import dataclasses
import json
import os
import subprocess
import sys

import gin
import keras
import numpy as np
import pytest

from stpn_tf import config
from stpn_tf.data import schema
from stpn_tf.data import synthetic
from stpn_tf.evaluation import attention_events
from stpn_tf.training import trainer
from tests import testing_utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "attention_by_event.py")


def test_means_and_shares_by_kind_by_hand():
  kinds = np.array([0, 0, 4, -1, -1, 3])
  result = attention_events.attention_by_event(
      [({"rgb": np.array([0.9, 0.7, 0.6, 0.1, 0.3, 0.4]), "flow": np.ones(6)}, kinds),
       ({"rgb": np.array([0.2]), "flow": np.zeros(1)}, np.array([0]))], ["rgb", "flow"])
  rgb = result["networks"]["rgb"]
  assert rgb["instance"]["segments"] == 3
  assert rgb["instance"]["mean"] == pytest.approx(0.6)            # (0.9 + 0.7 + 0.2) / 3
  assert rgb["instance"]["share_above"] == pytest.approx(2 / 3)
  assert rgb["context"]["mean"] == pytest.approx(0.6) and rgb["context"]["share_above"] == 1.0
  assert rgb["background"]["mean"] == pytest.approx(0.2) and rgb["background"]["share_above"] == 0.0
  assert rgb["other_action"]["mean"] == pytest.approx(0.4)
  assert rgb["distractor"] == {"segments": 0, "mean": None, "share_above": None}
  assert result["networks"]["flow"]["instance"]["mean"] == pytest.approx(2 / 3)
  table = attention_events.format_result(result)
  assert "instance" in table and "0.60 /  67%" in table and "-" in table


def test_bad_input_is_named():
  acc = attention_events.AttentionByEvent(["rgb"])
  with pytest.raises(ValueError, match="unknown network 'flow'"):
    acc.update("flow", np.zeros(2), np.zeros(2, int))
  with pytest.raises(ValueError, match="3 segments, the event kinds 2"):
    acc.update("rgb", np.zeros(3), np.zeros(2, int))
  with pytest.raises(ValueError, match="kind codes"):
    acc.update("rgb", np.zeros(2), np.array([0, 7]))


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("attention_events")
  data_dir, model_dir = str(root / "data"), str(root / "model")
  synthetic.generate(data_dir, dataclasses.replace(synthetic.TINY, num_videos=(("train", 4), ("test", 3))), seed=0)
  gin.clear_config()
  keras.utils.set_random_seed(0)
  config.parse_gin(["stpn.gin"], ["train_eval.batch_size = 2", "train_eval.checkpoint_every = 2",
                                  "train_eval.steps_per_loop = 1", "STPN.hidden_units = 8",
                                  "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0",
                                  "stpn_detect.interpolation_factor = 1"])
  trainer.train_eval(model_dir, data_dir, num_steps=2)
  gin.clear_config()
  return data_dir, model_dir


def test_tool_reports_every_segment_of_the_split(synthetic_run, tmp_path):
  data_dir, model_dir = synthetic_run
  out = tmp_path / "report.json"
  proc = subprocess.run([sys.executable, TOOL, f"--model_dir={model_dir}", f"--output_json={out}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "3 test videos" in proc.stdout and "instance" in proc.stdout
  report = json.loads(out.read_text())
  cfg, seed = synthetic.config_from_manifest(schema.read_manifest(data_dir))
  expected = np.concatenate([k for _, k in synthetic.video_event_kinds(cfg, "test", seed)])
  for name in ("rgb", "flow"):
    counts = {kind: r["segments"] for kind, r in report["networks"][name].items()}
    assert counts["instance"] == int(np.sum(expected == 0))
    assert counts["background"] == int(np.sum(expected == -1))
    assert sum(counts.values()) == expected.size     # every segment, not STPN's 400 sampled positions


def test_tool_refuses_data_of_another_source_in_one_line(synthetic_run, tmp_path):
  _, model_dir = synthetic_run
  other = str(tmp_path / "random")
  testing_utils.write_random_dataset(other, num_classes=4)
  proc = subprocess.run([sys.executable, TOOL, f"--model_dir={model_dir}", f"--data_dir={other}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert "random" in proc.stderr, proc.stderr[-500:]
  print(proc.stderr.strip().splitlines()[-1])
