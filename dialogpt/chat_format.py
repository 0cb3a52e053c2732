"""The one definition of the DialoGPT dialogue format.

Training, decoding, the chat CLI, the HTTP server and the evaluator all go through this module, so
they can never disagree about how a conversation becomes tokens.

The format (as in the original ``prepro.py`` / ``LSP_train.py``):

* a session is a list of turns, each ``(text, weight)``; weight 0.0 = context only, 1.0 = trained;
* turns are joined by ``<|endoftext|>`` and the last turn is closed by one too:
  ``t1<|endoftext|>t2<|endoftext|>...tn<|endoftext|>``;
* ``labels`` are -100 on the first turn (it has nothing to be predicted from) and on every
  weight-0 turn; a trained turn's tokens **and its closing** ``<|endoftext|>`` are labels. The
  original keeps the EOS label after each trained turn, which is what teaches the model to stop;
  scripts that pad with EOS and mask every pad-id lose it, and their models ramble;
* truncation to ``max_seq_length`` drops whole turns from the left (oldest first) and keeps the
  response. Only when the last context turn plus the response cannot fit is anything cut inside a
  turn: the response from its end (it then loses its closing EOS, because it did not end there),
  and the context turn from its start. Both cuts are reported on the result, never silent.

The tokenizer's ``chat_template`` renders exactly ``render_text`` so that
``tokenizer.apply_chat_template(messages)`` and :func:`encode_session` produce the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

EOS_TOKEN = "<|endoftext|>"
IGNORE_INDEX = -100
DEFAULT_MAX_SEQ_LENGTH = 128

#: Roles are irrelevant to DialoGPT (turns simply alternate); system messages have no place in
#: the format, so the template skips them rather than inventing a rendering the model never saw.
#: A trained turn (every turn after the first whose ``trainable`` is not false: the original trains
#: user and assistant turns alike) sits in a ``{% generation %}`` block, so
#: ``apply_chat_template(..., return_dict=True, return_assistant_tokens_mask=True)`` marks exactly the
#: positions :func:`encode_session` gives labels (TRL's ``assistant_only_loss`` reads that mask).
CHAT_TEMPLATE = (
    "{% set ns = namespace(n=0) %}"
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}"
    "{% if ns.n > 0 and message.get('trainable') is not false %}"
    "{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] }}{{ eos_token }}"
    "{% endif %}"
    "{% set ns.n = ns.n + 1 %}"
    "{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class Turn:
    """One utterance of a session. ``weight`` 0.0 means context only, anything else is trained."""

    text: str
    weight: float = 1.0


TurnLike = Turn | tuple[str, float] | Mapping[str, object] | str


def as_turns(turns: Iterable[TurnLike]) -> list[Turn]:
    """Accept the shapes users have in hand: Turn, (text, weight), {"text", "weight"} or plain str."""
    out: list[Turn] = []
    for i, t in enumerate(turns):
        if isinstance(t, Turn):
            out.append(t)
        elif isinstance(t, str):
            out.append(Turn(t, 1.0))
        elif isinstance(t, Mapping):
            if "text" not in t:
                raise ValueError(f"turn {i} has no 'text' field: {dict(t)!r}")
            out.append(Turn(str(t["text"]), float(t.get("weight", 1.0))))  # type: ignore[arg-type]
        elif isinstance(t, Sequence) and len(t) == 2:
            out.append(Turn(str(t[0]), float(t[1])))
        else:
            raise TypeError(f"turn {i} is not a Turn, (text, weight), mapping or str: {t!r}")
    return out


def render_text(turns: Iterable[TurnLike], eos_token: str = EOS_TOKEN) -> str:
    """The exact string the model is trained on (and that ``CHAT_TEMPLATE`` renders)."""
    return "".join(t.text + eos_token for t in as_turns(turns))


def messages_to_turns(messages: Iterable[Mapping[str, object]]) -> list[Turn]:
    """OpenAI-style messages -> turns. System messages are dropped, as the template drops them.

    A message whose ``trainable`` is false becomes a weight-0 (context only) turn, so the dataset's
    ``messages`` column keeps the original's weight-0 mask; without the key every turn is trained.
    """
    turns = []
    for i, m in enumerate(messages):
        if "content" not in m or "role" not in m:
            raise ValueError(f"message {i} needs 'role' and 'content': {dict(m)!r}")
        if m["role"] == "system":
            continue
        turns.append(Turn(str(m["content"]), 0.0 if m.get("trainable") is False else 1.0))
    return turns


def turns_to_messages(turns: Iterable[TurnLike], last_role: str = "assistant") -> list[dict]:
    """Turns -> alternating user/assistant messages, counted back from ``last_role``.

    The roles alternate from the end: the last turn of a training session is the reply
    (``assistant``); a test context, whose replies live apart, ends on ``user``. ``trainable`` is
    true exactly where :func:`encode_session` puts labels (not the first turn, not weight 0).
    """
    if last_role not in ("assistant", "user"):
        raise ValueError(f"last_role must be 'assistant' or 'user', got {last_role!r}")
    other = "user" if last_role == "assistant" else "assistant"
    ts = as_turns(turns)
    n = len(ts)
    return [
        {"role": last_role if (n - 1 - i) % 2 == 0 else other, "content": t.text,
         "trainable": i > 0 and t.weight != 0.0}
        for i, t in enumerate(ts)
    ]


def install_chat_template(tokenizer) -> None:
    """Give a tokenizer our template and make sure EOS/pad are set the way the format needs."""
    if tokenizer.eos_token is None:
        tokenizer.eos_token = EOS_TOKEN
    if tokenizer.pad_token is None:
        # Padding is always masked through attention_mask / IGNORE_INDEX built here, never by
        # comparing ids with pad_token_id, so reusing EOS as pad cannot mask real EOS labels.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = CHAT_TEMPLATE


@dataclass
class EncodedDialogue:
    input_ids: list[int]
    labels: list[int]
    attention_mask: list[int]
    #: turns dropped from the left (or, for the reverse direction, from the oldest end)
    dropped_turns: int = 0
    #: the response had to be cut from its end to fit
    response_truncated: bool = False
    #: the last context turn had to be cut from its start to fit
    context_truncated: bool = False
    #: number of label positions that are not IGNORE_INDEX
    num_label_tokens: int = field(default=0)

    def as_dict(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "labels": self.labels, "attention_mask": self.attention_mask}


def _encode_texts(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    # Batch call: the fast tokenizer encodes in Rust in one go, much faster than a loop.
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _eos_id(tokenizer) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("tokenizer has no eos_token; call install_chat_template(tokenizer) first")
    return int(eos)


@dataclass
class _Fitted:
    """Turns after truncation, and what truncation did to them."""

    turns: list[list[int]]
    weights: list[float]
    dropped: int = 0
    response_cut: bool = False
    context_cut: bool = False
    close_last: bool = True  # False when the response was cut: no EOS after a cut-off reply

    def total(self) -> int:
        return sum(len(t) + 1 for t in self.turns) - (0 if self.close_last else 1)


def _fit_two_turns(f: _Fitted, max_seq_length: int) -> None:
    ctx, resp = f.turns
    # Leave at least one context token so the response is still conditioned on something.
    resp_budget = max_seq_length - 2  # one ctx token + its EOS
    if len(resp) + 1 > resp_budget:
        f.turns[1] = resp[:resp_budget]
        f.close_last = False
        f.response_cut = True
    room_for_ctx = max_seq_length - (len(f.turns[1]) + (1 if f.close_last else 0)) - 1
    if len(ctx) > room_for_ctx:
        f.turns[0] = ctx[len(ctx) - room_for_ctx:]
        f.context_cut = True


def _fit(token_turns: list[list[int]], weights: list[float], max_seq_length: int | None) -> _Fitted:
    """Drop whole turns from the left (as the original does), then cut inside the last two if still long."""
    f = _Fitted([list(t) for t in token_turns], list(weights))
    if max_seq_length is None:
        return f
    while f.total() > max_seq_length and len(f.turns) > 2:
        f.turns.pop(0)
        f.weights.pop(0)
        f.dropped += 1
    if f.total() > max_seq_length and len(f.turns) == 2:
        _fit_two_turns(f, max_seq_length)
    elif f.total() > max_seq_length:  # a single turn: nothing to keep but its start
        f.turns[0] = f.turns[0][: max_seq_length - 1]
        f.response_cut = True
    return f


def encode_token_turns(
    token_turns: list[list[int]],
    weights: list[float],
    eos_id: int,
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
) -> EncodedDialogue:
    """Pure core of the format: per-turn token lists + weights -> ids, labels, mask.

    Kept free of tokenizers so the masking and truncation rules are tested on plain integers.
    """
    if len(token_turns) != len(weights):
        raise ValueError(f"{len(token_turns)} turns but {len(weights)} weights")
    if not token_turns:
        raise ValueError("a session needs at least one turn")
    if max_seq_length is not None and max_seq_length < 2:
        raise ValueError(f"max_seq_length must be >= 2, got {max_seq_length}")
    f = _fit(token_turns, weights, max_seq_length)
    input_ids: list[int] = []
    labels: list[int] = []
    last = len(f.turns) - 1
    for i, (toks, w) in enumerate(zip(f.turns, f.weights)):
        trained = i > 0 and w != 0.0  # the first turn is never a target; weight-0 turns are context only
        seg = toks + ([eos_id] if (i < last or f.close_last) else [])  # the EOS after a trained turn is a label
        input_ids.extend(seg)
        labels.extend(seg if trained else [IGNORE_INDEX] * len(seg))
    return EncodedDialogue(
        input_ids=input_ids,
        labels=labels,
        attention_mask=[1] * len(input_ids),
        dropped_turns=f.dropped,
        response_truncated=f.response_cut,
        context_truncated=f.context_cut,
        num_label_tokens=sum(1 for x in labels if x != IGNORE_INDEX),
    )


def encode_session(
    tokenizer,
    turns: Iterable[TurnLike],
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
) -> EncodedDialogue:
    """A session (oldest turn first) -> model inputs with DialoGPT's labels."""
    ts = as_turns(turns)
    return encode_token_turns(
        _encode_texts(tokenizer, [t.text for t in ts]),
        [t.weight for t in ts],
        _eos_id(tokenizer),
        max_seq_length,
    )


