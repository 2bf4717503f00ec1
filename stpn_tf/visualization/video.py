"""What a per-video picture shows, extracted from a model's outputs (NumPy only, no matplotlib).

`video_plot_data` turns one video's info and outputs (as `inference.predict_videos` yields them) into a
`VideoPlotData`: plain arrays and `Interval` lists that `plots.plot_video` draws. What each task contributes:

  task    attention curves (per network)        class activation curves [T, C] (per network)
  stpn    lambda_t (Eq. 1)                      weighted T-CAM psi = lambda_t sigmoid(a_t^c) (Eqs. 5-6)
  bgm     lambda_t (Sec. 3.1)                   lambda_t w_c^T x_t, background column dropped (Eq. 12's term)
  aumn    a(t) = max_k S(t, k) (Eq. 7)          a(t) softmax_c(C(t))_c (Eq. 16's term)
  hamnet  a (Eq. 4)                             s^attn = s_c a, background column dropped (Eqs. 5, 14)
  other   every [T] output named "attention"    "tcam" or "cas" (the first C columns), as the model outputs it
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from stpn_tf.postprocess import types as pp_types

# Classes with a video-level probability at least this are "predicted" (the default class threshold of all four
# post-processors).
PREDICTED_CLASS_THRESHOLD = 0.1


@dataclasses.dataclass(frozen=True)
class Interval:
  """One ground-truth instance or detection, in seconds; score is None for ground truth."""

  start_s: float
  end_s: float
  class_index: int
  score: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class VideoPlotData:
  """Everything a per-video plot shows, as plain data.

  Attributes:
    video_id: the video's id.
    feature_rate: segments per second; segment t covers [t / rate, (t + 1) / rate) seconds.
    duration: the video's duration in seconds (0 when unknown).
    class_names: name of each class index [C].
    ground_truth: ground-truth instances.
    detections: the post-processor's detections, by descending score.
    attention: curve name (network) -> [T] attention.
    activation: curve name (network) -> [T, C] class activation (see the module docstring).
    activation_label: what `activation` is, for the axis label.
    probabilities: [C] video-level class probabilities (`task.video_probabilities`).
    labels: [C] multi-hot video-level ground-truth labels.
  """

  video_id: str
  feature_rate: float
  duration: float
  class_names: Tuple[str, ...]
  ground_truth: Tuple[Interval, ...]
  detections: Tuple[Interval, ...]
  attention: Mapping[str, np.ndarray]
  activation: Mapping[str, np.ndarray]
  activation_label: str
  probabilities: np.ndarray
  labels: np.ndarray

  @property
  def num_segments(self) -> int:
    """T, the number of feature segments."""
    for curve in list(self.attention.values()) + list(self.activation.values()):
      return int(curve.shape[0])
    return 0

  def predicted_classes(self, max_classes: int = 5) -> List[int]:
    """Classes whose activation is drawn: the predicted ones (probability >= PREDICTED_CLASS_THRESHOLD or with a
    detection) and the ground-truth ones, by descending probability, at most `max_classes`; the top class when
    that leaves none."""
    probabilities = np.asarray(self.probabilities, dtype=np.float64)
    chosen = set(np.flatnonzero(probabilities >= PREDICTED_CLASS_THRESHOLD).tolist())
    chosen |= {d.class_index for d in self.detections} | {g.class_index for g in self.ground_truth}
    if not chosen and probabilities.size:
      chosen = {int(np.argmax(probabilities))}
    return sorted(chosen, key=lambda c: (-probabilities[c], c))[:max_classes]

  def top_classes(self, k: int = 3) -> List[Tuple[int, float]]:
    """The k classes of highest video-level probability, as (class index, probability)."""
    order = np.argsort(-np.asarray(self.probabilities), kind="stable")[:k]
    return [(int(c), float(self.probabilities[c])) for c in order]


def ground_truth_intervals(segments: np.ndarray, segment_labels: np.ndarray) -> Tuple[Interval, ...]:
  """Ground-truth instances from a video's segments [S, 2] (seconds) and their class indices [S]."""
  segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
  return tuple(Interval(float(s), float(e), int(c)) for (s, e), c in zip(segments, np.asarray(segment_labels)))


