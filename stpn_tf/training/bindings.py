"""Checks of gin-bound numbers before they are used, with messages that name the binding.

gin takes any Python literal, so `train_eval.batch_size = 'big'` reaches the loop as a string and fails far away
(`TypeError: not all arguments converted during string formatting` from a log line). Each number of
`train_eval` is checked here first.
"""

import numbers
from typing import Any, Mapping

# train_eval argument: (kind, smallest allowed value). Kinds: "int" (bool refused) or "float".
TRAIN_EVAL_NUMBERS = {
    "num_steps": ("int", 0),
    "default_num_steps": ("int", 0),
    "batch_size": ("int", 1),
    "steps_per_loop": ("int", 1),
    "checkpoint_every": ("int", 1),
    "eval_every": ("int", 0),
    "keep_checkpoints": ("int", 1),
    "seed": ("int", 0),
    "validation_fraction": ("float", 0.0),
}


class BindingError(ValueError):
  """A gin binding (or flag) has a value of the wrong type or range."""


def check_number(name: str, value: Any, kind: str, minimum: float) -> None:
  """Raises BindingError naming `name` unless value is a number of `kind` >= minimum."""
  if kind == "int":
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    wanted = "an integer"
  else:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    wanted = "a number"
  if not ok:
    raise BindingError(f"{name} must be {wanted} >= {minimum}, got {value!r} ({type(value).__name__})")
  if value < minimum:
    raise BindingError(f"{name} must be >= {minimum}, got {value!r}")


def check_train_eval_numbers(arguments: Mapping[str, Any]) -> None:
  """Checks train_eval's numeric arguments (pass its locals()); num_steps is the --num_steps flag."""
  for name, (kind, minimum) in TRAIN_EVAL_NUMBERS.items():
    value = arguments.get(name)
    if name == "num_steps":
      if value is not None:
        check_number("--num_steps", value, kind, minimum)
      continue
    check_number(f"train_eval.{name}", value, kind, minimum)
  fraction = arguments.get("validation_fraction")
  if fraction >= 1.0:
    raise BindingError(f"train_eval.validation_fraction must be in [0, 1), got {fraction!r}")
