"""The `python -m stpn_tf.visualize` binary on the tiny trained run: files, what they show, errors."""

import os
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from stpn_tf import runs
from stpn_tf import inference
from stpn_tf import visualize
from stpn_tf.data import schema
from stpn_tf.visualization import plots
from tests.visualization import is_png
from tests.visualization import no_temporary_files

FLAGS = flags.FLAGS


def _run(*args):
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(["visualize", *args])
    visualize.main(["visualize"])


def test_writes_one_png_per_video_showing_the_data_and_the_detections(tiny_run, tmp_path, monkeypatch):
  shown = []
  original = plots.plot_video
  monkeypatch.setattr(plots, "plot_video", lambda data, **kw: shown.append(data) or original(data, **kw))
  out = tmp_path / "pictures"
  _run(f"--model_dir={tiny_run.model_dir}", f"--data_dir={tiny_run.data_dir}", "--video_ids=test/2,test/0",
       f"--output_dir={out}")
  assert sorted(os.listdir(out)) == ["test_0.png", "test_2.png"]
  assert all(is_png(out / name) for name in os.listdir(out)) and no_temporary_files(out)
  assert [d.video_id for d in shown] == ["test/2", "test/0"]
  # Ground truth = the dataset's instances; detections = the restored run's post-processor (its gin bindings).
  task, models = runs.restore_models(tiny_run.model_dir, tiny_run.data_dir)
  rate = schema.read_manifest(tiny_run.data_dir).feature_rate
  expected = {info["video_id"]: task.detect(outputs, rate)
              for info, outputs in inference.predict_videos(task, models, tiny_run.data_dir, "test")}
  total = 0
  for data in shown:
    stored = tiny_run.videos[data.video_id]
    np.testing.assert_allclose([(g.start_s, g.end_s) for g in data.ground_truth], stored.segments, rtol=1e-6)
    assert [g.class_index for g in data.ground_truth] == list(stored.segment_labels)
    want = expected[data.video_id]
    np.testing.assert_allclose(np.array([(d.start_s, d.end_s, d.score) for d in data.detections]).reshape(-1, 3),
                               np.column_stack([want.start_s, want.end_s, want.score]), rtol=1e-6)
    assert [d.class_index for d in data.detections] == list(want.class_index)
    assert data.feature_rate == rate
    total += len(data.detections)
  assert total > 0


def test_num_videos_takes_the_first_videos(tiny_run, tmp_path):
  _run(f"--model_dir={tiny_run.model_dir}", f"--data_dir={tiny_run.data_dir}", "--num_videos=1",
       f"--output_dir={tmp_path}")
  assert os.listdir(tmp_path) == [plots.png_name(next(iter(tiny_run.videos)))]


@pytest.mark.parametrize("case", ["unknown video", "empty model_dir"])
def test_errors_are_clear(case, tiny_run, tmp_path):
  model_dir, ids = tiny_run.model_dir, "test/0,nope"
  if case == "empty model_dir":
    model_dir, ids = str(tmp_path / "empty"), ""
    os.makedirs(model_dir)
  with pytest.raises(SystemExit) as e:
    _run(f"--model_dir={model_dir}", f"--data_dir={tiny_run.data_dir}", f"--video_ids={ids}",
         f"--output_dir={tmp_path / 'out'}")
  message = str(e.value.code)
  assert ("has no video 'nope'" in message) if case == "unknown video" else ("no checkpoint" in message)
  assert not os.path.exists(tmp_path / "out")


def test_without_matplotlib_exits_with_the_install_hint(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  with pytest.raises(SystemExit) as e:
    _run(f"--model_dir={tmp_path}", f"--output_dir={tmp_path / 'out'}")
  assert 'pip install -e ".[viz]"' in str(e.value.code)
