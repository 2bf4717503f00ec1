r"""Chooses post-processing values that neither the paper nor the reference code gives, on a validation holdout of
the *training* videos (never the test split), for a trained run.

  python tools/select_postprocess.py --model_dir=DIR [--data_dir=DIR] \
      --grid='stpn_detect.tcam_threshold=0.05,0.1,0.2' [--grid='stpn_detect.nms_threshold=0.3,0.5'] \
      [--metric=average_mAP] [--validation_fraction=F] [--selection_json=OUT.json]

Every combination of the --grid values (cartesian product) is applied on top of the run's config.gin and scored on
the run's held-out training videos (`train_eval.validation_fraction` and `train_eval.seed` of the run: videos it
never trained on). A run trained on every video has no holdout: retrain with
`--gin_param='train_eval.validation_fraction = 0.1'`, or pass --validation_fraction (the result then records that
the videos were trained on). Prints one line per candidate and the chosen bindings as --gin_param flags, e.g. for
`python -m stpn_tf.evaluate --model_dir=DIR --gin_param=...` (re-scoring the test split once, with the chosen
values) or for the next training's gin file.
"""

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stpn_tf import common_flags  # noqa: E402
from stpn_tf import config  # noqa: E402
from stpn_tf import runs  # noqa: E402
from stpn_tf.evaluation import io as eval_io  # noqa: E402

_GRID = flags.DEFINE_multi_string("grid", [], "'binding=v1,v2,...' (gin literals); several flags: every combination.")
_METRIC = flags.DEFINE_string("metric", "average_mAP", "score to maximize: average_mAP or e.g. average_mAP_0.1:0.5.")
_FRACTION = flags.DEFINE_float("validation_fraction", None, "holdout share of the training videos (default: the "
                               "run's train_eval.validation_fraction).")
_OUTPUT = flags.DEFINE_string("selection_json", None, "where to write every candidate's scores and the choice.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not common_flags.MODEL_DIR.value or not _GRID.value:
    raise app.UsageError("--model_dir and at least one --grid are required")
  try:
    grid = runs.parse_grid(_GRID.value)
    result = runs.select_postprocess(common_flags.MODEL_DIR.value,
                                     common_flags.DATA_DIR.value or config.builtin_dataset(), grid,
                                     validation_fraction=_FRACTION.value, metric=_METRIC.value)
  except ValueError as e:
    sys.exit(f"select_postprocess: error: {e}")
  holdout = result["holdout"]
  print(f"{holdout['num_videos']} held-out training videos (fraction {holdout['validation_fraction']}, seed "
        f"{holdout['seed']}{', INCLUDING videos the run trained on' if holdout['includes_trained_videos'] else ''})")
  for candidate in result["candidates"]:
    print(f"{100 * candidate[result['metric']]:6.2f}  {'; '.join(candidate['bindings'])}")
  print("chosen: " + " ".join(f"--gin_param='{b}'" for b in result["best"]["bindings"]))
  if _OUTPUT.value:
    eval_io.write_json_atomic(_OUTPUT.value, result, indent=1)


if __name__ == "__main__":
  app.run(main)
