"""Open Pushshift monthly dumps and stream their records, tolerating 2005-2024 schema drift.

Files are ``RS_YYYY-MM.<ext>`` (submissions) and ``RC_YYYY-MM.<ext>`` (comments), ``ext`` one of
``zst`` (needs a 2**31 window, as the original's ``max_window_size``), ``bz2``, ``xz``, ``gz``,
or plain NDJSON (``json``, ``ndjson``, ``jsonl`` or none); ``RS_v2_YYYY-MM.xz`` (the 2005-2010
re-dumps) is accepted too. Everything is streamed line by line: a month is tens of GB.

Bad input never passes silently, and never stops a build with a traceback:

* a corrupt or truncated compressed file raises :class:`DumpError` naming the file and the line
  reached;
* a file whose first record is not a JSON object is "not a Pushshift NDJSON dump";
* an empty dump (0 bytes, or no line once decompressed: a failed download) raises
  :class:`DumpError` naming it, unless ``--allow-empty-months`` (then a warning and a count);
* a line that cannot be used is skipped, counted under a rule of :data:`READ_RULES` and named
  (``file:line``, first :data:`MAX_NAMED_SKIPS` per file) in a warning on :data:`log`: malformed
  JSON (``bad_json``), JSON nested deeper than the decoder's ~1000 levels (``json_too_deep``), a
  score / created_utc / num_comments that is not finite or does not fit int64 (``bad_number``:
  ``1e999``, ``"1e999"``, ``NaN``); more than ``max_bad_lines`` unreadable lines raise
  :class:`DumpError` naming the last one.

Speed: only the fields the extraction uses are decoded (msgspec Structs, :class:`RawComment` /
:class:`RawSubmission`); the rest of each record is skipped by the parser without building Python
objects, which made reading about 3x cheaper than ``json.loads`` of the whole record.

Schema drift handled by :func:`coerce_comment` / :func:`coerce_submission` (each counted):
``created_utc`` as int, str or float; ids with or without ``t1_``/``t3_`` prefixes; missing
``score`` (-> 0, as the original's ``'None'`` -> 0) and ``subreddit`` (-> from ``permalink``, else
empty); ``_meta`` fields (ignored); ``num_comments`` missing (kept: we cannot tell).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import lzma
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import zstandard

MAX_WINDOW_SIZE = 2**31
COMPRESSIONS = ("zst", "bz2", "xz", "gz", "json", "ndjson", "jsonl", "")
_NAME = re.compile(r"^(RS|RC)_(?:v2_)?(\d{4}-(?:0[1-9]|1[0-2]))(?:\.(zst|bz2|xz|gz|json|ndjson|jsonl))?$")


class DumpError(ValueError):
    """A dump cannot be read; the message names the file (and line when known)."""


def parse_dump_name(name: str) -> tuple[str, str, str] | None:
    """``RC_2006-01.zst`` -> ("RC", "2006-01", "zst"); None when the name is not a dump's."""
    m = _NAME.match(name)
    return (m.group(1), m.group(2), m.group(3) or "") if m else None


def find_month_files(dumps_dir: str | os.PathLike, month: str) -> tuple[Path | None, Path | None]:
    """(RS path, RC path) of ``month`` in ``dumps_dir``; either may be None when absent."""
    found: dict[str, Path] = {}
    d = Path(dumps_dir)
    if not d.is_dir():
        raise DumpError(f"{d}: --dumps is not a directory")
    for p in sorted(d.iterdir()):
        parsed = parse_dump_name(p.name)
        if parsed and parsed[1] == month:
            if parsed[0] in found:
                raise DumpError(f"{d}: two {parsed[0]} files for {month}: {found[parsed[0]].name}, {p.name}")
            found[parsed[0]] = p
    return found.get("RS"), found.get("RC")


def available_months(dumps_dir: str | os.PathLike) -> list[str]:
    d = Path(dumps_dir)
    return sorted({m[1] for p in d.iterdir() if (m := parse_dump_name(p.name))}) if d.is_dir() else []


