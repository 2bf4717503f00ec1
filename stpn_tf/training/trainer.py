"""The training loop as a library: strategy-aware steps, checkpoints, summaries, progress and final evaluation.

A *task* (e.g. stpn_tf.models.stpn.STPN) says which networks to build, what each reads from a batch, and its
losses. Every network gets its own optimizer (STPN trains its RGB and flow networks separately, section 3.3),
and all networks step together on the same batch in one compiled function.
"""

import contextlib
import os
import time
from typing import Dict, Optional, Sequence

from absl import logging
import gin
import keras
import tensorflow as tf

from stpn_tf import inference
from stpn_tf import visualization
from stpn_tf.data import pipeline
from stpn_tf.data import schema
from stpn_tf.data import shard_check
from stpn_tf.evaluation import attention_health
from stpn_tf.training import bindings
from stpn_tf.training import distribute
from stpn_tf.training import model_dir as model_dir_lib
from stpn_tf.training import precision as precision_lib
from stpn_tf.training.optimizers import make_optimizer  # (gin: make_optimizer.*)
from stpn_tf.visualization import summaries

RUN_INFO = model_dir_lib.RUN_INFO
ModelDirError = model_dir_lib.ModelDirError
# The NumPy collapse guard stays free of gin; its arguments are bound here as `collapse_guard.<arg>` (patience,
# low, high, max_share, enabled).
collapse_guard = gin.external_configurable(attention_health.CollapseGuard, "collapse_guard")
_ATTENTION_SUMS = ("sum", "below", "above", "count")


def _check_model_dir(model_dir: str, run_info: Dict) -> None:
  """Creates model_dir, checks it is writable and that it does not hold a different model's checkpoints."""
  try:
    tf.io.gfile.makedirs(model_dir)
    probe = os.path.join(model_dir, ".write_probe")
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("ok")
    tf.io.gfile.remove(probe)
  except (OSError, tf.errors.OpError) as e:
    raise ModelDirError(f"model directory {model_dir} is not writable: {e}") from e
  path = os.path.join(model_dir, RUN_INFO)
  existing = model_dir_lib.read_json(path, "which model this directory holds")
  if existing is not None:
    if existing != run_info:
      raise ModelDirError(
          f"{model_dir} holds checkpoints of another model ({existing}); this run is {run_info}. "
          "Use another --model_dir (nothing was overwritten).")
  elif tf.train.latest_checkpoint(model_dir):
    raise ModelDirError(f"{model_dir} holds checkpoints with no {RUN_INFO}; refusing to overwrite them")
  else:
    model_dir_lib.write_json_atomic(path, run_info)


