"""Tests of stpn_tf/visualization and the picture binaries (visualize, evaluate --report_dir).

Helpers shared by the tests; `conftest.py` trains one tiny STPN run per session on `write_dataset`'s data.
"""

import os

import numpy as np

from stpn_tf.data import schema

NUM_CLASSES = 3
DIM = 16
RATE = 1.5625


def _video(video_id, seed):
  """A random video with 1-3 ground-truth instances at random places (seconds) of random classes."""
  rng = np.random.default_rng(seed)
  length = int(rng.integers(20, 50))
  duration = length / RATE
  num = int(rng.integers(1, 4))
  starts = np.sort(rng.uniform(0, duration * 0.8, num))
  ends = np.minimum(starts + rng.uniform(1.0, 6.0, num), duration)
  classes = rng.integers(NUM_CLASSES, size=num)
  return schema.Video(video_id=video_id, labels=np.unique(classes), duration=duration,
                      rgb=rng.random((length, DIM), dtype=np.float32), flow=rng.random((length, DIM), dtype=np.float32),
                      segments=np.stack([starts, ends], axis=1).astype(np.float32), segment_labels=classes)


def write_dataset(data_dir, num_train=6, num_test=4):
  return schema.write_dataset(
      str(data_dir), {"train": (_video(f"train_{i}", i) for i in range(num_train)),
                      "test": (_video(f"test/{i}", 100 + i) for i in range(num_test))},
      [f"class{c}" for c in range(NUM_CLASSES)], RATE, feature_dims={"rgb": DIM, "flow": DIM}, videos_per_shard=2)


def is_png(path):
  with open(path, "rb") as f:
    return f.read(8) == b"\x89PNG\r\n\x1a\n"


def no_temporary_files(folder):
  return [name for root, _, files in os.walk(folder) for name in files if ".tmp" in name] == []
