"""The original DialoGPT ``.pkl`` checkpoints -> Hugging Face ``GPT2LMHeadModel`` weights.

The seed saved ``model.state_dict()`` with ``torch.save`` (``GP2-pretrain-step-N.pkl``, and the
released ``small_ft.pkl``/``medium_ft.pkl``/``large_ft.pkl``). Its names differ from today's HF
GPT-2 in four ways, each undone here (DESIGN.md, "Legacy checkpoints"):

* ``module.`` prefixes from ``DataParallel``/DDP wrapping are stripped (the seed's
  ``fix_state_dict_namespace``);
* ``lm_head.decoder.weight`` (the seed's ``GPT2LMHead.decoder``) is ``lm_head.weight``;
* ``*.attn.bias`` / ``*.attn.masked_bias`` are causal-mask buffers, not weights: dropped;
* fp16 tensors (fp16 runs called ``model.half()``) are cast to fp32.

Files are read with ``torch.load(weights_only=True)``: a checkpoint is data, never code.

``dialogpt-convert old.pkl OUT_DIR --model_config medium --tokenizer_name gpt2`` writes a
``from_pretrained`` folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from dialogpt.errors import first_line


class CheckpointError(ValueError):
    """A legacy checkpoint that cannot be read or does not fit the model."""


def convert_legacy_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Seed names/dtypes -> HF GPT2LMHeadModel names in fp32 (pure: no I/O)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key
        while k.startswith("module."):
            k = k[len("module."):]
        if k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"):
            continue
        if k == "lm_head.decoder.weight":
            k = "lm_head.weight"
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()
        if k in out:
            raise CheckpointError(f"two entries map to {k!r} (one of them is {key!r})")
        out[k] = value
    # The seed's GPT2Model-only checkpoints have no "transformer." prefix (load_model then
    # loaded them into model.transformer); give them one so they fit GPT2LMHeadModel.
    if out and not any(k.startswith("transformer.") for k in out):
        out = {("transformer." + k if not k.startswith("lm_head.") else k): v for k, v in out.items()}
    return out


def load_legacy_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a seed ``.pkl`` safely and convert it; a clear one-line error on a bad file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"--init_checkpoint {p}: no such file")
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, code objects refused by weights_only
        raise CheckpointError(f"{p}: not a readable state dict ({first_line(e)})") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{p}: expected a state dict, found {type(state).__name__}")
    return convert_legacy_state_dict(state)


def load_into_model(model, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load converted weights, refusing any shape or name mismatch before training starts.

    ``lm_head.weight`` may be absent (it is tied to ``wte`` in GPT-2); any other missing or
    unexpected key, or any shape difference, is an error naming the first offenders.
    """
    own = model.state_dict()
    tied_ok = {"lm_head.weight"}
    shape_bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                 for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and k not in tied_ok and not k.endswith(".attn.bias")]
    if shape_bad:
        raise CheckpointError(f"{source} has another shape than the model: {'; '.join(shape_bad[:3])}"
                              + (f" (+{len(shape_bad) - 3} more)" if len(shape_bad) > 3 else ""))
    if unexpected or missing:
        raise CheckpointError(f"{source} does not fit the model: unexpected {unexpected[:5]}, missing {missing[:5]}")
    model.load_state_dict(dict(state), strict=False)
    if "lm_head.weight" in state and getattr(model.config, "tie_word_embeddings", True):
        # the seed tied decoder and wte too; keep them tied after loading
        model.tie_weights()


def convert(pkl_path: str, output_dir: str, model_config: str = "medium",
            tokenizer_name: str | None = "gpt2") -> Path:
    """Convert a seed ``.pkl`` into a ``from_pretrained`` folder (model, optional tokenizer)."""
    from dialogpt.train.loop import build_model_config  # local: keeps this module light for its CLI

    state = load_legacy_checkpoint(pkl_path)
    config = build_model_config(model_config, vocab_size=state["transformer.wte.weight"].shape[0]
                                if "transformer.wte.weight" in state else 50257)
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(config)
    load_into_model(model, state, source=pkl_path)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    if tokenizer_name:
        from transformers import AutoTokenizer

        from dialogpt.chat_format import install_chat_template

        tok = AutoTokenizer.from_pretrained(tokenizer_name)
        install_chat_template(tok)
        tok.save_pretrained(str(out))
    return out