class Trainer:
  """Builds models and optimizers under a strategy, and runs compiled training steps."""

  def __init__(self, task, manifest: schema.Manifest, strategy: tf.distribute.Strategy,
               global_batch_size: int, jit_compile: bool = True, precision: str = "float32"):
    self.task = task
    self.precision = precision_lib.check(precision)
    self.strategy = strategy
    self.global_batch_size = global_batch_size
    self.jit_compile = jit_compile
    with strategy.scope():
      with precision_lib.policy_scope(precision):   # layers keep the policy they are built under
        self.models = task.build_models(manifest.num_classes, manifest.feature_dims)
      self.optimizers = {name: precision_lib.wrap_optimizer(make_optimizer(), precision) for name in self.models}
      for name, model in self.models.items():
        self.optimizers[name].build(model.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    self.collapse_guard = collapse_guard()
    self.attention_networks = attention_health.attention_networks(task)
    self.last_attention_statistics = {}   # {network: {mean, share_below, share_above}} of the latest batch
    self._replica_step = tf.function(self._replica_step_fn, jit_compile=jit_compile)
    self._train_step = tf.function(self._distributed_step)

  def checkpoint(self) -> tf.train.Checkpoint:
    objects = {"step": self.step}
    for name in self.models:
      objects[f"{name}_model"] = self.models[name]
      objects[f"{name}_optimizer"] = self.optimizers[name]
      # The state of the model's seed generators (dropout masks): Keras does not track it for tf.train.Checkpoint,
      # and without it a resumed run draws the masks of steps 0, 1, ... again.
      weights = {id(v) for v in self.models[name].weights}
      rng = [v for v in self.models[name].variables if id(v) not in weights]
      if rng:
        objects[f"{name}_rng"] = rng
    return tf.train.Checkpoint(**objects)

  def _replica_step_fn(self, batch):
    logs = {}
    for name, model in self.models.items():
      with tf.GradientTape() as tape:
        outputs = precision_lib.to_float32(model(self.task.network_inputs(name, batch), training=True))
        losses = self.task.losses(name, outputs, batch)               # per-example [B_replica] terms
        # Dividing by the *global* batch size (not the replica's) makes the sum of the replicas' gradients
        # equal the gradient of the mean loss over the global batch, whatever the number of replicas.
        loss = tf.nn.compute_average_loss(losses["total"], global_batch_size=self.global_batch_size)
        loss = precision_lib.scale_loss(self.optimizers[name], loss)   # float16 only; apply_gradients unscales
      variables = model.trainable_variables
      grads = tape.gradient(loss, variables)
      self.optimizers[name].apply_gradients(zip(grads, variables))
      for key, value in losses.items():
        logs[f"{name}/loss_{key}"] = tf.nn.compute_average_loss(value, global_batch_size=self.global_batch_size)
      if name in self.attention_networks and "attention" in outputs:
        logs.update(_attention_sums(name, outputs["attention"], batch["mask"], self.collapse_guard.low,
                                    self.collapse_guard.high))
    return logs

  def _distributed_step(self, iterator, num_steps):
    logs = None
    for _ in tf.range(num_steps):
      batch = next(iterator)
      # Video ids (strings) are not needed by the step and XLA cannot take them.
      batch = {k: v for k, v in batch.items() if k != "video_id"}
      per_replica = self.strategy.run(self._replica_step, args=(batch,))
      logs = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
      self.step.assign_add(1)
    return logs

  def train_steps(self, iterator, num_steps: int) -> Dict[str, float]:
    logs = self._train_step(iterator, tf.constant(num_steps, tf.int64))
    logs = {k: float(v) for k, v in logs.items()}
    self.last_attention_statistics = _attention_statistics(logs, self.attention_networks, self.collapse_guard)
    return logs


def _attention_sums(name: str, attention, mask, low: float, high: float) -> Dict[str, tf.Tensor]:
  """Sums over the real segments of the replica's batch: attention, segments below low / above high, segments.
  The step sums them over replicas; `_attention_statistics` divides (a few reductions of [B, T]: cheap)."""
  attention = tf.cast(attention, tf.float32)
  mask = tf.cast(mask, tf.float32)
  sums = (tf.reduce_sum(attention * mask), tf.reduce_sum(tf.cast(attention < low, tf.float32) * mask),
          tf.reduce_sum(tf.cast(attention > high, tf.float32) * mask), tf.reduce_sum(mask))
  return {f"{name}/attention_{key}": value for key, value in zip(_ATTENTION_SUMS, sums)}


def _attention_statistics(logs: Dict[str, float], networks, guard) -> Dict[str, Dict[str, float]]:
  """Replaces the attention sums in logs by {network}/attention_mean, _below_<low>, _above_<high> (over the real
  segments of the last batch) and returns them per network for the collapse guard."""
  out = {}
  for name in networks:
    if f"{name}/attention_sum" not in logs:   # a network without an "attention" output
      continue
    out[name] = attention_health.statistics_from_sums(*(logs.pop(f"{name}/attention_{k}") for k in _ATTENTION_SUMS))
    logs[f"{name}/attention_mean"] = out[name]["mean"]
    logs[f"{name}/attention_below_{guard.low:g}"] = out[name]["share_below"]
    logs[f"{name}/attention_above_{guard.high:g}"] = out[name]["share_above"]
  return out


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@gin.configurable(denylist=["model_dir", "data_dir", "num_steps", "strategy"])
def train_eval(model_dir: str, data_dir: str, num_steps: Optional[int] = None,
               strategy: Optional[tf.distribute.Strategy] = None,
               task=gin.REQUIRED,
               default_num_steps: int = 2000,
               batch_size: int = 32,
               steps_per_loop: int = 10,
               checkpoint_every: int = 200,
               eval_every: int = 500,
               keep_checkpoints: int = 3,
               jit_compile: bool = True,
               final_evaluation: bool = True,
               extra_train_dirs: Sequence[str] = (),
               checkpoint_input: bool = True,
               seed: int = 0,
               deterministic: bool = True,
               validation_fraction: float = 0.0,
               cache_train_split: bool = True,
               precision: str = "float32",
               eval_tiou_thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> Dict:
  """Trains `task` on data_dir's "train" split, checkpointing into model_dir, then evaluates on "test".

  Resumes from the last checkpoint in model_dir (the step count continues). Returns the final metrics.

  Args:
    model_dir: checkpoints, summaries, the operative gin config and the evaluation results go here.
    data_dir: a dataset directory (schema.py).
    num_steps: total training steps (flag); None uses default_num_steps (gin); 0 trains no step: the last
      checkpoint is only evaluated.
    strategy: a tf.distribute strategy; None = the default strategy.
    task: the model task, e.g. @STPN().
    default_num_steps: steps when the flag is not given.
    batch_size: global batch size (videos per step, over all replicas).
    steps_per_loop: steps run inside one compiled call between progress lines.
    checkpoint_every: steps between checkpoints.
    eval_every: steps between evaluations on the validation videos (TensorBoard only; never used to choose a
      checkpoint). Needs validation_fraction > 0: training never looks at the test split.
    keep_checkpoints: checkpoints kept by the CheckpointManager.
    jit_compile: compile the per-replica step with XLA.
    final_evaluation: localize and score the test split at the end.
    extra_train_dirs: more datasets with the same class list whose "train" split is mixed into training
      (e.g. the extra weakly-tagged videos of Nguyen et al. 2019, "Ours + MV").
    checkpoint_input: save the input pipeline's position (the tf.data iterator) with every checkpoint, so that a
      resumed run reads the same batches as an uninterrupted one and ends with the same weights. The iterator's
      state holds its shuffle and prefetch buffers: small with cache_train_split (the buffer holds indices), up to
      make_train_dataset.shuffle_buffer serialized videos per checkpoint when the split is streamed. Only with the
      default strategy: tf.distribute's distributed iterators cannot be saved, so other strategies restart the
      input stream on resume (logged).
    seed: the one seed of a run: Python, NumPy, TensorFlow and Keras generators, the input pipeline's file
      order, shuffling and sampling, and which training videos are held out for validation.
    deterministic: fixed element order in the input pipeline and TensorFlow's op determinism, so two runs with
      the same seed on the same machine give identical weights and metrics (costs a little input throughput).
    validation_fraction: share of the "train" split held out (by a seeded hash of the video id) for the
      periodic evaluation; those videos are never trained on. 0 = train on every video, no periodic evaluation.
    cache_train_split: decode the training split once into memory, so that each epoch only samples and pads
      (pipeline.DecodedSplit: the same batches as streaming; falls back to streaming, with a log line, when
      it would exceed `make_train_dataset.cache_budget_mb`).
    precision: 'float32', 'mixed_bfloat16' or 'mixed_float16' (training/precision.py): the Keras mixed-precision
      policy the models are built under (losses, attention sigmoids and normalizations stay float32; float16
      scales the loss). The process-wide policy is restored when the models are built.
    eval_tiou_thresholds: tIoU thresholds of the final detection evaluation (THUMOS14's 0.1:0.1:0.9 by default;
      ActivityNet's 0.5:0.05:0.95 in the ActivityNet configs).
  """
  strategy = strategy or tf.distribute.get_strategy()
  bindings.check_train_eval_numbers(locals())
  num_steps = int(default_num_steps if num_steps is None else num_steps)
  if num_steps == 0 and not tf.train.latest_checkpoint(model_dir):
    raise ModelDirError(f"--num_steps=0 trains no step (it only evaluates the last checkpoint), and {model_dir} "
                        "holds no checkpoint")
  manifest = schema.read_manifest(data_dir)
  for stream in task.streams:
    if stream not in manifest.feature_dims:
      raise schema.DataFormatError(f"{data_dir}: the dataset has no {stream!r} stream; it has "
                                   f"{sorted(manifest.feature_dims)}")
  if manifest.splits.get("train", {}).get("num_videos", 0) == 0:
    raise schema.DataFormatError(f"{data_dir}: the 'train' split is empty")
  run_info = {"task": task.name, "networks": sorted(task.networks), "num_classes": manifest.num_classes,
              "feature_dims": {s: manifest.feature_dims[s] for s in task.streams}}
  _check_model_dir(model_dir, run_info)
  chief = distribute.is_chief(strategy)
  determinism_was_on = _op_determinism_enabled()
  lock = model_dir_lib.exclusive_lock(model_dir) if chief else contextlib.nullcontext()
  lock.__enter__()   # released in the finally below: one writer per model directory
  try:
    if chief:
      model_dir_lib.clean_stale_temporaries(model_dir)
      model_dir_lib.record_data(model_dir, data_dir, manifest, extra_train_dirs)
      if final_evaluation and "test" in manifest.splits:
        shard_check.check_split(data_dir, "test")   # now, not after the training (a CRC pass over the shards)
    set_seed(seed, deterministic)
    holdout = pipeline.Holdout(validation_fraction, seed) if validation_fraction > 0 else None

    trainer = Trainer(task, manifest, strategy, batch_size, jit_compile=jit_compile, precision=precision)
    checkpoint = trainer.checkpoint()
    manager = tf.train.CheckpointManager(checkpoint, distribute.worker_dir(model_dir, strategy),
                                         max_to_keep=keep_checkpoints)
    latest = tf.train.latest_checkpoint(model_dir)   # every worker resumes from the chief's checkpoint
    if latest:
      try:
        checkpoint.restore(latest).assert_existing_objects_matched()
      except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise ModelDirError(f"{model_dir}: checkpoint {latest} does not match this model "
                            f"({e}). Use another --model_dir.") from e
      logging.info("Resumed from %s at step %d", latest, int(trainer.step.numpy()))
    if chief:
      _write_text_atomic(os.path.join(model_dir, "config.gin"), gin.config_str())

    def dataset_fn(input_context):
      return pipeline.make_train_dataset([data_dir, *extra_train_dirs], batch_size=batch_size,
                                         streams=task.streams, seed=seed, deterministic=deterministic,
                                         holdout=holdout, input_context=input_context,
                                         cache_decoded=cache_train_split)

    try:   # the decode-once cache reads the whole training split here
      dataset = strategy.distribute_datasets_from_function(dataset_fn)
    except tf.errors.DataLossError as e:   # tf.data does not say which file: find it
      raise shard_check.name_corrupt_shard([data_dir, *extra_train_dirs], "train", e) from e
    iterator = iter(dataset)
    if checkpoint_input:
      _checkpoint_input(checkpoint, iterator, bool(latest))
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "train")) if chief else \
        tf.summary.create_noop_writer()
    eval_writer = tf.summary.create_file_writer(os.path.join(model_dir, "validation")) if chief and holdout else \
        tf.summary.create_noop_writer()
    if holdout is None and eval_every:
      logging.info("No periodic evaluation: train_eval.validation_fraction is 0 (the test split is never used "
                   "during training).")
    step = int(trainer.step.numpy())  # a MirroredVariable under a strategy: .numpy() reads it
    if step < num_steps:
      logging.info("Training %s for %d steps (from step %d), batch %d, model_dir %s", task.name, num_steps, step,
                   batch_size, model_dir)
    start_time, start_step = time.time(), step
    while step < num_steps:
      n = min(steps_per_loop, num_steps - step, checkpoint_every - step % checkpoint_every)
      try:
        logs = trainer.train_steps(iterator, n)
      except tf.errors.DataLossError as e:   # tf.data does not say which file: find it
        raise shard_check.name_corrupt_shard([data_dir, *extra_train_dirs], "train", e) from e
      step = int(trainer.step.numpy())  # a MirroredVariable under a strategy: .numpy() reads it
      with writer.as_default(step=step):
        for key, value in logs.items():
          tf.summary.scalar(key, value)
      rate = (step - start_step) / max(time.time() - start_time, 1e-9)
      total = sum(v for k, v in logs.items() if k.endswith("/loss_total"))
      for warning in trainer.collapse_guard.update(step, trainer.last_attention_statistics):
        logging.warning("step %d: %s\n%s", step, warning.message, trainer.collapse_guard.advice())
      collapsed = trainer.collapse_guard.collapsed_networks()
      logging.info("step %d/%d  %.2f steps/s (%.1f videos/s)  loss %.4f  ETA %s%s", step, num_steps, rate,
                   rate * batch_size, total, _format_eta((num_steps - step) / max(rate, 1e-9)),
                   f"  ATTENTION COLLAPSED: {', '.join(collapsed)}" if collapsed else "")
      if step % checkpoint_every == 0 or step == num_steps:
        manager.save(checkpoint_number=step)
        if chief and (step == checkpoint_every or start_step == 0 and step <= checkpoint_every):
          _write_text_atomic(os.path.join(model_dir, "operative_config.gin"), gin.operative_config_str())
      if chief and holdout and eval_every and (step % eval_every == 0 or step == num_steps):
        _evaluate_validation(task, trainer.models, data_dir, holdout, eval_writer, step,
                             (trainer.collapse_guard.low, trainer.collapse_guard.high))
    writer.flush()
    results = {"step": step}
    if chief and final_evaluation and "test" in manifest.splits:
      # Reported, never used to choose anything: the last checkpoint is the result.
      results.update(inference.evaluate_split(task, trainer.models, data_dir, "test", model_dir=model_dir,
                                              tiou_thresholds=tuple(eval_tiou_thresholds),
                                              collapse_guard=trainer.collapse_guard))
      test_writer = tf.summary.create_file_writer(os.path.join(model_dir, "test"))
      _attention_health_summaries(test_writer, step, results["attention_health"], "test")
      test_writer.flush()
    results["collapse_warnings"] = trainer.collapse_guard.report()
    if trainer.collapse_guard.warnings:   # the final summary, after the evaluation table
      print(trainer.collapse_guard.summary(), flush=True)
    if chief:  # rewritten now that the post-processor's bindings (e.g. stpn_detect.*) have been used too
      _write_text_atomic(os.path.join(model_dir, "operative_config.gin"), gin.operative_config_str())
    return results

  finally:  # op determinism is process-wide: leave the process as it was (e.g. for the next test)
    if deterministic and not determinism_was_on:
      _disable_op_determinism()
    lock.__exit__(None, None, None)


