"""The vote store of a blind pairwise evaluation: one SQLite file, safe under crashes and many judges.

Why SQLite in WAL mode with one short transaction per request: a judge's three answers about an
item are committed together (``synchronous=FULL``) before the page moves on, so killing the server
loses nothing already acknowledged; WAL lets the report read while judges write; every request opens
its own connection with a busy timeout, so two judges (or two server processes on one file) never
overwrite each other. ``UNIQUE(judge, item, question)`` makes a second vote on the same question an
error rather than a silent double count, and an item is offered to a judge only if that judge has no
vote on it: a judge never sees an item twice.

Which response is shown first is drawn once per judge x item and stored (``assignments``), so a page
reload shows the same order and the page itself never learns which side is A.

Judge links (schema 2): ``invite`` makes one secret token per judge and keeps only its SHA-256
(``judges``), so a copied store file does not hand out working links; a token names exactly one
judge, so whoever holds it votes as that judge and nobody else. A schema-1 store (typed names only)
gains the table the first time it is opened for writing; its votes are untouched, and reading one
(``report``) needs no write at all.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from dialogpt.serve.human_eval_inputs import CHOICES, QUESTIONS, EvalInputs, HumanEvalInputError

SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item INTEGER PRIMARY KEY, context TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
    judge TEXT NOT NULL, item INTEGER NOT NULL REFERENCES items(item), a_first INTEGER NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now')), PRIMARY KEY (judge, item));
CREATE TABLE IF NOT EXISTS votes (
    judge TEXT NOT NULL, item INTEGER NOT NULL REFERENCES items(item), question TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('A', 'tie', 'B')),
    created REAL NOT NULL DEFAULT (julianday('now')),
    UNIQUE (judge, item, question));
CREATE INDEX IF NOT EXISTS assignments_by_item ON assignments (item);
CREATE TABLE IF NOT EXISTS judges (
    judge TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE,
    created REAL NOT NULL DEFAULT (julianday('now')));
"""


class AlreadyVotedError(ValueError):
    """The judge already answered this item (the UNIQUE constraint refused the rows)."""


class NotAssignedError(ValueError):
    """A vote for an item the store never showed to this judge (so the shown order is unknown)."""


@dataclass(frozen=True)
class Assignment:
    """One item as a judge sees it: no A/B labels, only the order drawn for this judge."""

    item: int
    context: list[str]
    first: str
    second: str
    judged: int
    total: int


@dataclass(frozen=True)
class Vote:
    judge: str
    item: int
    question: str
    choice: str  # one of CHOICES


