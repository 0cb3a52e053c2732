"""The one dialogue format: masking, truncation, reverse direction, and template identity."""

from __future__ import annotations

import random

import pytest

from dialogpt.chat_format import (
    CHAT_TEMPLATE,
    EOS_TOKEN,
    IGNORE_INDEX,
    Turn,
    as_turns,
    build_prompt_ids,
    encode_reverse,
    encode_session,
    encode_token_turns,
    fit_prompt_ids,
    messages_to_turns,
    render_text,
    reverse_turns,
    turns_to_messages,
)

EOS = 0  # the fixture tokenizer's <|endoftext|> id; also used for the pure integer tests
I = IGNORE_INDEX  # noqa: E741  (short on purpose: label lists stay readable)


def test_labels_mask_first_turn_and_weight_zero_turns_but_keep_eos_of_trained_turns():
    enc = encode_token_turns([[5, 6], [7], [8, 9], [10]], [1.0, 1.0, 0.0, 1.0], EOS, max_seq_length=None)
    assert enc.input_ids == [5, 6, EOS, 7, EOS, 8, 9, EOS, 10, EOS]
    # first turn (even with weight 1.0) and the weight-0 third turn are masked with their EOS;
    # the trained turns keep their tokens AND their closing EOS as labels.
    assert enc.labels == [I, I, I, 7, EOS, I, I, I, 10, EOS]
    assert enc.attention_mask == [1] * 10
    assert enc.num_label_tokens == 4
    assert not (enc.response_truncated or enc.context_truncated or enc.dropped_turns)


def test_eos_labels_survive_when_pad_equals_eos(tokenizer):
    # The classic bug: pad_token_id == eos_token_id and a collator masks every pad id -> no EOS labels.
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    enc = encode_session(tokenizer, ["hi there", "hello you", "how are you?"])
    eos_label_positions = [i for i, (x, y) in enumerate(zip(enc.input_ids, enc.labels)) if y == tokenizer.eos_token_id]
    assert len(eos_label_positions) == 2  # after turn 2 and turn 3, not after the first turn
    assert enc.labels[-1] == tokenizer.eos_token_id


def test_left_truncation_drops_whole_turns_and_keeps_response():
    turns = [[1] * 5, [2] * 5, [3] * 5, [4] * 5]  # each 6 tokens with EOS -> 24
    enc = encode_token_turns(turns, [1.0] * 4, EOS, max_seq_length=13)
    assert enc.dropped_turns == 2
    assert enc.input_ids == [3] * 5 + [EOS] + [4] * 5 + [EOS]
    assert enc.labels == [I] * 6 + [4] * 5 + [EOS]  # the new first turn becomes context
    assert not enc.response_truncated and not enc.context_truncated


def test_exact_fit_is_not_truncated():
    enc = encode_token_turns([[1] * 5, [2] * 5], [0.0, 1.0], EOS, max_seq_length=12)
    assert len(enc.input_ids) == 12 and enc.dropped_turns == 0


def test_overlong_response_is_cut_from_its_end_and_reported():
    enc = encode_token_turns([[1, 1, 1], list(range(10, 30))], [0.0, 1.0], EOS, max_seq_length=8)
    assert len(enc.input_ids) == 8
    assert enc.response_truncated and enc.context_truncated
    # one context token (the last) + EOS, then the first 6 response tokens, no closing EOS
    assert enc.input_ids == [1, EOS] + list(range(10, 16))
    assert enc.labels == [I, I] + list(range(10, 16))


def test_long_context_pair_cuts_context_from_its_start():
    enc = encode_token_turns([list(range(50, 70)), [7, 8]], [0.0, 1.0], EOS, max_seq_length=8)
    assert enc.input_ids == [66, 67, 68, 69, EOS, 7, 8, EOS]
    assert enc.context_truncated and not enc.response_truncated


def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="at least one turn"):
        encode_token_turns([], [], EOS)
    with pytest.raises(ValueError, match="weights"):
        encode_token_turns([[1]], [1.0, 0.0], EOS)
    with pytest.raises(ValueError, match="max_seq_length"):
        encode_token_turns([[1]], [1.0], EOS, max_seq_length=1)
    with pytest.raises(TypeError, match="turn 0"):
        as_turns([42])
    with pytest.raises(ValueError, match="'text'"):
        as_turns([{"weight": 1.0}])


def test_as_turns_accepts_dataset_rows_tuples_and_strings():
    assert as_turns([{"text": "a", "weight": 0.0, "score": 3}, ("b", 1), "c"]) == [
        Turn("a", 0.0), Turn("b", 1.0), Turn("c", 1.0)]