def _checkpoint_input(checkpoint: tf.train.Checkpoint, iterator, resuming: bool) -> None:
  """Adds the input iterator to the checkpoint; when resuming, the restore already requested applies to it now
  (deferred restoration), so the stream continues where the checkpointed run was."""
  if not isinstance(iterator, tf.__internal__.tracking.Trackable):
    logging.warning("The input position is not checkpointed (a %s cannot be saved): a resumed run restarts the "
                    "input stream and is not identical to an uninterrupted one", type(iterator).__name__)
    return
  checkpoint.input_iterator = iterator
  if resuming:
    logging.info("Resuming the input stream from the checkpoint (checkpoints without it restart the stream)")


def set_seed(seed: int, deterministic: bool = True) -> None:
  """Seeds Python's, NumPy's, TensorFlow's and Keras' generators; with deterministic, TensorFlow's op
  determinism too (every op then runs a deterministic kernel or raises, on CPU and GPU alike)."""
  keras.utils.set_random_seed(int(seed))
  if deterministic:
    tf.config.experimental.enable_op_determinism()


def _op_determinism_enabled() -> bool:
  from tensorflow.python.framework import config as tf_config  # pylint: disable=import-outside-toplevel
  return tf_config.is_op_determinism_enabled()   # not exported under tf.config in TensorFlow 2.17


