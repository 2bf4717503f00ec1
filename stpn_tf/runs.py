"""A finished training run's directory: rebuild and restore its models, and score them again, possibly under other
post-processing bindings (re-scoring without retraining).

Layering (nothing below imports anything above):
  data, layers, models, postprocess, evaluation      the pieces (gin configurables are defined here and in trainer)
  inference, visualization.summaries                 a task's models over a split: outputs, detections, mAP
  training.trainer                                   the loop (calls inference for its evaluations)
  config                                             gin plumbing of the binaries: search path, registration, parsing
  runs (this module)                                 a run directory: config.gin + checkpoint -> models -> scores
  train, evaluate, visualize, export                 the binaries
"""

import hashlib
import itertools
import os
from typing import Dict, List, Optional, Sequence, Tuple

import gin
import tensorflow as tf

from stpn_tf import config
from stpn_tf import inference
from stpn_tf.data import pipeline
from stpn_tf.data import schema
from stpn_tf.evaluation import detection
from stpn_tf.training import model_dir as model_dir_lib
from stpn_tf.training import trainer

RUN_CONFIG = "config.gin"


def restore_models(model_dir: str, data_dir: str, gin_files: Sequence[str] = (), gin_params: Sequence[str] = ()):
  """Rebuilds the task of a training run from model_dir/config.gin and restores its last checkpoint.

  gin_files / gin_params are parsed after the run's config.gin, so they override it (e.g. post-processing
  bindings such as `stpn_detect.tcam_threshold = 0.05`); the network must still match the checkpoint.
  Leaves the resulting gin configuration active (the post-processors read it). Returns (task, models).
  """
  ckpt = tf.train.latest_checkpoint(model_dir)
  if not ckpt:
    raise trainer.ModelDirError(f"{model_dir} holds no checkpoint to evaluate")
  model_dir_lib.resolve_data_dir(model_dir, data_dir)   # refuses data with other classes than the run's
  gin.clear_config()
  config.parse_gin([os.path.join(model_dir, RUN_CONFIG), *gin_files], list(gin_params))
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  manifest = schema.read_manifest(data_dir)
  models = task.build_models(manifest.num_classes, manifest.feature_dims)
  objects = {f"{name}_model": model for name, model in models.items()}
  try:
    tf.train.Checkpoint(**objects).restore(ckpt).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError) as e:
    raise trainer.ModelDirError(f"{model_dir}: checkpoint {ckpt} does not match the model built from its "
                                f"{RUN_CONFIG} plus {list(gin_files) + list(gin_params)}: {e}") from e
  return task, models


def rescoring_tag(gin_files: Sequence[str] = (), gin_params: Sequence[str] = ()) -> str:
  """A short stable name for a set of extra bindings: 'rescore-' + 8 hex digits of their SHA-1 (the files'
  contents count, not their names)."""
  digest = hashlib.sha1()
  for path in gin_files:
    digest.update(b"file\0")
    with tf.io.gfile.GFile(config.find_gin_file(path), "rb") as f:
      digest.update(f.read())
  for param in gin_params:
    digest.update(b"param\0" + param.strip().encode("utf-8"))
  return "rescore-" + digest.hexdigest()[:8]


def _query(name: str, default):
  try:
    return gin.query_parameter(name)
  except ValueError:
    return default


def _tiou_thresholds():
  """The run's final-evaluation thresholds (train_eval.eval_tiou_thresholds, e.g. ActivityNet's), else THUMOS14's."""
  return tuple(_query("train_eval.eval_tiou_thresholds", detection.THUMOS14_TIOU_THRESHOLDS))


def _write_text_atomic(path: str, text: str) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def run_model_evaluation(model_dir: str, data_dir: Optional[str] = None, predictions_out: Optional[str] = None,
                         gin_files: Sequence[str] = (), gin_params: Sequence[str] = (),
                         output_tag: Optional[str] = None, make_video_callback=None) -> Dict:
  """`python -m stpn_tf.evaluate --model_dir=...`: restore, localize the test split, score.

  Without extra bindings the results go to the run's eval_test.json / predictions_test.json. With gin_files or
  gin_params (re-scoring), they go to eval_test.<tag>.json / predictions_test.<tag>.json and the bindings to
  rescore_test.<tag>.gin, tag = output_tag or `rescoring_tag(...)`: the run's own files are never touched.
  The detection thresholds are the run's `train_eval.eval_tiou_thresholds`. make_video_callback, when given, is
  called as make_video_callback(task, manifest) once the models are restored and returns the `video_callback` of
  `inference.evaluate_split` (e.g. the HTML report's collector).
  """
  gin_files, gin_params = list(gin_files or ()), list(gin_params or ())
  if output_tag is not None and (not output_tag or not all(c.isalnum() or c in "-_." for c in output_tag)):
    raise ValueError(f"output tag {output_tag!r} must be non-empty letters, digits, '-', '_' or '.'")
  if output_tag is None and (gin_files or gin_params):
    output_tag = rescoring_tag(gin_files, gin_params)
  # Without data_dir: the data the run trained on (model_dir/data.json); other classes than the run's are refused.
  data_dir, _ = model_dir_lib.resolve_data_dir(model_dir, data_dir)
  task, models = restore_models(model_dir, data_dir, gin_files, gin_params)
  if output_tag:
    text = "".join(f"include '{config.find_gin_file(f)}'\n" for f in gin_files) + "".join(
        f"{p}\n" for p in gin_params)
    _write_text_atomic(os.path.join(model_dir, f"rescore_test.{output_tag}.gin"),
                       f"# Re-scoring of {model_dir} on top of its {RUN_CONFIG}\n{text}")
  callback = make_video_callback(task, schema.read_manifest(data_dir)) if make_video_callback else None
  return inference.evaluate_split(task, models, data_dir, "test", model_dir=model_dir,
                                  predictions_out=predictions_out, tiou_thresholds=_tiou_thresholds(),
                                  output_tag=output_tag, video_callback=callback)


