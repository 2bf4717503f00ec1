"""Converters (stpn_tf/data/converters.py): round trips for every input format and every bad-input case.

All inputs are built here in tmp_path (small, stream_dim 4); nothing reads /work/shared.
"""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from stpn_tf.data import converters
from stpn_tf.data import schema
from stpn_tf.evaluation import io as eval_io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIM = 4                      # per stream; joint arrays have 2 * DIM columns
RATE = 25.0 / 16.0
CLASSES = ["CliffDiving", "Diving", "Golf"]


def _options(**kwargs):
  kwargs.setdefault("stream_dim", DIM)
  kwargs.setdefault("videos_per_shard", 2)
  return converters.ConversionOptions(**kwargs)


def _features(seed, rows, dim=2 * DIM):
  return np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)   # [T, 2 * DIM]


# Three videos in THUMOS14 conventions: two training ("validation"), one evaluation ("test"). The test video
# has a CliffDiving instance also listed as Diving (as in THUMOS14), which must be kept as given.
VIDEOS = [
    dict(name="video_validation_1", subset="validation", duration=8.0, labels_all=["Golf"],
         labels=["Golf", "Golf"], segments=[[0.5, 2.0], [3.0, 6.5]], rows=12),
    dict(name="video_validation_2", subset="validation", duration=6.4, labels_all=[], labels=[], segments=[],
         rows=10),
    dict(name="video_test_1", subset="test", duration=9.6, labels_all=["CliffDiving", "Diving"],
         labels=["CliffDiving", "Diving", "Diving"], segments=[[1.0, 3.25], [1.0, 3.25], [5.5, 9.0]], rows=15),
]
SPLIT = {"validation": "train", "test": "test"}


def _write_wtalc(folder, videos=VIDEOS, classes=CLASSES, features=None, prefix="Thumos14reduced"):
  """W-TALC files with bytes names, subsets and class list (as in the real release); returns (features, dir)."""
  ann = folder / f"{prefix}-Annotations"
  ann.mkdir(parents=True)

  def obj(items):
    # Element by element: a slice assignment would let NumPy turn equal-length lists into a 2-D array.
    out = np.empty(len(items), object)
    for i, x in enumerate(items):
      out[i] = x if x is None or isinstance(x, np.ndarray) else list(x)
    return out

  np.save(ann / "videoname.npy", np.array([v["name"].encode() for v in videos]))
  np.save(ann / "subset.npy", np.array([v["subset"].encode() for v in videos]))
  np.save(ann / "classlist.npy", np.array([c.encode() for c in classes]))
  np.save(ann / "duration.npy", np.array([[v["duration"]] for v in videos]))    # [N, 1] as in THUMOS14
  np.save(ann / "labels.npy", obj([v["labels"] for v in videos]), allow_pickle=True)
  np.save(ann / "labels_all.npy", obj([v["labels_all"] for v in videos]), allow_pickle=True)
  np.save(ann / "segments.npy", obj([v["segments"] for v in videos]), allow_pickle=True)
  (ann / "Ambiguous_test.txt").write_text("video_test_1  0.0 0.7\nvideo_test_1  8.0 8.5\nvideo_test_9  1.0 2.0\n")
  if features is None:
    features = [_features(i, v["rows"]) for i, v in enumerate(videos)]
  array = obj(features)
  path = folder / f"{prefix}-I3D-JOINTFeatures.npy"
  np.save(path, array, allow_pickle=True)
  return str(path), str(ann)


def _gt_database(videos=VIDEOS, strings=False):
  """The ActivityNet-JSON form of VIDEOS (numbers as strings when asked, as in real THUMOS14 files)."""
  fmt = str if strings else float
  return {v["name"]: {"subset": v["subset"], "duration": fmt(v["duration"]),
                      "annotations": [{"label": l, "segment": [fmt(s), fmt(e)]}
                                      for l, (s, e) in zip(v["labels"], v["segments"])]}
          for v in videos}


def _write_json(path, database):
  path.write_text(json.dumps({"version": "test", "database": database}))
  return str(path)


