"""One dump record -> the compact record the pipeline shards, tolerating 2005-2024 schema drift.

Only the fields the extraction uses are decoded (:class:`RawComment` / :class:`RawSubmission`,
msgspec Structs: the rest of each Pushshift record is skipped by the parser without building Python
objects). Drift handled here, each case counted (``drift_*``): ``created_utc`` as int, str or float;
ids with or without ``t1_``/``t3_`` prefixes; missing ``score`` (-> 0, as the original's ``'None'``
-> 0) and ``subreddit`` (-> from ``permalink``, else empty); ``_meta`` fields (ignored);
``num_comments`` missing (kept: we cannot tell). A score / created_utc / num_comments that is not
finite or does not fit Parquet's int64 (``1e999``, ``"1e999"``, ``"nan"``) raises :class:`BadNumber`:
the reader counts the record as ``bad_number`` and names its line.

Compact records (what :func:`threads.build_sessions` reads): comments ``{"k": "c", "id", "p"
parent, "l" link, "s" score, "t" created, "r" subreddit, "b" body, "a" author}``; submissions
``{"k": "s", "id", "l", "s", "t", "r", "ti" title, "st" selftext, "n" num_comments, "a"}``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import msgspec

_INT64 = 2**63


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
    if s[:3] in ("t1_", "t3_"):
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


def coerce_raw_comment(rec: RawComment, counters: Counter) -> dict | None:
    if rec.meta is not msgspec.UNSET:
        counters["drift_meta_field"] += 1
    cid = _bare_id(rec.id, "t1_", counters, "id")
    link = _bare_id(rec.link_id, "t3_", counters, "link_id")
    parent = rec.parent_id
    body = rec.body
    if cid is None or link is None or not parent or not isinstance(body, str):
        counters["missing_field"] += 1
        return None
    parent = str(parent)
    if not parent.startswith(("t1_", "t3_")):
        # bare parent ids are ambiguous; a parent equal to the link is the submission
        parent = link if "t3_" + parent == link else "t1_" + parent
    return {
        "k": "c", "id": cid, "p": parent, "l": link, "s": _score(rec.score, counters),
        "t": _created(rec.created_utc, counters), "r": _subreddit(rec, counters),
        "b": body, "a": str(rec.author or ""),
    }


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


def coerce_raw_submission(rec: RawSubmission, counters: Counter) -> dict | None:
    if rec.meta is not msgspec.UNSET:
        counters["drift_meta_field"] += 1
    sid = _bare_id(rec.id, "t3_", counters, "id")
    if sid is None:
        counters["missing_field"] += 1
        return None
    return {
        "k": "s", "id": sid, "l": sid, "s": _score(rec.score, counters),
        "t": _created(rec.created_utc, counters), "r": _subreddit(rec, counters),
        "ti": str(rec.title or ""), "st": str(rec.selftext or ""),
        "n": _num_comments(rec.num_comments, counters), "a": str(rec.author or ""),
    }


def _coerce_dict(rec: dict, raw_type: type, coerce, counters: Counter) -> dict | None:
    try:
        return coerce(msgspec.convert(rec, raw_type), counters)
    except BadNumber:
        counters["bad_number"] += 1
        return None


def coerce_comment(rec: dict, counters: Counter) -> dict | None:
    """A raw comment dict -> the compact record the pipeline shards; None (counted) when unusable:
    ``missing_field``, or ``bad_number`` for a non-finite / overflowing score or created_utc."""
    return _coerce_dict(rec, RawComment, coerce_raw_comment, counters)


def coerce_submission(rec: dict, counters: Counter) -> dict | None:
    """A raw submission dict -> its compact record; None (counted) when unusable."""
    return _coerce_dict(rec, RawSubmission, coerce_raw_submission, counters)
