"""One `PROGRAM: error: MESSAGE` line for the mistakes a user makes, instead of a Python traceback.

The library raises exceptions that name the file, directory or binding at fault (a gin typo, an unknown gin file,
a missing data folder, another model's model directory, a read-only or full disk); a binary wraps its main with
`reporting(...)` so that such an exception prints its message and exits with status 1. `--verbosity=1` (absl's
flag) keeps the traceback, for bug reports.
"""

import re
import sys
from typing import Callable

from absl import flags

_GIN_CALL = re.compile(r"^\s*In call to configurable ")


def _user_error_types():
  # ValueError: the library's own errors (DataFormatError, ModelDirError, BindingError) and gin's binding errors;
  # OSError: unknown gin file, unwritable or full disk; OpError: TensorFlow's I/O errors (e.g. a checkpoint
  # write on a full disk), only possible once TensorFlow is loaded (never imported here: evaluate's file mode
  # runs without it).
  tf = sys.modules.get("tensorflow")
  return (ValueError, OSError) + ((tf.errors.OpError,) if tf is not None and hasattr(tf, "errors") else ())


def reporting(program: str, main: Callable) -> Callable:
  """main wrapped for absl's app.run: user errors become one error line and exit status 1."""

  def wrapped(argv):
    try:
      return main(argv)
    except _user_error_types() as e:
      if flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].value >= 1:
        raise
      message = e.message if hasattr(e, "message") and isinstance(e.message, str) else str(e)
      # gin appends "In call to configurable 'X' (<function ...>)" to what a configurable raises: noise here.
      message = "\n".join(line for line in message.splitlines() if not _GIN_CALL.match(line))
      print(f"{program}: error: {message.strip() or type(e).__name__}\n"
            f"(the traceback: rerun with --verbosity=1)", file=sys.stderr, flush=True)
      sys.exit(1)

  return wrapped
