"""Small datasets built inside tests (tests never read ../shared)."""

import numpy as np

from stpn_tf.data import schema


def random_video(video_id, length, num_classes=3, dim=8, seed=0, label=None):
  rng = np.random.default_rng(seed)
  label = int(rng.integers(num_classes)) if label is None else label
  return schema.Video(video_id=video_id, labels=np.array([label]), duration=length / 1.5625,
                      rgb=rng.random((length, dim), dtype=np.float32),
                      flow=rng.random((length, dim), dtype=np.float32),
                      segments=np.array([[0.5, 1.5]], np.float32), segment_labels=np.array([label]))


def write_random_dataset(data_dir, num_train=6, num_test=3, dim=8, num_classes=3, lengths=(5, 40)):
  rng = np.random.default_rng(123)
  def videos(prefix, n):
    for i in range(n):
      yield random_video(f"{prefix}_{i:03d}", int(rng.integers(*lengths)), num_classes, dim, seed=i)
  return schema.write_dataset(
      str(data_dir), {"train": videos("train", num_train), "test": videos("test", num_test)},
      [f"class{c}" for c in range(num_classes)], 1.5625, feature_dims={"rgb": dim, "flow": dim},
      videos_per_shard=2)
