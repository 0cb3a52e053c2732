#!/usr/bin/env python
"""How long DSTC7's metrics take on a test set the size of DialoGPT's 6K multi-reference set.

Scores 6,000 synthetic hypotheses x 6 references (``--quick``: 100) with every metric, twice:

* ``together``: :func:`dialogpt.scoring.score_all` as ``dialogpt-eval`` runs it (METEOR's JVM in
  parallel with the Python metrics), in wall seconds and in CPU seconds of each side (the CPU
  figures hold on a busy machine; the wall time does not);
* ``per_metric``: each stage alone, sequentially, to give each metric's share.

Side by side, on the same data: NLTK's ``corpus_nist`` (what one would reach for), its time
and its NIST-4, which does not match mteval's for multiple references.

Text is synthetic but realistic for METEOR (stemming, synonyms, paraphrases): words are drawn
with Zipf-like frequencies from the vocabulary of the DSTC7 references shipped in
tests/data/reference_metrics, and each hypothesis copies a stretch of one of its references.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VOCAB_SOURCE = REPO / "tests" / "data" / "reference_metrics" / "he_teama" / "refs.txt"
TARGET_SECONDS = 30.0


def synthetic_corpus(n_hyps: int, n_refs: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    counts = Counter(VOCAB_SOURCE.read_text(encoding="utf-8").split())
    words = [w for w, _ in counts.most_common(5000)]
    weights = [1.0 / (rank + 1) for rank in range(len(words))]  # Zipf

    def sentence() -> list[str]:
        return rng.choices(words, weights, k=max(1, int(rng.gauss(12, 5))))

    hyps, refs = [], []
    for _ in range(n_hyps):
        row = [" ".join(sentence()) for _ in range(n_refs)]
        src = rng.choice(row).split()
        i = rng.randrange(len(src))
        copied = src[i:i + rng.randint(1, 6)]
        hyps.append(" ".join(sentence()[: rng.randint(2, 10)] + copied))
        refs.append(row)
    return hyps, refs


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system  # children: the METEOR JVM


def _timed(fn, *args, **kwargs):
    """(result, wall seconds); the CPU seconds of the last call are kept in ``_timed.cpu``."""
    t, c = time.perf_counter(), _cpu()
    out = fn(*args, **kwargs)
    _timed.cpu = _cpu() - c
    return out, time.perf_counter() - t


def run(n_hyps: int, n_refs: int, meteor: bool, nltk: bool) -> dict:
    from dialogpt.scoring import score_all
    from dialogpt.scoring.diversity import diversity
    from dialogpt.scoring.meteor import meteor as meteor_fn
    from dialogpt.scoring.mteval import corpus_bleu, corpus_nist, tokenize_for_mteval

    hyps, refs = synthetic_corpus(n_hyps, n_refs)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu0 = os.times()
    together, t_all = _timed(score_all, hyps, refs, compute_meteor=meteor)
    cpu1 = os.times()
    py_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    jvm_cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)

    per, per_cpu = {}, {}
    (htok, rtok), per["mteval_tokenize"] = _timed(
        lambda: ([tokenize_for_mteval(h) for h in hyps], [[tokenize_for_mteval(r) for r in row] for row in refs]))
    per_cpu["mteval_tokenize"] = _timed.cpu
    nist, per["nist"] = _timed(corpus_nist, htok, rtok)
    per_cpu["nist"] = _timed.cpu
    bleu, per["bleu_sacrebleu"] = _timed(corpus_bleu, htok, rtok)
    per_cpu["bleu_sacrebleu"] = _timed.cpu
    if meteor:
        _, per["meteor_jar"] = _timed(meteor_fn, hyps, refs)
        per_cpu["meteor_jar"] = _timed.cpu
    _, per["entropy_distinct_len"] = _timed(diversity, hyps)
    per_cpu["entropy_distinct_len"] = _timed.cpu
    sequential = sum(per.values())
    total_cpu = sum(per_cpu.values())

    result = {
        "n_hyps": n_hyps, "n_refs": n_refs, "meteor_included": meteor, "cpu_count": os.cpu_count(),
        # other work on the machine slows the JVM and Python alike: read the seconds with this
        "load_average_1min_before": round(load_before, 2),
        "together_seconds": round(t_all, 3),
        # CPU seconds do not depend on what else runs on the machine. Python (NIST, BLEU, diversity)
        # and the METEOR JVM overlap, so on two idle cores the wall time is about the larger one.
        "together_cpu_seconds": round(py_cpu + jvm_cpu, 3),
        "python_cpu_seconds": round(py_cpu, 3),
        "meteor_jvm_cpu_seconds": round(jvm_cpu, 3),
        "critical_path_cpu_seconds": round(max(py_cpu, jvm_cpu), 3),
        "target_seconds": TARGET_SECONDS,
        "under_target": t_all < TARGET_SECONDS,
        "per_metric_seconds": {k: round(v, 3) for k, v in per.items()},
        "per_metric_cpu_seconds": {k: round(v, 3) for k, v in per_cpu.items()},
        # shares of CPU time: unlike wall shares they do not move with the machine's load
        "per_metric_share": {k: round(v / total_cpu, 3) for k, v in per_cpu.items()},
        "sequential_seconds": round(sequential, 3),
        "overlap_speedup": round(sequential / t_all, 3),
        "scores": {k: round(v, 6) for k, v in together.items()},
    }
    assert abs(together["nist4"] - nist[3]) < 1e-9 and abs(together["bleu4"] - bleu[3]) < 1e-9
    if nltk:
        try:
            from nltk.translate.nist_score import corpus_nist as nltk_corpus_nist
        except ImportError:
            result["nltk_corpus_nist"] = "nltk not installed"
        else:
            nltk_nist4, t_nltk = _timed(nltk_corpus_nist, rtok, htok, 4)
            result["nltk_corpus_nist"] = {
                "seconds": round(t_nltk, 3),
                "time_ratio_vs_ours": round(t_nltk / per["nist"], 3),
                "nist4": round(nltk_nist4, 6),
                "nist4_ours_mteval": round(nist[3], 6),
                "abs_difference": round(abs(nltk_nist4 - nist[3]), 6),
            }
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100 hypotheses: a smoke run")
    p.add_argument("--n-hyps", type=int, default=None)
    p.add_argument("--n-refs", type=int, default=6)
    p.add_argument("--no-meteor", dest="meteor", action="store_false")
    p.add_argument("--no-nltk", dest="nltk", action="store_false", help="skip the NLTK corpus_nist comparison")
    args = p.parse_args(argv)
    n = args.n_hyps or (100 if args.quick else 6000)
    print(json.dumps(run(n, args.n_refs, args.meteor, args.nltk), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
