"""Named experiment sets: the papers' ablation tables (and the README's results table) as lists of configurations.

Each `Config` is one row of a paper table: gin files plus bindings, the row's own columns as the paper prints them
(check marks, K, modality) and, where the paper prints numbers, the paper's values beside which ours are laid.
`tools/run_experiments.py --experiment=NAME` trains and evaluates every row for every seed.

Paper values are THUMOS14 test mAP (%) as printed; a figure without printed numbers has none. Rows that the
paper takes from another paper (Nguyen et al. 2019 Table 1 rows 1-2 are STPN's) are configurations of *this*
paper's model with the other terms switched off, as the table's check marks say.
"""

import dataclasses
from typing import Dict, Mapping, Optional, Sequence, Tuple

YES, NO = "✓", "-"


@dataclasses.dataclass(frozen=True)
class Config:
  """One configuration (a row): how to train it and what the paper's table says about it."""
  name: str                                  # unique within a set; the run folder's name
  gin_files: Tuple[str, ...]
  gin_params: Tuple[str, ...] = ()
  columns: Mapping[str, str] = dataclasses.field(default_factory=dict)   # the paper table's own columns
  paper: Mapping[str, float] = dataclasses.field(default_factory=dict)   # the paper's numbers for this row

  def spec(self) -> Dict:
    """What identifies the run (stored next to it; a run folder with another spec is never reused)."""
    return {"name": self.name, "gin_files": list(self.gin_files), "gin_params": list(self.gin_params)}


@dataclasses.dataclass(frozen=True)
class ExperimentSet:
  name: str
  title: str
  configs: Tuple[Config, ...]
  paper_metric: str = ""                    # what the paper's numbers are, e.g. "mAP@0.1:0.9"

  def config(self, name: str) -> Config:
    for c in self.configs:
      if c.name == name:
        return c
    raise KeyError(f"experiment set {self.name!r} has no configuration {name!r}; it has "
                   f"{[c.name for c in self.configs]}")


def _marks(names: Sequence[str], on: Sequence[str]) -> Dict[str, str]:
  return {n: YES if n in on else NO for n in names}


def single(gin_files: Sequence[str], gin_params: Sequence[str] = (), name: Optional[str] = None) -> ExperimentSet:
  """A one-configuration set for `--gin_file=... --gin_param=...` (no paper table)."""
  base = "+".join(f.rsplit("/", 1)[-1].rsplit(".gin", 1)[0] for f in gin_files) or "run"
  return ExperimentSet(name or base, f"{base} {' '.join(gin_params)}".strip(),
                       (Config(name or base, tuple(gin_files), tuple(gin_params)),))


# ---------------------------------------------------------------------------------------------------------------------
# STPN (Nguyen et al., CVPR 2018): Figs. 5 and 6 are bar charts without printed numbers.
# ---------------------------------------------------------------------------------------------------------------------

STPN_FIG5 = ExperimentSet("stpn_fig5", "STPN Fig. 5: architecture variations (THUMOS14 mAP per IoU)", (
    Config("no_attention", ("stpn.gin",), ("STPN.use_attention = False", "STPN.sparsity_weight = 0.0"),
           {"attention": NO, "sparsity": NO}),
    Config("attention_no_sparsity", ("stpn.gin",), ("STPN.sparsity_weight = 0.0",),
           {"attention": YES, "sparsity": NO}),
    Config("full", ("stpn.gin",), (), {"attention": YES, "sparsity": YES}),
))

STPN_FIG6 = ExperimentSet("stpn_fig6", "STPN Fig. 6: modalities (THUMOS14 mAP per IoU)", (
    Config("rgb", ("stpn.gin",), ("STPN.modalities = ('rgb',)",), {"modality": "RGB"}),
    Config("flow", ("stpn.gin",), ("STPN.modalities = ('flow',)",), {"modality": "flow"}),
    Config("both", ("stpn.gin",), (), {"modality": "RGB + flow"}),
))

# ---------------------------------------------------------------------------------------------------------------------
# Background modeling (Nguyen, Ramanan, Fowlkes, ICCV 2019), Table 1: losses on/off, mAP at IoU 0.1..0.9.
# ---------------------------------------------------------------------------------------------------------------------

_BGM_LOSSES = ("L_fg", "L_bg", "L_guide", "L_cluster", "L_sparse")
_BGM_WEIGHT = {"L_bg": "BGM.background_weight", "L_guide": "BGM.guide_weight", "L_cluster": "BGM.cluster_weight",
               "L_sparse": "BGM.sparsity_weight"}
