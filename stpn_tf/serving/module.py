"""The exported serving model: a tf.Module with named signatures, built from a trained run.

Keras 3's `model.save` does not write SavedModels, so the export is an explicit `tf.Module` saved with
`tf.saved_model.save(module, dir, signatures=...)`. Only the models' variables are tracked (as Keras' own
ExportArchive does); the Keras layers are called inside the traced functions, so loading needs no stpn_tf and no
custom-object registration: `tf.saved_model.load(dir).signatures[name](**inputs)`.

Signatures (inputs float32; S = the task's streams, e.g. rgb and flow; D_s = the stream's feature width):

  outputs (also serving_default)   one video, {s: [T, D_s]}             -> per-network model outputs for the video
  outputs_batched                  {s: [B, T, D_s], mask: [B, T]}       -> the same with a leading batch axis
  detect (when the task has one)   one video, {s: [T, D_s]}             -> final detections, computed in the graph
  metadata                         no input                             -> where the export came from

Output keys: "<network>_<model output>" for every output of every network, plus the task's own serving outputs
(C = the real classes; every task adds `probabilities` [C], its video-level class scores `task.video_probabilities`):
  stpn    networks rgb, flow: <s>_attention [T], <s>_tcam [T, C], <s>_probabilities [C], <s>_logits [C]; own:
          probabilities (mean of the streams' sigmoid scores), weighted_tcam [T, C] = alpha psi_RGB + (1 - alpha)
          psi_FLOW with psi = lambda * sigmoid(a) (Eqs. 5-6, alpha = stpn_detect.alpha), <s>_weighted_tcam [T, C].
  bgm     networks rgb, flow: <s>_attention [T], <s>_tcam [T, C+1], <s>_probabilities [C+1], <s>_logits [C+1],
          <s>_bg_logits [C+1], <s>_cluster_fg_logits [2], <s>_cluster_bg_logits [2] (index 0 = background); own:
          probabilities (p_fg of the real classes, mean of the streams), attention [T] (mean of the streams: the
          proposal signal), fused_tcam [T, C] (the summand of Eq. 12, theta = bgm_detect.theta).
  aumn    networks rgb, flow: <s>_attention [T], <s>_cas [T, C], <s>_probabilities [C], <s>_logits [C],
          <s>_similarity [T, K], <s>_diversity []; own: probabilities (mean of y_hat), fused_cas [T, C] (the summand
          of Eq. 16, theta = aumn_detect.theta).
  hamnet  one network on the concatenated streams: hamnet_cas [T, C+1] (last = background), hamnet_attention [T],
          hamnet_semi_soft_attention [T], hamnet_hard_attention [T], hamnet_logits [C+1], hamnet_probabilities [C];
          own: probabilities (= p^attn, Eq. 6), guided_cas [T, C] (s^attn = s * a of the real classes).
In outputs_batched, values at padded steps (mask 0) are unspecified; an empty batch (B = 0) gives empty outputs.

detect outputs [N]: start_s, end_s (float32 seconds), class_index (int64), class_name (string), score (float32), by
descending score; equal scores keep the NumPy post-processor's proposal order (see tf_postprocess.py).

Task hooks (all optional, looked up on the task object; for tasks whose file cannot carry them yet, an adapter in
ADAPTERS keyed by task name provides them: StpnServing, BgmServing, AumnServing, HamnetServing, each running its
task's NumPy post-processor's port from tf_postprocess.py with the run's gin-bound `<task>_detect.*` settings):
  serving_outputs(outputs_by_network) -> {name: tensor}: extra outputs from the batched per-network outputs
    ({network: {output: [B, ...]}}), batch axis first; the single-video signature drops the batch axis.
  tf_detect(outputs_by_network, feature_rate) -> {"start_s", "end_s", "class_index", "score"}: detections of one
    video in the graph, from single-video outputs ({network: {output: [T, ...] or [C]}}), descending score.
    Without it the export has no `detect` signature (the others are written; metadata lists what is there).
  detect_settings() -> dict: the post-processing settings baked into tf_detect, recorded in the metadata.

Bad input never crashes the serving process: a wrong rank, a wrong feature width, streams of different lengths,
a mask that does not match, NaN/inf features or (outputs signatures only) an empty video fail the call with an
InvalidArgumentError whose message names the problem. `detect` returns zero detections for T = 0.
"""

