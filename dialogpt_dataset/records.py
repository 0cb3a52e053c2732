"""One dump record -> the compact record the pipeline shards, tolerating 2005-2024 schema drift.

Only the fields the extraction uses are decoded (:class:`RawComment` / :class:`RawSubmission`,
msgspec Structs: the rest of each Pushshift record is skipped by the parser without building Python
objects). Drift handled here, each case counted (``drift_*``): ``created_utc`` as int, str or float;
ids with or without ``t1_``/``t3_`` prefixes; missing ``score`` (-> 0, as the original's ``'None'``
-> 0) and ``subreddit`` (-> from ``permalink``, else empty); ``_meta`` fields (ignored);
``num_comments`` missing (kept: we cannot tell). A score / created_utc / num_comments that is not
finite or does not fit Parquet's int64 (``1e999``, ``"1e999"``, ``"nan"``) raises :class:`BadNumber`:
the reader counts the record as ``bad_number`` and names its line.

Compact records (what stage 1 shards and :func:`threads.build_sessions` reads) are msgspec Structs
with typed fields, :class:`Comment` and :class:`Submission`, written as JSON arrays: stage 2 decodes
each line straight into its Struct (a third of what a dict of named fields cost to write, read and
hold; they are never tracked by the garbage collector).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import msgspec

_INT64 = 2**63
_INT64_MIN = -_INT64
_PREFIXES = ("t1_", "t3_")
_UNSET = msgspec.UNSET


class Comment(msgspec.Struct, array_like=True, gc=False):
    """A usable comment: ids with their ``t1_``/``t3_`` prefixes, numbers that fit int64."""

    id: str
    parent: str  # t1_... (a comment) or t3_... (the submission: a top-level comment)
    link: str  # t3_... of its thread
    score: int
    created: int
    subreddit: str
    body: str
    author: str


class Submission(msgspec.Struct, array_like=True, gc=False):
    """A usable submission (its ``id`` is its thread's link id)."""

    id: str
    score: int
    created: int
    subreddit: str
    title: str
    selftext: str
    num_comments: int | None  # None: the dump did not say
    author: str

    @property
    def link(self) -> str:
        return self.id


class BadNumber(Exception):
    """A used numeric field is non-finite or does not fit int64 (counted as ``bad_number``)."""


class _RawRecord(msgspec.Struct):
    """The fields comments and submissions share; every other field of a line is skipped unparsed
    into Python objects (decoding a whole Pushshift record cost more than the rest of stage 1).
    ``Any`` because each of them drifted in type over the years (see the module doc)."""

    id: Any = None
    score: Any = None
    created_utc: Any = None
    subreddit: Any = None
    permalink: Any = None
    author: Any = None
    meta: Any = msgspec.field(default=msgspec.UNSET, name="_meta")


class RawComment(_RawRecord):
    """The fields of a comment the extraction uses."""

    link_id: Any = None
    parent_id: Any = None
    body: Any = None


class RawSubmission(_RawRecord):
    """The fields of a submission the extraction uses."""

    title: Any = None
    selftext: Any = None
    num_comments: Any = None


def _bare_id(value, prefix: str, counters: Counter, what: str) -> str | None:
    """Canonical ``t1_``/``t3_`` id. Dumps carry ``id`` bare and ``link_id`` prefixed, mostly."""
    if value is None or value == "":
        return None
    s = str(value)
    if s[:3] in _PREFIXES:
        if s[:3] != prefix:
            return None
        if what == "id":
            counters["drift_id_prefixed"] += 1
        return s
    if what != "id":
        counters[f"drift_{what}_bare"] += 1
    return prefix + s


def _checked_int(value: int | float, field: str) -> int:
    """``value`` as an int that Parquet's int64 holds; :class:`BadNumber` for inf/NaN/overflow."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadNumber(f"{field} is {value!r}")
        value = int(value)
    if not -_INT64 <= value < _INT64:
        raise BadNumber(f"{field} {str(value)[:30]} does not fit int64")
    return int(value)  # a bool is an int: True -> 1, as the original's int()


def _str_number(value: str, field: str) -> float | None:
    """A numeric string as a float (None when it is no number); non-finite ones are bad numbers."""
    try:
        f = float(value)
    except ValueError:
        return None
    if not math.isfinite(f):
        raise BadNumber(f"{field} is {value[:30]!r}")
    return f


def _created(value, counters: Counter) -> int:
    if type(value) is str and len(value) <= 15 and value.isascii() and value.isdigit():
        counters["drift_created_utc_str"] += 1  # (the usual drift: float() below gives this same int)
        return int(value)
    if isinstance(value, bool) or value is None:
        counters["drift_created_utc_missing"] += 1
        return 0
    if isinstance(value, int):
        return _checked_int(value, "created_utc")
    if isinstance(value, float):
        counters["drift_created_utc_float"] += 1
        return _checked_int(value, "created_utc")
    counters["drift_created_utc_str"] += 1
    f = _str_number(str(value), "created_utc")
    if f is None:
        counters["drift_created_utc_missing"] += 1
        return 0
    return _checked_int(f, "created_utc")


def _score(value, counters: Counter) -> int:
    if isinstance(value, (int, float)):  # bool too: int(True) as the original's int()
        return _checked_int(value, "score")
    if value is not None and value != "None":
        s = str(value)
        try:
            return _checked_int(int(s), "score")
        except ValueError:
            _str_number(s, "score")  # "1e999" / "nan" are bad numbers, "abc" is a missing score
    counters["drift_score_missing"] += 1
    return 0


def _subreddit(rec: RawComment | RawSubmission, counters: Counter) -> str:
    sub = rec.subreddit
    if sub:
        return str(sub).lower()
    link = str(rec.permalink or "")
    parts = link.split("/")
    if len(parts) > 2 and parts[1] == "r":  # the original takes permalink.split('/')[2]
        return parts[2].lower()
    counters["drift_subreddit_missing"] += 1
    return ""


def coerce_raw_comment(rec: RawComment, counters: Counter) -> Comment | None:
    """A decoded comment -> its compact record, or None (``missing_field``); :class:`BadNumber` for a
    bad score / created_utc. Each field's common shape (a bare string id, a ``t3_`` link, an int64
    score and time, a string subreddit) is taken as it is; any other goes through the drift helpers
    above, which count it, in the same order (score, then created_utc, then subreddit)."""
    if rec.meta is not _UNSET:
        counters["drift_meta_field"] += 1
    cid, link, parent, body = rec.id, rec.link_id, rec.parent_id, rec.body
    if type(cid) is str and cid and not cid.startswith(_PREFIXES):
        cid = "t1_" + cid
    else:
        cid = _bare_id(cid, "t1_", counters, "id")
    if type(link) is not str or not link.startswith("t3_"):
        link = _bare_id(link, "t3_", counters, "link_id")
    if cid is None or link is None or not parent or not isinstance(body, str):
        counters["missing_field"] += 1
        return None
    if type(parent) is not str:
        parent = str(parent)
    if not parent.startswith(_PREFIXES):
        # bare parent ids are ambiguous; a parent equal to the link is the submission
        parent = link if "t3_" + parent == link else "t1_" + parent
    score, created, sub, author = rec.score, rec.created_utc, rec.subreddit, rec.author
    if type(score) is not int or not _INT64_MIN <= score < _INT64:
        score = _score(score, counters)
    if type(created) is not int or not _INT64_MIN <= created < _INT64:
        # the usual drifts, taken as _created takes them (a finite float in int64's range is one
        # whose int() is in it too; NaN, inf and the rest go to _created)
        if type(created) is str and len(created) <= 15 and created.isdigit() and created.isascii():
            counters["drift_created_utc_str"] += 1
            created = int(created)
        elif type(created) is float and _INT64_MIN <= created < _INT64:
            counters["drift_created_utc_float"] += 1
            created = int(created)
        else:
            created = _created(created, counters)
    sub = sub.lower() if type(sub) is str and sub else _subreddit(rec, counters)
    return Comment(cid, parent, link, score, created, sub, body, author if type(author) is str else str(author or ""))


def _num_comments(value, counters: Counter) -> int | None:
    n = None
    if isinstance(value, (int, float)):
        n = _checked_int(value, "num_comments")
    elif value is not None:
        s = str(value)
        try:
            n = int(s)
        except ValueError:
            _str_number(s, "num_comments")
    if n is None:
        counters["drift_num_comments_missing"] += 1
    return n


def coerce_raw_submission(rec: RawSubmission, counters: Counter) -> Submission | None:
    if rec.meta is not msgspec.UNSET:
        counters["drift_meta_field"] += 1
    sid = _bare_id(rec.id, "t3_", counters, "id")
    if sid is None:
        counters["missing_field"] += 1
        return None
    score = _score(rec.score, counters)  # (in this order: each may count drift or raise BadNumber)
    created = _created(rec.created_utc, counters)
    sub = _subreddit(rec, counters)
    return Submission(sid, score, created, sub, str(rec.title or ""), str(rec.selftext or ""),
                      _num_comments(rec.num_comments, counters), str(rec.author or ""))


def _coerce_dict(rec: dict, raw_type: type, coerce, counters: Counter):
    try:
        return coerce(msgspec.convert(rec, raw_type), counters)
    except BadNumber:
        counters["bad_number"] += 1
        return None


def coerce_comment(rec: dict, counters: Counter) -> Comment | None:
    """A raw comment dict -> the compact record the pipeline shards; None (counted) when unusable:
    ``missing_field``, or ``bad_number`` for a non-finite / overflowing score or created_utc."""
    return _coerce_dict(rec, RawComment, coerce_raw_comment, counters)


def coerce_submission(rec: dict, counters: Counter) -> Submission | None:
    """A raw submission dict -> its compact record; None (counted) when unusable."""
    return _coerce_dict(rec, RawSubmission, coerce_raw_submission, counters)