class VoteStore:
    """A vote file for one comparison (see the module docstring for the guarantees)."""

    def __init__(self, path: str | Path, judges_per_item: int | None = None):
        self.path = Path(path)
        self.judges_per_item = judges_per_item

    # ------------------------------------------------------------------ opening
    @classmethod
    def create_or_open(cls, path: str | Path, inputs: EvalInputs, judges_per_item: int | None = 3) -> VoteStore:
        """The store for ``inputs``: created on first use, else checked to be about the same files."""
        store = cls(path, judges_per_item)
        if store.path.is_dir():
            raise HumanEvalInputError(f"--store {store.path}: is a directory, expected a .sqlite file")
        if not store.path.parent.is_dir():
            raise HumanEvalInputError(f"--store {store.path}: folder {store.path.parent} does not exist")
        try:
            with store._writable() as db:
                db.execute("BEGIN IMMEDIATE")
                meta = dict(db.execute("SELECT key, value FROM meta"))
                if not meta:
                    _write_inputs(db, inputs)
                db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise HumanEvalInputError(f"--store {store.path}: not a usable SQLite vote store ({e})") from None
        if meta:
            store._check_same(meta, inputs)
        return store

    @classmethod
    def open(cls, path: str | Path) -> VoteStore:
        """An existing store (for the report); a missing or foreign file is a one-line error."""
        store = cls(path)
        if not store.path.is_file():
            raise HumanEvalInputError(f"{store.path}: no such vote store")
        try:
            store.meta()
        except sqlite3.DatabaseError as e:
            raise HumanEvalInputError(f"{store.path}: not a human-eval vote store ({e})") from None
        return store

    @contextmanager
    def _connect(self):
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken
        # before reading what to write (no lost update between two judges).
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db

    @contextmanager
    def _writable(self):
        """A connection to a store at the current schema: tables an older store lacks are added
        (every CREATE is IF NOT EXISTS, so this is also how a new store starts)."""
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            db.executescript(_SCHEMA)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
            yield db

    def _check_same(self, meta: dict, inputs: EvalInputs) -> None:
        if meta.get("fingerprint") == inputs.fingerprint:
            return
        names = ("--contexts", "--a", "--b")
        stored = tuple(meta.get(f"digest{k}", "") for k in names)
        differ = [n for n, old, new in zip(names, stored, inputs.digests) if old != new] or list(names)
        raise HumanEvalInputError(
            f"--store {self.path} holds votes for another comparison ({meta.get('a_name')} vs "
            f"{meta.get('b_name')}, {meta.get('n_items')} items): {', '.join(differ)} differ; "
            f"use a new --store file")

    # ------------------------------------------------------------------ reading
    def meta(self) -> dict[str, str]:
        with self._connect() as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        if "fingerprint" not in meta:
            raise sqlite3.DatabaseError("no comparison fingerprint")
        return meta

    def votes(self) -> list[Vote]:
        with self._connect() as db:
            rows = db.execute("SELECT judge, item, question, choice FROM votes ORDER BY judge, item, question")
            return [Vote(*r) for r in rows]

    def judged_items(self, judge: str) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(DISTINCT item) FROM votes WHERE judge = ?", (judge,)).fetchone()[0]

    # ------------------------------------------------------------------ judge links
    def invite(self, n: int) -> list[tuple[str, str]]:
        """``n`` new judges, each ``(judge id, secret token)``; only the token's SHA-256 is stored,
        so this is the one time a token is seen. Ids go on from the ones already used."""
        if n < 1:
            raise HumanEvalInputError(f"--judges must be >= 1, got {n}")
        with self._writable() as db:
            db.execute("BEGIN IMMEDIATE")
            used = {r[0] for r in db.execute("SELECT judge FROM judges UNION SELECT judge FROM assignments")}
            out, k = [], db.execute("SELECT COUNT(*) FROM judges").fetchone()[0]
            while len(out) < n:
                k += 1
                judge = f"judge-{k:03d}"
                if judge not in used:
                    out.append((judge, secrets.token_urlsafe(24)))
            db.executemany("INSERT INTO judges (judge, token_sha256) VALUES (?, ?)",
                           [(j, token_digest(t)) for j, t in out])
            db.execute("COMMIT")
        return out

    def judge_for_token(self, token: str) -> str | None:
        """The judge a link's token names, or ``None`` for a token this store never issued."""
        with self._connect() as db:
            try:
                row = db.execute("SELECT judge FROM judges WHERE token_sha256 = ?", (token_digest(token),)).fetchone()
            except sqlite3.OperationalError:  # a schema-1 store: no links issued yet
                return None
        return row[0] if row else None

    def linked_judges(self) -> list[str]:
        """The judges invited by link, in order (empty for a store without links)."""
        with self._connect() as db:
            try:
                return [r[0] for r in db.execute("SELECT judge FROM judges ORDER BY judge")]
            except sqlite3.OperationalError:
                return []

    # ------------------------------------------------------------------ judging
    def next_item(self, judge: str) -> Assignment | None:
        """The item this judge should see now: a pending one (shown, not yet answered) first, else
        the least-judged item the judge has not seen; ``None`` when nothing is left."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT item, a_first FROM assignments WHERE judge = ? AND item NOT IN "
                "(SELECT item FROM votes WHERE judge = ?) ORDER BY created, item LIMIT 1", (judge, judge),
            ).fetchone()
            if row is None:
                row = self._assign_new(db, judge)
            db.execute("COMMIT")
            if row is None:
                return None
            item, a_first = row
            context, a, b = db.execute("SELECT context, a, b FROM items WHERE item = ?", (item,)).fetchone()
            done = db.execute("SELECT COUNT(DISTINCT item) FROM votes WHERE judge = ?", (judge,)).fetchone()[0]
            total = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        first, second = (a, b) if a_first else (b, a)
        return Assignment(item, context.split("\n"), first, second, done, total)

    def _assign_new(self, db: sqlite3.Connection, judge: str) -> tuple[int, int] | None:
        # Items the judge has never been shown, with how many judges each already has: the least
        # covered first, so J judges spread over the set; ties in a per-judge random order.
        # One indexed pass (a correlated COUNT per item took 14 s per vote at the seed's 6K x 3 judges).
        rows = db.execute(
            "SELECT i.item, COUNT(s.judge) FROM items i LEFT JOIN assignments s ON s.item = i.item "
            "WHERE NOT EXISTS (SELECT 1 FROM assignments m WHERE m.judge = ? AND m.item = i.item) "
            "GROUP BY i.item", (judge,),
        ).fetchall()
        if self.judges_per_item is not None:
            rows = [r for r in rows if r[1] < self.judges_per_item]
        if not rows:
            return None
        rng = random.Random(f"{judge}\0order")
        tiebreak = {item: rng.random() for item, _ in sorted(rows)}
        item = min(rows, key=lambda r: (r[1], tiebreak[r[0]]))[0]
        a_first = random.SystemRandom().random() < 0.5
        db.execute("INSERT INTO assignments (judge, item, a_first) VALUES (?, ?, ?)", (judge, item, int(a_first)))
        return item, int(a_first)

    def record(self, judge: str, item: int, answers: dict[str, str]) -> None:
        """Store a judge's answers about an item, given as shown: ``"first"``, ``"tie"`` or ``"second"``
        for every question. All rows commit together or none does."""
        if set(answers) != set(QUESTIONS):
            raise ValueError(f"answers must cover exactly {sorted(QUESTIONS)}, got {sorted(answers)}")
        bad = {q: v for q, v in answers.items() if v not in ("first", "tie", "second")}
        if bad:
            raise ValueError(f"answers must be 'first', 'tie' or 'second', got {bad}")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT a_first FROM assignments WHERE judge = ? AND item = ?", (judge, item)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise NotAssignedError(f"item {item} was not shown to judge {judge!r}")
            a_first = bool(row[0])
            try:
                db.executemany(
                    "INSERT INTO votes (judge, item, question, choice) VALUES (?, ?, ?, ?)",
                    [(judge, item, q, _unblind(v, a_first)) for q, v in answers.items()],
                )
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise AlreadyVotedError(f"judge {judge!r} already answered item {item}") from None
            db.execute("COMMIT")


def token_digest(token: str) -> str:
    """What the store keeps of a judge's token: its SHA-256 (hex). A token is 192 random bits, so
    an unsalted fast hash is enough: nothing can be guessed back from it."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _unblind(shown: str, a_first: bool) -> str:
    if shown == "tie":
        return "tie"
    return "A" if (shown == "first") == a_first else "B"


def _write_inputs(db: sqlite3.Connection, inputs: EvalInputs) -> None:
    meta = {
        "schema_version": SCHEMA_VERSION, "fingerprint": inputs.fingerprint, "n_items": str(len(inputs)),
        "a_name": inputs.a_name, "b_name": inputs.b_name, "questions": ",".join(QUESTIONS),
        "choices": ",".join(CHOICES),
        **{f"digest{k}": d for k, d in zip(("--contexts", "--a", "--b"), inputs.digests)},
    }
    db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
    db.executemany(
        "INSERT INTO items (item, context, a, b) VALUES (?, ?, ?, ?)",
        [(i, "\n".join(c), a, b) for i, (c, a, b) in enumerate(zip(inputs.contexts, inputs.a, inputs.b))],
    )