import datetime
import inspect
import json
import os
import re
import time
import uuid
from typing import Dict, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from stpn_tf.serving import tf_postprocess

EXPORT_FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"          # also written to <export_dir>/assets.extra/, for people and tools
SIGNATURE_OUTPUTS = "outputs"
SIGNATURE_BATCHED = "outputs_batched"
SIGNATURE_DETECT = "detect"
SIGNATURE_METADATA = "metadata"


class ExportError(ValueError):
  """The run cannot be exported (no checkpoint, mismatching dataset, unsupported settings, existing output)."""


# ---------------------------------------------------------------------------------------------------------------------
# Task adapters: in-graph parts of tasks that do not define the hooks themselves.
# ---------------------------------------------------------------------------------------------------------------------


def gin_bound_kwargs(fn, selector: str) -> Dict:
  """The keyword arguments `fn` gets when called through gin as `selector`: its defaults updated with the
  bindings of the currently parsed gin config (e.g. the run's config.gin)."""
  import gin  # pylint: disable=import-outside-toplevel
  defaults = {name: p.default for name, p in inspect.signature(fn).parameters.items()
              if p.default is not inspect.Parameter.empty}
  bindings = gin.get_bindings(selector)
  unknown = set(bindings) - set(defaults)
  if unknown:
    raise ExportError(f"gin binds {sorted(unknown)} for {selector}, which takes no such argument")
  return dict(defaults, **bindings)


class StpnServing:
  """STPN's in-graph parts: fused outputs and `stpn_detect` with the run's gin-bound settings."""

  def __init__(self, task, settings: Optional[Dict] = None, feature_rate: float = 1.0):
    from stpn_tf.postprocess import stpn_inference  # pylint: disable=import-outside-toplevel
    self.streams = tuple(task.modalities)
    if settings is None:
      settings = gin_bound_kwargs(stpn_inference.stpn_detect, "stpn_detect")
      for name in ("rgb", "flow", "feature_rate"):
        settings.pop(name, None)
    try:
      self.settings = tf_postprocess.stpn_settings(feature_rate, streams=self.streams, **settings)
    except (ValueError, TypeError) as e:
      raise ExportError(f"stpn_detect settings {settings} cannot be exported: {e}") from e

  def detect_settings(self) -> Dict:
    return dict(self.settings, postprocessor="stpn_tf.postprocess.stpn_inference.stpn_detect")

  def serving_outputs(self, outputs_by_network):
    probabilities = [outputs_by_network[s]["probabilities"] for s in self.streams]
    weighted = {s: tf_postprocess.weighted_tcam(outputs_by_network[s]["attention"], outputs_by_network[s]["tcam"])
                for s in self.streams}
    alpha = self.settings["alpha"]
    extra = {"probabilities": tf.add_n(probabilities) / float(len(probabilities)),
             "weighted_tcam": (alpha * weighted["rgb"] + (1.0 - alpha) * weighted["flow"]
                               if len(weighted) == 2 else next(iter(weighted.values())))}
    extra.update({f"{s}_weighted_tcam": w for s, w in weighted.items()})
    return extra

  def tf_detect(self, outputs_by_network, feature_rate: float):
    streams = {s: tf_postprocess.StreamTensors(o["attention"], o["tcam"], o["probabilities"])
               for s, o in outputs_by_network.items()}
    return tf_postprocess.stpn_detect(streams.get("rgb"), streams.get("flow"), feature_rate, **self.settings)


def _settings_from_gin(fn, selector: str, inputs) -> Dict:
  """The run's gin-bound settings of a NumPy post-processor, without its per-video input arguments."""
  settings = gin_bound_kwargs(fn, selector)
  for name in inputs:
    settings.pop(name, None)
  return settings


def _validated(settings_fn, selector: str, settings: Dict, **kwargs) -> Dict:
  try:
    return settings_fn(**kwargs, **settings)
  except (ValueError, TypeError) as e:
    raise ExportError(f"{selector} settings {settings} cannot be exported: {e}") from e


