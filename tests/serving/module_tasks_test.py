"""The export of the other tasks (bgm, aumn, hamnet): `outputs` equal the training-time networks, `detect` equals
the task's NumPy post-processor with the run's gin settings, metadata; HAM-Net also served by a process that never
imports stpn_tf. One tiny run per task, trained for one step (random initial weights) and exported."""

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
from stpn_tf.postprocess import hamnet_inference
from stpn_tf.serving import module
from tests.serving import assert_detections_equal
from tests.serving import serve_in_plain_process
from tests.serving import train_tiny_run

COMMON = ["train_eval.steps_per_loop = 1", "train_eval.checkpoint_every = 1", "train_eval.eval_every = 0",
          "train_eval.final_evaluation = False", "train_eval.jit_compile = False"]
TASKS = {
    "bgm": ("bgm.gin", ["BGM.hidden_units = 8", "train_eval.batch_size = 2"]),
    "aumn": ("aumn.gin", ["AUMN.embedding_dim = 8", "AUMN.value_bottleneck = 4", "AUMN.key_reduction = 2",
                          "AUMN.num_templates = 3", "UniformPerturbedSampler.num_segments = 16",
                          "train_eval.batch_size = 4", "aumn_detect.nms = 'soft_linear'"]),
    # HAM-Net with the authors' code's inference (hamnet_authors.gin): repeats kept, floor_end, Gaussian soft-NMS.
    "hamnet": ("hamnet.gin", ["HAMNet.classifier_units = (8, 8)", "HAMNet.attention_units = 4",
                              "UniformPerturbedSampler.num_segments = 16", "train_eval.batch_size = 4",
                              "hamnet_detect.nms = 'soft_gaussian'", "hamnet_detect.soft_nms_sigma = 0.3",
                              "hamnet_detect.keep_repeated_proposals = True",
                              "hamnet_detect.outer_window_rounding = 'floor_end'"]),
}
# Settings the export records (from the task's gin file), one check each.
RECORDED = {"bgm": {"theta": 0.5, "fallback_to_top_class": True, "nms_threshold": 0.5},
            "aumn": {"attention_threshold": None, "theta": 0.3, "nms_threshold": 0.3, "nms": "soft_linear"},
            "hamnet": {"zeta": 0.2, "outer_ratio": 0.25, "smooth_window": 1, "nms": "soft_gaussian",
                       "soft_nms_sigma": 0.3, "keep_repeated_proposals": True, "outer_window_rounding": "floor_end"}}


@pytest.fixture(scope="module", params=sorted(TASKS))
def run(request, tmp_path_factory):
  name = request.param
  gin_file, params = TASKS[name]
  root = tmp_path_factory.mktemp(name)
  data_dir, model_dir = train_tiny_run(str(root), num_test=4, gin_file=gin_file, params=COMMON + params,
                                       num_steps=1)
  export_dir = module.export_saved_model(model_dir, str(root / "export"), data_dir)
  task, models = runs.restore_models(model_dir, data_dir)
  gin.clear_config()
  return types.SimpleNamespace(
      name=name, data_dir=data_dir, model_dir=model_dir, export_dir=export_dir, task=task, models=models,
      manifest=schema.read_manifest(data_dir), loaded=tf.saved_model.load(export_dir),
      videos=list(schema.read_videos(data_dir, "test")))


def _keras_outputs(run, video):
  """The training-time networks on one video: {network: {output: array without the batch axis}}."""
  batch = {s: getattr(video, s)[None] for s in run.task.streams}
  batch["mask"] = np.ones((1, video.num_segments), np.float32)
  return {name: {k: np.asarray(v)[0] for k, v in model(run.task.network_inputs(name, batch), training=False).items()}
          for name, model in run.models.items()}


def _softmax(x):
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _task_outputs(run, ref):
  """The task's own serving outputs computed in NumPy from the networks' outputs."""
  if run.name == "bgm":
    weighted = [ref[s]["attention"][:, None] * ref[s]["tcam"][:, 1:] for s in ("rgb", "flow")]
    return {"probabilities": run.task.video_probabilities(ref),
            "attention": (ref["rgb"]["attention"] + ref["flow"]["attention"]) / 2,
            "fused_tcam": 0.5 * weighted[0] + 0.5 * weighted[1]}
  if run.name == "aumn":
    weighted = [ref[s]["attention"][:, None] * _softmax(ref[s]["cas"]) for s in ("rgb", "flow")]
    return {"probabilities": run.task.video_probabilities(ref), "fused_cas": 0.3 * weighted[0] + 0.7 * weighted[1]}
  out = ref["hamnet"]
  return {"probabilities": run.task.video_probabilities(ref),
          "guided_cas": out["cas"][:, :-1] * out["attention"][:, None]}


def _expected_outputs(run, video):
  ref = _keras_outputs(run, video)
  flat = {f"{net}_{key}": value for net, out in ref.items() for key, value in out.items()}
  flat.update(_task_outputs(run, ref))
  return flat


def _video_level(run):
  """Output keys without a time axis (the rest have time first, padded in outputs_batched)."""
  return {f"{net}_{key}" for net in run.models for key in run.task.video_level_outputs} | {"probabilities"}


