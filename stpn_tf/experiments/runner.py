"""Runs an experiment set (configurations x seeds) as separate training processes and tables the results.

Layout of an output directory:
  OUT/runs/<config>/seed_<k>/      a normal model directory (checkpoints, config.gin, eval_test.json, ...) plus
                                   experiment_run.json (what it is) and log.txt (the process's output)
  OUT/results_runs.csv             one row per finished run: mAP per IoU, averages, classification mAP, wall time
  OUT/results.csv, results.md      mean and standard deviation over seeds per configuration (pandas), the paper's
                                   numbers beside ours, and how to regenerate the table
  OUT/experiment.json              the set, seeds, exact configurations, commit and machine

Every run is its own `python -m stpn_tf.train` process, so a crash loses only that run; a run whose
eval_test.json exists is finished and never redone (rerunning the command fills in what is missing). A run folder
made for another configuration is refused rather than reused. Nothing here reads the test split to choose
anything: every run reports its last checkpoint.

Sets share rows: every paper table's full model is a model's paper file, also a row of the `readme` set. With
`reuse_dirs` (`--reuse_dir`), a missing run is copied from a finished run in another output directory whose gin
files and bindings parse to the same gin configuration (same seed, dataset and steps): e.g. bgm_table1's row 8
restates bgm.gin's weights and is the `readme` set's `bgm` run. The copy records where it came from
(experiment_run.json "reused_from") and the tables say how many runs were copied.

On a machine with few cores, `lanes` (`--lanes=N`) trains N runs at once, each pinned to its own equal share of
the CPUs (stpn_tf.experiments.pin; each run's experiment_run.json records its "cpus"): on 2 cores two runs pinned
to one core each give ~1.25x the throughput of one run on both, where two unpinned runs slow each other ~5x.

Run long experiments from a checkout nobody edits (e.g. `git worktree add ../frozen HEAD` and PYTHONPATH=../frozen):
tf.function's autograph re-reads a function's source file when it first converts it, so editing the code while a
run is in flight can make that run fail or, worse, run code that is not the commit the results claim.
"""

from concurrent import futures
import datetime
import glob
import json
import os
import platform
import shutil
import subprocess
import queue
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from stpn_tf.experiments import pin
from stpn_tf.experiments import sets as sets_lib

RUN_SPEC = "experiment_run.json"
RESULT = "eval_test.json"
IOU_COLUMNS = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9")
AVERAGE_COLUMNS = ("avg 0.1:0.5", "avg 0.1:0.7", "avg 0.3:0.7")
# The weakest network's median per-video attention AUC (evaluation/attention_health.py; a fraction, not %): issue
# 16 asks >= 0.75 of every network, so the smallest one is the number to read.
ATTENTION_COLUMN = "min attention AUC"
METRIC_COLUMNS = IOU_COLUMNS + AVERAGE_COLUMNS + ("cls mAP", ATTENTION_COLUMN)


class ExperimentError(RuntimeError):
  """A run folder that belongs to another configuration, or runs that failed."""


_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_dir(output_dir: str, config: sets_lib.Config, seed: int) -> str:
  return os.path.join(output_dir, "runs", config.name, f"seed_{seed}")


def train_command(config: sets_lib.Config, seed: int, model_dir: str, data_dir: Optional[str] = None,
                  num_steps: Optional[int] = None, extra_gin_params: Sequence[str] = ()) -> List[str]:
  """The `python -m stpn_tf.train` command line of one run (the seed is the run's one gin-bound seed)."""
  cmd = [sys.executable, "-m", "stpn_tf.train", f"--model_dir={model_dir}"]
  cmd += [f"--gin_file={f}" for f in config.gin_files]
  cmd += [f"--gin_param={p}" for p in (*config.gin_params, *extra_gin_params, f"train_eval.seed = {seed}")]
  if data_dir:
    cmd.append(f"--data_dir={data_dir}")
  if num_steps:
    cmd.append(f"--num_steps={num_steps}")
  return cmd


def pinned_command(cmd: Sequence[str], cpus: Sequence[int]) -> List[str]:
  """`cmd` run through stpn_tf.experiments.pin, pinned to `cpus`."""
  return [sys.executable, "-m", "stpn_tf.experiments.pin", pin.format_cpus(cpus), "--", *cmd]


