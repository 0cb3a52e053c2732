"""The offline safety filter: shipped blocklist, regexes, classifier hook, fallback and counters."""

from __future__ import annotations

import re

import pytest
import torch

from dialogpt.decode import GenerationOptions, Responder
from dialogpt.decode.safety import (
    SafetyFilter,
    default_blocklist_path,
    load_blocklist,
    load_classifier,
    parse_blocklist,
)


def test_shipped_blocklist_loads_and_blocks_on_word_boundaries():
    assert default_blocklist_path().is_file()
    f = SafetyFilter.from_blocklist()
    assert f.check("you should kill yourself") is not None
    assert f.check("what the FUCK") is not None
    assert f.check("go and die") is not None
    assert f.check("hello, nice to meet you") is None
    assert f.check("I love the Scunthorpe football club") is None  # word boundaries, not substrings
    assert f.check("I had a pass at the class") is None


def test_parse_blocklist_words_regexes_comments_and_errors(tmp_path):
    pats = parse_blocklist(["# comment", "", "hell", "bad  word", r"re:\bx+y\b"])
    assert len(pats) == 3
    f = SafetyFilter(patterns=pats)
    assert f.check("oh hell no") and f.check("a BAD word") and f.check("bad\tword") and f.check("xxxy!")
    assert not f.check("hello") and not f.check("badword") and not f.check("xyz")
    bad = tmp_path / "list.txt"
    bad.write_text("fine\nre:(unclosed\n")
    with pytest.raises(ValueError, match=r"list\.txt:2"):
        load_blocklist(bad)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_blocklist(tmp_path / "nope.txt")


def test_classifier_hook_bool_and_probability():
    f = SafetyFilter(classifier=lambda t: "rude" in t)
    assert f.check("that is rude") == "classifier" and f.check("that is nice") is None
    g = SafetyFilter(classifier=lambda t: 0.9 if "meh" in t else 0.1, threshold=0.5)
    assert g.check("meh") == "classifier" and g.check("great") is None
    assert load_classifier("re:escape") is re.escape
    with pytest.raises(ValueError, match="module:function"):
        load_classifier("nocolon")


def _sampled(tiny_model, tokenizer, safety):
    torch.manual_seed(3)
    r = Responder(tiny_model, tokenizer, safety=safety)
    opts = GenerationOptions(strategy="sample", num_candidates=4, max_new_tokens=6, temperature=2.0)
    return r, r.respond(["hello there"], opts)


def test_blocked_candidate_falls_back_to_the_next_one_and_is_counted(tiny_model, tokenizer):
    _, free = _sampled(tiny_model, tokenizer, None)
    texts = [c.text for c in free.candidates]
    assert len(set(texts[:2])) == 2
    # Block the first candidate's exact text with a blocklist regex built from it.
    f = SafetyFilter(patterns=[re.compile(re.escape(texts[0]))])
    r, reply = _sampled(tiny_model, tokenizer, f)
    assert [c.text for c in reply.candidates] == texts  # same seed, same candidates
    assert reply.chosen == 1 and reply.text == texts[1]
    assert reply.candidates[0].blocked.startswith("blocklist:") and reply.candidates[1].blocked is None
    assert r.stats["blocked_candidates"] == 1 and r.stats["all_blocked"] == 0


def test_everything_blocked_gives_the_fallback(tiny_model, tokenizer):
    f = SafetyFilter(classifier=lambda t: True, fallback="(no reply)")
    r, reply = _sampled(tiny_model, tokenizer, f)
    assert reply.all_blocked and reply.text == "(no reply)"
    assert all(c.blocked == "classifier" for c in reply.candidates)
    assert r.stats["blocked_candidates"] == 4 and r.stats["all_blocked"] == 1


def test_empty_candidates_are_passed_over_when_something_else_is_left(tiny_model, tokenizer):
    from dialogpt.decode import Candidate

    r = Responder(tiny_model, tokenizer, safety=SafetyFilter(patterns=[re.compile("bad")]))
    cands = [[Candidate("", [5], True), Candidate("bad one", [6], True), Candidate("fine", [7], True)],
             [Candidate("", [5], True), Candidate("bad", [6], True)]]
    a, b = r._choose([[], []], cands, [3, 3], GenerationOptions())
    assert (a.chosen, a.text) == (2, "fine")
    assert (b.chosen, b.text) == (0, "")  # nothing non-empty left: the empty reply beats the fallback
    assert r.stats["empty_candidates"] == 2 and r.stats["blocked_candidates"] == 2
