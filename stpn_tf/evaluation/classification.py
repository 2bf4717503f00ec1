"""Video-level classification mAP (NumPy only).

AP of one class is the standard non-interpolated average precision, the same quantity as
``sklearn.metrics.average_precision_score``: videos ranked by descending score, ``AP = sum_n (R_n - R_{n-1}) P_n``
over the distinct score thresholds. Videos with equal scores form one threshold (so their relative order does not
matter). mAP is the mean over classes.

Classes with no positive video have undefined AP (recall is 0/0): they get NaN in the per-class vector and are
skipped by the mean; the number of classes actually averaged is reported. If no class has a positive, mAP is an
error. NaN scores are an error (they have no rank).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class ClassificationResult:
  """Classification AP per class and their mean.

  Attributes:
    ap: float64 [C]; NaN for classes without positives.
    mAP: mean of the non-NaN entries of `ap`.
    num_videos: videos scored.
    num_classes_evaluated: classes with at least one positive (those averaged).
  """

  ap: np.ndarray
  mAP: float  # pylint: disable=invalid-name
  num_videos: int
  num_classes_evaluated: int


def _validate(scores: np.ndarray, labels: np.ndarray) -> tuple:
  """Returns (scores float64 [N, C], labels bool [N, C]) or raises ValueError."""
  scores = np.asarray(scores, dtype=np.float64)
  labels = np.asarray(labels)
  if scores.ndim != 2 or scores.shape != labels.shape:
    raise ValueError(f"scores and labels must both be [num_videos, num_classes], got {scores.shape} and "
                     f"{labels.shape}")
  if np.isnan(scores).any():
    raise ValueError(f"scores contain NaN (video rows {np.flatnonzero(np.isnan(scores).any(axis=1))[:5].tolist()})")
  if not np.isin(labels, (0, 1)).all():
    raise ValueError("labels must be multi-hot (0/1 or bool)")
  return scores, labels.astype(bool)


def classification_average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Non-interpolated AP of each class (as sklearn's average_precision_score, per column).

  Args:
    scores: float [N, C], score of each class for each video (any monotone scale: logits or probabilities).
    labels: {0, 1} or bool [N, C], multi-hot video labels.

  Returns:
    float64 [C]: AP of each class; NaN where the class has no positive video.

  Raises:
    ValueError: shape mismatch, NaN score or non-binary label.
  """
  scores, labels = _validate(scores, labels)
  num_videos = scores.shape[0]
  # Descending score per class; the order inside a tie group is irrelevant because a group is one threshold.
  order = np.argsort(-scores, axis=0, kind="stable")  # [N, C]
  sorted_scores = np.take_along_axis(scores, order, axis=0)
  positives = np.take_along_axis(labels, order, axis=0)  # [N, C] bool
  tp_cum = np.cumsum(positives, axis=0)  # [N, C]
  rows = np.arange(num_videos)[:, None]  # [N, 1]
  # Index of the last row of each tie group: precision is measured there, once all tied videos are included.
  group_end = np.ones_like(positives)
  group_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
  end = np.minimum.accumulate(np.where(group_end, rows, num_videos)[::-1], axis=0)[::-1]  # [N, C]
  precision_at_end = np.take_along_axis(tp_cum, end, axis=0) / (end + 1.0)  # [N, C]
  # Each positive raises recall by 1/npos at its group's threshold, where precision is precision_at_end.
  num_pos = positives.sum(axis=0)  # [C]
  total = np.where(positives, precision_at_end, 0.0).sum(axis=0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(num_pos > 0, total / np.maximum(num_pos, 1), np.nan)


def classification_map(scores: np.ndarray, labels: np.ndarray) -> ClassificationResult:
  """Mean over classes (with at least one positive) of the classification AP.

  Args:
    scores: float [N, C].
    labels: {0, 1} or bool [N, C].

  Returns:
    ClassificationResult.

  Raises:
    ValueError: bad inputs, or no class has a positive video.
  """
  ap = classification_average_precision(scores, labels)
  valid = ~np.isnan(ap)
  if not valid.any():
    raise ValueError("no class has a positive video: classification mAP is undefined")
  return ClassificationResult(ap=ap, mAP=float(ap[valid].mean()), num_videos=int(np.shape(scores)[0]),
                              num_classes_evaluated=int(valid.sum()))


class ClassificationEvaluator:
  """Accumulates per-video class scores and labels; result() gives the classification mAP."""

  def __init__(self, num_classes: Optional[int] = None):
    """Initializes the evaluator.

    Args:
      num_classes: if given, every update must have this many columns.
    """
    self.num_classes = num_classes
    self.reset()

  def reset(self) -> None:
    """Forgets all updates."""
    self._scores = []
    self._labels = []

  def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
    """Adds a batch of videos.

    Args:
      scores: float [B, C].
      labels: {0, 1} or bool [B, C].

    Raises:
      ValueError: bad shapes/values (checked per batch so the error points at it).
    """
    scores, labels = _validate(scores, labels)
    if self.num_classes is not None and scores.shape[1] != self.num_classes:
      raise ValueError(f"expected {self.num_classes} classes, got {scores.shape[1]}")
    if self._scores and scores.shape[1] != self._scores[0].shape[1]:
      raise ValueError(f"class count changed between updates: {self._scores[0].shape[1]} -> {scores.shape[1]}")
    self._scores.append(scores)
    self._labels.append(labels)

  def result(self) -> ClassificationResult:
    """Classification mAP over all videos added so far.

    Returns:
      ClassificationResult.

    Raises:
      ValueError: no video was added, or no class has a positive.
    """
    if not self._scores:
      raise ValueError("no video was added")
    return classification_map(np.concatenate(self._scores), np.concatenate(self._labels))