def cpu_lanes(lanes: int, cpus: Optional[Sequence[int]] = None) -> List[Tuple[int, ...]]:
  """Splits `cpus` (default: the CPUs this process may run on) into `lanes` disjoint groups of equal size, in
  order; CPUs left over by the division go unused, so that every lane gets the same share of the machine."""
  available = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
  if lanes < 1:
    raise ExperimentError(f"--lanes must be at least 1, got {lanes}")
  if lanes > len(available):
    raise ExperimentError(f"--lanes={lanes} needs at least {lanes} CPUs; this process may use {len(available)} "
                          f"({pin.format_cpus(available)})")
  per_lane = len(available) // lanes
  return [tuple(available[i * per_lane:(i + 1) * per_lane]) for i in range(lanes)]


def _read_json(path: str):
  with open(path) as f:
    return json.load(f)


def _write_text_atomic(path: str, text: str) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def effective_gin(gin_files: Sequence[str], gin_params: Sequence[str]) -> str:
  """The gin configuration that gin files plus bindings parse to (gin.config_str(): every binding, one per line,
  sorted), so that two configurations writing the same values differently compare equal. Leaves gin cleared."""
  import gin  # pylint: disable=import-outside-toplevel  (TensorFlow and every model: only when reusing runs)
  from stpn_tf import config as config_lib  # pylint: disable=import-outside-toplevel
  gin.clear_config()
  try:
    config_lib.parse_gin(gin_files, gin_params, finalize=False)
    return gin.config_str()
  finally:
    gin.clear_config()


def _run_bindings(spec: Dict) -> List[str]:
  return [*spec["gin_params"], *spec.get("extra_gin_params", []), f"train_eval.seed = {spec['seed']}"]


def find_reusable_run(spec: Dict, reuse_dirs: Sequence[str]) -> Optional[str]:
  """A finished run folder under reuse_dirs/runs/*/seed_<k> with the same seed, dataset, steps and effective gin
  configuration as `spec` (a run_one spec), or None."""
  target = None
  for reuse_dir in reuse_dirs:
    for spec_path in sorted(glob.glob(os.path.join(reuse_dir, "runs", "*", f"seed_{spec['seed']}", RUN_SPEC))):
      record = _read_json(spec_path)
      other = record.get("spec") or {}
      folder = os.path.dirname(spec_path)
      if (record.get("status") != "finished" or not os.path.exists(os.path.join(folder, RESULT))
          or record.get("reused_from") or any(other.get(k) != spec[k] for k in ("seed", "data_dir", "num_steps"))):
        continue
      target = target if target is not None else effective_gin(spec["gin_files"], _run_bindings(spec))
      if effective_gin(other["gin_files"], _run_bindings(other)) == target:
        return folder
  return None


def _copy_run(source: str, model_dir: str, spec: Dict) -> Dict:
  """Copies a finished run folder to model_dir (a temporary name first) with this configuration's spec."""
  original = _read_json(os.path.join(source, RUN_SPEC))
  tmp = f"{model_dir}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  shutil.copytree(source, tmp)
  record = dict(original, spec=spec, reused_from=os.path.abspath(source), reused_spec=original["spec"])
  _write_text_atomic(os.path.join(tmp, RUN_SPEC), json.dumps(record, indent=1))
  os.makedirs(os.path.dirname(model_dir), exist_ok=True)
  os.replace(tmp, model_dir)
  return record


