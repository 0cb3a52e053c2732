"""Make and save GPT-2-style tokenizers that speak the dialogue format, loadable by any transformers.

Used by the test fixtures and ``make demo``, where nothing can be downloaded: a ByteLevel BPE is
trained on text at hand, with ``<|endoftext|>`` as id 0 (bos = eos = unk = pad), exactly the roles
it has in GPT-2's own vocabulary. Real runs use ``AutoTokenizer.from_pretrained("gpt2")`` or a
DialoGPT id, then :func:`dialogpt.chat_format.install_chat_template`.

:func:`save_tokenizer` writes what transformers 4.x reads as well as 5.x: transformers 5 names a
tokenizer built from a ``tokenizers`` object ``TokenizersBackend`` (a class 4.x does not have) and
puts the chat template in ``chat_template.jinja`` (which 4.45 does not read). Ours is a GPT-2
byte-level BPE, so it is saved as ``GPT2TokenizerFast`` with the template inside
``tokenizer_config.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .chat_format import EOS_TOKEN, install_chat_template

#: the class name written for a byte-level BPE; both transformers 4.x and 5.x resolve it
PORTABLE_CLASS = "GPT2TokenizerFast"
#: class names transformers 5 writes that 4.x cannot load, or loads only as a generic class
_GENERIC_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast", "GPT2Tokenizer", "GPT2TokenizerFast"}


def _is_bytelevel_bpe(tokenizer_json: Path) -> bool:
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    pre = spec.get("pre_tokenizer") or {}
    kinds = {pre.get("type")} | {p.get("type") for p in pre.get("pretokenizers", []) or []}
    return (spec.get("model") or {}).get("type") == "BPE" and "ByteLevel" in kinds


def save_tokenizer(tokenizer, save_dir: str | Path) -> Path:
    """``save_pretrained`` that stays loadable by transformers 4.x (see the module docstring)."""
    out = Path(save_dir)
    tokenizer.save_pretrained(str(out), save_jinja_files=False)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("tokenizer_class") in _GENERIC_CLASSES and (out / "tokenizer.json").is_file() \
            and _is_bytelevel_bpe(out / "tokenizer.json"):
        cfg["tokenizer_class"] = PORTABLE_CLASS
    if getattr(tokenizer, "chat_template", None) and "chat_template" not in cfg:
        cfg["chat_template"] = tokenizer.chat_template
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def train_bytelevel_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 1000,
    min_frequency: int = 1,
    save_dir: str | Path | None = None,
    model_max_length: int = 1024,
):
    """Train a ByteLevel BPE on ``texts`` and return a GPT-2 fast tokenizer with our template."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS_TOKEN],
        show_progress=False,
    )
    tok = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=model_max_length,
    )
    install_chat_template(tok)
    if save_dir is not None:
        save_tokenizer(tok, save_dir)
    return tok
