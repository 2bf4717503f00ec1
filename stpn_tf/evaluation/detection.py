"""Temporal action detection mAP, following the ActivityNet reference protocol (NumPy only).

Protocol (a reimplementation of the ActivityNet ``Evaluation/eval_detection.py`` rules, which THUMOS14 papers use):

* tIoU of two intervals in seconds: ``|a ∩ b| / (|a| + |b| - |a ∩ b|)``; a match needs ``tIoU >= threshold``.
* Classes are the labels present in the evaluated ground truth (after the subset filter and video exclusion).
  For each class, all its predictions over all videos are ranked by ``scores.argsort()[::-1]`` (NumPy's default
  sort, exactly the reference call on the class's predictions in input order), so equal scores are ranked as the
  reference ranks them.
* For each prediction, the ground-truth instances of its class in its video are tried by descending tIoU (again
  ``argsort()[::-1]``, over the instances in input order): an instance below the threshold makes the prediction a
  false positive and ends the search; an instance already matched at this threshold is skipped; otherwise the
  prediction is a true positive and takes the instance. Each threshold has its own matching.
* AP is the all-point interpolated area: ``mprec = [0, prec, 0]``, ``mrec = [0, rec, 1]``, precision made
  monotone from the right, summed over the points where recall changes. Recall never reached adds 0. mAP is the
  mean over the evaluated classes (a class without predictions has AP 0); average mAP is the mean over thresholds.

Implementation: matching within one (class, video) pair does not depend on other pairs, so the tIoU matrix and
the per-prediction candidate order are computed once per pair, and the greedy loop advances *all* pairs one
prediction at a time, vectorized over pairs and thresholds. The Python loop length is the largest number of
overlapping predictions in one (class, video) pair, not the number of predictions.

Input treatment (see also :mod:`stpn_tf.evaluation.io`):

* Predictions whose label is not in the evaluated ground truth are dropped and counted
  (``num_predictions_unknown_label``): no evaluated class could use them. The reference raises a KeyError instead.
* Predictions for videos with no ground-truth annotation in the evaluated set (unknown videos, or videos of
  another subset) are kept as false positives, as in the reference, and counted
  (``num_predictions_without_ground_truth_video``).
* ``exclude_videos`` removes the listed videos from both ground truth and predictions before anything else.
* ``num_ground_truth_videos`` counts videos with at least one evaluated annotation (videos of the subset with an
  empty annotation list have no row and cannot affect the score). ``num_predictions`` counts the predictions that
  entered the AP computation (after exclusion and unknown-label removal).
* A pair of zero-length intervals has tIoU 0 (the reference divides by zero and counts such a pair as a match).
* Empty evaluated ground truth raises :class:`EvaluationInputError`; no predictions at all gives mAP 0.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from stpn_tf.evaluation import io as eval_io
from stpn_tf.evaluation.io import EvaluationInputError

# Thresholds are the decimal values as written (0.3, not linspace's 0.30000000000000004), so a tIoU that is
# exactly 0.3 counts as a match at 0.3.
THUMOS14_TIOU_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ACTIVITYNET_TIOU_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

# Named threshold ranges whose mean mAP papers report. Reported by `range_averages` when all are evaluated.
AVERAGE_RANGES = {
    "0.1:0.5": (0.1, 0.2, 0.3, 0.4, 0.5),
    "0.1:0.7": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    "0.3:0.7": (0.3, 0.4, 0.5, 0.6, 0.7),
    "0.5:0.95": ACTIVITYNET_TIOU_THRESHOLDS,
}

FrameLike = Union[pd.DataFrame, Mapping[str, Any], Sequence[Mapping[str, Any]]]


def interval_tiou(predictions: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
  """Pairwise temporal IoU of [start, end] intervals in seconds.

  The arithmetic is the reference's, operation for operation, so values (and hence threshold decisions and ties)
  are bit-identical: ``inter = max(min(e1, e2) - max(s1, s2), 0)``, ``union = len1 + len2 - inter``.

  Args:
    predictions: float array [N, 2] of (start, end).
    ground_truth: float array [M, 2] of (start, end).

  Returns:
    float64 array [N, M]; 0 where the union is empty (two zero-length intervals).

  Raises:
    ValueError: if an input is not [*, 2].
  """
  p = np.asarray(predictions, dtype=np.float64)
  g = np.asarray(ground_truth, dtype=np.float64)
  if p.ndim != 2 or p.shape[1] != 2 or g.ndim != 2 or g.shape[1] != 2:
    raise ValueError(f"intervals must be [N, 2] and [M, 2], got {p.shape} and {g.shape}")
  inter = np.clip(np.minimum(p[:, None, 1], g[None, :, 1]) - np.maximum(p[:, None, 0], g[None, :, 0]), 0, None)
  union = (g[:, 1] - g[:, 0])[None, :] + (p[:, 1] - p[:, 0])[:, None] - inter  # [N, M]
  return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
  """All-point interpolated average precision (ActivityNet / VOC2010+ style).

  ``mprec = [0, precision, 0]`` and ``mrec = [0, recall, 1]``; precision is replaced by its maximum to the right
  (monotone envelope), and AP sums ``(mrec[i] - mrec[i-1]) * mprec[i]`` over the indices where recall changes.
  Recall never reached contributes 0 (the appended precision is 0).

  Args:
    precision: float array [..., N], precision after each ranked prediction.
    recall: float array [..., N], recall after each ranked prediction (non-decreasing).

  Returns:
    float64 array [...] of AP values.
  """
  precision = np.asarray(precision, dtype=np.float64)
  recall = np.asarray(recall, dtype=np.float64)
  lead = precision.shape[:-1]
  zeros = np.zeros(lead + (1,))
  mprec = np.concatenate([zeros, precision, zeros], axis=-1)  # [..., N + 2]
  mrec = np.concatenate([zeros, recall, np.ones(lead + (1,))], axis=-1)  # [..., N + 2]
  mprec = np.flip(np.maximum.accumulate(np.flip(mprec, -1), axis=-1), -1)
  step = np.diff(mrec, axis=-1)  # [..., N + 1]
  # Only where recall changes, as in the reference (a zero step would add 0 anyway; this keeps the summands equal).
  return np.sum(np.where(step != 0, step * mprec[..., 1:], 0.0), axis=-1)


@dataclasses.dataclass(frozen=True)
class DetectionResult:
  """Detection AP table and the counts describing what was evaluated.

  Attributes:
    tiou_thresholds: float64 [T].
    labels: the evaluated classes [C] (sorted).
    ap: float64 [T, C], AP of each class at each threshold, fractions in [0, 1].
    num_instances_per_class: int64 [C], ground-truth instances of each class.
    num_ground_truth_videos: videos with at least one evaluated annotation.
    num_ground_truth_instances: evaluated annotations.
    num_predictions: predictions scored (after exclusion and unknown-label removal).
    num_predictions_unknown_label: predictions dropped because their label is not in the ground truth.
    num_predictions_without_ground_truth_video: scored predictions in videos without any annotation (all FP).
    num_excluded_videos: distinct excluded video ids found in the ground truth or the predictions.
    num_excluded_ground_truth_instances: annotations removed by the exclusion list.
    num_excluded_predictions: predictions removed by the exclusion list.
  """

  tiou_thresholds: np.ndarray
  labels: tuple
  ap: np.ndarray
  num_instances_per_class: np.ndarray
  num_ground_truth_videos: int
  num_ground_truth_instances: int
  num_predictions: int
  num_predictions_unknown_label: int = 0
  num_predictions_without_ground_truth_video: int = 0
  num_excluded_videos: int = 0
  num_excluded_ground_truth_instances: int = 0
  num_excluded_predictions: int = 0

  @property
  def mAP(self) -> np.ndarray:  # pylint: disable=invalid-name
    """float64 [T]: mean AP over classes at each threshold."""
    return self.ap.mean(axis=1)

  @property
  def average_mAP(self) -> float:  # pylint: disable=invalid-name
    """Mean of mAP over all evaluated thresholds."""
    return float(self.mAP.mean())

  def range_averages(self) -> dict:
    """Mean mAP over each named range of AVERAGE_RANGES whose thresholds were all evaluated."""
    return range_averages(self.tiou_thresholds, self.mAP)

  def to_dict(self) -> dict:
    """JSON-ready summary (fractions, not percent); the CLI's output schema."""
    out = {
        "tiou_thresholds": [float(t) for t in self.tiou_thresholds],
        "mAP": [float(m) for m in self.mAP],
        "average_mAP": self.average_mAP,
        "num_ground_truth_videos": int(self.num_ground_truth_videos),
        "num_ground_truth_instances": int(self.num_ground_truth_instances),
        "num_predictions": int(self.num_predictions),
    }
    for name, value in self.range_averages().items():
      out[f"average_mAP_{name}"] = value
    out.update({
        "num_classes": len(self.labels),
        "num_predictions_unknown_label": int(self.num_predictions_unknown_label),
        "num_predictions_without_ground_truth_video": int(self.num_predictions_without_ground_truth_video),
        "num_excluded_videos": int(self.num_excluded_videos),
        "num_excluded_ground_truth_instances": int(self.num_excluded_ground_truth_instances),
        "num_excluded_predictions": int(self.num_excluded_predictions),
        "per_class_AP": {label: [float(a) for a in self.ap[:, c]] for c, label in enumerate(self.labels)},
        "per_class_num_instances": {label: int(n) for label, n in zip(self.labels, self.num_instances_per_class)},
    })
    return out

  def format_table(self, title: str = "Temporal action detection") -> str:
    """Human-readable table, mAP in percent with 2 decimals."""
    thresholds = "".join(f"{t:>7.2f}" for t in self.tiou_thresholds)
    values = "".join(f"{100 * m:>7.2f}" for m in self.mAP)
    lines = [
        f"{title}: {self.num_ground_truth_videos} videos, {self.num_ground_truth_instances} instances, "
        f"{len(self.labels)} classes, {self.num_predictions} predictions",
        f"{'tIoU':<8}{thresholds}",
        f"{'mAP (%)':<8}{values}",
        f"average mAP ({self.tiou_thresholds.min():.2f}:{self.tiou_thresholds.max():.2f}): "
        f"{100 * self.average_mAP:.2f}",
    ]
    for name, value in self.range_averages().items():
      lines.append(f"average mAP ({name}): {100 * value:.2f}")
    dropped = []
    if self.num_predictions_unknown_label:
      dropped.append(f"{self.num_predictions_unknown_label} predictions with a label absent from the ground truth "
                     "were dropped")
    if self.num_predictions_without_ground_truth_video:
      dropped.append(f"{self.num_predictions_without_ground_truth_video} predictions are for videos without "
                     "ground truth (counted as false positives)")
    if self.num_excluded_videos:
      dropped.append(f"{self.num_excluded_videos} excluded videos removed {self.num_excluded_ground_truth_instances}"
                     f" instances and {self.num_excluded_predictions} predictions")
    lines.extend(f"note: {d}" for d in dropped)
    return "\n".join(lines)


