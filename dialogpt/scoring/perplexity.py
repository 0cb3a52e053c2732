"""Perplexity of a causal LM on dialogue sessions, with the labels training uses.

Each session goes through :func:`dialogpt.windowing.encode_windows`, as training's data does (first
turn and weight-0 turns masked, each trained turn's closing EOS kept as a label; a session longer than
``max_seq_length`` becomes several windows, each turn scored in exactly one), so this is the number
``eval_log.txt`` reports: token-weighted mean negative log-likelihood over all label positions, and its
exponential.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from dialogpt.chat_format import DEFAULT_MAX_SEQ_LENGTH, EncodedDialogue, TurnLike, as_turns
from dialogpt.tensors import pad_right, token_nll
from dialogpt.windowing import encode_windows


@dataclass
class PerplexityResult:
    loss: float      # mean NLL per label token (nats)
    ppl: float
    tokens: int      # label tokens scored
    sessions: int    # examples scored: windows of the sessions that had at least one label token
    skipped: int     # sessions without any label token (e.g. a single turn)

    def as_dict(self) -> dict:
        return {"loss": self.loss, "ppl": self.ppl, "tokens": self.tokens, "sessions": self.sessions,
                "skipped": self.skipped}


def _encode(tokenizer, sessions: Iterable[Iterable[TurnLike]],
            max_seq_length: int | None) -> tuple[list[EncodedDialogue], int]:
    """Every session's windows with a label token, and the count of sessions that had none."""
    encoded: list[EncodedDialogue] = []
    skipped = 0
    eos = tokenizer.eos_token_id
    for s in sessions:
        turns = as_turns(s)
        ids = tokenizer([t.text for t in turns], add_special_tokens=False)["input_ids"] if turns else []
        windows = [w.encoded for w in encode_windows(ids, [t.weight for t in turns], eos,
                                                     max_seq_length or 10**9) if w.encoded.num_label_tokens]
        skipped += not windows
        encoded.extend(windows)
    return encoded, skipped


def perplexity(model, tokenizer, sessions: Iterable[Iterable[TurnLike]], *,
               max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH, batch_size: int = 8,
               progress: bool = False) -> PerplexityResult:
    """Token-weighted perplexity of ``model`` over ``sessions`` (each a list of turns)."""
    import torch
    from tqdm.auto import tqdm

    encoded, skipped = _encode(tokenizer, sessions, max_seq_length)
    if not encoded:
        raise ValueError("no session has a trained turn to score (need >= 2 turns with a non-zero weight after the first)")
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    nll, n_tok = 0.0, 0
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))  # less padding
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.no_grad():
        for b in tqdm(batches, desc="perplexity", disable=not progress):
            batch = pad_right([encoded[i].input_ids for i in b], [encoded[i].labels for i in b], pad_id=pad_id)
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits
            row_nll, row_tokens = token_nll(logits, batch["labels"].to(device))  # training's padding and loss
            nll += float(row_nll.sum().item())
            n_tok += int(row_tokens.sum().item())
    mean = nll / n_tok
    try:
        ppl = math.exp(mean)
    except OverflowError:
        ppl = float("inf")
    return PerplexityResult(mean, ppl, n_tok, len(encoded), skipped)
