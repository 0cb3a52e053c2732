"""Entropy-n, Distinct-n and average length of a set of responses, as DSTC7's ``metrics.py``
(``calc_entropy``, ``calc_diversity``, ``calc_len``) computes them.

Tokens are whitespace tokens of each (already cleaned) hypothesis line, so ``__url__`` is one
token here (it is 5 for NIST/BLEU). n-grams never cross lines. All counts are pooled over the
corpus: Distinct-n is distinct n-grams / all n-grams of the corpus, not a per-sentence average.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def _ngram_counters(hyps: Sequence[str], max_n: int) -> list[Counter]:
    counters = [Counter() for _ in range(max_n)]
    for line in hyps:
        words = line.split()
        for n in range(1, max_n + 1):
            c = counters[n - 1]
            for i in range(len(words) - n + 1):
                c[" ".join(words[i:i + n])] += 1
    return counters


def entropy(hyps: Sequence[str], max_n: int = 4) -> list[float]:
    """Entropy-1..max_n in nats: ``-sum(c/T * (ln c - ln T))`` over the pooled n-gram counts.
    An order with no n-gram at all scores 0.0 (the original's empty sum)."""
    out = []
    for c in _ngram_counters(hyps, max_n):
        total = sum(c.values())
        log_t = math.log(total) if total else 0.0
        out.append(sum((-v / total * (math.log(v) - log_t) for v in c.values()), 0.0))
    return out


def distinct(hyps: Sequence[str], max_n: int = 2) -> list[float]:
    """Distinct-1..max_n = distinct n-grams / total n-grams over the corpus.

    The original divides by zero when there is no n-gram of that order (e.g. only one-word
    responses for Distinct-2); we raise a ValueError that says so instead.
    """
    out = []
    for n, c in enumerate(_ngram_counters(hyps, max_n), start=1):
        total = sum(c.values())
        if total == 0:
            raise ValueError(f"Distinct-{n} is undefined: the hypotheses contain no {n}-gram")
        out.append(len(c) / total)
    return out


def avg_len(hyps: Sequence[str]) -> float:
    """Mean number of whitespace tokens per hypothesis line (empty lines count 0)."""
    if not hyps:
        raise ValueError("average length of zero hypotheses is undefined")
    return sum(len(h.split()) for h in hyps) / len(hyps)


def diversity(hyps: Sequence[str]) -> dict[str, float]:
    """All of dstc.py's diversity numbers at once (one pass per n-gram order)."""
    if not hyps:
        raise ValueError("no hypotheses")
    counters = _ngram_counters(hyps, 4)
    out: dict[str, float] = {}
    for n, c in enumerate(counters, start=1):
        total = sum(c.values())
        log_t = math.log(total) if total else 0.0
        out[f"entropy{n}"] = sum((-v / total * (math.log(v) - log_t) for v in c.values()), 0.0)
        if n <= 2:
            if total == 0:
                raise ValueError(f"Distinct-{n} is undefined: the hypotheses contain no {n}-gram")
            out[f"dist{n}"] = len(c) / total
    out["avg_len"] = avg_len(hyps)
    order = [f"entropy{n}" for n in range(1, 5)] + ["dist1", "dist2", "avg_len"]
    return {k: out[k] for k in order}
