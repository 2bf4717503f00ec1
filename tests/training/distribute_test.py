"""tf.distribute: mirrored replicas and multiple workers give the weights of one device (stpn_tf/training)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from stpn_tf.training import distribute

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distribute_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(**extra):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  env.update(extra)
  return env


def _run(mode, out, env=None):
  return subprocess.run([sys.executable, WORKER, mode, str(out)], env=env or _env(), capture_output=True,
                        text=True, timeout=240)


def _load(path):
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def _assert_same(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_allclose(a[k], b[k], atol=1e-5, err_msg=k)


def test_mirrored_two_cpus_equals_one_device(tmp_path):
  single, mirrored = _run("single", tmp_path / "s.npz"), _run("mirrored", tmp_path / "m.npz")
  assert single.returncode == 0, single.stderr[-2000:]
  assert mirrored.returncode == 0, mirrored.stderr[-2000:]
  a, b = _load(tmp_path / "s.npz"), _load(tmp_path / "m.npz")
  _assert_same(a, b)
  # The comparison means something: training moved the weights away from their (shared) initial values.
  assert any(not np.allclose(a[k], a[f"init/{k}"]) for k in a if not k.startswith(("init/", "attention/")))
  assert {"attention/rgb/mean", "attention/rgb/share_below"} <= a.keys()


def test_checkpoint_restores_across_strategies(tmp_path):
  # One child process: a MirroredStrategy over 2 logical CPUs and the default strategy side by side; each direction
  # trains 3 steps, saves through Trainer.checkpoint() with a CheckpointManager and restores into a fresh Trainer
  # under the other strategy.
  proc = _run("checkpoint", tmp_path / "c.npz")
  assert proc.returncode == 0, proc.stderr[-2000:]
  state = _load(tmp_path / "c.npz")
  for tag in ("m2d", "d2m"):
    saved = {k[len(f"{tag}/saved/"):]: v for k, v in state.items() if k.startswith(f"{tag}/saved/")}
    restored = {k[len(f"{tag}/restored/"):]: v for k, v in state.items() if k.startswith(f"{tag}/restored/")}
    fresh = {k[len(f"{tag}/fresh/"):]: v for k, v in state.items() if k.startswith(f"{tag}/fresh/")}
    assert saved.keys() == restored.keys() == fresh.keys()
    assert saved["step"] == 3 and fresh["step"] == 0
    iterations = [v for k, v in saved.items() if k.endswith("/optimizer_iterations")]
    assert len(iterations) == 2 and all(v == 3 for v in iterations)
    for key, value in saved.items():
      np.testing.assert_array_equal(restored[key], value, err_msg=f"{tag} {key}")
    # The restore did something: training moved weights and Adam moments away from a fresh trainer's.
    changed = [k for k in saved if not np.array_equal(saved[k], fresh[k])]
    assert any("/weight/" in k for k in changed) and any("/optimizer/" in k for k in changed), changed


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def test_multi_worker_two_processes_agree(tmp_path):
  ports = _free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  procs = []
  try:
    for i in range(2):
      tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
      procs.append(subprocess.Popen([sys.executable, WORKER, "multi_worker", str(tmp_path / f"w{i}.npz")],
                                    env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=240) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
  _assert_same(_load(tmp_path / "w0.npz"), _load(tmp_path / "w1.npz"))


def test_train_eval_runs_and_resumes_under_mirrored_strategy(tmp_path):
  """The training binary's loop itself (not only Trainer) under 2 mirrored replicas: train, resume, evaluate."""
  proc = _run("train_eval_mirrored", tmp_path / "w.npz")
  assert proc.returncode == 0, proc.stderr[-3000:]
  weights = _load(tmp_path / "w.npz")
  assert weights and all(np.all(np.isfinite(w)) for w in weights.values())


def test_unknown_strategy_is_rejected():
  with pytest.raises(ValueError, match="--strategy"):
    distribute.get_strategy("horovod")
