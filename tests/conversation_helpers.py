"""Dialogue files in every layout and file type, written here (nothing downloaded)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dialogpt.legacy_tsv import TURN_SEPARATOR

#: two dialogues: (id, [(speaker, text), ...]); the user speaks first
DIALOGUES = [
    ("d1", [("user", "hi there"), ("assistant", "hello , who are you ?"), ("user", "a test"),
            ("assistant", "nice to meet you")]),
    ("d2", [("user", "what is up ?"), ("assistant", "not much")]),
]
SHAREGPT_ROLE = {"user": "human", "assistant": "gpt"}
CHARACTER = {"user": "ALICE", "assistant": "BOB"}  # a script's characters: no role value


def layout_rows(layout: str) -> list[dict]:
    """The two dialogues as rows of ``layout`` (speaker_table: one row per utterance, ids interleaved)."""
    if layout == "messages":
        return [{"id": i, "messages": [{"role": r, "content": t} for r, t in turns]} for i, turns in DIALOGUES]
    if layout == "sharegpt":
        return [{"id": i, "conversations": [{"from": SHAREGPT_ROLE[r], "value": t} for r, t in turns]}
                for i, turns in DIALOGUES]
    if layout == "turns":
        return [{"id": i, "turns": [{"text": t, "weight": 0.0 if k == 0 else 1.0} for k, (_, t) in enumerate(turns)]}
                for i, turns in DIALOGUES]
    if layout == "strings":
        return [{"id": i, "dialog": [t for _, t in turns]} for i, turns in DIALOGUES]
    if layout == "prompt_completion":
        return [{"id": i, "prompt": turns[0][1], "completion": turns[1][1]} for i, turns in DIALOGUES]
    if layout == "context_response":
        return [{"id": i, "context": TURN_SEPARATOR.join(t for _, t in turns[:-1]), "response": turns[-1][1]}
                for i, turns in DIALOGUES]
    if layout == "speaker_table":
        # d2's first line comes between d1's: groups are by id, in order of first appearance
        flat = [(i, r, t) for i, turns in DIALOGUES for r, t in turns]
        order = [0, 4, 1, 2, 5, 3]
        return [{"dialogue_id": flat[k][0], "speaker": CHARACTER[flat[k][1]], "text": flat[k][2]} for k in order]
    raise ValueError(layout)


def expected(layout: str) -> list[tuple[str, list[tuple[str, float, str]]]]:
    """(dialogue_id, [(text, weight, role), ...]) the reader must give for :func:`layout_rows`."""
    out = []
    for i, turns in DIALOGUES:
        if layout == "prompt_completion":
            got = [(turns[0][1], 0.0, "user"), (turns[1][1], 1.0, "assistant")]
        elif layout == "context_response":
            got = [(t, 0.0, r) for r, t in turns[:-1]] + [(turns[-1][1], 1.0, "assistant")]
        elif layout == "turns":
            got = [(t, 0.0 if k == 0 else 1.0, r) for k, (r, t) in enumerate(turns)]
        elif layout == "speaker_table":
            got = [(t, 1.0, "") for _, t in turns]  # characters map to no side
        else:
            got = [(t, 1.0, r) for r, t in turns]
        out.append((i, got))
    return out


def write_rows(rows: list[dict], path: Path) -> Path:
    """``rows`` as the file type ``path``'s suffix names (``.lines.json``: JSON Lines in a .json file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "".join(path.suffixes[-2:]) if path.name.endswith(".lines.json") else path.suffix
    if kind in (".jsonl", ".lines.json"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind == ".json":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    elif kind == ".csv":
        cols = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:  # a list cell (a message list) is written as JSON, as exports do
                w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})
    elif kind in (".parquet", ".arrow"):
        import datasets
        import pyarrow as pa

        table = datasets.Dataset.from_list(rows).data.table
        if kind == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, path)
        else:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
    else:
        raise ValueError(path)
    return path


def as_tuples(ds) -> list[tuple[str, list[tuple[str, float, str]]]]:
    return [(r["dialogue_id"], [(t["text"], t["weight"], t["role"]) for t in r["turns"]]) for r in ds]