# Eq. 11: alpha = beta = gamma = 0.1 (section 4.2). STPN's sparsity term (row 2) is not in Eq. 11 and STPN does not
# give its beta: 0.8, as stpn.gin (the public TF1 STPN reproduction's 1e-4 in our loss' units).
_BGM_ON = {"L_bg": 0.1, "L_guide": 0.1, "L_cluster": 0.1, "L_sparse": 0.8}
_IOUS = ("0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9")
_BGM_TABLE1 = (   # (losses on, mAP at 0.1..0.9 as printed; None = "–")
    (("L_fg",), (46.6, 38.7, 31.2, 22.6, 14.7, None, None, None, None)),
    (("L_fg", "L_sparse"), (52.0, 44.7, 35.5, 25.8, 16.9, 9.9, 4.3, 1.2, 0.2)),
    (("L_fg", "L_guide"), (53.8, 46.4, 38.2, 29.0, 19.2, 10.6, 4.4, 1.3, 0.1)),
    (("L_fg", "L_bg"), (53.6, 47.6, 39.1, 30.2, 20.5, 12.2, 5.4, 1.7, 0.2)),
    (("L_fg", "L_bg", "L_guide"), (58.9, 54.3, 41.5, 33.9, 24.4, 16.2, 7.8, 2.4, 0.4)),
    (("L_fg", "L_bg", "L_cluster"), (54.9, 48.4, 40.8, 32.4, 23.1, 14.2, 7.4, 2.5, 0.3)),
    (("L_fg", "L_guide", "L_cluster"), (60.1, 54.1, 45.6, 34.0, 23.2, 13.6, 6.2, 1.4, 0.1)),
    (("L_fg", "L_bg", "L_guide", "L_cluster"), (60.4, 56.0, 46.6, 37.5, 26.8, 17.6, 9.0, 3.3, 0.4)),
)


def _bgm_config(row: int, on, values) -> Config:
  params = tuple(f"{_BGM_WEIGHT[loss]} = {_BGM_ON[loss] if loss in on else 0.0}" for loss in _BGM_LOSSES[1:])
  return Config(f"row{row}", ("bgm.gin",), params, _marks(_BGM_LOSSES, on),
                {iou: v for iou, v in zip(_IOUS, values) if v is not None})


BGM_TABLE1 = ExperimentSet(
    "bgm_table1", "Nguyen et al. 2019 Table 1: loss ablations (THUMOS14 mAP per IoU)",
    tuple(_bgm_config(i + 1, on, values) for i, (on, values) in enumerate(_BGM_TABLE1)), "mAP@IoU")

# ---------------------------------------------------------------------------------------------------------------------
# AUMN (Luo et al., CVPR 2021): Table 4 (losses and self-attention), Fig. 4 (number of templates K).
# ---------------------------------------------------------------------------------------------------------------------

_AUMN_SWITCHES = (("L_s", "AUMN.use_sparsity_loss"), ("L_d", "AUMN.use_diversity_loss"),
                  ("L_h", "AUMN.use_homogeneity_loss"), ("S", "AUMN.use_self_attention"))
_AUMN_TABLE4 = (   # (switches on, mAP at 0.1..0.7 and AVG as printed)
    ((), (58.5, 53.1, 45.1, 34.9, 24.6, 14.4, 6.8, 43.2)),
    (("L_s",), (65.1, 59.8, 51.5, 40.9, 28.8, 16.3, 7.3, 49.2)),
    (("L_s", "L_d"), (65.8, 61.0, 52.6, 42.2, 29.5, 17.0, 7.6, 50.2)),
    (("L_s", "L_h"), (65.5, 60.9, 51.7, 41.3, 29.4, 17.1, 7.7, 49.8)),
    (("L_s", "L_d", "L_h"), (66.1, 61.5, 54.4, 43.3, 31.8, 19.1, 8.9, 51.4)),
    (("L_s", "L_d", "L_h", "S"), (66.2, 61.9, 54.9, 44.4, 33.3, 20.5, 9.0, 52.1)),
)


def _aumn_config(row: int, on, values) -> Config:
  params = tuple(f"{binding} = {name in on}" for name, binding in _AUMN_SWITCHES)
  paper = dict(zip(_IOUS[:7] + ("avg 0.1:0.5",), values))   # the paper's AVG is over 0.1:0.1:0.5 (its Table 1)
  return Config(f"row{row}", ("cpu/aumn.gin",), params, _marks([n for n, _ in _AUMN_SWITCHES], on), paper)


AUMN_TABLE4 = ExperimentSet(
    "aumn_table4", "AUMN Table 4: memory losses and self-attention (THUMOS14 mAP per IoU)",
    tuple(_aumn_config(i + 1, on, v) for i, (on, v) in enumerate(_AUMN_TABLE4)), "mAP@IoU")

