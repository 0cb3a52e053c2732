"""NIST and BLEU exactly as ``mteval-v14c.pl`` computes them (default options), the way DSTC7's
``dstc.py`` and DialoGPT's tables ran it.

Three steps, each a pure function:

1. :func:`xml_segment` - what DSTC7's ``_write_xml`` puts in a ``<seg>``: ``&`` and ``<`` become
   spaces and an empty line becomes ``__empty__`` (so it still counts as 5 tokens ``_ _ empty _ _``).
2. :func:`mteval_tokenize` - mteval's own (non-international) tokenisation: ASCII lowercase,
   spaces around ASCII punctuation/symbols except the apostrophe, ``.``/``,`` split unless next to a
   digit, ``-`` split only after a digit. So ``__url__`` (one token for entropy/distinct) is 5 tokens
   here: ``_ _ url _ _``.
3. :func:`mteval_stats` - one pass over the corpus that collects what both scores need, as mteval's
   ``score_segment`` does (the clipped match counts are shared by NIST and BLEU); then
   :func:`nist_from_stats` and :func:`bleu_from_stats`. Our own code: NLTK's corpus_nist does not weight
   multi-reference information the way mteval does, and neither NLTK nor sacrebleu smooths the corpus
   BLEU the way mteval-v14c's ``bleu_score`` does.

All scores are corpus level and cumulative (NIST-n sums information over 1..n-grams, BLEU-n is the
geometric mean of 1..n-gram precisions), like the ``Cumulative N-gram scoring`` lines that
``dstc.py`` parses.
"""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

# Perl's \s on a character string (Unicode whitespace, but not the \x1c-\x1f separators that
# Python's str.split() also treats as space). mteval splits tokens on /\s+/.
_PERL_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_RUN = re.compile(f"[{_PERL_SPACE}]+")
# mteval: s/([\{-\~\[-\` -\&\(-\+\:-\@\/])/ $1 /g  ({|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /).
# The apostrophe (0x27) falls between the ranges and is NOT split. The space itself is left out:
# padding it changes no token. str.replace per character present beats a translate to 3-char strings.
_PUNCT_CHARS = "{|}~[\\]^_`!\"#$%&()*+:;<=>?@/"
_PUNCT_PADDED = tuple((c, f" {c} ") for c in _PUNCT_CHARS)
_PERIOD_COMMA_AFTER = re.compile(r"([^0-9])([.,])")   # split unless preceded by a digit
_PERIOD_COMMA_BEFORE = re.compile(r"([.,])([^0-9])")  # split unless followed by a digit
# Without two adjacent [.,] the two rules above cannot overlap, so they amount to "pad a . or , unless
# a digit is on both sides": literal replacements (C speed; a template calls Python per match).
_PAIR = re.compile(r"[.,][.,]")
_DIGIT_BOTH_SIDES = re.compile(r"[0-9][.,][0-9]")     # else every . and , is padded
_LONE_PERIOD = re.compile(r"(?<![0-9])\.|\.(?![0-9])")
_LONE_COMMA = re.compile(r"(?<![0-9]),|,(?![0-9])")
_DIGIT_DASH = re.compile(r"(?<=[0-9])-")              # a dash only after a digit: ([0-9])(-) -> $1 $2
_NOT_PY_SPACE = re.compile("[\x1c-\x1f]")             # str.split() spaces that Perl's \s is not
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
    """mteval's punctuation rules on space-padded text. Lines without adjacent ``.``/``,`` (nearly
    all) skip the regexes with templates, whose per-match Python callback was most of the cost."""
    for c, padded in _PUNCT_PADDED:
        if c in text:
            text = text.replace(c, padded)
    if "." in text or "," in text:
        if _PAIR.search(text):
            text = _PERIOD_COMMA_AFTER.sub(r"\1 \2 ", text)
            text = _PERIOD_COMMA_BEFORE.sub(r" \1 \2", text)
        elif _DIGIT_BOTH_SIDES.search(text):
            text = _LONE_COMMA.sub(" , ", _LONE_PERIOD.sub(" . ", text))
        else:
            text = text.replace(".", " . ").replace(",", " , ")
    return _DIGIT_DASH.sub(" - ", text) if "-" in text else text


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
    if _NOT_PY_SPACE.search(text):
        return [t for t in _SPACE_RUN.split(text) if t]
    return text.split()


