"""bench/generate.py runs in --quick mode and reports what the issue asks for (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generate_bench_quick_prints_json():
    out = subprocess.run([sys.executable, str(REPO / "bench" / "generate.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    b = res["batching"]
    assert b["identical_replies"] is True and b["batch_size"] == 16
    assert set(b["responses_per_s"]) == {"one_by_one", "batched"} and b["speedup_batched_vs_one_by_one"] > 0
    for run in res["server"].values():
        assert run["ok"] == run["clients"] * run["requests_per_client"] and run["errors"] == 0
        assert 0 < run["latency_s"]["p50"] <= run["latency_s"]["p95"]
    assert res["server_throughput_ratio_batched_vs_unbatched"] > 0