def run_one(config: sets_lib.Config, seed: int, output_dir: str, data_dir: Optional[str] = None,
            num_steps: Optional[int] = None, extra_gin_params: Sequence[str] = (), log=print,
            reuse_dirs: Sequence[str] = (), cpus: Optional[Sequence[int]] = None) -> Dict:
  """Trains and evaluates one (configuration, seed) unless it is already finished, or copies it from an equal
  finished run under reuse_dirs (find_reusable_run). `cpus` pins the training process to those CPUs
  (stpn_tf.experiments.pin). Returns its status record."""
  model_dir = run_dir(output_dir, config, seed)
  spec = dict(config.spec(), seed=seed, data_dir=data_dir, num_steps=num_steps,
              extra_gin_params=list(extra_gin_params))
  spec_path = os.path.join(model_dir, RUN_SPEC)
  if os.path.exists(spec_path):
    existing = _read_json(spec_path)
    if existing.get("spec") != spec:
      raise ExperimentError(f"{model_dir} holds a run of another configuration ({existing.get('spec')}); this one is "
                            f"{spec}. Use another --output_dir or remove that folder.")
    if existing.get("status") == "finished" and os.path.exists(os.path.join(model_dir, RESULT)):
      return existing
  if reuse_dirs and not os.path.exists(model_dir):
    source = find_reusable_run(spec, reuse_dirs)
    if source:
      log(f"[{config.name} seed {seed}] copied from {source} (the same gin configuration)")
      return _copy_run(source, model_dir, spec)
  os.makedirs(model_dir, exist_ok=True)
  cmd = train_command(config, seed, model_dir, data_dir, num_steps, extra_gin_params)
  if cpus:
    cmd = pinned_command(cmd, cpus)
  record = {"spec": spec, "command": cmd, "status": "running", "started": _now(), **git_commit(_REPO)}
  if cpus:
    record["cpus"] = list(cpus)
  _write_text_atomic(spec_path, json.dumps(record, indent=1))
  log(f"[{config.name} seed {seed}] training: {' '.join(cmd[1:])}")
  start = time.time()
  with open(os.path.join(model_dir, "log.txt"), "a") as out:
    returncode = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
  record["wall_s"] = record.get("wall_s", 0.0) + time.time() - start
  ok = returncode == 0 and os.path.exists(os.path.join(model_dir, RESULT))
  record.update(status="finished" if ok else "failed", returncode=returncode, ended=_now())
  _write_text_atomic(spec_path, json.dumps(record, indent=1))
  log(f"[{config.name} seed {seed}] {record['status']} in {record['wall_s']:.0f} s"
      + ("" if ok else f" (exit status {returncode}; see {os.path.join(model_dir, 'log.txt')})"))
  return record


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _metrics(result: Dict) -> Dict[str, float]:
  """Percentages from an eval_test.json (inference.evaluate_split)."""
  out = {}
  for iou, value in zip(result["tiou_thresholds"], result["mAP"]):
    out[f"{float(iou):.1f}"] = 100.0 * value
  for column in AVERAGE_COLUMNS:
    key = "average_mAP_" + column.split(" ")[1]
    if key in result:
      out[column] = 100.0 * result[key]
  out["cls mAP"] = 100.0 * result["classification_mAP"]
  networks = (result.get("attention_health") or {}).get("networks", {})
  aucs = [n["median_video_auc"] for n in networks.values() if n.get("median_video_auc") is not None]
  if aucs:
    out[ATTENTION_COLUMN] = float(min(aucs))
  return out


def collect(experiment: sets_lib.ExperimentSet, seeds: Sequence[int], output_dir: str) -> pd.DataFrame:
  """One row per finished run: config, seed, the metrics in percent, wall time in seconds."""
  rows = []
  for config in experiment.configs:
    for seed in seeds:
      model_dir = run_dir(output_dir, config, seed)
      result_path = os.path.join(model_dir, RESULT)
      if not os.path.exists(result_path):
        continue
      spec_path = os.path.join(model_dir, RUN_SPEC)
      record = _read_json(spec_path) if os.path.exists(spec_path) else {}
      rows.append(dict(config=config.name, seed=seed, **_metrics(_read_json(result_path)),
                       wall_s=record.get("wall_s", np.nan), commit=record.get("commit"),
                       reused_from=record.get("reused_from", "")))
  columns = ["config", "seed", *METRIC_COLUMNS, "wall_s", "commit", "reused_from"]
  return pd.DataFrame(rows, columns=columns)


def summarize(experiment: sets_lib.ExperimentSet, runs: pd.DataFrame) -> pd.DataFrame:
  """Mean and sample standard deviation (ddof=1) over seeds per configuration, in the set's row order."""
  order = [c.name for c in experiment.configs]
  values = [c for c in (*METRIC_COLUMNS, "wall_s") if c in runs]
  grouped = runs.groupby("config")[values]
  table = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=1).add_suffix(" std"))
  table["runs"] = grouped.size()
  return table.reindex([n for n in order if n in table.index])