def _disable_op_determinism() -> None:
  from tensorflow.python.framework import config as tf_config  # pylint: disable=import-outside-toplevel
  tf_config.disable_op_determinism()


def _write_text_atomic(path: str, text: str) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def _evaluate_validation(task, models, data_dir: str, holdout: pipeline.Holdout, writer, step: int,
                         attention_thresholds=None) -> Dict:
  """Classification and detection mAP and the attention health of the held-out training videos, to TensorBoard
  (monitoring only)."""
  try:
    metrics = inference.evaluate_split(task, models, data_dir, "train", holdout=holdout, verbose=False,
                                       attention_thresholds=attention_thresholds)
  except ValueError as e:  # e.g. no held-out video has an annotated instance
    logging.warning("step %d: validation evaluation skipped: %s", step, e)
    return {}
  with writer.as_default(step=step):
    tf.summary.scalar("validation/classification_mAP", metrics["classification_mAP"])
    for key, value in metrics.items():
      if key.startswith("average_mAP") and isinstance(value, float):
        tf.summary.scalar(f"validation/detection_{key}", value)
  _attention_health_summaries(writer, step, metrics["attention_health"], "validation")
  aucs = ", ".join(f"{n} {v['median_video_auc']:.3f}" for n, v in metrics["attention_health"]["networks"].items()
                   if v["median_video_auc"] is not None)
  logging.info("step %d: validation (%d held-out training videos): classification mAP %.4f, detection avg mAP "
               "%.4f%s", step, metrics["num_videos"], metrics["classification_mAP"], metrics.get("average_mAP", 0.0),
               f", median attention AUC {aucs}" if aucs else "")
  _validation_images(task, models, data_dir, holdout, writer, step)
  return metrics


