"""ActivityNet JSON loading/writing and the bad-input policy."""

import json
import os

import numpy as np
import pytest

from stpn_tf.evaluation import detection
from stpn_tf.evaluation import io as eval_io
from stpn_tf.evaluation.io import EvaluationInputError


def _write(path, obj):
  path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
  return path


def _gt_file(tmp_path, database):
  return _write(tmp_path / "gt.json", {"database": database})


def _pred_file(tmp_path, results):
  return _write(tmp_path / "pred.json", {"version": "VERSION 1.3", "results": results, "external_data": {}})


def test_load_ground_truth_with_string_segments_and_subset(tmp_path):
  path = _gt_file(tmp_path, {
      "v1": {"subset": "test", "duration": "200.0",
             "annotations": [{"label": "GolfSwing", "segment": ["88.6", "90.9"]},
                             {"label": "Diving", "segment": [3, 5.5]}]},
      "v2": {"subset": "validation", "annotations": [{"label": "Diving", "segment": [1, 2]}]},
      "v3": {"subset": "test", "annotations": []},
  })
  gt = eval_io.load_ground_truth(path, subset="test")
  assert list(gt.columns) == ["video_id", "label", "t_start", "t_end"]
  assert gt.video_id.tolist() == ["v1", "v1"]
  assert gt.label.tolist() == ["GolfSwing", "Diving"]
  np.testing.assert_array_equal(gt[["t_start", "t_end"]].to_numpy(), [[88.6, 90.9], [3.0, 5.5]])
  assert gt.t_start.dtype == np.float64
  assert len(eval_io.load_ground_truth(path)) == 3  # subset=None keeps all


def test_load_predictions_keeps_file_order_and_parses_strings(tmp_path):
  path = _pred_file(tmp_path, {
      "v2": [{"label": "A", "score": "0.5", "segment": ["1.5", "2"]}],
      "v1": [{"label": "B", "score": 2, "segment": [0, 1]}, {"label": "A", "score": -1.5, "segment": [4, 4]}],
  })
  pred = eval_io.load_predictions(path)
  assert list(pred.columns) == ["video_id", "label", "t_start", "t_end", "score"]
  assert pred.video_id.tolist() == ["v2", "v1", "v1"]
  np.testing.assert_array_equal(pred.score.to_numpy(), [0.5, 2.0, -1.5])
  np.testing.assert_array_equal(pred.t_start.to_numpy(), [1.5, 0.0, 4.0])


def test_empty_results_object_gives_empty_frame_and_zero_map(tmp_path):
  gt = _gt_file(tmp_path, {"v1": {"subset": "test", "annotations": [{"label": "A", "segment": [0, 1]}]}})
  pred = _pred_file(tmp_path, {})
  assert len(eval_io.load_predictions(pred)) == 0
  result = detection.score_files(gt, pred, subset="test", tiou_thresholds=[0.5])
  np.testing.assert_allclose(result.mAP, [0.0])
  assert result.num_predictions == 0


def test_empty_prediction_file_is_an_error(tmp_path):
  path = _write(tmp_path / "pred.json", "")
  with pytest.raises(EvaluationInputError, match=r"pred\.json: file is empty"):
    eval_io.load_predictions(path)


def test_malformed_json_is_an_error(tmp_path):
  path = _write(tmp_path / "gt.json", '{"database": {"v1": ')
  with pytest.raises(EvaluationInputError, match=r"gt\.json: malformed JSON"):
    eval_io.load_ground_truth(path)


def test_missing_file_is_an_error(tmp_path):
  with pytest.raises(EvaluationInputError, match="cannot read"):
    eval_io.load_ground_truth(tmp_path / "nope.json")


def test_missing_top_level_keys_are_errors(tmp_path):
  path = _write(tmp_path / "x.json", {"results": {}})
  with pytest.raises(EvaluationInputError, match=r"x\.json: missing top-level key \"database\""):
    eval_io.load_ground_truth(path)
  path = _write(tmp_path / "y.json", {"database": {}})
  with pytest.raises(EvaluationInputError, match=r"y\.json: missing top-level key \"results\""):
    eval_io.load_predictions(path)


def test_missing_annotations_key_names_file_and_video(tmp_path):
  path = _gt_file(tmp_path, {"vid_7": {"subset": "test"}})
  with pytest.raises(EvaluationInputError, match=r"gt\.json: video 'vid_7': missing key \"annotations\""):
    eval_io.load_ground_truth(path)


