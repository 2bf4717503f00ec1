"""The in-graph detections equal the NumPy post-processors (stpn_tf.postprocess: stpn_inference, bgm_inference,
aumn_inference, hamnet_inference) and the TF blocks equal their NumPy counterparts."""

import numpy as np
import pytest
import tensorflow as tf

from stpn_tf.postprocess import aumn_inference
from stpn_tf.postprocess import bgm_inference
from stpn_tf.postprocess import hamnet_inference
from stpn_tf.postprocess import nms
from stpn_tf.postprocess import proposals
from stpn_tf.postprocess import scoring
from stpn_tf.postprocess import stpn_inference
from stpn_tf.postprocess import types as pp_types
from stpn_tf.serving import tf_postprocess

RATE = 25.0 / 16.0


def _stream(rng, length, num_classes, scale=3.0):
  return pp_types.StreamOutput(rng.random(length).astype(np.float32),
                               (scale * rng.standard_normal((length, num_classes))).astype(np.float32),
                               rng.random(num_classes).astype(np.float32))


def _graph_detect(streams, detector=tf_postprocess.stpn_detect, **settings):
  """A two-stream TF detector (STPN's by default) traced as in the export: unknown T and C, one call per video."""
  names = [n for n in ("rgb", "flow") if streams.get(n) is not None]
  specs = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, None], tf.float32),
           tf.TensorSpec([None], tf.float32)]

  @tf.function(input_signature=specs * len(names), autograph=False)
  def fn(*args):
    given = {n: tf_postprocess.StreamTensors(*args[3 * i:3 * i + 3]) for i, n in enumerate(names)}
    return detector(given.get("rgb"), given.get("flow"), RATE, **settings)

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
    {"nms": "soft_gaussian", "soft_nms_sigma": 0.3},
    {"nms": "soft_linear", "nms_threshold": 0.3, "soft_nms_score_floor": 0.05, "soft_nms_top_n": 4},
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


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_class_wise_soft_nms_matches_numpy_with_ties(method):
  rng = np.random.default_rng(12)
  for n, floor, top_n in [(1, None, None), (40, None, None), (200, 0.5, None), (150, None, 3), (60, -1.0, 2)]:
    starts = rng.integers(0, 30, n).astype(np.float64)
    ends = starts + rng.integers(0, 8, n)
    scores = rng.integers(-2, 5, n).astype(np.float64)           # exact ties, negative scores
    classes = rng.integers(3, 6, n)
    kwargs = dict(method=method, sigma=0.3, iou_threshold=0.3, score_floor=floor, top_n=top_n)
    expected_keep, expected_scores = nms.class_wise_soft_nms(starts, ends, scores, classes, **kwargs)
    keep, new_scores = tf_postprocess.class_wise_soft_nms(tf.constant(starts), tf.constant(ends),
                                                          tf.constant(scores), tf.constant(classes, tf.int64),
                                                          **kwargs)
    np.testing.assert_array_equal(keep.numpy(), expected_keep)
    np.testing.assert_allclose(new_scores.numpy(), expected_scores, rtol=0, atol=1e-12)
  empty = tf.zeros([0], tf.float64)
  keep, new_scores = tf_postprocess.class_wise_soft_nms(empty, empty, empty, tf.zeros([0], tf.int64), method=method)
  assert keep.shape == (0,) and new_scores.shape == (0,)


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


# ---------------------------------------------------------------------------------------------------------------------
# Background modeling, AUMN, HAM-Net.
# ---------------------------------------------------------------------------------------------------------------------

# (T, C) of the random videos: single segment, single class, typical, long with many classes.
SHAPES = [(1, 3), (7, 1), (40, 5), (150, 20), (3, 4)]


def _assert_same_to(expected, got, atol=1e-9):
  assert len(got["score"]) == len(expected), (len(got["score"]), len(expected))
  np.testing.assert_array_equal(got["class_index"], expected.class_index)
  np.testing.assert_allclose(got["start_s"], expected.start_s, rtol=0, atol=atol)
  np.testing.assert_allclose(got["end_s"], expected.end_s, rtol=0, atol=atol)
  np.testing.assert_allclose(got["score"], expected.score, rtol=0, atol=atol)


