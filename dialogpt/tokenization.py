"""Make a GPT-2-style tokenizer that speaks the dialogue format.

Used by the test fixtures and ``make demo``, where nothing can be downloaded: a ByteLevel BPE is
trained on text at hand, with ``<|endoftext|>`` as id 0 (bos = eos = unk = pad), exactly the roles
it has in GPT-2's own vocabulary. Real runs use ``AutoTokenizer.from_pretrained("gpt2")`` or a
DialoGPT id, then :func:`dialogpt.chat_format.install_chat_template`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .chat_format import EOS_TOKEN, install_chat_template


def train_bytelevel_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 1000,
    min_frequency: int = 1,
    save_dir: str | Path | None = None,
    model_max_length: int = 1024,
):
    """Train a ByteLevel BPE on ``texts`` and return a ``PreTrainedTokenizerFast`` with our template."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS_TOKEN],
        show_progress=False,
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=model_max_length,
    )
    install_chat_template(tok)
    if save_dir is not None:
        tok.save_pretrained(str(save_dir))
    return tok