def detection_intervals(detections: pp_types.Detections) -> Tuple[Interval, ...]:
  """Detections (in their stored order) as Intervals with scores."""
  return tuple(Interval(float(s), float(e), int(c), float(p)) for s, e, c, p in
               zip(detections.start_s, detections.end_s, detections.class_index, detections.score))


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x: np.ndarray) -> np.ndarray:
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def model_signals(task, outputs: Mapping[str, Mapping[str, np.ndarray]], num_classes: int
                  ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], str]:
  """The attention and class-activation curves of one video (see the module docstring for each task).

  Args:
    task: the model task (its `name` selects the curves).
    outputs: {network: {output name: array for this video}}, as `inference.predict_videos` yields.
    num_classes: C, the dataset's number of real classes.

  Returns:
    (attention {network: [T]}, activation {network: [T, C]}, description of the activation).

  Raises:
    ValueError: a network has no attention or class-activation output.
  """
  name = getattr(task, "name", "")
  attention, activation = {}, {}
  for network, out in outputs.items():
    if "attention" not in out:
      raise ValueError(f"network {network!r} of task {name!r} has no 'attention' output; it has {sorted(out)}")
    a = np.asarray(out["attention"], dtype=np.float64)
    attention[network] = a
    if name == "stpn":
      activation[network] = a[:, None] * _sigmoid(np.asarray(out["tcam"], dtype=np.float64))
    elif name == "bgm":
      activation[network] = a[:, None] * np.asarray(out["tcam"], dtype=np.float64)[:, 1:]
    elif name == "aumn":
      activation[network] = a[:, None] * _softmax(np.asarray(out["cas"], dtype=np.float64))
    elif name == "hamnet":
      activation[network] = a[:, None] * np.asarray(out["cas"], dtype=np.float64)[:, :num_classes]
    else:
      key = "tcam" if "tcam" in out else "cas" if "cas" in out else None
      if key is None:
        raise ValueError(f"network {network!r} of task {name!r} has no 'tcam' or 'cas' output; it has {sorted(out)}")
      activation[network] = np.asarray(out[key], dtype=np.float64)[:, :num_classes]
  label = {"stpn": "weighted T-CAM λ·σ(a)", "bgm": "λ · T-CAM", "aumn": "a · softmax(CAS)",
           "hamnet": "a · CAS"}.get(name, "class activation")
  return attention, activation, label


def video_plot_data(task, info: Mapping, outputs: Mapping[str, Mapping[str, np.ndarray]],
                    class_names: Sequence[str], feature_rate: float,
                    detections: Optional[pp_types.Detections] = None,
                    probabilities: Optional[np.ndarray] = None) -> VideoPlotData:
  """Everything the plot of one video shows.

  Args:
    task: the model task.
    info: the video info of `inference.predict_videos` (video_id, labels, duration, segments, segment_labels).
    outputs: {network: {output name: array}} of this video.
    class_names: the dataset's class names.
    feature_rate: segments per second (the manifest's); info["feature_rate"] (the rate of the evaluated time axis,
      different under a test-time sampler, see inference.predict_videos) takes precedence when present.
    detections: the video's detections; None runs `task.detect(outputs, feature_rate)`.
    probabilities: the video-level probabilities; None runs `task.video_probabilities(outputs)`.

  Returns:
    VideoPlotData.
  """
  feature_rate = float(info.get("feature_rate", feature_rate))
  if detections is None:
    detections = task.detect(outputs, feature_rate)
  if probabilities is None:
    probabilities = task.video_probabilities(outputs)
  attention, activation, label = model_signals(task, outputs, len(class_names))
  return VideoPlotData(
      video_id=str(info["video_id"]), feature_rate=float(feature_rate), duration=float(info.get("duration", 0.0)),
      class_names=tuple(class_names),
      ground_truth=ground_truth_intervals(info["segments"], info["segment_labels"]),
      detections=detection_intervals(detections), attention=attention, activation=activation,
      activation_label=label, probabilities=np.asarray(probabilities, dtype=np.float64),
      labels=np.asarray(info["labels"]))
