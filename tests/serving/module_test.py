"""The exported SavedModel: outputs equal the training-time model, detect equals the NumPy post-processor,
metadata, bad input, tasks without in-graph detection, and the latency helper. One tiny trained run per module."""

import json
import os
import types

import gin
import numpy as np
import pytest
import tensorflow as tf

from stpn_tf import runs
from stpn_tf import config
from stpn_tf import inference
from stpn_tf.data import schema
from stpn_tf.postprocess import stpn_inference
from stpn_tf.postprocess import types as pp_types
from stpn_tf.serving import module
from tests.serving import assert_detections_equal
from tests.serving import serve_in_plain_process
from tests.serving import train_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("serving")
  data_dir, model_dir = train_tiny_run(str(root))
  export_dir = module.export_saved_model(model_dir, str(root / "export"), data_dir)
  task, models = runs.restore_models(model_dir, data_dir)
  gin.clear_config()
  return types.SimpleNamespace(
      root=root, data_dir=data_dir, model_dir=model_dir, export_dir=export_dir, task=task, models=models,
      manifest=schema.read_manifest(data_dir), loaded=tf.saved_model.load(export_dir),
      videos=list(schema.read_videos(data_dir, "test")))


def _parse_run_gin(model_dir, params=()):
  gin.clear_config()
  config.parse_gin([os.path.join(model_dir, "config.gin")], list(params))


def _keras_outputs(run, video):
  """The training-time models on one video: {stream: {output: array without the batch axis}}."""
  out = {}
  for stream, model in run.models.items():
    x = getattr(video, stream)[None]
    res = model({"features": x, "mask": np.ones(x.shape[:2], np.float32)}, training=False)
    out[stream] = {k: np.asarray(v)[0] for k, v in res.items()}
  return out


def test_detect_equals_numpy_postprocessor_on_every_test_video(run):
  _parse_run_gin(run.model_dir)        # the NumPy side reads the run's stpn_detect.* bindings, as in evaluation
  features = {v.video_id: v for v in run.videos}
  detect = run.loaded.signatures["detect"]
  total = 0
  for info, outputs in inference.predict_videos(run.task, run.models, run.data_dir, "test"):
    expected = run.task.detect(outputs, run.manifest.feature_rate)
    video = features[info["video_id"]]
    got = {k: v.numpy() for k, v in detect(rgb=video.rgb, flow=video.flow).items()}
    assert_detections_equal(expected, got, info["video_id"])
    names = [run.manifest.class_names[c] for c in expected.class_index]
    assert [n.decode() for n in got["class_name"]] == names
    total += len(expected)
  assert total >= 10 and len(features) == 6


def test_detect_with_multiple_thresholds_and_interpolation_equals_numpy(run):
  settings = dict(tcam_threshold=(0.2, 0.3, 0.45), interpolation_factor=2, nms_threshold=0.3, alpha=0.3,
                  probability_fusion="max")
  serving = module.build_serving_module(run.task, run.models, run.manifest, detect_settings=settings)
  total = 0
  for video in run.videos:
    outputs = _keras_outputs(run, video)
    streams = {s: pp_types.StreamOutput(o["attention"], o["tcam"], o["probabilities"]) for s, o in outputs.items()}
    expected = stpn_inference.stpn_detect(streams["rgb"], streams["flow"], run.manifest.feature_rate, **settings)
    got = {k: v.numpy() for k, v in serving.detect(video.rgb, video.flow).items()}
    assert_detections_equal(expected, got, video.video_id)
    total += len(expected)
  assert total > 0


