"""The tokenizer's chat_template marks trained turns with ``{% generation %}``: the assistant-token mask
that ``apply_chat_template`` (and so TRL's assistant-only loss) computes equals chat_format's labels."""

from __future__ import annotations

import random

import pytest

from dialogpt.chat_format import (
    IGNORE_INDEX,
    Turn,
    encode_session,
    messages_to_turns,
    turns_to_messages,
)

WORDS = ["hello", "there", "I", "don't", "know", ":)", "what's", "up?", "naïve", "café", "42", "emoji 🙂", "end."]


def _sessions(n: int, seed: int = 3) -> list[list[Turn]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 6)
        out.append([Turn(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))),
                         rng.choice([0.0, 1.0, 1.0])) for _ in range(k)])
    return out


def _template_mask(tokenizer, messages) -> tuple[list[int], list[int]]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


@pytest.mark.parametrize("session", _sessions(40), ids=lambda s: f"{len(s)}turns")
def test_assistant_mask_equals_labels_with_weight_zero_turns(tokenizer, session):
    enc = encode_session(tokenizer, session, max_seq_length=None)
    ids, mask = _template_mask(tokenizer, turns_to_messages(session))
    assert ids == enc.input_ids
    assert mask == [int(y != IGNORE_INDEX) for y in enc.labels]


def test_mask_is_not_trivially_zero_or_one(tokenizer):
    session = [Turn("the question", 1.0), Turn("skipped", 0.0), Turn("the reply", 1.0)]
    ids, mask = _template_mask(tokenizer, turns_to_messages(session))
    n_first = len(tokenizer("the question")["input_ids"]) + 1
    n_skip = len(tokenizer("skipped")["input_ids"]) + 1
    assert mask[: n_first + n_skip] == [0] * (n_first + n_skip)
    assert mask[n_first + n_skip:] == [1] * (len(ids) - n_first - n_skip)
    assert ids[-1] == tokenizer.eos_token_id  # the closing EOS of a trained turn is in the mask


def test_plain_chat_messages_train_every_turn_after_the_first(tokenizer):
    """Messages from any chat app (no ``trainable`` key, a system prompt) follow DialoGPT's rule."""
    messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "hi there"},
                {"role": "assistant", "content": "hello"}, {"role": "user", "content": "how are you?"}]
    enc = encode_session(tokenizer, messages_to_turns(messages), max_seq_length=None)
    ids, mask = _template_mask(tokenizer, messages)
    assert ids == enc.input_ids and mask == [int(y != IGNORE_INDEX) for y in enc.labels]
    assert sum(mask) > 0 and mask[0] == 0


def test_messages_roles_alternate_from_the_end_and_carry_the_mask():
    msgs = turns_to_messages([Turn("a", 1.0), Turn("b", 0.0), Turn("c", 1.0), Turn("d", 1.0)])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert [m["trainable"] for m in msgs] == [False, False, True, True]
    ctx = turns_to_messages(["a", "b", "c"], last_role="user")  # a test context: the reply comes next
    assert [m["role"] for m in ctx] == ["user", "assistant", "user"]
    assert [t.weight for t in messages_to_turns(msgs)] == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="last_role"):
        turns_to_messages(["a"], last_role="system")
