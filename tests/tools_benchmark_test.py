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
