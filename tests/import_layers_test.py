"""The package's import graph has no cycle, and the modules that once formed one (config -> trainer -> inference ->
config, and visualization/summaries) stand in layers: inference and summaries below the training loop, gin
plumbing (config) above the library it registers, run restoring (runs) on top (issue 17).

The graph counts imports inside functions too: since it has no cycle, no function-level import is there to dodge
one (hoisting any of them to the top of its module would keep the graph acyclic); the ones that remain keep
TensorFlow or matplotlib out of module import time."""

import ast
import os
import subprocess
import sys

import stpn_tf

PACKAGE_DIR = os.path.dirname(stpn_tf.__file__)
def _modules():
  out = {}
  for root, _, files in os.walk(PACKAGE_DIR):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(root, name)
        rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
        out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
  return out


def _imports(path, modules):
  """(imported stpn_tf module, line, inside a function?) for every import statement of a file."""
  tree = ast.parse(open(path).read(), path)
  found = []

  def visit(node, in_function):
    for child in ast.iter_child_nodes(node):
      nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      names = []
      if isinstance(child, ast.Import):
        names = [a.name for a in child.names]
      elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
        names = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in modules else child.module
                 for a in child.names]
      for name in names:
        if name.startswith("stpn_tf"):
          while name not in modules:
            name = name.rsplit(".", 1)[0]
          found.append((name, child.lineno, in_function))
      visit(child, nested)

  visit(tree, False)
  return found


def _graph():
  modules = _modules()
  graph = {m: set() for m in modules}
  for module, path in modules.items():
    for name, _, _ in _imports(path, modules):
      parts = name.split(".")
      # Importing a.b.c runs a/__init__ and a/b/__init__ first.
      for i in range(1, len(parts) + 1):
        target = ".".join(parts[:i])
        if target in modules and target != module and not module.startswith(target + "."):
          graph[module].add(target)
  return graph


def _find_cycle(graph):
  state, stack = {}, []

  def dfs(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 1:
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = dfs(nxt)
        if cycle:
          return cycle
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = dfs(node)
      if cycle:
        return cycle
  return None


def test_import_graph_has_no_cycle():
  cycle = _find_cycle(_graph())
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
  assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_layers_of_the_former_circle():
  graph = _graph()

  def reaches(a, b):
    seen, todo = set(), [a]
    while todo:
      node = todo.pop()
      if node == b:
        return True
      if node not in seen:
        seen.add(node)
        todo.extend(graph[node])
    return False

  order = ["stpn_tf.inference", "stpn_tf.visualization.summaries", "stpn_tf.training.trainer", "stpn_tf.config",
           "stpn_tf.runs"]
  for i, lower in enumerate(order):
    for upper in order[i + 1:]:
      assert not reaches(lower, upper), f"{lower} imports {upper} (directly or not)"


def test_fresh_process_imports_in_layer_order():
  code = """
import sys
def loaded(*names):
  return [n for n in names if n in sys.modules]
import stpn_tf.inference
assert not loaded('stpn_tf.training.trainer', 'stpn_tf.config', 'stpn_tf.runs'), loaded('stpn_tf.config')
import stpn_tf.visualization.summaries
assert not loaded('stpn_tf.training.trainer', 'stpn_tf.config', 'stpn_tf.runs')
import stpn_tf.training.trainer
assert not loaded('stpn_tf.config', 'stpn_tf.runs')
import stpn_tf.config
assert not loaded('stpn_tf.runs')
import stpn_tf.runs
print('ok')
"""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=os.path.dirname(PACKAGE_DIR), timeout=300)
  assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
