"""Experiment sets expand to the configurations of the papers' tables (stpn_tf/experiments/sets.py)."""

import gin
import pytest

from stpn_tf import config
from stpn_tf.experiments import runner
from stpn_tf.experiments import sets


def _task(cfg):
  gin.clear_config()
  config.parse_gin(cfg.gin_files, cfg.gin_params)
  return gin.query_parameter("train_eval.task").scoped_configurable_fn()


def test_every_set_parses_and_builds_its_tasks():
  for experiment in sets.experiment_sets().values():
    names = [c.name for c in experiment.configs]
    assert len(names) == len(set(names)), experiment.name
    for cfg in experiment.configs:
      assert _task(cfg) is not None


# Nguyen et al. 2019, Table 1, as printed: L_fg, L_bg, L_guide, L_cluster, L_sparse per row.
BGM_TABLE1 = [
    "X - - - -", "X - - - X", "X - X - -", "X X - - -", "X X X - -", "X X - X -", "X - X X -", "X X X X -"]


def test_bgm_table1_rows_switch_the_printed_losses():
  experiment = sets.get("bgm_table1")
  assert len(experiment.configs) == len(BGM_TABLE1)
  for cfg, printed in zip(experiment.configs, BGM_TABLE1):
    on = [mark == "X" for mark in printed.split()]
    task = _task(cfg)
    k = task.loss_kwargs
    assert [k["alpha"] > 0, k["beta"] > 0, k["gamma"] > 0, k["delta"] > 0] == on[1:], cfg.name
    assert list(cfg.columns.values()) == [sets.YES if o else sets.NO for o in on]
  assert experiment.configs[-1].paper["0.5"] == 26.8 and experiment.configs[0].paper["0.1"] == 46.6
  assert "0.6" not in experiment.configs[0].paper   # printed as "-"


# Luo et al. 2021, Table 4: L_s, L_d, L_h, S per row; AVG (0.1:0.5) as printed.
AUMN_TABLE4 = [("- - - -", 43.2), ("X - - -", 49.2), ("X X - -", 50.2), ("X - X -", 49.8), ("X X X -", 51.4),
               ("X X X X", 52.1)]


def test_aumn_table4_rows_switch_the_printed_terms():
  experiment = sets.get("aumn_table4")
  assert len(experiment.configs) == len(AUMN_TABLE4)
  for cfg, (printed, avg) in zip(experiment.configs, AUMN_TABLE4):
    l_s, l_d, l_h, s = [mark == "X" for mark in printed.split()]
    task = _task(cfg)
    assert (task.sparsity_weights["rgb"] > 0) == l_s and (task.diversity_weight > 0) == l_d
    assert (task.homogeneity_weight > 0) == l_h and task.model_kwargs["use_self_attention"] == s
    assert cfg.paper["avg 0.1:0.5"] == avg


def test_aumn_fig4_spans_k_1_to_7_without_memory_losses_at_1():
  experiment = sets.get("aumn_fig4")
  tasks = [_task(c) for c in experiment.configs]
  assert [t.model_kwargs["num_templates"] for t in tasks] == list(range(1, 8))
  assert tasks[0].diversity_weight == 0 and tasks[0].homogeneity_weight == 0
  assert all(t.diversity_weight > 0 and t.homogeneity_weight > 0 for t in tasks[1:])


def test_hamnet_table1_has_the_eleven_rows():
  experiment = sets.get("hamnet_table1")
  assert len(experiment.configs) == 11
  first, last = _task(experiment.configs[0]), _task(experiment.configs[-1])
  assert first.loss_terms == ("bcl",)
  assert set(last.loss_terms) == {"bcl", "sal", "hal", "ssal", "sparse", "guide"}
  assert experiment.configs[-1].paper["avg 0.1:0.7"] == 39.8


def test_stpn_sets():
  fig5 = [_task(c) for c in sets.get("stpn_fig5").configs]
  assert [(t.use_attention, t.sparsity_weight > 0) for t in fig5] == [(False, False), (True, False), (True, True)]
  fig6 = [_task(c) for c in sets.get("stpn_fig6").configs]
  assert [t.modalities for t in fig6] == [("rgb",), ("flow",), ("rgb", "flow")]


def test_unknown_names_are_errors():
  with pytest.raises(KeyError, match="unknown experiment set 'nope'"):
    sets.get("nope")
  with pytest.raises(KeyError, match="no configuration 'row99'"):
    sets.get("bgm_table1").config("row99")


@pytest.mark.parametrize("name,row,gin_file", [("stpn_fig5", "full", "stpn.gin"), ("bgm_table1", "row8", "bgm.gin"),
                                               ("aumn_table4", "row6", "cpu/aumn.gin"),
                                               ("hamnet_table1", "row11", "cpu/hamnet.gin")])
def test_each_tables_full_model_is_its_file(name, row, gin_file):
  """The full-model row parses to the same gin configuration as the file the readme set runs (what lets
  run_experiments --reuse_dir copy those runs); another row does not."""
  experiment = sets.get(name)
  full = experiment.config(row)
  assert runner.effective_gin(full.gin_files, full.gin_params) == runner.effective_gin([gin_file], [])
  other = experiment.configs[0]
  assert runner.effective_gin(other.gin_files, other.gin_params) != runner.effective_gin([gin_file], [])