def test_missing_subset_key_only_matters_when_filtering(tmp_path):
  path = _gt_file(tmp_path, {"v1": {"annotations": [{"label": "A", "segment": [0, 1]}]}})
  assert len(eval_io.load_ground_truth(path)) == 1
  with pytest.raises(EvaluationInputError, match=r"video 'v1': missing key \"subset\""):
    eval_io.load_ground_truth(path, subset="test")


@pytest.mark.parametrize("detection_entry, match", [
    ({"score": 1, "segment": [0, 1]}, r"missing key \"label\""),
    ({"label": "A", "segment": [0, 1]}, r"missing key \"score\""),
    ({"label": "A", "score": 1}, r"missing key \"segment\""),
    ({"label": "A", "score": 1, "segment": [0]}, r"must be \[start, end\]"),
    ({"label": "A", "score": 1, "segment": ["a", 1]}, r"segment start must be a number"),
    ({"label": "A", "score": "high", "segment": [0, 1]}, r"score must be a number"),
    ({"label": "A", "score": 1, "segment": [0, "Infinity"]}, r"not finite"),
    ({"label": 3, "score": 1, "segment": [0, 1]}, r"\"label\" must be a string"),
])
def test_bad_detection_entries_name_file_video_and_problem(tmp_path, detection_entry, match):
  path = _pred_file(tmp_path, {"vid_x": [{"label": "A", "score": 1, "segment": [0, 1]}, detection_entry]})
  with pytest.raises(EvaluationInputError, match=r"pred\.json: video 'vid_x': detection 1: .*" + match):
    eval_io.load_predictions(path)


def test_segment_end_before_start_is_an_error(tmp_path):
  path = _gt_file(tmp_path, {"v9": {"subset": "test", "annotations": [{"label": "A", "segment": ["5.0", "4.0"]}]}})
  with pytest.raises(EvaluationInputError, match=r"gt\.json: video 'v9': annotation 0: segment end 4.0 < start 5.0"):
    eval_io.load_ground_truth(path)
  path = _pred_file(tmp_path, {"v9": [{"label": "A", "score": 1, "segment": [2, 1]}]})
  with pytest.raises(EvaluationInputError, match=r"video 'v9'.*end 1.0 < start 2.0"):
    eval_io.load_predictions(path)


@pytest.mark.parametrize("score_text", ["NaN", '"nan"'])
def test_nan_score_is_an_error(tmp_path, score_text):
  # Python's json reads the non-standard NaN literal, so it must be caught explicitly.
  path = _write(tmp_path / "pred.json",
                '{"results": {"v3": [{"label": "A", "score": ' + score_text + ', "segment": [0, 1]}]}}')
  with pytest.raises(EvaluationInputError, match=r"pred\.json: video 'v3': detection 0: score is NaN"):
    eval_io.load_predictions(path)


def test_unknown_label_and_unknown_video_are_counted_by_score_files(tmp_path):
  gt = _gt_file(tmp_path, {"v1": {"subset": "test", "annotations": [{"label": "A", "segment": [0, 10]}]},
                           "v2": {"subset": "validation", "annotations": [{"label": "B", "segment": [0, 10]}]}})
  pred = _pred_file(tmp_path, {
      "v1": [{"label": "A", "score": 0.5, "segment": [0, 10]}, {"label": "Zzz", "score": 0.9, "segment": [0, 10]}],
      "v2": [{"label": "A", "score": 0.7, "segment": [0, 10]}],  # other subset: a false positive, kept
      "v5": [{"label": "B", "score": 0.8, "segment": [0, 10]}],  # B is not a test class: dropped
  })
  result = detection.score_files(gt, pred, subset="test", tiou_thresholds=[0.5])
  assert result.num_predictions_unknown_label == 2
  assert result.num_predictions_without_ground_truth_video == 1
  assert result.num_predictions == 2
  np.testing.assert_allclose(result.mAP, [0.5])  # FP (v2) ranked above the TP


def test_score_files_with_no_annotation_in_subset_is_an_error(tmp_path):
  gt = _gt_file(tmp_path, {"v1": {"subset": "validation", "annotations": [{"label": "A", "segment": [0, 1]}]}})
  pred = _pred_file(tmp_path, {})
  with pytest.raises(EvaluationInputError, match=r"gt\.json: no annotation in subset 'test'"):
    detection.score_files(gt, pred, subset="test")


