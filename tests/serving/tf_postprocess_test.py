"""The in-graph STPN detection equals the NumPy post-processor (stpn_tf.postprocess.stpn_inference.stpn_detect)."""

import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.postprocess import nms
from stpn_tf.postprocess import proposals
from stpn_tf.postprocess import stpn_inference
from stpn_tf.postprocess import types as pp_types
from stpn_tf.serving import tf_postprocess

RATE = 25.0 / 16.0


def _stream(rng, length, num_classes, scale=3.0):
  return pp_types.StreamOutput(rng.random(length).astype(np.float32),
                               (scale * rng.standard_normal((length, num_classes))).astype(np.float32),
                               rng.random(num_classes).astype(np.float32))


def _graph_detect(streams, **settings):
  """The TF detector traced as in the export: unknown T and C, one call per video."""
  names = [n for n in ("rgb", "flow") if streams.get(n) is not None]
  specs = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, None], tf.float32),
           tf.TensorSpec([None], tf.float32)]

  @tf.function(input_signature=specs * len(names), autograph=False)
  def fn(*args):
    given = {n: tf_postprocess.StreamTensors(*args[3 * i:3 * i + 3]) for i, n in enumerate(names)}
    return tf_postprocess.stpn_detect(given.get("rgb"), given.get("flow"), RATE, **settings)

  def run(rgb=None, flow=None):
    given = {"rgb": rgb, "flow": flow}
    args = [a for n in names for a in (given[n].attention.astype(np.float32), given[n].tcam.astype(np.float32),
                                       given[n].probabilities.astype(np.float32))]
    return {k: v.numpy() for k, v in fn(*args).items()}
  return run


def _assert_same(expected, got):
  assert len(got["score"]) == len(expected), (len(got["score"]), len(expected))
  np.testing.assert_array_equal(got["class_index"], expected.class_index)
  np.testing.assert_allclose(got["start_s"], expected.start_s, rtol=0, atol=1e-9)
  np.testing.assert_allclose(got["end_s"], expected.end_s, rtol=0, atol=1e-9)
  np.testing.assert_allclose(got["score"], expected.score, rtol=0, atol=1e-9)


SETTINGS = [
    {},
    {"tcam_threshold": (0.2, 0.35, 0.5, 0.35), "nms_threshold": 0.3},
    {"interpolation_factor": 3, "alpha": 0.3},
    {"interpolation_factor": 2, "tcam_threshold": (0.1, 0.4), "probability_fusion": "max"},
    {"probability_fusion": "flow", "class_threshold": 0.5, "nms_threshold": 0.0},
    {"class_threshold": 2.0, "fallback_to_top_class": True, "nms_threshold": 1.0},
    {"class_threshold": 2.0},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=[str(i) for i in range(len(SETTINGS))])
def test_random_videos_match_numpy(settings):
  run = _graph_detect({"rgb": True, "flow": True}, **settings)
  rng = np.random.default_rng(0)
  total = 0
  for length, num_classes in [(1, 3), (7, 1), (40, 5), (120, 20), (3, 4)]:
    rgb, flow = _stream(rng, length, num_classes), _stream(rng, length, num_classes)
    expected = stpn_inference.stpn_detect(rgb, flow, RATE, **settings)
    _assert_same(expected, run(rgb, flow))
    total += len(expected)
  if settings.get("class_threshold", 0.0) <= 1.0 or settings.get("fallback_to_top_class"):
    assert total > 0


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_single_stream_matches_numpy(stream):
  run = _graph_detect({stream: True}, tcam_threshold=(0.3, 0.5), interpolation_factor=2)
  rng = np.random.default_rng(1)
  for length in (1, 30, 90):
    video = _stream(rng, length, 6)
    expected = stpn_inference.stpn_detect(video if stream == "rgb" else None, video if stream == "flow" else None,
                                          RATE, tcam_threshold=(0.3, 0.5), interpolation_factor=2)
    _assert_same(expected, run(**{stream: video}))
    assert len(expected) > 0 or length == 1