BGM_SETTINGS = [
    {},
    {"attention_thresholds": (0.3, 0.1, 0.3), "nms_threshold": 0.3, "theta": 0.2, "probability_fusion": "max"},
    {"class_threshold": 2.0, "fallback_to_top_class": True, "nms_threshold": 1.0},
    {"class_threshold": 2.0, "fallback_to_top_class": False},
    {"probability_fusion": "rgb", "class_threshold": 0.5, "nms_threshold": 0.0, "attention_thresholds": 0.45},
    {"nms": "soft_gaussian", "soft_nms_sigma": 0.3},
    {"nms": "soft_linear", "nms_threshold": 0.3, "soft_nms_score_floor": 0.05, "soft_nms_top_n": 4},
]


@pytest.mark.parametrize("settings", BGM_SETTINGS, ids=[str(i) for i in range(len(BGM_SETTINGS))])
def test_bgm_random_videos_match_numpy(settings):
  run = _graph_detect({"rgb": True, "flow": True}, tf_postprocess.bgm_detect, **settings)
  rng = np.random.default_rng(4)
  total = 0
  for length, num_classes in SHAPES:
    rgb, flow = _stream(rng, length, num_classes), _stream(rng, length, num_classes)
    expected = bgm_inference.bgm_detect(rgb, flow, RATE, **settings)
    _assert_same_to(expected, run(rgb, flow))
    total += len(expected)
  assert total > 0 or settings.get("fallback_to_top_class") is False


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_bgm_and_aumn_single_stream_match_numpy(stream):
  rng = np.random.default_rng(5)
  for numpy_detect, tf_detect in ((bgm_inference.bgm_detect, tf_postprocess.bgm_detect),
                                  (aumn_inference.aumn_detect, tf_postprocess.aumn_detect)):
    run = _graph_detect({stream: True}, tf_detect, nms_threshold=0.4)
    for length in (1, 30, 90):
      video = _stream(rng, length, 6)
      expected = numpy_detect(video if stream == "rgb" else None, video if stream == "flow" else None, RATE,
                              nms_threshold=0.4)
      _assert_same_to(expected, run(**{stream: video}))
      assert len(expected) > 0 or length == 1


AUMN_SETTINGS = [
    {},
    {"attention_threshold": 0.5, "theta": 0.7, "nms_threshold": 0.5},
    {"probability_fusion": "flow", "class_threshold": 0.5, "nms_threshold": 0.0},
    {"class_threshold": 2.0, "fallback_to_top_class": True, "nms_threshold": 1.0},
    {"nms": "soft_gaussian", "soft_nms_sigma": 0.3},
    {"nms": "soft_linear", "nms_threshold": 0.3, "soft_nms_score_floor": 0.05, "soft_nms_top_n": 4},
]


@pytest.mark.parametrize("settings", AUMN_SETTINGS, ids=[str(i) for i in range(len(AUMN_SETTINGS))])
def test_aumn_random_videos_match_numpy(settings):
  run = _graph_detect({"rgb": True, "flow": True}, tf_postprocess.aumn_detect, **settings)
  rng = np.random.default_rng(6)
  total = 0
  for length, num_classes in SHAPES:
    rgb, flow = _stream(rng, length, num_classes), _stream(rng, length, num_classes)
    expected = aumn_inference.aumn_detect(rgb, flow, RATE, **settings)
    _assert_same_to(expected, run(rgb, flow))
    total += len(expected)
  assert total > 0


