r"""What separates HAM-Net's training step from the machine's matmul ceiling: op-level timing of its parts.

  python tools/profile_hamnet.py [--batch=20] [--segments=500] [--widths=2048,2048,512] [--output_json=OUT]

At the authors' code's widths (2048/2048, attention 512) on batch x segments x 2048 features, times in one
process: the [B*T, 3*2048] x [3*2048, 2048] float32 matmul (the ceiling at the dominant layer's shape); one
kernel-3 temporal convolution 2048 -> 2048 forward, and forward + kernel gradient, as the Keras Conv1D op
(Conv2D under the hood) and as three shifted matmuls, XLA on and off; the whole training step (Trainer, the
model's gin widths) XLA on / off, op determinism on / off, float32 / bfloat16. All variants (the ceiling too)
are timed in --reps interleaved rounds after a warm-up, and each keeps its fastest round (on a shared machine the
least disturbed one); each figure comes with its GFLOP/s and its share of the ceiling. The load average is
recorded beside them: on a shared machine only ratios within one run mean anything.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_BATCH = flags.DEFINE_integer("batch", 20, "videos per step (authors' code: 20).")
_SEGMENTS = flags.DEFINE_integer("segments", 500, "segments per video (paper: 500).")
_WIDTHS = flags.DEFINE_list("widths", ["2048", "2048", "512"], "classifier conv widths and attention width.")
_REPS = flags.DEFINE_integer("reps", 3, "timed repetitions (median).")
_PARTS = flags.DEFINE_list("parts", ["ceiling", "conv", "step"], "what to time.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "where to write the results.")


class _Rounds:
  """Times registered callables in interleaved rounds and keeps each one's fastest time."""

  def __init__(self):
    self.fns, self.flops, self.best = {}, {}, {}

  def add(self, key, fn, flops):
    fn()   # warm-up (tracing, compilation)
    self.fns[key], self.flops[key] = fn, flops

  def run(self, reps):
    for _ in range(reps):
      for key, fn in self.fns.items():
        start = time.perf_counter()
        fn()
        self.best[key] = min(self.best.get(key, float("inf")), time.perf_counter() - start)


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  b, t, d = _BATCH.value, _SEGMENTS.value, 2048
  widths = [int(w) for w in _WIDTHS.value]
  out = {"load_average_at_start": list(os.getloadavg()), "batch": b, "segments": t, "widths": widths}
  rounds = _Rounds()
  m, k, n = b * t, 3 * d, widths[0]
  a = tf.random.uniform((m, k))
  w = tf.random.uniform((k, n))
  mm = tf.function(lambda a, w: tf.reduce_sum(tf.matmul(a, w)))
  rounds.add("ceiling", lambda: mm(a, w).numpy(), 2 * m * k * n)
  out["ceiling_shape"] = [m, k, n]
  if "conv" in _PARTS.value:
    x = tf.random.uniform((b, t, d))
    kernel = tf.Variable(tf.random.normal((3, d, n), stddev=0.01))
    conv_flops = 2 * b * t * 3 * d * n

    def keras_conv(x):     # what keras.layers.Conv1D(padding="same") runs on the TF backend
      return tf.nn.conv1d(x, kernel, 1, "SAME")

    def shifted(x):        # the same convolution as three matmuls of shifted inputs
      zero = tf.zeros_like(x[:, :1])
      prev = tf.concat([zero, x[:, :-1]], axis=1)
      nxt = tf.concat([x[:, 1:], zero], axis=1)
      return (tf.einsum("btd,dh->bth", prev, kernel[0]) + tf.einsum("btd,dh->bth", x, kernel[1])
              + tf.einsum("btd,dh->bth", nxt, kernel[2]))

    np.testing.assert_allclose(keras_conv(x[:1, :20]).numpy(), shifted(x[:1, :20]).numpy(), rtol=1e-4, atol=1e-4)
    for name, conv in (("conv1d", keras_conv), ("shifted_matmuls", shifted)):
      for jit in (False, True):
        # Squares, so that no simplification can skip the matmuls (the gradient of a plain sum is x^T 1).
        fwd = tf.function(lambda x, conv=conv: tf.reduce_sum(tf.square(conv(x))), jit_compile=jit)

        def grad(x, conv=conv):
          with tf.GradientTape() as tape:
            loss = 0.5 * tf.reduce_sum(tf.square(conv(x)))
          return tape.gradient(loss, kernel)
        grad_fn = tf.function(lambda x, g=grad: tf.reduce_sum(g(x)), jit_compile=jit)
        tag = f"{name}_{'xla' if jit else 'graph'}"
        rounds.add(f"{tag}_forward", lambda f=fwd: f(x).numpy(), conv_flops)
        rounds.add(f"{tag}_forward_and_kernel_grad", lambda f=grad_fn: f(x).numpy(), 2 * conv_flops)
  if "step" in _PARTS.value:
    _time_steps(rounds, b, t, widths)
  rounds.run(_REPS.value)
  ceiling = rounds.flops["ceiling"] / rounds.best["ceiling"] / 1e9
  out["ceiling_gflops"] = ceiling
  for key, seconds in rounds.best.items():
    gflops = rounds.flops[key] / seconds / 1e9
    out[key] = dict(seconds=seconds, gflops=gflops, fraction_of_ceiling=gflops / ceiling)
    print(f"{key:<55} {seconds:8.3f} s {gflops:7.1f} GFLOP/s {100 * gflops / ceiling:5.0f}% of the ceiling")
  out["load_average_at_end"] = list(os.getloadavg())
  print(json.dumps(out, indent=1))
  if _OUTPUT_JSON.value:
    with open(_OUTPUT_JSON.value + ".tmp", "w") as f:
      json.dump(out, f, indent=1)
    os.replace(_OUTPUT_JSON.value + ".tmp", _OUTPUT_JSON.value)


