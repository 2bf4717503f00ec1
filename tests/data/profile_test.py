"""The dataset realism profile (stpn_tf/data/profile.py, tools/dataset_profile.py) on datasets with known answers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from stpn_tf.data import profile
from stpn_tf.data import schema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RATE = 1.0   # one feature per second: segment t has centre t + 0.5 s


def _video(video_id, rgb, flow, segments=(), labels=None):
  segments = np.asarray(segments, np.float32).reshape(-1, 3)
  seg_labels = segments[:, 2].astype(np.int64)
  video_labels = np.unique(seg_labels) if labels is None else np.asarray(labels, np.int64)
  return schema.Video(video_id=video_id, labels=video_labels, duration=len(rgb) / RATE,
                      rgb=np.asarray(rgb, np.float32), flow=np.asarray(flow, np.float32),
                      segments=segments[:, :2], segment_labels=seg_labels)


def _write(path, train, test=None, num_classes=2):
  dim = train[0].rgb.shape[1]
  splits = {"train": train} if test is None else {"train": train, "test": test}
  schema.write_dataset(str(path), splits, [f"class{c}" for c in range(num_classes)], RATE,
                       feature_dims={"rgb": dim, "flow": dim}, videos_per_shard=8)
  return str(path)


def _micro_dataset(path):
  """Three segments in two videos and no ground-truth instances; values chosen so the marginals are easy by hand."""
  train = [_video("a", rgb=[[0.0, 1.0], [0.0, 3.0]], flow=[[1.0, 1.0], [1.0, 1.0]], labels=[0])]
  test = [_video("b", rgb=[[2.0, 0.04]], flow=[[0.5, 0.5]], labels=[0])]
  return _write(path, train, test)


def _class_dataset(path, num_train=24, num_test=12, length=40, dim=6, signal=True, shuffle_test=False, seed=0):
  """Two classes; inside an instance of class c, channel c of both streams is 1 (else noise in [0, 0.2)).

  With signal=False the features are noise only, independent of the labels (a probe must be at chance). With
  shuffle_test=True the test segments' feature rows are permuted over the whole test split (labels stay): the probes
  learn the signal, but a test segment's features say nothing about its labels or its video's. (Shuffling the
  training labels instead does not give chance here: a probe's weight on the one informative channel then has a
  random sign, and either sign ranks the test segments perfectly, or perfectly wrong.)
  """
  rng = np.random.default_rng(seed)

  def draw(classes):
    out = []
    for k, c in enumerate(classes):   # one instance per class, in its own half of the video
      start = float(rng.integers(2, length // 2 - 10)) + k * (length // 2)
      out.append((start, start + float(rng.integers(4, 9)), c))
    return out

  def videos(prefix, n):
    classes = [[i % 2] if i % 3 else [0, 1] for i in range(n)]
    features, segments = [], []
    for i in range(n):
      segments.append(draw(classes[i]))
      x = {s: rng.random((length, dim)) * 0.2 for s in ("rgb", "flow")}
      if signal:
        centres = np.arange(length) + 0.5
        for start, end, c in segments[i]:
          inside = (centres >= start) & (centres <= end)
          for s in x:
            x[s][inside, c] = 1.0
      features.append(x)
    if shuffle_test and prefix == "test":
      for s in ("rgb", "flow"):
        rows = np.concatenate([x[s] for x in features])[rng.permutation(n * length)]
        for i, x in enumerate(features):
          x[s] = rows[i * length:(i + 1) * length]
    return [_video(f"{prefix}{i:03d}", x["rgb"], x["flow"], seg) for i, (x, seg) in enumerate(zip(features, segments))]

  return _write(path, videos("train", num_train), videos("test", num_test))


def test_segment_labels_use_the_centre_time_with_both_ends_included():
  video = _video("v", np.zeros((5, 1)), np.zeros((5, 1)), [(1.5, 3.0, 1), (3.5, 3.5, 0)])
  # Centres 0.5 .. 4.5 s: [1.5, 3.0] holds 1.5 and 2.5; [3.5, 3.5] holds 3.5.
  labels = profile.segment_labels(video, num_classes=2, feature_rate=RATE)
  np.testing.assert_array_equal(labels, [[0, 0], [0, 1], [0, 1], [1, 0], [0, 0]])
  # At 2 features/s the centres are 0.25, 0.75, .., 2.25 s: [1.5, 3.0] holds 1.75 and 2.25, [3.5, 3.5] nothing.
  labels = profile.segment_labels(video, num_classes=2, feature_rate=2.0)
  np.testing.assert_array_equal(labels, [[0, 0], [0, 0], [0, 0], [0, 1], [0, 1]])


def test_roc_auc_by_hand():
  # Positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of the 4 pairs ordered right.
  assert profile.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
  # A tie counts one half.
  assert profile.roc_auc([0.5, 0.5, 0.9], [1, 0, 1]) == pytest.approx((0.5 + 1.0) / 2)
  assert profile.roc_auc([1.0, 0.0], [0, 1]) == 0.0
  assert np.isnan(profile.roc_auc([0.1, 0.2], [1, 1]))


def test_uniform_sample_keeps_the_rows_with_the_smallest_keys():
  rows = np.arange(1000)
  sample = profile._UniformSample(100, np.random.default_rng(5))
  for start in range(0, 1000, 37):
    sample.add(rows[start:start + 37, None], rows[start:start + 37])
  kept_rows, kept_ids = sample.columns()
  # The same key draws, replayed: the sample is exactly the 100 rows with the smallest keys.
  rng = np.random.default_rng(5)
  keys = np.concatenate([rng.random(min(37, 1000 - start)) for start in range(0, 1000, 37)])
  np.testing.assert_array_equal(np.sort(kept_ids), np.sort(np.argsort(keys)[:100]))
  np.testing.assert_array_equal(kept_rows[:, 0], kept_ids)
  # Below capacity every row is kept, in order.
  small = profile._UniformSample(10, np.random.default_rng(0))
  small.add(rows[:4])
  small.add(rows[4:7])
  np.testing.assert_array_equal(small.columns()[0], rows[:7])


def test_marginals_and_cosine_by_hand(tmp_path):
  result = profile.profile_dataset(_micro_dataset(tmp_path / "micro"))
  rgb, flow, both = (result["streams"][s]["marginals"] for s in ("rgb", "flow", "both"))
  # rgb values 0, 1, 0, 3, 2, 0.04: sum 6.04, sum of squares 14.0016, three below 0.05.
  assert rgb["mean"] == pytest.approx(6.04 / 6)
  assert rgb["std"] == pytest.approx(np.sqrt(14.0016 / 6 - (6.04 / 6) ** 2))
  assert rgb["share_below_0.05"] == pytest.approx(3 / 6)
  assert (rgb["min"], rgb["max"]) == (0.0, pytest.approx(3.0))
  assert rgb["quantiles"]["p50"] == pytest.approx(0.52)   # between the 3rd (0.04) and 4th (1) sorted values
  # flow values 1, 1, 1, 1, 0.5, 0.5.
  assert flow["mean"] == pytest.approx(5 / 6)
  assert flow["std"] == pytest.approx(np.sqrt((4 + 0.5) / 6 - (5 / 6) ** 2))
  assert flow["share_below_0.05"] == 0.0
  # both: the 12 values together.
  assert both["mean"] == pytest.approx(11.04 / 12)
  assert both["share_below_0.05"] == pytest.approx(3 / 12)
  assert both["max"] == pytest.approx(3.0)
  # Cross-video pairs are (row of "a", the row of "b"). rgb: [0, c] against [2, 0.04] -> 0.04 / |[2, 0.04]| for
  # both rows of "a"; flow: parallel rows -> 1.
  assert result["streams"]["rgb"]["cross_video_cosine"] == pytest.approx(0.04 / np.sqrt(4.0016), rel=1e-5)
  assert result["streams"]["flow"]["cross_video_cosine"] == pytest.approx(1.0)
  low, high = sorted([1.04 / np.sqrt(3 * 4.5016), 1.12 / np.sqrt(11 * 4.5016)])
  assert low - 1e-6 <= result["streams"]["both"]["cross_video_cosine"] <= high + 1e-6
  assert result["splits"]["train"]["segments"] == 2 and result["splits"]["test"]["segments"] == 1


def test_without_ground_truth_the_segment_probe_is_skipped_and_marginals_remain(tmp_path):
  result = profile.profile_dataset(_micro_dataset(tmp_path / "micro"))
  assert "segment labels" in result["skipped"]["segment_probe"]
  for s in profile.STREAM_NAMES:
    assert result["streams"][s]["segment_probe"] is None
    assert result["streams"][s]["marginals"]["mean"] > 0
  text = profile.format_profile(result)
  assert "skipped segment_probe" in text and "share < 0.05" in text


def test_instances_that_hold_no_segment_centre_give_none_not_nan(tmp_path):
  # Ground truth exists, but [0.1, 0.2] s holds no segment centre (0.5, 1.5, ...): the AUC is undefined.
  train = [_video("a", [[0.0], [1.0]], [[0.0], [1.0]], [(0.1, 0.2, 0)])]
  test = [_video("b", [[0.0], [1.0]], [[1.0], [0.0]], [(0.1, 0.2, 0)])]
  result = profile.profile_dataset(_write(tmp_path / "short", train, test, num_classes=1))
  segment = result["streams"]["both"]["segment_probe"]
  assert segment["action_auc"] is None and "per_frame_map" not in segment
  json.dumps(result, allow_nan=False)
  assert "segment probe: action AUC" in profile.format_profile(result)


def test_distinctive_channels_give_perfect_probes(tmp_path):
  result = profile.profile_dataset(_class_dataset(tmp_path / "signal"))
  assert not result["skipped"]
  for s in profile.STREAM_NAMES:
    segment = result["streams"][s]["segment_probe"]
    assert segment["action_auc"] > 0.99, (s, segment)
    assert segment["per_frame_map"] > 0.95, (s, segment)
    assert segment["per_frame_classes"] == 2
    assert segment["l2"] in profile.SEGMENT_L2_GRID
    video = result["streams"][s]["video_probe"]
    assert video["classification_map"] > 0.95, (s, video)


def test_features_independent_of_the_labels_give_chance(tmp_path):
  result = profile.profile_dataset(_class_dataset(tmp_path / "noise", num_test=40, signal=False))
  share = result["splits"]["test"]["share_in_instances"]
  for s in profile.STREAM_NAMES:
    segment = result["streams"][s]["segment_probe"]
    assert 0.4 < segment["action_auc"] < 0.6, (s, segment)
    # Chance AP of a class is its share of segments (about share / 2 each here, never above `share`).
    assert segment["per_frame_map"] < 1.5 * share, (s, segment, share)
    # Two thirds of the videos carry each class, so chance classification AP is about 0.67.
    assert result["streams"][s]["video_probe"]["classification_map"] < 0.85


def test_shuffled_test_labels_give_chance(tmp_path):
  result = profile.profile_dataset(_class_dataset(tmp_path / "shuffled", num_test=40, shuffle_test=True))
  share = result["splits"]["test"]["share_in_instances"]
  for s in profile.STREAM_NAMES:
    segment = result["streams"][s]["segment_probe"]
    assert 0.4 < segment["action_auc"] < 0.6, (s, segment)
    assert segment["per_frame_map"] < 1.5 * share, (s, segment, share)
    # Two thirds of the videos carry each class, so chance classification AP is about 0.67.
    assert result["streams"][s]["video_probe"]["classification_map"] < 0.85


def test_same_seed_same_numbers(tmp_path):
  path = _class_dataset(tmp_path / "signal", num_train=6, num_test=4)
  first = profile.profile_dataset(path, seed=3)
  second = profile.profile_dataset(path, seed=3)
  first.pop("seconds")
  second.pop("seconds")
  assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_accelerated_solver_reaches_the_optimum():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(30, 50)).astype(np.float32)          # fewer samples than dimensions
  y = (rng.random((30, 3)) < 0.4).astype(np.float32)
  probe = profile.LinearProbe("sigmoid", 0.1, "accelerated", 3000).fit(x, y)
  z = probe.standardize(x).astype(np.float64)
  g = (profile._sigmoid(z @ probe.w + probe.b) - y) / len(x)
  # The gradient of the objective vanishes at the optimum (weights and bias).
  assert np.abs(z.T @ g + 0.1 * probe.w).max() < 1e-5
  assert np.abs(g.sum(axis=0)).max() < 1e-5


def test_clear_errors(tmp_path):
  with pytest.raises(schema.DataFormatError, match="does not exist"):
    profile.profile_dataset(str(tmp_path / "nowhere"))
  only_train = _write(tmp_path / "train_only", [_video("a", [[0.0]], [[0.0]])])
  with pytest.raises(schema.DataFormatError, match="no test split 'test'.*splits \\['train'\\]"):
    profile.profile_dataset(only_train)


def test_binary_prints_the_table_and_writes_json(tmp_path):
  path = _class_dataset(tmp_path / "signal", num_train=6, num_test=4)
  out = tmp_path / "out" / "profile.json"
  tool = os.path.join(ROOT, "tools", "dataset_profile.py")
  proc = subprocess.run([sys.executable, tool, f"--data_dir={path}", f"--output_json={out}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "segment probe: action AUC" in proc.stdout and "video probe: classif. mAP" in proc.stdout
  report = json.loads(out.read_text())
  assert set(report["streams"]) == {"rgb", "flow", "both"}
  assert report["streams"]["both"]["segment_probe"]["action_auc"] > 0.9
  assert not [name for name in os.listdir(out.parent) if name.startswith(".tmp")]
  proc = subprocess.run([sys.executable, tool, f"--data_dir={tmp_path / 'missing'}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "error:" in proc.stderr and "does not exist" in proc.stderr


def test_action_mass_ratio_by_hand(tmp_path):
  """Mean L1 norm of segments inside instances over that of the others, per stream and both, over both splits."""
  # Centres 0.5, 1.5, 2.5, 3.5 s; the instance [1, 3] holds segments 1 and 2.
  rgb = [[1.0, 1.0], [3.0, 1.0], [2.0, 2.0], [0.5, 0.5]]     # L1 2, 4, 4, 1: inside mean 4, outside 1.5
  flow = [[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [2.0, 1.0]]    # L1 1, 1, 1, 3: inside 1, outside 2
  train = [_video("a", rgb, flow, segments=[(1.0, 3.0, 0)])]
  test = [_video("b", rgb, flow, segments=[(1.0, 3.0, 1)])]
  result = profile.profile_dataset(_write(tmp_path / "mass", train, test))
  assert result["streams"]["rgb"]["action_mass_ratio"] == pytest.approx(4 / 1.5)
  assert result["streams"]["flow"]["action_mass_ratio"] == pytest.approx(1 / 2)
  assert result["streams"]["both"]["action_mass_ratio"] == pytest.approx(5 / 3.5)
  assert "L1 mass, action / background" in profile.format_profile(result)
