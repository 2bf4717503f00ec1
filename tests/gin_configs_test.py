"""Every .gin file in gin_configs/ parses and its task builds (a typo in a config fails here)."""

import glob
import os

import gin
import pytest

from stpn_tf import config

GIN_FILES = sorted(glob.glob(os.path.join(config.GIN_SEARCH_PATHS[0], "*.gin")))


def test_gin_configs_exist():
  assert any(f.endswith("stpn.gin") for f in GIN_FILES)


@pytest.mark.parametrize("path", GIN_FILES, ids=os.path.basename)
def test_gin_file_parses_and_builds(path):
  config.parse_gin([os.path.basename(path)], [], finalize=False)
  task = gin.query_parameter("train_eval.task").scoped_configurable_fn()
  models = task.build_models(5, {"rgb": 16, "flow": 16})
  assert models and all(m.count_params() > 0 for m in models.values())
