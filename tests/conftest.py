"""Shared test set-up: gin is cleared around every test; TensorFlow logs are quiet."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture(autouse=True)
def _restore_absl_log_level():
  # Parsing absl flags in a test (train.main) sets the absl logger's level from --verbosity (WARNING by default),
  # which then hides INFO records from later tests' caplog (tests/training/collapse_guard_test.py).
  import logging  # pylint: disable=import-outside-toplevel
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  yield
  absl_logger.setLevel(level)
