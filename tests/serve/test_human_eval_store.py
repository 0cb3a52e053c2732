"""Blind pairwise evaluation: input checks, the SQLite vote store's guarantees (blinding, no item twice,
one row per judge x item x question, crash and concurrency safety)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dialogpt.serve.human_eval_inputs import QUESTIONS, HumanEvalInputError, load_inputs
from dialogpt.serve.human_eval_store import AlreadyVotedError, NotAssignedError, VoteStore

REPO = Path(__file__).resolve().parents[2]


def write_inputs(d: Path, n: int = 6, b_suffix: str = "") -> tuple[Path, Path, Path]:
    ctx, a, b = d / "ctx.txt", d / "a.hyp.txt", d / "b.hyp.txt"
    ctx.write_text("".join(f"context {i} first turn EOS context {i} second turn\n" for i in range(n)), encoding="utf-8")
    a.write_text("".join(f"system A says {i}\n" for i in range(n)), encoding="utf-8")
    b.write_text("".join(f"system B says {i}{b_suffix}\n" for i in range(n)), encoding="utf-8")
    return ctx, a, b


def all_first(value: str = "first") -> dict[str, str]:
    return dict.fromkeys(QUESTIONS, value)


def test_inputs_read_turns_and_refs_first_column(tmp_path):
    ctx, a, b = write_inputs(tmp_path, n=2)
    ctx.write_text("hello EOS how are you?\tignored|ref\nsecond context\n", encoding="utf-8")
    inputs = load_inputs(ctx, a, b)
    assert inputs.contexts == [["hello", "how are you?"], ["second context"]]
    assert inputs.a == ["system A says 0", "system A says 1"]
    assert (inputs.a_name, inputs.b_name) == ("a.hyp.txt", "b.hyp.txt")


@pytest.mark.parametrize("case, expected", [
    ("short_b", "--b"), ("empty_line", ":3: empty line"), ("not_utf8", ":2: not UTF-8"), ("missing", "no such file"),
])
def test_bad_inputs_are_one_line_errors_naming_the_input(tmp_path, case, expected):
    ctx, a, b = write_inputs(tmp_path, n=4)
    if case == "short_b":
        b.write_text("one\ntwo\n", encoding="utf-8")
    elif case == "empty_line":
        a.write_text("x\ny\n\nz\n", encoding="utf-8")
    elif case == "not_utf8":
        a.write_bytes(b"x\n\xff\xfe\nz\nw\n")
    else:
        b.unlink()
    with pytest.raises(HumanEvalInputError) as e:
        load_inputs(ctx, a, b)
    msg = str(e.value)
    assert expected in msg and "\n" not in msg
    if case in ("empty_line", "not_utf8"):
        assert str(a) in msg
    if case == "short_b":
        assert "has 2 lines" in msg and "has 4" in msg


def test_store_refuses_another_comparison_and_keeps_votes_for_the_same(tmp_path):
    ctx, a, b = write_inputs(tmp_path)
    path = tmp_path / "votes.sqlite"
    store = VoteStore.create_or_open(path, load_inputs(ctx, a, b))
    shown = store.next_item("ann")
    store.record("ann", shown.item, all_first())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = VoteStore.create_or_open(path, load_inputs(ctx, a, b))
    assert len(again.votes()) == len(QUESTIONS)
    write_inputs(tmp_path, b_suffix=" (other system)")
    with pytest.raises(HumanEvalInputError, match=r"another comparison .* --b differ") as e:
        VoteStore.create_or_open(path, load_inputs(ctx, a, b))
    assert "--contexts" not in str(e.value) and str(path) in str(e.value)
    # Swapping A and B is another comparison too (the table's columns would flip).
    write_inputs(tmp_path)
    with pytest.raises(HumanEvalInputError, match="another comparison"):
        VoteStore.create_or_open(path, load_inputs(ctx, b, a))


def test_votes_are_unblinded_by_the_stored_order(tmp_path):
    inputs = load_inputs(*write_inputs(tmp_path, n=12))
    store = VoteStore.create_or_open(tmp_path / "v.sqlite", inputs)
    orders = set()
    while (shown := store.next_item("ann")) is not None:
        first_is_a = shown.first == inputs.a[shown.item]
        assert {shown.first, shown.second} == {inputs.a[shown.item], inputs.b[shown.item]}
        assert shown.context == inputs.contexts[shown.item]
        orders.add(first_is_a)
        store.record("ann", shown.item, {"relevance": "first", "informativeness": "second", "humanlike": "tie"})
        got = {v.question: v.choice for v in store.votes() if v.item == shown.item}
        assert got == {"relevance": "A" if first_is_a else "B", "informativeness": "B" if first_is_a else "A",
                       "humanlike": "tie"}
    assert orders == {True, False}  # 12 fair coin flips all alike: p = 2 / 4096


def test_a_judge_never_sees_an_item_twice_and_reload_shows_the_same(tmp_path):
    store = VoteStore.create_or_open(tmp_path / "v.sqlite", load_inputs(*write_inputs(tmp_path, n=5)))
    seen = []
    while (shown := store.next_item("ann")) is not None:
        reload = store.next_item("ann")  # a page reload before answering: same item, same order
        assert (reload.item, reload.first) == (shown.item, shown.first)
        assert shown.judged == len(seen) and shown.total == 5
        store.record("ann", shown.item, all_first())
        seen.append(shown.item)
    assert sorted(seen) == list(range(5))
    with pytest.raises(AlreadyVotedError):
        store.record("ann", seen[0], all_first("tie"))
    with pytest.raises(NotAssignedError):
        store.record("bob", 0, all_first())
    with pytest.raises(ValueError, match="exactly"):
        store.record("ann", seen[0], {"relevance": "first"})
    with sqlite3.connect(tmp_path / "v.sqlite") as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO votes (judge, item, question, choice) VALUES ('ann', ?, 'relevance', 'A')", (seen[0],))
    assert len(store.votes()) == 5 * len(QUESTIONS)


def test_judges_per_item_spreads_the_work(tmp_path):
    store = VoteStore.create_or_open(tmp_path / "v.sqlite", load_inputs(*write_inputs(tmp_path, n=4)),
                                     judges_per_item=1)
    ann = [store.next_item("ann").item for _ in range(1)]
    store.record("ann", ann[0], all_first())
    bob = store.next_item("bob")
    assert bob.item != ann[0]
    taken = {ann[0], bob.item}
    store.record("bob", bob.item, all_first())
    while (s := store.next_item("cy")) is not None:
        assert s.item not in taken
        taken.add(s.item)
        store.record("cy", s.item, all_first())
    assert taken == set(range(4)) and store.next_item("dee") is None


def test_two_judges_at_once_lose_nothing(tmp_path):
    n = 15
    path = tmp_path / "v.sqlite"
    VoteStore.create_or_open(path, load_inputs(*write_inputs(tmp_path, n=n)))
    errors = []

    def judge(name: str) -> None:
        store = VoteStore(path)  # its own object, as a second server process would have
        try:
            while (s := store.next_item(name)) is not None:
                store.record(name, s.item, all_first("second"))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=judge, args=(name,)) for name in ("ann", "bob", "cy")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    votes = VoteStore.open(path).votes()
    assert len(votes) == 3 * n * len(QUESTIONS)
    assert {(v.judge, v.item) for v in votes} == {(j, i) for j in ("ann", "bob", "cy") for i in range(n)}


def test_a_killed_process_loses_no_acknowledged_vote(tmp_path):
    path = tmp_path / "v.sqlite"
    VoteStore.create_or_open(path, load_inputs(*write_inputs(tmp_path, n=3)))
    code = (
        "import os, signal, sys\n"
        "from dialogpt.serve.human_eval_store import VoteStore\n"
        "from dialogpt.serve.human_eval_inputs import QUESTIONS\n"
        "s = VoteStore(sys.argv[1])\n"
        "for _ in range(2):\n"
        "    item = s.next_item('ann')\n"
        "    s.record('ann', item.item, dict.fromkeys(QUESTIONS, 'tie'))\n"
        "s.next_item('ann')\n"  # shown but never answered
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, timeout=60)
    assert proc.returncode == -9
    store = VoteStore.open(path)
    assert len(store.votes()) == 2 * len(QUESTIONS)
    pending = store.next_item("ann")  # the unanswered one comes back, the answered ones never do
    assert pending is not None and pending.judged == 2
    store.record("ann", pending.item, all_first())
    assert store.next_item("ann") is None


def test_open_rejects_files_that_are_no_store(tmp_path):
    with pytest.raises(HumanEvalInputError, match="no such vote store"):
        VoteStore.open(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all, just text " * 100)
    with pytest.raises(HumanEvalInputError, match="not a human-eval vote store"):
        VoteStore.open(junk)
    with pytest.raises(HumanEvalInputError, match="not a usable SQLite"):
        VoteStore.create_or_open(junk, load_inputs(*write_inputs(tmp_path)))


def test_a_schema_1_store_still_reports_then_gains_judge_links(tmp_path, capsys):
    from dialogpt.cli.human_eval import main

    inputs = load_inputs(*write_inputs(tmp_path, n=3))
    path = tmp_path / "old.sqlite"
    store = VoteStore.create_or_open(path, inputs)
    shown = store.next_item("ann")
    store.record("ann", shown.item, all_first())
    with sqlite3.connect(path) as db:  # what schema 1 wrote: no judges table
        db.execute("DROP TABLE judges")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")

    def schema() -> tuple[str, bool]:
        with sqlite3.connect(path) as db:
            version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            return version, db.execute("SELECT 1 FROM sqlite_master WHERE name = 'judges'").fetchone() is not None

    assert main(["report", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["judges"] == ["ann"] and report["judgments"] == len(QUESTIONS) and report["judge_links"] == 0
    assert schema() == ("1", False)  # reading wrote nothing
    assert VoteStore.open(path).judge_for_token("anything") is None
    assert main(["invite", "--store", str(path), "--judges", "1"]) == 0
    token = capsys.readouterr().out.split("#token=")[1].strip()
    assert schema() == ("2", True)
    again = VoteStore.create_or_open(path, inputs)
    assert again.judge_for_token(token) == "judge-001" and len(again.votes()) == len(QUESTIONS)