def test_plain_tensorflow_process_gets_training_time_outputs(run, tmp_path):
  video, other = run.videos[0], run.videos[1]
  out = serve_in_plain_process(run.export_dir, video, other, tmp_path)
  assert not out["imported_stpn_tf"]

  alpha = 0.5
  for i, v in enumerate((video, other)):
    ref = _keras_outputs(run, v)
    t = v.num_segments
    prefixes = ["outputs/"] if i == 0 else []
    for prefix, index in [(p, None) for p in prefixes] + [("outputs_batched/", i)]:
      def got(key):
        value = out[prefix + key]
        return value if index is None else value[index]
      for stream in ("rgb", "flow"):
        for key in ("attention", "tcam"):
          np.testing.assert_allclose(got(f"{stream}_{key}")[:t], ref[stream][key], atol=1e-5)
        for key in ("probabilities", "logits"):
          np.testing.assert_allclose(got(f"{stream}_{key}"), ref[stream][key], atol=1e-5)
      np.testing.assert_allclose(got("probabilities"), run.task.video_probabilities(ref), atol=1e-5)
      psi = {s: ref[s]["attention"][:, None] / (1.0 + np.exp(-ref[s]["tcam"])) for s in ("rgb", "flow")}
      np.testing.assert_allclose(got("weighted_tcam")[:t], alpha * psi["rgb"] + (1 - alpha) * psi["flow"], atol=1e-5)
      np.testing.assert_allclose(got("rgb_weighted_tcam")[:t], psi["rgb"], atol=1e-5)

  in_process = run.loaded.signatures["detect"](rgb=video.rgb, flow=video.flow)
  for key in ("start_s", "end_s", "score", "class_index"):
    np.testing.assert_allclose(out[f"detect/{key}"], in_process[key].numpy(), atol=1e-6)
  assert out["metadata/task"] == "stpn"
  assert list(out["metadata/class_names"]) == run.manifest.class_names
  assert out["metadata/feature_rate"] == pytest.approx(run.manifest.feature_rate)
  assert out["metadata/checkpoint_step"] == 2
  with open(os.path.join(run.model_dir, "config.gin")) as f:
    assert str(out["metadata/gin_config"]) == f.read()


def test_metadata_records_origin_and_detect_settings(run):
  meta = {k: v.numpy() for k, v in run.loaded.signatures["metadata"]().items()}
  full = json.loads(meta["json"])
  assert full["task"] == "stpn" and full["checkpoint_step"] == 2
  assert full["checkpoint_path"] == os.path.abspath(tf.train.latest_checkpoint(run.model_dir))
  with open(os.path.join(run.model_dir, "run_info.json")) as f:
    assert full["run_info"] == json.load(f) == json.loads(meta["run_info"])
  assert full["detect_settings"] == json.loads(meta["detect_settings"])
  assert full["detect_settings"]["tcam_threshold"] == [0.25] and full["detect_settings"]["class_threshold"] == 0.1
  assert full["feature_dims"] == {"rgb": 16, "flow": 16}
  assert [s.decode() for s in meta["signatures"]] == ["outputs", "outputs_batched", "detect", "metadata"]
  assert set(run.loaded.signatures) == {"outputs", "outputs_batched", "detect", "metadata", "serving_default"}
  with open(os.path.join(run.export_dir, "assets.extra", module.METADATA_FILE)) as f:
    assert json.load(f) == full


def test_detect_settings_come_from_the_runs_gin_config(run):
  _parse_run_gin(run.model_dir, ["stpn_detect.tcam_threshold = (0.2, 0.4)", "stpn_detect.nms_threshold = 0.3"])
  serving = module.build_serving_module(run.task, run.models, run.manifest)
  settings = serving.metadata_dict["detect_settings"]
  assert settings["tcam_threshold"] == [0.2, 0.4] and settings["nms_threshold"] == 0.3
  assert settings["alpha"] == 0.5


BAD_VIDEO_INPUTS = [
    ("wrong width", lambda v: dict(rgb=v.rgb[:, :8], flow=v.flow), "wrong feature width: the model expects 16"),
    ("rank 1", lambda v: dict(rgb=v.rgb[0], flow=v.flow[0]), r"input rgb must be \[T, 16\]"),
    ("rank 3", lambda v: dict(rgb=v.rgb[None], flow=v.flow[None]), r"input rgb must be \[T, 16\]"),
    ("different T", lambda v: dict(rgb=v.rgb, flow=v.flow[:2]), "same number of segments"),
    ("NaN", lambda v: dict(rgb=v.rgb * np.nan, flow=v.flow), "input rgb contains NaN or inf"),
]


@pytest.mark.parametrize("signature", ["outputs", "detect"])
@pytest.mark.parametrize("case, make, message", BAD_VIDEO_INPUTS, ids=[c[0] for c in BAD_VIDEO_INPUTS])
def test_bad_single_video_input_is_a_clear_error(run, signature, case, make, message):
  del case
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    run.loaded.signatures[signature](**make(run.videos[0]))
  run.loaded.signatures[signature](rgb=run.videos[0].rgb, flow=run.videos[0].flow)     # still serving


