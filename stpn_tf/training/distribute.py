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