def range_averages(tiou_thresholds: Sequence[float], map_values: Sequence[float]) -> dict:
  """Mean mAP over the named ranges of AVERAGE_RANGES (e.g. "0.1:0.5") whose thresholds are all present.

  Args:
    tiou_thresholds: float [T].
    map_values: float [T], mAP at each threshold.

  Returns:
    Dict range name -> mean mAP (float) over that range; ranges with a missing threshold are left out.
  """
  thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
  values = np.asarray(map_values, dtype=np.float64)
  out = {}
  for name, wanted in AVERAGE_RANGES.items():
    # Tolerance: thresholds may come from linspace (0.30000000000000004) or from text (0.3).
    hits = [np.flatnonzero(np.isclose(thresholds, w, rtol=0, atol=1e-6)) for w in wanted]
    if all(h.size for h in hits):
      out[name] = float(np.mean([values[h[0]] for h in hits]))
  return out


def _as_frame(data: Optional[FrameLike], columns: Sequence[str], name: str) -> pd.DataFrame:
  """Coerces input to a DataFrame with `columns`, numeric columns as float64, validated.

  Raises:
    EvaluationInputError: missing column, non-numeric or NaN value, end < start; names the first bad video.
  """
  if data is None:
    return pd.DataFrame({c: pd.Series([], dtype=object if c in ("video_id", "label") else np.float64)
                         for c in columns})
  df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
  missing = [c for c in columns if c not in df.columns]
  if missing and len(df):
    raise EvaluationInputError(f"{name}: missing columns {missing} (expected {list(columns)})")
  if missing:  # An empty frame without columns (e.g. pd.DataFrame()) is just "nothing".
    return _as_frame(None, columns, name)
  out = pd.DataFrame({"video_id": df["video_id"].astype(str).to_numpy(dtype=object),
                      "label": df["label"].to_numpy(dtype=object)})
  for c in columns:
    if c in ("video_id", "label"):
      continue
    values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values) if c == "score" else ~np.isfinite(values)
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      raise EvaluationInputError(f"{name}: video {out['video_id'].iat[i]!r}: {c} is not a valid number: "
                                 f"{df[c].iat[i]!r} ({int(bad.sum())} bad rows)")
    out[c] = values
  bad = out["t_end"].to_numpy() < out["t_start"].to_numpy()
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise EvaluationInputError(f"{name}: video {out['video_id'].iat[i]!r}: segment end {out['t_end'].iat[i]} < "
                               f"start {out['t_start'].iat[i]} ({int(bad.sum())} bad rows)")
  return out


