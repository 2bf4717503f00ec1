r"""Prints where a run's attention goes on built-in synthetic data (stpn_tf/evaluation/attention_events.py): per
network, the mean attention on labeled instances, unlabeled instances, distractors, non-target actions, context
(lead-in / follow-through) and plain background, and the share of those segments above 0.5.

  python tools/attention_by_event.py --model_dir=DIR [--data_dir=DIR] [--split=test] [--max_videos=0]

The event layout is not stored with the features: it is laid out again from the generator config and seed in the
dataset's manifest (stpn_tf/data/synthetic.py `video_event_kinds`), so this works only on data the built-in
generator wrote, at the same GENERATOR_VERSION. Trains nothing.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stpn_tf import common_flags  # noqa: E402
from stpn_tf import inference  # noqa: E402
from stpn_tf import runs  # noqa: E402
from stpn_tf.data import schema  # noqa: E402
from stpn_tf.data import synthetic  # noqa: E402
from stpn_tf.evaluation import attention_events  # noqa: E402
from stpn_tf.evaluation import attention_health  # noqa: E402
from stpn_tf.evaluation import io as eval_io  # noqa: E402
from stpn_tf.training import model_dir as model_dir_lib  # noqa: E402

_SPLIT = flags.DEFINE_string("split", "test", "split to report on.")
_MAX_VIDEOS = flags.DEFINE_integer("max_videos", 0, "report on the first N videos of the split only (0: all).")
_THRESHOLD = flags.DEFINE_float("threshold", 0.5, "the report's 'share above' threshold.")
_OUTPUT = flags.DEFINE_string("output_json", None, "also write the report here.")


def main(argv):
  try:
    _main(argv)
  except (schema.DataFormatError, model_dir_lib.ModelDirError, ValueError) as e:
    sys.exit(f"error: {e}")   # bad input: one line naming the file, no traceback


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  model_dir = common_flags.MODEL_DIR.value
  if not model_dir:
    raise app.UsageError("give --model_dir (a training run on built-in synthetic data)")
  data_dir = common_flags.DATA_DIR.value or model_dir_lib.resolve_data_dir(model_dir, None)[0]
  try:
    cfg, seed = synthetic.config_from_manifest(schema.read_manifest(data_dir))
  except ValueError as e:
    raise ValueError(f"{data_dir}: {e}") from e
  kinds = dict(synthetic.video_event_kinds(cfg, _SPLIT.value, seed))
  # Every segment of every video (a test-time sampler, such as STPN's 400 segments, would move the positions).
  task, models = runs.restore_models(model_dir, data_dir, gin_params=["make_eval_dataset.sampler = None"])
  networks = attention_health.attention_networks(task)
  if not networks:
    raise ValueError(f"{model_dir}: this run's model has no learned attention")
  acc = attention_events.AttentionByEvent(networks, _THRESHOLD.value)
  seen = 0
  for info, outputs in inference.predict_videos(task, models, data_dir, _SPLIT.value):
    video_kinds = kinds.get(info["video_id"])
    if video_kinds is None:
      raise ValueError(f"{data_dir}: video {info['video_id']} is not one the manifest's generator config lays out")
    if info["num_segments"] != video_kinds.size:
      raise ValueError(f"{data_dir}: video {info['video_id']} has {info['num_segments']} segments, the "
                       f"manifest's generator config lays out {video_kinds.size}: not the data it describes")
    for name in networks:
      acc.update(name, outputs[name]["attention"], video_kinds)
    seen += 1
    if _MAX_VIDEOS.value and seen >= _MAX_VIDEOS.value:
      break
  result = acc.result()
  result["num_videos"] = seen
  print(f"{model_dir}, {seen} {_SPLIT.value} videos")
  print(attention_events.format_result(result))
  if _OUTPUT.value:
    eval_io.write_json_atomic(_OUTPUT.value, result, indent=1)


if __name__ == "__main__":
  app.run(main)
