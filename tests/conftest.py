"""Shared test set-up: gin is cleared around every test; TensorFlow logs are quiet."""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


_ABSL_LOG_LEVEL = logging.getLogger("absl").level


@pytest.fixture(autouse=True)
def _restore_absl_log_level():
  # Parsing absl flags in a test (flagsaver restores --verbosity, whose setter sets the absl logger's level, WARNING
  # by default) hides INFO records from later tests' caplog (tests/training/collapse_guard_test.py); module-scoped
  # fixtures can do it between tests, so the level is reset before each test too.
  logging.getLogger("absl").setLevel(_ABSL_LOG_LEVEL)
  yield
  logging.getLogger("absl").setLevel(_ABSL_LOG_LEVEL)