def test_write_predictions_json_round_trip_and_atomicity(tmp_path):
  path = tmp_path / "out.json"
  eval_io.write_predictions_json(path, {
      "v1": [{"label": "A", "score": np.float32(0.5), "segment": [np.float64(1.0), 2]}, ("B", 0.25, 3, 4.5)],
      "v2": [],
  })
  assert sorted(os.listdir(tmp_path)) == ["out.json"]  # no temporary file left behind
  data = json.loads(path.read_text())
  assert data["results"]["v1"][1] == {"label": "B", "score": 0.25, "segment": [3.0, 4.5]}
  pred = eval_io.load_predictions(path)
  assert pred.video_id.tolist() == ["v1", "v1"]
  # A DataFrame writes back to the same content.
  eval_io.write_predictions_json(tmp_path / "again.json", pred)
  np.testing.assert_array_equal(eval_io.load_predictions(tmp_path / "again.json").to_numpy(), pred.to_numpy())


def test_write_predictions_json_rejects_nan_and_leaves_old_file(tmp_path):
  path = tmp_path / "out.json"
  path.write_text("old")
  with pytest.raises(EvaluationInputError, match="video 'v1'"):
    eval_io.write_predictions_json(path, {"v1": [("A", float("nan"), 0, 1)]})
  assert path.read_text() == "old"
  with pytest.raises(ValueError):
    eval_io.write_json_atomic(path, {"x": float("nan")})
  assert path.read_text() == "old"
  assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_parse_video_list_from_string_file_and_iterable(tmp_path):
  assert eval_io.parse_video_list(None) == []
  assert eval_io.parse_video_list("") == []
  assert eval_io.parse_video_list("a, b,,a") == ["a", "b"]
  path = tmp_path / "ids.txt"
  path.write_text("# broken videos\nvideo_1\nvideo_2, video_3  # trailing comment\n\n")
  assert eval_io.parse_video_list(str(path)) == ["video_1", "video_2", "video_3"]
  assert eval_io.parse_video_list(["x", "y"]) == ["x", "y"]


# ------------------------------------------------------------------------------------------- issue 19


def test_item6_duplicate_video_keys_refused(tmp_path):
  # json.loads keeps the last of two equal keys: v1's first 2 detections / first annotation were silently lost.
  pred = tmp_path / "pred.json"
  pred.write_text('{"results": {"v1": [{"label": "A", "score": 0.9, "segment": [0, 1]}, '
                  '{"label": "A", "score": 0.8, "segment": [2, 3]}], "v2": [], '
                  '"v1": [{"label": "A", "score": 0.1, "segment": [5, 6]}]}}')
  with pytest.raises(EvaluationInputError, match=r"pred.json: .*\"results\": 'v1' \(2 times\)"):
    eval_io.load_predictions(pred)
  gt = tmp_path / "gt.json"
  gt.write_text('{"database": {"v1": {"subset": "test", "annotations": [{"label": "A", "segment": [0, 1]}]}, '
                '"v1": {"subset": "test", "annotations": []}}}')
  with pytest.raises(EvaluationInputError, match=r"gt.json: .*\"database\": 'v1' \(2 times\)"):
    eval_io.load_ground_truth(gt, subset="test")
  # Equal keys inside different videos are fine (every detection has "label"), as are distinct videos.
  gt.write_text('{"database": {"v1": {"subset": "test", "annotations": [{"label": "A", "segment": [0, 1]}]}, '
                '"v2": {"subset": "test", "annotations": [{"label": "A", "segment": [0, 1]}]}}}')
  assert eval_io.load_ground_truth(gt, subset="test").video_id.tolist() == ["v1", "v2"]


def test_item7_exclude_videos_missing_file_is_an_error(tmp_path):
  for value in (str(tmp_path / "exclude.txt"), "exclude.txt", "lists/broken", "v1,typo.lst"):
    with pytest.raises(EvaluationInputError, match="looks like a file path but does not exist"):
      eval_io.parse_video_list(value)
  with pytest.raises(EvaluationInputError, match="is a directory"):
    eval_io.parse_video_list(str(tmp_path))
  # Real ids (THUMOS14, ActivityNet) are still ids.
  assert eval_io.parse_video_list("video_test_0000004,v_-zHX3Gdx6I4") == ["video_test_0000004", "v_-zHX3Gdx6I4"]
