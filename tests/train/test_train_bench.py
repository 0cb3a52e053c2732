"""bench/train.py runs in --quick mode and reports what issue 5 asks for (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_train_bench_quick_prints_json():
    out = subprocess.run([sys.executable, str(REPO / "bench" / "train.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    pad = res["padding"]
    # bucketing must beat plain shuffled batches by a wide margin on long-tailed dialogue lengths
    assert pad["bucketed_real_token_fraction"] >= 0.95 > pad["random_real_token_fraction"]
    loop = res["loop_overhead"]
    # the bare loop is only a fair baseline if it does the same work: identical per-step losses
    assert loop["same_work"] is True and loop["max_step_loss_difference"] < 1e-3
    assert loop["ours_median"] > 0 and loop["bare_median"] > 0 and loop["ratio_ours_over_bare"] > 0
    assert (res["gpu"] is None) == ("gpu_note" in res)
    packing = res["packing"]
    # packed rows of whole sessions waste less than length buckets with the same tokens per batch
    assert 0.95 < packing["packed_real_token_fraction"] <= 1.0
    assert packing["packed_real_token_fraction"] > packing["bucketed_real_token_fraction"]
