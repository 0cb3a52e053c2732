"""Reader benchmark: what ``load_conversations`` adds on top of ``datasets`` loading, cold and cached.

Side by side in one process (imports warmed first), each on its own fresh cache folder:

* a Reddit-shaped Parquet dataset (``turns`` of ``{text, weight, score}`` + ``id``), as ``--dataset``
  training reads it: ``datasets.load_dataset`` alone (what training did before) vs ``load_conversations``
  (the same load + the batched normalising map), then ``load_conversations`` again (the map's cache);
* the same dialogues as a ``messages`` JSONL (read row by row in Python): cold, then cached.

Wall and CPU seconds (``time.process_time``), rows per second, load average before and after.

    python bench/conversations.py                    # 100,000 dialogues
    python bench/conversations.py --dialogues 20000 --output /tmp/c.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = "the a i you it is to and of that what do not know think good really like people time".split()


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        turns = [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))),
                  "weight": 0.0 if k == 0 and rng.random() < 0.2 else 1.0, "score": rng.randint(1, 99)}
                 for k in range(rng.randint(2, 6))]
        out.append({"id": f"t3_{i:07d}", "turns": turns})
    return out


def _timed(fn) -> tuple[dict, object]:
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return {"wall_s": round(time.perf_counter() - w, 3), "cpu_s": round(time.process_time() - c, 3)}, result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dialogues", type=int, default=100_000)
    p.add_argument("--output", default=str(Path(__file__).with_name("conversations.results.json")))
    args = p.parse_args(argv)

    import datasets

    from dialogpt.conversations import load_conversations

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        out = _run(args, datasets, load_conversations)
    finally:
        if bars:
            datasets.enable_progress_bars()
    Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


def _run(args, datasets, load_conversations) -> dict:
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    rows = _rows(args.dialogues)
    (tmp / "rd" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(tmp / "rd" / "data" / "train-00000-of-00001.parquet"))
    with open(tmp / "chats.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            msgs = [{"role": "user" if (len(r["turns"]) - k) % 2 == 0 else "assistant", "content": t["text"]}
                    for k, t in enumerate(r["turns"])]
            f.write(json.dumps({"id": r["id"], "messages": msgs}) + "\n")
    _timed(lambda: load_conversations(files=[str(tmp / "chats.jsonl")], cache_dir=str(tmp / "warmup")))

    res = {}
    res["parquet_load_dataset_only"], _ = _timed(
        lambda: datasets.load_dataset(str(tmp / "rd"), split="train", cache_dir=str(tmp / "c1")))
    res["parquet_load_conversations_cold"], (ds, rep) = _timed(
        lambda: load_conversations(dataset=str(tmp / "rd"), cache_dir=str(tmp / "c2")))
    res["parquet_load_conversations_cached"], _ = _timed(
        lambda: load_conversations(dataset=str(tmp / "rd"), cache_dir=str(tmp / "c2")))
    res["jsonl_messages_cold"], (ds2, rep2) = _timed(
        lambda: load_conversations(files=[str(tmp / "chats.jsonl")], cache_dir=str(tmp / "c3")))
    res["jsonl_messages_cached"], _ = _timed(
        lambda: load_conversations(files=[str(tmp / "chats.jsonl")], cache_dir=str(tmp / "c3")))
    assert rep.dialogues == rep2.dialogues == args.dialogues and rep.turns == rep2.turns
    for v in res.values():
        v["dialogues_per_s"] = round(args.dialogues / v["wall_s"]) if v["wall_s"] else None
    base = res["parquet_load_dataset_only"]["wall_s"]
    return {
        "command": f"python bench/conversations.py --dialogues {args.dialogues}",
        "dialogues": args.dialogues, "turns": rep.turns, "results": res,
        "parquet_cold_over_load_dataset_only": round(res["parquet_load_conversations_cold"]["wall_s"] / base, 2),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(), "datasets": datasets.__version__,
    }


if __name__ == "__main__":
    sys.exit(main())
