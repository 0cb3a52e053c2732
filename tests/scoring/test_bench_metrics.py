"""bench/metrics.py runs in --quick mode on real DSTC-7 text and reports wall and CPU seconds with the scores."""

from __future__ import annotations

import json
import subprocess
import sys

from metrics_helpers import REPO_ROOT


def test_metrics_bench_quick():
    out = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "metrics.py"), "--quick"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["n_hyps"] == 100 and r["n_refs"] == 6 and "official" not in r
    first, later = r["ours"]["first_run"], r["ours"]["later_run"]
    for ours in (first, later):
        assert ours["seconds"] > 0 and ours["cpu_seconds"] > 0
        assert set(ours["scores"]) >= {"nist4", "bleu4", "meteor", "entropy4", "dist2", "avg_len"}
        assert 0 < ours["scores"]["meteor"] < 1 and 0 < ours["scores"]["bleu4"] < 1
    assert later["scores"] == first["scores"]  # the cached table index changes no number


def test_bench_corpus_is_real_text_without_verbatim_repeats():
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        from metrics import dstc_corpus
    finally:
        sys.path.pop(0)
    hyps, refs = dstc_corpus(4000)
    assert len(hyps) == 4000 and all(len(r) == 6 for r in refs)
    first = (REPO_ROOT / "tests/data/reference_metrics/he_teama/hyp.txt").read_text(encoding="utf-8").rstrip("\n").split("\n")
    assert hyps[:len(first)] == first
    # lines from the second pass are the same words in another order, not copies
    assert sorted(hyps[1908].split()) == sorted(hyps[0].split())
    long_lines = [j for j in range(1908, 3816) if len(set(hyps[j].split())) > 3]
    same = [j for j in long_lines if hyps[j] == hyps[j - 1908]]
    assert len(long_lines) > 1000 and len(same) < 0.01 * len(long_lines)
