r"""Scores temporal action detections: ActivityNet-protocol mAP at several tIoU thresholds.

File-scoring mode (NumPy only, no TensorFlow):

  python -m stpn_tf.evaluate --ground_truth=GT.json --predictions=PRED.json [--subset=test] \
      [--tiou_thresholds=0.1,0.2,...] [--exclude_videos=a,b or FILE] --output_json=OUT.json

Model mode (runs a trained model, then scores it; implemented in stpn_tf.runs):

  python -m stpn_tf.evaluate --model_dir=DIR [--data_dir=DIR] [--predictions_out=PRED.json] [--report_dir=OUT]

Without --data_dir, model mode scores the test split of the data the run trained on (DIR/data.json); a --data_dir
with other classes than the run's is refused. OUT.json names the data it scored ("data_dir", "split").

Re-scoring without retraining (model mode with other post-processing bindings on top of the run's config.gin):

  python -m stpn_tf.evaluate --model_dir=DIR --gin_param="stpn_detect.tcam_threshold = 0.05" [--gin_file=F.gin] \
      [--output_tag=NAME]

writes DIR/eval_test.<tag>.json, DIR/predictions_test.<tag>.json and DIR/rescore_test.<tag>.gin (the bindings),
tag = --output_tag or 'rescore-' + a hash of the bindings; the run's own eval_test.json and predictions_test.json
are left as they are. Without --gin_param / --gin_file the run's own files are (re)written.

--report_dir (model mode; needs matplotlib, `pip install -e ".[viz]"`) also writes an HTML report: OUT/index.html
with the mAP table, per-class AP and precision-recall curves at tIoU 0.5, plots of the best and worst videos and
the run's config.gin (stpn_tf/visualization/report.py).

Exactly one mode must be chosen. OUT.json (written atomically) holds fractions in [0, 1]:
{"tiou_thresholds", "mAP", "average_mAP", "num_ground_truth_videos", "num_ground_truth_instances",
"num_predictions", "average_mAP_0.1:0.5" / "average_mAP_0.1:0.7" (when those thresholds are evaluated),
"per_class_AP", counts of dropped / unmatched predictions, ...}. A table in percent is printed.

Input rules: GT {"database": {vid: {"subset", "annotations": [{"label", "segment": [s, e]}]}}}, predictions
{"results": {vid: [{"label", "score", "segment": [s, e]}]}}; numbers may be strings ("88.6").
Errors (exit status 1, message naming file, video and problem): unreadable, empty or malformed JSON, a missing
key, a segment with end < start or non-numeric/non-finite bounds, a NaN score, no annotation in the subset, a
video listed twice (in predictions or ground truth), an --exclude_videos value that looks like a path (a separator
or a file extension) but is no file.
Counted, not errors: predictions whose label is absent from the evaluated ground truth are dropped; predictions
for videos without ground truth stay as false positives (as in the ActivityNet reference); {"results": {}} scores 0.
num_ground_truth_videos counts videos with at least one annotation in the subset (after --exclude_videos).
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags

from stpn_tf import common_flags  # --model_dir: model mode; --data_dir: its dataset; --gin_file, --gin_param

FLAGS = flags.FLAGS

# File-scoring mode.
flags.DEFINE_string("ground_truth", None, "Ground-truth JSON in the ActivityNet format ({'database': ...}).")
flags.DEFINE_string("predictions", None, "Detections JSON in the ActivityNet format ({'results': ...}).")
flags.DEFINE_string("subset", None, "Evaluate only ground-truth videos of this subset (e.g. 'test'). Unset: all. "
                    "Predictions are not filtered: those for other videos count as false positives.")
flags.DEFINE_string("tiou_thresholds", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
                    "Comma-separated tIoU thresholds, or a preset name: 'thumos14' (0.1:0.1:0.9) or "
                    "'activitynet' (0.5:0.05:0.95).")
flags.DEFINE_string("exclude_videos", None, "Videos removed from ground truth and predictions: comma-separated ids, "
                    "or the path of a file with one id per line ('#' starts a comment).")
flags.DEFINE_string("output_json", None, "Where to write the scores (JSON, written atomically). Optional: the table "
                    "is always printed.")
# Model mode.
flags.DEFINE_string("predictions_out", None, "Model mode: where to write the model's detections JSON.")
flags.DEFINE_string("output_tag", None, "Model mode: name the outputs eval_test.<tag>.json / predictions_test.<tag>.json "
                    "(default with --gin_param/--gin_file: a hash of those bindings).")
flags.DEFINE_string("report_dir", None, "Model mode: also write an HTML report (index.html + PNGs) into this folder "
                    "(replaced atomically). Needs matplotlib: pip install -e \".[viz]\".")


def parse_thresholds(text: str) -> tuple:
  """Parses --tiou_thresholds: a preset name or comma-separated floats in [0, 1].

  Args:
    text: e.g. "0.1,0.5" or "thumos14" / "activitynet".

  Returns:
    Tuple of floats.

  Raises:
    app.UsageError: unparsable, empty or out-of-range values.
  """
  from stpn_tf.evaluation import detection  # pylint: disable=import-outside-toplevel
  presets = {"thumos14": detection.THUMOS14_TIOU_THRESHOLDS, "activitynet": detection.ACTIVITYNET_TIOU_THRESHOLDS}
  if text.strip().lower() in presets:
    return presets[text.strip().lower()]
  try:
    values = tuple(float(t) for t in text.split(",") if t.strip())
  except ValueError:
    raise app.UsageError(f"--tiou_thresholds must be comma-separated numbers, got {text!r}") from None
  if not values or not all(0.0 <= t <= 1.0 for t in values):
    raise app.UsageError(f"--tiou_thresholds must be non-empty values in [0, 1], got {text!r}")
  return values


def _check_mode() -> str:
  """Returns 'files' or 'model', or raises a usage error unless exactly one mode is fully given."""
  file_mode = FLAGS.ground_truth is not None or FLAGS.predictions is not None
  model_mode = FLAGS.model_dir is not None
  if file_mode == model_mode:
    raise app.UsageError("give exactly one of --ground_truth with --predictions (score files) or --model_dir "
                         "(run a model)")
  if file_mode:
    if FLAGS.ground_truth is None or FLAGS.predictions is None:
      raise app.UsageError("file mode needs both --ground_truth and --predictions")
    if FLAGS.data_dir is not None or FLAGS.predictions_out is not None or FLAGS.report_dir is not None or \
        FLAGS.output_tag is not None or common_flags.GIN_FILE.value or common_flags.GIN_PARAM.value:
      raise app.UsageError("--data_dir, --predictions_out, --report_dir, --output_tag, --gin_file and --gin_param "
                           "only apply with --model_dir")
    return "files"
  return "model"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _check_mode() == "model":
    # Imported here so that file mode never loads TensorFlow.
    from stpn_tf import runs  # pylint: disable=import-outside-toplevel
    from stpn_tf import evaluation  # pylint: disable=import-outside-toplevel
    rescoring = dict(gin_files=list(common_flags.GIN_FILE.value), gin_params=list(common_flags.GIN_PARAM.value),
                     output_tag=FLAGS.output_tag)
    if FLAGS.report_dir:
      from stpn_tf import visualization  # pylint: disable=import-outside-toplevel
      try:
        visualization.require_matplotlib()      # before any work
      except visualization.MissingMatplotlibError as e:
        sys.exit(f"evaluate: error: {e}")
      from stpn_tf.visualization import report  # pylint: disable=import-outside-toplevel
      result = report.evaluate_with_report(model_dir=FLAGS.model_dir, report_dir=FLAGS.report_dir,
                                           data_dir=FLAGS.data_dir, predictions_out=FLAGS.predictions_out,
                                           **rescoring)
    else:
      result = runs.run_model_evaluation(model_dir=FLAGS.model_dir, data_dir=FLAGS.data_dir,
                                         predictions_out=FLAGS.predictions_out, **rescoring)
    if FLAGS.output_json:
      evaluation.write_json_atomic(FLAGS.output_json, dict(result, model_dir=FLAGS.model_dir), indent=1)
    return
  from stpn_tf import evaluation  # pylint: disable=import-outside-toplevel
  try:
    result = evaluation.score_files(FLAGS.ground_truth, FLAGS.predictions, subset=FLAGS.subset,
                                    tiou_thresholds=parse_thresholds(FLAGS.tiou_thresholds),
                                    exclude_videos=FLAGS.exclude_videos)
  except evaluation.EvaluationInputError as e:
    sys.exit(f"evaluate: error: {e}")
  print(result.format_table(title=f"Detection mAP, subset={FLAGS.subset or 'all'}"))
  if FLAGS.output_json:
    out = dict(result.to_dict(), subset=FLAGS.subset, ground_truth=FLAGS.ground_truth, predictions=FLAGS.predictions)
    evaluation.write_json_atomic(FLAGS.output_json, out, indent=1)


if __name__ == "__main__":
  from stpn_tf import user_errors  # pylint: disable=g-import-not-at-top
  app.run(user_errors.reporting("evaluate", main))   # model mode's errors (e.g. data.json): one error line
