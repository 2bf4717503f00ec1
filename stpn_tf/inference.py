"""Runs trained models over a split and scores them: per-video outputs, detections, mAP.

The model side is TensorFlow; the post-processing and evaluation are the NumPy packages, called per video.
Layering: this module takes a task and its models (no gin parsing, no training loop); the loop
(training/trainer.py) calls it, and restoring a finished run from its directory lives above both (stpn_tf/runs.py).
"""

import os
import time
from typing import Callable, Dict, Iterator, Optional, Tuple

from absl import logging
import numpy as np
import pandas as pd
import tensorflow as tf

from stpn_tf.data import pipeline
from stpn_tf.data import schema
from stpn_tf.evaluation import attention_health
from stpn_tf.evaluation import classification
from stpn_tf.evaluation import detection
from stpn_tf.evaluation import io as eval_io
from stpn_tf.training import precision

THUMOS14_TIOU = detection.THUMOS14_TIOU_THRESHOLDS
# Model outputs that are per video ([B, ...]); every other output has time on axis 1 ([B, T, ...]). A task with
# other video-level outputs lists them all in its `video_level_outputs` attribute.
VIDEO_LEVEL_OUTPUTS = ("logits", "probabilities")


_PREDICT_FN_ATTR = "_stpn_tf_predict_fn"


def _predict_fns(models):
  """One compiled forward function per network, traced once for any video length and kept on the model, so the
  periodic evaluations of a training run reuse it instead of tracing anew."""
  fns = {}
  for name, model in models.items():
    fn = getattr(model, _PREDICT_FN_ATTR, None)
    if fn is None:
      dim = model.inputs[0].shape[-1] if isinstance(model.inputs, list) else None
      spec = {"features": tf.TensorSpec([None, None, dim], tf.float32), "mask": tf.TensorSpec([None, None])}

      def forward(inputs, model=model):   # float32 outputs whatever the model's mixed-precision policy
        return precision.to_float32(model(inputs, training=False))

      fn = tf.function(forward, input_signature=[spec]) if dim else tf.function(forward)
      object.__setattr__(model, _PREDICT_FN_ATTR, fn)   # not tracked by Keras (not a layer or variable)
    fns[name] = fn
  return fns


def predict_videos(task, models, data_dir: str, split: str, batch_size: int = 8,
                   holdout: Optional[pipeline.Holdout] = None
                   ) -> Iterator[Tuple[Dict, Dict[str, Dict[str, np.ndarray]]]]:
  """Yields (video info, {network: {output name: array for this video only}}) for every video of a split
  (with a holdout: only the split's held-out validation videos).

  Video info: video_id, labels [C] multi-hot, duration, num_segments (length of the evaluated time axis, i.e. of
  the outputs: the video's T, or the test-time sampler's count, see pipeline.make_eval_dataset),
  video_num_segments (the video's T), feature_rate (positions per second of the evaluated axis: the manifest's
  rate times num_segments / video_num_segments, so that `task.detect(outputs, info["feature_rate"])` maps
  proposals back to seconds of the video), segments [S, 2] s, segment_labels [S], segment_l1_mass {stream:
  [num_segments]} (each evaluated position's L1 feature norm; attention_health.py correlates the attention with it).
  """
  fns = _predict_fns(models)
  video_level = getattr(task, "video_level_outputs", VIDEO_LEVEL_OUTPUTS)
  rate = schema.read_manifest(data_dir).feature_rate
  ds = pipeline.make_eval_dataset(data_dir, split, batch_size=batch_size, streams=task.streams, holdout=holdout)
  for batch in _naming_corrupt_shards(ds, data_dir, split):
    outputs = {name: {k: v.numpy() for k, v in fns[name](task.network_inputs(name, batch)).items()}
               for name in models}
    num_segments = batch["num_segments"].numpy()
    # Each evaluated position's L1 feature mass per stream [B, T] (attention_health: drift with the mass).
    mass = {s: np.abs(batch[s].numpy()).sum(axis=-1, dtype=np.float64) for s in task.streams if s in batch}
    for i, length in enumerate(batch["num_positions"].numpy()):
      keep = batch["segment_labels"][i].numpy() >= 0
      info = {"video_id": batch["video_id"][i].numpy().decode("utf-8"), "labels": batch["labels"][i].numpy(),
              "duration": float(batch["duration"][i]), "num_segments": int(length),
              "video_num_segments": int(num_segments[i]),
              "feature_rate": rate * int(length) / max(int(num_segments[i]), 1),
              "segments": batch["segments"][i].numpy()[keep], "segment_labels":
              batch["segment_labels"][i].numpy()[keep],
              "segment_l1_mass": {s: m[i, :length] for s, m in mass.items()}}
      per_video = {}
      for name, out in outputs.items():
        per_video[name] = {k: v[i] if k in video_level else v[i, :length] for k, v in out.items()}
      yield info, per_video


def _naming_corrupt_shards(ds, data_dir: str, split: str):
  iterator = iter(ds)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.DataLossError as e:   # tf.data does not say which file: find it
      from stpn_tf.data import shard_check  # pylint: disable=import-outside-toplevel
      raise shard_check.name_corrupt_shard([data_dir], split, e) from e
    yield batch


