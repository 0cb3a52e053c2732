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

Records are decoded and coerced by :mod:`dialogpt_dataset.records` (only the fields the extraction
uses, schema drift counted); :func:`coerce_comment` / :func:`coerce_submission` are re-exported here.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import lzma
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from dialogpt_dataset.records import (
    BadNumber,
    RawComment,
    RawSubmission,
    coerce_comment,
    coerce_raw_comment,
    coerce_raw_submission,
    coerce_submission,
)

__all__ = ["COMPRESSIONS", "READ_RULES", "DumpError", "available_months", "check_not_empty", "coerce_comment",
           "coerce_submission", "find_month_files", "iter_records", "open_dump", "parse_dump_name"]

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


#: per kind: the decoder of a line and the coercion of what it decoded (None: whole records, as dicts)
_DECODERS = {
    None: msgspec.json.Decoder(),
    "c": msgspec.json.Decoder(RawComment),
    "s": msgspec.json.Decoder(RawSubmission),
}
_COERCE = {None: None, "c": coerce_raw_comment, "s": coerce_raw_submission}


def _reject_constant(name: str):
    raise BadNumber(f"{name} is not a JSON number")


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
    except BadNumber as e:
        return "bad_number", str(e)
    except ValueError:
        pass
    return "bad_json", _first_line(exc)


class _FileState:
    """One file's reading: blank lines seen, and the skipped ones, counted under their rule
    and named for the first :data:`MAX_NAMED_SKIPS` (``file:line``); more than ``max_bad_lines``
    unreadable ones (a bad number is readable) stop the file."""

    def __init__(self, path: Path, counters: Counter, max_bad_lines: int):
        self.path, self.counters, self.max_bad_lines = path, counters, max_bad_lines
        self.named = self.unreadable = self.blank = 0

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


def _records(state: _FileState, kind: str | None, allow_empty: bool, count_as: str | None) -> Iterator[tuple[int, Any]]:
    """(line_no, record) of each usable line of ``state.path``: decoded to a JSON object (``kind``
    None) or to a compact record (``kind`` "c" / "s"); every other non-blank line is skipped through
    ``state`` (or, before any record, says "not a dump"). One loop: this is the hot path of stage 1."""
    decode, coerce, counters, path = _DECODERS[kind].decode, _COERCE[kind], state.counters, state.path
    seen_record, line_no = False, 0
    try:
        with open_dump(path) as raw:
            for line_no, line in enumerate(raw, start=1):
                try:
                    rec = decode(line)
                    if kind is None and not isinstance(rec, dict):
                        raise msgspec.ValidationError(f"Expected `object`, got `{type(rec).__name__}`")
                except (msgspec.DecodeError, RecursionError) as e:  # ValidationError is a DecodeError
                    if not line.strip():
                        state.blank += 1
                        continue
                    rule, why = _classify(e, line)
                    if not seen_record and rule == "bad_json":
                        raise DumpError(f"{path}:{line_no}: not a Pushshift NDJSON dump (first record is not a "
                                        f"JSON object: {why})") from None
                    state.skip(line_no, rule, why)
                    continue
                seen_record = True
                if coerce is not None:
                    try:
                        rec = coerce(rec, counters)
                    except BadNumber as e:
                        state.skip(line_no, "bad_number", str(e))
                        continue
                    if rec is None:  # counted by the coercion
                        continue
                yield line_no, rec
    except _DECODE_ERRORS as e:
        raise DumpError(f"{path}:{line_no + 1}: corrupt or truncated compressed data ({type(e).__name__}: {e})") from None
    finally:
        if count_as:  # once, not per line
            counters[count_as] += line_no - state.blank
    if line_no == state.blank:
        _empty_dump(path, counters, allow_empty)


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
    return _records(_FileState(Path(path), counters, max_bad_lines), kind, allow_empty, count_as)