AUMN_FIG4 = ExperimentSet(
    "aumn_fig4", "AUMN Fig. 4: number of templates K (THUMOS14 average mAP 0.1:0.5; L_d, L_h off at K = 1)",
    tuple(Config(f"K{k}", ("cpu/aumn.gin",),
                 (f"AUMN.num_templates = {k}",) + (("AUMN.use_diversity_loss = False",
                                                    "AUMN.use_homogeneity_loss = False") if k == 1 else ()),
                 {"K": str(k)}) for k in range(1, 8)))

# ---------------------------------------------------------------------------------------------------------------------
# HAM-Net (Islam, Long, Radke, AAAI 2021), Table 1: loss terms, average mAP over IoU 0.1:0.1:0.7.
# ---------------------------------------------------------------------------------------------------------------------

_HAMNET_TERMS = ("bcl", "sal", "hal", "ssal", "sparse", "guide")
_HAMNET_TABLE1_AVG = {1: 24.6, 2: 30.8, 3: 28.9, 4: 30.9, 5: 34.8, 6: 30.9, 7: 31.1, 8: 37.9, 9: 36.6, 10: 38.1,
                      11: 39.8}


def _hamnet_table1() -> ExperimentSet:
  from stpn_tf.models import hamnet  # pylint: disable=import-outside-toplevel  (the rows live with the model)
  configs = []
  for row, terms in sorted(hamnet.TABLE1_ROWS.items()):
    # In LOSS_TERMS order (the order HAMNet keeps them in), so that row 11 binds what hamnet.gin binds and is the
    # same gin configuration (runner --reuse_dir).
    ordered = tuple(t for t in hamnet.LOSS_TERMS if t in terms)
    configs.append(Config(f"row{row}", ("cpu/hamnet.gin",), (f"HAMNet.loss_terms = {ordered!r}",),
                          {f"L_{t}": (YES if t in terms else NO) for t in _HAMNET_TERMS},
                          {"avg 0.1:0.7": _HAMNET_TABLE1_AVG[row]}))
  return ExperimentSet("hamnet_table1", "HAM-Net Table 1: loss terms (THUMOS14 average mAP 0.1:0.7)",
                       tuple(configs), "avg mAP 0.1:0.7")


HAMNET_FIG4A = ExperimentSet(
    "hamnet_fig4a", "HAM-Net Fig. 4a: dropping strategy (THUMOS14 average mAP 0.1:0.7)",
    tuple(Config(mode, ("cpu/hamnet.gin",), (f"HAMNet.drop_mode = '{mode}'",), {"dropping": mode})
          for mode in ("selective", "random", "inverse")))

# ---------------------------------------------------------------------------------------------------------------------
# The README's results table: every model's shipped command on the built-in dataset.
# ---------------------------------------------------------------------------------------------------------------------

README = ExperimentSet("readme", "Every model's paper file and 2-CPU budget file on the built-in THUMOS14-like dataset", (
    Config("stpn", ("stpn.gin",), (),
           {"model, command": "STPN, `--gin_file=stpn.gin` (paper file = budget file: the TF1 reproduction's "
                              "24,000 steps of 6)"}),
    Config("bgm", ("bgm.gin",), (), {"model, command": "BGM, `--gin_file=bgm.gin` (paper file = budget file)"}),
    # The paper gives no step count ("our model can simply be trained to convergence"); bgm.gin's 15,000 are ours.
    Config("bgm_60k", ("bgm.gin",), ("train_eval.default_num_steps = 60000",),
           {"model, command": "BGM, `--gin_file=bgm.gin --num_steps=60000` (4x the file's steps, ~25 min on one core)"}),
    Config("aumn_budget", ("cpu/aumn.gin",), (),
           {"model, command": "AUMN, `--gin_file=cpu/aumn.gin` (budget: 120 steps)"}),
    Config("aumn_paper", ("aumn.gin",), (), {"model, command": "AUMN, `--gin_file=aumn.gin` (paper file, 1,000 steps)"}),
    Config("hamnet_budget", ("cpu/hamnet.gin",), (),
           {"model, command": "HAM-Net, `--gin_file=cpu/hamnet.gin` (budget: widths 256/128; paper schedule)"}),
    Config("hamnet_paper", ("hamnet.gin",), (),
           {"model, command": "HAM-Net, `--gin_file=hamnet.gin` (paper file: the authors' widths, ~70 min)"}),
))


def experiment_sets() -> Dict[str, ExperimentSet]:
  sets = [STPN_FIG5, STPN_FIG6, BGM_TABLE1, AUMN_TABLE4, AUMN_FIG4, _hamnet_table1(), HAMNET_FIG4A, README]
  return {s.name: s for s in sets}


def get(name: str) -> ExperimentSet:
  sets = experiment_sets()
  if name not in sets:
    raise KeyError(f"unknown experiment set {name!r}; known: {sorted(sets)}")
  return sets[name]
