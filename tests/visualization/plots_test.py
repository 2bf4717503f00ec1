"""stpn_tf/visualization/plots.py on hand-made data: PNG files, image arrays, what is drawn, no matplotlib."""

import subprocess
import sys

import numpy as np
import pytest

from stpn_tf import visualization
from stpn_tf.visualization import plots
from stpn_tf.visualization import video
from tests.visualization import is_png
from tests.visualization import no_temporary_files


def _data(num_detections=3):
  rng = np.random.default_rng(0)
  t, c = 30, 4
  detections = tuple(video.Interval(float(s), float(s) + 2.0, int(k), float(p)) for s, k, p in
                     zip(np.linspace(1, 15, num_detections), rng.integers(c, size=num_detections),
                         np.linspace(0.9, 0.1, num_detections)))
  return video.VideoPlotData(
      video_id="vid/1", feature_rate=1.5, duration=20.0, class_names=("a", "b", "c", "d"),
      ground_truth=(video.Interval(2.0, 5.0, 1), video.Interval(10.0, 12.5, 3)), detections=detections,
      attention={"rgb": rng.random(t), "flow": rng.random(t)},
      activation={"rgb": rng.random((t, c)), "flow": rng.random((t, c))}, activation_label="psi",
      probabilities=np.array([0.05, 0.8, 0.3, 0.6]), labels=np.array([0, 1, 0, 1]))


def test_plot_video_writes_a_png_atomically(tmp_path):
  path = plots.save_figure(plots.plot_video(_data()), str(tmp_path / "out" / plots.png_name("vid/1")))
  assert path.endswith("vid_1.png") and is_png(path)
  assert no_temporary_files(tmp_path)


def test_draw_intervals_gets_the_ground_truth_and_the_top_detections(monkeypatch):
  calls = []
  original = plots.draw_intervals
  monkeypatch.setattr(plots, "draw_intervals", lambda ax, intervals, rows, names, kind:
                      calls.append((kind, list(intervals), list(rows))) or original(ax, intervals, rows, names, kind))
  data = _data(num_detections=plots.MAX_DETECTIONS + 5)
  plots.plot_video(data)
  assert [k for k, _, _ in calls] == ["ground truth", "detections"]
  assert calls[0][1] == list(data.ground_truth) and calls[0][2] == [1, 3]
  assert calls[1][1] == list(data.detections[:plots.MAX_DETECTIONS])
  assert calls[1][2] == sorted({d.class_index for d in data.detections[:plots.MAX_DETECTIONS]})


def test_predicted_classes_and_title():
  data = _data(num_detections=0)
  # p >= 0.1: b, d, c; ground truth: b, d; by descending probability.
  assert data.predicted_classes() == [1, 3, 2]
  assert data.predicted_classes(max_classes=1) == [1]
  fig = plots.plot_video(data)
  title = fig.get_suptitle()
  assert "vid/1" in title and "b 0.80" in title and "labels: b, d" in title


def test_figure_to_array_and_precision_recall():
  image = plots.figure_to_array(plots.plot_video(_data(), figsize=(5.0, 4.0), dpi=50))
  assert image.dtype == np.uint8 and image.shape == (200, 250, 3)
  assert image.min() < 100 < image.max()          # something is drawn on the white background
  fig = plots.plot_precision_recall({"a": (np.array([1.0, 0.5]), np.array([0.5, 0.5]))}, {"a": 0.5}, 0.5)
  assert "mAP 50.00" in fig.axes[0].get_title()


def test_without_matplotlib_the_hint_is_given(monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  assert not visualization.matplotlib_available()
  with pytest.raises(visualization.MissingMatplotlibError, match=r'pip install -e "\.\[viz\]"'):
    plots.plot_video(_data())


def test_modules_import_without_matplotlib():
  code = ("import sys\nsys.modules['matplotlib'] = None\n"
          "import stpn_tf.visualize, stpn_tf.evaluate\n"
          "from stpn_tf.visualization import plots, report, summaries, video\n"
          "print('TENSORFLOW_IMPORTED=%s' % ('tensorflow' in sys.modules))\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  assert "TENSORFLOW_IMPORTED=False" in proc.stdout
