"""Rows of JSON Lines, JSON, CSV and the seed's TSV, each with where it came from (``file:line``).

These are read here rather than by ``datasets``' json/csv builders because (1) a malformed line must
be an error naming ``file:line``, which pyarrow's readers cannot say; (2) real chat exports mix a
string ``content`` with a list of parts, which no single Arrow type holds; (3) pandas would read a
script line "NA" or "None" as a missing value. Parquet and Arrow files are typed already and go
through ``datasets`` (see :mod:`dialogpt.conversations.load`).

A row that is a JSON array (not an object) is read as ``{"dialog": row}``: a list of turns.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from dialogpt.conversations.options import ConversationError
from dialogpt.legacy_tsv import LegacyFormatError, parse_train_line

FILE_TYPES = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow",
              ".tsv": "tsv"}
ROW_FILE_TYPES = ("jsonl", "json", "csv", "tsv")
_WS = re.compile(r"\s*")


def file_type(path: str | Path) -> str | None:
    """jsonl | json | csv | parquet | arrow | tsv by extension (``None``: not a dialogue file)."""
    return FILE_TYPES.get(Path(path).suffix.lower())


def _as_row(obj, where: str) -> dict:
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, list):
        return {"dialog": obj}
    raise ConversationError(f"{where}: expected a JSON object (one dialogue per row) or array, "
                            f"got {type(obj).__name__}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Decoded lines (a leading BOM dropped); a byte that is not UTF-8 names its line."""
    with open(path, "rb") as f:
        for no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if no == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ConversationError(f"{path}:{no}: not UTF-8 ({e.reason} at byte {e.start})") from None
            yield no, line


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict]]:
    for no, line in _lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConversationError(f"{path}:{no}: malformed JSON line ({e.msg} at column {e.colno})") from None
        yield f"{path}:{no}", _as_row(obj, f"{path}:{no}")


def _json_array_rows(path: Path, text: str) -> Iterator[tuple[str, dict]]:
    """Elements of a top-level JSON array, each with the line it starts on."""
    dec = json.JSONDecoder()
    i = _WS.match(text, text.index("[") + 1).end()
    line, seen = 1, 0
    if text[i:i + 1] == "]":
        return
    while True:
        try:
            obj, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise ConversationError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
        line += text.count("\n", seen, i)
        seen = i
        yield f"{path}:{line}", _as_row(obj, f"{path}:{line}")
        i = _WS.match(text, end).end()
        if text[i:i + 1] == ",":
            i = _WS.match(text, i + 1).end()
            continue
        if text[i:i + 1] == "]" and not text[i + 1:].strip():
            return
        at = text.count("\n", 0, i) + 1
        raise ConversationError(f"{path}:{at}: malformed JSON (expected ',' or the closing ']' of the array)")


def _json_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """A ``.json`` file: a JSON array of rows, or JSON Lines (one object per line)."""
    with open(path, "rb") as f:
        head = f.read(65536).decode("utf-8-sig", errors="replace").lstrip()
    if not head.startswith("["):
        yield from _jsonl_rows(path)
        return
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConversationError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    yield from _json_array_rows(path, text)


def _decode_cells(row: dict, json_columns) -> dict:
    """A CSV cell of a dialogue column holding a JSON array (a message list) becomes that list."""
    for c in json_columns:
        v = row.get(c)
        if isinstance(v, str) and v.lstrip().startswith("["):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError:
                continue  # plain text that starts with '[': left as it is
            if isinstance(parsed, list):
                row[c] = parsed
    return row


def _csv_rows(path: Path, json_columns=()) -> Iterator[tuple[str, dict]]:
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(stream, strict=True)
        header: list[str] | None = None
        try:
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if header is None:
                    header = [h.strip() for h in row]
                    continue
                if not row:
                    continue  # a blank line
                if len(row) != len(header):
                    raise ConversationError(f"{where}: {len(row)} fields, but the header has {len(header)} "
                                            f"({', '.join(header)})")
                yield where, _decode_cells(dict(zip(header, row)), json_columns)
        except csv.Error as e:
            raise ConversationError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
        except UnicodeDecodeError as e:
            raise ConversationError(f"{path}:{reader.line_num + 1}: not UTF-8 ({e.reason})") from None


def _tsv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """The seed's train.tsv through :mod:`dialogpt.legacy_tsv` (its parser, its ``file:line`` errors)."""
    for no, line in _lines(path):
        if not line.strip():
            continue
        try:
            turns = parse_train_line(line, path, no)
        except LegacyFormatError as e:
            raise ConversationError(str(e)) from None
        yield f"{path}:{no}", {"turns": [{"text": t.text, "weight": float(t.weight)} for t in turns]}


def iter_file_rows(path: str | Path, ftype: str, json_columns=()) -> Iterator[tuple[str, dict]]:
    """``(where, row)`` for each row of a JSON Lines / JSON / CSV / TSV file, in file order."""
    path = Path(path)
    if ftype == "jsonl":
        return _jsonl_rows(path)
    if ftype == "json":
        return _json_rows(path)
    if ftype == "csv":
        return _csv_rows(path, json_columns)
    if ftype == "tsv":
        return _tsv_rows(path)
    raise ValueError(f"not a row file type: {ftype}")


def sample_rows(path: str | Path, ftype: str, n: int = 64, json_columns=()) -> list[dict]:
    """The first ``n`` rows (what detection looks at); a malformed one among them is already an error."""
    out = []
    for _, row in iter_file_rows(path, ftype, json_columns):
        out.append(row)
        if len(out) >= n:
            break
    return out


def folder_split_files(folder: Path, split: str) -> dict[str, list[str]] | None:
    """A plain folder of JSON/CSV/TSV dialogue files -> ``{split: [files]}`` by datasets' own split naming
    (``train.jsonl``, ``validation.csv``, ``data/test-0000.json`` ...); ``None`` when the folder holds
    anything else (Parquet/Arrow shards, a ``save_to_disk`` folder: ``datasets`` reads those)."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    if (folder / "dataset_dict.json").exists() or (folder / "state.json").exists():
        return None
    try:
        resolved = DataFilesDict.from_patterns(get_data_patterns(str(folder)), base_path=str(folder))
    except Exception:  # datasets' "no data files" and friends: let its own loader say it
        return None
    splits = {str(s): [f for f in files if not f.lower().endswith(".md")] for s, files in resolved.items()}
    kinds = {file_type(f) for files in splits.values() for f in files}
    if not kinds or not kinds <= set(ROW_FILE_TYPES):  # anything else (.txt, .parquet ...): datasets decides
        return None
    return {s: sorted(files) for s, files in splits.items() if files}
