"""The HTML evaluation report of `python -m stpn_tf.evaluate --model_dir=DIR --report_dir=OUT`.

OUT/index.html holds: the detection mAP per tIoU threshold (with its averages and the video-level classification
mAP), the per-class AP at tIoU 0.5, per-class precision-recall curves at tIoU 0.5 (precision_recall.png), the
per-video plots (videos/*.png, see `plots.plot_video`) of the best and the worst few videos, and the run's
config.gin. The folder is built in a temporary sibling folder and renamed into place when complete.

Ranking of videos ("per-video AP"): the mean, over the classes annotated or detected in the video, of the AP at tIoU
0.5 of the video's detections of that class against its instances of that class (`detection.compute_detection_ap`,
the same protocol, on this video alone); a class detected but not annotated counts 0, so wrong-class detections
lower the measure. Videos with neither annotations nor detections are not ranked. Ties are broken by video id.
"""

from __future__ import annotations

import datetime
import html
import os
import shutil
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from stpn_tf.evaluation import detection
from stpn_tf.visualization import plots
from stpn_tf.visualization import require_matplotlib
from stpn_tf.visualization import video as video_lib

REPORT_TIOU = 0.5


class ReportCollector:
  """The `video_callback` of `inference.evaluate_split`: keeps what the report needs of every video.

  Attributes:
    videos: VideoPlotData of every video, in evaluation order.
  """

  def __init__(self, task, class_names: Sequence[str], feature_rate: float):
    self.task = task
    self.class_names = tuple(class_names)
    self.feature_rate = float(feature_rate)
    self.videos: List[video_lib.VideoPlotData] = []

  def __call__(self, info, outputs, detections, probabilities) -> None:
    self.videos.append(video_lib.video_plot_data(self.task, info, outputs, self.class_names, self.feature_rate,
                                                 detections=detections, probabilities=probabilities))


def ground_truth_rows(videos: Sequence[video_lib.VideoPlotData]) -> List[Dict]:
  """Ground-truth rows (video_id, label, t_start, t_end) of the videos, for the evaluation functions."""
  return [{"video_id": v.video_id, "label": v.class_names[g.class_index], "t_start": g.start_s, "t_end": g.end_s}
          for v in videos for g in v.ground_truth]


def prediction_rows(videos: Sequence[video_lib.VideoPlotData]) -> List[Dict]:
  """Detection rows (video_id, label, t_start, t_end, score) of the videos."""
  return [{"video_id": v.video_id, "label": v.class_names[d.class_index], "t_start": d.start_s, "t_end": d.end_s,
           "score": d.score} for v in videos for d in v.detections]


def per_video_ap(data: video_lib.VideoPlotData, tiou: float = REPORT_TIOU) -> Optional[float]:
  """The ranking measure (module docstring): mean AP at `tiou` over the classes annotated or detected in the video,
  0 for a detected class without annotation; None for a video with neither."""
  annotated = {g.class_index for g in data.ground_truth}
  only_detected = {d.class_index for d in data.detections} - annotated
  if not annotated:
    return 0.0 if only_detected else None
  ap = detection.compute_detection_ap(ground_truth_rows([data]), prediction_rows([data]), (tiou,)).ap[0]  # [A]
  return float(ap.sum() / (len(annotated) + len(only_detected)))


def rank_videos(videos: Sequence[video_lib.VideoPlotData], num: int, tiou: float = REPORT_TIOU
                ) -> Tuple[List[Tuple[video_lib.VideoPlotData, float]], List[Tuple[video_lib.VideoPlotData, float]]]:
  """The `num` best and `num` worst videos by per-video AP (best first; worst first), never the same video twice."""
  scored = [(v, per_video_ap(v, tiou)) for v in videos]
  scored = sorted([(v, m) for v, m in scored if m is not None], key=lambda vm: (-vm[1], vm[0].video_id))
  best = scored[:num]
  rest = scored[len(best):]
  worst = sorted(rest, key=lambda vm: (vm[1], vm[0].video_id))[:num]
  return best, worst


def _table(header: Sequence[str], rows: Sequence[Sequence], css: str = "") -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
  body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
  return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _replace_dir(tmp: str, target: str) -> None:
  """Moves the finished folder tmp to target; an existing target is replaced (moved aside, then deleted)."""
  old = None
  if os.path.exists(target):
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=os.path.dirname(target))
    os.rmdir(old)
    os.rename(target, old)
  os.rename(tmp, target)
  if old:
    shutil.rmtree(old, ignore_errors=True)


def write_report(report_dir: str, result: Mapping, videos: Sequence[video_lib.VideoPlotData],
                 config_text: str = "", title: str = "Evaluation report", num_videos: int = 3,
                 tiou: float = REPORT_TIOU, details: Optional[Mapping[str, str]] = None) -> str:
  """Writes the report (module docstring) into report_dir, atomically.

  Args:
    report_dir: a local folder; replaced if it exists.
    result: the dict `inference.evaluate_split` returns (tiou_thresholds, mAP, averages, classification_mAP, ...).
    videos: every evaluated video (`ReportCollector.videos`).
    config_text: the run's gin configuration, shown verbatim.
    title: the page title.
    num_videos: how many best and how many worst videos get a plot.
    tiou: the threshold of the per-class AP, the precision-recall curves and the ranking.
    details: extra "name: value" lines for the header (model_dir, data_dir, ...).

  Returns:
    The path of index.html.
  """
  require_matplotlib()
  report_dir = os.path.abspath(report_dir)
  parent = os.path.dirname(report_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(report_dir)}.tmp-", dir=parent)
  try:
    os.chmod(tmp, 0o755)
    page = _build(tmp, result, videos, config_text, title, num_videos, tiou, details or {})
    with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
      f.write(page)
    _replace_dir(tmp, report_dir)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return os.path.join(report_dir, "index.html")


