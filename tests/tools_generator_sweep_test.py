"""tools/generator_sweep.py: variant configs, per-method arguments (the training runs themselves are not run here)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import generator_sweep  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_make_config_applies_top_level_stream_and_both_overrides():
  cfg = generator_sweep.make_config({"foreground_occlusion": 0.5, "rgb": {"class_strength": 2.0},
                                     "both": {"base_mean": 0.1}}, (("train", 4), ("test", 3)))
  assert cfg.foreground_occlusion == 0.5
  assert cfg.rgb.class_strength == 2.0 and cfg.flow.class_strength != 2.0
  assert cfg.rgb.base_mean == cfg.flow.base_mean == 0.1
  assert cfg.split_sizes() == {"train": 4, "test": 3}


def test_method_args_steps_and_bindings():
  steps = generator_sweep.parse_steps(["stpn=24000", "bgm=0"])
  assert generator_sweep.method_args("stpn", steps, ["a.b = 1"]) == [
      "--gin_file=stpn.gin", "--num_steps=24000", "--gin_param=a.b = 1"]
  assert generator_sweep.method_args("bgm", steps, []) == ["--gin_file=bgm.gin"]   # 0: the gin file's schedule
  assert "--num_steps=100" in generator_sweep.method_args("hamnet", {}, [])
  assert "--gin_file=cpu/hamnet.gin" in generator_sweep.method_args("hamnet", {}, [])


@pytest.mark.parametrize("spec", ["stpn", "nope=3", "stpn=x"])
def test_bad_steps_are_rejected(spec):
  with pytest.raises(ValueError, match="METHOD=N"):
    generator_sweep.parse_steps([spec])
