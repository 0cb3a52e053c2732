"""bench/serve.py runs in --quick mode (our server only) and reports what the issue asks for; the committed
117M run has both servers side by side, the parity check and the profile split."""

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
    assert res["model"]["shape"] == "tiny" and res["loadavg_start"] and res["transformers_cb_cache"]["num_blocks"] > 0
    ours = res["servers"]["ours"]
    assert ours["completion_tokens"] == res["max_tokens"]  # every reply does the same work
    run = ours["clients_4"]
    assert run["ok"] == run["requests"] == 8 and run["errors"] == 0
    assert 0 < run["ttft_s"]["p50"] <= run["latency_s"]["p95"] and run["server_cpu_s"] > 0
    assert run["generated_tokens"] == 8 * res["max_tokens"] and run["memory_after"]["rss_mb"] > 0
    parity = ours["greedy_parity_with_responder"]
    assert parity["contexts"] == 4 and parity["equal"] == 4, parity["mismatches"]


def test_committed_117M_run_has_both_servers_parity_and_the_profile():
    committed = json.loads((REPO / "bench" / "serve.results.json").read_text())
    assert committed["model"]["shape"] == "117M" and committed["model"]["n_layer"] == 12
    assert {"ours", "transformers_cb"} <= set(committed["servers"])
    for server in committed["servers"].values():
        assert {"clients_16", "clients_64"} <= set(server)
        assert all(server[f"clients_{n}"]["errors"] == 0 for n in (16, 64))
    parity = committed["servers"]["ours"]["greedy_parity_with_responder"]
    assert parity["equal"] == parity["contexts"] > 0
    profile = committed["decode_profile"]
    assert set(profile) == {"16", "64"} and all(p["split"]["samples"] > 0 for p in profile.values())