def tokenize_for_mteval(line: str) -> list[str]:
    """One hypothesis/reference line as DSTC7 fed it to mteval: XML-escaped, then tokenised."""
    return mteval_tokenize(xml_segment(line))


def _grams(tokens: Sequence[str], max_n: int) -> chain:
    """All 1..max_n-grams of one segment as tuples, unigrams first (zip: C speed)."""
    return chain.from_iterable(zip(*[tokens[i:] for i in range(n)]) for n in range(1, max_n + 1))


def _hypothesis_hits(tokens: Sequence[str], max_n: int, in_hyps: Callable[[tuple], bool]) -> list[tuple]:
    """The 1..max_n-grams of a reference that some hypothesis has (all that NIST and BLEU read).

    Most of a reference's 3- and 4-grams are in no hypothesis; an n-gram hit needs two
    (n-1)-gram hits (its prefix and its suffix), so an order stops the walk when it has fewer.
    """
    hits = list(filter(in_hyps, zip(tokens)))
    found = len(hits)
    for n in range(2, max_n + 1):
        if found < 2:
            break
        level = list(filter(in_hyps, zip(*[tokens[i:] for i in range(n)])))
        hits += level
        found = len(level)
    return hits


def _ngram_info(gram: tuple, ref_counts: Counter, total_words: int) -> float:
    """mteval's ``compute_ngram_info`` for one n-gram seen in the references.

    ``info(w1..wn) = -log2(count(w1..wn) / count(w1..wn-1))``, with the total number of reference
    words as denominator for unigrams. Counted over **every** reference column, duplicates
    included. Perl quirk kept: the prefix is tested for truth, so a prefix that is the string
    ``"0"`` (a bigram starting with the token ``0``) falls back to the unigram denominator.
    """
    prefix = gram[:-1]
    denom = ref_counts[prefix] if prefix and prefix != ("0",) else total_words
    return -math.log(ref_counts[gram] / denom) / _LN2


_LN2 = math.log(2)


def _nist_length_penalty(ratio: float) -> float:
    # mteval: score 0.5 at a length ratio of 1.5 (beta from ratio_x = 1.5, score_x = 0.5).
    if ratio >= 1:
        return 1.0
    if ratio <= 0:
        return 0.0
    beta = -math.log(0.5) / math.log(1.5) / math.log(1.5)
    return math.exp(-beta * math.log(ratio) * math.log(ratio))


def closest_ref_length(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """mteval's ``brevity_penalty_closest`` folded over the references: the closest length, ties
    to the shorter one."""
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))


@dataclass
class MtevalStats:
    """Corpus sums behind NIST and BLEU, what mteval's ``score_system`` accumulates."""

    info: list[float]      # NIST: matched information per n (index 0 = unigrams)
    matches: list[int]     # BLEU: clipped matches per n (clip = largest count in any one reference)
    hyp_ngrams: list[int]  # hypothesis n-gram counts per n
    ref_words: int         # NIST: all reference tokens, all columns
    n_ref_columns: int
    closest_ref_len: int   # BLEU: sum of each segment's closest reference length


#: kept for callers of the NIST-only name
NistStats = MtevalStats


def _check_rows(hyp_tokens, refs_tokens) -> int:
    if len(hyp_tokens) != len(refs_tokens):
        raise ValueError(f"{len(hyp_tokens)} hypotheses but {len(refs_tokens)} reference rows")
    n_cols = {len(r) for r in refs_tokens}
    if len(n_cols) > 1:
        raise ValueError(f"every hypothesis needs the same number of references, got counts {sorted(n_cols)}")
    return n_cols.pop() if n_cols else 0