def test_exact_ties_and_iou_at_threshold_match_numpy():
  # Constant signals: every proposal of a class has the same score, and nested runs at several thresholds give
  # intervals whose IoU is exactly the NMS threshold (e.g. [0, 4) vs [0, 2) -> IoU 0.5, which does not suppress).
  length = 12
  attention = np.ones(length, np.float32)
  tcam = np.zeros((length, 2), np.float32)
  tcam[0:2, 0] = 4.0
  tcam[2:4, 0] = 2.0
  tcam[6:9, 0] = 4.0
  tcam[9:12, 0] = 4.0
  tcam[:, 1] = np.tile([3.0, 3.0, -3.0], 4)
  probabilities = np.array([0.9, 0.9], np.float32)
  rgb = pp_types.StreamOutput(attention, tcam, probabilities)
  flow = pp_types.StreamOutput(attention, tcam, probabilities)
  for settings in ({"tcam_threshold": (0.5, 0.9)}, {"tcam_threshold": (0.5, 0.9), "nms_threshold": 0.0},
                   {"tcam_threshold": 0.5, "nms_threshold": 0.5, "interpolation_factor": 2}):
    expected = stpn_inference.stpn_detect(rgb, flow, RATE, **settings)
    assert len(np.unique(expected.score)) < len(expected)          # there are ties to order
    _assert_same(expected, _graph_detect({"rgb": True, "flow": True}, **settings)(rgb, flow))


def test_empty_inputs_give_zero_detections():
  run = _graph_detect({"rgb": True, "flow": True}, fallback_to_top_class=True)
  empty = pp_types.StreamOutput(np.zeros(0), np.zeros((0, 4)), np.full(4, 0.9))
  got = run(empty, empty)
  assert all(v.shape == (0,) for v in got.values())
  no_classes = pp_types.StreamOutput(np.ones(5), np.zeros((5, 0)), np.zeros(0))
  assert len(run(no_classes, no_classes)["score"]) == 0


def test_class_wise_nms_matches_numpy_with_integer_intervals_and_ties():
  rng = np.random.default_rng(2)
  for n, threshold in [(1, 0.5), (40, 0.5), (200, 0.3), (200, 0.0), (60, 1.0)]:
    starts = rng.integers(0, 30, n).astype(np.float64)
    ends = starts + rng.integers(0, 8, n)
    scores = rng.integers(0, 5, n).astype(np.float64)            # many exact ties
    classes = rng.integers(3, 6, n)
    expected = nms.class_wise_nms(starts, ends, scores, classes, threshold)
    got = tf_postprocess.class_wise_nms(tf.constant(starts), tf.constant(ends), tf.constant(scores),
                                        tf.constant(classes, tf.int64), threshold).numpy()
    np.testing.assert_array_equal(got, expected)


def test_threshold_proposals_and_interpolation_match_numpy():
  rng = np.random.default_rng(3)
  signal = rng.random((50, 4))
  thresholds = (0.2, 0.5, 0.7)
  expected = proposals.threshold_proposals(signal, thresholds)
  got = tf_postprocess.threshold_proposals(tf.constant(signal), thresholds)
  for e, g in zip(expected, got):
    np.testing.assert_array_equal(g.numpy(), e)
  for factor in (1, 2, 5):
    for x in (signal, signal[:1], signal[:, 0]):
      np.testing.assert_array_equal(tf_postprocess.interpolate(tf.constant(x), factor).numpy(),
                                    proposals.interpolate(x, factor))


@pytest.mark.parametrize("settings, match", [
    ({"alpha": 1.5}, "alpha"),
    ({"nms_threshold": -0.1}, "nms_threshold"),
    ({"interpolation_factor": 0}, "interpolation_factor"),
    ({"interpolation_factor": 1.5}, "interpolation_factor"),
    ({"probability_fusion": "median"}, "probability_fusion"),
    ({"tcam_threshold": ()}, "tcam_threshold"),
    ({"tcam_threshold": float("nan")}, "tcam_threshold"),
])
def test_invalid_settings_are_refused(settings, match):
  with pytest.raises(ValueError, match=match):
    tf_postprocess.stpn_settings(RATE, **settings)


def test_fusion_naming_a_missing_stream_is_refused():
  with pytest.raises(ValueError, match="flow stream is not given"):
    tf_postprocess.stpn_settings(RATE, probability_fusion="flow", streams=("rgb",))