def test_empty_video_outputs_error_and_detect_returns_nothing(run):
  empty = np.zeros((0, 16), np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match="T = 0 segments"):
    run.loaded.signatures["outputs"](rgb=empty, flow=empty)
  got = run.loaded.signatures["detect"](rgb=empty, flow=empty)
  assert set(got) == {"start_s", "end_s", "class_index", "class_name", "score"}
  assert all(v.shape == (0,) for v in got.values())


BAD_BATCHES = [
    ("wrong width", lambda b: dict(b, rgb=b["rgb"][..., :8]), "wrong feature width"),
    ("rank 2", lambda b: dict(b, rgb=b["rgb"][0], flow=b["flow"][0]), r"input rgb must be \[B, T, 16\]"),
    ("mask length", lambda b: dict(b, mask=b["mask"][:, :-1]), "input mask must be .B, T. matching"),
    ("mask rank", lambda b: dict(b, mask=b["mask"][0]), "input mask must be .B, T. matching"),
    ("batch sizes", lambda b: dict(b, flow=b["flow"][:1]), "same batch size B and number of segments T"),
    ("empty", lambda b: {k: v[:, :0] for k, v in b.items()}, "T = 0 segments"),
]


@pytest.mark.parametrize("case, make, message", BAD_BATCHES, ids=[c[0] for c in BAD_BATCHES])
def test_bad_batch_is_a_clear_error(run, case, make, message):
  del case
  batch = {"rgb": np.ones((2, 5, 16), np.float32), "flow": np.ones((2, 5, 16), np.float32),
           "mask": np.ones((2, 5), np.float32)}
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    run.loaded.signatures["outputs_batched"](**make(batch))
  run.loaded.signatures["outputs_batched"](**batch)


class _OtherTask:
  """A task with the STPN networks under another name, with or without the serving hooks."""

  def __init__(self, stpn_task, hooks: bool):
    self._stpn = stpn_task
    self.name = "other"
    self.streams = stpn_task.streams
    self.network_inputs = stpn_task.network_inputs
    if hooks:
      self.serving_outputs = lambda by_net: {"top_probability": tf.reduce_max(by_net["rgb"]["probabilities"], -1)}
      self.tf_detect = lambda by_net, rate: {"start_s": tf.zeros([1]), "end_s": tf.fill([1], rate),
                                             "class_index": tf.zeros([1], tf.int64), "score": tf.ones([1])}
      self.detect_settings = lambda: {"rule": "fixed"}


def test_task_without_in_graph_detect_exports_the_other_signatures(run, tmp_path):
  serving = module.build_serving_module(_OtherTask(run.task, hooks=False), run.models, run.manifest)
  tf.saved_model.save(serving, str(tmp_path / "e"), signatures=serving.signatures())
  loaded = tf.saved_model.load(str(tmp_path / "e"))
  assert set(loaded.signatures) == {"outputs", "outputs_batched", "metadata", "serving_default"}
  video = run.videos[0]
  got = loaded.signatures["outputs"](rgb=video.rgb, flow=video.flow)
  assert set(got) == {f"{s}_{k}" for s in ("rgb", "flow") for k in ("attention", "tcam", "probabilities", "logits")}
  meta = loaded.signatures["metadata"]()
  assert json.loads(meta["detect_settings"].numpy()) is None
  assert b"detect" not in list(meta["signatures"].numpy())


def test_task_hooks_are_used(run):
  serving = module.build_serving_module(_OtherTask(run.task, hooks=True), run.models, run.manifest)
  video = run.videos[0]
  out = serving.outputs(video.rgb, video.flow)
  ref = _keras_outputs(run, video)
  np.testing.assert_allclose(out["top_probability"].numpy(), ref["rgb"]["probabilities"].max(), atol=1e-6)
  found = serving.detect(video.rgb, video.flow)
  assert found["end_s"].numpy().tolist() == [pytest.approx(run.manifest.feature_rate)]
  assert serving.metadata_dict["detect_settings"] == {"rule": "fixed"}


def test_measure_latency_reports_percentiles(run):
  result = module.measure_latency(run.export_dir, num_segments=30, repeats=3, warmup=1)
  for name in ("outputs", "detect"):
    assert 0 < result[name]["p50_ms"] <= result[name]["p95_ms"] <= result[name]["max_ms"]
  assert result["num_segments"] == 30 and result["repeats"] == 3