def _cell(mean: float, std: float) -> str:
  if np.isnan(mean):
    return ""
  return f"{mean:.2f}" if np.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def markdown_table(experiment: sets_lib.ExperimentSet, summary: pd.DataFrame) -> str:
  """The paper table's own columns, then ours (mean ± std over seeds, %), then the paper's numbers."""
  own = list(dict.fromkeys(k for c in experiment.configs for k in c.columns))
  paper = list(dict.fromkeys(k for c in experiment.configs for k in c.paper))
  ours = [c for c in METRIC_COLUMNS if f"{c} mean" in summary and summary[f"{c} mean"].notna().any()]
  header = ["config", *own, *ours, "wall", "seeds", *[f"paper {p}" for p in paper]]
  rows = []
  for config in experiment.configs:
    row = [config.name, *[config.columns.get(k, "") for k in own]]
    if config.name in summary.index:
      s = summary.loc[config.name]
      row += [_cell(s[f"{c} mean"], s[f"{c} std"]) for c in ours]
      row += [_format_wall(s.get("wall_s mean", np.nan)), str(int(s["runs"]))]
    else:
      row += [""] * len(ours) + ["", "0"]
    row += [f"{config.paper[p]:.1f}" if p in config.paper else "" for p in paper]
    rows.append(row)
  return _markdown(header, rows)


def _format_wall(seconds: float) -> str:
  if seconds is None or np.isnan(seconds):
    return ""
  minutes, secs = divmod(int(round(seconds)), 60)
  return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def git_commit(path: str) -> Dict[str, object]:
  """The checkout's commit and whether it had uncommitted changes (None outside a git checkout)."""
  def _git(*args):
    try:
      return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=30,
                            check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
      return None
  commit = _git("rev-parse", "HEAD")
  status = _git("status", "--porcelain", "--untracked-files=no")
  return {"commit": commit, "dirty": bool(status) if status is not None else None}


def write_results(experiment: sets_lib.ExperimentSet, seeds: Sequence[int], output_dir: str, command: str,
                  extra: Optional[Dict] = None) -> str:
  """Writes results_runs.csv, results.csv, results.md and experiment.json; returns the Markdown text."""
  runs = collect(experiment, seeds, output_dir)
  summary = summarize(experiment, runs)
  provenance = dict(git_commit(_REPO), date=_now(), machine=f"{platform.node()} {platform.machine()} "
                    f"{os.cpu_count()} CPUs", command=command)
  # The code each run was trained with (recorded when it started), which may differ from the table's.
  run_commits = sorted({str(c) for c in runs["commit"]} - {"nan", "None"})
  _write_text_atomic(os.path.join(output_dir, "results_runs.csv"), runs.to_csv(index=False, float_format="%.4f"))
  _write_text_atomic(os.path.join(output_dir, "results.csv"), summary.to_csv(float_format="%.4f"))
  missing = len(experiment.configs) * len(seeds) - len(runs)
  reused = sorted({os.path.dirname(os.path.dirname(os.path.dirname(str(r))))
                   for r in runs["reused_from"] if isinstance(r, str) and r})
  copied = int(sum(isinstance(r, str) and bool(r) for r in runs["reused_from"]))
  text = "\n".join([
      f"## {experiment.title}", "",
      f"Detection mAP (%) on the test split, mean ± standard deviation over seeds {', '.join(map(str, seeds))} "
      f"(last checkpoint of each run; nothing selected on the test split); min attention AUC: the weakest "
      f"network's median per-video attention AUC on the test split (0.5 = chance). Runs trained at commit "
      f"{', '.join(run_commits) or 'unrecorded'}; table written at commit {provenance['commit']}"
      f"{' (with uncommitted changes)' if provenance['dirty'] else ''}, {provenance['date']}."
      + (f" {copied} of the runs were copied from {', '.join(reused)} (`--reuse_dir`: a finished run of the same "
         f"gin configuration, seed and dataset; see each run's experiment_run.json)." if copied else ""),
      "", markdown_table(experiment, summary), "",
      f"Regenerate: `{command}`" + (f" ({missing} runs missing or failed)" if missing else ""), ""])
  _write_text_atomic(os.path.join(output_dir, "results.md"), text)
  record = dict(experiment=experiment.name, title=experiment.title, seeds=list(seeds), **provenance,
                configs=[dict(c.spec(), columns=dict(c.columns), paper=dict(c.paper)) for c in experiment.configs],
                **(extra or {}))
  _write_text_atomic(os.path.join(output_dir, "experiment.json"), json.dumps(record, indent=1))
  return text


