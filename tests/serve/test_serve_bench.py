"""bench/serve.py runs in --quick mode (our server only) and reports what the issue asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serve_bench_quick_prints_json():
    out = subprocess.run([sys.executable, str(REPO / "bench" / "serve.py"), "--quick"],
                         capture_output=True, text=True, timeout=400, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    ours = res["servers"]["ours"]
    assert ours["completion_tokens"] == res["max_tokens"]  # every reply does the same work
    run = ours["clients_4"]
    assert run["ok"] == run["requests"] == 8 and run["errors"] == 0
    assert 0 < run["ttft_s"]["p50"] <= run["latency_s"]["p95"] and run["server_cpu_s"] > 0
    committed = json.loads((REPO / "bench" / "serve.results.json").read_text())
    assert set(committed["servers"]) == {"ours", "transformers", "transformers_cb", "old_static"}
    assert all(set(s) >= {"clients_16", "clients_64"} for s in committed["servers"].values())