def _write_per_video(folder, features, layout="separate"):
  """features: video -> [T, 2 * DIM] joint array (or (rgb, flow) pair)."""
  for stream in (("rgb", "flow") if layout == "separate" else ()):
    (folder / stream).mkdir(parents=True, exist_ok=True)
  folder.mkdir(parents=True, exist_ok=True)
  for vid, x in features.items():
    rgb, flow = x if isinstance(x, tuple) else (x[:, :DIM], x[:, DIM:])
    if layout == "separate":
      np.save(folder / "rgb" / f"{vid}.npy", rgb)
      np.save(folder / "flow" / f"{vid}.npy", flow)
    else:
      np.save(folder / f"{vid}.npy", np.concatenate([rgb, flow], axis=1) if isinstance(x, tuple) else x)
  return str(folder)


def _check_dataset(out, videos, features, classes=CLASSES, labels_key="labels_all", skipped=()):
  """Reads OUT back and compares everything with the inputs, exactly."""
  manifest = schema.read_manifest(out)
  assert manifest.class_names == classes
  assert manifest.feature_rate == pytest.approx(RATE)
  assert manifest.feature_dims == {"rgb": DIM, "flow": DIM}
  expected = {v["name"]: (v, features[v["name"]]) for v in videos if v["name"] not in skipped}
  seen = {}
  for split in manifest.splits:
    for got in schema.read_videos(out, split):
      v, x = expected[got.video_id]
      assert SPLIT[v["subset"]] == split
      np.testing.assert_array_equal(got.rgb, x[:, :DIM])
      np.testing.assert_array_equal(got.flow, x[:, DIM:])
      assert got.labels.tolist() == sorted({classes.index(l) for l in v[labels_key]})
      assert got.segment_labels.tolist() == [classes.index(l) for l in v["labels"]]
      np.testing.assert_array_equal(got.segments, np.array(v["segments"], np.float32).reshape(-1, 2))
      assert got.duration == pytest.approx(v["duration"])
      seen[got.video_id] = split
  assert set(seen) == set(expected)
  # Ground truth: the evaluation split, every instance exactly as given (duplicates kept), in seconds.
  gt = json.loads(open(os.path.join(out, converters.GROUND_TRUTH_NAME)).read())["database"]
  assert gt == {name: {"subset": "test", "duration": v["duration"],
                       "annotations": [{"label": l, "segment": list(s)} for l, s in zip(v["labels"], v["segments"])]}
                for name, (v, _) in expected.items() if v["subset"] == "test"}
  frame = eval_io.load_ground_truth(os.path.join(out, converters.GROUND_TRUTH_NAME), subset="test")
  assert len(frame) == sum(len(v["labels"]) for v, _ in expected.values() if v["subset"] == "test")
  report = json.loads(open(os.path.join(out, converters.REPORT_NAME)).read())
  assert report["status"] == "complete"
  assert report["num_skipped"] == len(skipped)
  return report


def _joint(videos=VIDEOS):
  return {v["name"]: _features(i, v["rows"]) for i, v in enumerate(videos)}


# ------------------------------------------------------------------------------------------- round trips


def test_wtalc_round_trip_bytes_names(tmp_path):
  features_path, ann = _write_wtalc(tmp_path)
  out = str(tmp_path / "out")
  report = converters.convert_wtalc(features_path, ann, out, None, _options())   # THUMOS14 name: 25/16 default
  assert report.feature_rate == pytest.approx(RATE)
  assert report.written == {"train": 2, "test": 1}
  _check_dataset(out, VIDEOS, _joint())
  ambiguous = json.loads(open(os.path.join(out, converters.AMBIGUOUS_NAME)).read())["database"]
  assert ambiguous == {
      "video_test_1": {"subset": "test", "annotations": [{"label": "Ambiguous", "segment": [0.0, 0.7]},
                                                          {"label": "Ambiguous", "segment": [8.0, 8.5]}]},
      "video_test_9": {"subset": "test", "annotations": [{"label": "Ambiguous", "segment": [1.0, 2.0]}]}}
  manifest = schema.read_manifest(out)
  assert manifest.extra["converter"]["format"] == "wtalc"


