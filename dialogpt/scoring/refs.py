"""Reference selection and the reference/hypothesis file formats, as DSTC7's ``dstc.py`` reads them.

Reference selection (DSTC7's slots) lives in :mod:`.selection`; this module reads the files.

Formats (the legacy ones are parsed by :func:`dialogpt.legacy_tsv.read_refs`):

* multi-reference file, the seed's ``test.refs.txt`` and DSTC7's refs:
  ``<key>\\t<score>|<ref>\\t<score>|<ref>...``. The text is ``entry.split('|')[1]`` as in DSTC7:
  anything after a second ``|`` is cut;
* DSTC7 submission: hypotheses are the **last** TAB column, kept only when the first column (the
  hash) is in the keys file, **sorted by hash**; a duplicated hash keeps its last line;
* plain TSV: one line per hypothesis, references separated by TAB, used as given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dialogpt.legacy_tsv import read_refs

from .selection import DSTC_N_REFS, DSTC_VSHUMAN, pad_references, select_reference_indices, select_references

__all__ = ["DSTC_N_REFS", "DSTC_VSHUMAN", "InputError", "pad_references", "select_reference_indices",
           "select_references"]


class InputError(ValueError):
    """A user input file is unusable; the message names the file (and line)."""


def dstc_ref_text(text_after_first_pipe: str) -> str:
    """DSTC7 takes ``entry.split('|')[1]``: text after a second ``|`` is cut."""
    return text_after_first_pipe.split("|")[0]


def read_lines(path: str | os.PathLike) -> list[str]:
    """Lines as Python's text mode gives them to dstc.py (universal newlines, no line ends)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a text file")
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    with open(p, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InputError(f"{p}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from None
    # the same lines as text mode: universal newlines, no line ends
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def read_keys(path: str | os.PathLike) -> list[str]:
    return [k for k in read_lines(path) if k]


def _is_legacy_refs_line(line: str) -> bool:
    cols = line.split("\t")
    if len(cols) < 2:
        return False
    for c in cols[1:]:
        score, sep, _ = c.partition("|")
        if not sep:
            return False
        try:
            float(score)
        except ValueError:
            return False
    return True


def sniff_refs_format(path: str | os.PathLike) -> str:
    """``"legacy"`` (``key\\tscore|ref...``) when every non-blank line has that shape, else ``"tsv"``."""
    lines = [x for x in read_lines(path) if x.strip()]
    if lines and all(_is_legacy_refs_line(x) for x in lines[:200]):
        return "legacy"
    return "tsv"


def read_legacy_refs(path: str | os.PathLike) -> list[tuple[str, list[str]]]:
    """``(key, [ref texts])`` rows of a multi-reference file (DSTC7 ``|`` quirk applied)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such references file")
    try:
        rows = read_refs(p)
    except UnicodeDecodeError:
        read_lines(p)  # raises the InputError that names the line
        raise
    return [(row.key, [dstc_ref_text(t) for _, t in row.references]) for row in rows]


def read_tsv_refs(path: str | os.PathLike) -> list[list[str]]:
    """Plain TSV: line i holds the TAB-separated references of hypothesis i."""
    return [line.split("\t") for line in read_lines(path)]


#: Separators people use between references on one line, most specific first. Prose has commas and
#: semicolons, so those need (almost) every line to carry them before they look like separators.
_SEPARATORS = ((" ||| ", 0.5), ("|||", 0.5), (" | ", 0.5), ("|", 0.5), (";", 0.9), (",", 0.9))


def suspicious_separator(rows: Sequence[Sequence[str]]) -> str | None:
    """The separator that seems to join several references in one field, when no row has a second
    field (no TAB anywhere); ``None`` otherwise. Such a file would be scored as one reference per
    line without a word (NIST 2.08 -> 0.14 on the demo case), so the CLI warns."""
    if not rows or any(len(r) != 1 for r in rows):
        return None
    for sep, share in _SEPARATORS:
        if sum(sep in r[0] for r in rows) >= share * len(rows):
            return sep
    return None


@dataclass
class DstcSubmission:
    keys: list[str]
    hyps: list[str]


def read_dstc_submission(path: str | os.PathLike, keys: Sequence[str]) -> DstcSubmission:
    """DSTC7 ``extract_cells`` + sort: last column of lines whose hash is in ``keys``, by hash."""
    wanted = set(keys)
    cells: dict[str, str] = {}
    for i, line in enumerate(read_lines(path), start=1):
        c = line.split("\t")
        if c[0] in wanted:
            if len(c) < 2:  # dstc.py would crash with an IndexError here
                raise InputError(f"{path}:{i}: submission line has no TAB-separated response after the key")
            cells[c[0]] = c[-1]  # a duplicated hash keeps its last line, as dict assignment does
    ks = sorted(cells)
    return DstcSubmission(ks, [cells[k] for k in ks])


def dstc_hyps_refs(submission: str | os.PathLike, refs_path: str | os.PathLike, keys_path: str | os.PathLike,
                   n_refs: int = DSTC_N_REFS, vshuman: int = DSTC_VSHUMAN) -> tuple[list[str], list[list[str]]]:
    """``dstc.py extract_hyp_refs`` without cleaning: (hypotheses, selected references per hypothesis)."""
    keys = read_keys(keys_path)
    sub = read_dstc_submission(submission, keys)
    refs_by_key = {}
    for k, texts in read_legacy_refs(refs_path):
        refs_by_key[k] = texts  # last duplicate wins, as in extract_cells
    missing = [k for k in sub.keys if k not in refs_by_key]
    if missing:
        raise InputError(f"{refs_path}: no references for {len(missing)} submitted key(s), e.g. {missing[0]!r}")
    if not sub.keys:
        raise InputError(f"{submission}: no line's first column is a key listed in {keys_path}")
    refs = [select_references(refs_by_key[k], n_refs, vshuman) for k in sub.keys]
    return sub.hyps, refs