class BgmServing:
  """Background modeling (Nguyen et al. ICCV 2019): fused outputs and `bgm_detect` (Sec. 3.2, Eq. 12) with the run's
  gin-bound `bgm_detect.*` settings.

  The networks' tcam [T, C + 1] and probabilities [C + 1] have the background at index 0 (Eq. 2); detection sees
  the C real classes (column 0 dropped), as `BGM.detect` does.
  """

  def __init__(self, task, settings: Optional[Dict] = None, feature_rate: float = 1.0):
    from stpn_tf.postprocess import bgm_inference  # pylint: disable=import-outside-toplevel
    self.streams = tuple(task.streams)
    if settings is None:
      settings = _settings_from_gin(bgm_inference.bgm_detect, "bgm_detect", ("rgb", "flow", "feature_rate"))
    self.settings = _validated(tf_postprocess.bgm_settings, "bgm_detect", settings, feature_rate=feature_rate,
                               streams=self.streams)

  def detect_settings(self) -> Dict:
    return dict(self.settings, postprocessor="stpn_tf.postprocess.bgm_inference.bgm_detect")

  def _real_classes(self, outputs_by_network):
    return {s: tf_postprocess.StreamTensors(o["attention"], o["tcam"][..., 1:], o["probabilities"][..., 1:])
            for s, o in outputs_by_network.items()}

  def serving_outputs(self, outputs_by_network):
    """probabilities [C]: p_fg of the real classes averaged over the streams (`BGM.video_probabilities`);
    attention [T]: lambda averaged over the streams (the signal thresholded into proposals, Sec. 3.2);
    fused_tcam [T, C]: theta lambda^RGB w_c x^RGB + (1 - theta) lambda^FLOW w_c x^FLOW, the summand of Eq. 12."""
    real = self._real_classes(outputs_by_network)
    streams = [real[s] for s in self.streams]
    theta = self.settings["theta"]
    weighted = {s: real[s].attention[..., None] * real[s].tcam for s in self.streams}
    return {"probabilities": tf.add_n([s.probabilities for s in streams]) / float(len(streams)),
            "attention": tf.add_n([s.attention for s in streams]) / float(len(streams)),
            "fused_tcam": tf_postprocess.mix_streams(weighted.get("rgb"), weighted.get("flow"), theta)}

  def tf_detect(self, outputs_by_network, feature_rate: float):
    real = self._real_classes(outputs_by_network)
    return tf_postprocess.bgm_detect(real.get("rgb"), real.get("flow"), feature_rate, **self.settings)


class AumnServing:
  """AUMN (Luo et al. CVPR 2021): fused outputs and `aumn_detect` (section 3.3, Eqs. 15-16) with the run's gin-bound
  `aumn_detect.*` settings. eta_act = None (the paper's mean attention per video) is computed in the graph."""

  def __init__(self, task, settings: Optional[Dict] = None, feature_rate: float = 1.0):
    from stpn_tf.postprocess import aumn_inference  # pylint: disable=import-outside-toplevel
    self.streams = tuple(task.streams)
    if settings is None:
      settings = _settings_from_gin(aumn_inference.aumn_detect, "aumn_detect", ("rgb", "flow", "feature_rate"))
    self.settings = _validated(tf_postprocess.aumn_settings, "aumn_detect", settings, feature_rate=feature_rate,
                               streams=self.streams)

  def detect_settings(self) -> Dict:
    return dict(self.settings, postprocessor="stpn_tf.postprocess.aumn_inference.aumn_detect")

  def _streams(self, outputs_by_network):
    return {s: tf_postprocess.StreamTensors(o["attention"], o["cas"], o["probabilities"])
            for s, o in outputs_by_network.items()}

  def serving_outputs(self, outputs_by_network):
    """probabilities [C]: y_hat (Eq. 8) averaged over the networks (`AUMN.video_probabilities`); fused_cas [T, C]:
    theta a^R softmax(C^R) + (1 - theta) a^F softmax(C^F), the summand of Eq. 16."""
    streams = self._streams(outputs_by_network)
    weighted = {s: streams[s].attention[..., None] * tf.nn.softmax(streams[s].tcam, axis=-1) for s in self.streams}
    return {"probabilities": tf.add_n([streams[s].probabilities for s in self.streams]) / float(len(self.streams)),
            "fused_cas": tf_postprocess.mix_streams(weighted.get("rgb"), weighted.get("flow"),
                                                    self.settings["theta"])}

  def tf_detect(self, outputs_by_network, feature_rate: float):
    streams = self._streams(outputs_by_network)
    return tf_postprocess.aumn_detect(streams.get("rgb"), streams.get("flow"), feature_rate, **self.settings)


