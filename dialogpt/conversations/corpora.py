"""Two real chat corpora from the package index, written out in layouts the readers take.

Neither is ours, and neither needs the network: both ship their data inside the wheel.

* ``chatterbot-corpus`` (BSD-3-Clause, Gunther Cox): YAML files of short conversations, one file per
  category; each conversation is a list of statements, the first said by the user. Written as a
  ``messages`` JSONL (roles alternate from the user).
* ``chitchat-dataset`` (MIT, BYU Perception, Control and Cognition lab): 7,168 human-human chats from
  the Chit-Chat Challenge, a JSON map of conversation id -> messages, each message a burst of
  utterances by one sender. Written as a speaker-per-line table (one utterance per row, grouped by
  ``conversation_id``), the shape of a chat export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path


def chatterbot_dialogues(corpus_dir: str | Path | None = None, language: str = "english",
                         exclude: Sequence[str] = ()) -> list[tuple[str, list]]:
    """``(category, statements)`` for every conversation of the corpus's ``<language>/*.yml`` files, in
    file-name order; ``exclude`` names categories (file stems) to leave out. Values are as YAML read them."""
    import yaml

    if corpus_dir is None:
        import chatterbot_corpus  # the dev extra installs it

        corpus_dir = Path(chatterbot_corpus.__file__).parent / "data"
    out = []
    for path in sorted((Path(corpus_dir) / language).glob("*.yml")):
        if path.stem in exclude:
            continue
        with open(path, encoding="utf-8") as f:
            doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # libyaml when there
        out.extend((path.stem, conv) for conv in doc.get("conversations") or [])
    return out


def chatterbot_messages(dialogues: Iterable[tuple[str, list]]) -> list[dict]:
    """``{"id", "category", "messages"}`` rows: roles alternate user, assistant, ... from the first statement.

    A conversation that is not a list (trivia.yml #13 of 1.3.3 is one string, a YAML indentation slip)
    is written as it is, so the reader counts it (``not_a_dialogue``) instead of this converter hiding it.
    """
    rows, per_category = [], {}
    for category, statements in dialogues:
        k = per_category[category] = per_category.get(category, -1) + 1
        msgs = ([{"role": "user" if i % 2 == 0 else "assistant", "content": s} for i, s in enumerate(statements)]
                if isinstance(statements, list) else statements)
        rows.append({"id": f"{category}-{k}", "category": category, "messages": msgs})
    return rows


def chitchat_data(path: str | Path | None = None) -> dict:
    """The Chit-Chat dataset's ``dataset.json`` (the installed package's, by default)."""
    if path is None:
        import chitchat_dataset  # the dev extra installs it

        path = Path(chitchat_dataset.__file__).parent / "dataset.json"
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def chitchat_rows(data: dict | None = None, limit: int | None = None) -> list[dict]:
    """The Chit-Chat dataset (:func:`chitchat_data`) as speaker-table rows ``{conversation_id, sender, text,
    timestamp}``, one per utterance in file order; ``limit`` keeps the first N conversations."""
    data = chitchat_data() if data is None else data
    rows = []
    for n, (conv_id, conv) in enumerate(data.items()):
        if limit is not None and n >= limit:
            break
        for burst in conv["messages"]:
            rows.extend({"conversation_id": conv_id, "sender": u["sender"], "text": u["text"],
                         "timestamp": u["timestamp"]} for u in burst)
    return rows


def write_jsonl(rows: Iterable[dict], path: str | Path) -> int:
    """One JSON object per line (UTF-8, not ASCII-escaped); returns the number of rows written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
