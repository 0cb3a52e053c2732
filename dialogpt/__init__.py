"""DialoGPT on the Hugging Face stack: the model side (format, training, decoding, serving)."""

from .chat_format import (
    CHAT_TEMPLATE,
    EOS_TOKEN,
    IGNORE_INDEX,
    EncodedDialogue,
    Turn,
    build_prompt_ids,
    encode_reverse,
    encode_session,
    install_chat_template,
    render_text,
)

__version__ = "0.1.0"

__all__ = [
    "CHAT_TEMPLATE", "EOS_TOKEN", "IGNORE_INDEX", "EncodedDialogue", "Turn", "build_prompt_ids",
    "encode_reverse", "encode_session", "install_chat_template", "render_text", "__version__",
]
