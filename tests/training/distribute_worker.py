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


def _trainer(strategy, global_batch):
  from stpn_tf.models import stpn
  from stpn_tf.training import trainer as trainer_lib
  tf.keras.utils.set_random_seed(1)
  trainer = trainer_lib.Trainer(stpn.STPN(hidden_units=4), _manifest(), strategy, global_batch, jit_compile=False)
  # Same initial weights whatever the strategy.
  for model in trainer.models.values():
    model.set_weights([np.full(w.shape, 0.01 * (i + 1), np.float32) + 0.001 * np.arange(w.size).reshape(w.shape)
                       % 0.05 for i, w in enumerate(model.get_weights())])
  return trainer


def _train(strategy, num_steps, global_batch, trainer=None):
  trainer = _trainer(strategy, global_batch) if trainer is None else trainer
  initial = {f"init/{name}/{i}": w for name, model in trainer.models.items()
             for i, w in enumerate(model.get_weights())}
  data = tf.data.Dataset.from_tensor_slices(_batches(num_steps, global_batch)).batch(global_batch)
  iterator = iter(strategy.experimental_distribute_dataset(data))
  trainer.train_steps(iterator, num_steps)
  final = {f"{name}/{i}": w for name, model in trainer.models.items() for i, w in enumerate(model.get_weights())}
  # The last batch's attention statistics, summed over the replicas' segments (compared across strategies too).
  final.update({f"attention/{name}/{key}": np.array(value) for name, stats in
                trainer.last_attention_statistics.items() for key, value in stats.items()})
  return dict(initial, **final)


def _mirrored_two_cpus():
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  assert strategy.num_replicas_in_sync == 2
  return strategy


def _state(trainer):
  """Step, weights and optimizer variables (Adam's iteration count, learning rate, moments) of a Trainer."""
  state = {"step": np.array(int(trainer.step.numpy()))}
  for name, model in trainer.models.items():
    state.update({f"{name}/weight/{i}": w for i, w in enumerate(model.get_weights())})
    state.update({f"{name}/optimizer/{i}": np.array(v) for i, v in enumerate(trainer.optimizers[name].variables)})
    state[f"{name}/optimizer_iterations"] = np.array(trainer.optimizers[name].iterations)
  return state


def _checkpoint_across_strategies(ckpt_root):
  """Trains 3 steps under one strategy, saves with a CheckpointManager over Trainer.checkpoint(), restores into a
  fresh Trainer under the other strategy: mirrored -> default ("m2d") and default -> mirrored ("d2m")."""
  mirrored, default = _mirrored_two_cpus(), tf.distribute.get_strategy()
  result = {}
  for tag, source, target in (("m2d", mirrored, default), ("d2m", default, mirrored)):
    trainer = _trainer(source, 4)
    _train(source, 3, 4, trainer)
    manager = tf.train.CheckpointManager(trainer.checkpoint(), os.path.join(ckpt_root, tag), max_to_keep=1)
    path = manager.save(checkpoint_number=int(trainer.step.numpy()))
    restored = _trainer(target, 4)
    result.update({f"{tag}/fresh/{k}": v for k, v in _state(restored).items()})
    restored.checkpoint().restore(tf.train.latest_checkpoint(os.path.join(ckpt_root, tag))).assert_consumed()
    assert path == tf.train.latest_checkpoint(os.path.join(ckpt_root, tag))
    result.update({f"{tag}/saved/{k}": v for k, v in _state(trainer).items()})
    result.update({f"{tag}/restored/{k}": v for k, v in _state(restored).items()})
  return result


def _train_eval_mirrored(root):
  """The whole training binary's loop (train_eval) under MirroredStrategy: 2 steps, then resumed to 4, then
  evaluated; returns the final weights."""
  import gin
  from stpn_tf import config
  from stpn_tf.training import trainer as trainer_lib
  from tests import testing_utils
  strategy = _mirrored_two_cpus()
  data_dir = os.path.join(root, "data")
  testing_utils.write_random_dataset(data_dir, num_train=8, num_test=2, dim=8)
  model_dir = os.path.join(root, "model")
  for steps in (2, 4):
    gin.clear_config()
    config.parse_gin(["stpn.gin"], ["train_eval.batch_size = 4", "train_eval.checkpoint_every = 2",
                                    "STPN.hidden_units = 4", "UniformPerturbedSampler.num_segments = 8",
                                    "train_eval.eval_every = 0", "train_eval.jit_compile = False"])
    result = trainer_lib.train_eval(model_dir, data_dir, num_steps=steps, strategy=strategy)
    assert result["step"] == steps, result
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")
  assert os.path.exists(os.path.join(model_dir, "eval_test.json"))
  reader = tf.train.load_checkpoint(model_dir)
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("rgb_")}


def main():
  mode, out = sys.argv[1], sys.argv[2]
  if mode == "single":
    weights = _train(tf.distribute.get_strategy(), 3, 4)
  elif mode == "mirrored":
    weights = _train(_mirrored_two_cpus(), 3, 4)
  elif mode == "train_eval_mirrored":
    weights = _train_eval_mirrored(os.path.dirname(os.path.abspath(out)))
  elif mode == "checkpoint":
    weights = _checkpoint_across_strategies(os.path.dirname(os.path.abspath(out)))
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