def test_detect_equals_numpy_postprocessor(run):
  gin.clear_config()
  config.parse_gin([os.path.join(run.model_dir, "config.gin")], [])   # the NumPy side reads <task>_detect.*
  features = {v.video_id: v for v in run.videos}
  detect = run.loaded.signatures["detect"]
  total = 0
  for info, outputs in inference.predict_videos(run.task, run.models, run.data_dir, "test"):
    expected = run.task.detect(outputs, run.manifest.feature_rate)
    video = features[info["video_id"]]
    got = {k: v.numpy() for k, v in detect(rgb=video.rgb, flow=video.flow).items()}
    assert_detections_equal(expected, got, f"{run.name} {info['video_id']}")
    assert [n.decode() for n in got["class_name"]] == [run.manifest.class_names[c] for c in expected.class_index]
    total += len(expected)
  assert total >= 10, total


def test_outputs_equal_the_training_time_networks(run):
  videos = run.videos[:2]
  length = max(v.num_segments for v in videos)
  batch = {s: np.zeros((2, length, 16), np.float32) for s in ("rgb", "flow")}
  mask = np.zeros((2, length), np.float32)
  for i, v in enumerate(videos):
    for s in ("rgb", "flow"):
      batch[s][i, :v.num_segments] = getattr(v, s)
    mask[i, :v.num_segments] = 1.0
  batched = {k: v.numpy() for k, v in run.loaded.signatures["outputs_batched"](**batch, mask=mask).items()}
  for i, video in enumerate(videos):
    expected = _expected_outputs(run, video)
    got = {k: v.numpy() for k, v in run.loaded.signatures["outputs"](rgb=video.rgb, flow=video.flow).items()}
    assert set(got) == set(expected) == set(batched)
    for key, value in expected.items():
      np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-5, err_msg=key)
      real = batched[key][i] if key in _video_level(run) else batched[key][i][:video.num_segments]
      np.testing.assert_allclose(real, value, rtol=0, atol=1e-5, err_msg=f"batched {key}")


def test_metadata_records_the_detect_settings(run):
  meta = json.loads(run.loaded.signatures["metadata"]()["json"].numpy())
  assert meta["task"] == run.name
  assert meta["signatures"] == ["outputs", "outputs_batched", "detect", "metadata"]
  settings = meta["detect_settings"]
  assert settings["postprocessor"] == f"stpn_tf.postprocess.{run.name}_inference.{run.name}_detect"
  for key, value in RECORDED[run.name].items():
    assert settings[key] == value, key
  assert settings["class_threshold"] == 0.1


REFUSED = {"bgm": ("theta", 1.5, "theta must be in"), "aumn": ("nms_threshold", 2.0, "nms_threshold must be in"),
           "hamnet": ("smooth_window", 2, "smoothing window must be an odd integer")}


def test_settings_the_postprocessor_refuses_are_an_export_error(run):
  key, value, message = REFUSED[run.name]
  with pytest.raises(module.ExportError, match=message):
    module.build_serving_module(run.task, run.models, run.manifest, detect_settings={key: value})
  gin.clear_config()
  config.parse_gin([os.path.join(run.model_dir, "config.gin")], [f"{run.name}_detect.{key} = {value!r}"])
  with pytest.raises(module.ExportError, match=f"{run.name}_detect settings .* cannot be exported: {message}"):
    module.build_serving_module(run.task, run.models, run.manifest)


@pytest.mark.parametrize("run", ["hamnet"], indirect=True)
def test_hamnet_smoothing_and_other_settings_equal_numpy(run):
  settings = dict(smooth_window=5, zeta=0.5, attention_thresholds=(0.45, 0.5, 0.55), nms_threshold=0.3)
  serving = module.build_serving_module(run.task, run.models, run.manifest, detect_settings=settings)
  total = 0
  for video in run.videos:
    out = _keras_outputs(run, video)["hamnet"]
    expected = hamnet_inference.hamnet_detect(out["attention"], out["cas"], out["probabilities"],
                                              run.manifest.feature_rate, **settings)
    got = {k: v.numpy() for k, v in serving.detect(video.rgb, video.flow).items()}
    assert_detections_equal(expected, got, video.video_id)
    total += len(expected)
  assert total > 0


@pytest.mark.parametrize("run", ["hamnet"], indirect=True)
def test_hamnet_export_serves_in_a_plain_tensorflow_process(run, tmp_path):
  video, other = run.videos[0], run.videos[1]
  out = serve_in_plain_process(run.export_dir, video, other, tmp_path)
  assert not out["imported_stpn_tf"]
  for i, v in enumerate((video, other)):
    expected = _expected_outputs(run, v)
    t = v.num_segments
    for key, value in expected.items():
      if i == 0:
        np.testing.assert_allclose(out[f"outputs/{key}"], value, rtol=0, atol=1e-5, err_msg=key)
      got = out[f"outputs_batched/{key}"][i]
      np.testing.assert_allclose(got if key in _video_level(run) else got[:t], value, rtol=0, atol=1e-5,
                                 err_msg=key)
  in_process = {k: v.numpy() for k, v in run.loaded.signatures["detect"](rgb=video.rgb, flow=video.flow).items()}
  assert len(in_process["score"]) > 0
  for key in ("start_s", "end_s", "score", "class_index"):
    np.testing.assert_array_equal(out[f"detect/{key}"], in_process[key])
  assert out["metadata/task"] == "hamnet"
  assert json.loads(str(out["metadata/detect_settings"]))["attention_thresholds"] == list(
      hamnet_inference.DEFAULT_ATTENTION_THRESHOLDS)
