#!/usr/bin/env python
"""Where dialogpt-serve's model thread spends its time, from py-spy samples (prints JSON).

A worker process runs the server's :class:`~dialogpt.serve.batching.Scheduler` without HTTP: ``--rows``
streamed greedy requests arrive at once (prefill, then decoding together), twice over, after a warm-up.
``py-spy record --threads`` samples it; each sample of the model thread is put in one bucket, by the
first rule its stack matches:

* ``kv_cache``: cache bookkeeping (``SlotCache``'s writes, growth, rows leaving, planning; before:
  ``kv_cache.join``/``keep_rows`` and transformers' cache ``update``, the ``torch.cat`` of every layer at
  every step in a ``DynamicCache``);
* ``model_forward_prefill`` / ``model_forward_decode``: the rest of the model's forward (attention
  included), in passes where prompts join (``_admit`` before, ``_join`` now, where the running rows
  decode too) or in decoding steps of the running rows only (``_step``);
* ``detokenize_emit``: turning tokens into text deltas, stop strings, safety, handing events over
  (``_feed``, ``dialogpt/serve/streaming.py``);
* ``logits_processors``: choosing the next tokens (``_advance``, logits processors and warpers);
* ``scheduler``: everything else on the model thread (taking jobs, building prompts, bookkeeping).

``decode_step_split`` is the same over the samples inside decoding steps only. The same rules read the
old scheduler (``--tree`` runs another checkout), so before and after compare.

    python bench/serve_profile.py --shape 117M --rows 16 64 --vocab bench full
    # the scheduler before this one (bench/serve_profile.before.results.json):
    mkdir /tmp/before && git archive 6159051 dialogpt | tar -x -C /tmp/before
    python bench/serve_profile.py --shape 117M --rows 16 64 --vocab bench full --tree /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = (
    ("kv_cache", ("SlotCache._write", "SlotCache._grow", "SlotCache._resize", "SlotCache.drop", "SlotCache._plan",
                  "SlotCache.reserve", "SlotCache._release", "join (dialogpt/serve/kv_cache.py",
                  "keep_rows (dialogpt/serve/kv_cache.py", "update (transformers/cache_utils.py")),
    ("model_forward_prefill", ("modeling_gpt2.py",), ("_admit (", "_join (")),
    ("model_forward_decode", ("modeling_gpt2.py",), ("_step (",)),
    ("detokenize_emit", ("_feed (", "streaming.py")),
    ("logits_processors", ("_advance (", "processors.py", "logits_process.py")),
)


def bucket(stack: str) -> str:
    for rule in RULES:
        name, frames = rule[0], rule[1]
        under = rule[2] if len(rule) > 2 else None
        if any(f in stack for f in frames) and (under is None or any(u in stack for u in under)):
            return name
    return "scheduler"


def split(samples: Counter) -> dict:
    total = sum(samples.values())
    return {"samples": total, **{k: round(v / total, 3) for k, v in sorted(samples.items(), key=lambda kv: -kv[1])}}


def read_raw(path: Path) -> dict:
    """py-spy's raw output (``stack count`` lines) -> the model thread's buckets, all and in decode steps."""
    every, steps = Counter(), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "_run (" not in stack or "batching.py" not in stack:
            continue  # not the model thread's loop
        b = bucket(stack)
        every[b] += int(count)
        if "_step (" in stack:
            steps[b] += int(count)
    return {"split": split(every), "decode_step_split": split(steps) if steps else None}


def worker(model: str, rows: int, max_tokens: int, device: str) -> None:
    """Run inside py-spy: the scheduler decoding ``rows`` requests at once, twice; prints the timings."""
    import torch

    from dialogpt.chat_format import Turn
    from dialogpt.decode import Responder
    from dialogpt.serve.batching import Job, Scheduler
    from dialogpt.serve.schemas import GenRequest

    sys.path.insert(0, str(REPO / "bench"))
    from generate import make_contexts

    r = Responder.from_pretrained(model, device=device, batch_size=rows)
    opts = r.options.replace(strategy="greedy", max_new_tokens=max_tokens, min_new_tokens=1)
    sched = Scheduler(r, max_batch=rows, max_queue=4 * rows)
    sched.start()
    contexts = make_contexts(64)

    def wave(n: int, offset: int) -> None:
        boxes = []
        for i in range(n):
            q: queue.Queue = queue.Queue()
            turns = [Turn(t) for t in contexts[(offset + i) % len(contexts)]]
            sched.submit(Job(GenRequest(turns, opts, 1, True), lambda k, p, q=q: q.put(k)))
            boxes.append(q)
        for q in boxes:
            while q.get(timeout=600) not in ("done", "error"):
                pass

    wave(2, 0)  # warm-up
    steps0, cpu0, t0 = sched.counters["steps"], time.process_time(), time.perf_counter()
    wave(rows, 0)
    wave(rows, rows)
    sched.stop()
    print(json.dumps({"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - cpu0, 3),
                      "decode_steps": sched.counters["steps"] - steps0, "torch_threads": torch.get_num_threads()}))


def profile_rows(model: str, rows: int, max_tokens: int, threads: int = 1, device: str = "cpu",
                 tree: str | None = None, rate: int = 100) -> dict:
    """py-spy over :func:`worker` (``tree``: the checkout whose ``dialogpt`` runs; default this one)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(tree or REPO), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="serve-profile-") as tmp:
        raw = Path(tmp) / "raw.txt"
        cmd = [spy, "record", "--threads", "--format", "raw", "--rate", str(rate), "--nonblocking", "-o", str(raw),
               "--", sys.executable, str(Path(__file__).resolve()), "--worker", model, str(rows), str(max_tokens),
               device]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        if out.returncode != 0 or not raw.is_file():
            return {"error": (out.stderr or out.stdout)[-500:]}
        lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
        if not lines:
            return {"error": (out.stderr + out.stdout)[-800:]}
        timing = json.loads(lines[-1])
        return {"rows": rows, "new_tokens": max_tokens, "sampler": f"py-spy {rate} Hz", **timing, **read_raw(raw)}


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    sys.path.insert(0, str(REPO / "bench"))
    from serve_model import SHAPES, build_bench_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="117M")
    p.add_argument("--vocab", choices=["bench", "full"], nargs="+", default=["bench"])
    p.add_argument("--rows", type=int, nargs="+", default=[16, 64])
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--tree", help="profile the dialogpt package of this checkout (e.g. an older commit)")
    args = p.parse_args(argv)
    out: dict = {"command": "python bench/serve_profile.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                 "tree": args.tree or "this checkout", "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    for vocab in args.vocab:
        with tempfile.TemporaryDirectory(prefix="serve-profile-model-") as tmp:
            facts = build_bench_model(Path(tmp), args.shape, vocab)
            out[vocab] = {"model": facts, **{str(n): profile_rows(tmp, n, args.max_tokens, tree=args.tree)
                                             for n in args.rows}}
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