class HamnetServing:
  """HAM-Net (Islam et al. AAAI 2021): one network on the concatenated streams; `hamnet_detect` (outer-inner
  contrast, Eqs. 14-16) with the run's gin-bound `hamnet_detect.*` settings."""

  def __init__(self, task, settings: Optional[Dict] = None, feature_rate: float = 1.0):
    from stpn_tf.postprocess import hamnet_inference  # pylint: disable=import-outside-toplevel
    self.streams = tuple(task.streams)
    if settings is None:
      settings = _settings_from_gin(hamnet_inference.hamnet_detect, "hamnet_detect",
                                    ("attention", "cas", "video_scores", "feature_rate"))
    self.settings = _validated(tf_postprocess.hamnet_settings, "hamnet_detect", settings, feature_rate=feature_rate)

  def detect_settings(self) -> Dict:
    return dict(self.settings, postprocessor="stpn_tf.postprocess.hamnet_inference.hamnet_detect")

  def serving_outputs(self, outputs_by_network):
    """probabilities [C]: p^attn of the real classes (Eq. 6, `HAMNet.video_probabilities`); guided_cas [T, C]:
    s^attn = s * a of the real classes (the signal of Eqs. 5 and 14-16, before any smoothing)."""
    out = outputs_by_network["hamnet"]
    return {"probabilities": tf.identity(out["probabilities"]),
            "guided_cas": out["cas"][..., :-1] * out["attention"][..., None]}

  def tf_detect(self, outputs_by_network, feature_rate: float):
    out = outputs_by_network["hamnet"]
    return tf_postprocess.hamnet_detect(out["attention"], out["cas"], out["probabilities"], feature_rate,
                                        **self.settings)


ADAPTERS = {"stpn": StpnServing, "bgm": BgmServing, "aumn": AumnServing, "hamnet": HamnetServing}


def serving_parts(task, feature_rate: float):
  """The object that provides the task's serving hooks: the task itself if it defines any, else its adapter,
  else None (per-network outputs only, no detect)."""
  if any(hasattr(task, hook) for hook in ("serving_outputs", "tf_detect")):
    return task
  adapter = ADAPTERS.get(getattr(task, "name", None))
  return adapter(task, feature_rate=feature_rate) if adapter else None


# ---------------------------------------------------------------------------------------------------------------------
# The module.
# ---------------------------------------------------------------------------------------------------------------------


def _named_args(names, body):
  """A Python function whose positional parameters are `names` (so signature inputs get those names)."""
  def fn(*args):
    return body(dict(zip(names, args)))
  fn.__signature__ = inspect.Signature(
      [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names])
  return fn


def _assert(condition, *message):
  return tf.debugging.Assert(condition, list(message), summarize=8)


def _checked_features(x, name: str, width: int, batched: bool):
  """Asserts rank, feature width and finiteness; returns x with its static shape set, or raises at run time."""
  rank = 3 if batched else 2
  layout = f"[B, T, {width}]" if batched else f"[T, {width}]"
  shape = tf.shape(x)
  padded = tf.concat([shape, [-1, -1, -1]], axis=0)          # indexable whatever the rank
  rank_ok = tf.equal(tf.rank(x), rank)
  checks = [
      _assert(rank_ok, f"input {name} must be {layout} (" + ("batch x " if batched else "") +
              "segments x features), got shape", shape),
      _assert(tf.logical_or(tf.logical_not(rank_ok), tf.equal(padded[rank - 1], width)),
              f"input {name} has the wrong feature width: the model expects {width} features per segment, "
              "got shape", shape),
      _assert(tf.reduce_all(tf.math.is_finite(x)), f"input {name} contains NaN or inf"),
  ]
  with tf.control_dependencies(checks):
    x = tf.identity(x)
  # Static shape for the model. Not tf.ensure_shape: grappler propagates its shape back to the input and folds the
  # rank check above into a constant, which turns a wrong-rank error into a misleading one.
  shape = tf.shape(x)
  return tf.reshape(x, tf.stack([shape[i] for i in range(rank - 1)] + [width]))


class _Untracked:
  """Attribute bag invisible to tf.Module / SavedModel tracking (not a list, dict or Trackable)."""

  def __init__(self, **kwargs):
    self.__dict__.update(kwargs)