def test_wtalc_labels_all_kept_as_video_labels_with_warning(tmp_path):
  videos = [dict(VIDEOS[0], labels_all=["Diving"]), VIDEOS[1], VIDEOS[2]]
  features_path, ann = _write_wtalc(tmp_path, videos)
  out = str(tmp_path / "out")
  report = converters.convert_wtalc(features_path, ann, out, RATE, _options())
  _check_dataset(out, videos, _joint(videos))
  assert [(w.video_id, w.kind) for w in report.warnings] == [("video_validation_1", "labels_mismatch")]


def test_wtalc_activitynet_subsets_and_required_rate(tmp_path):
  videos = [dict(VIDEOS[0], subset="training"), dict(VIDEOS[2], subset="validation"),
            dict(VIDEOS[1], subset="testing")]
  features_path, ann = _write_wtalc(tmp_path, videos, prefix="ActivityNet1.2")
  out = str(tmp_path / "out")
  with pytest.raises(schema.DataFormatError, match="--feature_rate is required"):
    converters.convert_wtalc(features_path, ann, out, None, _options())
  report = converters.convert_wtalc(features_path, ann, out, RATE, _options())
  assert report.subset_map == {"training": "train", "validation": "test"}
  assert report.written == {"train": 1, "test": 1}
  assert report.not_converted == {"testing": 1}
  gt = json.loads(open(os.path.join(out, converters.GROUND_TRUTH_NAME)).read())["database"]
  assert list(gt) == ["video_test_1"]


@pytest.mark.parametrize("layout", ["separate", "joint"])
def test_per_video_round_trip(tmp_path, layout):
  features = _joint()
  feature_dir = _write_per_video(tmp_path / "features", features, layout)
  gt_path = _write_json(tmp_path / "gt.json", _gt_database(strings=True))
  out = str(tmp_path / "out")
  report = converters.convert_per_video(feature_dir, gt_path, out, RATE, _options())
  assert report.inputs["layout"] == layout
  classes = sorted({l for v in VIDEOS for l in v["labels"]})   # sorted labels of the JSON
  _check_dataset(out, VIDEOS, features, classes=classes, labels_key="labels")


def test_per_video_class_list_prefix_and_missing_duration(tmp_path):
  features = _joint()
  feature_dir = _write_per_video(tmp_path / "features", {"v_" + k: x for k, x in features.items()}, "joint")
  database = _gt_database()
  del database["video_test_1"]["duration"]     # then the duration is T / feature_rate
  gt_path = _write_json(tmp_path / "gt.json", database)
  classes = ["Golf", "Diving", "CliffDiving", "Unused"]
  out = str(tmp_path / "out")
  converters.convert_per_video(feature_dir, gt_path, out, RATE, _options(class_names=classes), id_prefix="v_")
  videos = [VIDEOS[0], VIDEOS[1], dict(VIDEOS[2], duration=15 / RATE)]
  _check_dataset(out, videos, features, classes=classes, labels_key="labels")


@pytest.mark.parametrize("layout", ["groups", "joint"])
def test_hdf5_round_trip(tmp_path, layout):
  features = _joint()
  h5_path = str(tmp_path / "features.h5")
  with h5py.File(h5_path, "w") as f:
    for vid, x in features.items():
      if layout == "groups":
        f[f"{vid}/rgb"] = x[:, :DIM]
        f[f"{vid}/flow"] = x[:, DIM:].astype(np.float64)    # float64 is read and cast to float32
      else:
        f[vid] = x
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  converters.convert_hdf5(h5_path, gt_path, out, RATE, _options())
  _check_dataset(out, VIDEOS, features, classes=sorted({l for v in VIDEOS for l in v["labels"]}),
                 labels_key="labels")


def test_hdf5_rejects_a_file_that_is_not_hdf5(tmp_path):
  # tensorflow-io crashes the process on such a file; the converter must refuse it first.
  path = tmp_path / "features.h5"
  path.write_bytes(b"not an hdf5 file" * 100)
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  with pytest.raises(schema.DataFormatError, match="not an HDF5 file"):
    converters.convert_hdf5(str(path), gt_path, str(tmp_path / "out"), RATE, _options())