def parse_grid(specs: Sequence[str]) -> List[Tuple[str, ...]]:
  """'name.param=v1,v2' specs -> the cartesian product of gin bindings, e.g. [('a.b = 1', 'c.d = 2'), ...].
  Values are gin literals; a comma inside brackets or quotes does not split."""
  axes = []
  for spec in specs:
    if "=" not in spec:
      raise ValueError(f"grid {spec!r} must look like 'stpn_detect.tcam_threshold=0.05,0.1'")
    name, values = (part.strip() for part in spec.split("=", 1))
    items, depth, quote, current = [], 0, None, ""
    for char in values:
      if quote:
        quote = None if char == quote else quote
      elif char in "'\"":
        quote = char
      elif char in "([{":
        depth += 1
      elif char in ")]}":
        depth -= 1
      elif char == "," and depth == 0:
        items.append(current.strip())
        current = ""
        continue
      current += char
    items.append(current.strip())
    if not name or not all(items):
      raise ValueError(f"grid {spec!r}: empty name or value")
    axes.append([f"{name} = {v}" for v in items])
  return [tuple(c) for c in itertools.product(*axes)] if axes else []


def select_postprocess(model_dir: str, data_dir: str, grid: Sequence[Sequence[str]],
                       validation_fraction: Optional[float] = None, metric: str = "average_mAP") -> Dict:
  """Scores every candidate set of post-processing bindings on the run's validation holdout of the *training*
  split and returns them with the best one. The test split is never read.

  The holdout is the run's own (`train_eval.validation_fraction` and `train_eval.seed` of its config.gin), whose
  videos the run never trained on. validation_fraction overrides it (e.g. for a run trained on every video: then
  the chosen values are fitted on videos the network has seen, which the result records).

  Returns {"metric", "holdout": {...}, "candidates": [{"bindings", metric, "classification_mAP", ...}],
  "best": {...}}; ties keep the first candidate in grid order. Leaves the last candidate's bindings in gin.
  """
  task, models = restore_models(model_dir, data_dir)
  trained_fraction = float(_query("train_eval.validation_fraction", 0.0))
  seed = int(_query("train_eval.seed", 0))
  fraction = trained_fraction if validation_fraction is None else float(validation_fraction)
  if fraction <= 0:
    raise ValueError(f"{model_dir} was trained on every training video (train_eval.validation_fraction = 0): there "
                     "is no held-out validation set; retrain with train_eval.validation_fraction > 0 or pass a "
                     "validation fraction explicitly (the values are then chosen on videos the model has seen)")
  holdout = pipeline.Holdout(fraction, seed)
  manifest = schema.read_manifest(data_dir)
  predicted = list(inference.predict_videos(task, models, data_dir, "train", holdout=holdout))
  if not predicted:
    raise ValueError(f"{data_dir}: the validation holdout (fraction {fraction}, seed {seed}) of 'train' is empty")
  infos = [info for info, _ in predicted]
  gt = inference.ground_truth_frame(infos, manifest.class_names)
  thresholds = _tiou_thresholds()
  candidates = []
  for bindings in grid:
    # Each candidate is parsed on top of the run's config (and the previous candidate: every candidate binds the
    # same names, so nothing of one survives into the next). Afterwards the process holds the last candidate.
    with gin.unlock_config():
      gin.parse_config(list(bindings))
    detections = {info["video_id"]: task.detect(outputs, info["feature_rate"]) for info, outputs in predicted}
    scored = detection.compute_detection_ap(gt, inference.predictions_frame(detections, manifest.class_names),
                                            thresholds).to_dict()
    if metric not in scored:
      raise ValueError(f"unknown metric {metric!r}; the scores have {sorted(k for k in scored if 'mAP' in k)}")
    candidates.append({"bindings": list(bindings), metric: scored[metric], "mAP": scored.get("mAP"),
                       "num_predictions": scored.get("num_predictions")})
  best = max(candidates, key=lambda c: c[metric]) if candidates else None
  return {"model_dir": model_dir, "metric": metric, "tiou_thresholds": list(thresholds),
          "holdout": {"split": "train", "validation_fraction": fraction, "seed": seed, "num_videos": len(infos),
                      # Holdouts of one seed are nested (a seeded hash below a fraction): a larger fraction than the
                      # run's includes videos it trained on.
                      "includes_trained_videos": fraction > trained_fraction},
          "candidates": candidates, "best": best}
