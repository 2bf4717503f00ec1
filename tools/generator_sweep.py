r"""Maps which properties of the built-in data decide whether the printed methods learn (issue 16, BUILD_NOTES.md).

For one generator variant (a preset plus JSON overrides of `synthetic.SyntheticConfig`), writes a small dataset
(by default THUMOS14 geometry with 100 training and 60 test videos), trains each requested method on it with
`python -m stpn_tf.train`, one process each, and appends one JSON line per method to OUTPUT_DIR/sweep.jsonl:
detection mAP, classification mAP and every network's attention health (mean, share of segments below 0.05 and
above 0.95, median per-video attention AUC) from the run's eval_test.json.

  python tools/generator_sweep.py --output_dir=/tmp/sweep --name=occ0 \
      --overrides='{"foreground_occlusion": 0.0}' --methods=bgm,hamnet

--variant=NAME starts from a named variant of tools/generator_variants.json (the v4 candidates measured in
BUILD_NOTES.md, "Towards v4"), e.g. --variant=V11 --name=v11.
Overrides: top-level fields of SyntheticConfig; "rgb" / "flow" dicts override one stream's StreamConfig; "both"
overrides the same StreamConfig fields in both streams; "preset" picks the starting preset (default thumos14).
Methods (the schedules are short, for the map; the printed methods otherwise as in their gin files):
  bgm     bgm.gin, 1,500 steps (one video per step)
  hamnet  cpu/hamnet.gin (the budget widths, the paper's schedule: 1,000 steps of 20 at lr 1e-5, ~10 min at full
          size), HAMNet.center_features = False (the paper's network, as the file already says)
  stpn    stpn.gin, 3,000 steps
  aumn    aumn.gin, 60 steps
--steps=METHOD=N,... replaces a method's step count (0: the gin file's own schedule); --gin_param adds bindings to
every method's run (e.g. a validation holdout: 'train_eval.validation_fraction = 0.2').
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

from stpn_tf import common_flags   # --gin_param: extra bindings for every method's run
from stpn_tf.data import synthetic

_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where datasets, runs and sweep.jsonl go.", required=True)
_NAME = flags.DEFINE_string("name", None, "Name of this generator variant.", required=True)
_OVERRIDES = flags.DEFINE_string("overrides", "{}", "JSON overrides of the generator config (see the docstring).")
_VARIANT = flags.DEFINE_string("variant", None, "a named variant of tools/generator_variants.json (BUILD_NOTES.md, "
                               "'Towards v4'); --overrides apply on top of it.")

VARIANTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "generator_variants.json")
_METHODS = flags.DEFINE_list("methods", ["bgm", "hamnet"], "Methods to train (see the docstring).")
_SEED = flags.DEFINE_integer("seed", 0, "Dataset seed.")
_VIDEOS = flags.DEFINE_list("videos", ["100", "60"], "Training and test videos of the sweep dataset.")
_STEPS = flags.DEFINE_list("steps", [], "METHOD=N step counts replacing the defaults below (0: the gin file's).")

METHODS = {
    "bgm": (["--gin_file=bgm.gin"], 1500),
    "hamnet": (["--gin_file=cpu/hamnet.gin", "--gin_param=HAMNet.center_features = False"], 0),
    "stpn": (["--gin_file=stpn.gin"], 3000),
    "aumn": (["--gin_file=aumn.gin"], 60),
}


def method_args(method: str, steps: dict, gin_params) -> list:
  """The `python -m stpn_tf.train` arguments of one method (steps: {method: N}, 0 = the gin file's schedule)."""
  args, default_steps = METHODS[method]
  num_steps = steps.get(method, default_steps)
  return (list(args) + ([f"--num_steps={num_steps}"] if num_steps else [])
          + [f"--gin_param={p}" for p in gin_params])


def parse_steps(specs) -> dict:
  steps = {}
  for spec in specs:
    method, _, value = spec.partition("=")
    if method not in METHODS or not value.isdigit():
      raise ValueError(f"--steps: {spec!r} is not METHOD=N with METHOD in {sorted(METHODS)}")
    steps[method] = int(value)
  return steps


def variant_overrides(name: str, extra: dict, path: str = VARIANTS_FILE) -> dict:
  """The overrides of a named variant with `extra` applied on top ("rgb" / "flow" / "both" dicts merged key by
  key). Raises ValueError for an unknown name."""
  with open(path) as f:
    variants = json.load(f)
  if name not in variants:
    raise ValueError(f"unknown variant {name!r} in {path}; it has {sorted(variants)}")
  merged = json.loads(json.dumps(variants[name]["overrides"]))
  for key, value in extra.items():
    if key in ("rgb", "flow", "both") and isinstance(merged.get(key), dict):
      merged[key].update(value)
    else:
      merged[key] = value
  return merged


def make_config(overrides: dict, num_videos) -> synthetic.SyntheticConfig:
  """The generator config of a variant: a preset with the overrides applied (see the module docstring)."""
  over = dict(overrides)
  base = synthetic.get_config(over.pop("preset", "thumos14"))
  streams = {s: getattr(base, s) for s in ("rgb", "flow")}
  both = over.pop("both", {})
  for s in streams:
    streams[s] = dataclasses.replace(streams[s], **{**both, **over.pop(s, {})})
  over = {k: tuple(v) if isinstance(v, list) else v for k, v in over.items()}
  return dataclasses.replace(base, **over, **streams, num_videos=tuple(num_videos))


def _summary(eval_result: dict) -> dict:
  keep = ("average_mAP_0.1:0.5", "average_mAP_0.1:0.7", "classification_mAP")
  out = {k: round(100 * eval_result[k], 2) for k in keep if k in eval_result}
  if "mAP" in eval_result:
    out["mAP@0.5"] = round(100 * dict(zip(eval_result["tiou_thresholds"], eval_result["mAP"])).get(0.5, 0.0), 2)
  health = eval_result.get("attention_health", {})
  networks = health.get("networks", health) if isinstance(health, dict) else {}
  out["attention"] = {
      name: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()
             if k in ("mean", "share_below", "share_above", "median_video_auc", "median_mass_correlation",
                      "median_video_auc_core", "median_video_auc_ends")}
      for name, stats in networks.items() if isinstance(stats, dict)}
  return out


