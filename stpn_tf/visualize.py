r"""Draws one picture per video of a trained run: ground truth, attention, class activation, detections.

  python -m stpn_tf.visualize --model_dir=DIR [--data_dir=DIR] [--video_ids=a,b] [--num_videos=N] \
      [--split=test] --output_dir=OUT

Restores the run (DIR/config.gin and its last checkpoint), runs it on the chosen videos of the split (--video_ids,
else the first --num_videos in file order), post-processes them as `python -m stpn_tf.evaluate` does, and writes
OUT/<video id>.png for each (through a temporary name, renamed when complete). What a picture shows:
stpn_tf/visualization/plots.py `plot_video`. Needs matplotlib: pip install -e ".[viz]".
"""

import os
import sys

from absl import app
from absl import flags

from stpn_tf import common_flags
from stpn_tf import visualization

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "where to write the PNG files (created if needed).")
_VIDEO_IDS = flags.DEFINE_list("video_ids", [], "videos to draw (comma-separated ids); default: the first "
                               "--num_videos of the split.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 5, "how many videos to draw when --video_ids is not given.")
_SPLIT = flags.DEFINE_string("split", "test", "the dataset split the videos come from.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not common_flags.MODEL_DIR.value or not _OUTPUT_DIR.value:
    raise app.UsageError("--model_dir and --output_dir are required")
  try:
    visualization.require_matplotlib()
  except visualization.MissingMatplotlibError as e:
    sys.exit(f"visualize: error: {e}")
  # TensorFlow is only loaded once the flags are known to be usable.
  from stpn_tf import runs  # pylint: disable=import-outside-toplevel
  from stpn_tf.data import schema  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  from stpn_tf.training import trainer  # pylint: disable=import-outside-toplevel
  from stpn_tf.visualization import plots  # pylint: disable=import-outside-toplevel
  from stpn_tf.visualization import summaries  # pylint: disable=import-outside-toplevel
  try:
    data_dir, _ = model_dir_lib.resolve_data_dir(common_flags.MODEL_DIR.value, common_flags.DATA_DIR.value)
    task, models = runs.restore_models(common_flags.MODEL_DIR.value, data_dir)
    videos = summaries.collect_videos(task, models, data_dir, _SPLIT.value, video_ids=_VIDEO_IDS.value,
                                      num_videos=_NUM_VIDEOS.value)
  except (trainer.ModelDirError, schema.DataFormatError, summaries.UnknownVideoError) as e:
    sys.exit(f"visualize: error: {e}")
  for data in videos:
    path = plots.save_figure(plots.plot_video(data), os.path.join(_OUTPUT_DIR.value, plots.png_name(data.video_id)))
    print(path, flush=True)


if __name__ == "__main__":
  app.run(main)
