r"""Trains and evaluates configurations over several seeds and tables mean and spread.

  python tools/run_experiments.py --gin_file=stpn.gin --seeds=0,1,2,3,4 [--data_dir=DIR] --output_dir=OUT
  python tools/run_experiments.py --experiment=bgm_table1 --seeds=0,1,2 --output_dir=OUT
  python tools/run_experiments.py --experiment=readme --seeds=0,1 --output_dir=OUT --update_readme=README.md
  python tools/run_experiments.py --experiment=bgm_table1 --seeds=0,1,2 --output_dir=OUT2 --reuse_dir=OUT
  python tools/run_experiments.py --experiment=stpn_fig5 --seeds=0,1,2 --output_dir=OUT --lanes=2
  python tools/run_experiments.py --list

Each run is its own `python -m stpn_tf.train` process (a crash loses only that run); finished runs are reused when
the command is repeated. Writes OUT/results.md and results.csv (mean and standard deviation over seeds, pandas),
results_runs.csv (every run) and experiment.json (configurations, commit, machine). --reuse_dir copies a missing run
from another output directory when a finished one there has the same gin configuration, seed and dataset (a paper
table's full-model row is the readme set's run of that paper file). --lanes=N trains N runs at once, each pinned
to its own share of the CPUs (stpn_tf/experiments/pin.py). Library:
stpn_tf/experiments/{sets,runner}.py.
"""

import os
import shlex
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stpn_tf.experiments import runner  # noqa: E402
from stpn_tf.experiments import sets  # noqa: E402

_EXPERIMENT = flags.DEFINE_string("experiment", None, "a named experiment set (see --list).")
_GIN_FILE = flags.DEFINE_multi_string("gin_file", [], "gin files of a single configuration (instead of --experiment).")
_GIN_PARAM = flags.DEFINE_multi_string("gin_param", [], "gin bindings added to every configuration.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "seeds; one run per seed and configuration.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "dataset directory (default: the built-in THUMOS14-like data).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "where runs and tables go.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "training steps of every run (default: each config's own).")
_CONFIGS = flags.DEFINE_list("configs", [], "run only these configurations of the set.")
_UPDATE_README = flags.DEFINE_string("update_readme", None, "replace the <!-- results:<set>:start/end --> block of "
                                     "this Markdown file with the results table.")
_REUSE_DIR = flags.DEFINE_multi_string("reuse_dir", [], "output directories of other sets: a missing run is copied "
                                        "from a finished run there with the same gin configuration, seed and dataset.")
_LANES = flags.DEFINE_integer("lanes", 1, "runs trained at once, each pinned to its own equal share of the CPUs "
                               "(2 on a 2-core machine: ~1.25x the throughput of one run at a time).")
_LIST = flags.DEFINE_bool("list", False, "list the experiment sets and exit.")
_TABLES_ONLY = flags.DEFINE_bool("tables_only", False, "train nothing: write the tables (and --update_readme) from "
                                 "the runs already finished in --output_dir.")


def main(argv):
  del argv
  if _LIST.value:
    for name, s in sets.experiment_sets().items():
      print(f"{name:15s} {len(s.configs):2d} configurations  {s.title}")
    return 0
  if bool(_EXPERIMENT.value) == bool(_GIN_FILE.value):
    raise app.UsageError("give exactly one of --experiment=NAME or --gin_file=FILE")
  if not _OUTPUT_DIR.value:
    raise app.UsageError("--output_dir is required")
  try:
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError as e:
    raise app.UsageError(f"--seeds must be integers: {_SEEDS.value}") from e
  experiment = sets.get(_EXPERIMENT.value) if _EXPERIMENT.value else sets.single(_GIN_FILE.value)
  if _CONFIGS.value:
    experiment = sets.ExperimentSet(experiment.name, experiment.title,
                                    tuple(experiment.config(c) for c in _CONFIGS.value), experiment.paper_metric)
  # The command that trains these runs (what the tables' "Regenerate" line shows): --tables_only only re-reads them.
  command = "python " + " ".join(shlex.quote(a) for a in sys.argv if a not in ("--tables_only", "--notables_only"))
  if _TABLES_ONLY.value:
    try:
      out = runner.write_tables_only(experiment, seeds, _OUTPUT_DIR.value, _DATA_DIR.value, _NUM_STEPS.value,
                                     _GIN_PARAM.value, command=command)
    except runner.ExperimentError as e:
      sys.exit(f"error: {e}")
  else:
    try:
      out = runner.run_experiment(experiment, seeds, _OUTPUT_DIR.value, _DATA_DIR.value, _NUM_STEPS.value,
                                  _GIN_PARAM.value, command=command, reuse_dirs=_REUSE_DIR.value,
                                  lanes=_LANES.value)
    except runner.ExperimentError as e:
      sys.exit(f"error: {e}")
  print(out["markdown"])
  if _UPDATE_README.value:
    runner.update_marked_block(_UPDATE_README.value, experiment.name, out["markdown"])
  if out["failed"]:
    print(f"{len(out['failed'])} runs failed: {out['failed']}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  app.run(main)
