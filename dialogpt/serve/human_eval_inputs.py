"""What a blind pairwise comparison compares: contexts and two systems' responses, checked line by line.

The seed's headline result is a pairwise human evaluation (6K contexts, 3 judges each, "A wins /
ties / B wins") for which no tool was released. Its inputs here are three plain files with one row
per line: the contexts (turns joined by `` EOS ``, the seed's format; a ``test.refs.txt`` works too,
only its first column is read) and the two hypothesis files that ``scripts/generate.py`` writes.

The three files are fingerprinted (SHA-256 of their bytes) so a vote store can refuse to mix votes
about different comparisons.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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


def load_inputs(contexts: str | Path, a: str | Path, b: str | Path) -> EvalInputs:
    """Read and check the three files: same number of lines, no empty line, UTF-8."""
    paths = {"--contexts": Path(contexts), "--a": Path(a), "--b": Path(b)}
    rows, digests = {}, []
    for flag, p in paths.items():
        rows[flag], digest = _read_rows(p, flag)
        digests.append(digest)
    n = len(rows["--contexts"])
    for flag in ("--a", "--b"):
        if len(rows[flag]) != n:
            raise HumanEvalInputError(f"{flag} {paths[flag]} has {len(rows[flag])} lines but --contexts "
                                      f"{paths['--contexts']} has {n}: one response per context")
    turns = []
    for no, line in enumerate(rows["--contexts"], start=1):
        t = context_turns(line)
        if not t:
            raise HumanEvalInputError(f"--contexts {paths['--contexts']}:{no}: no turn text before the TAB")
        turns.append(t)
    return EvalInputs(turns, rows["--a"], rows["--b"], paths["--a"].name, paths["--b"].name, tuple(digests))