# ------------------------------------------------------------------------------------------- bad inputs


def _nan(features, database):
  features["video_test_1"][3, 5] = np.nan


def _inf(features, database):
  features["video_test_1"][0, 0] = np.inf


def _wrong_dims(features, database):
  features["video_test_1"] = features["video_test_1"][:, :-1]   # [T, 2 * DIM - 1]


def _zero_length(features, database):
  features["video_test_1"] = np.zeros((0, 2 * DIM), np.float32)


def _missing_features(features, database):
  del features["video_test_1"]


def _missing_annotation(features, database):
  del database["video_test_1"]


def _end_before_start(features, database):
  database["video_test_1"]["annotations"][2]["segment"] = [9.0, 5.5]


def _beyond_duration(features, database):
  # duration 9.6 s, 15 rows = 9.6 s of features: 10.6 s is the last accepted end with the 1 s tolerance.
  database["video_test_1"]["annotations"][2]["segment"] = [5.5, 10.7]


def _before_zero(features, database):
  database["video_test_1"]["annotations"][0]["segment"] = [-1.5, 3.25]


BAD_CASES = {
    "nan": (_nan, "non_finite"),
    "inf": (_inf, "non_finite"),
    "wrong_dims": (_wrong_dims, "bad_shape"),
    "zero_length": (_zero_length, "zero_length"),
    "missing_features": (_missing_features, "missing_features"),
    "missing_annotation": (_missing_annotation, "missing_annotation"),
    "end_before_start": (_end_before_start, "bad_segment"),
    "beyond_duration": (_beyond_duration, "segment_out_of_range"),
    "before_zero": (_before_zero, "segment_out_of_range"),
}


@pytest.mark.parametrize("mode", ["fail", "skip"])
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_per_video_bad_input(tmp_path, case, mode):
  mutate, kind = BAD_CASES[case]
  features, database = _joint(), _gt_database()
  mutate(features, database)
  feature_dir = _write_per_video(tmp_path / "features", features, "joint")
  gt_path = _write_json(tmp_path / "gt.json", database)
  out = str(tmp_path / "out")
  # strict: segment_out_of_range is a problem again (by default it is a warning: test_*_kept_as_given_*).
  _expect_bad(lambda: converters.convert_per_video(feature_dir, gt_path, out, RATE,
                                                   _options(on_error=mode, strict=True)),
              out, mode, "video_test_1", kind)
  if mode == "skip":
    # The other videos are all there, exactly; the bad one is in neither the dataset nor the ground truth.
    _check_dataset(out, VIDEOS, _joint(), classes=sorted({l for v in database.values() for l in
                                                          (a["label"] for a in v["annotations"])}),
                   labels_key="labels", skipped=("video_test_1",))


