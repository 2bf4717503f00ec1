"""tools/benchmark.py --quick runs and writes the documented JSON schema (not a speed check)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_schema(tmp_path):
  out = tmp_path / "bench.json"
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "--quick",
                         "--only=matmul_gflops,postprocess_eval,train_stpn", f"--output_json={out}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.loads(out.read_text())
  assert set(report) == {"machine", "results"}
  assert set(report["results"]) == {"matmul_gflops", "postprocess_eval", "train_stpn"}
  for name, r in report["results"].items():
    assert r["unit"] != "error", r.get("error")
    for key in ("value", "unit", "min", "max", "peak_rss_mb"):
      assert key in r, (name, key)
    assert r["min"] <= r["value"] <= r["max"]
  assert 0 < report["results"]["train_stpn"]["fraction_of_ceiling"]
  assert "| train_stpn |" in proc.stdout


def _flops_module():
  import importlib.util
  spec = importlib.util.spec_from_file_location("flops_tool", os.path.join(ROOT, "tools", "flops.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_graph_flops_counts_what_the_step_runs_not_unused_input_gradients():
  import tensorflow as tf
  flops = _flops_module()
  b, t, d, h = 2, 5, 12, 7
  w1 = tf.Variable(tf.ones([3, d, h]))    # a first layer: a kernel-3 temporal convolution
  w2 = tf.Variable(tf.ones([h, 4]))

  def step(x):
    with tf.GradientTape() as tape:
      y = tf.nn.conv1d(x, w1, 1, "SAME")                                       # 2 B T (3 D) H
      loss = tf.reduce_sum(tf.matmul(tf.reshape(y, [-1, h]), w2))             # 2 B T H 4 + a sum
    return loss, tape.gradient(loss, [w1, w2])

  graph = tf.function(step).get_concrete_function(tf.TensorSpec([b, t, d])).graph
  conv, fc = 2 * b * t * 3 * d * h, 2 * b * t * h * 4
  expected = conv + fc                # forward
  expected += conv + fc               # kernel gradients dW1 (Conv2DBackpropFilter), dW2 = Y^T dZ
  expected += fc                      # dY = dZ W2^T, needed by dW1
  # Not run: the first layer's input gradient (Conv2DBackpropInput, another `conv`): nothing uses it, so it is
  # pruned before the step runs, but a profile of the whole traced graph counts it.
  counted = flops.graph_flops(graph)
  assert expected <= counted <= expected + b * t * 4, (counted, expected)      # + the sum's additions
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  whole = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
  assert whole == counted + conv
