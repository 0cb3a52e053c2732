"""Open Pushshift monthly dumps and stream their records, tolerating 2005-2024 schema drift.

Files are ``RS_YYYY-MM.<ext>`` (submissions) and ``RC_YYYY-MM.<ext>`` (comments), ``ext`` one of
``zst`` (needs a 2**31 window, as the original's ``max_window_size``), ``bz2``, ``xz``, ``gz``,
or plain NDJSON (``json``, ``ndjson``, ``jsonl`` or none); ``RS_v2_YYYY-MM.xz`` (the 2005-2010
re-dumps) is accepted too. Everything is streamed line by line: a month is tens of GB.

Bad input never passes silently:

* a corrupt or truncated compressed file raises :class:`DumpError` naming the file and the line
  reached;
* a file whose first record is not a JSON object is "not a Pushshift NDJSON dump";
* a malformed JSON line is skipped and counted (``bad_json``); more than ``max_bad_lines`` of them
  raise :class:`DumpError` naming the last one.

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
import lzma
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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


def iter_records(
    path: str | os.PathLike,
    counters: Counter | None = None,
    max_bad_lines: int = 1000,
    line_filter=None,
) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_no, record)`` for each JSON object line of a dump.

    ``line_filter(line_no) -> bool`` lets a task parse only its share of the lines (the others are
    decompressed but never parsed), which is how one month is split across tasks.
    """
    counters = counters if counters is not None else Counter()
    path = Path(path)
    line_no = 0
    bad = 0
    seen_record = False
    try:
        with open_dump(path) as raw:
            for line_no, line in enumerate(raw, start=1):
                if line_filter is not None and seen_record and not line_filter(line_no):
                    continue
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise ValueError("not an object")
                except ValueError as e:
                    if not seen_record:
                        raise DumpError(
                            f"{path}:{line_no}: not a Pushshift NDJSON dump (first record is not a JSON object: {e})"
                        ) from None
                    bad += 1
                    counters["bad_json"] += 1
                    if bad > max_bad_lines:
                        raise DumpError(
                            f"{path}:{line_no}: more than --max-bad-lines={max_bad_lines} malformed JSON lines"
                        ) from None
                    continue
                first = not seen_record
                seen_record = True
                if first and line_filter is not None and not line_filter(line_no):
                    continue
                yield line_no, rec
    except _DECODE_ERRORS as e:
        raise DumpError(f"{path}:{line_no + 1}: corrupt or truncated compressed data ({type(e).__name__}: {e})") from None
    except UnicodeDecodeError as e:
        raise DumpError(f"{path}:{line_no}: not UTF-8 text ({e})") from None


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


def _created(value, counters: Counter) -> int:
    if isinstance(value, bool) or value is None:
        counters["drift_created_utc_missing"] += 1
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        counters["drift_created_utc_float"] += 1
        return int(value)
    counters["drift_created_utc_str"] += 1
    try:
        return int(float(str(value)))
    except ValueError:
        counters["drift_created_utc_missing"] += 1
        return 0


def _score(value, counters: Counter) -> int:
    if value is None or value == "None":
        counters["drift_score_missing"] += 1
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        counters["drift_score_missing"] += 1
        return 0


def _subreddit(rec: dict, counters: Counter) -> str:
    sub = rec.get("subreddit")
    if sub:
        return str(sub).lower()
    link = str(rec.get("permalink") or "")
    parts = link.split("/")
    if len(parts) > 2 and parts[1] == "r":  # the original takes permalink.split('/')[2]
        return parts[2].lower()
    counters["drift_subreddit_missing"] += 1
    return ""


def coerce_comment(rec: dict, counters: Counter) -> dict | None:
    """A raw comment -> the compact record the pipeline shards; None (counted) when unusable."""
    if "_meta" in rec:
        counters["drift_meta_field"] += 1
    cid = _bare_id(rec.get("id"), "t1_", counters, "id")
    link = _bare_id(rec.get("link_id"), "t3_", counters, "link_id")
    parent = rec.get("parent_id")
    body = rec.get("body")
    if cid is None or link is None or not parent or not isinstance(body, str):
        counters["missing_field"] += 1
        return None
    parent = str(parent)
    if not parent.startswith(("t1_", "t3_")):
        # bare parent ids are ambiguous; a parent equal to the link is the submission
        parent = link if "t3_" + parent == link else "t1_" + parent
    return {
        "k": "c", "id": cid, "p": parent, "l": link, "s": _score(rec.get("score"), counters),
        "t": _created(rec.get("created_utc"), counters), "r": _subreddit(rec, counters),
        "b": body, "a": str(rec.get("author") or ""),
    }


def coerce_submission(rec: dict, counters: Counter) -> dict | None:
    if "_meta" in rec:
        counters["drift_meta_field"] += 1
    sid = _bare_id(rec.get("id"), "t3_", counters, "id")
    if sid is None:
        counters["missing_field"] += 1
        return None
    n = rec.get("num_comments")
    try:
        n = int(n) if n is not None else None
    except (TypeError, ValueError):
        n = None
    if n is None:
        counters["drift_num_comments_missing"] += 1
    return {
        "k": "s", "id": sid, "l": sid, "s": _score(rec.get("score"), counters),
        "t": _created(rec.get("created_utc"), counters), "r": _subreddit(rec, counters),
        "ti": str(rec.get("title") or ""), "st": str(rec.get("selftext") or ""), "n": n,
        "a": str(rec.get("author") or ""),
    }
