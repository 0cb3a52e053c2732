"""Windows over long dialogues: every target turn labelled exactly once, short dialogues unchanged."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogpt.chat_format import IGNORE_INDEX, encode_reverse, encode_session, encode_token_turns
from dialogpt.windowing import Window, encode_windows, plan_windows, target_turns

EOS = 0


def _turns(lengths: list[int]) -> list[list[int]]:
    """Turn i is made of the token i + 1 repeated: a label tells which turn it belongs to."""
    return [[i + 1] * n for i, n in enumerate(lengths)]


def _labelled_turns(examples) -> list[int]:
    """For each example, the turns (by their token) whose tokens carry labels; flattened."""
    out = []
    for ex in examples:
        out.extend(sorted({t for t in ex.encoded.labels if t not in (IGNORE_INDEX, EOS)}))
    return out


def test_a_dialogue_that_fits_is_one_window_equal_to_encode_token_turns():
    turns = _turns([3, 4, 2, 5])
    weights = [1.0, 1.0, 0.0, 1.0]
    [ex] = encode_windows(turns, weights, EOS, 128)
    today = encode_token_turns(turns, weights, EOS, 128)
    assert (ex.encoded.input_ids, ex.encoded.labels) == (today.input_ids, today.labels)
    assert ex.trained_turns == 2 and ex.truncated_turns == 0


def test_forty_turn_chat_trains_every_reply_once_where_truncation_trained_a_few():
    lengths = [random.Random(i).randint(3, 14) for i in range(40)]
    turns, weights = _turns(lengths), [1.0] * 40
    examples = encode_windows(turns, weights, EOS, 64)
    assert sorted(_labelled_turns(examples)) == list(range(2, 41))  # turns 2..40 (tokens), each once
    assert sum(ex.trained_turns for ex in examples) == 39
    assert all(len(ex.encoded.input_ids) <= 64 for ex in examples)
    cut = encode_token_turns(turns, weights, EOS, 64)  # what left truncation keeps
    assert len({t for t in cut.labels if t not in (IGNORE_INDEX, EOS)}) < 15


def test_each_window_keeps_the_turn_before_its_first_target_and_fills_context_from_the_left():
    # lengths with EOS: 5, 5, 5, 5, 5 ; budget 16 -> 3 turns a window
    plan = plan_windows([5] * 5, [1.0] * 5, 16)
    assert plan == [Window(0, 1, 2), Window(2, 3, 4)]
    # a sparse target (only turn 4 trained): all the context that fits before it
    assert plan_windows([5] * 6, [1.0, 0, 0, 0, 1.0, 0], 16) == [Window(2, 4, 4)]


def test_a_turn_longer_than_the_budget_is_cut_and_counted():
    turns = _turns([3, 40, 3, 3])
    examples = encode_windows(turns, [1.0] * 4, EOS, 16)
    # turn 2 (41 tokens with EOS) is cut to fit beside turn 1; as context of turn 3 it is cut from its start
    assert [ex.window for ex in examples] == [Window(0, 1, 1), Window(1, 2, 2), Window(2, 3, 3)]
    assert [ex.truncated_turns for ex in examples] == [1, 0, 0]
    assert examples[1].encoded.context_truncated
    assert sorted(_labelled_turns(examples)) == [2, 3, 4]
    assert all(len(ex.encoded.input_ids) <= 16 for ex in examples)


def test_no_target_turn_means_no_window():
    assert encode_windows(_turns([3, 3]), [1.0, 0.0], EOS, 16) == []
    assert target_turns([1.0, 0.0, 1.0]) == [2]


def test_reverse_uses_the_same_windows_and_equals_encode_reverse_when_the_dialogue_fits(tokenizer):
    turns = ["hi there", "hello, how are you?", "fine thanks and you?"]
    ids = tokenizer(turns, add_special_tokens=False)["input_ids"]
    [ex] = encode_windows(ids, [1.0] * 3, tokenizer.eos_token_id, 128, reverse=True)
    assert ex.encoded.input_ids == encode_reverse(tokenizer, turns, 128).input_ids
    assert ex.encoded.labels == encode_reverse(tokenizer, turns, 128).labels
    [fwd] = encode_windows(ids, [1.0] * 3, tokenizer.eos_token_id, 128)
    assert fwd.encoded.labels == encode_session(tokenizer, turns, 128).labels
    long_ids = _turns([6] * 12)
    fwd_w = [e.window for e in encode_windows(long_ids, [1.0] * 12, EOS, 30)]
    rev = encode_windows(long_ids, [1.0] * 12, EOS, 30, reverse=True)
    assert [e.window for e in rev] == fwd_w and len(fwd_w) > 1
    # each reverse example starts with its window's last turn (the response), then the turns before it
    assert all(e.encoded.input_ids[0] == e.window.end + 1 for e in rev)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from([0.0, 1.0, 1.0])), min_size=1, max_size=25),
       st.integers(4, 80))
def test_property_every_target_labelled_exactly_once_and_windows_fit(spec, budget):
    lengths, weights = [n for n, _ in spec], [w for _, w in spec]
    turns = _turns(lengths)
    examples = encode_windows(turns, weights, EOS, budget)
    targets = [i + 1 for i in target_turns(weights)]
    labelled_turns = []
    for ex in examples:
        assert len(ex.encoded.input_ids) <= budget
        w = ex.window
        labelled_turns.extend(i for i in range(w.first_target, w.end + 1) if weights[i] != 0.0)
        # labels only ever on this window's own targets
        assert {t for t in ex.encoded.labels if t not in (IGNORE_INDEX, EOS)} <= {
            i + 1 for i in range(w.first_target, w.end + 1) if weights[i] != 0.0}
    assert sorted(labelled_turns) == [t - 1 for t in targets]
    if sum(n + 1 for n in lengths) <= budget and targets:
        today = encode_token_turns(turns, weights, EOS, budget)
        assert [ex.encoded.labels for ex in examples] == [today.labels]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="weights"):
        encode_windows([[1]], [1.0, 1.0], EOS, 16)
    with pytest.raises(ValueError, match="max_seq_length"):
        encode_windows([[1], [2]], [1.0, 1.0], EOS, 1)