def test_aumn_mean_attention_threshold_is_exact():
  # Attention values equal to their mean (a constant video, and a video whose mean is one of its values): a > eta
  # must be decided exactly as NumPy decides it.
  run = _graph_detect({"rgb": True, "flow": True}, tf_postprocess.aumn_detect)
  rng = np.random.default_rng(7)
  for attention in (np.full(9, 0.3), np.array([0.1, 0.3, 0.5, 0.3, 0.2, 0.4]), np.float32(rng.random(470))):
    attention = np.asarray(attention, np.float32)
    length = attention.shape[0]
    rgb = pp_types.StreamOutput(attention, rng.standard_normal((length, 3)).astype(np.float32), np.full(3, 0.5))
    flow = pp_types.StreamOutput(attention[::-1], rng.standard_normal((length, 3)).astype(np.float32),
                                 np.full(3, 0.5))
    expected = aumn_inference.aumn_detect(rgb, flow, RATE)
    _assert_same_to(expected, run(rgb, flow))
  assert float(tf_postprocess.mean_attention(tf.constant(attention))) == float(np.float64(attention).mean())


def _hamnet_video(rng, length, num_classes, scale=3.0):
  return (rng.random(length).astype(np.float32),
          (scale * rng.standard_normal((length, num_classes + 1))).astype(np.float32),
          rng.random(num_classes).astype(np.float32))


def _graph_hamnet(**settings):
  specs = [tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, None], tf.float32),
           tf.TensorSpec([None], tf.float32)]

  @tf.function(input_signature=specs, autograph=False)
  def fn(attention, cas, video_scores):
    return tf_postprocess.hamnet_detect(attention, cas, video_scores, RATE, **settings)

  return lambda *args: {k: v.numpy() for k, v in fn(*args).items()}


HAMNET_SETTINGS = [
    {},
    {"smooth_window": 3, "zeta": 0.5, "outer_ratio": 0.5},
    {"smooth_window": 5, "attention_thresholds": (0.5, 0.2), "nms_threshold": 0.3},
    {"outer_ratio": 0.0, "zeta": 0.0, "nms_threshold": 0.0, "attention_thresholds": 0.4},
    {"class_threshold": 2.0, "fallback_to_top_class": True, "nms_threshold": 1.0},
    {"nms": "soft_gaussian", "soft_nms_sigma": 0.3},
    {"nms": "soft_linear", "nms_threshold": 0.3, "soft_nms_score_floor": 0.05, "soft_nms_top_n": 4},
    {"class_threshold": 0.2, "attention_thresholds": tuple(np.linspace(0.1, 0.9, 10)), "zeta": 0.2,
     "outer_window_rounding": "floor_end", "keep_repeated_proposals": True, "nms": "soft_gaussian",
     "soft_nms_sigma": 0.3},                                           # gin_configs/hamnet_authors.gin
    {"outer_window_rounding": "floor_end", "smooth_window": 3, "keep_repeated_proposals": True},
]


@pytest.mark.parametrize("settings", HAMNET_SETTINGS, ids=[str(i) for i in range(len(HAMNET_SETTINGS))])
def test_hamnet_random_videos_match_numpy(settings):
  run = _graph_hamnet(**settings)
  rng = np.random.default_rng(8)
  total = 0
  for length, num_classes in SHAPES:
    video = _hamnet_video(rng, length, num_classes)
    expected = hamnet_inference.hamnet_detect(*video, RATE, **settings)
    _assert_same_to(expected, run(*video))
    total += len(expected)
  assert total > 0


def test_other_detectors_give_zero_detections_for_empty_inputs():
  empty = pp_types.StreamOutput(np.zeros(0), np.zeros((0, 4)), np.full(4, 0.9))
  no_classes = pp_types.StreamOutput(np.ones(5), np.zeros((5, 0)), np.zeros(0))
  for detector in (tf_postprocess.bgm_detect, tf_postprocess.aumn_detect):
    run = _graph_detect({"rgb": True, "flow": True}, detector, fallback_to_top_class=True)
    assert all(v.shape == (0,) for v in run(empty, empty).values())
    assert len(run(no_classes, no_classes)["score"]) == 0
  run = _graph_hamnet(fallback_to_top_class=True, smooth_window=3)
  assert len(run(np.zeros(0, np.float32), np.zeros((0, 5), np.float32), np.full(4, 0.9, np.float32))["score"]) == 0
  assert len(run(np.ones(5, np.float32), np.zeros((5, 1), np.float32), np.zeros(0, np.float32))["score"]) == 0


