"""The model bench/serve.py serves: random GPT-2 weights at a named shape, offline.

* ``--shape``: ``tiny`` (2 layers, 64 wide: HTTP and scheduling overhead only), ``117M`` (12 layers, 768
  wide, 12 heads: GPT-2 small, DialoGPT-small) or ``345M`` (24, 1024, 16: DialoGPT-medium);
* ``--vocab``: ``bench`` (the ~1,000-token ByteLevel BPE the bench trains on the shipped Pushshift sample)
  or ``full`` (the real 50,257-row embedding and output layer, so the output layer costs what it costs
  in a served DialoGPT: a third of a 117M decode step). The tokenizer stays the bench's; the rows past
  it exist for their cost only (see below).

The output layer is untied and its rows for EOS (and, with ``--vocab full``, for every id the tokenizer
does not have) are zero. Every other logit is a random draw whose largest of ~1,000 is well above 0, so
greedy decoding never picks those rows: every server writes exactly ``--max-tokens`` tokens per request,
whatever it does with ``min_new_tokens`` (transformers' continuous batching ignores it), and every token
decodes to text.
"""

from __future__ import annotations

import math
from pathlib import Path

from generate import build_tiny_model

SHAPES = {"tiny": dict(n_layer=2, n_embd=64, n_head=2, n_positions=256),
          "117M": dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
          "345M": dict(n_layer=24, n_embd=1024, n_head=16, n_positions=1024)}
FULL_VOCAB = 50257


def build_bench_model(out: Path, shape: str = "tiny", vocab: str = "bench") -> dict:
    """Write the model + tokenizer to ``out``; returns the facts the JSON records."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    build_tiny_model(out)  # trains and saves the bench tokenizer (and a tiny model we replace)
    tok = AutoTokenizer.from_pretrained(str(out))
    n_tok = len(tok)
    rows = FULL_VOCAB if vocab == "full" else n_tok
    cfg = GPT2Config(vocab_size=rows, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.eos_token_id, tie_word_embeddings=False, **SHAPES[shape])
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        model.lm_head.weight.copy_(model.transformer.wte.weight)
        model.lm_head.weight[tok.eos_token_id] = 0
        model.lm_head.weight[n_tok:] = 0
    model.save_pretrained(str(out))
    params = sum(p.numel() for p in model.parameters())
    return {"shape": shape, **SHAPES[shape], "vocab": vocab, "vocab_rows": rows, "tokenizer_tokens": n_tok,
            "parameters": params, "dtype": "float32"}


def cb_num_blocks(config: dict, cache_gib: float, min_blocks: int, page_size: int = 256) -> dict:
    """``transformers serve --cb-num-blocks``: its paged cache sized to ``cache_gib`` (fp32 K and V of
    every layer, ``page_size`` tokens a block), but never fewer than ``min_blocks`` (one block per client
    at once: a reply here is far shorter than a block). Without a cap it sizes the cache to the
    machine's free memory (~13.7 GB resident seen on a 24 GB machine)."""
    head_dim = config["n_embd"] // config["n_head"]
    per_block = config["n_layer"] * 2 * config["n_head"] * head_dim * 4 * page_size
    blocks = max(int(cache_gib * 2**30 // per_block), min_blocks)
    return {"num_blocks": blocks, "page_size": page_size, "bytes_per_block": per_block,
            "cache_gib": round(blocks * per_block / 2**30, 3), "tokens": blocks * page_size,
            "sized_for": f">= {min_blocks} requests at once of up to {page_size} tokens (prompt + reply)"}


def model_facts_line(facts: dict) -> str:
    return (f"random GPT-2 {facts['shape']} ({facts['n_layer']} layers, {facts['n_embd']} wide, "
            f"{facts['vocab_rows']}-row vocabulary, {math.floor(facts['parameters'] / 1e6)}M parameters), "
            f"exactly --max-tokens new tokens")
