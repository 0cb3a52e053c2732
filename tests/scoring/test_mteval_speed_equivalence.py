"""The fast paths of ``dialogpt.scoring.mteval`` against plain, obviously-correct ports written here.

mteval.py clips against the hypothesis n-grams found in each reference only, prunes n-gram orders,
and tokenises with literal replacements instead of mteval's regexes. Each shortcut must give the
same floats, not close ones: NIST sums float information in the order the plain Counter algebra
inserts matched n-grams, so the stats are compared with ``==`` on many random corpora made to hit
repeated references, repeated n-grams, empty segments and the ``"0"`` prefix quirk.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest

from dialogpt.scoring import mteval
from dialogpt.scoring.mteval import MtevalStats, mteval_stats, mteval_tokenize, nist_bleu, xml_segment

# ------------------------------------------------------------------ plain ports (the references)

_PLAIN_PUNCT = re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])")
_PERL_SPACE_RUN = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def plain_chunk(text: str) -> str:
    text = _PLAIN_PUNCT.sub(r" \1 ", text)                  # s/([\{-\~\[-\` -\&\(-\+\:-\@\/])/ $1 /g
    text = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", text)     # s/([^0-9])([\.,])/$1 $2 /g
    text = re.sub(r"([\.,])([^0-9])", r" \1 \2", text)     # s/([\.,])([^0-9])/ $1 $2/g
    return re.sub(r"([0-9])(-)", r"\1 \2 ", text)          # s/([0-9])(-)/$1 $2 /g


def plain_tokenize(text: str, preserve_case: bool = False) -> list[str]:
    text = f" {text} "
    if not preserve_case:
        text = re.sub("[A-Z]", lambda m: m.group().lower(), text)
    words = [w if re.match(r"^https?://", w) else plain_chunk(f" {w} ") for w in _PERL_SPACE_RUN.split(text)]
    return [t for t in _PERL_SPACE_RUN.split(" ".join(words)) if t]


def plain_grams(tokens, max_n):
    return [tuple(tokens[i:i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)]


def plain_stats(hyp_tokens, refs_tokens, max_n) -> MtevalStats:
    """mteval's score_segment with Counters: clip = (h & r1) | (h & r2) | ..., every column counted."""
    all_ref_counts: Counter = Counter()
    clipped_counts: Counter = Counter()
    ref_words = closest = 0
    for hyp, refs in zip(hyp_tokens, refs_tokens):
        hyp_counts = Counter(plain_grams(hyp, max_n))
        clipped: Counter = Counter()
        for r in refs:
            all_ref_counts.update(plain_grams(r, max_n))
            ref_words += len(r)
            clipped |= hyp_counts & Counter(plain_grams(r, max_n))
        clipped_counts.update(clipped)
        if refs:
            closest += min((len(r) for r in refs), key=lambda n: (abs(len(hyp) - n), n))
    info, matches = [0.0] * max_n, [0] * max_n
    for gram, c in clipped_counts.items():
        prefix = gram[:-1]
        denom = all_ref_counts[prefix] if prefix and prefix != ("0",) else ref_words
        matches[len(gram) - 1] += c
        info[len(gram) - 1] += -math.log(all_ref_counts[gram] / denom) / math.log(2) * c
    hyp_ngrams = [sum(max(len(h) - n + 1, 0) for h in hyp_tokens) for n in range(1, max_n + 1)]
    return MtevalStats(info, matches, hyp_ngrams, ref_words, len(refs_tokens[0]) if refs_tokens else 0, closest)


# ------------------------------------------------------------------ random corpora

def random_corpus(rng: random.Random):
    """Few words, so n-grams repeat within and across segments; references repeated as the same
    list object (DSTC7's slot 2) and as equal copies."""
    vocab = rng.sample(["a", "b", "c", "0", "the", "i", "x", "y", "z", "don't", "."], rng.randint(2, 9))
    pool = [[rng.choice(vocab) for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 13]))] for _ in range(rng.randint(1, 12))]
    n_seg, n_refs = rng.randint(1, 25), rng.randint(1, 6)
    hyps, rows = [], []
    for _ in range(n_seg):
        hyps.append(rng.choice(pool) if rng.random() < 0.5 else [rng.choice(vocab) for _ in range(rng.randint(0, 15))])
        row = [rng.choice(pool) for _ in range(n_refs)]
        if n_refs > 2 and rng.random() < 0.5:
            row[2] = row[1]                     # the same object twice
        if n_refs > 1 and rng.random() < 0.3:
            row[0] = list(row[-1])              # equal content, another object
        rows.append(row)
    return hyps, rows


@pytest.mark.parametrize("seed", range(40))
def test_stats_equal_plain_counter_algebra(seed):
    rng = random.Random(seed)
    for _ in range(50):
        hyps, rows = random_corpus(rng)
        max_n = rng.randint(1, 5)
        assert mteval_stats(hyps, rows, max_n) == plain_stats(hyps, rows, max_n)


def test_stats_equal_on_real_text():
    from metrics_helpers import CASES, load_case

    for case in CASES:
        hyps, refs, _ = load_case(case)
        h = [plain_tokenize(xml_segment(x)) for x in hyps]
        r = [[plain_tokenize(xml_segment(x)) for x in row] for row in refs]
        assert mteval_stats(h, r, 4) == plain_stats(h, r, 4), case


def test_nist_bleu_equals_the_plain_pipeline():
    rng = random.Random(7)
    words = ["A", "b", "0", "1.5", "x,y", "a.", "..", "5-3", "http://u.v/a,b", "__url__", "&", "<", ""]
    for _ in range(200):
        pool = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 9))) for _ in range(6)]
        n = rng.randint(1, 10)
        hyps = [rng.choice(pool) for _ in range(n)]
        refs = [[rng.choice(pool) for _ in range(3)] for _ in range(n)]
        h = [plain_tokenize(xml_segment(x)) for x in hyps]
        r = [[plain_tokenize(xml_segment(x)) for x in row] for row in refs]
        if not any(t for row in r for t in row):
            continue
        stats = plain_stats(h, r, 4)
        assert nist_bleu(hyps, refs) == (mteval.nist_from_stats(stats), mteval.bleu_from_stats(stats))


def test_tokenizer_equals_the_perl_regexes():
    rng = random.Random(1)
    alphabet = list("aZ09.,-'{|}~[]^_` !\"#$%&()*+:;<=>?@/\t\n\x1c\x1f\xa0\u2003\x85é") + [
        "http://", "https://", "HTTP://", "..", ",.", ".,", "1.2", "3,4", "5-", "-6"]
    for _ in range(10000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        for preserve_case in (False, True):
            assert mteval_tokenize(text, preserve_case) == plain_tokenize(text, preserve_case), repr(text)