def reverse_turns(turns: Iterable[TurnLike]) -> list[Turn]:
    """The MMI backward model's view of a session: response first, then the source turns.

    The reverse model scores log p(source | response). Its input is the response (context only)
    followed by the source turns newest-first, all trained: the turn nearest the response comes
    right after it, and truncation (see ``encode_reverse``) loses the oldest turns first, as
    forward truncation does.
    """
    ts = as_turns(turns)
    if len(ts) < 2:
        raise ValueError("the reverse direction needs a source and a response (>= 2 turns)")
    response, source = ts[-1], ts[:-1]
    return [Turn(response.text, 0.0)] + [Turn(t.text, 1.0) for t in reversed(source)]


def encode_reverse(
    tokenizer,
    turns: Iterable[TurnLike],
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
) -> EncodedDialogue:
    """(response -> source) encoding of the same session, for training and scoring the MMI model.

    Truncation drops whole source turns from the oldest end (the tail of the reversed list); the
    response always stays, and only a single too-long response/source pair is cut inside turns.
    """
    rev = reverse_turns(turns)
    toks = _encode_texts(tokenizer, [t.text for t in rev])
    eos = _eos_id(tokenizer)
    dropped = 0
    if max_seq_length is not None:
        total = sum(len(t) + 1 for t in toks)
        while len(toks) > 2 and total > max_seq_length:  # a running total: linear in the turns
            total -= len(toks.pop()) + 1
            rev.pop()
            dropped += 1
    # For a single too-long pair the forward rule keeps the *end* of the response (here the
    # context turn) and the *start* of the newest source turn (here the trained turn).
    enc = encode_token_turns(toks, [t.weight for t in rev], eos, max_seq_length)
    enc.dropped_turns += dropped
    return enc


