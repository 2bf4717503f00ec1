"""Where a detector's mAP goes: a small error profile of detections against ground truth (issue 16).

mAP at one IoU says how many instances are found well enough; it does not say whether the misses are missed
instances, proposals that run across instance boundaries (merging an instance with its neighbours or its
run-up), or fragments. Real STPN on THUMOS14 falls from 52.0 mAP at IoU 0.1 to 16.9 at 0.5: poor boundaries. This
profile makes such statements measurable on any run:

  - per ground-truth instance, the best IoU of any detection of its class in its video (share of instances per
    bin: < 0.1 "missed", 0.1-0.3, 0.3-0.5, 0.5-0.7, >= 0.7);
  - per video, its `top_k` highest-scored detections, binned by their best IoU with a same-class instance;
  - for those top detections that touch a same-class instance: the ratio of their length to the length of the
    instance they overlap most (median and quartiles; > 1: too long) and the share that overlaps more than one
    instance (merges).

Inputs are the evaluator's frames (columns video_id, label, t_start, t_end [, score]), so it works on our runs'
predictions_test.json and on any ActivityNet-style detection file.
"""

from typing import Dict

import numpy as np
import pandas as pd

IOU_BINS = (0.1, 0.3, 0.5, 0.7)
BIN_NAMES = ("<0.1", "0.1-0.3", "0.3-0.5", "0.5-0.7", ">=0.7")


def _iou(segment: np.ndarray, others: np.ndarray) -> np.ndarray:
  """IoU of one [2] segment with each of [N, 2] segments (seconds)."""
  inter = np.clip(np.minimum(segment[1], others[:, 1]) - np.maximum(segment[0], others[:, 0]), 0.0, None)
  union = (segment[1] - segment[0]) + (others[:, 1] - others[:, 0]) - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _shares(values) -> Dict[str, float]:
  counts = np.bincount(np.searchsorted(IOU_BINS, np.asarray(values, float), side="right"), minlength=5)
  total = max(int(counts.sum()), 1)
  return {name: float(c) / total for name, c in zip(BIN_NAMES, counts)}


def error_profile(ground_truth: pd.DataFrame, predictions: pd.DataFrame, top_k: int = 20) -> Dict:
  """The profile described in the module docstring.

  Args:
    ground_truth: one row per instance: video_id, label, t_start, t_end.
    predictions: one row per detection: video_id, label, t_start, t_end, score.
    top_k: detections per video (by score) in the second and third parts.

  Returns:
    {"num_instances", "instance_best_iou": {bin: share}, "num_top_detections", "top_detection_iou": {bin: share},
     "length_ratio": {"p25", "median", "p75"} (None without any touching detection), "merge_share"}.
  """
  gt_groups = {key: g[["t_start", "t_end"]].to_numpy(float) for key, g in ground_truth.groupby(["video_id", "label"])}
  pred_groups = {key: g[["t_start", "t_end"]].to_numpy(float) for key, g in predictions.groupby(["video_id", "label"])}
  best = []
  for key, segments in gt_groups.items():
    candidates = pred_groups.get(key)
    for segment in segments:
      best.append(float(_iou(segment, candidates).max()) if candidates is not None and len(candidates) else 0.0)
  top_iou, ratios, merges = [], [], []
  for _, video in predictions.groupby("video_id"):
    for row in video.nlargest(top_k, "score").itertuples(index=False):
      segments = gt_groups.get((row.video_id, row.label))
      if segments is None or not len(segments):
        top_iou.append(0.0)
        continue
      segment = np.array([row.t_start, row.t_end], float)
      ious = _iou(segment, segments)
      top_iou.append(float(ious.max()))
      overlap = np.minimum(segment[1], segments[:, 1]) - np.maximum(segment[0], segments[:, 0])
      if (overlap > 0).any():
        j = int(np.argmax(overlap))
        ratios.append((segment[1] - segment[0]) / max(segments[j, 1] - segments[j, 0], 1e-12))
        merges.append(int((overlap > 0).sum()) > 1)
  length_ratio = None
  if ratios:
    p25, median, p75 = np.percentile(ratios, [25, 50, 75])
    length_ratio = {"p25": float(p25), "median": float(median), "p75": float(p75)}
  return {"num_instances": len(best), "instance_best_iou": _shares(best), "num_top_detections": len(top_iou),
          "top_detection_iou": _shares(top_iou), "length_ratio": length_ratio,
          "merge_share": float(np.mean(merges)) if merges else None}


def format_profile(profile: Dict) -> str:
  """A few readable lines."""
  pct = lambda shares: "  ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items())
  lines = [f"{profile['num_instances']} instances, best same-class IoU: {pct(profile['instance_best_iou'])}",
           f"{profile['num_top_detections']} top detections, best IoU with a same-class instance: "
           f"{pct(profile['top_detection_iou'])}"]
  if profile["length_ratio"]:
    r = profile["length_ratio"]
    lines.append(f"length / overlapped instance's length: median {r['median']:.2f} (quartiles {r['p25']:.2f}-"
                 f"{r['p75']:.2f}); overlapping more than one instance: {100 * profile['merge_share']:.0f}%")
  return "\n".join(lines)