def test_reverse_encoding_puts_response_first_and_trains_on_the_source(tokenizer):
    session = [("what is up", 0.0), ("not much", 1.0), ("cool thanks", 1.0)]
    assert reverse_turns(session) == [Turn("cool thanks", 0.0), Turn("not much", 1.0), Turn("what is up", 1.0)]
    enc = encode_reverse(tokenizer, session)
    expected_text = "cool thanks" + EOS_TOKEN + "not much" + EOS_TOKEN + "what is up" + EOS_TOKEN
    assert enc.input_ids == tokenizer(expected_text, add_special_tokens=False)["input_ids"]
    n_resp = len(tokenizer("cool thanks", add_special_tokens=False)["input_ids"]) + 1
    assert enc.labels[:n_resp] == [I] * n_resp
    assert enc.labels[n_resp:] == enc.input_ids[n_resp:]
    with pytest.raises(ValueError, match=">= 2 turns"):
        reverse_turns(["alone"])


def test_reverse_truncation_drops_oldest_source_turns(tokenizer):
    session = ["oldest turn here " * 5, "middle turn", "the response"]
    full = encode_reverse(tokenizer, session, max_seq_length=None)
    short = encode_reverse(tokenizer, session, max_seq_length=len(full.input_ids) - 1)
    assert short.dropped_turns == 1
    expected = tokenizer("the response" + EOS_TOKEN + "middle turn" + EOS_TOKEN, add_special_tokens=False)["input_ids"]
    assert short.input_ids == expected


def _random_sessions(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    words = ["hello", "there", "I", "don't", "know", ":)", "what's", "up?", "Reddit", "is", "fun", "naïve",
             "café", "!!", "42", "http://x.y/z", "  spaced ", "a\tb", "emoji 🙂", "end."]
    sessions = []
    for _ in range(n):
        k = rng.randint(1, 6)
        sessions.append([" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) for _ in range(k)])
    return sessions


@pytest.mark.parametrize("session", _random_sessions(60))
def test_chat_template_renders_exactly_what_the_encoder_trains_on(tokenizer, session):
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = turns_to_messages(session)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == render_text(session)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(EOS_TOKEN) and prompt == text
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert list(ids) == encode_session(tokenizer, session, max_seq_length=None).input_ids
    assert list(ids) == build_prompt_ids(tokenizer, session)


def test_system_messages_are_skipped_by_template_and_converter(tokenizer):
    messages = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == "hi" + EOS_TOKEN
    assert messages_to_turns(messages) == [Turn("hi", 1.0)]
    with pytest.raises(ValueError, match="message 0"):
        messages_to_turns([{"content": "no role"}])


def test_turns_to_messages_ends_with_assistant_and_alternates():
    msgs = turns_to_messages(["a", "b", "c"])
    assert [m["role"] for m in msgs] == ["assistant", "user", "assistant"]


def test_build_prompt_ids_truncates_by_turns_then_tokens(tokenizer):
    hist = ["first turn is long " * 3, "second", "third turn"]
    full = build_prompt_ids(tokenizer, hist)
    last_two = build_prompt_ids(tokenizer, hist[1:])
    assert build_prompt_ids(tokenizer, hist, max_prompt_tokens=len(last_two)) == last_two
    assert full[-1] == tokenizer.eos_token_id
    one = build_prompt_ids(tokenizer, ["a very long single turn " * 10], max_prompt_tokens=5)
    assert len(one) == 5 and one[-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="history is empty"):
        build_prompt_ids(tokenizer, [])


def _old_prompt_rule(segs: list[list[int]], budget: int) -> list[int]:
    """The rule as first written: drop whole turns from the left, then cut the last one's start."""
    segs = [list(x) for x in segs]
    while len(segs) > 1 and sum(map(len, segs)) > budget:
        segs.pop(0)
    if sum(map(len, segs)) > budget:
        segs[0] = segs[0][-budget:]
    return [i for x in segs for i in x]


def test_prompt_walk_from_the_end_keeps_the_rule_and_tokenises_only_what_fits(tokenizer):
    rng = random.Random(0)
    hist = ["" if rng.random() < 0.2 else " ".join(["word"] * rng.randint(1, 9)) for _ in range(40)]
    segs = [ids + [tokenizer.eos_token_id] for ids in tokenizer(hist, add_special_tokens=False)["input_ids"]]
    full = sum(map(len, segs))
    for budget in range(1, full + 3):
        ids, truncated = fit_prompt_ids(tokenizer, hist, budget)
        assert ids == _old_prompt_rule(segs, budget), budget
        assert truncated == (len(ids) < full)

    class Counting:  # the tokenizer, counting the texts it is given
        eos_token_id, seen = tokenizer.eos_token_id, 0

        def __call__(self, texts, **kw):
            Counting.seen += len(texts)
            return tokenizer(texts, **kw)

    ids, truncated = fit_prompt_ids(Counting(), [""] * 30_000, 100)
    assert ids == [tokenizer.eos_token_id] * 100 and truncated
    assert Counting.seen <= 2 * 100 + 8  # chunks of 8, 16, 32, ... from the end: not 30,000
