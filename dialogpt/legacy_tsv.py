"""Read and write the original DialoGPT / DSTC7 text formats, for users of the old code.

``train.tsv`` (the seed's ``prepro.py`` input), one instance per line::

    0.0 first turn EOS 1.0 second turn\t1.0 response

Each source turn is ``<weight> <text>``; turns are separated by `` EOS ``; the target column is
``<weight> <text>``. Multi-reference files (the seed's ``test.refs.txt`` written by
``create-multiref.py``, and DSTC7's refs file) share one shape::

    <key>\t<score>|<reference>\t<score>|<reference>...

where ``key`` is the source text (``test.refs.txt``) or a hash (DSTC7). Malformed rows raise
:class:`LegacyFormatError` naming the file and line; nothing is dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dialogpt.chat_format import Turn, TurnLike, as_turns

TURN_SEPARATOR = " EOS "


class LegacyFormatError(ValueError):
    """A line of a legacy file does not have the documented shape."""

    def __init__(self, path: str | os.PathLike, line_no: int, message: str):
        super().__init__(f"{path}:{line_no}: {message}")
        self.path = str(path)
        self.line_no = line_no


def _clean(text: str) -> str:
    # The formats have no escaping: a tab or newline inside a turn would silently change the
    # structure on the way back, so whitespace runs are folded to one space on write (a turn that
    # contains the separator word EOS is refused by format_train_line instead).
    return " ".join(text.split())


def _weighted(text: str, weight: float) -> str:
    return f"{float(weight):.1f} {_clean(text)}"


def _parse_weighted(piece: str, path, line_no: int) -> Turn:
    head, sep, text = piece.strip().partition(" ")
    try:
        weight = float(head)
    except ValueError:
        raise LegacyFormatError(path, line_no, f"turn {piece[:40]!r} does not start with a weight") from None
    if not sep:
        text = ""
    return Turn(text, weight)


def format_train_line(turns: Iterable[TurnLike]) -> str:
    """One session (oldest turn first, last = response) -> one train.tsv line (no newline)."""
    ts = as_turns(turns)
    if len(ts) < 2:
        raise ValueError("a train.tsv instance needs at least one source turn and a response")
    for t in ts:
        if TURN_SEPARATOR.strip() in t.text.split():
            raise ValueError(f"turn contains the reserved separator token 'EOS': {t.text[:60]!r}")
    src = TURN_SEPARATOR.join(_weighted(t.text, t.weight) for t in ts[:-1])
    return f"{src}\t{_weighted(ts[-1].text, ts[-1].weight)}"


def parse_train_line(line: str, path: str | os.PathLike = "<string>", line_no: int = 1) -> list[Turn]:
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) != 2:
        raise LegacyFormatError(path, line_no, f"expected 2 tab-separated columns (source, target), got {len(cols)}")
    src, tgt = cols
    if not src.strip() or not tgt.strip():
        raise LegacyFormatError(path, line_no, "empty source or target column")
    turns = [_parse_weighted(p, path, line_no) for p in src.split(TURN_SEPARATOR)]
    turns.append(_parse_weighted(tgt, path, line_no))
    return turns


def write_train_tsv(path: str | os.PathLike, sessions: Iterable[Iterable[TurnLike]]) -> int:
    """Write sessions as the seed's train.tsv; returns the number of lines written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for s in sessions:
            f.write(format_train_line(s) + "\n")
            n += 1
    return n


def iter_train_tsv(path: str | os.PathLike) -> Iterator[list[Turn]]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such train.tsv file")
    with open(p, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if line.strip():
                yield parse_train_line(line, p, i)


def read_train_tsv(path: str | os.PathLike) -> list[list[Turn]]:
    """All sessions of a train.tsv file (blank lines are skipped; malformed ones raise)."""
    return list(iter_train_tsv(path))


@dataclass
class RefsRow:
    key: str
    references: list[tuple[float, str]]

    def __iter__(self):
        return iter((self.key, self.references))

    @property
    def texts(self) -> list[str]:
        return [t for _, t in self.references]

    @property
    def context_turns(self) -> list[str]:
        """For ``test.refs.txt`` the key is the source: its turns, split on `` EOS ``."""
        return [t.strip() for t in self.key.split(TURN_SEPARATOR)]


def format_refs_line(key: str, references: Sequence[tuple[float, str] | str]) -> str:
    parts = [_clean(key)]
    for r in references:
        score, text = (1.0, r) if isinstance(r, str) else r
        text = _clean(text)
        parts.append(f"{score:g}|{text}")
    return "\t".join(parts)


def write_refs(path: str | os.PathLike, rows: Iterable[tuple[str, Sequence[tuple[float, str] | str]]]) -> int:
    """Write a multi-reference file (``test.refs.txt`` / DSTC7 refs); returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for key, refs in rows:
            f.write(format_refs_line(key, refs) + "\n")
            n += 1
    return n


def parse_refs_line(line: str, path: str | os.PathLike = "<string>", line_no: int = 1) -> RefsRow:
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) < 2:
        raise LegacyFormatError(path, line_no, "expected '<key>\\t<score>|<reference>...' with at least one reference")
    refs = []
    for j, col in enumerate(cols[1:], start=2):
        score, sep, text = col.partition("|")
        if not sep:
            raise LegacyFormatError(path, line_no, f"column {j} has no '<score>|' prefix: {col[:40]!r}")
        try:
            refs.append((float(score), text))
        except ValueError:
            raise LegacyFormatError(path, line_no, f"column {j} score {score!r} is not a number") from None
    return RefsRow(cols[0], refs)


def read_refs(path: str | os.PathLike) -> list[RefsRow]:
    """Rows of a multi-reference file. ``RefsRow`` unpacks like ``(key, [(score, text), ...])``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such references file")
    with open(p, encoding="utf-8") as f:
        return [parse_refs_line(line, p, i) for i, line in enumerate(f, start=1) if line.strip()]