class ServingModule(tf.Module):
  """The exported model. Build with `build_serving_module`; `signatures()` gives what to pass to saved_model.save."""

  def __init__(self, task, models, *, class_names, feature_rate: float, feature_dims: Dict[str, int],
               metadata: Dict, parts=None):
    super().__init__(name="stpn_tf_serving")
    has_detect = parts is not None and hasattr(parts, "tf_detect")
    names = [SIGNATURE_OUTPUTS, SIGNATURE_BATCHED] + ([SIGNATURE_DETECT] if has_detect else []) + \
        [SIGNATURE_METADATA]
    streams = tuple(task.streams)
    feature_dims = {s: int(feature_dims[s]) for s in streams}
    meta = dict(metadata, signatures=names, format_version=EXPORT_FORMAT_VERSION, class_names=list(class_names),
                feature_rate=float(feature_rate), feature_dims=feature_dims, streams=list(streams),
                networks=sorted(models),
                detect_settings=parts.detect_settings() if has_detect and hasattr(parts, "detect_settings")
                else None)
    # Python-side state lives in a plain object that SavedModel tracking does not walk into.
    self._c = _Untracked(task=task, models=dict(models), parts=parts, streams=streams, feature_dims=feature_dims,
                         feature_rate=float(feature_rate), class_names=list(class_names), metadata=meta)
    # Variables only (as keras.export does): the Keras layers are not SavedModel-serializable objects.
    self.model_variables = [v for m in models.values() for v in m.variables]

    video_specs = [tf.TensorSpec(None, tf.float32, name=s) for s in streams]
    batched_specs = video_specs + [tf.TensorSpec(None, tf.float32, name="mask")]
    self.outputs = tf.function(_named_args(streams, self._video_outputs), input_signature=video_specs,
                               autograph=False)
    self.outputs_batched = tf.function(_named_args(streams + ("mask",), self._batched_outputs),
                                       input_signature=batched_specs, autograph=False)
    if has_detect:
      self.detect = tf.function(_named_args(streams, self._detect), input_signature=video_specs,
                                autograph=False)
    self.metadata = tf.function(self._metadata, input_signature=[], autograph=False)

  @property
  def metadata_dict(self) -> Dict:
    """What the export records about its origin (also the `metadata` signature and assets.extra/metadata.json)."""
    return self._c.metadata

  def signatures(self) -> Dict:
    sigs = {SIGNATURE_OUTPUTS: self.outputs.get_concrete_function(),
            SIGNATURE_BATCHED: self.outputs_batched.get_concrete_function(),
            SIGNATURE_METADATA: self.metadata.get_concrete_function()}
    if hasattr(self, "detect"):
      sigs[SIGNATURE_DETECT] = self.detect.get_concrete_function()
    sigs["serving_default"] = sigs[SIGNATURE_OUTPUTS]
    return sigs

  # -- graph pieces ----------------------------------------------------------------------------------------------

  def _forward(self, features: Dict[str, tf.Tensor], mask):
    """{network: {output: [B, ...]}} and the flat signature outputs, from [B, T, D] features and a [B, T] mask."""
    models, parts = self._c.models, self._c.parts
    batch = dict(features, mask=mask)
    by_network = {}
    for name, model in models.items():
      out = model(self._c.task.network_inputs(name, batch), training=False)
      by_network[name] = {k: tf.convert_to_tensor(v) for k, v in out.items()}
    flat = {f"{net}_{key}": value for net, out in by_network.items() for key, value in out.items()}
    if parts is not None and hasattr(parts, "serving_outputs"):
      for key, value in parts.serving_outputs(by_network).items():
        if key in flat:
          raise ExportError(f"serving output {key!r} of the task clashes with a model output")
        flat[key] = tf.convert_to_tensor(value)
    return by_network, flat

  def _video_checks(self, inputs, allow_empty: bool):
    features = {s: _checked_features(inputs[s], s, self._c.feature_dims[s], batched=False) for s in self._c.streams}
    lengths = {s: tf.shape(x)[0] for s, x in features.items()}
    first = self._c.streams[0]
    checks = [_assert(tf.equal(lengths[s], lengths[first]), f"inputs {first} and {s} must have the same "
                      "number of segments T, got", lengths[first], lengths[s]) for s in self._c.streams[1:]]
    if not allow_empty:
      checks.append(_assert(lengths[first] > 0, f"input {first} has T = 0 segments: an empty video has no "
                            "outputs (the detect signature returns zero detections for it)"))
    with tf.control_dependencies(checks):
      features = {s: tf.identity(x) for s, x in features.items()}
    return features, lengths[first]

  def _video_outputs(self, inputs):
    features, length = self._video_checks(inputs, allow_empty=False)
    _, flat = self._forward({s: x[None] for s, x in features.items()}, tf.ones([1, length], tf.float32))
    return {k: v[0] for k, v in flat.items()}

  def _batched_outputs(self, inputs):
    features = {s: _checked_features(inputs[s], s, self._c.feature_dims[s], batched=True) for s in self._c.streams}
    mask = inputs["mask"]
    first = self._c.streams[0]
    lead = tf.shape(features[first])[:2]
    checks = [_assert(tf.reduce_all(tf.equal(tf.shape(features[s])[:2], lead)), f"inputs {first} and {s} "
                      "must have the same batch size B and number of segments T, got shapes",
                      tf.shape(features[first]), tf.shape(features[s])) for s in self._c.streams[1:]]
    mask_shape = tf.shape(mask)
    mask_ok = tf.logical_and(tf.equal(tf.rank(mask), 2),
                             tf.reduce_all(tf.equal(tf.concat([mask_shape, [-1, -1]], 0)[:2], lead)))
    checks += [_assert(mask_ok, f"input mask must be [B, T] matching {first} [B, T, D]; got mask shape",
                       mask_shape, f"and {first} shape", tf.shape(features[first])),
               _assert(lead[1] > 0, "inputs have T = 0 segments: an empty batch of videos has no outputs")]
    with tf.control_dependencies(checks):
      features = {s: tf.identity(x) for s, x in features.items()}
      mask = tf.identity(mask)
    lead = tf.shape(features[first])
    mask = tf.reshape(mask, tf.stack([lead[0], lead[1]]))
    _, flat = self._forward(features, mask)
    return flat

  def _detect(self, inputs):
    features, length = self._video_checks(inputs, allow_empty=True)
    parts = self._c.parts
    names = tf.constant(self._c.class_names if self._c.class_names else [""], tf.string)

    def run():
      by_network, _ = self._forward({s: x[None] for s, x in features.items()}, tf.ones([1, length], tf.float32))
      single = {net: {k: v[0] for k, v in out.items()} for net, out in by_network.items()}
      found = parts.tf_detect(single, self._c.feature_rate)
      return (tf.cast(found["start_s"], tf.float32), tf.cast(found["end_s"], tf.float32),
              tf.cast(found["class_index"], tf.int64), tf.cast(found["score"], tf.float32))

    def empty():
      return (tf.zeros([0], tf.float32), tf.zeros([0], tf.float32), tf.zeros([0], tf.int64),
              tf.zeros([0], tf.float32))

    start_s, end_s, class_index, score = tf.cond(length > 0, run, empty)
    return {"start_s": start_s, "end_s": end_s, "class_index": class_index, "score": score,
            "class_name": tf.gather(names, class_index)}

  def _metadata(self):
    meta = self._c.metadata
    return {
        "task": tf.constant(str(meta.get("task", ""))),
        "class_names": tf.constant(self._c.class_names if self._c.class_names else [], tf.string,
                                   shape=[len(self._c.class_names)]),
        "feature_rate": tf.constant(self._c.feature_rate, tf.float64),
        "feature_dims": tf.constant(json.dumps(self._c.feature_dims)),
        "checkpoint_path": tf.constant(str(meta.get("checkpoint_path", ""))),
        "checkpoint_step": tf.constant(int(meta.get("checkpoint_step", -1)), tf.int64),
        "run_info": tf.constant(json.dumps(meta.get("run_info"))),
        "gin_config": tf.constant(str(meta.get("gin_config", ""))),
        "detect_settings": tf.constant(json.dumps(meta.get("detect_settings"))),
        "signatures": tf.constant(meta["signatures"], tf.string),
        "json": tf.constant(json.dumps(meta, sort_keys=True)),
    }


