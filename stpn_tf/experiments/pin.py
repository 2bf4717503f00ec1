r"""Runs a command pinned to a set of CPUs (Linux `sched_setaffinity`, which the command inherits across exec).

  python -m stpn_tf.experiments.pin 0,1 -- python -m stpn_tf.train --gin_file=stpn.gin ...

`tools/run_experiments.py --lanes=N` wraps each training in it so that N trainings run at once, each on its own
share of the machine's CPUs. TensorFlow sizes its thread pools from the CPUs a process may run on, so a pinned
training does not oversubscribe the others. Measured on a 2-core machine (BUILD_NOTES.md, session 7): two STPN
trainings pinned to one core each ran at 8.5-9 steps/s each against 14 for one training on both cores (~1.25x the
throughput), while two unpinned trainings slowed each other ~5x.
"""

import os
import sys
from typing import Sequence, Tuple

USAGE = "usage: python -m stpn_tf.experiments.pin CPUS -- COMMAND [ARGS...]   (CPUS: e.g. 0 or 0,1 or 0-3)"


def parse_cpus(text: str) -> Tuple[int, ...]:
  """'0,2-3' -> (0, 2, 3): comma-separated CPU numbers and inclusive ranges, as taskset -c takes them."""
  cpus = set()
  for part in text.split(","):
    part = part.strip()
    try:
      if "-" in part:
        low, high = (int(p) for p in part.split("-", 1))
        if low > high:
          raise ValueError(part)
        cpus.update(range(low, high + 1))
      else:
        cpus.add(int(part))
    except ValueError:
      raise ValueError(f"not a CPU list: {text!r} (expected e.g. 0 or 0,1 or 0-3)") from None
  if not cpus or min(cpus) < 0:
    raise ValueError(f"not a CPU list: {text!r} (expected e.g. 0 or 0,1 or 0-3)")
  return tuple(sorted(cpus))


def format_cpus(cpus: Sequence[int]) -> str:
  return ",".join(str(c) for c in sorted(cpus))


def main(argv: Sequence[str]) -> int:
  if len(argv) < 4 or argv[2] != "--":
    print(USAGE, file=sys.stderr)
    return 2
  try:
    cpus = parse_cpus(argv[1])
    os.sched_setaffinity(0, cpus)
  except (ValueError, OSError) as e:   # OSError: a CPU this machine does not have (EINVAL)
    print(f"error: cannot pin to CPUs {argv[1]}: {e}", file=sys.stderr)
    return 2
  try:
    os.execvp(argv[3], list(argv[3:]))
  except OSError as e:
    print(f"error: cannot run {argv[3]!r}: {e}", file=sys.stderr)
    return 127
  return 0   # not reached: exec replaced this process


if __name__ == "__main__":
  sys.exit(main(sys.argv))
