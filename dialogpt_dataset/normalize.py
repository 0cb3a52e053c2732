"""DialoGPT's text rules and filters: every rejection is a named, counted rule.

The rules follow ``reddit_extractor/src/reddit.py`` of microsoft/DialoGPT run with its
``configs/Makefile.local`` settings (``--clean True --min_score 1 --min_depth 2 --max_depth 5
--leaves_only 1``; ``--leaves_only 0`` for the test months). ``RULES`` lists them in the order they
are applied; the build prints their counts and writes them into the dataset card.

Comment rules (the original's extract stage; a rejected comment is not part of any thread):

* ``deleted``       body is ``[deleted]`` (original filter 1).
* ``removed``       body is ``[removed]`` (ours: Pushshift marks moderator removals this way since
  ~2014; the original only knew ``[deleted]``).
* ``quote``         body contains ``>`` or ``&gt;`` (original filter 3: quoted replies).
* ``bot``           author looks like a bot (``AutoModerator``, names ending in ``bot``) or the body
  says "I am a bot" (ours).
* ``non_ascii``     more than 10% of the letters/digits are non-ASCII (ours: the original strips
  such characters in normalisation and keeps the fragments; we drop mostly non-English text).
* ``too_short``     fewer than 2 words after minimal normalisation (original filter 2).

Instance rules (the original's conv stage, ``filter_instance`` with ``--clean``); the text has gone
through :func:`gpt_norm` first:

* ``empty_target``  the response has no token left (``len(tgt.split()) <= 1`` with its weight).
* ``long_word``     a response token longer than 30 characters.
* ``too_long``      source + target longer than 200 tokens, counted as the original counts its TSV
  fields (weights and `` EOS `` separators included).
* ``url``           ``__url__`` anywhere in the instance (the original drops every instance with a
  URL, which also removes URL-only turns).
* ``tags``          a bracket or parenthesis anywhere (markdown links ``[x](y)``, emoticons too).
* ``all_caps``      five upper-case letters in a row anywhere ("yelling").
* ``repetition``    a response token repeated three times in a row.
* ``reserved_eos``  a turn contains the token ``EOS`` (ours: it is the legacy TSV's turn separator).

Text rules (:func:`gpt_norm`, applied to every turn of a kept instance; not filters):

* words starting with ``#`` are dropped; a word containing ``http`` is cut there and ``__url__``
  appended (``see:http://x`` -> ``see: __url__``);
* backslashes removed; ``b/c`` ``j/k`` ``w/o`` ``w/`` expanded;
* every character outside ``A-Za-z0-9()[]:,.!?'`` and curly double quotes becomes a space (this
  strips non-ASCII text; the literal word ``URL`` turns into ``__url__``, a quirk kept on purpose);
* tokenised as NLTK's ``TweetTokenizer(preserve_case=True)`` does (:func:`tokenize`, the same tokens in one
  regex pass: :mod:`dialogpt_dataset.tokenizer`), joined by spaces.

Offensive words (:mod:`dialogpt_dataset.rules`, flashtext semantics): in the training months a turn
containing one gets weight 0.0 (kept as context, never trained on), counted as ``offensive_turn``; in
the test months the instance is dropped (``offensive``), as in the original. The original's shipped
lists are empty (its authors could not release theirs): the ``default`` preset uses our own, the
``original`` preset none. ``removed``, ``bot`` and ``non_ascii`` are project-only, switchable rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dialogpt_dataset.tokenizer import tokenize

URL_TOKEN = "__url__"
MAX_TURN_WORDS = 30  # --max_len 30 --max_len_type w ("30 words means roughly 70 characters")
MAX_INSTANCE_TOKENS = 200
MAX_WORD_CHARS = 30

#: (name, stage, description) in application order; the dataset card's table is built from this.
RULES: list[tuple[str, str, str]] = [
    ("bad_json", "read", "malformed JSON line skipped"),
    ("json_too_deep", "read", "JSON nested deeper than ~1000 levels: line skipped"),
    ("bad_number", "read", "score/created_utc/num_comments not finite or not int64 (1e999, NaN)"),
    ("empty_dump_files", "read", "empty RS/RC file read as no records (--allow-empty-months)"),
    ("missing_field", "read", "record lacks id / link_id / parent_id / body"),
    ("submission_few_comments", "read", "submission with num_comments < 2 (original RS filter 1)"),
    ("deleted", "comment", "body is [deleted]"),
    ("removed", "comment", "body is [removed]"),
    ("quote", "comment", "body quotes with '>' / '&gt;'"),
    ("bot", "comment", "author or body looks like a bot"),
    ("non_ascii", "comment", "more than 10% non-ASCII letters"),
    ("too_short", "comment", "fewer than 2 words"),
    ("no_submission_in_month", "thread", "comment whose submission is not in this month's RS file"),
    ("not_in_keys", "instance", "instance id not in --keys-file"),
    ("not_a_leaf", "instance", "target has replies (training months use leaves only)"),
    ("bad_subreddit", "instance", "subreddit in the blocklist"),
    ("low_score", "instance", "target score < 1"),
    ("target_too_long", "instance", "target longer than 30 words"),
    ("min_depth", "instance", "fewer than 2 turns"),
    ("offensive", "instance", "test months: offensive word in the response"),
    ("empty_target", "instance", "empty response after normalisation"),
    ("long_word", "instance", "response token longer than 30 characters"),
    ("too_long", "instance", "more than 200 tokens"),
    ("url", "instance", "contains a URL"),
    ("tags", "instance", "brackets / markdown links"),
    ("all_caps", "instance", "5+ capitals in a row"),
    ("repetition", "instance", "a token repeated 3 times in a row"),
    ("reserved_eos", "instance", "contains the token EOS (the legacy TSV's turn separator; ours, always on)"),
    ("multiref_too_few_refs", "test", "test context with fewer than --min-refs distinct replies"),
]
RULE_NAMES = [r[0] for r in RULES]
COMMENT_RULES = [r[0] for r in RULES if r[1] == "comment"]

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9()\[\]:,.!?'“” ]")
#: a text's UTF-8 bytes -> "A" for each upper-case ASCII letter, "a" for anything else: five
#: capitals in a row (the all_caps rule, ``[A-Z]{5}``) are then one substring test
_CAPITALS = bytes(65 if 65 <= b <= 90 else 97 for b in range(256))
_TWO_WORDS = re.compile(r"\S\s+\S")
_BOT_NAMES = {"automoderator", "autotldr", "remindmebot", "totesmessenger", "snapshillbot", "tweetposter"}


def minimal_norm(text: str) -> str:
    """The extract-stage normalisation: drop backslashes, fold newlines and tabs to spaces."""
    return text.replace("\\", "").replace("\n", " ").replace("\r", " ").replace("\t", " ")


#: a text of plain words, one space apart (letters and apostrophes, then at most one ``, ! ? .``),
#: whose apostrophes all stand between two letters (:func:`_plain`): no emoticon, URL, number or
#: ellipsis can form (a ``.`` is followed by a space or the end), so each word is one token plus its
#: split-off punctuation, the tokeniser's answer without asking it
_PLAIN_WORDS = re.compile(r"[A-Za-z']+[,!?.]?(?: [A-Za-z']+[,!?.]?)*")
_LOOSE_APOSTROPHE = re.compile(r"(?<![A-Za-z])'|'(?![A-Za-z])")


def _drop_tags_and_urls(text: str) -> str:
    """Hashtags dropped, ``http...`` cut to `` __url__`` (word by word, as the original does)."""
    if "#" not in text and "http" not in text.lower():  # nothing to do: only re-space the words
        return " ".join(text.split())
    words = []
    for word in text.split():
        if word[0] == "#":  # the original drops hashtags
            continue
        i = word.lower().find("http")
        if i >= 0:
            word = word[:i] + " " + URL_TOKEN
        words.append(word.strip())
    return " ".join(words)


def text_rules(text: str) -> str:
    """:func:`gpt_norm` up to its tokeniser: tags and URLs, backslashes, ``b/c`` and friends, the
    allowed characters. What it returns is over :data:`tokenizer.ALPHABET`, apart from ``http``
    that a removed backslash or an expanded ``w/`` joined together (the tokeniser asks NLTK then)."""
    text = _drop_tags_and_urls(text)
    if "\\" in text:
        text = text.replace("\\", "")
    if "/" in text:
        text = text.replace("b/c", "because").replace("j/k", "just kidding").replace("w/o", "without")
        text = text.replace("w/", "with")
    if "_" in text:
        text = text.replace("__mention__", "MENTION").replace(URL_TOKEN, "URL")
    text = _NOT_ALLOWED.sub(" ", text)
    if "MENTION" in text or "URL" in text:
        text = text.replace("MENTION", "__mention__").replace("URL", URL_TOKEN)
    return text


def _plain(text: str) -> bool:
    return _PLAIN_WORDS.fullmatch(text) is not None and not ("'" in text and _LOOSE_APOSTROPHE.search(text))


def _has_triggers(plain: str) -> bool:
    """What turns a plain text into something other than its words: ``http`` (cut to ``__url__``) and
    the words ``URL`` / ``MENTION`` (turned into ``__url__`` / ``__mention__``)."""
    return "http" in plain.lower() or "URL" in plain or "MENTION" in plain


def gpt_norm(text: str) -> str:
    """The conv-stage normalisation (``gpt_norm_sentence`` of the original), see the module doc: the
    tokens joined by single spaces (no space at either end).

    It runs on every turn of every candidate instance (the extraction's hottest function). A text of
    plain words (most turns) needs none of the text rules: it is split into its words and trailing
    ``, ! ? .`` by string methods; any other text goes through :func:`text_rules`, then the same
    shortcut or the tokeniser."""
    if not _plain(text) or _has_triggers(text):
        text = text_rules(text)
        if not _plain(text):
            # the text rules leave a run of spaces where they dropped a character (an emoji, a
            # slash): when that is all, the words are plain once re-spaced (no token of the
            # tokeniser's spans a space but an ellipsis' or a phone number's, and neither can form)
            squeezed = " ".join(text.split())
            if squeezed == text or not _plain(squeezed):
                # tokens of an ellipsis or phone number may hold runs of spaces: re-space them
                return " ".join(" ".join(tokenize(text)).split())
            text = squeezed
    return _split_punct(text)


def _split_punct(plain: str) -> str:
    # every , ! ? . ends a word of a plain text: split it off
    return plain.replace(",", " ,").replace("!", " !").replace("?", " ?").replace(".", " .")


def turn_of(text: str) -> tuple[str, int, int]:
    """(:func:`gpt_norm` of ``text``, its token count, its :func:`turn_flags`): what the extraction
    keeps per turn, in one call. A plain text (most turns) has no bracket and no ``__url__``: only
    all_caps and reserved_eos can apply to it."""
    if _plain(text) and not _has_triggers(text):
        text = _split_punct(text)
        flags = EOS_FLAG if "EOS" in text and "EOS" in text.split() else 0
        if b"AAAAA" in text.encode().translate(_CAPITALS):
            flags |= CAPS_FLAG
        return text, text.count(" ") + 1, flags
    text = gpt_norm(text)
    # gpt_norm joins its tokens by single spaces: the token count is the spaces' plus one
    return text, text.count(" ") + 1 if text else 0, turn_flags(text)


def is_bot(author: str | None, body: str) -> bool:
    a = (author or "").lower()
    if a in _BOT_NAMES or a.endswith("bot") or a.endswith("_bot"):
        return True
    body = body.lower()
    return "i am a bot" in body or "i'm a bot" in body


def mostly_non_ascii(text: str) -> bool:
    if text.isascii():
        return False
    alnum = [c for c in text if c.isalnum()]
    if not alnum:
        return False
    return sum(1 for c in alnum if ord(c) > 127) > 0.1 * len(alnum)


#: the project-only comment rules (see :mod:`dialogpt_dataset.rules`); all on unless told
ALL_COMMENT_SWITCHES = frozenset({"removed", "bot", "non_ascii"})


def comment_rule(body: str, author: str | None = None, enabled: frozenset[str] = ALL_COMMENT_SWITCHES) -> str | None:
    """Name of the first comment rule ``body`` breaks, or None when the comment is usable.

    ``enabled`` names the project-only rules switched on; the original's rules always apply."""
    if body == "[deleted]":
        return "deleted"
    if body == "[removed]" and "removed" in enabled:
        return "removed"
    if ">" in body or "&gt;" in body:
        return "quote"
    if "bot" in enabled and is_bot(author, body):
        return "bot"
    if "non_ascii" in enabled and mostly_non_ascii(body):
        return "non_ascii"
    # == len(minimal_norm(body).split()) < 2: str.split() already splits at \n \r \t, and \s is
    # exactly the whitespace str.split() splits at
    if not _TWO_WORDS.search(body.replace("\\", "") if "\\" in body else body):
        return "too_short"
    return None


def too_long_turn(text: str) -> bool:
    """The original's ``len(c['body'].split()) > max_len`` on the minimally normalised body."""
    # n words need >= 2n - 1 characters: a short text is never split
    return len(text) > 2 * MAX_TURN_WORDS and len(text.split(None, MAX_TURN_WORDS)) > MAX_TURN_WORDS


def too_long_body(body: str) -> bool:
    """``too_long_turn(minimal_norm(body))``: of minimal_norm's changes only the dropped backslashes
    count (``\\n \\r \\t`` -> space changes neither the length nor the words), and a short body is
    never too long."""
    if len(body) <= 2 * MAX_TURN_WORDS:
        return False
    return too_long_turn(body.replace("\\", "") if "\\" in body else body)


#: bits of :func:`turn_flags`: the instance rules that look at every turn (each can only match
#: inside one turn, since turns are joined by a space)
URL_FLAG, TAGS_FLAG, CAPS_FLAG, EOS_FLAG = 1, 2, 4, 8


def turn_flags(text: str) -> int:
    """Which of ``url``, ``tags``, ``all_caps`` and ``reserved_eos`` a normalised turn breaks, as bits:
    computed once per comment, however many sessions it is a context turn of."""
    flags = EOS_FLAG if "EOS" in text and "EOS" in text.split() else 0
    if URL_TOKEN in text:
        flags |= URL_FLAG
    if "(" in text or ")" in text or "[" in text or "]" in text:
        flags |= TAGS_FLAG
    # (string tests and one bytes translation: a third of what one regex scan per rule cost)
    if b"AAAAA" in text.encode().translate(_CAPITALS):
        flags |= CAPS_FLAG
    return flags


def instance_rule(texts: Sequence[str], weighted: bool = True) -> str | None:
    """First instance rule broken by a normalised session (oldest turn first, last = response).

    ``weighted`` says whether the original's TSV carried ``1.0``/``0.0`` weights in front of each
    turn (training months) or not (test months); its token counts include them, and so do ours.
    """
    flags = 0
    for t in texts:
        flags |= turn_flags(t)
    return rule_of_turns(sum(len(t.split()) for t in texts), len(texts), flags, texts[-1].split(), weighted)


def rule_of_turns(tokens: int, n: int, flags: int, tgt_toks: list[str], weighted: bool = True) -> str | None:
    """:func:`instance_rule` from the turns' token count, their number, their :func:`turn_flags` or-ed
    together and the response's tokens (what the extraction keeps per comment instead of re-splitting)."""
    w = 1 if weighted else 0
    m = len(tgt_toks)
    if m + w <= 1:
        return "empty_target"
    if max(map(len, tgt_toks)) > MAX_WORD_CHARS:  # not empty: the rule above saw to that
        return "long_word"
    # the original counts its TSV fields: every turn, a weight per turn, an EOS between source turns
    if tokens + w * n + (n - 2 if n > 2 else 0) > MAX_INSTANCE_TOKENS:
        return "too_long"
    if flags & URL_FLAG:
        return "url"
    if flags & TAGS_FLAG:
        return "tags"
    if flags & CAPS_FLAG:
        return "all_caps"
    # the original scans the response *with* its weight token; a weight never repeats 3 times alone
    if m > 2 and len(set(tgt_toks)) < m - 1 and any(  # 3 in a row need >= 2 repeated tokens
            a == b == c for a, b, c in zip(tgt_toks, tgt_toks[1:], tgt_toks[2:])):
        return "repetition"
    if flags & EOS_FLAG:
        return "reserved_eos"
    return None
