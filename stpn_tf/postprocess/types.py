"""Containers for per-video model outputs and detections (NumPy only)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class StreamOutput:
  """One stream's (RGB or flow) outputs for one video, as STPN's post-processing needs them.

  Attributes:
    attention: float array [T], class-agnostic attention lambda_t in [0, 1] (STPN Eq. 1).
    tcam: float array [T, C], raw T-CAM a_t^c (STPN Eq. 4, before any sigmoid).
    probabilities: float array [C], video-level class probabilities (sigmoid outputs, STPN Sec. 3.1).

  Raises:
    ValueError: (at construction) on shapes that disagree or non-finite values.
  """

  attention: np.ndarray
  tcam: np.ndarray
  probabilities: np.ndarray

  def __post_init__(self):
    attention = np.asarray(self.attention, dtype=np.float64)
    tcam = np.asarray(self.tcam, dtype=np.float64)
    probabilities = np.asarray(self.probabilities, dtype=np.float64)
    if attention.ndim != 1:
      raise ValueError(f"attention must be [T], got shape {attention.shape}")
    if tcam.ndim != 2:
      raise ValueError(f"tcam must be [T, C], got shape {tcam.shape}")
    if attention.shape[0] != tcam.shape[0]:
      raise ValueError(f"attention has T={attention.shape[0]} but tcam has T={tcam.shape[0]} "
                       f"(shapes {attention.shape} and {tcam.shape})")
    if probabilities.shape != (tcam.shape[1],):
      raise ValueError(f"probabilities must be [C] with C={tcam.shape[1]} (from tcam), got shape "
                       f"{probabilities.shape}")
    for name, value in (("attention", attention), ("tcam", tcam), ("probabilities", probabilities)):
      if np.isnan(value).any():
        raise ValueError(f"{name} contains NaN")
      if not np.all(np.isfinite(value)):
        raise ValueError(f"{name} contains inf")
    # Frozen dataclass: store the validated float64 copies through object.__setattr__.
    object.__setattr__(self, "attention", attention)
    object.__setattr__(self, "tcam", tcam)
    object.__setattr__(self, "probabilities", probabilities)

  @property
  def num_segments(self) -> int:
    """T."""
    return self.tcam.shape[0]

  @property
  def num_classes(self) -> int:
    """C."""
    return self.tcam.shape[1]


@dataclasses.dataclass(frozen=True)
class Detections:
  """Temporal detections of one video, as parallel arrays.

  Attributes:
    start_s: float64 array [D], start times in seconds.
    end_s: float64 array [D], end times in seconds.
    class_index: int64 array [D], class indices.
    score: float64 array [D], confidence scores.

  Raises:
    ValueError: (at construction) if the arrays are not 1-D of the same length.
  """

  start_s: np.ndarray
  end_s: np.ndarray
  class_index: np.ndarray
  score: np.ndarray

  def __post_init__(self):
    fields = {
        "start_s": np.asarray(self.start_s, dtype=np.float64),
        "end_s": np.asarray(self.end_s, dtype=np.float64),
        "class_index": np.asarray(self.class_index, dtype=np.int64),
        "score": np.asarray(self.score, dtype=np.float64),
    }
    shapes = {name: value.shape for name, value in fields.items()}
    if any(len(shape) != 1 for shape in shapes.values()) or len(set(shapes.values())) != 1:
      raise ValueError(f"Detections fields must be 1-D of one length, got shapes {shapes}")
    for name, value in fields.items():
      object.__setattr__(self, name, value)

  def __len__(self) -> int:
    return self.score.shape[0]

  @classmethod
  def empty(cls) -> Detections:
    """Zero detections."""
    return cls(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))

  @classmethod
  def concatenate(cls, parts: Sequence[Detections]) -> Detections:
    """Detections of several parts (e.g. per class or per chunk) joined in order; empty input gives zero detections."""
    parts = list(parts)
    if not parts:
      return cls.empty()
    return cls(
        np.concatenate([p.start_s for p in parts]),
        np.concatenate([p.end_s for p in parts]),
        np.concatenate([p.class_index for p in parts]),
        np.concatenate([p.score for p in parts]),
    )

  def to_activitynet(self, video_id: str, class_names: Sequence[str]) -> list[dict]:
    """Detections in the ActivityNet result-file format (the value of `results[video_id]`).

    Args:
      video_id: the video's id; the caller stores the list under it. Used in error messages.
      class_names: class name of each class index.

    Returns:
      List of {"label": str, "score": float, "segment": [start_s, end_s]} dicts, in the stored order.

    Raises:
      ValueError: if a class index has no name.
    """
    if len(self) and (self.class_index.min() < 0 or self.class_index.max() >= len(class_names)):
      raise ValueError(f"video {video_id}: class index out of range for {len(class_names)} class names")
    return [
        {"label": class_names[c], "score": float(s), "segment": [float(a), float(b)]}
        for a, b, c, s in zip(self.start_s.tolist(), self.end_s.tolist(), self.class_index.tolist(),
                              self.score.tolist())
    ]
