"""tools/run_experiments.py and stpn_tf/experiments/runner.py: seeds as separate runs, tables, reuse, failures."""

import json
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from stpn_tf.experiments import runner
from stpn_tf.experiments import sets
from tests import testing_utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "run_experiments.py")
TINY = ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2", "STPN.hidden_units = 8",
        "UniformPerturbedSampler.num_segments = 16", "train_eval.eval_every = 0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("data")
  testing_utils.write_random_dataset(path, num_train=8, num_test=4, dim=16)
  return str(path)


def _tool(*args):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, env=env, timeout=300)


def test_two_seeds_make_a_table_with_mean_and_std_and_a_rerun_reuses_them(data_dir, tmp_path):
  out = str(tmp_path / "out")
  args = ["--gin_file=stpn.gin", "--seeds=0,1", "--num_steps=2", f"--data_dir={data_dir}", f"--output_dir={out}",
          *[f"--gin_param={p}" for p in TINY]]
  first = _tool(*args)
  assert first.returncode == 0, first.stderr[-3000:]
  runs = pd.read_csv(os.path.join(out, "results_runs.csv"))
  assert sorted(runs["seed"]) == [0, 1] and set(runs["config"]) == {"stpn"}
  summary = pd.read_csv(os.path.join(out, "results.csv"), index_col=0)
  assert summary.loc["stpn", "runs"] == 2
  # The table's numbers are the runs' own eval_test.json values: mean and sample std over the two seeds.
  cls = [100 * json.load(open(os.path.join(out, "runs", "stpn", f"seed_{s}", "eval_test.json")))
         ["classification_mAP"] for s in (0, 1)]
  assert summary.loc["stpn", "cls mAP mean"] == pytest.approx(sum(cls) / 2, abs=1e-3)
  assert summary.loc["stpn", "cls mAP std"] == pytest.approx(pd.Series(cls).std(ddof=1), abs=1e-3)
  markdown = open(os.path.join(out, "results.md")).read()
  assert "±" in markdown and "Regenerate: `python" in markdown
  commit = runner.git_commit(ROOT)["commit"]
  assert list(runs["commit"]) == [commit, commit]   # the code each run trained with
  assert f"Runs trained at commit {commit}" in markdown
  record = json.load(open(os.path.join(out, "experiment.json")))
  assert record["seeds"] == [0, 1] and record["configs"][0]["gin_files"] == ["stpn.gin"] and "commit" in record
  # Each run's own gin config records its seed.
  assert "train_eval.seed = 1" in open(os.path.join(out, "runs", "stpn", "seed_1", "config.gin")).read()

  # The weakest network's median attention AUC, per run (a fraction): the smaller of rgb's and flow's.
  for s in (0, 1):
    health = json.load(open(os.path.join(out, "runs", "stpn", f"seed_{s}", "eval_test.json")))["attention_health"]
    aucs = [n["median_video_auc"] for n in health["networks"].values()]
    assert runs.set_index("seed").loc[s, "min attention AUC"] == pytest.approx(min(aucs), abs=1e-4)

  logs = {s: os.path.getsize(os.path.join(out, "runs", "stpn", f"seed_{s}", "log.txt")) for s in (0, 1)}
  # --tables_only trains nothing, also for a seed that has no run: its rows count the finished runs only.
  tables = _tool(*args[:1], "--seeds=0,1,2", *args[2:], "--tables_only")
  assert tables.returncode == 0, tables.stderr[-3000:]
  assert "training:" not in tables.stdout + tables.stderr and not os.path.exists(os.path.join(out, "runs", "stpn", "seed_2"))
  assert pd.read_csv(os.path.join(out, "results.csv"), index_col=0).loc["stpn", "runs"] == 2
  markdown = open(os.path.join(out, "results.md")).read()
  assert "(1 runs missing or failed)" in markdown and "--tables_only" not in markdown   # the training command
  empty = _tool("--gin_file=stpn.gin", f"--output_dir={tmp_path / 'nothing'}", "--tables_only")
  assert empty.returncode != 0 and "holds no runs" in empty.stderr
  second = _tool(*args)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "training:" not in second.stdout + second.stderr
  assert logs == {s: os.path.getsize(os.path.join(out, "runs", "stpn", f"seed_{s}", "log.txt")) for s in (0, 1)}


