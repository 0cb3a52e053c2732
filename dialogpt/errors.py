"""One-line error text from library exceptions.

Library messages are often multi-line (tokenizers, hub clients) or empty (IndexError); our rule is
one line naming the input, so every wrapper that quotes a library error goes through here.
"""

from __future__ import annotations


def first_line(e: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message`` (safe for empty and multi-line messages)."""
    text = (str(e).strip().splitlines() or [""])[0][:limit]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