def _attention_health_summaries(writer, step: int, health: Dict, prefix: str) -> None:
  """An evaluation's attention health (attention_health.AttentionHealth.result()) as TensorBoard scalars."""
  names = {"mean": "attention_mean", "share_below": f"attention_below_{health['low']:g}",
           "share_above": f"attention_above_{health['high']:g}", "median_video_auc": "attention_median_video_auc",
           "median_mass_correlation": "attention_mass_rank_correlation",
           "median_video_auc_core": "attention_median_video_auc_core",
           "median_video_auc_ends": "attention_median_video_auc_ends"}
  with writer.as_default(step=step):
    for network, values in health["networks"].items():
      for key, tag in names.items():
        if values.get(key) is not None:
          tf.summary.scalar(f"{prefix}/{network}/{tag}", values[key])


@gin.configurable("validation_images", denylist=["task", "models", "data_dir", "holdout", "writer", "step"])
def _validation_images(task, models, data_dir, holdout, writer, step, num_videos: int = 3) -> None:
  """Plots of a few validation videos (ground truth, attention, T-CAM, detections) as TensorBoard images; skipped
  quietly without matplotlib (the optional `viz` extra)."""
  if num_videos <= 0 or not visualization.matplotlib_available():
    return
  images = summaries.summary_images(task, models, data_dir, "train", num_videos=num_videos, holdout=holdout)
  with writer.as_default(step=step):
    for video_id, image in images:
      tf.summary.image(f"validation_videos/{video_id}", image[None])
