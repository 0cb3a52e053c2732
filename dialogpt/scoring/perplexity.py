"""Perplexity of a causal LM on dialogue sessions, with the labels training uses.

Each session goes through :func:`dialogpt.chat_format.encode_session` (first turn and weight-0
turns masked, each trained turn's closing EOS kept as a label, left truncation to
``max_seq_length``), so this is the number ``eval_log.txt`` reports: token-weighted mean negative
log-likelihood over all label positions, and its exponential.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from dialogpt.chat_format import DEFAULT_MAX_SEQ_LENGTH, TurnLike, encode_session
from dialogpt.tensors import pad_right, token_nll


@dataclass
class PerplexityResult:
    loss: float      # mean NLL per label token (nats)
    ppl: float
    tokens: int      # label tokens scored
    sessions: int    # sessions that had at least one label token
    skipped: int     # sessions without any label token (e.g. a single turn)

    def as_dict(self) -> dict:
        return {"loss": self.loss, "ppl": self.ppl, "tokens": self.tokens, "sessions": self.sessions,
                "skipped": self.skipped}


def perplexity(model, tokenizer, sessions: Iterable[Iterable[TurnLike]], *,
               max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH, batch_size: int = 8,
               progress: bool = False) -> PerplexityResult:
    """Token-weighted perplexity of ``model`` over ``sessions`` (each a list of turns)."""
    import torch
    from tqdm.auto import tqdm

    encoded = []
    skipped = 0
    for s in sessions:
        enc = encode_session(tokenizer, s, max_seq_length)
        if enc.num_label_tokens == 0:
            skipped += 1
            continue
        encoded.append(enc)
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