def write_tables_only(experiment: sets_lib.ExperimentSet, seeds: Sequence[int], output_dir: str,
                      data_dir: Optional[str] = None, num_steps: Optional[int] = None,
                      extra_gin_params: Sequence[str] = (), command: str = "") -> Dict:
  """The tables of the runs already finished in output_dir, training nothing (a row's "seeds" column says how many
  it has). Returns {"failed": [], "markdown": text}."""
  if not os.path.isdir(os.path.join(output_dir, "runs")):
    raise ExperimentError(f"{output_dir} holds no runs (no {os.path.join(output_dir, 'runs')} folder)")
  text = write_results(experiment, seeds, output_dir, command,
                       extra=dict(data_dir=data_dir, num_steps=num_steps, extra_gin_params=list(extra_gin_params)))
  return {"failed": [], "markdown": text}


def run_experiment(experiment: sets_lib.ExperimentSet, seeds: Sequence[int], output_dir: str,
                   data_dir: Optional[str] = None, num_steps: Optional[int] = None,
                   extra_gin_params: Sequence[str] = (), command: str = "", log=print,
                   reuse_dirs: Sequence[str] = (), lanes: int = 1, cpus: Optional[Sequence[int]] = None) -> Dict:
  """Every (seed, configuration) in seed-major order (a partial run has one seed of everything first), then the
  tables; a missing run equal to a finished one under reuse_dirs is copied (run_one). With lanes > 1, that many
  runs train at once, each pinned to its own equal share of `cpus` (default: the CPUs this process may use;
  cpu_lanes), started in the same order. Returns {"failed": [(config, seed), ...], "markdown": text}."""
  for reuse_dir in reuse_dirs:   # a mistyped --reuse_dir would silently retrain everything
    if not os.path.isdir(os.path.join(reuse_dir, "runs")):
      raise ExperimentError(f"--reuse_dir {reuse_dir} holds no runs (no {os.path.join(reuse_dir, 'runs')} folder)")
  groups = cpu_lanes(lanes, cpus) if lanes > 1 else [None]
  os.makedirs(output_dir, exist_ok=True)
  extra = dict(data_dir=data_dir, num_steps=num_steps, extra_gin_params=list(extra_gin_params))
  jobs = [(config, seed) for seed in seeds for config in experiment.configs]
  free = queue.Queue()
  for group in groups:
    free.put(group)
  lock = threading.Lock()

  def locked_log(*args):
    with lock:
      log(*args)

  def work(index, config, seed):
    group = free.get()    # a lane is free: one is held per running job
    try:
      where = f" on CPUs {pin.format_cpus(group)}" if group else ""
      locked_log(f"run {index}/{len(jobs)}: {config.name}, seed {seed}{where}")
      record = run_one(config, seed, output_dir, data_dir, num_steps, extra_gin_params, log=locked_log,
                       reuse_dirs=reuse_dirs, cpus=group)
    finally:
      free.put(group)
    with lock:
      write_results(experiment, seeds, output_dir, command, extra=extra)
    return record

  failed = []
  with futures.ThreadPoolExecutor(max_workers=len(groups)) as pool:
    submitted = [(config, seed, pool.submit(work, i + 1, config, seed)) for i, (config, seed) in enumerate(jobs)]
    try:
      for config, seed, future in submitted:
        if future.result()["status"] != "finished":
          failed.append((config.name, seed))
    except BaseException:   # e.g. a run folder of another configuration: start nothing more
      for _, _, future in submitted:
        future.cancel()
      raise
  text = write_results(experiment, seeds, output_dir, command, extra=extra)
  return {"failed": failed, "markdown": text}


def update_marked_block(path: str, name: str, text: str) -> None:
  """Replaces the text between `<!-- results:NAME:start -->` and `<!-- results:NAME:end -->` in a file."""
  start, end = f"<!-- results:{name}:start -->", f"<!-- results:{name}:end -->"
  with open(path) as f:
    content = f.read()
  if start not in content or end not in content:
    raise ExperimentError(f"{path} has no {start} ... {end} block to update")
  head, rest = content.split(start, 1)
  _, tail = rest.split(end, 1)
  _write_text_atomic(path, f"{head}{start}\n{text.strip()}\n{end}{tail}")