def build_serving_module(task, models, manifest, metadata: Optional[Dict] = None,
                         detect_settings: Optional[Dict] = None) -> ServingModule:
  """A ServingModule for trained `models` of `task`; class names and feature rate from the dataset manifest.

  detect_settings: for the tasks in ADAPTERS, overrides the gin-bound `<task>_detect.*` settings (the export uses
    the run's).
  """
  feature_rate = float(manifest.feature_rate)
  if detect_settings is not None:
    if getattr(task, "name", None) not in ADAPTERS:
      raise ExportError(f"detect_settings can only be given for {sorted(ADAPTERS)}")
    parts = ADAPTERS[task.name](task, settings=dict(detect_settings), feature_rate=feature_rate)
  else:
    parts = serving_parts(task, feature_rate)
  return ServingModule(task, models, class_names=manifest.class_names, feature_rate=feature_rate,
                       feature_dims=manifest.feature_dims, metadata=dict(metadata or {}, task=task.name),
                       parts=parts)


# ---------------------------------------------------------------------------------------------------------------------
# Export from a model directory.
# ---------------------------------------------------------------------------------------------------------------------


def _checkpoint_step(path: str) -> int:
  try:
    return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))
  except (tf.errors.NotFoundError, ValueError):
    suffix = path.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def _clean_stale_export_temporaries(export_dir: str) -> None:
  """Removes the .NAME.tmp-XXXXXXXX/ folders a killed export left next to export_dir; a killed swap's
  .NAME.tmp-XXXXXXXX-old/ (the previous export, moved aside) is put back when export_dir is missing."""
  parent = os.path.dirname(os.path.abspath(export_dir))
  if not tf.io.gfile.isdir(parent):
    return
  pattern = re.compile(r"^\." + re.escape(os.path.basename(export_dir)) + r"\.tmp-[0-9a-f]{8}(-old)?$")
  for name in sorted(tf.io.gfile.listdir(parent)):
    name = name.rstrip("/")
    match = pattern.match(name)
    if not match:
      continue
    path = os.path.join(parent, name)
    if match.group(1) and not tf.io.gfile.exists(export_dir):
      logging.warning("Restoring %s from %s (an export was killed while replacing it)", export_dir, path)
      tf.io.gfile.rename(path, export_dir)
    else:
      logging.warning("Removing %s, left by an export that did not finish", path)
      tf.io.gfile.rmtree(path)


