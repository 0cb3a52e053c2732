"""NLTK's ``TweetTokenizer(preserve_case=True)``, token for token, in one compiled pass.

The original DialoGPT extractor tokenises every turn with NLTK's TweetTokenizer, which makes several
passes over a text (HTML entities, runs of punctuation, then one large regex of URLs, phone numbers,
emoticons, handles, hashtags, e-mails, emoji and words, tried in that order at every position), and
importing NLTK alone costs a third of a second. :func:`gpt_norm` hands the tokeniser text over a
small alphabet only: ``A-Z a-z 0-9 ( ) [ ] : , . ! ? '`` curly double quotes, spaces, and ``_`` (from
``__url__`` / ``__mention__``). Over that alphabet most of NLTK's alternatives can never match, and
the rest reduce to the few below (same order, so the same alternative wins at every position):

* URLs with a scheme need ``http`` (and one with a path needs ``/``): texts containing ``http`` go to
  NLTK itself (:func:`tokenize`); the naked-domain form (``reddit.com``, ``end.Then``) stays, without
  its ``-``, ``@`` and ``/`` parts;
* phone numbers (``555 1234``, ``1 (555) 123 4567``), without their ``+ * -`` separators;
* ASCII emoticons whose eyes are ``:`` or ``8`` and mouth ``) ] ( [ d D p P :`` (the pattern is
  case-insensitive: the nose ``o`` is ``O`` too); ``; =`` eyes, ``< >`` hats and ``<3`` need characters
  outside the alphabet, as do HTML tags, arrows, @handles, #hashtags, e-mails, emoji and flags;
* words with inner apostrophes or underscores, numbers with ``, . :``, plain words, ellipses
  (``. .`` included), and any other single character;
* HTML entities need ``&`` (never present); runs of four or more of one non-alphanumeric character
  are cut to three first, as NLTK does.

Property-tested against NLTK in ``tests/dataset/test_dataset_tokenizer.py`` (every text of the
fixtures, hypothesis strings over the alphabet, seeded random strings of tricky pieces).
"""

from __future__ import annotations

import functools
import re

#: the characters gpt_norm leaves in a text (its allowed set, plus ``_`` of ``__url__`` / ``__mention__``)
ALPHABET = re.compile(r"[A-Za-z0-9()\[\]:,.!?'“” _]*")
_SCHEME = re.compile("http", re.IGNORECASE)
#: NLTK's HANG_RE on the alphabet: a run of 4+ of one character that is neither letter nor digit
_RUNS = re.compile(r"([^A-Za-z0-9])\1{3,}")
_TOKEN = re.compile(r"""
    [A-Za-z0-9]+\.(?:[A-Za-z0-9]+\.){0,126}[A-Za-z]{2,13}\b     # naked domain (a URL)
  | (?:[01][ .)]*)?(?:\(?[0-9]{3}[ .)]*)?[0-9]{3}[ .)]*[0-9]{4}  # phone number
  | [:8][oO']?[)\](\[dDpP:]                                      # emoticon, eyes first
  | [)\](\[dDpP:][oO']?[:8]                                      # emoticon, mouth first
  | [A-Za-z][A-Za-z'_]+[A-Za-z]                                  # word with apostrophes
  | [0-9]+[,.:][0-9]+                                            # number
  | [A-Za-z0-9_]+                                                # word
  | \.(?:\ *\.)+                                                 # ellipsis
  | \S                                                           # anything else
""", re.VERBOSE)


@functools.lru_cache(maxsize=1)
def _nltk_tokenizer():
    # deferred: NLTK costs ~0.3 s to import and is only asked about text outside the alphabet
    from nltk.tokenize import TweetTokenizer

    return TweetTokenizer(preserve_case=True)


def tokenize(text: str) -> list[str]:
    """``TweetTokenizer(preserve_case=True).tokenize(text)``: one regex pass over gpt_norm's alphabet,
    NLTK itself for any other text (a character outside the alphabet, or ``http``)."""
    if ALPHABET.fullmatch(text) and not _SCHEME.search(text):
        if _RUNS.search(text):
            text = _RUNS.sub(r"\1\1\1", text)
        return _TOKEN.findall(text)
    return _nltk_tokenizer().tokenize(text)
