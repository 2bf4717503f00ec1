"""The HDF5 integrity check (stpn_tf/data/hdf5_check.py) and the converter's use of it (issue 19, item 1)."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from stpn_tf.data import converters
from stpn_tf.data import hdf5_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_h5(path, **kwargs):
  with h5py.File(path, "w", **kwargs) as f:
    f["video_test_1/rgb"] = np.arange(40 * 4, dtype=np.float32).reshape(40, 4)
    f["video_test_1/flow"] = np.ones((40, 4), np.float32)
  return str(path)


@pytest.mark.parametrize("kwargs", [{}, {"libver": "latest"}, {"userblock_size": 512}],
                         ids=["superblock_v0", "superblock_v3", "user_block"])
def test_complete_files_pass_and_every_truncation_is_caught(tmp_path, kwargs):
  path = _write_h5(tmp_path / "f.h5", **kwargs)
  hdf5_check.check_hdf5_file(path, lambda p: open(p, "rb"))
  data = open(path, "rb").read()
  for size in (len(data) - 1, len(data) // 2, 40, 9):
    with open(path, "wb") as f:
      f.write(data[:size])
    # Cut before a user block's end, the file has no signature left.
    with pytest.raises(hdf5_check.Hdf5FileError, match="truncated|not an HDF5 file"):
      hdf5_check.check_hdf5_file(path, lambda p: open(p, "rb"))


def test_item1_truncated_hdf5_reported(tmp_path):
  # Run as the user did (the binary in a subprocess): tensorflow-io segfaulted on this file (exit 139, no report).
  path = _write_h5(tmp_path / "features.h5")
  data = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(data[:len(data) * 2 // 3])
  gt = tmp_path / "gt.json"
  gt.write_text(json.dumps({"database": {"video_test_1": {"subset": "test", "duration": 25.6, "annotations": [
      {"label": "Golf", "segment": [1.0, 2.0]}]}}}))
  out = tmp_path / "out"
  cmd = [sys.executable, os.path.join(ROOT, "tools", "convert_features.py"), "--format=hdf5", f"--features={path}",
         f"--ground_truth={gt}", f"--output_dir={out}", "--feature_rate=1.5625", "--stream_dim=4"]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))  # this checkout's stpn_tf
  assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
  assert f"{path} is a truncated HDF5 file" in proc.stderr
  report = json.loads((out / converters.REPORT_NAME).read_text())
  assert report["status"] == "failed" and "truncated" in report["error"]
  assert sorted(os.listdir(out)) == [converters.REPORT_NAME]