def test_a_failing_run_is_recorded_and_the_others_go_on(data_dir, tmp_path, monkeypatch):
  experiment = sets.ExperimentSet("t", "t", (
      sets.Config("broken", ("stpn.gin",), ("STPN.no_such_parameter = 1",)),
      sets.Config("fine", ("stpn.gin",), ())))
  calls = []

  def fake_call(cmd, stdout, stderr):  # stands in for the training process
    calls.append(cmd)
    model_dir = [a.split("=", 1)[1] for a in cmd if a.startswith("--model_dir=")][0]
    if any("no_such_parameter" in a for a in cmd):
      return 1
    with open(os.path.join(model_dir, runner.RESULT), "w") as f:
      json.dump({"tiou_thresholds": [0.5], "mAP": [0.25], "classification_mAP": 0.5}, f)
    return 0

  monkeypatch.setattr(runner.subprocess, "call", fake_call)
  out = runner.run_experiment(experiment, [3], str(tmp_path), data_dir, log=lambda *_: None)
  assert out["failed"] == [("broken", 3)] and len(calls) == 2
  assert "--gin_param=train_eval.seed = 3" in calls[1]
  runs = pd.read_csv(tmp_path / "results_runs.csv")
  assert list(runs["config"]) == ["fine"] and runs["0.5"][0] == pytest.approx(25.0)
  # A rerun retries only the failed run.
  runner.run_experiment(experiment, [3], str(tmp_path), data_dir, log=lambda *_: None)
  assert len(calls) == 3 and "no_such_parameter" in " ".join(calls[2])


def test_a_run_folder_of_another_configuration_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(runner.subprocess, "call", lambda *a, **k: 1)
  a = sets.Config("x", ("stpn.gin",), ())
  b = sets.Config("x", ("stpn.gin",), ("STPN.sparsity_weight = 0.0",))
  runner.run_one(a, 0, str(tmp_path), log=lambda *_: None)
  with pytest.raises(runner.ExperimentError, match="another configuration"):
    runner.run_one(b, 0, str(tmp_path), log=lambda *_: None)


def test_reuse_dir_copies_a_run_of_the_same_gin_configuration_only(tmp_path, monkeypatch):
  calls = []

  def fake_call(cmd, stdout, stderr):  # stands in for the training process
    calls.append(cmd)
    model_dir = [a.split("=", 1)[1] for a in cmd if a.startswith("--model_dir=")][0]
    with open(os.path.join(model_dir, runner.RESULT), "w") as f:
      json.dump({"tiou_thresholds": [0.5], "mAP": [0.25 if "seed = 0" in cmd[-1] else 0.5],
                 "classification_mAP": 0.5}, f)
    return 0

  monkeypatch.setattr(runner.subprocess, "call", fake_call)
  first = str(tmp_path / "first")
  runner.run_experiment(sets.single(["stpn.gin"]), [0, 1], first, log=lambda *_: None)
  assert len(calls) == 2
  # stpn.gin binds STPN.sparsity_weight = 0.8: "full" restates it (same configuration), "no_sparsity" changes it.
  table = sets.ExperimentSet("fig", "fig", (
      sets.Config("full", ("stpn.gin",), ("STPN.sparsity_weight = 0.8",)),
      sets.Config("no_sparsity", ("stpn.gin",), ("STPN.sparsity_weight = 0.0",))))
  second = str(tmp_path / "second")
  lines = []
  out = runner.run_experiment(table, [0], second, log=lines.append, reuse_dirs=[first])
  assert out["failed"] == [] and len(calls) == 3 and "sparsity_weight = 0.0" in " ".join(calls[2])
  assert any("copied from" in line and "stpn/seed_0" in line for line in lines)
  record = json.load(open(os.path.join(second, "runs", "full", "seed_0", runner.RUN_SPEC)))
  assert record["reused_from"].endswith(os.path.join("first", "runs", "stpn", "seed_0"))
  assert record["spec"]["name"] == "full" and record["reused_spec"]["name"] == "stpn"
  runs = pd.read_csv(os.path.join(second, "results_runs.csv")).set_index("config")
  assert runs.loc["full", "0.5"] == pytest.approx(25.0)   # seed 0's result, not seed 1's
  assert "1 of the runs were copied from" in out["markdown"]
  # Seed 1 finished in `first`, but with the default steps: another step count is another run, so it trains.
  runner.run_experiment(table, [1], second, num_steps=5, log=lambda *_: None, reuse_dirs=[first])
  assert len(calls) == 5
  with pytest.raises(runner.ExperimentError, match="holds no runs"):
    runner.run_experiment(table, [0], second, log=lambda *_: None, reuse_dirs=[str(tmp_path / "typo")])
  # A rerun finds the copy finished and does nothing.
  runner.run_experiment(table, [0], second, log=lambda *_: None, reuse_dirs=[first])
  assert len(calls) == 5


