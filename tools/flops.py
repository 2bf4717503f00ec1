"""FLOPs of what a TensorFlow function graph really runs (used by tools/benchmark.py; no flags, importable)."""


def graph_flops(graph) -> int:
  """FLOPs of the ops a function graph really runs: those its outputs (and control outputs) depend on.

  A gradient function computes every input's gradient, e.g. a first layer's gradient with respect to the raw
  features, which nothing uses; Grappler and XLA prune those before running the step, so counting every op of
  the traced graph (tf.compat.v1.profiler on the whole graph) overcounts (HAM-Net: 7.69 counted vs 5.33 GFLOP
  per video run). Here only the ops reachable backwards from the outputs are summed, each with TensorFlow's
  registered FLOP statistics (MatMul, Conv2D and its backprops, BatchMatMul, elementwise ops; 0 if none).
  """
  from tensorflow.python.framework import ops as tf_ops  # pylint: disable=import-outside-toplevel
  pending = [t.op for t in graph.outputs] + list(graph.control_outputs)
  seen = set()
  total = 0
  while pending:
    op = pending.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    try:
      stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
      total += int(stats.value or 0)
    except ValueError:   # shapes unknown: not counted
      pass
    pending.extend(t.op for t in op.inputs)
    pending.extend(op.control_inputs)
  return total
