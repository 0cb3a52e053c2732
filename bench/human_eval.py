#!/usr/bin/env python
"""Human-evaluation vote store at the seed's scale (prints JSON): is one vote fast enough for a judge?

The seed judged 6K contexts x 3 judges. Two judges' full vote sets (2 x 6K x 3 questions) are written
straight into a fresh store, then a third judge casts ``--votes`` votes through the store API
(``next_item`` + ``record``, exactly what one page click does), and the report is computed over all
votes. Wall and CPU time are printed side by side for each.

    python bench/human_eval.py              # ~10-30 s
    python bench/human_eval.py --quick      # 600 items, seconds
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dialogpt.serve.human_eval_inputs import QUESTIONS, load_inputs  # noqa: E402
from dialogpt.serve.human_eval_report import format_report  # noqa: E402
from dialogpt.serve.human_eval_store import VoteStore  # noqa: E402


def build_store(d: Path, n: int) -> VoteStore:
    for name, fmt in (("ctx.txt", "context {i} first turn EOS context {i} second turn"),
                      ("a.txt", "system A reply {i}"), ("b.txt", "system B reply {i}")):
        (d / name).write_text("".join(fmt.format(i=i) + "\n" for i in range(n)), encoding="utf-8")
    store = VoteStore.create_or_open(d / "votes.sqlite", load_inputs(d / "ctx.txt", d / "a.txt", d / "b.txt"))
    rng = random.Random(0)
    with sqlite3.connect(d / "votes.sqlite") as db:
        for judge in ("judge1", "judge2"):
            db.executemany("INSERT INTO assignments (judge, item, a_first) VALUES (?, ?, ?)",
                           [(judge, i, rng.randint(0, 1)) for i in range(n)])
            db.executemany("INSERT INTO votes (judge, item, question, choice) VALUES (?, ?, ?, ?)",
                           [(judge, i, q, rng.choice(("A", "tie", "B"))) for i in range(n) for q in QUESTIONS])
    return store


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=6000)
    ap.add_argument("--votes", type=int, default=50)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 600 if args.quick else args.items
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp), n)
        walls, cpus = [], []
        for _ in range(args.votes):
            def click():
                shown = store.next_item("judge3")
                store.record("judge3", shown.item, dict.fromkeys(QUESTIONS, "first"))
            _, w, c = timed(click)
            walls.append(w)
            cpus.append(c)
        votes, read_w, read_c = timed(store.votes)
        _, rep_w, rep_c = timed(lambda: format_report(store.meta(), votes))
    walls.sort()
    print(json.dumps({
        "bench": "human_eval_store", "items": n, "judges_prefilled": 2, "judgments": len(votes),
        "vote_click": {"count": args.votes, "wall_p50_s": round(statistics.median(walls), 4),
                       "wall_p95_s": round(walls[int(0.95 * (len(walls) - 1))], 4),
                       "cpu_mean_s": round(statistics.mean(cpus), 4)},
        "read_votes": {"wall_s": round(read_w, 3), "cpu_s": round(read_c, 3)},
        "report": {"wall_s": round(rep_w, 3), "cpu_s": round(rep_c, 3)},
        "synchronous": "FULL (WAL)",
    }, indent=2))


if __name__ == "__main__":
    main()
