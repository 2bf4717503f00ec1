"""Every .gin file in gin_configs/ (paper files, ActivityNet files, cpu/ budget files) parses and its task builds;
every statement names its source; a few sourced values are checked against the constants they come from, so that an
edit that drifts from the paper / the authors' code / the reproduction fails here."""

import glob
import math
import os
import re
import subprocess
import sys

import gin
import pytest

from stpn_tf import config

ROOT = config.GIN_SEARCH_PATHS[0]
GIN_FILES = sorted(glob.glob(os.path.join(ROOT, "*.gin")) + glob.glob(os.path.join(ROOT, "cpu", "*.gin")))
IDS = [os.path.relpath(p, ROOT) for p in GIN_FILES]
SOURCE = re.compile(r"#.*\b(paper|repro|code|ours|budget)\b", re.IGNORECASE)
THUMOS14_TIOU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
THUMOS14_TIOU_TO_07 = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)      # HAM-Net Table 2, AUMN Table 1
ACTIVITYNET_TIOU = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

# Each model, the datasets its paper reports, and the paper file of each (issue 17).
PAPER_FILES = {
    "stpn": ("stpn.gin", "stpn_activitynet13.gin"),                                    # THUMOS14, ActivityNet 1.3
    "bgm": ("bgm.gin", "bgm_activitynet13.gin"),                                       # THUMOS14, ActivityNet 1.3
    "aumn": ("aumn.gin", "aumn_activitynet12.gin", "aumn_activitynet13.gin"),          # THUMOS14, ANet 1.2, 1.3
    "hamnet": ("hamnet.gin", "hamnet_activitynet12.gin"),                              # THUMOS14, ActivityNet 1.2
}


def _statements(path):
  """(first line number, [code lines with their comments]) per gin statement; a statement continues while its
  brackets are open."""
  out, depth = [], 0
  for number, line in enumerate(open(path).read().splitlines(), 1):
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
      continue
    code = stripped.split("#", 1)[0]
    if depth == 0:
      out.append((number, []))
    out[-1][1].append(stripped)
    depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
  assert depth == 0, f"{path}: unbalanced brackets"
  return out


def _parse(name, params=()):
  gin.clear_config()
  config.parse_gin([name], list(params), finalize=False)


def test_gin_configs_exist():
  names = set(IDS)
  for files in PAPER_FILES.values():
    for name in files:
      assert name in names, name
    assert os.path.join("cpu", files[0]) in names, files[0]


@pytest.mark.parametrize("path", GIN_FILES, ids=IDS)
def test_gin_file_parses_and_builds(path):
  _parse(os.path.relpath(path, ROOT))
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  models = task.build_models(5, {"rgb": 16, "flow": 16})
  assert models and all(m.count_params() > 0 for m in models.values())


@pytest.mark.parametrize("path", GIN_FILES, ids=IDS)
def test_every_statement_names_its_source(path):
  missing = [number for number, lines in _statements(path) if not any(SOURCE.search(line) for line in lines)]
  assert not missing, f"{path}: statements without a source comment (paper / repro / code / ours / budget) on lines " \
                      f"{missing}"


@pytest.mark.parametrize("path", [p for p in GIN_FILES if os.sep + "cpu" + os.sep in p], ids=os.path.basename)
def test_budget_files_include_the_paper_file_and_say_why_they_override(path):
  statements = _statements(path)
  assert statements[0][1][0].startswith(f"include '{os.path.basename(path)}'"), path
  for number, lines in statements[1:]:
    assert any("budget" in line for line in lines), f"{path}:{number}: an override without a budget reason"


def test_statement_grouping_and_the_source_rule(tmp_path):
  path = tmp_path / "x.gin"
  path.write_text("a.b = (1,\n       2)   # paper 4.2\n# comment\nc.d = 3\n")
  statements = _statements(str(path))
  assert [n for n, _ in statements] == [1, 4]
  assert [any(SOURCE.search(line) for line in lines) for _, lines in statements] == [True, False]


def test_stpn_paper_file_values():
  _parse("stpn.gin")
  q = gin.query_parameter
  # repro (bellos1203/STPN code/utils.py): beta = 1e-4 on the l1 *sum* over 400 segments with a class-*mean*
  # cross-entropy; ours is class-sum / segment-mean: beta_ours = C * beta * T at C = 20 THUMOS14 classes.
  assert math.isclose(q("STPN.sparsity_weight"), 20 * 1e-4 * 400)
  assert q("train_eval.batch_size") == 6 and q("make_optimizer.learning_rate") == 1e-4
  assert q("train_eval.default_num_steps") == 24000
  assert q("stpn_detect.tcam_threshold") == 0.05 and q("stpn_detect.interpolation_factor") == 24
  assert q("stpn_detect.nms_threshold") == 0.5 and q("stpn_detect.class_threshold") == 0.1
  assert q("stpn_detect.alpha") == 0.5
  assert q("UniformPerturbedSampler.num_segments") == 400                      # paper 4.2, training
  assert q("test/UniformPerturbedSampler.num_segments") == 400                 # paper 4.2, testing
  assert q("test/UniformPerturbedSampler.perturb") is False
  assert q("STPN.kernel_initializer") == "tf1_dense_default"
  assert tuple(q("train_eval.eval_tiou_thresholds")) == THUMOS14_TIOU


