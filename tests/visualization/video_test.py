"""stpn_tf/visualization/video.py with every model (untrained, small): the curves, and plots whose ground truth
and detections are the dataset's and the post-processor's."""

import gin
import keras
import numpy as np
import pytest

from stpn_tf import inference
from stpn_tf.data import schema
from stpn_tf.models import aumn
from stpn_tf.models import bgm
from stpn_tf.models import hamnet
from stpn_tf.models import stpn
from stpn_tf.visualization import plots
from stpn_tf.visualization import video
from tests.visualization import is_png

TASKS = {
    "stpn": lambda: stpn.STPN(hidden_units=8),
    "bgm": lambda: bgm.BGM(hidden_units=8),
    "aumn": lambda: aumn.AUMN(embedding_dim=16, num_templates=3, key_reduction=4, value_bottleneck=8),
    "hamnet": lambda: hamnet.HAMNet(classifier_units=(8, 8), attention_units=4, top_k=0.25),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_model_plots_its_curves_ground_truth_and_detections(name, tiny_run, tmp_path, monkeypatch):
  gin.bind_parameter("stpn_detect.tcam_threshold", 0.25)   # untrained STPN: psi is near 0.25
  keras.utils.set_random_seed(0)
  task = TASKS[name]()
  manifest = schema.read_manifest(tiny_run.data_dir)
  models = task.build_models(manifest.num_classes, manifest.feature_dims)
  drawn = []
  original = plots.draw_intervals
  monkeypatch.setattr(plots, "draw_intervals", lambda ax, intervals, *args:
                      drawn.append(list(intervals)) or original(ax, intervals, *args))
  num_detections = 0
  for i, (info, outputs) in enumerate(inference.predict_videos(task, models, tiny_run.data_dir, "test")):
    data = video.video_plot_data(task, info, outputs, manifest.class_names, manifest.feature_rate)
    t, c = info["num_segments"], manifest.num_classes
    assert data.num_segments == t
    assert set(data.attention) == set(task.networks) == set(data.activation)
    for network in task.networks:
      assert data.attention[network].shape == (t,) and data.activation[network].shape == (t, c)
      np.testing.assert_allclose(data.attention[network], outputs[network]["attention"], rtol=1e-6)
    np.testing.assert_allclose(data.probabilities, task.video_probabilities(outputs))
    if i == 0:                                            # one PNG per model is enough
      drawn.clear()
      path = plots.save_figure(plots.plot_video(data), str(tmp_path / plots.png_name(info["video_id"])))
      assert is_png(path)
      # What was drawn is the dataset's ground truth and the task's own detections.
      stored = tiny_run.videos[info["video_id"]]
      got = np.array([(g.start_s, g.end_s, g.class_index) for g in drawn[0]]).reshape(-1, 3)
      np.testing.assert_allclose(got, np.column_stack([stored.segments, stored.segment_labels]), rtol=1e-6)
      expected = task.detect(outputs, manifest.feature_rate)
      got = np.array([(d.start_s, d.end_s, d.class_index, d.score) for d in drawn[1]]).reshape(-1, 4)
      want = np.column_stack([expected.start_s, expected.end_s, expected.class_index, expected.score])
      np.testing.assert_allclose(got, want[:plots.MAX_DETECTIONS], rtol=1e-6)
    num_detections += len(data.detections)
  assert num_detections > 0


def test_activation_of_stpn_is_the_weighted_tcam():
  out = {"rgb": {"attention": np.array([0.5, 1.0]), "tcam": np.array([[0.0, 2.0], [-1.0, 0.0]])}}
  attention, activation, _ = video.model_signals(stpn.STPN(), out, 2)
  np.testing.assert_allclose(activation["rgb"], [[0.25, 0.5 / (1 + np.exp(-2.0))], [1 / (1 + np.e), 0.5]])
  np.testing.assert_array_equal(attention["rgb"], [0.5, 1.0])