def fit_prompt_ids(
    tokenizer,
    history: Iterable[TurnLike],
    max_prompt_tokens: int | None = None,
) -> tuple[list[int], bool]:
    """:func:`build_prompt_ids`, and whether it had to drop or cut anything to fit the budget.

    Linear in what it keeps: turns are tokenised from the newest back, a few at a time (8, 16, 32, ...),
    and the walk stops at the first turn that does not fit. Every turn costs at least one token (its
    EOS), so a history of 30,000 turns costs what the few hundred that can fit cost. (Popping turns
    from the left and re-summing all the rest, as this did before, took 7 s for 30,000 empty turns.)
    """
    ts = as_turns(history)
    if not ts:
        raise ValueError("history is empty: give at least one turn")
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise ValueError(f"max_prompt_tokens must be >= 1, got {max_prompt_tokens}")
    eos = _eos_id(tokenizer)
    if max_prompt_tokens is None:
        return [i for ids in _encode_texts(tokenizer, [t.text for t in ts]) for i in ids + [eos]], False
    kept: list[list[int]] = []  # newest first
    total, end, step = 0, len(ts), 8
    while end > 0:
        start = max(end - step, 0)
        for ids in reversed(_encode_texts(tokenizer, [t.text for t in ts[start:end]])):
            if total + len(ids) + 1 > max_prompt_tokens:
                if not kept:  # the newest turn alone is too long: it keeps its last tokens
                    kept.append((ids + [eos])[-max_prompt_tokens:])
                return [i for seg in reversed(kept) for i in seg], True
            kept.append(ids + [eos])
            total += len(ids) + 1
        end, step = start, step * 2
    return [i for seg in reversed(kept) for i in seg], False


def build_prompt_ids(
    tokenizer,
    history: Iterable[TurnLike],
    max_prompt_tokens: int | None = None,
) -> list[int]:
    """Generation prompt: every history turn closed by EOS (the model then writes the response).

    Identical to ``apply_chat_template(messages, add_generation_prompt=True)``. Too-long histories
    lose whole turns from the left; a single turn longer than the budget keeps its last tokens.
    """
    return fit_prompt_ids(tokenizer, history, max_prompt_tokens)[0]