def main(argv):
  del argv
  out_dir = _OUTPUT_DIR.value
  overrides = json.loads(_OVERRIDES.value)
  if _VARIANT.value:
    try:
      overrides = variant_overrides(_VARIANT.value, overrides)
    except ValueError as e:
      sys.exit(f"error: {e}")
  num_videos = (("train", int(_VIDEOS.value[0])), ("test", int(_VIDEOS.value[1])))
  cfg = make_config(overrides, num_videos)
  unknown = [m for m in _METHODS.value if m not in METHODS]
  if unknown:
    sys.exit(f"error: unknown methods {unknown}; choose from {sorted(METHODS)}")
  try:
    steps = parse_steps(_STEPS.value)
  except ValueError as e:
    sys.exit(f"error: {e}")
  data_dir = os.path.join(out_dir, "data", _NAME.value)
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    print(f"generating {data_dir} ...", flush=True)
    synthetic.generate(data_dir, cfg, seed=_SEED.value, overwrite=True)
  os.makedirs(os.path.join(out_dir, "runs"), exist_ok=True)
  for method in _METHODS.value:
    model_dir = os.path.join(out_dir, "runs", f"{_NAME.value}_{method}")
    start = time.time()
    with open(model_dir + ".log", "w") as log:
      rc = subprocess.run([sys.executable, "-m", "stpn_tf.train", f"--data_dir={data_dir}",
                           f"--model_dir={model_dir}"] + method_args(method, steps, common_flags.GIN_PARAM.value),
                          stdout=log, stderr=subprocess.STDOUT,
                          check=False).returncode
    row = {"name": _NAME.value, "overrides": overrides, "seed": _SEED.value, "method": method,
           "args": method_args(method, steps, common_flags.GIN_PARAM.value), "returncode": rc,
           "wall_s": round(time.time() - start)}
    path = os.path.join(model_dir, "eval_test.json")
    if os.path.exists(path):
      with open(path) as f:
        row.update(_summary(json.load(f)))
    print(json.dumps(row), flush=True)
    with open(os.path.join(out_dir, "sweep.jsonl"), "a") as f:
      f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  app.run(main)
