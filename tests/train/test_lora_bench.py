"""bench/lora.py at the tiny shape: both modes run, and the JSON carries the fields the README quotes
(no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("peft", reason="bench/lora.py needs the [lora] extra (peft)")


@pytest.mark.slow
def test_lora_bench_tiny_reports_parameters_and_memory_of_both_modes(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "lora.py"), "--shape", "tiny", "--steps", "1",
                           "--sessions", "16", "--jobs", "2", "--output", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert res == json.loads(out.read_text())
    assert res["shape"]["name"] == "tiny" and res["settings"]["lora_r"] == 8
    assert len(res["load_average_before"]) == len(res["load_average_after"]) == 3
    full, lora = res["full"], res["lora"]
    assert full["trainable_parameters"] == full["model_parameters"] == lora["model_parameters"]
    # r 8 on c_attn, both c_proj and c_fc of 2 layers, 64 wide: 8 x (256 + 128 + 320 + 320) per layer
    assert lora["trainable_parameters"] == 2 * 8 * 1024
    for mode in (full, lora):
        assert mode["peak_rss_mb"] > mode["rss_after_imports_mb"] > 0
        assert mode["adamw_state_bytes"] == 8 * mode["trainable_parameters"]
        assert mode["gradient_bytes"] == 4 * mode["trainable_parameters"]
        assert mode["wall_s"] > 0 and mode["cpu_s"] > 0 and mode["final_loss"] > 0
        assert (mode["cuda_peak_allocated_mb"] is None) == (res["gpu"] is None)
    ratios = res["ratios"]
    assert ratios["trainable_lora_over_full"] == round(lora["trainable_parameters"] / full["trainable_parameters"], 6)
    assert ratios["optimizer_and_gradient_mb_lora"] < ratios["optimizer_and_gradient_mb_full"]