def _match(gt_key: np.ndarray, gt_seg: np.ndarray, pred_key: np.ndarray, pred_rank: np.ndarray,
           pred_seg: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  """Greedy reference matching of predictions to ground truth, for all thresholds.

  Args:
    gt_key: int64 [G], (class, video) pair id of each instance.
    gt_seg: float64 [G, 2]. Instances are in input order (it decides tIoU ties, as in the reference).
    pred_key: int64 [P], (class, video) pair id of each prediction.
    pred_rank: int64 [P], rank of each prediction among the predictions of its class (0 = first processed).
    pred_seg: float64 [P, 2].
    thresholds: float64 [T].

  Returns:
    bool [T, P]: True where the prediction is a true positive at that threshold.
  """
  num_t, num_p, num_g = len(thresholds), len(pred_key), len(gt_key)
  tp = np.zeros((num_t, num_p), dtype=bool)
  if num_p == 0 or num_g == 0:
    return tp
  # Instances of each pair, contiguous and in input order (stable sort).
  gt_order = np.argsort(gt_key, kind="stable")  # [G]
  pair_keys, pair_first, pair_count = np.unique(gt_key[gt_order], return_index=True, return_counts=True)
  pair = np.minimum(np.searchsorted(pair_keys, pred_key), len(pair_keys) - 1)  # [P]
  # Predictions in pairs without ground truth stay false positives.
  live = np.flatnonzero(pair_keys[pair] == pred_key)
  if live.size == 0:
    return tp
  live = live[np.lexsort((pred_rank[live], pair[live]))]  # by pair, then processing order
  bounds = np.flatnonzero(np.diff(pair[live])) + 1
  min_t = thresholds.min()

  rows, cand_gt, cand_iou, steps = [], [], [], []
  for chunk in np.split(live, bounds):
    p = pair[chunk[0]]
    gt_idx = gt_order[pair_first[p]:pair_first[p] + pair_count[p]]  # [m] global instance ids, input order
    iou = interval_tiou(pred_seg[chunk], gt_seg[gt_idx])  # [n, m]
    # The reference's per-prediction order: tiou.argsort()[::-1]. argsort along the last axis runs the same 1-D
    # sort on every row, so ties come out as in the reference.
    order = np.argsort(iou, axis=1)[:, ::-1]  # [n, m]
    sorted_iou = np.take_along_axis(iou, order, axis=1)
    num_cand = np.count_nonzero(sorted_iou >= min_t, axis=1)  # [n]; a prefix, since sorted
    keep = num_cand > 0
    if not keep.any():
      continue
    k = int(num_cand.max())
    rows.append(chunk[keep])
    cand_gt.append(gt_idx[order[keep, :k]])
    cand_iou.append(sorted_iou[keep, :k])
    steps.append(np.arange(int(keep.sum())))  # position among this pair's candidates, in processing order
  if not rows:
    return tp

  # Pad candidate lists to a common width: id num_g is a sentinel instance that is always taken.
  width = max(c.shape[1] for c in cand_gt)
  cand_gt = np.concatenate([np.pad(c, ((0, 0), (0, width - c.shape[1])), constant_values=num_g) for c in cand_gt])
  cand_iou = np.concatenate([np.pad(c, ((0, 0), (0, width - c.shape[1])), constant_values=-np.inf)
                             for c in cand_iou])  # [R, K]
  rows = np.concatenate(rows)  # [R]
  steps = np.concatenate(steps)  # [R]
  by_step = np.argsort(steps, kind="stable")
  rows, cand_gt, cand_iou = rows[by_step], cand_gt[by_step], cand_iou[by_step]
  step_bounds = np.searchsorted(steps[by_step], np.arange(steps.max() + 2))

  taken = np.zeros((num_t, num_g + 1), dtype=bool)  # [T, G + 1]
  taken[:, num_g] = True
  # Step s handles the s-th prediction of every pair at once: pairs never share instances, so they don't interact.
  for s in range(len(step_bounds) - 1):
    lo, hi = step_bounds[s], step_bounds[s + 1]
    cands = cand_gt[lo:hi]  # [A, K]
    eligible = (cand_iou[None, lo:hi] >= thresholds[:, None, None]) & ~taken[:, cands]  # [T, A, K]
    hit = eligible.any(axis=2)  # [T, A]
    chosen = np.take_along_axis(cands[None], eligible.argmax(axis=2)[..., None], axis=2)[..., 0]  # [T, A]
    t_idx, a_idx = np.nonzero(hit)
    taken[t_idx, chosen[t_idx, a_idx]] = True
    tp[:, rows[lo:hi]] = hit
  return tp


def compute_detection_ap(ground_truth: FrameLike,
                         predictions: Optional[FrameLike],
                         tiou_thresholds: Sequence[float] = THUMOS14_TIOU_THRESHOLDS,
                         exclude_videos: Optional[Iterable[str]] = None) -> DetectionResult:
  """Per-class detection AP at each tIoU threshold (ActivityNet protocol, see module docstring).

  Args:
    ground_truth: DataFrame (or anything pd.DataFrame accepts) with columns video_id, label, t_start, t_end; one
      row per instance, e.g. from `io.load_ground_truth`. Numeric strings are accepted.
    predictions: same columns plus score; None or empty means no predictions. Row order breaks score ties.
    tiou_thresholds: thresholds in [0, 1].
    exclude_videos: video ids removed from both ground truth and predictions.

  Returns:
    DetectionResult.

  Raises:
    EvaluationInputError: missing column, NaN/non-numeric value, end < start, or no ground truth left.
    ValueError: empty or out-of-range thresholds.
  """
  thresholds = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)  # [T]
  if thresholds.size == 0 or not np.all((thresholds >= 0) & (thresholds <= 1)):
    raise ValueError(f"tIoU thresholds must be a non-empty list of values in [0, 1], got {list(tiou_thresholds)}")
  gt = _as_frame(ground_truth, eval_io.GROUND_TRUTH_COLUMNS, "ground truth")
  pred = _as_frame(predictions, eval_io.PREDICTION_COLUMNS, "predictions")

  excluded = set(str(v) for v in exclude_videos) if exclude_videos is not None else set()
  num_excluded_videos = num_excluded_gt = num_excluded_pred = 0
  if excluded:
    gt_out = gt["video_id"].isin(excluded).to_numpy()
    pred_out = pred["video_id"].isin(excluded).to_numpy()
    num_excluded_videos = len(excluded & (set(gt["video_id"]) | set(pred["video_id"])))
    num_excluded_gt, num_excluded_pred = int(gt_out.sum()), int(pred_out.sum())
    gt, pred = gt[~gt_out], pred[~pred_out]
  if len(gt) == 0:
    raise EvaluationInputError("ground truth: no annotation left to evaluate (wrong subset, or all excluded?)")

  labels = tuple(sorted(set(gt["label"])))
  label_index = {label: i for i, label in enumerate(labels)}
  gt_cls = gt["label"].map(label_index).to_numpy(dtype=np.int64)  # [G]
  pred_cls_f = pred["label"].map(label_index).to_numpy(dtype=np.float64)  # [P']; NaN = unknown label
  known = ~np.isnan(pred_cls_f)
  num_unknown = int((~known).sum())
  pred = pred[known]
  pred_cls = pred_cls_f[known].astype(np.int64)  # [P]

  # Videos coded jointly so that (class, video) pair ids agree between ground truth and predictions.
  video_codes, videos = pd.factorize(pd.concat([gt["video_id"], pred["video_id"]], ignore_index=True))
  gt_vid, pred_vid = video_codes[:len(gt)], video_codes[len(gt):]
  num_videos = len(videos)
  gt_key = gt_cls * num_videos + gt_vid  # [G]
  pred_key = pred_cls * num_videos + pred_vid  # [P]
  scores = pred["score"].to_numpy()  # [P]

  # Processing order within each class: the reference's scores.argsort()[::-1] over the class's predictions in
  # input order (same call, same array => same tie order).
  class_order = []
  pred_rank = np.empty(len(pred), dtype=np.int64)
  for c in range(len(labels)):
    members = np.flatnonzero(pred_cls == c)
    order = members[scores[members].argsort()[::-1]]
    pred_rank[order] = np.arange(len(order))
    class_order.append(order)

  tp = _match(gt_key, gt[["t_start", "t_end"]].to_numpy(), pred_key, pred_rank,
              pred[["t_start", "t_end"]].to_numpy(), thresholds)  # [T, P]

  num_instances = np.bincount(gt_cls, minlength=len(labels))  # [C]
  ap = np.zeros((len(thresholds), len(labels)))
  for c, order in enumerate(class_order):
    if len(order) == 0:
      continue  # no prediction: AP 0
    hits = tp[:, order]  # [T, n], ranked
    tp_cum = np.cumsum(hits, axis=1, dtype=np.float64)
    fp_cum = np.cumsum(~hits, axis=1, dtype=np.float64)
    ap[:, c] = average_precision(tp_cum / (tp_cum + fp_cum), tp_cum / num_instances[c])

  gt_videos = set(gt["video_id"])
  return DetectionResult(
      tiou_thresholds=thresholds,
      labels=labels,
      ap=ap,
      num_instances_per_class=num_instances,
      num_ground_truth_videos=len(gt_videos),
      num_ground_truth_instances=len(gt),
      num_predictions=len(pred),
      num_predictions_unknown_label=num_unknown,
      num_predictions_without_ground_truth_video=int((~pred["video_id"].isin(gt_videos)).sum()),
      num_excluded_videos=num_excluded_videos,
      num_excluded_ground_truth_instances=num_excluded_gt,
      num_excluded_predictions=num_excluded_pred,
  )


