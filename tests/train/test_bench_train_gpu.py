"""bench/train_gpu.py, the one command for a GPU machine, keeps working on CPU (tiny model, whole matrix)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_train_gpu_runs_the_matrix_on_cpu(tmp_path):
    # dynamo's "eager" backend: the compiled half of the matrix is traced (the code path) without
    # minutes of inductor codegen on a shared 2-core machine; the committed CPU JSON used inductor
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "train_gpu.py"), "--compile_backend", "eager", "--warmup", "1",
         "--steps", "2", "--budget_s", "900", "--config_cap_s", "400", "--measure_cap_s", "60",
         "--peak_tflops", "0.5", "--output", str(out)],
        capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)  # stdout is the one JSON
    assert printed == json.loads(out.read_text())
    assert printed["device"].startswith("cpu")
    flash_why = printed["attention_unavailable"]["flash_attention_2"]
    assert "flash-attn package" in flash_why or "CUDA GPU" in flash_why
    results = printed["results"]
    assert {(r["config"]["batching"], r["config"]["compile"]) for r in results} == {
        ("bucketed", False), ("packed", False), ("bucketed", True), ("packed", True)}
    for r in results:
        assert "error" not in r and "skipped" not in r, r
        assert r["tokens_per_sec"] > 0 and r["wall_s"] > 0 and r["cpu_s"] > 0
        assert math.isfinite(r["loss_after_n_steps"]) and r["n_steps"] == 3
        assert 0 < r["mfu"] < 1  # from --peak_tflops: the arithmetic runs end to end
    by = {(r["config"]["batching"], r["config"]["compile"]): r for r in results}
    # same data and batches: the compiled run computes the same losses
    assert by[("packed", True)]["loss_after_n_steps"] == pytest.approx(by[("packed", False)]["loss_after_n_steps"],
                                                                       rel=1e-3)
    assert by[("packed", False)]["real_token_fraction"] > by[("bucketed", False)]["real_token_fraction"]
    assert set(printed["ratios_wall"]) == {f"tiny-cpu/sdpa/{k}" for k in (
        "packed_over_bucketed_eager", "compile_over_eager_packed", "compile_over_eager_bucketed")}