def test_hamnet_paper_file_values():
  _parse("hamnet.gin")
  q = gin.query_parameter
  # asrafulashiq/hamnet system/system_th.py: Conv1d widths, Adam(weight_decay=0.001), batch 20; main.py: no clipping.
  assert tuple(q("HAMNet.classifier_units")) == (2048, 2048) and q("HAMNet.attention_units") == 512
  assert q("make_optimizer.weight_decay") == 1e-3 and q("make_optimizer.weight_decay_mode") == "coupled"
  assert q("train_eval.batch_size") == 20 and q("make_optimizer.global_clipnorm") is None   # main.py: unused
  assert q("make_optimizer.learning_rate") == 1e-5                              # paper ID
  assert q("train_eval.default_num_steps") * q("train_eval.batch_size") == 100 * 200   # 100 epochs of 200 videos
  assert q("HAMNet.center_features") is False and q("HAMNet.dropout") == 0.7
  assert q("UniformPerturbedSampler.num_segments") == 500 and q("make_eval_dataset.sampler") is None
  assert tuple(q("train_eval.eval_tiou_thresholds")) == THUMOS14_TIOU_TO_07


def test_hamnet_budget_file_overrides_only_the_budget():
  _parse("cpu/hamnet.gin")
  q = gin.query_parameter
  assert tuple(q("HAMNet.classifier_units")) == (256, 256) and q("HAMNet.attention_units") == 128
  # The schedule is the paper file's (the budget's own rate collapsed the printed network: BUILD_NOTES.md).
  assert q("train_eval.default_num_steps") == 1000 and q("train_eval.batch_size") == 20
  assert q("make_optimizer.learning_rate") == 1e-5
  assert q("make_optimizer.weight_decay_mode") == "coupled"                    # inherited from the paper file
  assert q("HAMNet.center_features") is False and q("UniformPerturbedSampler.num_segments") == 500


def test_bgm_and_aumn_paper_file_values():
  _parse("bgm.gin")
  q = gin.query_parameter
  assert q("BGM.background_weight") == q("BGM.guide_weight") == q("BGM.cluster_weight") == 0.1   # paper 4.2
  assert q("bgm_detect.nms_threshold") == 0.5 and q("train_eval.batch_size") == 1
  assert len(q("bgm_detect.attention_thresholds")) == 21                       # 0 to 0.5 in steps of 0.025
  assert tuple(q("train_eval.eval_tiou_thresholds")) == THUMOS14_TIOU
  _parse("aumn.gin")
  assert q("AUMN.num_templates") == 7 and q("aumn_detect.nms_threshold") == 0.3
  assert q("AUMN.sparsity_weights") == {"rgb": 0.05, "flow": 0.03} and q("train_eval.batch_size") == 32
  assert tuple(q("train_eval.eval_tiou_thresholds")) == THUMOS14_TIOU_TO_07
  _parse("cpu/aumn.gin")
  assert q("train_eval.default_num_steps") == 120 and q("AUMN.num_templates") == 7


@pytest.mark.parametrize("name", ["stpn_activitynet13.gin", "bgm_activitynet13.gin", "aumn_activitynet12.gin",
                                  "aumn_activitynet13.gin", "hamnet_activitynet12.gin"])
def test_activitynet_files_evaluate_at_activitynet_thresholds(name):
  _parse(name)
  assert tuple(gin.query_parameter("train_eval.eval_tiou_thresholds")) == ACTIVITYNET_TIOU


def test_stpn_activitynet_sparsity_is_the_reproductions_beta_at_200_classes():
  """stpn.gin's beta conversion (C * 1e-4 * 400) depends on the number of classes: ActivityNet 1.3 has 200."""
  _parse("stpn_activitynet13.gin")
  assert math.isclose(gin.query_parameter("STPN.sparsity_weight"), 200 * 1e-4 * 400)
  assert gin.query_parameter("make_optimizer.learning_rate") == 1e-4          # the rest is stpn.gin's


def test_hamnet_activitynet_values():
  _parse("hamnet_activitynet12.gin")
  q = gin.query_parameter
  assert q("UniformPerturbedSampler.num_segments") == 80 and q("HAMNet.top_k") == 4 / 80     # paper ID: k = 4 of 80
  assert q("hamnet_detect.smooth_window") == (80 // 5) // 2 * 2 + 1                # code: AvgPool1d kernel
  assert q("HAMNet.guide_weight") == 0.1 and q("HAMNet.sparsity_weight") == 0.5


def test_budget_files_resolve_from_any_cwd_after_a_plain_install(tmp_path):
  """setup.py installs gin_configs/cpu/*.gin, and `cpu/stpn.gin`'s include resolves from another directory (also
  from inside gin_configs/cpu/, where a cwd-first include would find the budget file itself)."""
  build = tmp_path / "build"
  root = os.path.dirname(ROOT)
  subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)], cwd=root, check=True,
                 capture_output=True, timeout=120)
  installed = build / "stpn_tf" / "gin_configs"
  assert sorted(os.listdir(installed / "cpu")) == sorted(os.listdir(os.path.join(ROOT, "cpu")))
  code = ("from stpn_tf import config\nimport gin\nconfig.parse_gin(['cpu/stpn.gin'], [])\n"
          "assert config.find_gin_file('cpu/stpn.gin').startswith(%r)\n"
          "print(gin.query_parameter('train_eval.batch_size'))\n" % str(installed))
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = dict(os.environ, PYTHONPATH=str(build), TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-c", code], cwd=str(elsewhere), env=env, capture_output=True, text=True,
                       timeout=300)
  assert out.returncode == 0 and out.stdout.strip().endswith("6"), out.stderr[-2000:]
  out = subprocess.run([sys.executable, "-c", "from stpn_tf import config\nimport gin\n"
                        "config.parse_gin(['stpn.gin'], [])\nprint(gin.query_parameter('train_eval.batch_size'))\n"],
                       cwd=str(installed / "cpu"), env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0 and out.stdout.strip().endswith("6"), out.stderr[-2000:]
