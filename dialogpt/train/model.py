"""The model side of training: GPT-2 shapes, tokenizer and model loading, and legacy ``.pkl`` import.

``build_model_config`` knows the paper's sizes; ``load_tokenizer``/``load_model`` turn the config's
flags into a ready model and tokenizer (or one ``TrainingError`` line naming the flag).

The original DialoGPT ``.pkl`` checkpoints -> Hugging Face ``GPT2LMHeadModel`` weights.

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

from dialogpt.chat_format import install_chat_template
from dialogpt.errors import first_line
from dialogpt.train.attention import use_attn_implementation
from dialogpt.train.config import TrainConfig, TrainingError
from dialogpt.train.lora import wrap_model

MODEL_SHAPES: dict[str, dict[str, int]] = {
    # name: GPT-2 shapes from DESIGN.md (117M / 345M / 762M) plus the 2-layer test model
    "tiny": dict(n_layer=2, n_embd=64, n_head=2, n_positions=256),  # = tests/conftest.py TINY_GPT2
    "small": dict(n_layer=12, n_embd=768, n_head=12),
    "medium": dict(n_layer=24, n_embd=1024, n_head=16),
    "large": dict(n_layer=36, n_embd=1280, n_head=20),
}
N_POSITIONS = 1024


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


def build_model_config(name_or_path: str, vocab_size: int, eos_token_id: int | None = None,
                       dropout: float | None = None):
    """tiny/small/medium/large (or a config.json) -> ``GPT2Config`` with n_ctx 1024."""
    from transformers import GPT2Config

    # the special ids go in at construction: GPT2Config's default 50256 lies outside a smaller vocabulary,
    # and transformers warns about it when the config is built, not when the ids are set later
    names = ("bos_token_id", "eos_token_id", "pad_token_id")
    if eos_token_id is not None:
        ids = dict.fromkeys(names, eos_token_id)
    else:
        ids = dict.fromkeys(names, None) if vocab_size <= 50256 else {}
    if name_or_path in MODEL_SHAPES:
        shape = {"n_positions": N_POSITIONS, **MODEL_SHAPES[name_or_path]}
        cfg = GPT2Config(vocab_size=vocab_size, **shape, **ids)
    elif Path(name_or_path).is_file():
        cfg = GPT2Config.from_json_file(name_or_path)
        cfg.vocab_size = vocab_size
        if eos_token_id is not None:  # the file's own ids stay unless the tokenizer gives one
            cfg.update(ids)
    else:
        raise TrainingError(f"--model_config {name_or_path!r} is not one of {', '.join(MODEL_SHAPES)} "
                            "nor a config.json file")
    if dropout is not None:
        cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = dropout
    return cfg


def load_tokenizer(config: TrainConfig):
    """The run's tokenizer with the dialogue chat template installed (one line naming the flag if it fails)."""
    from transformers import AutoTokenizer

    name = config.tokenizer_name or config.model_name_or_path
    flag = "--tokenizer_name" if config.tokenizer_name else "--model_name_or_path"
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except Exception as e:
        raise TrainingError(f"{flag} {name}: cannot load a tokenizer ({first_line(e)})") from None
    install_chat_template(tok)
    return tok


def _pretrained_or_new(config: TrainConfig, tokenizer):
    from transformers import AutoModelForCausalLM, GPT2LMHeadModel

    if not config.model_name_or_path:
        return GPT2LMHeadModel(build_model_config(config.model_config, vocab_size=len(tokenizer),
                                                  eos_token_id=tokenizer.eos_token_id, dropout=config.dropout))
    kwargs = {}
    if config.dropout is not None:
        kwargs = dict(resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout)
    try:
        return AutoModelForCausalLM.from_pretrained(config.model_name_or_path, **kwargs)
    except Exception as e:
        raise TrainingError(f"--model_name_or_path {config.model_name_or_path}: cannot load "
                            f"({first_line(e)})") from None


def load_model(config: TrainConfig, tokenizer):
    """Build or load the GPT-2, apply --init_checkpoint, check it against the options, and with
    --lora_r return it wrapped in peft's LoRA model (train/lora.py)."""
    model = _pretrained_or_new(config, tokenizer)
    try:  # flash without the package / a GPU / half precision: one line before any data work
        use_attn_implementation(model, config.attn_implementation, mixed_precision=config.mixed_precision,
                                on_cuda=torch.cuda.is_available() and not config.cpu)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    n_pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if n_pos is not None and config.max_seq_length > n_pos:
        raise TrainingError(f"--max_seq_length {config.max_seq_length} > the model's n_positions {n_pos}")
    emb = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > emb:
        raise TrainingError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding has {emb} rows: "
                            "--tokenizer_name does not belong to this model")
    if config.init_checkpoint:
        try:
            load_into_model(model, load_legacy_checkpoint(config.init_checkpoint), source=config.init_checkpoint)
        except CheckpointError as e:
            raise TrainingError(str(e)) from None
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "loss_type", "") is None:  # GPT2LMHeadModel's name matches no loss: transformers warns,
        model.loss_type = "ForCausalLM"           # then uses this very loss; say it, and the warning goes
    if config.lora_r is not None:  # freeze the base, add adapters (after any --init_checkpoint weights)
        model = wrap_model(model, config)
    if config.gradient_checkpointing:  # transformers 5.24 renamed gradient_checkpointing_enable (deprecated)
        model.activation_checkpointing_enable()
    model.config.use_cache = False
    if config.torch_compile:
        compile_blocks(model, config.torch_compile_backend)
    return model


def compile_blocks(model, backend: str = "inductor") -> int:
    """``--torch_compile``: compile each transformer block in place (regional compilation).

    The blocks share one compiled graph, so compile time does not grow with depth (345M compiles like
    117M), and in-place ``Module.compile`` leaves parameter names alone: checkpoints, ``save_pretrained``
    and DDP see the plain model. Shapes are PyTorch's automatic dynamic: a packed run (one shape)
    stays static, length buckets switch to a dynamic graph at the second shape instead of one per length.
    Returns the number of blocks compiled.
    """
    import torch._dynamo

    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise TrainingError(f"--torch_compile_backend {backend!r} is not one of "
                            f"{', '.join(torch._dynamo.list_backends())}")
    blocks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not blocks:
        raise TrainingError(f"--torch_compile: {type(model).__name__} has no list of blocks to compile")
    layers = max(blocks, key=len)  # GPT-2: transformer.h
    for block in layers:
        block.compile(backend=backend)
    return len(layers)


def convert(pkl_path: str, output_dir: str, model_config: str = "medium",
            tokenizer_name: str | None = "gpt2") -> Path:
    """Convert a seed ``.pkl`` into a ``from_pretrained`` folder (model, optional tokenizer)."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    state = load_legacy_checkpoint(pkl_path)
    config = build_model_config(model_config, vocab_size=state["transformer.wte.weight"].shape[0]
                                if "transformer.wte.weight" in state else 50257)
    model = GPT2LMHeadModel(config)
    load_into_model(model, state, source=pkl_path)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    if tokenizer_name:
        tok = AutoTokenizer.from_pretrained(tokenizer_name)
        install_chat_template(tok)
        tok.save_pretrained(str(out))
    return out