def _time_steps(rounds, b, t, widths):
  """The Trainer's step on one batch held in memory, for each setting (op determinism is switched around each
  call: it is process-wide)."""
  import numpy as np
  import tensorflow as tf
  from tensorflow.python.framework import config as tf_config
  from stpn_tf.models import hamnet
  from stpn_tf.training import trainer

  class Manifest:
    num_classes = 20
    feature_dims = {"rgb": 1024, "flow": 1024}

  rng = np.random.default_rng(0)
  batch = {"rgb": tf.constant(rng.random((b, t, 1024), np.float32)),
           "flow": tf.constant(rng.random((b, t, 1024), np.float32)),
           "mask": tf.ones((b, t)), "labels": tf.one_hot(rng.integers(0, 20, b), 20)}
  it = iter(tf.data.Dataset.from_tensors(batch).repeat())
  d = 2048
  # The convolutions' FLOPs (forward, kernel gradients, conv2's input gradient): ~99% of the step's.
  per_video = 2 * t * 3 * (d * widths[0] + widths[0] * widths[1] + d * widths[2])
  flops = b * (2 * per_video + 2 * t * 3 * widths[0] * widths[1])
  for precision in ("float32", "mixed_bfloat16"):
    for jit in (True, False):
      for deterministic in (True, False):
        if precision != "float32" and not (jit and deterministic):
          continue
        task = hamnet.HAMNet(classifier_units=widths[:2], attention_units=widths[2], center_features=True)
        tr = trainer.Trainer(task, Manifest, tf.distribute.get_strategy(), b, jit_compile=jit, precision=precision)

        def step(tr=tr, deterministic=deterministic):
          if deterministic:
            tf.config.experimental.enable_op_determinism()
          tr.train_steps(it, 1)
          tf_config.disable_op_determinism()
        key = f"step_{precision}_{'xla' if jit else 'graph'}_{'deterministic' if deterministic else 'nondeterministic'}"
        rounds.add(key, step, flops)
  tf_config.disable_op_determinism()


if __name__ == "__main__":
  app.run(main)
