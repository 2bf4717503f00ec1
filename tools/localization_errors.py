r"""Prints where a run's detection mAP goes (stpn_tf/evaluation/localization_errors.py): missed instances,
boundaries, merges.

  python tools/localization_errors.py --model_dir=DIR [--data_dir=DIR] [--predictions=FILE] [--top_k=20]
  python tools/localization_errors.py --ground_truth=GT.json --predictions=PRED.json [--subset=test]

Predictions: DIR/predictions_test.json (or --predictions, any ActivityNet-style detection file); ground truth:
the test split of the data the run trained on (or --data_dir), or an ActivityNet-style ground-truth file (e.g. a
public STPN reproduction's real THUMOS14 detections and ground truth, to compare with). Trains nothing.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stpn_tf import common_flags  # noqa: E402
from stpn_tf import inference  # noqa: E402
from stpn_tf.data import schema  # noqa: E402
from stpn_tf.evaluation import io as eval_io  # noqa: E402
from stpn_tf.evaluation import localization_errors  # noqa: E402
from stpn_tf.training import model_dir as model_dir_lib  # noqa: E402

_PREDICTIONS = flags.DEFINE_string("predictions", None, "detection file (default: MODEL_DIR/predictions_test.json).")
_SPLIT = flags.DEFINE_string("split", "test", "split holding the ground truth.")
_TOP_K = flags.DEFINE_integer("top_k", 20, "highest-scored detections per video in the detection-side figures.")
_OUTPUT = flags.DEFINE_string("output_json", None, "also write the profile here.")
_GROUND_TRUTH = flags.DEFINE_string("ground_truth", None, "ActivityNet-style ground-truth file (instead of a dataset).")
_SUBSET = flags.DEFINE_string("subset", None, "with --ground_truth: keep only videos of this subset.")


def main(argv):
  try:
    _main(argv)
  except (eval_io.EvaluationInputError, schema.DataFormatError, model_dir_lib.ModelDirError) as e:
    sys.exit(f"error: {e}")   # bad input: one line naming the file, no traceback


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  model_dir = common_flags.MODEL_DIR.value
  if not model_dir and not (_PREDICTIONS.value and (common_flags.DATA_DIR.value or _GROUND_TRUTH.value)):
    raise app.UsageError("give --model_dir, or --predictions with --data_dir or --ground_truth")
  predictions = _PREDICTIONS.value or os.path.join(model_dir, "predictions_test.json")
  if _GROUND_TRUTH.value:
    ground_truth = eval_io.load_ground_truth(_GROUND_TRUTH.value, _SUBSET.value)
  else:
    data_dir = common_flags.DATA_DIR.value
    if not data_dir:
      data_dir, _ = model_dir_lib.resolve_data_dir(model_dir, None)
    manifest = schema.read_manifest(data_dir)
    infos = [{"video_id": v.video_id, "segments": v.segments, "segment_labels": v.segment_labels}
             for v in schema.read_videos(data_dir, _SPLIT.value, streams=())]
    ground_truth = inference.ground_truth_frame(infos, manifest.class_names)
  profile = localization_errors.error_profile(ground_truth, eval_io.load_predictions(predictions), _TOP_K.value)
  print(localization_errors.format_profile(profile))
  if _OUTPUT.value:
    eval_io.write_json_atomic(_OUTPUT.value, profile, indent=1)


if __name__ == "__main__":
  app.run(main)