def test_scoring_blocks_match_numpy():
  rng = np.random.default_rng(9)
  signal = rng.standard_normal((30, 4))
  starts = rng.integers(0, 30, 200)
  ends = np.minimum(starts + rng.integers(0, 10, 200), 29)
  classes = rng.integers(0, 4, 200)
  video_scores = rng.random(4)
  args = [tf.constant(a, tf.int64) for a in (starts, ends, classes)]
  for zeta, ratio in ((0.2, 0.25), (0.0, 0.0), (1.0, 1.3)):
    np.testing.assert_allclose(
        tf_postprocess.outer_inner_contrast(*args, tf.constant(signal), tf.constant(video_scores), zeta, ratio),
        scoring.outer_inner_contrast(starts, ends, classes, signal, video_scores, zeta, ratio), rtol=0, atol=1e-12)
  np.testing.assert_allclose(tf_postprocess.outer_inner_contrast(*args, tf.constant(signal)),
                             scoring.outer_inner_contrast(starts, ends, classes, signal), rtol=0, atol=1e-12)
  for window in (1, 3, 7, 61):
    for x in (signal, signal[:, 0], signal[:1]):
      np.testing.assert_allclose(tf_postprocess.average_pool(tf.constant(x), window),
                                 hamnet_inference.average_pool(x, window), rtol=0, atol=1e-12)
  np.testing.assert_allclose(tf_postprocess.softmax(tf.constant(signal)), scoring._softmax(signal),  # pylint: disable=protected-access
                             rtol=0, atol=1e-15)
  got = tf_postprocess.threshold_proposals(tf.constant(signal), tf.constant([0.1, 0.6]))
  for e, g in zip(proposals.threshold_proposals(signal, (0.1, 0.6)), got):
    np.testing.assert_array_equal(g.numpy(), e)


@pytest.mark.parametrize("settings_fn, settings, match", [
    (tf_postprocess.bgm_settings, {"theta": 1.5}, "theta"),
    (tf_postprocess.bgm_settings, {"attention_thresholds": ()}, "attention_thresholds"),
    (tf_postprocess.bgm_settings, {"probability_fusion": "median"}, "probability_fusion"),
    (tf_postprocess.bgm_settings, {"nms_threshold": 2.0}, "nms_threshold"),
    (tf_postprocess.aumn_settings, {"theta": -0.1}, "theta"),
    (tf_postprocess.aumn_settings, {"attention_threshold": float("nan")}, "attention_threshold"),
    (tf_postprocess.aumn_settings, {"probability_fusion": "flow", "streams": ("rgb",)}, "flow stream"),
    (tf_postprocess.hamnet_settings, {"smooth_window": 2}, "smoothing window"),
    (tf_postprocess.hamnet_settings, {"nms": "soft"}, "nms must be one of"),
    (tf_postprocess.bgm_settings, {"nms": "soft_gaussian", "soft_nms_sigma": -1.0}, "soft_nms_sigma"),
    (tf_postprocess.aumn_settings, {"soft_nms_top_n": 1.5}, "soft_nms_top_n"),
    (tf_postprocess.hamnet_settings, {"smooth_window": True}, "smoothing window"),
    (tf_postprocess.hamnet_settings, {"outer_ratio": -1.0}, "outer_ratio"),
    (tf_postprocess.hamnet_settings, {"nms_threshold": -0.5}, "nms_threshold"),
    (tf_postprocess.hamnet_settings, {"attention_thresholds": [0.1, float("inf")]}, "attention_thresholds"),
])
def test_other_invalid_settings_are_refused(settings_fn, settings, match):
  with pytest.raises(ValueError, match=match):
    settings_fn(RATE, **settings)