def export_saved_model(model_dir: str, export_dir: str, data_dir: Optional[str] = None,
                       overwrite: bool = False) -> str:
  """Exports the last checkpoint of a training run as a SavedModel (see the module docstring); returns export_dir.

  The SavedModel is written to a temporary sibling of export_dir and renamed into place when complete, so
  export_dir is either absent, the previous export, or a complete new one.

  Raises:
    ExportError: no checkpoint in model_dir, a dataset that does not match the run, settings the in-graph
      post-processor cannot take, or an existing export_dir without overwrite.
  """
  from stpn_tf import runs  # pylint: disable=import-outside-toplevel
  from stpn_tf.data import schema  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import trainer  # pylint: disable=import-outside-toplevel

  if not tf.io.gfile.isdir(model_dir):
    raise ExportError(f"model directory {model_dir} does not exist")
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if not checkpoint:
    raise ExportError(f"{model_dir} holds no checkpoint to export (train first: python -m stpn_tf.train "
                      f"--model_dir={model_dir} ...)")
  config_path = os.path.join(model_dir, "config.gin")
  if not tf.io.gfile.exists(config_path):
    raise ExportError(f"{model_dir} has a checkpoint but no config.gin: cannot rebuild the model")
  export_dir = export_dir.rstrip("/")
  _clean_stale_export_temporaries(export_dir)
  if tf.io.gfile.exists(export_dir) and not overwrite:
    raise ExportError(f"{export_dir} already exists; choose another --export_dir or pass --overwrite")
  try:   # default: the data the run trained on; another dataset must have the run's class names
    data_dir, _ = model_dir_lib.resolve_data_dir(model_dir, data_dir)
    run_info = model_dir_lib.read_json(os.path.join(model_dir, trainer.RUN_INFO), "which model this directory holds")
  except model_dir_lib.ModelDirError as e:
    raise ExportError(str(e)) from e
  manifest = schema.read_manifest(data_dir)
  if run_info:
    dims = {s: manifest.feature_dims.get(s) for s in run_info.get("feature_dims", {})}
    if run_info.get("num_classes") != manifest.num_classes or dims != run_info.get("feature_dims"):
      raise ExportError(f"the dataset at {data_dir} ({manifest.num_classes} classes, feature dims "
                        f"{manifest.feature_dims}) does not match the run in {model_dir} ({run_info}); pass the "
                        "--data_dir the model was trained on")
  try:
    task, models = runs.restore_models(model_dir, data_dir)
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ExportError(f"{model_dir}: cannot rebuild the model from its config.gin and restore {checkpoint}: "
                      f"{e}") from e
  with tf.io.gfile.GFile(config_path) as f:
    gin_config = f.read()
  metadata = {"run_info": run_info, "gin_config": gin_config, "model_dir": os.path.abspath(model_dir),
              "checkpoint_path": os.path.abspath(checkpoint), "checkpoint_step": _checkpoint_step(checkpoint),
              "data_dir": os.path.abspath(data_dir),
              "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "tensorflow_version": tf.__version__}
  module = build_serving_module(task, models, manifest, metadata)
  if SIGNATURE_DETECT not in module.metadata_dict["signatures"]:
    logging.warning("Task %s has no in-graph detection (tf_detect): the export has no 'detect' signature",
                    task.name)

  parent = os.path.dirname(os.path.abspath(export_dir))
  tf.io.gfile.makedirs(parent)
  tmp_dir = os.path.join(parent, f".{os.path.basename(export_dir)}.tmp-{uuid.uuid4().hex[:8]}")
  old_dir = None
  try:
    tf.saved_model.save(module, tmp_dir, signatures=module.signatures())
    tf.io.gfile.makedirs(os.path.join(tmp_dir, "assets.extra"))
    with tf.io.gfile.GFile(os.path.join(tmp_dir, "assets.extra", METADATA_FILE), "w") as f:
      json.dump(module.metadata_dict, f, indent=1, sort_keys=True)
    if tf.io.gfile.exists(export_dir):
      old_dir = tmp_dir + "-old"
      tf.io.gfile.rename(export_dir, old_dir)
    tf.io.gfile.rename(tmp_dir, export_dir)
  except BaseException:
    if tf.io.gfile.exists(tmp_dir):
      tf.io.gfile.rmtree(tmp_dir)
    if old_dir and tf.io.gfile.exists(old_dir) and not tf.io.gfile.exists(export_dir):
      tf.io.gfile.rename(old_dir, export_dir)
    raise
  if old_dir:
    tf.io.gfile.rmtree(old_dir)
  logging.info("Exported %s (step %d) to %s with signatures %s", checkpoint, metadata["checkpoint_step"],
               export_dir, module.metadata_dict["signatures"])
  return export_dir


# ---------------------------------------------------------------------------------------------------------------------
# Latency.
# ---------------------------------------------------------------------------------------------------------------------


def _percentiles(times_s):
  ms = np.asarray(times_s) * 1e3
  return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
          "mean_ms": float(ms.mean()), "min_ms": float(ms.min()), "max_ms": float(ms.max())}