def classification_metrics(task, models, data_dir: str, split: str,
                           holdout: Optional[pipeline.Holdout] = None) -> Dict[str, float]:
  """Video-level classification mAP of the fused video-level probabilities."""
  scores, labels = [], []
  for info, outputs in predict_videos(task, models, data_dir, split, holdout=holdout):
    scores.append(task.video_probabilities(outputs))
    labels.append(info["labels"])
  return {"classification_mAP": classification.classification_map(np.stack(scores), np.stack(labels)).mAP}


def ground_truth_frame(infos, class_names) -> pd.DataFrame:
  rows = [(info["video_id"], class_names[int(c)], float(s), float(e))
          for info in infos for (s, e), c in zip(info["segments"], info["segment_labels"])]
  return pd.DataFrame(rows, columns=["video_id", "label", "t_start", "t_end"])


def predictions_frame(detections_by_video, class_names) -> pd.DataFrame:
  rows = [(vid, class_names[int(c)], float(s), float(e), float(p))
          for vid, d in detections_by_video.items()
          for s, e, c, p in zip(d.start_s, d.end_s, d.class_index, d.score)]
  return pd.DataFrame(rows, columns=["video_id", "label", "t_start", "t_end", "score"])


def evaluate_split(task, models, data_dir: str, split: str = "test", model_dir: Optional[str] = None,
                   predictions_out: Optional[str] = None, tiou_thresholds=THUMOS14_TIOU,
                   holdout: Optional[pipeline.Holdout] = None, verbose: bool = True,
                   video_callback: Optional[Callable] = None,
                   attention_thresholds: Optional[Tuple[float, float]] = None,
                   collapse_guard: Optional[attention_health.CollapseGuard] = None,
                   output_tag: Optional[str] = None) -> Dict:
  """Localizes every video of a split, writes the detections (ActivityNet JSON) and scores them.

  Returns a dict with the detection mAP per IoU, its averages and the video-level classification mAP; also
  writes them to model_dir/eval_<split>.json when model_dir is given (eval_<split>.<output_tag>.json and
  predictions_<split>.<output_tag>.json with an output_tag, e.g. a re-scoring with other post-processing
  bindings, so that the run's own files stay as they are). video_callback, when given, is called for
  every video as video_callback(info, outputs, detections, probabilities) with what `predict_videos` yields, the
  video's Detections and its video-level probabilities [C] (e.g. `visualization.report.ReportCollector`).
  The result's "attention_health" holds each network's attention statistics (evaluation/attention_health.py) with
  attention_thresholds (low, high), by default the collapse_guard's or (0.05, 0.95); with a collapse_guard,
  "collapse_warnings" holds its warnings, including those of this evaluation.
  """
  manifest = schema.read_manifest(data_dir)
  start = time.time()
  infos, detections, scores, labels = [], {}, [], []
  low, high = attention_thresholds or ((collapse_guard.low, collapse_guard.high) if collapse_guard else
                                       (attention_health.LOW, attention_health.HIGH))
  health = attention_health.AttentionHealth(attention_health.attention_networks(task), low, high)
  for info, outputs in predict_videos(task, models, data_dir, split, holdout=holdout):
    infos.append(info)
    health.update_video(info, outputs, info["feature_rate"])
    detections[info["video_id"]] = task.detect(outputs, info["feature_rate"])
    scores.append(task.video_probabilities(outputs))
    labels.append(info["labels"])
    if video_callback is not None:
      video_callback(info, outputs, detections[info["video_id"]], scores[-1])
  gt = ground_truth_frame(infos, manifest.class_names)
  preds = predictions_frame(detections, manifest.class_names)
  scored = detection.compute_detection_ap(gt, preds, tiou_thresholds)
  result = scored.to_dict()
  result["classification_mAP"] = classification.classification_map(np.stack(scores), np.stack(labels)).mAP
  result["num_videos"] = len(infos)
  result["attention_health"] = health.result()
  if collapse_guard is not None:
    collapse_guard.final_check(result["attention_health"])
    result["collapse_warnings"] = collapse_guard.report()
  result["data_dir"], result["split"] = data_dir, split   # which data these numbers are about
  suffix = f".{output_tag}" if output_tag else ""
  predictions_out = predictions_out or (os.path.join(model_dir, f"predictions_{split}{suffix}.json")
                                        if model_dir else None)
  if predictions_out:
    eval_io.write_predictions_json(
        predictions_out, {vid: d.to_activitynet(vid, manifest.class_names) for vid, d in detections.items()})
  if model_dir:
    eval_io.write_json_atomic(os.path.join(model_dir, f"eval_{split}{suffix}.json"), result, indent=1)
  table = scored.format_table(f"Localization on {split}") + \
      f"\nvideo-level classification mAP: {100 * result['classification_mAP']:.2f}"
  if health.networks:
    table += "\n" + attention_health.format_result(result["attention_health"])
  logging.info("Evaluated %d videos in %.1f s", len(infos), time.time() - start)
  if verbose:
    print(table, flush=True)
  return result
