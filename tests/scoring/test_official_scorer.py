"""Property test against the official DSTC7 scorer itself: on random small corpora our NIST and BLEU
equal mteval-v14c.pl's (run through DSTC7's own XML writer) to 1e-9.

Runs when the scorer is present (``DSTC7_SCORER=dir`` or ``~/.cache/dstc7-scorer``, see
tests/README.md); otherwise it is skipped with the reason. Each example is one perl run (about a second on a busy machine; the test is marked slow).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from metrics_helpers import full_precision_mteval, load_official_write_xml, official_scorer_dir, run_official_nist_bleu

from dialogpt.scoring import nist_bleu, tokenize_for_mteval

hypothesis = pytest.importorskip("hypothesis", reason="the property test needs hypothesis (the dev extra)")
st = hypothesis.strategies

# Small vocabulary so n-grams match; mteval's tokenisation quirks on purpose: punctuation, digits
# next to '.', ',' and '-', the apostrophe, '__url__', the XML step's '&' and '<', case, non-ASCII.
_WORDS = ["a", "b", "the", "cat", "Cat", "i", "do", "n't", "it's", "3.5", "1,000", "9-5", "-", ".", ",", "!",
          "?", ":)", "__url__", "&", "<", ">", "(x)", "e.g.", "café", "ÉTÉ", "http://x.org/a?b", "o'neil", "0"]
_text = st.lists(st.sampled_from(_WORDS), min_size=0, max_size=9).map(" ".join)


@st.composite
def corpora(draw):
    n_seg = draw(st.integers(1, 5))
    n_ref = draw(st.integers(1, 3))
    hyps = [draw(_text) for _ in range(n_seg)]
    refs = [[draw(_text) for _ in range(n_ref)] for _ in range(n_seg)]
    # DSTC7 writes '\n'.join(lines): an empty *last* line would vanish from its files (readlines)
    hyps[-1] = hyps[-1] or "a"
    refs[-1] = [r or "b" for r in refs[-1]]
    return hyps, refs


@pytest.fixture(scope="module")
def official():
    scorer = official_scorer_dir()
    work = Path(tempfile.mkdtemp(prefix="dstc7-official-"))
    return scorer, load_official_write_xml(scorer), full_precision_mteval(scorer, work), work


@pytest.mark.slow
def test_nist_bleu_equal_the_official_scorer_on_random_corpora(official):
    scorer, write_xml, mteval, work = official
    worst = [0.0]

    @hypothesis.settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @hypothesis.given(corpora())
    def check(corpus):
        hyps, refs = corpus
        if not any(tokenize_for_mteval(r) for row in refs for r in row):
            # no reference token at all ('&' is a space after the XML step): mteval dies, we raise
            with pytest.raises(AssertionError, match="Illegal division by zero"):
                run_official_nist_bleu(scorer, write_xml, mteval, hyps, refs, work)
            with pytest.raises(ValueError, match="non-empty reference"):
                nist_bleu(hyps, refs)
            return
        nist_off, bleu_off = run_official_nist_bleu(scorer, write_xml, mteval, hyps, refs, work)
        nist, bleu = nist_bleu(hyps, refs)
        diffs = [abs(a - b) for a, b in zip(nist + bleu, nist_off + bleu_off)]
        worst[0] = max(worst[0], *diffs)
        assert max(diffs) < 1e-9, (hyps, refs, nist, nist_off, bleu, bleu_off)

    check()
    print(f"largest |ours - mteval-v14c| over the examples: {worst[0]:.3g}")


def test_the_shipped_reference_cases_equal_the_official_scorer(official):
    from metrics_helpers import CASES, load_case

    scorer, write_xml, mteval, work = official
    for case in CASES:
        hyps, refs, _ = load_case(case)
        nist_off, bleu_off = run_official_nist_bleu(scorer, write_xml, mteval, hyps, refs, work)
        nist, bleu = nist_bleu(hyps, refs)
        assert max(abs(a - b) for a, b in zip(nist + bleu, nist_off + bleu_off)) < 1e-9, case
