"""NIST and BLEU exactly as ``mteval-v14c.pl`` computes them (default options), the way DSTC7's
``dstc.py`` and DialoGPT's tables ran it.

Three steps, each a pure function:

1. :func:`xml_segment` - what DSTC7's ``_write_xml`` puts in a ``<seg>``: ``&`` and ``<`` become
   spaces and an empty line becomes ``__empty__`` (so it still counts as 5 tokens ``_ _ empty _ _``).
2. :func:`mteval_tokenize` - mteval's own (non-international) tokenisation: ASCII lowercase,
   spaces around ASCII punctuation/symbols except the apostrophe, ``.``/``,`` split unless next to a
   digit, ``-`` split only after a digit. So ``__url__`` (one token for entropy/distinct) is 5 tokens
   here: ``_ _ url _ _``.
3. :func:`corpus_nist` (our own: NLTK's corpus_nist does not weight multi-reference information the
   way mteval does) and :func:`corpus_bleu` (through ``sacrebleu``, see its docstring).

All scores are corpus level and cumulative (NIST-n sums information over 1..n-grams, BLEU-n is the
geometric mean of 1..n-gram precisions), like the ``Cumulative N-gram scoring`` lines that
``dstc.py`` parses.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# Perl's \s on a character string (Unicode whitespace, but not the \x1c-\x1f separators that
# Python's str.split() also treats as space). mteval splits tokens on /\s+/.
_PERL_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_RUN = re.compile(f"[{_PERL_SPACE}]+")
# mteval: s/([\{-\~\[-\` -\&\(-\+\:-\@\/])/ $1 /g  ({|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /).
# The apostrophe (0x27) falls between the ranges and is NOT split.
_PUNCT = re.compile(r"([{-~\[-` -&(-+:-@/])")
_PERIOD_COMMA_AFTER = re.compile(r"([^0-9])([.,])")   # split unless preceded by a digit
_PERIOD_COMMA_BEFORE = re.compile(r"([.,])([^0-9])")  # split unless followed by a digit
_DIGIT_DASH = re.compile(r"([0-9])(-)")               # a dash only after a digit
_URL = re.compile(r"^https?://")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

EMPTY_SEGMENT = "__empty__"


def xml_segment(line: str) -> str:
    """The text DSTC7's ``_write_xml`` writes for one line (before mteval reads it).

    ``&`` and ``<`` are replaced by spaces (they would break the XML) and an empty line becomes
    ``__empty__``; a line of spaces is not empty and stays (it then has no tokens).
    """
    line = line.replace("&", " ").replace("<", " ")
    return line if line else EMPTY_SEGMENT


def _tokenize_chunk(text: str) -> str:
    text = _PUNCT.sub(r" \1 ", text)
    text = _PERIOD_COMMA_AFTER.sub(r"\1 \2 ", text)
    text = _PERIOD_COMMA_BEFORE.sub(r" \1 \2", text)
    return _DIGIT_DASH.sub(r"\1 \2 ", text)


def mteval_tokenize(text: str, preserve_case: bool = False) -> list[str]:
    """mteval-v14c's default tokenisation of one segment -> tokens.

    Lowercasing is ``tr/[A-Z]/[a-z]/``: ASCII only, as in the Perl. Tokens starting with
    ``http://`` / ``https://`` are kept whole (v14c); everything else goes through the punctuation
    rules. ``text`` is the segment as read from the XML (see :func:`xml_segment`).
    """
    text = f" {text} "
    if not preserve_case:
        text = text.translate(_ASCII_LOWER)
    if "http" in text:
        pieces = []
        for tok in _SPACE_RUN.split(text):
            pieces.append(tok if _URL.match(tok) else _tokenize_chunk(f" {tok} "))
        text = " ".join(pieces)
    else:
        text = _tokenize_chunk(text)
    return [t for t in _SPACE_RUN.split(text) if t]


def tokenize_for_mteval(line: str) -> list[str]:
    """One hypothesis/reference line as DSTC7 fed it to mteval: XML-escaped, then tokenised."""
    return mteval_tokenize(xml_segment(line))


def _gram_list(tokens: Sequence[str], max_n: int) -> list[tuple]:
    """All 1..max_n-grams of one segment, as tuples (built with zip: C speed)."""
    out: list[tuple] = []
    for n in range(1, max_n + 1):
        out.extend(zip(*[tokens[i:] for i in range(n)]))
    return out


def _ngram_info(ref_counts: Counter, total_words: int) -> dict[tuple, float]:
    """mteval's ``compute_ngram_info``: information weight of each n-gram seen in any reference.

    ``info(w1..wn) = -log2(count(w1..wn) / count(w1..wn-1))``, with the total number of reference
    words as denominator for unigrams. Counted over **every** reference column, duplicates
    included. Perl quirk kept: the prefix is tested for truth, so a prefix that is the string
    ``"0"`` (a bigram starting with the token ``0``) falls back to the unigram denominator.
    """
    info = {}
    ln2 = math.log(2)
    for gram, count in ref_counts.items():
        prefix = gram[:-1]
        if prefix and prefix != ("0",):
            denom = ref_counts[prefix]
        else:
            denom = total_words
        info[gram] = -math.log(count / denom) / ln2
    return info


def _nist_length_penalty(ratio: float) -> float:
    # mteval: score 0.5 at a length ratio of 1.5 (beta from ratio_x = 1.5, score_x = 0.5).
    if ratio >= 1:
        return 1.0
    if ratio <= 0:
        return 0.0
    beta = -math.log(0.5) / math.log(1.5) / math.log(1.5)
    return math.exp(-beta * math.log(ratio) * math.log(ratio))


@dataclass
class NistStats:
    """Corpus sums behind NIST (kept for tests and debugging)."""

    info: list[float]      # matched information per n (index 0 = unigrams)
    hyp_ngrams: list[int]  # hypothesis n-gram counts per n
    ref_words: int         # all reference tokens, all columns
    n_ref_columns: int


def nist_stats(hyp_tokens: Sequence[Sequence[str]], refs_tokens: Sequence[Sequence[Sequence[str]]],
               max_n: int = 5) -> NistStats:
    """Sufficient statistics of mteval's NIST. ``refs_tokens[i]`` are the references of segment i;
    every segment must have the same number of references (mteval's reference *sets*)."""
    if len(hyp_tokens) != len(refs_tokens):
        raise ValueError(f"{len(hyp_tokens)} hypotheses but {len(refs_tokens)} reference rows")
    n_cols = {len(r) for r in refs_tokens}
    if len(n_cols) > 1:
        raise ValueError(f"every hypothesis needs the same number of references, got counts {sorted(n_cols)}")
    n_ref_cols = n_cols.pop() if n_cols else 0
    # Information weights are computed once over all references of the corpus.
    all_ref_counts: Counter = Counter()
    ref_words = 0
    seg_ref_counts = []
    for refs in refs_tokens:
        per = []
        for r in refs:
            grams = _gram_list(r, max_n)
            all_ref_counts.update(grams)
            ref_words += len(r)
            per.append(Counter(grams))
        seg_ref_counts.append(per)
    info_w = _ngram_info(all_ref_counts, ref_words)
    info = [0.0] * max_n
    hyp_ngrams = [0] * max_n
    for hyp, per in zip(hyp_tokens, seg_ref_counts):
        for n in range(1, max_n + 1):
            hyp_ngrams[n - 1] += max(len(hyp) - n + 1, 0)
        for gram, cnt in Counter(_gram_list(hyp, max_n)).items():
            m = max(c.get(gram, 0) for c in per)  # clip by the largest count in any one reference
            if m:
                info[len(gram) - 1] += info_w[gram] * min(cnt, m)
    return NistStats(info, hyp_ngrams, ref_words, n_ref_cols)


def nist_from_stats(stats: NistStats, max_n: int = 4) -> list[float]:
    """Cumulative NIST-1..max_n. The brevity penalty compares the hypothesis length with the
    *average* reference length (all reference words / number of reference columns)."""
    if stats.n_ref_columns == 0 or stats.ref_words == 0:
        raise ValueError("NIST needs at least one non-empty reference")
    ratio = stats.hyp_ngrams[0] / (stats.ref_words / stats.n_ref_columns)
    bp = _nist_length_penalty(ratio)
    out, score = [], 0.0
    for n in range(max_n):
        score += stats.info[n] / max(stats.hyp_ngrams[n], 1)
        out.append(score * bp)
    return out


def corpus_nist(hyp_tokens: Sequence[Sequence[str]], refs_tokens: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4) -> list[float]:
    """Cumulative NIST-1..max_n over the corpus, as mteval-v14c prints them."""
    return nist_from_stats(nist_stats(hyp_tokens, refs_tokens, max_n=max(max_n, 1)), max_n)


def corpus_bleu(hyp_tokens: Sequence[Sequence[str]], refs_tokens: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4, smooth_method: str = "none") -> list[float]:
    """Cumulative BLEU-1..max_n (fractions) through sacrebleu, configured to reproduce mteval-v14c.

    sacrebleu's own ``13a`` tokenizer is mteval-v13a's, which differs from what DSTC7's scores saw
    (v14c on ``_write_xml`` output: ``__empty__`` segments, ``&``/``<`` removed), so the text is
    pre-tokenised by :func:`tokenize_for_mteval` and sacrebleu is run with:

    * ``tokenize="none"`` - tokens joined by single spaces, split back on spaces;
    * ``lowercase=False`` - mteval's ASCII lowercasing is already applied (sacrebleu would also
      lowercase non-ASCII letters);
    * ``smooth_method="none"`` and ``effective_order=False`` - the corpus-level score is the plain
      geometric mean (a zero n-gram match count gives 0). This follows the reference notes for
      v14c (``tests/data/reference_metrics/README.md``: "no smoothing at corpus level"). mteval-v13a
      and Moses' mteval-v14 instead apply their default ``1/2^k`` smoothing to the corpus totals
      too, which is sacrebleu's ``"exp"``: pass ``smooth_method="exp"`` for those. The two differ
      only when some order has no match in the whole corpus, which none of the official reference
      cases has;
    * brevity penalty from the **closest** reference length, ties to the shorter one - sacrebleu's
      rule and mteval's ``brevity_penalty_closest``;
    * every segment has the same number of references (the DSTC7 selection repeats references to
      fill ``n_refs`` columns).

    The n-gram statistics are computed once at order ``max_n``; BLEU-n for smaller n comes from the
    first n counts through ``BLEU.compute_bleu``.
    """
    from sacrebleu.metrics.bleu import BLEU

    if len(hyp_tokens) != len(refs_tokens):
        raise ValueError(f"{len(hyp_tokens)} hypotheses but {len(refs_tokens)} reference rows")
    n_cols = {len(r) for r in refs_tokens}
    if len(n_cols) != 1:
        raise ValueError(f"every hypothesis needs the same number (>= 1) of references, got {sorted(n_cols)}")
    n_ref = n_cols.pop()
    hyps = [" ".join(t) for t in hyp_tokens]
    ref_streams = [[" ".join(refs[j]) for refs in refs_tokens] for j in range(n_ref)]
    if smooth_method not in ("none", "exp"):
        raise ValueError(f"smooth_method must be 'none' (mteval-v14c) or 'exp' (mteval-v13a), got {smooth_method!r}")
    bleu = BLEU(lowercase=False, tokenize="none", smooth_method=smooth_method, effective_order=False, force=True,
                max_ngram_order=max_n)
    stats = bleu.corpus_score(hyps, ref_streams)
    out = []
    for n in range(1, max_n + 1):
        s = BLEU.compute_bleu(stats.counts[:n], stats.totals[:n], stats.sys_len, stats.ref_len,
                              smooth_method=smooth_method, effective_order=False, max_ngram_order=n)
        out.append(s.score / 100.0)
    return out


def nist_bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], max_n: int = 4) -> tuple[list[float], list[float]]:
    """NIST-1..max_n and BLEU-1..max_n of raw lines, exactly as ``dstc.py`` + mteval-v14c."""
    hyp_tokens = [tokenize_for_mteval(h) for h in hyps]
    refs_tokens = [[tokenize_for_mteval(r) for r in row] for row in refs]
    return corpus_nist(hyp_tokens, refs_tokens, max_n), corpus_bleu(hyp_tokens, refs_tokens, max_n)
