"""gin plumbing shared by the binaries: the search path for .gin files, registration and parsing.

`--gin_file=stpn.gin` and `--gin_file=cpu/stpn.gin` work from any directory: the project's gin_configs/ folder
is on gin's search path (next to the package in a source checkout, or installed as stpn_tf/gin_configs by
setup.py), and an `include 'stpn.gin'` inside a config file resolves there before the current directory, so a
budget file always includes the project's paper file.

Layering: this module sits above the library it configures (it imports every module that registers a gin
configurable, so that any .gin file parses) and below the run-level code (stpn_tf/runs.py) and the binaries;
nothing it imports imports it back (tests/import_layers_test.py).
"""

import logging
import os
from typing import Sequence

import gin

# Every configurable a .gin file may name must be registered before parsing.
import stpn_tf.data.pipeline  # noqa: F401  (make_train_dataset, make_eval_dataset)
import stpn_tf.data.sampling  # noqa: F401
from stpn_tf.data import synthetic
import stpn_tf.models  # noqa: F401  (registers every model task)
import stpn_tf.training.trainer  # noqa: F401  (train_eval, make_optimizer, validation_images)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
GIN_SEARCH_PATHS = (
    os.path.join(os.path.dirname(_PACKAGE_DIR), "gin_configs"),   # source checkout / editable install
    os.path.join(_PACKAGE_DIR, "gin_configs"),                    # regular install (see setup.py)
)


class GinFileNotFoundError(FileNotFoundError):
  """A --gin_file that is neither a file nor the name of one in gin_configs/."""


def _add_search_paths() -> None:
  """Puts gin_configs/ first on gin's include search path (before the cwd entry ''), once."""
  prefixes = gin.config._LOCATION_PREFIXES  # pylint: disable=protected-access  (gin has no API for the order)
  for path in reversed(GIN_SEARCH_PATHS):
    if os.path.isdir(path) and path not in prefixes:
      prefixes.insert(0, path)


def find_gin_file(name: str) -> str:
  """The absolute path of a --gin_file: as given (absolute or relative to the cwd) if it exists, else under
  gin_configs/ (e.g. 'stpn.gin', 'cpu/stpn.gin').

  Raises:
    GinFileNotFoundError: nowhere on the search path (the message lists the places searched and the known files).
  """
  if os.path.isfile(name):
    return os.path.abspath(name)
  for path in GIN_SEARCH_PATHS:
    candidate = os.path.join(path, name)
    if os.path.isfile(candidate):
      return candidate
  known = sorted(os.path.relpath(os.path.join(d, f), folder) for folder in GIN_SEARCH_PATHS if os.path.isdir(folder)
                 for d, _, files in os.walk(folder) for f in files if f.endswith(".gin"))
  raise GinFileNotFoundError(f"gin file {name!r} not found in the current directory nor in "
                             f"{', '.join(p for p in GIN_SEARCH_PATHS if os.path.isdir(p))}; known: "
                             f"{', '.join(sorted(set(known)))}")


class _DropGinPathNotFound(logging.Filter):
  """gin logs 'Path not found: X' at error level for every file it then finds on its search path (it first
  tries X as a Python package resource): a false alarm on every run."""

  def filter(self, record):
    return not str(record.msg).startswith("Path not found: ")


def parse_gin(gin_files: Sequence[str], gin_params: Sequence[str], finalize: bool = True) -> None:
  """Parses gin files (the cwd first, then gin_configs/) and bindings; gin names any unknown binding.

  Raises:
    GinFileNotFoundError: a gin file is nowhere on the search path (the message lists the known ones).
  """
  _add_search_paths()
  files = [find_gin_file(f) for f in gin_files or []]
  root, quiet = logging.getLogger(), _DropGinPathNotFound()
  root.addFilter(quiet)   # for the files they include ("include 'aumn.gin'"), which gin searches itself
  try:
    gin.parse_config_files_and_bindings(files, list(gin_params or []), finalize_config=finalize)
  finally:
    root.removeFilter(quiet)


def default_cache_dir() -> str:
  """Where generated datasets and default model directories live: $STPN_TF_CACHE or ~/.cache/stpn_tf."""
  return os.environ.get("STPN_TF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stpn_tf")


@gin.configurable
def builtin_dataset(preset: str = "thumos14", seed: int = 0) -> str:
  """The built-in synthetic dataset's directory, generated on first use into the cache (see data/synthetic.py)."""
  return synthetic.ensure_dataset(os.path.join(default_cache_dir(), "datasets"), preset=preset, seed=seed)


def default_model_dir(gin_files: Sequence[str]) -> str:
  """<cache>/runs/<name of the first gin file>, used when --model_dir is not given."""
  name = os.path.splitext(os.path.basename(gin_files[0]))[0] if gin_files else "run"
  return os.path.join(default_cache_dir(), "runs", name)
