"""DSTC7's cleaning step (``tokenizers.clean_str``, ``dstc.py -c``), applied the same way to
hypotheses and references.

What it does, in the original's order (mgalley/DSTC7-End-to-End-Conversation-Modeling,
``evaluation/src/tokenizers.py``):

1. lowercase (full Unicode ``str.lower``, as Python 3 does);
2. every whitespace token containing ``http`` becomes ``<text before http> __url__`` (the rest of the
   token, including a closing ``)``, is dropped);
3. a markdown link ``[text] ( __url__ )`` (with those spaces) becomes ``text``;
4. every character outside ``[A-Za-z0-9():,.!?"']`` becomes a space (so non-ASCII, ``*``, ``-``,
   ``/``, ``&``, ``#``, ``@``, ``_`` vanish; ``__url__`` is protected while this runs);
5. NLTK's ``TweetTokenizer(preserve_case=False)`` (keeps ``:)`` together, ``...`` one token,
   ``'em`` -> ``' em``);
6. ``won't`` -> ``will n't``, ``can't`` -> ``can n't``, then ``'s 'm 're n't 'll 've 'd 'em``
   split off when followed by a space; spaces collapsed.

Example: ``I don't know:). how about this?https://github.com`` ->
``i do n't know :) . how about this ? __url__``.
"""

from __future__ import annotations

import re
from functools import lru_cache

_MARKDOWN_URL = re.compile(r"\[([^\]]*)\] \( *__url__ *\)")
_ILLEGAL = re.compile(r"[^A-Za-z0-9():,.!?\"\']")
_CONTRACTIONS = ("'s", "'m", "'re", "n't", "'ll", "'ve", "'d", "'em")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _tweet_tokenizer():
    try:
        from nltk.tokenize.casual import TweetTokenizer
    except ImportError as e:  # pragma: no cover - nltk is an install requirement
        raise ImportError("DSTC7 cleaning needs nltk's TweetTokenizer: pip install 'nltk>=3.9'") from e
    return TweetTokenizer(preserve_case=False)


def clean_str(txt: str) -> str:
    """DSTC7 ``clean_str``: one raw response -> the cleaned, tokenised text the scorer saw."""
    txt = txt.lower()
    words = []
    for word in txt.split():
        i = word.find("http")
        if i >= 0:
            word = word[:i] + " " + "__url__"
        words.append(word.strip())
    txt = " ".join(words)
    txt = _MARKDOWN_URL.sub(r"\1", txt)
    # The original swaps __url__ for "URL" while it removes illegal characters: the text is
    # lowercase by now, so "URL" can only come from that swap.
    txt = txt.replace("__url__", "URL")
    txt = _ILLEGAL.sub(" ", txt)
    txt = txt.replace("URL", "__url__")
    txt = " " + " ".join(_tweet_tokenizer().tokenize(txt)) + " "
    txt = txt.replace(" won't ", " will n't ")
    txt = txt.replace(" can't ", " can n't ")
    for a in _CONTRACTIONS:
        txt = txt.replace(a + " ", " " + a + " ")
    return _SPACES.sub(" ", txt).strip()


def clean_lines(lines: list[str]) -> list[str]:
    return [clean_str(x) for x in lines]
