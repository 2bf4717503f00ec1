"""Per-video plots of live models: choosing the videos, and images for TensorBoard (`summary_images`).

Runs the models with `inference.predict_videos` (TensorFlow, imported when called: the visualization modules import
without TensorFlow, tests/visualization/plots_test.py; inference imports nothing of visualization, so this is no
import cycle), then draws with `plots.plot_video` (matplotlib,
imported lazily: without it `MissingMatplotlibError` says how to install it).
"""

from __future__ import annotations

from typing import Callable, Collection, List, Optional, Tuple, Union

import numpy as np

from stpn_tf.visualization import plots
from stpn_tf.visualization import require_matplotlib
from stpn_tf.visualization import video as video_lib

VideoFilter = Union[None, Callable[[str], bool], Collection[str]]


class UnknownVideoError(ValueError):
  """Requested video ids are not in the split; the message names them."""


def collect_videos(task, models, data_dir: str, split: str = "test", video_ids: Optional[Collection[str]] = None,
                   num_videos: Optional[int] = None, video_filter: VideoFilter = None, holdout=None
                   ) -> List[video_lib.VideoPlotData]:
  """Runs the models on videos of a split and returns what their plots show, in the split's file order.

  Args:
    task: the model task.
    models: {network: keras.Model} (`task.build_models` or `runs.restore_models`).
    data_dir: dataset directory.
    split: the split to read.
    video_ids: exactly these videos (then num_videos and video_filter are ignored); an id not in the split is an
      error.
    num_videos: at most this many videos (the first ones passing video_filter); None = all.
    video_filter: None (every video), a predicate video_id -> bool, or a collection of ids to keep.
    holdout: a pipeline.Holdout: only the split's held-out validation videos.

  Returns:
    List of VideoPlotData (detections from `task.detect`, probabilities from `task.video_probabilities`).

  Raises:
    UnknownVideoError: some of video_ids are not in the split.
  """
  from stpn_tf import inference  # pylint: disable=import-outside-toplevel  (TensorFlow; see the module docstring)
  from stpn_tf.data import schema  # pylint: disable=import-outside-toplevel  (likewise)
  manifest = schema.read_manifest(data_dir)
  wanted = list(dict.fromkeys(video_ids)) if video_ids else None
  if wanted is not None:
    keep, limit = set(wanted).__contains__, len(wanted)
  else:
    keep = video_filter if callable(video_filter) else (
        set(video_filter).__contains__ if video_filter is not None else (lambda _: True))
    limit = num_videos
  found = {}
  if limit is None or limit > 0:
    for info, outputs in inference.predict_videos(task, models, data_dir, split, holdout=holdout):
      if not keep(info["video_id"]):
        continue
      found[info["video_id"]] = video_lib.video_plot_data(task, info, outputs, manifest.class_names,
                                                          manifest.feature_rate)
      if limit is not None and len(found) >= limit:
        break
  if wanted is not None:
    missing = [v for v in wanted if v not in found]
    if missing:
      raise UnknownVideoError(f"{data_dir}: split {split!r} has no video {', '.join(map(repr, missing))}")
    return [found[v] for v in wanted]
  return list(found.values())


def summary_images(task, models, data_dir: str, split: str = "test", num_videos: int = 3,
                   video_filter: VideoFilter = None, figsize: Tuple[float, float] = (10.0, 7.0), dpi: int = 80,
                   holdout=None) -> List[Tuple[str, np.ndarray]]:
  """A few per-video plots of the current models, as images for `tf.summary.image`.

  Contract:
    * Runs the models in inference mode (`training=False`) on the first `num_videos` videos of `split` (file
      order, so the same videos at every call) that pass `video_filter`, post-processes them with
      `task.detect(outputs, manifest.feature_rate)` under the gin bindings active in the process, and draws each
      with `plots.plot_video` (ground truth, attention, class activation, detections, top probabilities).
    * Returns [(video_id, image)], image a uint8 NumPy array [H, W, 3] (RGB, H = figsize[1] * dpi, W = figsize[0]
      * dpi: every image of a call has the same shape, 560 x 800 by default). Fewer items when the split has fewer
      videos; [] for num_videos <= 0.
    * Changes no model weights, no gin state and no global matplotlib state (no pyplot); writes no files.
    * Cost: a forward pass over the first batch(es) of 8 videos plus about 0.5 s of drawing per video (measured on
      a loaded 2-core CPU: 2 s for 3 videos of the tiny preset).
    * Raises MissingMatplotlibError (an ImportError with the `pip install -e ".[viz]"` hint) without matplotlib
      (check `stpn_tf.visualization.matplotlib_available()` first to skip quietly), and DataFormatError for a
      missing split.

  Args:
    task: the model task (e.g. the trainer's `task`).
    models: {network: keras.Model} (e.g. the trainer's `trainer.models`).
    data_dir: dataset directory.
    split: the split to draw from (the training loop draws the held-out validation videos of "train").
    num_videos: how many videos.
    video_filter: None, a predicate video_id -> bool, or a collection of video ids to choose from.
    figsize: inches; dpi: pixels per inch.
    holdout: a pipeline.Holdout: draw from the split's held-out validation videos only.

  Returns:
    List of (video_id, uint8 [H, W, 3]).
  """
  require_matplotlib()
  if num_videos <= 0:
    return []
  videos = collect_videos(task, models, data_dir, split, num_videos=num_videos, video_filter=video_filter,
                          holdout=holdout)
  return [(data.video_id, plots.figure_to_array(plots.plot_video(data, figsize=figsize, dpi=dpi)))
          for data in videos]