def measure_latency(export_dir: str, num_segments: int = 470, repeats: int = 50, warmup: int = 3,
                    seed: int = 0) -> Dict:
  """Single-video latency of an export, as a client sees it: load, then time each signature call (inputs already
  tensors, outputs fetched to NumPy) on one random THUMOS14-like video (uniform [0, 1) features).

  Returns {"outputs": {p50_ms, p95_ms, mean_ms, min_ms, max_ms}, "detect": {...} (if the export has it),
  "num_segments", "repeats", "num_detections", "device"}.
  """
  loaded = tf.saved_model.load(export_dir)
  meta = loaded.signatures[SIGNATURE_METADATA]()
  dims = json.loads(meta["feature_dims"].numpy().decode())
  rng = np.random.default_rng(seed)
  inputs = {s: tf.constant(rng.random((num_segments, d), dtype=np.float32)) for s, d in dims.items()}
  result = {"num_segments": int(num_segments), "repeats": int(repeats),
            "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU"}
  for name in (SIGNATURE_OUTPUTS, SIGNATURE_DETECT):
    if name not in loaded.signatures:
      continue
    fn = loaded.signatures[name]
    for _ in range(warmup):
      out = {k: v.numpy() for k, v in fn(**inputs).items()}
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      out = {k: v.numpy() for k, v in fn(**inputs).items()}
      times.append(time.perf_counter() - start)
    result[name] = _percentiles(times)
    if name == SIGNATURE_DETECT:
      result["num_detections"] = int(out["score"].shape[0])
  return result
