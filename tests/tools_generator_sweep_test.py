"""tools/generator_sweep.py: variant configs, per-method arguments (the training runs themselves are not run here).

The tool defines absl flags (--output_dir, --seed, ...) that other binaries define too, so it is imported in a
child process, as it runs, not into the test process."""

import json
import os
import subprocess
import sys
import textwrap

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")


def _run(code: str):
  script = "import sys, json\nsys.path.insert(0, %r)\nimport generator_sweep as g\n" % TOOLS + textwrap.dedent(code)
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_make_config_applies_top_level_stream_and_both_overrides():
  out = _run("""
      cfg = g.make_config({"foreground_occlusion": 0.5, "rgb": {"class_strength": 2.0},
                           "both": {"base_mean": 0.1}}, (("train", 4), ("test", 3)))
      print(json.dumps([cfg.foreground_occlusion, cfg.rgb.class_strength, cfg.flow.class_strength,
                        cfg.rgb.base_mean, cfg.flow.base_mean, cfg.split_sizes()]))
  """)
  occlusion, rgb_class, flow_class, rgb_base, flow_base, sizes = out
  assert occlusion == 0.5 and rgb_class == 2.0 and flow_class != 2.0
  assert rgb_base == flow_base == 0.1 and sizes == {"train": 4, "test": 3}


def test_method_args_steps_bindings_and_bad_steps():
  out = _run("""
      steps = g.parse_steps(["stpn=24000", "bgm=0"])
      errors = []
      for spec in ["stpn", "nope=3", "stpn=x"]:
        try:
          g.parse_steps([spec])
        except ValueError as e:
          errors.append(str(e))
      print(json.dumps([g.method_args("stpn", steps, ["a.b = 1"]), g.method_args("bgm", steps, []),
                        g.method_args("hamnet", {}, []), errors]))
  """)
  stpn, bgm, hamnet, errors = out
  assert stpn == ["--gin_file=stpn.gin", "--num_steps=24000", "--gin_param=a.b = 1"]
  assert bgm == ["--gin_file=bgm.gin"]   # 0: the gin file's own schedule
  assert "--gin_file=cpu/hamnet.gin" in hamnet and not any(a.startswith("--num_steps") for a in hamnet)
  assert len(errors) == 3 and all("METHOD=N" in e for e in errors)


def test_named_variants_load_merge_and_build():
  out = _run("""
      v11 = g.variant_overrides("V11", {})
      merged = g.variant_overrides("V11", {"rgb": {"scene_strength": 0.5}, "context_prob": 0.5})
      errors = []
      try:
        g.variant_overrides("V99", {})
      except ValueError as e:
        errors.append(str(e))
      with open(g.VARIANTS_FILE) as f:
        names = sorted(json.load(f))
      built = [g.make_config(g.variant_overrides(n, {}), (("train", 2), ("test", 2))).context_prob for n in names]
      # V8 is generator v4's thumos14 preset; the others start from v3 (thumos14_v3), as they were measured.
      from stpn_tf.data import synthetic
      v8 = g.make_config(g.variant_overrides("V8", {}), synthetic.THUMOS14.num_videos) == synthetic.THUMOS14
      v11_core = g.make_config(v11, (("train", 2), ("test", 2))).context_core_share
      # V14 (session 9) is v4 with milder instance ends, nothing else.
      import dataclasses
      v14 = g.make_config(g.variant_overrides("V14", {}), synthetic.THUMOS14.num_videos) == dataclasses.replace(
          synthetic.THUMOS14, class_edge_floor=0.5, class_ramp_fraction=0.25)
      print(json.dumps([v11, merged, errors, names, built, v8, v11_core, v14]))
  """)
  v11, merged, errors, names, built, v8, v11_core, v14 = out
  assert v8 and v14 and v11_core == 0.0 and v11["preset"] == "thumos14_v3"
  assert v11["distractors_per_instance"] == 0.35 and v11["rgb"]["class_strength"] == 3.0
  assert merged["rgb"] == {**v11["rgb"], "scene_strength": 0.5} and merged["context_prob"] == 0.5
  assert merged["flow"] == v11["flow"]
  assert errors and "V99" in errors[0] and "V11" in errors[0]
  assert "V1" in names and len(built) == len(names)   # every stored variant is a valid generator config
