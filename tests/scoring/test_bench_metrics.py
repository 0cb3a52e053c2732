"""bench/metrics.py runs in --quick mode and reports every metric's time and share."""

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
    assert r["n_hyps"] == 100 and r["n_refs"] == 6 and r["meteor_included"]
    assert set(r["per_metric_seconds"]) == {"mteval_tokenize", "nist", "bleu_sacrebleu", "meteor_jar",
                                            "entropy_distinct_len"}
    assert abs(sum(r["per_metric_share"].values()) - 1.0) < 0.01
    assert set(r["scores"]) >= {"nist4", "bleu4", "meteor", "entropy4", "dist2", "avg_len"}
    assert 0 < r["scores"]["meteor"] < 1 and r["together_seconds"] > 0
    assert r["meteor_jvm_cpu_seconds"] > 0 and r["python_cpu_seconds"] > 0
    # the side-by-side NLTK number is reported, and it is not mteval's
    assert r["nltk_corpus_nist"]["abs_difference"] > 0.01
