"""gin plumbing shared by the binaries: the search path for .gin files and parsing of flags.

`--gin_file=stpn.gin` works from any directory: the project's gin_configs/ folder is on gin's search path
(next to the package in a source checkout, or installed as stpn_tf/gin_configs by setup.py).
"""

import logging
import os
from typing import Sequence

import gin

# Every configurable a .gin file may name must be registered before parsing.
import stpn_tf.data.pipeline  # noqa: F401  (make_train_dataset, make_eval_dataset)
import stpn_tf.data.sampling  # noqa: F401
import stpn_tf.models  # noqa: F401  (registers every model task)
import stpn_tf.training.trainer  # noqa: F401

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
GIN_SEARCH_PATHS = (
    os.path.join(os.path.dirname(_PACKAGE_DIR), "gin_configs"),   # source checkout / editable install
    os.path.join(_PACKAGE_DIR, "gin_configs"),                    # regular install (see setup.py)
)


class GinFileNotFoundError(FileNotFoundError):
  """A --gin_file that is neither a file nor the name of one in gin_configs/."""


def _resolve_gin_file(name: str) -> str:
  if os.path.isabs(name) or os.path.isfile(name):
    return name
  for folder in GIN_SEARCH_PATHS:
    if os.path.isfile(os.path.join(folder, name)):
      return os.path.join(folder, name)
  known = sorted(f for folder in GIN_SEARCH_PATHS if os.path.isdir(folder) for f in os.listdir(folder)
                 if f.endswith(".gin"))
  raise GinFileNotFoundError(f"gin file {name!r} not found (looked in the current directory and "
                             f"{[p for p in GIN_SEARCH_PATHS if os.path.isdir(p)]}); known: {', '.join(known)}")


class _DropGinPathNotFound(logging.Filter):
  """gin logs 'Path not found: X' at error level for every file it then finds on its search path (it first
  tries X as a Python package resource): a false alarm on every run."""

  def filter(self, record):
    return not str(record.msg).startswith("Path not found: ")


def parse_gin(gin_files: Sequence[str], gin_params: Sequence[str], finalize: bool = True) -> None:
  """Parses gin files (searched in the cwd, then gin_configs/) and bindings; gin names any unknown binding.

  Raises:
    GinFileNotFoundError: a gin file is nowhere on the search path (the message lists the known ones).
  """
  for path in GIN_SEARCH_PATHS:
    if os.path.isdir(path) and path not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
      gin.add_config_file_search_path(path)
  files = [_resolve_gin_file(f) for f in gin_files or []]
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
  from stpn_tf.data import synthetic  # generation code is only needed when no --data_dir is given
  return synthetic.ensure_dataset(os.path.join(default_cache_dir(), "datasets"), preset=preset, seed=seed)


def default_model_dir(gin_files: Sequence[str]) -> str:
  """<cache>/runs/<name of the first gin file>, used when --model_dir is not given."""
  name = os.path.splitext(os.path.basename(gin_files[0]))[0] if gin_files else "run"
  return os.path.join(default_cache_dir(), "runs", name)
