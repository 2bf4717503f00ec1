"""The stpn_tf.evaluate CLI: file-scoring mode end to end, mode checks, the model-mode hook."""

import json
import os
import subprocess
import sys
import types

import pytest
from absl import app
from absl import flags

import stpn_tf
from stpn_tf import evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_files(tmp_path):
  gt = {"database": {
      "v1": {"subset": "test", "annotations": [{"label": "A", "segment": ["0", "10"]},
                                               {"label": "A", "segment": ["20", "30"]}]},
      "v2": {"subset": "test", "annotations": [{"label": "B", "segment": ["5.0", "9.0"]}]},
      "v3": {"subset": "validation", "annotations": [{"label": "A", "segment": ["0", "1"]}]},
  }}
  pred = {"results": {
      "v1": [{"label": "A", "score": 0.9, "segment": [0, 10]}, {"label": "A", "score": 0.8, "segment": [0, 10]},
             {"label": "A", "score": 0.7, "segment": [20, 30]}],
      "v2": [{"label": "B", "score": 0.3, "segment": [5, 9]}, {"label": "Q", "score": 0.3, "segment": [5, 9]}],
  }}
  (tmp_path / "gt.json").write_text(json.dumps(gt))
  (tmp_path / "pred.json").write_text(json.dumps(pred))
  return str(tmp_path / "gt.json"), str(tmp_path / "pred.json")


def _run_cli(*args):
  # Runs the module as `python -m stpn_tf.evaluate` would, and reports whether TensorFlow got imported.
  code = ("import runpy, sys\n"
          "sys.argv = ['evaluate'] + sys.argv[1:]\n"
          "try:\n"
          "  runpy.run_module('stpn_tf.evaluate', run_name='__main__', alter_sys=True)\n"
          "finally:\n"
          "  print('TENSORFLOW_IMPORTED=%s' % ('tensorflow' in sys.modules))\n")
  return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=120, check=False)


def test_cli_writes_json_schema_and_prints_table(tmp_path):
  gt, pred = _write_files(tmp_path)
  out = tmp_path / "out.json"
  proc = _run_cli(f"--ground_truth={gt}", f"--predictions={pred}", "--subset=test",
                  "--tiou_thresholds=0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9", f"--output_json={out}")
  assert proc.returncode == 0, proc.stderr
  assert "TENSORFLOW_IMPORTED=False" in proc.stdout
  data = json.loads(out.read_text())
  # Class A: TP, duplicate FP, TP -> 5/6; class B: TP -> 1. mAP = 11/12 at every threshold.
  assert data["tiou_thresholds"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
  assert data["mAP"] == pytest.approx([11 / 12] * 9)
  assert data["average_mAP"] == pytest.approx(11 / 12)
  assert data["average_mAP_0.1:0.5"] == pytest.approx(11 / 12)
  assert data["average_mAP_0.1:0.7"] == pytest.approx(11 / 12)
  assert data["num_ground_truth_videos"] == 2
  assert data["num_ground_truth_instances"] == 3
  assert data["num_predictions"] == 4
  assert data["num_predictions_unknown_label"] == 1
  assert data["per_class_AP"]["A"] == pytest.approx([5 / 6] * 9)
  assert "91.67" in proc.stdout  # the table, in percent with 2 decimals
  assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_cli_exclude_videos_from_file(tmp_path):
  gt, pred = _write_files(tmp_path)
  (tmp_path / "exclude.txt").write_text("v2\n")
  out = tmp_path / "out.json"
  proc = _run_cli(f"--ground_truth={gt}", f"--predictions={pred}", "--subset=test", "--tiou_thresholds=0.5",
                  f"--exclude_videos={tmp_path / 'exclude.txt'}", f"--output_json={out}")
  assert proc.returncode == 0, proc.stderr
  data = json.loads(out.read_text())
  assert data["mAP"] == pytest.approx([5 / 6])
  assert (data["num_ground_truth_videos"], data["num_ground_truth_instances"], data["num_predictions"]) == (1, 2, 3)
  assert "average_mAP_0.1:0.5" not in data


def test_cli_bad_input_exits_with_clear_message(tmp_path):
  gt, _ = _write_files(tmp_path)
  bad = tmp_path / "bad.json"
  bad.write_text('{"results": {"v1": [{"label": "A", "score": 1, "segment": [5, 2]}]}}')
  proc = _run_cli(f"--ground_truth={gt}", f"--predictions={bad}", f"--output_json={tmp_path / 'out.json'}")
  assert proc.returncode != 0
  assert "bad.json: video 'v1': detection 0: segment end 2.0 < start 5.0" in proc.stderr
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "out.json").exists()


@pytest.fixture
def fresh_flags():
  yield flags.FLAGS
  flags.FLAGS.unparse_flags()


@pytest.mark.parametrize("argv", [
    [],
    ["--ground_truth=g.json"],
    ["--ground_truth=g.json", "--predictions=p.json", "--model_dir=m"],
    ["--ground_truth=g.json", "--predictions=p.json", "--data_dir=d"],
])
def test_mode_usage_errors(fresh_flags, argv):
  fresh_flags(["evaluate", *argv])
  with pytest.raises(app.UsageError):
    evaluate.main(["evaluate"])


def test_bad_thresholds_are_usage_errors():
  with pytest.raises(app.UsageError):
    evaluate.parse_thresholds("0.1,x")
  with pytest.raises(app.UsageError):
    evaluate.parse_thresholds("0.5,1.5")
  assert evaluate.parse_thresholds("activitynet")[0] == 0.5
  assert len(evaluate.parse_thresholds("thumos14")) == 9


def test_model_mode_calls_inference_lazily(fresh_flags, monkeypatch):
  calls = []
  fake = types.ModuleType("stpn_tf.runs")
  fake.run_model_evaluation = lambda **kwargs: calls.append(kwargs)
  monkeypatch.setitem(sys.modules, "stpn_tf.runs", fake)
  monkeypatch.setattr(stpn_tf, "runs", fake, raising=False)
  fresh_flags(["evaluate", "--model_dir=/m", "--predictions_out=/p.json"])
  evaluate.main(["evaluate"])
  assert calls == [{"model_dir": "/m", "data_dir": None, "predictions_out": "/p.json", "gin_files": [],
                    "gin_params": [], "output_tag": None}]


def test_item7_exclude_videos_mistyped_path_exits_with_error(tmp_path):
  # Was read as the video id "<tmp>/exlcude.txt": nothing excluded, exit status 0.
  gt, pred = _write_files(tmp_path)
  (tmp_path / "exclude.txt").write_text("v2\n")
  proc = _run_cli(f"--ground_truth={gt}", f"--predictions={pred}", "--subset=test",
                  f"--exclude_videos={tmp_path / 'exlcude.txt'}", f"--output_json={tmp_path / 'out.json'}")
  assert proc.returncode == 1, proc.stderr
  assert f"evaluate: error: video list '{tmp_path / 'exlcude.txt'}' looks like a file path" in proc.stderr
  assert not (tmp_path / "out.json").exists()


def test_model_mode_errors_are_one_line(tmp_path):
  proc = _run_cli(f"--model_dir={tmp_path / 'nothing'}")
  assert proc.returncode == 1
  assert f"evaluate: error: {tmp_path / 'nothing'} holds no checkpoint" in proc.stderr
  assert "Traceback" not in proc.stderr