def _expect_bad(run, out, mode, video_id, kind, num_skipped=1):
  if mode == "fail":
    with pytest.raises(schema.DataFormatError, match=video_id) as info:
      run()
    assert kind in str(info.value)
    assert not os.path.exists(os.path.join(out, schema.MANIFEST_NAME))
    assert not [n for n in os.listdir(out) if n.startswith(".tmp")]
    report = json.loads(open(os.path.join(out, converters.REPORT_NAME)).read())
    assert report["status"] == "failed"
    assert (video_id, kind) in {(p["video_id"], p["kind"]) for p in report["problems"]}
    return report
  report = run()
  assert report.num_skipped == num_skipped
  assert video_id in {s["video_id"] for s in report.skipped}
  assert (video_id, kind) in {(p.video_id, p.kind) for p in report.problems}
  on_disk = json.loads(open(os.path.join(out, converters.REPORT_NAME)).read())
  assert on_disk["num_skipped"] == num_skipped and on_disk["problem_counts"][kind] >= 1
  assert "skipped: %d videos" % num_skipped in report.summary()
  return report


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_per_video_stream_length_mismatch(tmp_path, mode):
  features = _joint()
  x = features["video_test_1"]
  features["video_test_1"] = (x[:, :DIM], x[:-1, DIM:])       # rgb 15 rows, flow 14
  feature_dir = _write_per_video(tmp_path / "features", features, "separate")
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  _expect_bad(lambda: converters.convert_per_video(feature_dir, gt_path, out, RATE, _options(on_error=mode)),
              out, mode, "video_test_1", "stream_length_mismatch")


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_per_video_unreadable_file(tmp_path, mode):
  feature_dir = _write_per_video(tmp_path / "features", _joint(), "joint")
  with open(os.path.join(feature_dir, "video_test_1.npy"), "r+b") as f:
    f.truncate(100)                                             # header intact, data cut off
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  _expect_bad(lambda: converters.convert_per_video(feature_dir, gt_path, out, RATE, _options(on_error=mode)),
              out, mode, "video_test_1", "unreadable_features")


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_json_duplicate_id_and_unknown_class(tmp_path, mode):
  feature_dir = _write_per_video(tmp_path / "features", _joint(), "joint")
  database = _gt_database()
  text = json.dumps({"database": database})
  # A second entry for video_validation_1 (json.load alone would silently keep the last one).
  text = text[:-2] + ', "video_validation_1": ' + json.dumps(database["video_validation_1"]) + "}}"
  gt_path = tmp_path / "gt.json"
  gt_path.write_text(text)
  out = str(tmp_path / "out")
  options = _options(on_error=mode, class_names=["CliffDiving", "Golf"])     # "Diving" is unknown
  report = _expect_bad(lambda: converters.convert_per_video(feature_dir, str(gt_path), out, RATE, options),
                       out, mode, "video_validation_1", "duplicate_id", num_skipped=2)
  kinds = {(p["video_id"], p["kind"]) if isinstance(p, dict) else (p.video_id, p.kind) for p in
           (report["problems"] if isinstance(report, dict) else report.problems)}
  assert ("video_test_1", "unknown_class") in kinds     # fail mode lists every annotation problem at once


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_wtalc_bad_rows(tmp_path, mode):
  videos = [dict(VIDEOS[0]), dict(VIDEOS[1], name="video_validation_1"), dict(VIDEOS[2], labels_all=["Golfing"]),
            dict(VIDEOS[2], name="video_test_2"), dict(VIDEOS[2], name="video_test_3")]
  features = [_features(i, v["rows"]) for i, v in enumerate(videos)]
  features[3] = None                              # a row without features
  features[4] = np.zeros((0,), np.float32)        # an empty row, stored flat
  features_path, ann = _write_wtalc(tmp_path, videos, features=features)
  out = str(tmp_path / "out")
  run = lambda: converters.convert_wtalc(features_path, ann, out, RATE, _options(on_error=mode))
  report = _expect_bad(run, out, mode, "video_validation_1", "duplicate_id", num_skipped=5)
  kinds = {(p["video_id"], p["kind"]) if isinstance(p, dict) else (p.video_id, p.kind) for p in
           (report["problems"] if isinstance(report, dict) else report.problems)}
  assert ("video_test_1", "unknown_class") in kinds
  if mode == "skip":
    assert {("video_test_2", "missing_features"), ("video_test_3", "zero_length")} <= kinds
    assert report.written == {}
    gt = json.loads(open(os.path.join(out, converters.GROUND_TRUTH_NAME)).read())
    assert gt["database"] == {}


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_wtalc_count_mismatch_always_fails(tmp_path, mode):
  features_path, ann = _write_wtalc(tmp_path, features=[_features(0, 12), _features(1, 10)])
  out = str(tmp_path / "out")
  with pytest.raises(schema.DataFormatError, match="holds 2 videos but .* lists 3"):
    converters.convert_wtalc(features_path, ann, out, RATE, _options(on_error=mode))
  assert not os.path.exists(os.path.join(out, schema.MANIFEST_NAME))


# ------------------------------------------------------------------------------------------- output directory


