"""tf.distribute strategy selection (the binaries' --strategy flag)."""

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


def get_strategy(name: str = "default", tpu: str = "") -> tf.distribute.Strategy:
  """Builds a strategy by name.

  default: the current (no-op) strategy, one device; mirrored: all local GPUs (or CPU); multi_worker_mirrored:
  synchronous training over the hosts listed in TF_CONFIG; tpu: the TPU at `tpu` (a name or grpc:// address).
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker_mirrored":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f"--strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True on the one worker that writes checkpoints, summaries and results (always true without a cluster)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def worker_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
  """Where this worker saves checkpoints: model_dir on the chief; a private scratch folder on the others (saving
  under MultiWorkerMirroredStrategy is collective, so every worker must save, but only the chief's copy counts)."""
  if is_chief(strategy):
    return model_dir
  resolver = strategy.cluster_resolver
  return f"{model_dir}/.{resolver.task_type}_{resolver.task_id}"
