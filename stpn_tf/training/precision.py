"""Reduced precision for training: Keras mixed-precision policies, float32 losses, loss scaling for float16.

`train_eval.precision` selects one of PRECISIONS:
  'float32'          everything in float32 (the default; the papers' setting).
  'mixed_bfloat16'   variables in float32, the layers' matmuls and convolutions in bfloat16 (fast on CPUs with
                     AVX-512 BF16 / AMX and on TPUs and recent GPUs); same exponent range as float32, no scaling.
  'mixed_float16'    the same with float16 (GPUs with tensor cores); the loss is scaled dynamically
                     (keras.optimizers.LossScaleOptimizer) so that small gradients do not underflow.
What stays in float32 whatever the policy: the losses (every model output is cast to float32 before the task's
loss functions), the attention sigmoids and their pooling / normalizations (layers/attention.py, pooling.py,
temporal.py, memory.py, models/bgm.py, hamnet.py, aumn.py mark those layers float32), and the variables.

The Keras policy is process-wide state: `policy_scope` sets it only while the models are built (a layer keeps
the policy it was created under) and always restores the previous one.
"""

import contextlib
from typing import Iterator

import keras
import tensorflow as tf

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
FLOAT32 = "float32"   # dtype for the layers that stay in float32 under any policy


def check(precision: str) -> str:
  if precision not in PRECISIONS:
    raise ValueError(f"train_eval.precision must be one of {PRECISIONS}, got {precision!r}")
  return precision


@contextlib.contextmanager
def policy_scope(precision: str) -> Iterator[None]:
  """Sets the global Keras dtype policy to `precision` inside the block, and restores the previous one."""
  check(precision)
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(precision)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def to_float32(outputs):
  """Casts every floating tensor of a (nested) structure to float32 (integers and strings unchanged)."""
  def cast(t):
    t = tf.convert_to_tensor(t)
    return tf.cast(t, tf.float32) if t.dtype.is_floating and t.dtype != tf.float32 else t
  return tf.nest.map_structure(cast, outputs)


def wrap_optimizer(optimizer: keras.optimizers.Optimizer, precision: str) -> keras.optimizers.Optimizer:
  """float16: dynamic loss scaling around `optimizer`; other precisions: `optimizer` itself."""
  if check(precision) == "mixed_float16":
    return keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def scale_loss(optimizer, loss):
  """The loss to differentiate: scaled by a LossScaleOptimizer (whose apply_gradients unscales), else as is."""
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return optimizer.scale_loss(loss)
  return loss