def test_cpu_lanes_split_the_cpus_into_equal_disjoint_groups():
  assert runner.cpu_lanes(2, [1, 0]) == [(0,), (1,)]
  assert runner.cpu_lanes(2, [0, 1, 2, 3, 4]) == [(0, 1), (2, 3)]     # CPU 4 left over: equal shares
  assert runner.cpu_lanes(1, [0, 1]) == [(0, 1)]
  with pytest.raises(runner.ExperimentError, match="needs at least 3 CPUs"):
    runner.cpu_lanes(3, [0, 1])
  with pytest.raises(runner.ExperimentError, match="at least 1"):
    runner.cpu_lanes(0, [0, 1])


def test_lanes_train_runs_at_once_each_pinned_to_its_own_cpus(tmp_path, monkeypatch):
  lock = threading.Lock()
  running, calls, overlaps = {}, [], []

  def fake_call(cmd, stdout, stderr):  # stands in for the pinned training process
    assert cmd[1:3] == ["-m", "stpn_tf.experiments.pin"] and cmd[4] == "--"
    model_dir = [a.split("=", 1)[1] for a in cmd if a.startswith("--model_dir=")][0]
    with lock:
      calls.append(cmd)
      if cmd[3] in running.values():
        overlaps.append(cmd[3])
      running[model_dir] = cmd[3]
      overlaps.append(len(running))
    time.sleep(0.3)
    with lock:
      del running[model_dir]
    # Written as the trainer does (inference.py: write_json_atomic): the other lane tables the runs meanwhile.
    with open(os.path.join(model_dir, runner.RESULT + ".tmp"), "w") as f:
      json.dump({"tiou_thresholds": [0.5], "mAP": [0.25], "classification_mAP": 0.5}, f)
    os.replace(os.path.join(model_dir, runner.RESULT + ".tmp"), os.path.join(model_dir, runner.RESULT))
    return 0

  monkeypatch.setattr(runner.subprocess, "call", fake_call)
  experiment = sets.ExperimentSet("t", "t", (sets.Config("a", ("stpn.gin",), ()),
                                             sets.Config("b", ("stpn.gin",), ("STPN.sparsity_weight = 0.0",))))
  lines = []
  out = runner.run_experiment(experiment, [0, 1], str(tmp_path), log=lines.append, lanes=2, cpus=[7, 3])
  assert out["failed"] == [] and len(calls) == 4
  assert sorted({c[3] for c in calls}) == ["3", "7"]          # one CPU per lane
  assert "3" not in overlaps and "7" not in overlaps          # two runs at once never share a lane
  assert max(o for o in overlaps if isinstance(o, int)) == 2  # and two did run at once
  record = json.load(open(os.path.join(tmp_path, "runs", "a", "seed_0", runner.RUN_SPEC)))
  assert record["cpus"] in ([3], [7]) and record["command"][2] == "stpn_tf.experiments.pin"
  assert pd.read_csv(tmp_path / "results.csv", index_col=0)["runs"].tolist() == [2, 2]
  assert any(line.startswith("run 1/4: a, seed 0 on CPUs") for line in lines)
  # One lane: the plain command, as before.
  calls.clear()
  monkeypatch.setattr(runner.subprocess, "call", lambda cmd, stdout, stderr: calls.append(cmd) or 1)
  runner.run_experiment(experiment, [2], str(tmp_path), log=lambda *_: None)
  assert [c[1:3] for c in calls] == [["-m", "stpn_tf.train"]] * 2


def test_update_marked_block(tmp_path):
  path = tmp_path / "README.md"
  path.write_text("head\n<!-- results:readme:start -->\nold\n<!-- results:readme:end -->\ntail\n")
  runner.update_marked_block(str(path), "readme", "| new |")
  assert path.read_text() == "head\n<!-- results:readme:start -->\n| new |\n<!-- results:readme:end -->\ntail\n"
  with pytest.raises(runner.ExperimentError, match="no <!-- results:other:start -->"):
    runner.update_marked_block(str(path), "other", "x")


def test_list_names_every_set():
  result = _tool("--list")
  assert result.returncode == 0, result.stderr[-2000:]
  for name in ("stpn_fig5", "stpn_fig6", "bgm_table1", "aumn_table4", "aumn_fig4", "hamnet_table1", "readme"):
    assert name in result.stdout
