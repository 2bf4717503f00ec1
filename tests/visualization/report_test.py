"""`python -m stpn_tf.evaluate --model_dir=... --report_dir=...`: the HTML report and its pictures; the ranking."""

import html.parser
import json
import os
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from stpn_tf import evaluate
from stpn_tf.visualization import report
from stpn_tf.visualization import video
from tests.visualization import is_png
from tests.visualization import no_temporary_files

FLAGS = flags.FLAGS


class _Page(html.parser.HTMLParser):
  """Collects the tables (as lists of rows of cell texts), the image sources and the <pre> text."""

  def __init__(self):
    super().__init__()
    self.tables, self.images, self.pre, self._cell, self._in_pre = [], [], "", None, False

  def handle_starttag(self, tag, attrs):
    if tag == "table":
      self.tables.append([])
    elif tag == "tr":
      self.tables[-1].append([])
    elif tag in ("td", "th"):
      self._cell = ""
    elif tag == "img":
      self.images.append(dict(attrs)["src"])
    elif tag == "pre":
      self._in_pre = True

  def handle_endtag(self, tag):
    if tag in ("td", "th"):
      self.tables[-1][-1].append(self._cell)
      self._cell = None
    elif tag == "pre":
      self._in_pre = False

  def handle_data(self, data):
    if self._cell is not None:
      self._cell += data
    if self._in_pre:
      self.pre += data


def _evaluate(*args):
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(["evaluate", *args])
    evaluate.main(["evaluate"])


def test_report_holds_tables_pictures_and_config(tiny_run, tmp_path):
  out = tmp_path / "report"
  os.makedirs(out)
  (out / "stale.txt").write_text("replaced")                         # an existing report is replaced whole
  _evaluate(f"--model_dir={tiny_run.model_dir}", f"--data_dir={tiny_run.data_dir}", f"--report_dir={out}")
  result = json.load(open(os.path.join(tiny_run.model_dir, "eval_test.json")))   # written as before
  assert not (out / "stale.txt").exists() and no_temporary_files(tmp_path)
  assert [p for p in os.listdir(tmp_path) if p != "report"] == []
  page = _Page()
  page.feed((out / "index.html").read_text())
  # mAP table: one row, values of eval_test.json in percent.
  header, row = page.tables[0]
  assert header[1:10] == [f"{t:g}" for t in result["tiou_thresholds"]]
  assert [float(v) for v in row[1:10]] == pytest.approx([100 * m for m in result["mAP"]], abs=0.006)
  # Per-class AP at 0.5 = the evaluation's.
  per_class = {r[0]: float(r[3]) for r in page.tables[1][1:]}
  assert per_class == pytest.approx({k: 100 * v[4] for k, v in result["per_class_AP"].items()}, abs=0.006)
  # Pictures: the PR plot and the best and worst videos (4 test videos: 3 best, 1 worst), all real PNGs.
  assert page.images[0] == "precision_recall.png" and len(page.images) == 5
  assert all(is_png(out / src) for src in page.images)
  assert sum(src.startswith("videos/best_") for src in page.images) == 3
  assert page.pre == open(os.path.join(tiny_run.model_dir, "config.gin")).read()


def test_per_video_ap_ranks_videos():
  def data(video_id, detections, gt=((0.0, 2.0, 0),)):
    return video.VideoPlotData(video_id, 1.0, 4.0, ("a", "b"), tuple(video.Interval(*g) for g in gt),
                               tuple(video.Interval(*d) for d in detections), {}, {}, "", np.zeros(2), np.zeros(2))
  perfect = data("perfect", [(0.0, 2.0, 0, 0.9)])
  half = data("half", [(3.0, 4.0, 0, 0.9), (0.0, 2.0, 0, 0.5)])   # a false positive ranked first: AP 0.5
  extra = data("extra", [(0.0, 2.0, 0, 0.9), (0.0, 2.0, 1, 0.9)])  # + a class not annotated: (1 + 0) / 2
  missed = data("missed", [(0.0, 2.0, 1, 0.9)])                     # wrong class only: (0 + 0) / 2
  no_truth = data("no_truth", [(0.0, 2.0, 1, 0.9)], gt=())
  nothing = data("nothing", [], gt=())
  measures = [report.per_video_ap(v) for v in (perfect, half, extra, missed, no_truth, nothing)]
  assert measures == [1.0, 0.5, 0.5, 0.0, 0.0, None]
  best, worst = report.rank_videos([missed, half, nothing, no_truth, extra, perfect], 2)
  assert [(v.video_id, m) for v, m in best] == [("perfect", 1.0), ("extra", 0.5)]
  assert [v.video_id for v, _ in worst] == ["missed", "no_truth"]


def test_report_dir_needs_model_mode_and_matplotlib(tmp_path, monkeypatch):
  from absl import app  # pylint: disable=import-outside-toplevel
  with pytest.raises(app.UsageError, match="--report_dir"):
    _evaluate("--ground_truth=g.json", "--predictions=p.json", f"--report_dir={tmp_path}")
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  with pytest.raises(SystemExit) as e:
    _evaluate(f"--model_dir={tmp_path}", f"--report_dir={tmp_path / 'r'}")
  assert 'pip install -e ".[viz]"' in str(e.value.code)
