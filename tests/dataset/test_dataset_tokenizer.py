"""dialogpt_dataset.tokenizer gives NLTK's TweetTokenizer(preserve_case=True) tokens, token for token.

Compared with NLTK itself on every text of the fixtures (raw, and as gpt_norm hands it to the
tokeniser), on hypothesis strings over the tokeniser's alphabet (derandomised, bounded) and on
seeded strings built from the pieces its rules single out (URLs, phones, emoticons, ellipses, runs).
"""

from __future__ import annotations

import random

import pytest
from dataset_helpers import corpus_texts, random_texts
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogpt_dataset import tokenizer
from dialogpt_dataset.normalize import gpt_norm, minimal_norm, text_rules

nltk_tokenize = pytest.importorskip("nltk.tokenize").TweetTokenizer(preserve_case=True).tokenize

#: what gpt_norm leaves, weighted towards the characters of URLs, phones, emoticons and ellipses
ALPHABET = "abcdopxyzDPOSAXYZ0123589 ()[]:,.!?'“”_" + "  ..::88"
PIECES = ["__url__", "__mention__", "__url____url__", "8)", ":D", "D:", ":'(", ":o)", "8:", ":P", "P:", "d:", "555 1234",
          "(555) 123 4567", "1 (555) 123 4567", "0 555.1234", "555.  1234", "1.5", "3:30", "1,000", "a.com", "foo.bar.baz",
          "x.co", "end.Then", "a1.b2.cde", "U.S.A.", "e.g.", "...", ". . .", ".  .", "!!!!", "....", "((((", "____", "    ",
          "o'clock", "don't", "'tis", "dogs'", "a''b", "x_y", "hello,world"]


def _check(text: str) -> None:
    assert tokenizer.tokenize(text) == nltk_tokenize(text), repr(text)


def test_fixture_texts_raw_and_as_gpt_norm_hands_them_over():
    texts = {v for raw in corpus_texts() + random_texts(1000, seed=1)
             for v in (raw, text_rules(minimal_norm(raw)), text_rules(raw))}
    assert len(texts) > 6000
    for text in sorted(texts):
        _check(text)


def test_seeded_strings_of_tricky_pieces():
    rng = random.Random(0)
    for _ in range(4000):
        parts = [rng.choice(PIECES) if rng.random() < 0.3 else "".join(rng.choices(ALPHABET, k=rng.randint(1, 5)))
                 for _ in range(rng.randint(1, 10))]
        _check("".join(p + rng.choice(["", " ", "", "  "]) for p in parts))


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(alphabet=ALPHABET, max_size=4)), max_size=10).map(" ".join)
       | st.text(alphabet=ALPHABET, max_size=40))
def test_hypothesis_strings_over_the_alphabet(text):
    _check(text)


@pytest.mark.parametrize("text, tokens", [
    ("see reddit.com now", ["see", "reddit.com", "now"]),  # a naked domain is one token
    ("end.Then go", ["end.Then", "go"]),
    ("at 8:30 ok", ["at", "8:", "30", "ok"]),  # an emoticon ("8:") wins over the number
    ("call 555 1234 now", ["call", "555 1234", "now"]),  # a phone number keeps its space
    ("wow!!!!! ok", ["wow", "!", "!", "!", "ok"]),  # runs of 4+ are cut to 3 first
    ("so . . . more", ["so", ". . .", "more"]),
    ("x__url____url__y", ["x__url___url__y"]),
    ("café ok", ["café", "ok"]),  # outside the alphabet: NLTK itself
    ("see http://x.co/a", ["see", "http://x.co/a"]),
])
def test_known_cases(text, tokens):
    assert tokenizer.tokenize(text) == tokens == nltk_tokenize(text)


def test_gpt_norm_never_needs_nltk_on_the_fixtures():
    """The pipeline's texts stay on the one-pass path (NLTK would cost its import on every build)."""
    outside = [t for t in corpus_texts() if not tokenizer.ALPHABET.fullmatch(text_rules(minimal_norm(t)))]
    assert outside == []
    assert gpt_norm("see:https://x.y/z now") == "see : __url__ now"