def _build(out: str, result, videos, config_text, title, num_videos, tiou, details) -> str:
  """Writes the PNGs into out and returns the HTML page."""
  parts = [f"<h1>{html.escape(title)}</h1>", "<ul>"]
  generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  for key, value in list(details.items()) + [("videos", str(len(videos))), ("generated", generated)]:
    parts.append(f"<li><b>{html.escape(key)}</b>: {html.escape(str(value))}</li>")
  parts.append("</ul>")

  # Detection mAP per threshold, and the averages.
  thresholds = list(result.get("tiou_thresholds", []))
  averages = [(k[len("average_mAP_"):], v) for k, v in result.items() if k.startswith("average_mAP_")]
  header = ["", *[f"{t:g}" for t in thresholds], *[f"avg {k}" for k, _ in averages], "avg", "cls mAP"]
  row = ["mAP (%)", *[f"{100 * m:.2f}" for m in result.get("mAP", [])], *[f"{100 * v:.2f}" for _, v in averages],
         f"{100 * result.get('average_mAP', 0.0):.2f}", f"{100 * result.get('classification_mAP', 0.0):.2f}"]
  parts += ["<h2>Detection mAP per tIoU threshold</h2>", _table(header, [row], "map")]

  # Per-class AP and precision-recall at tiou.
  gt_rows, pred_rows = ground_truth_rows(videos), prediction_rows(videos)
  if gt_rows:
    curves = detection.precision_recall(gt_rows, pred_rows, tiou)
    rows = [(label, pr.num_instances, len(pr.scores), f"{100 * pr.ap:.2f}",
             f"{100 * pr.recall[-1]:.1f}" if pr.recall.size else "0.0") for label, pr in curves.items()]
    parts += [f"<h2>Per-class AP at tIoU {tiou:g}</h2>",
              _table(["class", "instances", "detections", f"AP@{tiou:g} (%)", "max recall (%)"], rows, "per-class")]
    fig = plots.plot_precision_recall({k: (v.precision, v.recall) for k, v in curves.items()},
                                      {k: v.ap for k, v in curves.items()}, tiou)
    plots.save_figure(fig, os.path.join(out, "precision_recall.png"))
    parts += [f"<h2>Precision-recall at tIoU {tiou:g}</h2>",
              '<img src="precision_recall.png" alt="precision-recall curves">']

  # Best and worst videos.
  best, worst = rank_videos(videos, num_videos, tiou)
  parts.append(f"<h2>Videos</h2><p>Ranked by per-video AP at tIoU {tiou:g}: the mean, over the classes annotated "
               "or detected in the video, of the AP of the video's detections of that class against its instances "
               "of that class (a class detected but not annotated counts 0). Videos with neither are not "
               "ranked.</p>")
  for name, chosen in (("Best", best), ("Worst", worst)):
    parts.append(f"<h3>{name} {len(chosen)}</h3>")
    for i, (data, measure) in enumerate(chosen):
      file_name = plots.png_name(data.video_id, prefix=f"{name.lower()}_{i + 1}_")
      plots.save_figure(plots.plot_video(data), os.path.join(out, "videos", file_name))
      parts.append(f"<h4>{html.escape(data.video_id)}: per-video AP {100 * measure:.1f}%</h4>"
                   f'<img src="videos/{html.escape(file_name)}" alt="{html.escape(data.video_id)}">')

  parts += ["<h2>Configuration (config.gin)</h2>", f"<pre>{html.escape(config_text)}</pre>"]
  style = ("body{font-family:sans-serif;margin:2em;max-width:1100px} table{border-collapse:collapse;margin:1em 0}"
           "td,th{border:1px solid #bbb;padding:2px 8px;text-align:right} img{max-width:100%}"
           "pre{background:#f4f4f4;padding:1em;overflow-x:auto}")
  return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
          f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def evaluate_with_report(model_dir: str, report_dir: str, data_dir: Optional[str] = None,
                         predictions_out: Optional[str] = None, num_videos: int = 3, gin_files=(), gin_params=(),
                         output_tag: Optional[str] = None) -> Dict:
  """`python -m stpn_tf.evaluate --model_dir=DIR --report_dir=OUT`: `runs.run_model_evaluation` (same files,
  same return value, same re-scoring options) and the HTML report of this evaluation in report_dir."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (this module is importable without TF)
  from stpn_tf import runs  # pylint: disable=import-outside-toplevel  (likewise)
  require_matplotlib()
  collectors = []

  def make_collector(task, manifest):
    collectors.append(ReportCollector(task, manifest.class_names, manifest.feature_rate))
    return collectors[-1]

  result = runs.run_model_evaluation(model_dir, data_dir, predictions_out=predictions_out, gin_files=gin_files,
                                     gin_params=gin_params, output_tag=output_tag,
                                     make_video_callback=make_collector)
  with tf.io.gfile.GFile(os.path.join(model_dir, "config.gin")) as f:
    config_text = f.read()
  task = collectors[0].task
  write_report(report_dir, result, collectors[0].videos, config_text=config_text,
               title=f"{getattr(task, 'name', 'model')}: evaluation on test", num_videos=num_videos,
               details={"model_dir": model_dir, "data_dir": data_dir,
                        "checkpoint": tf.train.latest_checkpoint(model_dir) or ""})
  return result