class _ZstdRaw(io.RawIOBase):
    """Streaming zstd decompression that reads every frame and fails on a truncated one.

    ``ZstdDecompressor.stream_reader`` stops quietly at the end of the input even when a frame is
    incomplete (a truncated download would look like a short month), so frames are driven by hand.
    """

    def __init__(self, path):
        self.fh = open(path, "rb")
        self.dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
        self.dobj = self.dctx.decompressobj()
        self.out = memoryview(b"")
        self.in_frame = False
        self.done = False

    def readable(self) -> bool:
        return True

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self.dobj.decompress(data))
            self.in_frame = True
            if self.dobj.eof:  # a frame ended: the rest (if any) starts the next frame
                data = self.dobj.unused_data
                self.dobj = self.dctx.decompressobj()
                self.in_frame = False
            else:
                data = b""
        return b"".join(out)

    def readinto(self, b) -> int:
        while not len(self.out) and not self.done:
            chunk = self.fh.read(1 << 20)
            if not chunk:
                self.done = True
                if self.in_frame:
                    raise zstandard.ZstdError("input ends inside a zstd frame (truncated file)")
                break
            self.out = memoryview(self._feed(chunk))
        n = min(len(b), len(self.out))
        b[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def close(self) -> None:
        self.fh.close()
        super().close()


def open_dump(path: str | os.PathLike) -> io.BufferedIOBase:
    """A binary, decompressing, streaming reader for one dump file."""
    path = Path(path)
    parsed = parse_dump_name(path.name)
    ext = parsed[2] if parsed else path.suffix.lstrip(".")
    if ext == "zst":
        return io.BufferedReader(_ZstdRaw(path), buffer_size=1 << 20)
    if ext == "bz2":
        return bz2.open(path, "rb")
    if ext == "xz":
        return lzma.open(path, "rb")
    if ext == "gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


_DECODE_ERRORS = (zstandard.ZstdError, OSError, EOFError, lzma.LZMAError)
_INT64 = 2**63
#: skipped lines and empty files are logged here (one line each, ``file:line: skipped (rule): why``)
log = logging.getLogger(__name__)
#: skipped lines named one by one (a warning each) per file; the rest are only counted
MAX_NAMED_SKIPS = 10

#: the read-stage rules of this module, (name, description); each skipped record is counted under one
READ_RULES: list[tuple[str, str]] = [
    ("bad_json", "malformed JSON line skipped"),
    ("json_too_deep", "JSON nested deeper than the decoder's limit (~1000 levels): line skipped"),
    ("bad_number", "score / created_utc / num_comments not finite or outside int64 (e.g. 1e999, NaN)"),
    ("missing_field", "record lacks id / link_id / parent_id / body"),
]


class _BadNumber(Exception):
    """A used numeric field is non-finite or does not fit int64 (counted as ``bad_number``)."""


class RawComment(msgspec.Struct):
    """The fields of a comment the extraction uses; every other field of the line is skipped unparsed
    into Python objects (decoding a whole Pushshift record cost more than the rest of stage 1).
    ``Any`` because each of them drifted in type over the years (see the module doc)."""

    id: Any = None
    link_id: Any = None
    parent_id: Any = None
    body: Any = None
    score: Any = None
    created_utc: Any = None
    subreddit: Any = None
    permalink: Any = None
    author: Any = None
    meta: Any = msgspec.field(default=msgspec.UNSET, name="_meta")


class RawSubmission(msgspec.Struct):
    """The fields of a submission the extraction uses (see :class:`RawComment`)."""

    id: Any = None
    score: Any = None
    created_utc: Any = None
    subreddit: Any = None
    permalink: Any = None
    author: Any = None
    title: Any = None
    selftext: Any = None
    num_comments: Any = None
    meta: Any = msgspec.field(default=msgspec.UNSET, name="_meta")


_DECODERS = {
    None: msgspec.json.Decoder(),
    "c": msgspec.json.Decoder(RawComment),
    "s": msgspec.json.Decoder(RawSubmission),
}


def _reject_constant(name: str):
    raise _BadNumber(f"{name} is not a JSON number")


def _classify(exc: Exception, line: bytes) -> tuple[str, str]:
    """(rule, why) for a line that failed to decode. Only failed lines get here, so Python's json may
    look again: it names NaN/Infinity, and tells an array nested too deep from a plain one."""
    if isinstance(exc, RecursionError):
        return "json_too_deep", "nested deeper than the JSON decoder allows"
    if "Number out of range" in str(exc):
        return "bad_number", f"a number outside float range ({_first_line(exc)})"
    try:
        json.loads(line, parse_constant=_reject_constant)
    except RecursionError:
        return "json_too_deep", "nested deeper than the JSON decoder allows"
    except _BadNumber as e:
        return "bad_number", str(e)
    except ValueError:
        pass
    return "bad_json", _first_line(exc)


class _Skips:
    """Counts skipped lines and names the first :data:`MAX_NAMED_SKIPS` of a file (``file:line``);
    more than ``max_bad_lines`` unreadable ones (a bad number is readable) stop the file."""

    def __init__(self, path: Path, counters: Counter, max_bad_lines: int):
        self.path, self.counters, self.max_bad_lines = path, counters, max_bad_lines
        self.named = self.unreadable = 0

    def skip(self, line_no: int, rule: str, detail: str) -> None:
        self.counters[rule] += 1
        self.named += 1
        if self.named <= MAX_NAMED_SKIPS:
            more = " (further skipped lines of this file are only counted)" if self.named == MAX_NAMED_SKIPS else ""
            log.warning("%s:%d: skipped (%s): %s%s", self.path, line_no, rule, detail, more)
        if rule != "bad_number":
            self.unreadable += 1
            if self.unreadable > self.max_bad_lines:
                raise DumpError(f"{self.path}:{line_no}: more than --max-bad-lines={self.max_bad_lines} "
                                "unreadable lines (malformed or too deeply nested JSON)")


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _empty_dump(path: Path, counters: Counter, allow_empty: bool) -> None:
    """A dump without a single line is a failed download far more often than a quiet month."""
    if not allow_empty:
        raise DumpError(f"{path}: empty dump (no records): re-download it, or pass --allow-empty-months "
                        "to build without it")
    counters["empty_dump_files"] += 1
    log.warning("%s: empty dump (no records), read as a month without these records (--allow-empty-months)", path)


def check_not_empty(path: str | os.PathLike, allow_empty: bool = False) -> None:
    """Fail before any work on a 0-byte dump file (checked for every month before stage 1 starts)."""
    path = Path(path)
    if path.stat().st_size == 0 and not allow_empty:
        raise DumpError(f"{path}: empty file (0 bytes): re-download it, or pass --allow-empty-months "
                        "to build without it")


def iter_records(
    path: str | os.PathLike,
    counters: Counter | None = None,
    max_bad_lines: int = 1000,
    *,
    kind: str | None = None,
    allow_empty: bool = False,
    count_as: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_no, record)`` for each usable JSON object line of a dump.

    ``kind=None`` yields whole records as dicts. ``kind="c"`` / ``"s"`` decodes only the fields the
    extraction uses and yields the compact records of :func:`coerce_comment` /
    :func:`coerce_submission` (unusable ones are counted and skipped): what stage 1 shards.

    A line that cannot be used never stops the build: it is counted under a rule of
    :data:`READ_RULES` and named (``file:line``) in a warning on :data:`log`, up to
    ``max_bad_lines`` unreadable ones. An empty dump (no line at all: a failed download) is a
    :class:`DumpError` unless ``allow_empty`` (then a warning, counted as ``empty_dump_files``).

    ``count_as`` names a counter of every non-blank line read (each is then either yielded or
    counted under a rule).
    """
    counters = counters if counters is not None else Counter()
    path = Path(path)
    decode = _DECODERS[kind].decode
    coerce = {None: None, "c": _coerce_comment, "s": _coerce_submission}[kind]
    skips = _Skips(path, counters, max_bad_lines)
    line_no = blank = 0
    seen_line = seen_record = False
    try:
        with open_dump(path) as raw:
            for line_no, line in enumerate(raw, start=1):
                try:
                    rec = decode(line)
                    if coerce is None and not isinstance(rec, dict):
                        raise msgspec.ValidationError(f"Expected `object`, got `{type(rec).__name__}`")
                except (msgspec.DecodeError, RecursionError) as e:  # ValidationError is a DecodeError
                    if not line.strip():
                        blank += 1
                        continue
                    seen_line = True
                    rule, why = _classify(e, line)
                    if not seen_record and rule == "bad_json":
                        raise DumpError(f"{path}:{line_no}: not a Pushshift NDJSON dump (first record is not a "
                                        f"JSON object: {why})") from None
                    skips.skip(line_no, rule, why)
                    continue
                seen_line = seen_record = True
                if coerce is None:
                    yield line_no, rec
                    continue
                try:
                    compact = coerce(rec, counters)
                except _BadNumber as e:
                    skips.skip(line_no, "bad_number", str(e))
                    continue
                if compact is not None:
                    yield line_no, compact
    except _DECODE_ERRORS as e:
        raise DumpError(f"{path}:{line_no + 1}: corrupt or truncated compressed data ({type(e).__name__}: {e})") from None
    finally:
        if count_as:  # once, not per line: this loop is the hot path of stage 1
            counters[count_as] += line_no - blank
    if not seen_line:
        _empty_dump(path, counters, allow_empty)


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
    """``value`` as an int that Parquet's int64 holds; :class:`_BadNumber` for inf/NaN/overflow."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _BadNumber(f"{field} is {value!r}")
        value = int(value)
    if not -_INT64 <= value < _INT64:
        raise _BadNumber(f"{field} {str(value)[:30]} does not fit int64")
    return int(value)  # a bool is an int: True -> 1, as the original's int()


def _str_number(value: str, field: str) -> float | None:
    """A numeric string as a float (None when it is no number); non-finite ones are bad numbers."""
    try:
        f = float(value)
    except ValueError:
        return None
    if not math.isfinite(f):
        raise _BadNumber(f"{field} is {value[:30]!r}")
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


def _coerce_comment(rec: RawComment, counters: Counter) -> dict | None:
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


def _coerce_submission(rec: RawSubmission, counters: Counter) -> dict | None:
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
    except _BadNumber:
        counters["bad_number"] += 1
        return None


def coerce_comment(rec: dict, counters: Counter) -> dict | None:
    """A raw comment dict -> the compact record the pipeline shards; None (counted) when unusable:
    ``missing_field``, or ``bad_number`` for a non-finite / overflowing score or created_utc."""
    return _coerce_dict(rec, RawComment, _coerce_comment, counters)


def coerce_submission(rec: dict, counters: Counter) -> dict | None:
    """A raw submission dict -> its compact record; None (counted) when unusable."""
    return _coerce_dict(rec, RawSubmission, _coerce_submission, counters)