def _clip_segment(hyp_grams: list[tuple], ref_hits: list[list[tuple]], clipped_counts: Counter) -> None:
    """Add one segment's clipped matches to ``clipped_counts``, new keys in mteval's old order.

    The clip is ``min(h, max_i r_i)``; a reference's count only matters for n-grams of this
    hypothesis, so each reference is reduced to its hits (C-level ``filter``) and most
    segments need no Python loop: a hit seen once per reference clips to 1. New keys are inserted
    as ``(hyp & r1) | (hyp & r2) | ...`` would order them (by the first reference that has them, then
    by first position in the hypothesis), since NIST sums float information in that key order.
    """
    hyp_counts = Counter(hyp_grams)
    in_hyp = hyp_counts.__contains__
    seen: set = set()
    order: list[tuple] = []
    pos = None
    deeper: dict = {}  # n-grams some reference holds more than once: their largest count
    for hits in ref_hits:
        m = list(filter(in_hyp, hits))
        if not m:
            continue
        s = set(m)
        new = s.difference(seen)
        if new:
            if len(new) > 1:
                if pos is None:
                    pos = dict(zip(hyp_counts, range(len(hyp_counts)))).__getitem__
                new = sorted(new, key=pos)
            order += new
            seen.update(new)
        if len(s) < len(m):
            for g, c in Counter(m).items():
                if c > 1 and c > deeper.get(g, 1):
                    deeper[g] = c
    clipped_counts.update(order)
    for g, c in deeper.items():
        c = min(c, hyp_counts[g]) - 1
        if c > 0:
            clipped_counts[g] += c


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one corpus pass.

    A pass allocates millions of tuples and lists and creates no reference cycle; the collector
    would walk them over and over (a quarter of the CPU time on 6,000 x 6 segments). Nested use is
    fine: it is only re-enabled if it was on.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _matched(hyp_tokens, refs_tokens, max_n: int, ref_words: int) -> tuple[list[float], list[int]]:
    """NIST information and BLEU matches per order: what needs the n-grams. Every n-gram and
    counter dies when this returns, before the caller turns the cyclic collector back on."""
    hyp_grams = [list(_grams(h, max_n)) for h in hyp_tokens]
    in_hyps = set(chain.from_iterable(hyp_grams)).__contains__
    hits_of: dict[int, tuple] = {}  # id(reference) -> (reference, its n-grams in some hypothesis)
    every_hit: list[list[tuple]] = []  # all columns count, repeated references included
    clipped_counts: Counter = Counter()
    for grams, refs in zip(hyp_grams, refs_tokens):
        ref_hits = []
        for r in refs:
            known = hits_of.get(id(r))
            if known is None:
                known = hits_of[id(r)] = (r, _hypothesis_hits(r, max_n, in_hyps))
            ref_hits.append(known[1])
        every_hit += ref_hits
        if grams:  # a repeated reference (DSTC7's slot 2) is harmless there: it cannot raise a clip
            _clip_segment(grams, ref_hits, clipped_counts)
    all_ref_counts = Counter(chain.from_iterable(every_hit))
    info = [0.0] * max_n
    matches = [0] * max_n
    for gram, c in clipped_counts.items():  # this order fixes the float sums: keep it
        matches[len(gram) - 1] += c
        info[len(gram) - 1] += _ngram_info(gram, all_ref_counts, ref_words) * c
    return info, matches


def mteval_stats(hyp_tokens: Sequence[Sequence[str]], refs_tokens: Sequence[Sequence[Sequence[str]]],
                 max_n: int = 4) -> MtevalStats:
    """Sufficient statistics of mteval's NIST and BLEU in one pass. ``refs_tokens[i]`` are the
    references of segment i; every segment must have the same number (mteval's reference *sets*).

    A hypothesis n-gram's count is clipped by its largest count in any one reference (see
    :func:`_clip_segment`). Information weights are only needed for the matched n-grams (and their
    prefixes, matched too), so references are only counted on n-grams some hypothesis has: a quarter
    of them on real text.
    """
    n_ref_cols = _check_rows(hyp_tokens, refs_tokens)
    ref_words = sum(len(r) for refs in refs_tokens for r in refs)
    with _no_cyclic_gc():
        info, matches = _matched(hyp_tokens, refs_tokens, max_n, ref_words)
    closest = sum(closest_ref_length(len(h), [len(r) for r in refs])
                  for h, refs in zip(hyp_tokens, refs_tokens) if refs)
    hyp_ngrams = [sum(max(len(h) - n + 1, 0) for h in hyp_tokens) for n in range(1, max_n + 1)]
    return MtevalStats(info, matches, hyp_ngrams, ref_words, n_ref_cols, closest)