class DetectionEvaluator:
  """Accumulates ground truth and predictions, then computes detection mAP.

  Example:
    evaluator = DetectionEvaluator(THUMOS14_TIOU_THRESHOLDS)
    evaluator.update(ground_truth_df, predictions_df)  # any number of times, e.g. per batch of videos
    result = evaluator.result()  # DetectionResult

  Each video's ground truth must be passed once (instances are appended, not de-duplicated). Row order across
  updates is kept, and it breaks score ties as file order does.
  """

  def __init__(self, tiou_thresholds: Sequence[float] = THUMOS14_TIOU_THRESHOLDS,
               exclude_videos: Optional[Iterable[str]] = None):
    """Initializes the evaluator.

    Args:
      tiou_thresholds: thresholds in [0, 1], e.g. THUMOS14_TIOU_THRESHOLDS or ACTIVITYNET_TIOU_THRESHOLDS.
      exclude_videos: video ids removed from both ground truth and predictions.
    """
    self.tiou_thresholds = tuple(float(t) for t in tiou_thresholds)
    self.exclude_videos = tuple(exclude_videos) if exclude_videos is not None else None
    self.reset()

  def reset(self) -> None:
    """Forgets everything passed to update()."""
    self._ground_truth = []
    self._predictions = []

  def update(self, ground_truth: Optional[FrameLike], predictions: Optional[FrameLike]) -> None:
    """Adds ground-truth instances and predictions (either may be None).

    Args:
      ground_truth: columns video_id, label, t_start, t_end.
      predictions: columns video_id, label, t_start, t_end, score.

    Raises:
      EvaluationInputError: invalid rows (checked here, so the error points at the offending update).
    """
    if ground_truth is not None:
      self._ground_truth.append(_as_frame(ground_truth, eval_io.GROUND_TRUTH_COLUMNS, "ground truth"))
    if predictions is not None:
      self._predictions.append(_as_frame(predictions, eval_io.PREDICTION_COLUMNS, "predictions"))

  def result(self) -> DetectionResult:
    """Computes AP over everything accumulated so far.

    Returns:
      DetectionResult.

    Raises:
      EvaluationInputError: no ground truth was given.
    """
    gt = pd.concat(self._ground_truth, ignore_index=True) if self._ground_truth else None
    pred = pd.concat(self._predictions, ignore_index=True) if self._predictions else None
    if gt is None:
      raise EvaluationInputError("ground truth: update() was never given ground truth")
    return compute_detection_ap(gt, pred, self.tiou_thresholds, self.exclude_videos)