def test_existing_output_needs_overwrite_and_is_cleaned(tmp_path):
  features_path, ann = _write_wtalc(tmp_path)
  out = str(tmp_path / "out")
  converters.convert_wtalc(features_path, ann, out, RATE, _options())
  with pytest.raises(FileExistsError, match="--overwrite"):
    converters.convert_wtalc(features_path, ann, out, RATE, _options())
  # A per-video conversion over it: the old ambiguous.json must not survive.
  feature_dir = _write_per_video(tmp_path / "features", _joint(), "joint")
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  converters.convert_per_video(feature_dir, gt_path, out, RATE, _options(overwrite=True))
  assert not os.path.exists(os.path.join(out, converters.AMBIGUOUS_NAME))
  assert schema.read_manifest(out).extra["converter"]["format"] == "per_video"
  # Any non-empty directory counts, not only a complete dataset.
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError):
    converters.convert_per_video(feature_dir, gt_path, str(other), RATE, _options())


def test_failure_mid_conversion_leaves_no_complete_dataset(tmp_path):
  # The NaN is in the last video, so shards were already being written when the conversion stops.
  features = _joint()
  features["video_test_1"][-1, -1] = np.nan
  feature_dir = _write_per_video(tmp_path / "features", features, "joint")
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  with pytest.raises(schema.DataFormatError, match="video_test_1"):
    converters.convert_per_video(feature_dir, gt_path, out, RATE, _options(videos_per_shard=1))
  assert sorted(os.listdir(out)) == [converters.REPORT_NAME]
  with pytest.raises(schema.DataFormatError, match="manifest.json is missing"):
    schema.read_manifest(out)


def test_cli_skip_mode_prints_summary(tmp_path):
  features = _joint()
  features["video_validation_2"][0, 0] = np.inf
  feature_dir = _write_per_video(tmp_path / "features", features, "separate")
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  cmd = [sys.executable, os.path.join(ROOT, "tools", "convert_features.py"), "--format=per_video",
         f"--features_dir={feature_dir}", f"--ground_truth={gt_path}", f"--output_dir={out}",
         f"--feature_rate={RATE}", f"--stream_dim={DIM}", "--on_error=skip"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))   # this checkout's stpn_tf
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "conversion complete" in proc.stdout and "skipped: 1 videos" in proc.stdout
  assert "video_validation_2: non_finite" in proc.stdout
  assert schema.read_manifest(out).splits["train"]["num_videos"] == 1


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_hdf5_missing_stream(tmp_path, mode):
  features = _joint()
  h5_path = str(tmp_path / "features.h5")
  with h5py.File(h5_path, "w") as f:
    for vid, x in features.items():
      f[f"{vid}/rgb"] = x[:, :DIM]
      if vid != "video_test_1":
        f[f"{vid}/flow"] = x[:, DIM:]
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  _expect_bad(lambda: converters.convert_hdf5(h5_path, gt_path, out, RATE, _options(on_error=mode)),
              out, mode, "video_test_1", "missing_features")


def test_segment_tolerance_boundary_and_disabled(tmp_path):
  # duration 9.6 s and 15 rows at 25/16 per second (9.6 s): ends up to 10.6 s pass with the default 1 s.
  features = _joint()
  feature_dir = _write_per_video(tmp_path / "features", features, "joint")
  database = _gt_database()
  database["video_test_1"]["annotations"][2]["segment"] = [5.5, 10.6]
  gt_path = _write_json(tmp_path / "gt.json", database)
  report = converters.convert_per_video(feature_dir, gt_path, str(tmp_path / "a"), RATE, _options(strict=True))
  assert report.num_skipped == 0 and not report.warnings
  database["video_test_1"]["annotations"][2]["segment"] = [5.5, 500.0]
  gt_path = _write_json(tmp_path / "gt.json", database)
  report = converters.convert_per_video(feature_dir, gt_path, str(tmp_path / "b"), RATE,
                                        _options(segment_tolerance=float("inf"), strict=True))
  assert report.num_skipped == 0 and not report.warnings
  gt = json.loads(open(os.path.join(str(tmp_path / "b"), converters.GROUND_TRUTH_NAME)).read())["database"]
  assert gt["video_test_1"]["annotations"][2]["segment"] == [5.5, 500.0]


