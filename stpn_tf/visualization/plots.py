"""matplotlib figures from plain data: one video's timeline, precision-recall curves; PNG files and image arrays.

Pure functions: they take NumPy arrays and the plain structures of `video.py` and return a
`matplotlib.figure.Figure` drawn with the non-interactive Agg canvas (no pyplot, no global state, no display).
matplotlib is imported inside the functions; without it they raise `MissingMatplotlibError` (install hint).
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from stpn_tf.visualization import require_matplotlib
from stpn_tf.visualization.video import Interval
from stpn_tf.visualization.video import VideoPlotData

# Detections drawn per video (highest scores); their scores are written next to the best LABELLED_DETECTIONS.
MAX_DETECTIONS = 40
LABELLED_DETECTIONS = 12
LINE_STYLES = ("-", "--", ":", "-.")


def _figure(figsize: Tuple[float, float], **kwargs):
  """A Figure attached to an Agg canvas."""
  require_matplotlib()
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  fig = Figure(figsize=figsize, **kwargs)
  FigureCanvasAgg(fig)
  return fig


def class_color(class_index: int):
  """The color of a class, the same in every panel (tab10, then tab20b for indices >= 10)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  if class_index < 10:
    return matplotlib.colormaps["tab10"](class_index)
  return matplotlib.colormaps["tab20b"]((class_index - 10) % 20)


def _steps(signal: np.ndarray, feature_rate: float) -> Tuple[np.ndarray, np.ndarray]:
  """x, y for a step curve: segment t holds its value over [t / rate, (t + 1) / rate)."""
  signal = np.asarray(signal, dtype=np.float64)
  x = np.arange(signal.shape[0] + 1, dtype=np.float64) / float(feature_rate)
  return x, np.append(signal, signal[-1:]) if signal.size else signal


def draw_intervals(ax, intervals: Sequence[Interval], rows: Sequence[int], class_names: Sequence[str],
                   kind: str) -> None:
  """Draws intervals as horizontal bars, one row per class.

  Args:
    ax: a matplotlib Axes.
    intervals: ground-truth instances or detections; detections' bar opacity grows with the score (scaled to the
      highest score drawn) and the best LABELLED_DETECTIONS carry their score as text, unless it would overlap
      a label already written in the row.
    rows: the classes that get a row, top to bottom; intervals of other classes are not drawn.
    class_names: names of the class indices.
    kind: "ground truth" or "detections" (the panel's title).
  """
  row_of = {c: i for i, c in enumerate(rows)}
  scores = [iv.score for iv in intervals if iv.score is not None]
  lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
  min_gap = 0.045 * max([iv.end_s for iv in intervals] + [1e-6])    # about the width of a score label
  labelled = {}                                                        # row -> x of the labels written
  for rank, iv in enumerate(intervals):
    if iv.class_index not in row_of:
      continue
    y = len(rows) - 1 - row_of[iv.class_index]
    alpha = 0.85
    if iv.score is not None:
      alpha = 0.25 + 0.65 * ((iv.score - lo) / (hi - lo) if hi > lo else 1.0)
    ax.broken_barh([(iv.start_s, max(iv.end_s - iv.start_s, 1e-6))], (y - 0.35, 0.7),
                   facecolors=[class_color(iv.class_index)], alpha=alpha, edgecolor="black", linewidth=0.4)
    xs = labelled.setdefault(y, [])
    if iv.score is not None and rank < LABELLED_DETECTIONS and all(abs(iv.start_s - x) >= min_gap for x in xs):
      xs.append(iv.start_s)
      ax.text(iv.start_s, y + 0.38, f"{iv.score:.2f}", fontsize=6, va="bottom", ha="left", clip_on=True)
  ax.set_yticks(range(len(rows)))
  ax.set_yticklabels([class_names[c] for c in reversed(list(rows))], fontsize=7)
  ax.set_ylim(-0.6, max(len(rows), 1) - 0.4 + (0.3 if kind == "detections" else 0.0))
  ax.set_ylabel(kind, fontsize=8)