def score_files(ground_truth_path: Union[str, os.PathLike],
                predictions_path: Union[str, os.PathLike],
                subset: Optional[str] = None,
                tiou_thresholds: Sequence[float] = THUMOS14_TIOU_THRESHOLDS,
                exclude_videos: Optional[Union[str, Iterable[str]]] = None) -> DetectionResult:
  """Scores an ActivityNet-format prediction file against a ground-truth file.

  Args:
    ground_truth_path: JSON with a "database" key.
    predictions_path: JSON with a "results" key.
    subset: evaluate only ground-truth videos of this subset (e.g. "test"); None = all. Predictions are not
      filtered by subset (as in the reference): predictions for other videos are false positives.
    tiou_thresholds: thresholds in [0, 1].
    exclude_videos: ids to drop from both sides: an iterable, a comma-separated string, or a path to a file with
      one id per line (see `io.parse_video_list`).

  Returns:
    DetectionResult.

  Raises:
    EvaluationInputError: bad files or contents (message names file, video and problem).
  """
  gt = eval_io.load_ground_truth(ground_truth_path, subset=subset)
  if len(gt) == 0:
    raise EvaluationInputError(f"{ground_truth_path}: no annotation in subset {subset!r}")
  pred = eval_io.load_predictions(predictions_path)
  return compute_detection_ap(gt, pred, tiou_thresholds, eval_io.parse_video_list(exclude_videos))