# ------------------------------------------------------------------------------------------- issue 19, item 10


def test_item10_report_complete_only_after_manifest(tmp_path):
  # A kill at the final step (the manifest's write): the process dies without running any handler.
  feature_dir = _write_per_video(tmp_path / "features", _joint(), "joint")
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  code = ("import os, sys\n"
          "from stpn_tf.data import converters, schema\n"
          "schema.write_manifest = lambda *args, **kwargs: os._exit(9)\n"
          f"converters.convert_per_video({feature_dir!r}, {gt_path!r}, {out!r}, {RATE}, "
          f"converters.ConversionOptions(stream_dim={DIM}))\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 9, proc.stderr[-2000:]
  assert not os.path.exists(os.path.join(out, schema.MANIFEST_NAME))
  report = json.loads(open(os.path.join(out, converters.REPORT_NAME)).read())
  assert report["status"] == "running"           # was "complete", with no dataset
  # A normal run ends with "complete" and the manifest.
  report = converters.convert_per_video(feature_dir, gt_path, out, RATE, _options(overwrite=True))
  assert json.loads(open(os.path.join(out, converters.REPORT_NAME)).read())["status"] == "complete"
  assert schema.read_manifest(out).splits["test"]["num_videos"] == 1


def test_item10_rerun_replaces_a_failed_conversion(tmp_path):
  features = _joint()
  features["video_test_1"][-1, -1] = np.nan
  feature_dir = _write_per_video(tmp_path / "features", features, "joint")
  gt_path = _write_json(tmp_path / "gt.json", _gt_database())
  out = str(tmp_path / "out")
  with pytest.raises(schema.DataFormatError, match="video_test_1"):
    converters.convert_per_video(feature_dir, gt_path, out, RATE, _options())
  (tmp_path / "out" / ".tmp-0123abcd-train-00000-of-00001.tfrecord").write_bytes(b"left by a kill")
  # The input fixed, the same command (no --overwrite) replaces what the failure left.
  feature_dir = _write_per_video(tmp_path / "features2", _joint(), "joint")
  converters.convert_per_video(feature_dir, gt_path, out, RATE, _options())
  assert schema.read_manifest(out).splits["test"]["num_videos"] == 1
  assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
  # Anything else in the folder still needs --overwrite: a complete dataset, or a failed report next to user files.
  with pytest.raises(FileExistsError, match="--overwrite"):
    converters.convert_per_video(feature_dir, gt_path, out, RATE, _options())
  other = tmp_path / "other"
  other.mkdir()
  (other / converters.REPORT_NAME).write_text(json.dumps({"status": "failed"}))
  (other / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="--overwrite"):
    converters.convert_per_video(feature_dir, gt_path, str(other), RATE, _options())


# ------------------------------------------------------------------------------------------- real releases as they are


def _past_the_end(videos=VIDEOS):
  """The defect of five videos of the W-TALC THUMOS14 release (e.g. video_test_0000270: duration 176 s, features
  of 275 rows = 176 s, an instance ending at 713.7 s): here a training and the test video get an instance ending
  after both their duration and their features (+ the 1 s tolerance)."""
  out = [dict(v) for v in videos]
  out[0]["segments"] = [[0.5, 2.0], [3.0, 30.0]]           # 8 s video, 12 rows = 7.7 s
  out[2]["segments"] = [[1.0, 3.25], [1.0, 3.25], [5.5, 713.7]]   # 9.6 s video, 15 rows = 9.6 s
  return out


def test_wtalc_annotations_past_the_end_are_kept_as_given_with_warnings(tmp_path):
  videos = _past_the_end()
  features_path, ann = _write_wtalc(tmp_path, videos)
  out = str(tmp_path / "out")
  report = converters.convert_wtalc(features_path, ann, out, None, _options())
  assert report.written == {"train": 2, "test": 1} and report.num_skipped == 0 and not report.problems
  assert [(w.video_id, w.kind) for w in report.warnings] == [("video_validation_1", "segment_out_of_range"),
                                                              ("video_test_1", "segment_out_of_range")]
  assert all("kept as given" in w.message for w in report.warnings)
  # Every video and every instance exactly as given, in the dataset and in ground_truth.json.
  on_disk = _check_dataset(out, videos, _joint(videos))
  assert on_disk["warning_counts"] == {"segment_out_of_range": 2} and on_disk["strict"] is False
  gt = json.loads(open(os.path.join(out, converters.GROUND_TRUTH_NAME)).read())["database"]
  assert gt["video_test_1"]["annotations"][2]["segment"] == [5.5, 713.7]
  summary = report.summary()
  assert "conversion complete" in summary and "skipped: 0 videos" in summary
  assert "warnings: 2 in 2 videos {'segment_out_of_range': 2}, ground truth kept as given" in summary


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_wtalc_annotations_past_the_end_strict_restores_the_refusal(tmp_path, mode):
  videos = _past_the_end()
  features_path, ann = _write_wtalc(tmp_path, videos)
  out = str(tmp_path / "out")
  run = lambda: converters.convert_wtalc(features_path, ann, out, None, _options(on_error=mode, strict=True))
  if mode == "fail":
    with pytest.raises(schema.DataFormatError) as info:
      run()
    assert "video_validation_1" in str(info.value) and "video_test_1" in str(info.value)   # both named
    assert "segment_out_of_range" in str(info.value)
    assert not os.path.exists(os.path.join(out, schema.MANIFEST_NAME))
  else:
    report = run()
    assert report.written == {"train": 1} and report.num_skipped == 2


def test_zero_length_and_repeated_instances_are_warnings(tmp_path):
  videos = [dict(v) for v in VIDEOS]
  videos[2] = dict(VIDEOS[2], labels_all=["CliffDiving", "Diving", "Golf"],
                   labels=["CliffDiving", "Diving", "Diving", "Diving", "Golf"],
                   segments=[[1.0, 3.25], [1.0, 3.25], [5.5, 9.0], [5.5, 9.0], [4.0, 4.0]])
  features_path, ann = _write_wtalc(tmp_path, videos)
  out = str(tmp_path / "out")
  for strict in (False, True):
    report = converters.convert_wtalc(features_path, ann, out, None, _options(strict=strict, overwrite=True))
    assert report.num_skipped == 0
    assert [(w.video_id, w.kind) for w in report.warnings] == [("video_test_1", "zero_length_instance"),
                                                                ("video_test_1", "repeated_instance")]
    _check_dataset(out, videos, _joint(videos))       # all five instances kept as given


def test_unusable_input_still_stops_the_default_conversion(tmp_path):
  # NaN features are unusable: the default (not strict) conversion stops and names the video.
  videos = _past_the_end()
  features = [_features(i, v["rows"]) for i, v in enumerate(videos)]
  features[1][2, 3] = np.nan
  features_path, ann = _write_wtalc(tmp_path, videos, features=features)
  with pytest.raises(schema.DataFormatError, match="video_validation_2") as info:
    converters.convert_wtalc(features_path, ann, str(tmp_path / "out"), None, _options())
  assert "non_finite" in str(info.value) and "segment_out_of_range" not in str(info.value)


def test_cli_strict_flag_refuses_annotations_past_the_end(tmp_path):
  # A subprocess: the tool's flags (--output_dir, --ground_truth, ...) clash with other binaries' in this process.
  features_path, ann = _write_wtalc(tmp_path, _past_the_end())
  out = str(tmp_path / "out")
  cmd = [sys.executable, os.path.join(ROOT, "tools", "convert_features.py"), "--format=wtalc",
         f"--features={features_path}", f"--annotations={ann}", f"--output_dir={out}", f"--stream_dim={DIM}",
         "--strict"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))   # this checkout's stpn_tf
  assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
  assert "video_test_1" in proc.stderr and "segment_out_of_range" in proc.stderr
  assert json.loads(open(os.path.join(out, converters.REPORT_NAME)).read())["strict"] is True
