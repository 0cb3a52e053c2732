"""Long dialogues -> windows of at most ``max_seq_length`` tokens, every target turn labelled exactly once.

A chat of forty turns is ten times longer than DialoGPT's 128-token examples. Cutting it from the
left (what :func:`dialogpt.chat_format.encode_session` does to one over-long session) would train its
last few replies and silently waste the rest. The seed's ``prepro.py`` (``_make_features``) did not cut
either: when an instance outgrew ``max_seq_len`` it emitted what it had and started a new instance with
the last turn carried over as (unlabelled) context. We keep that rule and make it exact:

* a dialogue that fits is ONE window, encoded exactly as :func:`~dialogpt.chat_format.encode_session`
  encodes it today (same ids, same labels);
* otherwise windows are made left to right. A window trains the next untrained target turns ``j..e``,
  ``e`` being the last target such that the turn before ``j`` (always kept as context, so a reply is
  conditioned on what it answers) and ``j..e`` fit; then whole turns before that are added as context
  while they fit (the longest run of preceding turns that fits). Turns that an earlier window trained are
  context (label -100) in later windows, so every target turn carries labels in exactly one window;
* a target turn that does not fit even beside the turn before it is cut (its end, as the format cuts an
  over-long response; the context turn is cut from its start) and counted in ``truncated_turns``.

A target turn is every turn after the first whose weight is not 0 (the format's rule: the first turn has
nothing to be predicted from). The reverse (MMI) direction uses the same windows, each encoded response
first (:func:`reverse_window`), so forward and backward models see the same turn groupings.

Pure functions on integer token lists: tested without a tokenizer, run inside ``datasets.map``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dialogpt.chat_format import EncodedDialogue, encode_token_turns


@dataclass(frozen=True)
class Window:
    """Turns ``start..end`` (inclusive) of a dialogue; those from ``first_target`` on may carry labels."""

    start: int
    first_target: int
    end: int


@dataclass
class WindowedExample:
    """One encoded window and what it covers."""

    encoded: EncodedDialogue
    window: Window
    #: target turns that carry at least one label in this window
    trained_turns: int
    #: target turns cut inside to fit (a single turn longer than the budget)
    truncated_turns: int


def target_turns(weights: Sequence[float]) -> list[int]:
    """Indices of the turns the format may train: not the first, weight not 0."""
    return [i for i in range(1, len(weights)) if weights[i] != 0.0]


def train_on_weights(turns: Sequence[Mapping], train_on: str = "all") -> list[float]:
    """Each turn's weight under ``--train_on``: which turns are targets.

    ``all`` (DialoGPT's own rule, the default): the data's weights, so every turn after the first is
    trained unless the data marks it context-only. ``assistant``: only turns whose ``role`` is assistant
    (rows without roles alternate counted back from the end, the last turn being the assistant's, as
    ``chat_format.turns_to_messages`` does). Any other value is a speaker name (a character of a script):
    only that speaker's turns are trained, the others are context. A weight-0 turn stays 0 either way.
    """
    weights = [float(t.get("weight", 1.0)) for t in turns]
    if train_on == "all":
        return weights
    if train_on == "assistant":
        n = len(turns)
        roles = [t.get("role") or ("assistant" if (n - 1 - i) % 2 == 0 else "user") for i, t in enumerate(turns)]
        return [w if r == "assistant" else 0.0 for w, r in zip(weights, roles)]
    return [w if t.get("speaker") == train_on else 0.0 for w, t in zip(weights, turns)]


def plan_windows(turn_lengths: Sequence[int], weights: Sequence[float], max_seq_length: int) -> list[Window]:
    """Which turns go together. ``turn_lengths`` count each turn's tokens plus its closing EOS.

    No target turn: no window (nothing to learn). A dialogue that fits: one window of all its turns.
    """
    targets = target_turns(weights)
    if not targets:
        return []
    if sum(turn_lengths) <= max_seq_length:
        return [Window(0, targets[0], len(turn_lengths) - 1)]
    windows: list[Window] = []
    k = 0
    while k < len(targets):
        first = targets[k]
        used = turn_lengths[first - 1] + turn_lengths[first]
        # extend the trained run to the last target whose turns still fit
        while k + 1 < len(targets):
            extra = sum(turn_lengths[targets[k] + 1: targets[k + 1] + 1])
            if used + extra > max_seq_length:
                break
            used += extra
            k += 1
        start = first - 1
        while start > 0 and used + turn_lengths[start - 1] <= max_seq_length:
            start -= 1
            used += turn_lengths[start]
        windows.append(Window(start, first, targets[k]))
        k += 1
    return windows


def _window_weights(weights: Sequence[float], w: Window) -> list[float]:
    """The window's weights: turns before its first target are context here (trained elsewhere, or never)."""
    return [0.0 if i < w.first_target else float(weights[i]) for i in range(w.start, w.end + 1)]


def encode_window(token_turns: Sequence[list[int]], weights: Sequence[float], w: Window, eos_id: int,
                  max_seq_length: int) -> WindowedExample:
    """The forward encoding of one window (labels only on its own targets)."""
    enc = encode_token_turns([list(t) for t in token_turns[w.start:w.end + 1]], _window_weights(weights, w),
                             eos_id, max_seq_length)
    trained = len(target_turns(_window_weights(weights, w)))
    return WindowedExample(enc, w, trained, int(enc.response_truncated))


def reverse_window(token_turns: Sequence[list[int]], w: Window, eos_id: int,
                   max_seq_length: int) -> WindowedExample:
    """The MMI (response -> source) encoding of the same window: its last turn first, as context, then its
    other turns newest first, all trained (``chat_format.encode_reverse`` on the window's turns)."""
    rev = [list(token_turns[w.end])] + [list(token_turns[i]) for i in range(w.end - 1, w.start - 1, -1)]
    enc = encode_token_turns(rev, [0.0] + [1.0] * (len(rev) - 1), eos_id, max_seq_length)
    return WindowedExample(enc, w, len(rev) - 1 - enc.dropped_turns, int(enc.response_truncated))


def encode_windows(token_turns: Sequence[list[int]], weights: Sequence[float], eos_id: int,
                   max_seq_length: int, reverse: bool = False) -> list[WindowedExample]:
    """A whole dialogue (per-turn token lists, oldest first) -> its windows, encoded."""
    if len(token_turns) != len(weights):
        raise ValueError(f"{len(token_turns)} turns but {len(weights)} weights")
    if max_seq_length < 2:
        raise ValueError(f"max_seq_length must be >= 2, got {max_seq_length}")
    plan = plan_windows([len(t) + 1 for t in token_turns], weights, max_seq_length)
    if reverse:
        return [reverse_window(token_turns, w, eos_id, max_seq_length) for w in plan]
    return [encode_window(token_turns, weights, w, eos_id, max_seq_length) for w in plan]
