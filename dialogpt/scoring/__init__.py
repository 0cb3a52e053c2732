"""The one implementation of DSTC7's dialogue metrics (NIST, BLEU, METEOR, Entropy, Distinct,
average length), exact to the official tools that produced DialoGPT's tables.

Pure functions over lists of strings; the ``evaluate`` modules in ``metrics/`` and
``dialogpt-eval`` are thin wrappers over :func:`score_all` and the per-metric functions.

>>> from dialogpt.scoring import score_all
>>> s = score_all(["i love it !"], [["i love it !", "i 'm not a fan"]], compute_meteor=False)
>>> round(s["bleu4"], 4), s["avg_len"]
(1.0, 4.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .diversity import avg_len, distinct, diversity, entropy
from .dstc_clean import clean_str
from .meteor import MeteorError, find_java, find_meteor_jar, meteor
from .mteval import corpus_bleu, corpus_nist, mteval_tokenize, nist_bleu, tokenize_for_mteval
from .refs import InputError
from .selection import pad_references, prepare, select_references

#: Output keys in the order of dstc.py's report (raw fractions, not percentages).
METRIC_KEYS = (
    [f"nist{n}" for n in range(1, 5)] + [f"bleu{n}" for n in range(1, 5)] + ["meteor"]
    + [f"entropy{n}" for n in range(1, 5)] + ["dist1", "dist2", "avg_len"]
)

__all__ = [
    "METRIC_KEYS", "InputError", "MeteorError", "avg_len", "clean_str", "corpus_bleu", "corpus_nist",
    "distinct", "diversity", "entropy", "meteor", "mteval_tokenize", "nist_bleu", "pad_references",
    "prepare", "score_all", "select_references", "tokenize_for_mteval",
]


def score_all(hyps: Sequence[str], refs: Sequence[Sequence[str] | str], *, clean: bool = False,
              n_refs: int | None = None, vshuman: int = -1, compute_meteor: bool = True,
              meteor_heap: str = "1g", meteor_jobs: int | None = None) -> dict[str, float]:
    """Every metric of dstc.py's ``nlp_metrics`` at once, keyed as :data:`METRIC_KEYS`.

    METEOR runs in its JVMs (``meteor_jobs`` shards at once, see :func:`meteor`) while NIST/BLEU and
    the diversity numbers are computed here, so the Java and Python halves overlap.
    ``compute_meteor=False`` leaves ``meteor`` out.
    """
    hyps, rows = prepare(hyps, refs, clean=clean, n_refs=n_refs, vshuman=vshuman)
    if compute_meteor:  # no Java or no jar: say so before the other metrics run, not after
        find_meteor_jar()
        find_java()
    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(meteor, hyps, rows, heap=meteor_heap, jobs=meteor_jobs) if compute_meteor else None
        nist, bleu = nist_bleu(hyps, rows)
        div = diversity(hyps)
        met = fut.result() if fut is not None else None
    out: dict[str, float] = {}
    out.update({f"nist{n}": v for n, v in enumerate(nist, start=1)})
    out.update({f"bleu{n}": v for n, v in enumerate(bleu, start=1)})
    if met is not None:
        out["meteor"] = met
    out.update(div)
    return {k: out[k] for k in METRIC_KEYS if k in out}
