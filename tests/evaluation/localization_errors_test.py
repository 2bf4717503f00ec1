"""stpn_tf/evaluation/localization_errors.py against a hand-computed example, and the tool end to end."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from stpn_tf.data import schema
from stpn_tf.evaluation import io as eval_io
from stpn_tf.evaluation import localization_errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GT = pd.DataFrame([("a", "X", 0.0, 10.0), ("a", "X", 20.0, 30.0), ("a", "Y", 40.0, 50.0)],
                  columns=["video_id", "label", "t_start", "t_end"])
PRED = pd.DataFrame([("a", "X", 0.0, 10.0, 0.9),     # IoU 1 with [0, 10]
                     ("a", "X", 18.0, 32.0, 0.8),    # IoU 10 / 14 with [20, 30]; 1.4x its length
                     ("a", "X", 0.0, 30.0, 0.5),     # a merge: 1/3 with either; 3x the length of [0, 10]
                     ("a", "Y", 60.0, 70.0, 0.4)],   # touches nothing
                    columns=["video_id", "label", "t_start", "t_end", "score"])


def test_hand_computed_profile():
  p = localization_errors.error_profile(GT, PRED)
  assert p["num_instances"] == 3 and p["num_top_detections"] == 4
  assert p["instance_best_iou"] == pytest.approx({"<0.1": 1 / 3, "0.1-0.3": 0, "0.3-0.5": 0, "0.5-0.7": 0,
                                                  ">=0.7": 2 / 3})
  assert p["top_detection_iou"] == pytest.approx({"<0.1": 0.25, "0.1-0.3": 0, "0.3-0.5": 0.25, "0.5-0.7": 0,
                                                  ">=0.7": 0.5})
  # Ratios 1.0, 1.4, 3.0 (numpy's linear percentiles: 1.2, 1.4, 2.2); one merge out of three touching detections.
  assert p["length_ratio"] == pytest.approx({"p25": 1.2, "median": 1.4, "p75": 2.2})
  assert p["merge_share"] == pytest.approx(1 / 3)
  assert "instances, best same-class IoU" in localization_errors.format_profile(p)


def test_top_k_keeps_the_highest_scored_detections_of_each_video():
  p = localization_errors.error_profile(GT, PRED, top_k=2)
  assert p["top_detection_iou"][">=0.7"] == 1.0 and p["num_top_detections"] == 2


def test_no_predictions_means_every_instance_missed():
  empty = PRED.iloc[:0]
  p = localization_errors.error_profile(GT, empty)
  assert p["instance_best_iou"]["<0.1"] == 1.0 and p["length_ratio"] is None and p["merge_share"] is None


def test_tool_reads_a_dataset_and_a_detection_file(tmp_path):
  video = schema.Video(video_id="v1", labels=np.array([0]), duration=40.0,
                       rgb=np.ones((50, 4), np.float32), flow=np.ones((50, 4), np.float32),
                       segments=np.array([[2.0, 8.0], [20.0, 30.0]], np.float32), segment_labels=np.array([0, 0]))
  data_dir = str(tmp_path / "data")
  schema.write_dataset(data_dir, {"test": [video]}, ["X", "Y"], 1.25, feature_dims={"rgb": 4, "flow": 4})
  preds = tmp_path / "pred.json"
  preds.write_text('{"version": "x", "external_data": {}, "results": {"v1": ['
                   '{"label": "X", "segment": [2.0, 8.0], "score": 0.9}]}}')
  assert len(eval_io.load_predictions(str(preds))) == 1
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "localization_errors.py"),
                         f"--data_dir={data_dir}", f"--predictions={preds}", f"--output_json={tmp_path / 'p.json'}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "2 instances" in proc.stdout and ">=0.7 50%" in proc.stdout and "<0.1 50%" in proc.stdout


def test_tool_reads_an_activitynet_ground_truth_file(tmp_path):
  gt = tmp_path / "gt.json"
  gt.write_text('{"database": {"v1": {"subset": "test", "annotations": [{"label": "X", "segment": ["2.0", "8.0"]}]},'
                ' "v2": {"subset": "val", "annotations": [{"label": "X", "segment": ["1.0", "3.0"]}]}}}')
  preds = tmp_path / "pred.json"
  preds.write_text('{"version": "x", "external_data": {}, "results": {"v1": ['
                   '{"label": "X", "segment": [2.0, 10.0], "score": 0.9}]}}')
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "localization_errors.py"),
                         f"--ground_truth={gt}", f"--predictions={preds}", "--subset=test"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  # One instance (the val video is dropped), found at IoU 6 / 8 = 0.75 by a detection 8 / 6 of its length.
  assert "1 instances" in proc.stdout and ">=0.7 100%" in proc.stdout and "median 1.33" in proc.stdout


def test_tool_names_a_missing_file_in_one_line(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "localization_errors.py"),
                         f"--ground_truth={tmp_path / 'gt.json'}", f"--predictions={tmp_path / 'missing.json'}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert "gt.json" in proc.stderr or "missing.json" in proc.stderr
