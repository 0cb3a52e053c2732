"""Each DialoGPT text rule and filter on crafted cases (dialogpt_dataset/normalize.py)."""

import pytest

from dialogpt_dataset import normalize
from dialogpt_dataset.normalize import comment_rule, gpt_norm, instance_rule


@pytest.mark.parametrize("body, author, rule", [
    ("[deleted]", "[deleted]", "deleted"),
    ("[removed]", "someone", "removed"),
    ("&gt; you said this\n\nand I disagree", "u", "quote"),
    ("a > b for all positive numbers", "u", "quote"),
    ("Your post was removed for rule 3, please read the sidebar", "AutoModerator", "bot"),
    ("Reminder set for you, see you in a week", "RemindMeBot", "bot"),
    ("beep boop I am a bot and this was automatic", "helpful_user", "bot"),
    ("日本語 の コメント です よろしく", "u", "non_ascii"),
    ("lol", "u", "too_short"),
    ("   \n ok  ", "u", "too_short"),
    ("That is a fair point about the café", "u", None),
    ("Two words", "u", None),
])
def test_comment_rules(body, author, rule):
    assert comment_rule(body, author) == rule


@pytest.mark.parametrize("text, expected", [
    ("Check this http://example.com/a out", "Check this __url__ out"),
    ("see:https://x.y/z now", "see : __url__ now"),
    ("#tbt hello there", "hello there"),
    ("b/c it's w/o sugar w/ milk j/k", "because it's without sugar with milk just kidding"),
    ("Hello, world!", "Hello , world !"),
    ("café costs €5", "caf costs 5"),
    ("line one\nline two", "line one line two"),
    ("The URL is here", "The __url__ is here"),  # the original's quirk, kept on purpose
    ("I don't know :)", "I don't know :)"),
    ("wait...what?!", "wait ... what ? !"),
    ("back\\slash", "backslash"),
])
def test_gpt_norm(text, expected):
    assert gpt_norm(text) == expected


def test_gpt_norm_joins_its_tokens_by_single_spaces():
    """threads counts a turn's tokens as its spaces plus one: every output must be single-spaced."""
    from dataset_helpers import corpus_texts, random_texts

    for text in corpus_texts() + random_texts(3000, seed=2):
        out = gpt_norm(text)
        assert out == " ".join(out.split()), repr(text)
        assert (out.count(" ") + 1 if out else 0) == len(out.split())


def test_tokenize_is_tweet_tokenizer():
    assert normalize.tokenize("it's 3.5 times better :D (really)") == ["it's", "3.5", "times", "better", ":D", "(", "really", ")"]


def test_turn_length_is_30_words():
    assert not normalize.too_long_turn(" ".join(["w"] * 30))
    assert normalize.too_long_turn(" ".join(["w"] * 31))


def _words(n):
    return " ".join(f"w{i}" for i in range(n))


OK = ["How are you today", "I am fine thanks"]


@pytest.mark.parametrize("texts, weighted, rule", [
    (OK, True, None),
    (["How are you", ""], True, "empty_target"),
    (["How are you", "fine"], False, "empty_target"),  # test months: no weight token, 1 word is empty
    (["How are you", "fine"], True, None),
    (["How are you", "a" * 31 + " ok"], True, "long_word"),
    ([_words(150), _words(48)], True, None),  # 151 source + 49 target tokens (weights) = 200: kept
    ([_words(150), _words(49)], True, "too_long"),
    (["see __url__ here", "nice one"], True, "url"),
    (["How are you", "fine ( ok )"], True, "tags"),
    (["[ link ] text", "fine ok"], True, "tags"),
    (["How ARE YOU today", "fine"], True, None),
    (["HELLO is this", "fine ok"], True, "all_caps"),
    (["How are you", "no no no way"], True, "repetition"),
    (["How are you", "no no way no"], True, None),
    (["the EOS token", "fine ok"], True, "reserved_eos"),
])
def test_instance_rules(texts, weighted, rule):
    assert instance_rule(texts, weighted) == rule


def test_too_long_counts_weights_and_eos_like_the_original():
    # 3 source turns of 60 words: 3 * (60 + 1 weight) + 2 EOS = 185; target 14 + 1 = 15 -> 200 kept
    src = [_words(60)] * 3
    assert instance_rule(src + [_words(14)], True) is None
    assert instance_rule(src + [_words(15)], True) == "too_long"


def test_every_rule_is_named_once():
    assert len(normalize.RULE_NAMES) == len(set(normalize.RULE_NAMES))
