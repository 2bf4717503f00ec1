"""gin plumbing shared by the binaries: the search path for .gin files and parsing of flags.

`--gin_file=stpn.gin` works from any directory: the project's gin_configs/ folder is on gin's search path
(next to the package in a source checkout, or installed as stpn_tf/gin_configs by setup.py).
"""

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


def parse_gin(gin_files: Sequence[str], gin_params: Sequence[str], finalize: bool = True) -> None:
  """Parses gin files (searched in the cwd, then gin_configs/) and bindings; gin names any unknown binding."""
  for path in GIN_SEARCH_PATHS:
    if os.path.isdir(path) and path not in gin.config._LOCATION_PREFIXES:  # pylint: disable=protected-access
      gin.add_config_file_search_path(path)
  gin.parse_config_files_and_bindings(list(gin_files or []), list(gin_params or []),
                                      finalize_config=finalize)


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
