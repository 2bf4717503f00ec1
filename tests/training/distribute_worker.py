"""Child process for tests/training/distribute_test.py (strategies need a fresh TensorFlow runtime)."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _manifest():
  from stpn_tf.data import schema
  return schema.Manifest(class_names=["a", "b", "c"], feature_rate=1.0, feature_dims={"rgb": 8, "flow": 8},
                         splits={})


def _batches(num_steps, global_batch):
  rng = np.random.default_rng(0)
  n = num_steps * global_batch
  mask = np.ones((n, 6), np.float32)
  mask[::3, 4:] = 0.0                     # some padded videos, so masking and batch scaling both matter
  return {"rgb": rng.random((n, 6, 8), np.float32), "flow": rng.random((n, 6, 8), np.float32), "mask": mask,
          "labels": np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]}


def _train(strategy, num_steps, global_batch):
  from stpn_tf.models import stpn
  from stpn_tf.training import trainer as trainer_lib
  tf.keras.utils.set_random_seed(1)
  trainer = trainer_lib.Trainer(stpn.STPN(hidden_units=4), _manifest(), strategy, global_batch, jit_compile=False)
  # Same initial weights whatever the strategy.
  for model in trainer.models.values():
    model.set_weights([np.full(w.shape, 0.01 * (i + 1), np.float32) + 0.001 * np.arange(w.size).reshape(w.shape)
                       % 0.05 for i, w in enumerate(model.get_weights())])
  initial = {f"init/{name}/{i}": w for name, model in trainer.models.items()
             for i, w in enumerate(model.get_weights())}
  data = tf.data.Dataset.from_tensor_slices(_batches(num_steps, global_batch)).batch(global_batch)
  iterator = iter(strategy.experimental_distribute_dataset(data))
  trainer.train_steps(iterator, num_steps)
  final = {f"{name}/{i}": w for name, model in trainer.models.items() for i, w in enumerate(model.get_weights())}
  return dict(initial, **final)


def main():
  mode, out = sys.argv[1], sys.argv[2]
  if mode == "single":
    weights = _train(tf.distribute.get_strategy(), 3, 4)
  elif mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    weights = _train(strategy, 3, 4)
  elif mode == "multi_worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    weights = _train(strategy, 3, 4)
  else:
    raise ValueError(mode)
  np.savez(out, **weights)
  print(json.dumps({"ok": True}))


if __name__ == "__main__":
  main()