@dataclasses.dataclass(frozen=True)
class PrecisionRecall:
  """One class's ranked detections at one tIoU threshold (ActivityNet matching, as `compute_detection_ap`).

  Attributes:
    precision: float64 [N], precision after each ranked prediction of the class.
    recall: float64 [N], recall after each ranked prediction.
    scores: float64 [N], the predictions' scores in rank order.
    num_instances: ground-truth instances of the class.
    ap: the class's average precision (`average_precision(precision, recall)`; 0 without predictions).
  """

  precision: np.ndarray
  recall: np.ndarray
  scores: np.ndarray
  num_instances: int
  ap: float


def precision_recall(ground_truth: FrameLike, predictions: Optional[FrameLike], tiou_threshold: float = 0.5,
                     exclude_videos: Optional[Iterable[str]] = None) -> dict:
  """Per-class precision-recall curves at one tIoU threshold, with the matching of `compute_detection_ap`.

  Same inputs, validation, class set, ranking and greedy matching as `compute_detection_ap`, so each class's `ap`
  equals its AP there at this threshold.

  Args:
    ground_truth: columns video_id, label, t_start, t_end.
    predictions: the same plus score; None or empty means no predictions.
    tiou_threshold: in [0, 1].
    exclude_videos: video ids removed from both sides.

  Returns:
    Dict label -> PrecisionRecall, for every evaluated (ground-truth) class, in sorted label order.

  Raises:
    EvaluationInputError, ValueError: as `compute_detection_ap`.
  """
  threshold = float(tiou_threshold)
  if not 0.0 <= threshold <= 1.0:
    raise ValueError(f"tIoU threshold must be in [0, 1], got {tiou_threshold}")
  gt = _as_frame(ground_truth, eval_io.GROUND_TRUTH_COLUMNS, "ground truth")
  pred = _as_frame(predictions, eval_io.PREDICTION_COLUMNS, "predictions")
  if exclude_videos is not None:
    excluded = set(str(v) for v in exclude_videos)
    gt, pred = gt[~gt["video_id"].isin(excluded)], pred[~pred["video_id"].isin(excluded)]
  if len(gt) == 0:
    raise EvaluationInputError("ground truth: no annotation left to evaluate (wrong subset, or all excluded?)")
  labels = tuple(sorted(set(gt["label"])))
  label_index = {label: i for i, label in enumerate(labels)}
  gt_cls = gt["label"].map(label_index).to_numpy(dtype=np.int64)
  pred_cls_f = pred["label"].map(label_index).to_numpy(dtype=np.float64)
  known = ~np.isnan(pred_cls_f)
  pred, pred_cls = pred[known], pred_cls_f[known].astype(np.int64)
  video_codes, videos = pd.factorize(pd.concat([gt["video_id"], pred["video_id"]], ignore_index=True))
  gt_key = gt_cls * len(videos) + video_codes[:len(gt)]
  pred_key = pred_cls * len(videos) + video_codes[len(gt):]
  scores = pred["score"].to_numpy()
  class_order, pred_rank = [], np.empty(len(pred), dtype=np.int64)
  for c in range(len(labels)):
    members = np.flatnonzero(pred_cls == c)
    order = members[scores[members].argsort()[::-1]]   # the reference's ranking, as in compute_detection_ap
    pred_rank[order] = np.arange(len(order))
    class_order.append(order)
  tp = _match(gt_key, gt[["t_start", "t_end"]].to_numpy(), pred_key, pred_rank, pred[["t_start", "t_end"]].to_numpy(),
              np.array([threshold]))[0]  # [P]
  num_instances = np.bincount(gt_cls, minlength=len(labels))
  out = {}
  for c, order in enumerate(class_order):
    hits = tp[order]
    tp_cum = np.cumsum(hits, dtype=np.float64)
    precision = tp_cum / np.arange(1, len(order) + 1, dtype=np.float64)
    recall = tp_cum / num_instances[c]
    ap = float(average_precision(precision, recall)) if len(order) else 0.0
    out[labels[c]] = PrecisionRecall(precision, recall, scores[order].astype(np.float64), int(num_instances[c]), ap)
  return out