def plot_video(data: VideoPlotData, max_classes: int = 5, figsize: Tuple[float, float] = (10.0, 7.0),
               dpi: int = 100):
  """The timeline of one video: ground truth, attention, class activation and detections over time (seconds).

  Panels, top to bottom, sharing the time axis (segment t at t / feature_rate s):
    ground truth   one bar per instance, one row per ground-truth class;
    attention      each network's attention curve;
    activation     each network's class activation (`data.activation_label`) for `data.predicted_classes`,
                   color = class, line style = network;
    detections     the post-processor's detections (top MAX_DETECTIONS), opacity = score, scores written.
  The title gives the video id, its duration, its labels and its top-3 video-level class probabilities.

  Args:
    data: see `video.VideoPlotData`.
    max_classes: most classes drawn in the activation panel.
    figsize: inches.
    dpi: pixels per inch of the figure (PNG size = figsize * dpi).

  Returns:
    A matplotlib Figure (Agg canvas).
  """
  fig = _figure(figsize, dpi=dpi, layout="constrained")
  axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": (1.0, 1.2, 1.6, 1.4)})
  rate = data.feature_rate
  end = max([data.num_segments / rate, data.duration] + [iv.end_s for iv in data.ground_truth + data.detections])

  gt_rows = sorted({iv.class_index for iv in data.ground_truth})
  draw_intervals(axes[0], data.ground_truth, gt_rows, data.class_names, "ground truth")

  for i, (network, curve) in enumerate(data.attention.items()):
    x, y = _steps(curve, rate)
    axes[1].plot(x, y, drawstyle="steps-post", linewidth=1.0, label=network, color=f"C{i}" if i else "black",
                 linestyle=LINE_STYLES[i % len(LINE_STYLES)])
  axes[1].set_ylabel("attention", fontsize=8)
  axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))

  classes = data.predicted_classes(max_classes)
  for i, (network, signal) in enumerate(data.activation.items()):
    for c in classes:
      x, y = _steps(signal[:, c], rate)
      label = data.class_names[c] + (f" ({network})" if len(data.activation) > 1 else "")
      axes[2].plot(x, y, drawstyle="steps-post", linewidth=1.0, color=class_color(c),
                   linestyle=LINE_STYLES[i % len(LINE_STYLES)], label=label)
  axes[2].set_ylabel(data.activation_label, fontsize=8)
  if classes and data.activation:
    axes[2].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.005, 1.0))

  shown = list(data.detections[:MAX_DETECTIONS])
  det_rows = sorted({iv.class_index for iv in shown})
  draw_intervals(axes[3], shown, det_rows, data.class_names, "detections")
  axes[3].set_xlabel("time (s)")
  axes[3].set_xlim(0.0, end if end > 0 else 1.0)
  for ax in axes:
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3)

  labels = ", ".join(data.class_names[c] for c in np.flatnonzero(np.asarray(data.labels) > 0)) or "none"
  top = "   ".join(f"{data.class_names[c]} {p:.2f}" for c, p in data.top_classes(3))
  hidden = len(data.detections) - len(shown)
  fig.suptitle(f"{data.video_id}  ({data.duration:.1f} s, {data.num_segments} segments)   labels: {labels}\n"
               f"video-level probabilities: {top}   |   {len(data.detections)} detections"
               + (f" ({hidden} not drawn)" if hidden > 0 else ""), fontsize=9)
  return fig


def plot_precision_recall(curves: Mapping[str, Tuple[np.ndarray, np.ndarray]], ap: Mapping[str, float],
                          tiou: float, figsize: Tuple[float, float] = (8.0, 5.5), dpi: int = 100):
  """Precision-recall curves of every class at one tIoU threshold.

  Args:
    curves: label -> (precision [N], recall [N]) after each ranked detection of the class.
    ap: label -> average precision at this threshold (for the legend).
    tiou: the threshold (for the title).
    figsize, dpi: figure size.

  Returns:
    A matplotlib Figure (Agg canvas).
  """
  fig = _figure(figsize, dpi=dpi)
  ax = fig.subplots()
  for i, (label, (precision, recall)) in enumerate(curves.items()):
    precision, recall = np.asarray(precision), np.asarray(recall)
    ax.plot(np.concatenate([[0.0], recall]), np.concatenate([[precision[0] if precision.size else 0.0], precision]),
            drawstyle="steps-post", linewidth=1.0, color=class_color(i),
            label=f"{label} (AP {100 * ap.get(label, 0.0):.1f})")
  ax.set_xlim(0.0, 1.0)
  ax.set_ylim(0.0, 1.02)
  ax.set_xlabel("recall")
  ax.set_ylabel("precision")
  mean = np.mean(list(ap.values())) if ap else 0.0
  ax.set_title(f"Precision-recall per class at tIoU {tiou:g} (mAP {100 * mean:.2f})", fontsize=10)
  ax.grid(alpha=0.3)
  if curves:
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1 if len(curves) <= 20 else 2)
  fig.tight_layout()
  return fig


def png_name(video_id: str, prefix: str = "") -> str:
  """A file name for a video's plot: characters other than letters, digits, '_', '.', '-' become '_'."""
  return f"{prefix}{re.sub(r'[^A-Za-z0-9_.-]', '_', video_id)[:100]}.png"


def save_figure(fig, path: str, dpi: Optional[int] = None) -> str:
  """Writes a figure as PNG to `path` through a temporary name in the same folder, renamed when complete.

  Returns:
    path.
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
  try:
    fig.savefig(tmp, format="png", dpi=dpi or fig.dpi)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def figure_to_array(fig) -> np.ndarray:
  """The rendered figure as a uint8 RGB array [H, W, 3] (H, W = figure size in inches * dpi)."""
  fig.canvas.draw()
  return np.array(fig.canvas.buffer_rgba(), dtype=np.uint8)[..., :3]

