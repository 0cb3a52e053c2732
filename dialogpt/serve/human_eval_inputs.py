"""What a blind pairwise comparison compares: contexts and two systems' responses, checked line by line.

The seed's headline result is a pairwise human evaluation (6K contexts, 3 judges each, "A wins /
ties / B wins") for which no tool was released. Its inputs here are three plain files with one row
per line: the contexts (turns joined by `` EOS ``, the seed's format; a ``test.refs.txt`` works too,
only its first column is read) and the two hypothesis files that ``scripts/generate.py`` writes. The
contexts may also be a dialogue file in any layout ``dialogpt-train`` reads (``.jsonl``, ``.json``,
``.csv``, ``.parquet``, ``.arrow``; :mod:`dialogpt.conversations`): one context per dialogue, in file
order, every skip an error so that context i still faces response line i.

The three files are fingerprinted (SHA-256 of their bytes) so a vote store can refuse to mix votes
about different comparisons.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from dialogpt.conversations import (
    ConversationError,
    ConversationOptions,
    dialogue_contexts,
    file_type,
    load_conversations,
)
from dialogpt.legacy_tsv import TURN_SEPARATOR

#: The seed's three questions (DialoGPT paper, human evaluation): key -> what the judge is asked.
QUESTIONS: dict[str, str] = {
    "relevance": "Which response is more relevant to the conversation?",
    "informativeness": "Which response is more informative (more specific, more content)?",
    "humanlike": "Which response is more likely to have been written by a human?",
}
#: Stored answers: A wins, tie, B wins.
CHOICES = ("A", "tie", "B")


class HumanEvalInputError(ValueError):
    """A user mistake in the inputs or the store; the message is one line naming the input."""


@dataclass(frozen=True)
class EvalInputs:
    """Contexts (as turns) and the A / B responses, aligned by line."""

    contexts: list[list[str]]
    a: list[str]
    b: list[str]
    a_name: str
    b_name: str
    #: sha256 of each file's bytes: contexts, a, b
    digests: tuple[str, str, str]
    #: what was read from a dialogue-file --contexts (the reader's one line); "" for a line file
    contexts_note: str = ""

    @property
    def fingerprint(self) -> str:
        """One id for the comparison: the three digests in role order (swapping A and B changes it)."""
        return hashlib.sha256("\n".join(self.digests).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.contexts)


def _read_rows(path: Path, flag: str) -> tuple[list[str], str]:
    """Non-empty lines of a UTF-8 file and its digest; an empty line or bad byte names file:line."""
    if not path.is_file():
        raise HumanEvalInputError(f"{flag} {path}: no such file")
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    rows = []
    for no, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise HumanEvalInputError(f"{flag} {path}:{no}: not UTF-8 ({e.reason} at byte {e.start})") from None
        if not line.strip():
            raise HumanEvalInputError(f"{flag} {path}:{no}: empty line (every row needs text; a judge "
                                      f"cannot compare nothing)")
        rows.append(line)
    if not rows:
        raise HumanEvalInputError(f"{flag} {path}: the file is empty")
    return rows, hashlib.sha256(data).hexdigest()


def context_turns(line: str) -> list[str]:
    """A context line -> its turns (the first TAB column, split on `` EOS ``)."""
    key = line.split("\t", 1)[0]
    return [t.strip() for t in key.split(TURN_SEPARATOR) if t.strip()]


def _dialogue_file_contexts(path: Path, options: ConversationOptions | None) -> tuple[list[list[str]], str, str]:
    """Contexts of a dialogue file, its digest and the reader's line."""
    if not path.is_file():
        raise HumanEvalInputError(f"--contexts {path}: no such file")
    opts = replace(options or ConversationOptions(), min_turns=1, strict=True)
    try:
        ds, report = load_conversations(files=[str(path)], options=opts, flag="--contexts")
    except ConversationError as e:
        raise HumanEvalInputError(str(e)) from None
    return dialogue_contexts(ds, report.layout), hashlib.sha256(path.read_bytes()).hexdigest(), report.describe()


def _line_contexts(path: Path) -> tuple[list[list[str]], str]:
    rows, digest = _read_rows(path, "--contexts")
    turns = []
    for no, line in enumerate(rows, start=1):
        t = context_turns(line)
        if not t:
            raise HumanEvalInputError(f"--contexts {path}:{no}: no turn text before the TAB")
        turns.append(t)
    return turns, digest


def load_inputs(contexts: str | Path, a: str | Path, b: str | Path,
                options: ConversationOptions | None = None) -> EvalInputs:
    """Read and check the three files: one context per response line, no empty line, UTF-8.

    ``options`` tells how to read a dialogue-file ``contexts`` (ignored for a line file).
    """
    paths = {"--contexts": Path(contexts), "--a": Path(a), "--b": Path(b)}
    note = ""
    if file_type(paths["--contexts"]) not in (None, "tsv"):
        turns, ctx_digest, note = _dialogue_file_contexts(paths["--contexts"], options)
    else:
        turns, ctx_digest = _line_contexts(paths["--contexts"])
    rows, digests = {}, [ctx_digest]
    for flag in ("--a", "--b"):
        rows[flag], digest = _read_rows(paths[flag], flag)
        digests.append(digest)
        if len(rows[flag]) != len(turns):
            raise HumanEvalInputError(f"{flag} {paths[flag]} has {len(rows[flag])} lines but --contexts "
                                      f"{paths['--contexts']} has {len(turns)}: one response per context")
    return EvalInputs(turns, rows["--a"], rows["--b"], paths["--a"].name, paths["--b"].name, tuple(digests), note)