def nist_stats(hyp_tokens, refs_tokens, max_n: int = 5) -> MtevalStats:
    """The statistics NIST needs (see :func:`mteval_stats`)."""
    return mteval_stats(hyp_tokens, refs_tokens, max_n)


def nist_from_stats(stats: MtevalStats, max_n: int = 4) -> list[float]:
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


def bleu_from_stats(stats: MtevalStats, max_n: int = 4) -> list[float]:
    """Cumulative BLEU-1..max_n exactly as mteval-v14c's ``bleu_score`` (its default, smoothed).

    Walking n = 1..max_n with ``smooth = 1``: an order with **no hypothesis n-gram** contributes
    log-precision 0 (precision 1); an order with n-grams but **no match** doubles ``smooth`` and
    contributes ``1 / (smooth * total)``; otherwise ``matches / total``. BLEU-n is
    ``exp(mean of the first n log-precisions)`` times ``exp(min(0, 1 - ref_len / hyp_len))`` with
    the closest reference lengths; no hypothesis token at all gives 0. mteval applies this at corpus
    level too, so a corpus without a matching 4-gram has a small non-zero BLEU-4, not 0.
    """
    hyp_len = stats.hyp_ngrams[0] if stats.hyp_ngrams else 0
    bp = math.exp(min(0.0, 1 - stats.closest_ref_len / hyp_len)) if hyp_len > 0 else 0.0
    out, score, smooth = [], 0.0, 1
    for n in range(max_n):
        total, matched = stats.hyp_ngrams[n], stats.matches[n]
        if total == 0:
            iscore = 0.0
        elif matched == 0:
            smooth *= 2
            iscore = math.log(1 / (smooth * total))
        else:
            iscore = math.log(matched / total)
        score += iscore
        out.append(math.exp(score / (n + 1)) * bp)
    return out


def corpus_nist(hyp_tokens: Sequence[Sequence[str]], refs_tokens: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4) -> list[float]:
    """Cumulative NIST-1..max_n over the corpus, as mteval-v14c prints them."""
    return nist_from_stats(mteval_stats(hyp_tokens, refs_tokens, max_n=max(max_n, 1)), max_n)


def corpus_bleu(hyp_tokens: Sequence[Sequence[str]], refs_tokens: Sequence[Sequence[Sequence[str]]],
                max_n: int = 4) -> list[float]:
    """Cumulative BLEU-1..max_n (fractions) over the corpus, as mteval-v14c prints them."""
    if _check_rows(hyp_tokens, refs_tokens) == 0:
        raise ValueError("BLEU needs at least one reference per hypothesis")
    return bleu_from_stats(mteval_stats(hyp_tokens, refs_tokens, max_n=max(max_n, 1)), max_n)


def _tokenized(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[list, list]:
    """Token lists of every line; DSTC7's slots repeat references, so each text is tokenised once
    and repeats share one list (which :func:`mteval_stats` then also reads once)."""
    seen: dict[str, list[str]] = {}

    def tok(line: str) -> list[str]:
        out = seen.get(line)
        if out is None:
            out = seen[line] = tokenize_for_mteval(line)
        return out

    return [tok(h) for h in hyps], [[tok(r) for r in row] for row in refs]


def nist_bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], max_n: int = 4) -> tuple[list[float], list[float]]:
    """NIST-1..max_n and BLEU-1..max_n of raw lines, exactly as ``dstc.py`` + mteval-v14c (one pass)."""
    with _no_cyclic_gc():  # the token lists die inside, see _no_cyclic_gc
        stats = mteval_stats(*_tokenized(hyps, refs), max_n)
    return nist_from_stats(stats, max_n), bleu_from_stats(stats, max_n)
