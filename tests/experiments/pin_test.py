"""stpn_tf/experiments/pin.py: CPU lists and a command pinned to them."""

import os
import subprocess
import sys

import pytest

from stpn_tf.experiments import pin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_parse_cpus():
  assert pin.parse_cpus("0") == (0,)
  assert pin.parse_cpus("3,1") == (1, 3)
  assert pin.parse_cpus("0-2,5") == (0, 1, 2, 5)
  assert pin.format_cpus((5, 0, 1)) == "0,1,5"
  for bad in ("", "a", "2-1", "-1", "0,,1"):
    with pytest.raises(ValueError, match="not a CPU list"):
      pin.parse_cpus(bad)


def test_bad_command_lines_exit_with_usage():
  assert pin.main(["pin", "0"]) == 2
  assert pin.main(["pin", "0", "python"]) == 2            # no "--"
  assert pin.main(["pin", "x", "--", "true"]) == 2


def test_the_command_runs_on_the_given_cpu_only():
  cpu = min(os.sched_getaffinity(0))
  env = dict(os.environ, PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, "-m", "stpn_tf.experiments.pin", str(cpu), "--", sys.executable, "-c",
                        "import os, sys; print(sorted(os.sched_getaffinity(0))); sys.exit(3)"],
                       capture_output=True, text=True, env=env, timeout=60)
  assert out.stdout.strip() == f"[{cpu}]", out.stderr
  assert out.returncode == 3        # exec: the command's own exit status
  missing = subprocess.run([sys.executable, "-m", "stpn_tf.experiments.pin", str(cpu), "--", "no-such-program-x"],
                           capture_output=True, text=True, env=env, timeout=60)
  assert missing.returncode == 127 and "no-such-program-x" in missing.stderr
