#!/usr/bin/env python
"""Can one client stall dialogpt-serve, and does any input get a 500? (issue 27; prints JSON)

Each server runs as its own process (real uvicorn on 127.0.0.1, the bench's tiny GPT-2, 1 torch
thread, 4 new tokens per reply). Against each one, one after another:

* ``scaling``: one body of N empty user messages (N = 5k, 10k, 20k, 30k; 30k is ~1 MB, under the
  default ``--max-body-bytes``), alone: status and seconds, so growth with N shows;
* ``fairness``: a normal "hello" sent 1 s after one 30k body, 1 s after three in parallel (the
  issue's probes), 0.1 s after three (so it overlaps them even where they take well under 1 s), and
  0.1 s after three bodies of ONE ~1 MB message each (tokenising it is the heavy part there):
  the hello's latency beside its latency on the idle server (``idle_hello_s``), and each heavy
  body's status and seconds;
* ``bad_inputs``: the bodies that were 500s (``max_tokens`` of 5,000 digits, a lone surrogate in
  ``model`` and in a text content part) and their neighbours: status and the error's ``param``.

Servers: ``before`` (the tree at ``--before``, via ``git archive``), ``after`` (this tree, default
flags) and ``after_cap_50000`` (this tree with ``--max-messages 50000``, so 30k bodies are prepared
and answered rather than refused). The machine is shared: compare figures of one run side by side;
load averages and CPU seconds are in the JSON.

    python bench/serve_fairness.py --before 6159051 --output bench/serve_fairness.results.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from generate import build_tiny_model  # noqa: E402
from report import emit  # noqa: E402
from serve import Server  # noqa: E402

HELLO = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
COUNTS = (5000, 10000, 20000, 30000)

#: name -> raw body; the first three were 500s before issue 27.
BAD_INPUTS = {
    "max_tokens_5000_digits": b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": ' + b"9" * 5000 + b"}",
    "surrogate_in_model": b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}',
    "surrogate_in_text_part": b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "a\\ud800"}]}]}',
    "surrogate_in_content": b'{"messages": [{"role": "user", "content": "a\\udfff"}]}',
    "surrogate_in_user": b'{"messages": [{"role": "user", "content": "hi"}], "user": "\\ud800"}',
    "seed_5000_digits": b'{"messages": [{"role": "user", "content": "hi"}], "seed": -' + b"1" * 5000 + b"}",
    "nan_temperature": b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    "completion_prompt_surrogate": b'{"prompt": "a\\ud800"}',
}


def heavy_body(n: int) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": ""}] * n, "max_tokens": 4}).encode()


def long_message_body(size: int = 1_000_000) -> bytes:
    words = " ".join(f"w{i % 997}" for i in range(size // 5))[:size]
    return json.dumps({"messages": [{"role": "user", "content": words}], "max_tokens": 4}).encode()


def _post(url: str, body: bytes, path: str = "/v1/chat/completions") -> tuple[int, float, dict]:
    """(status, seconds, the JSON error object or {}) of one request on its own connection."""
    t0 = time.perf_counter()
    r = httpx.post(url + path, content=body, headers={"Content-Type": "application/json"}, timeout=600)
    sec = time.perf_counter() - t0
    try:
        err = r.json().get("error") or {}
    except ValueError:
        err = {}
    return r.status_code, round(sec, 3), err


def idle_hello(url: str, repeats: int = 5) -> float:
    return round(statistics.median(_post(url, json.dumps(HELLO).encode())[1] for _ in range(repeats)), 3)


def scaling(url: str) -> dict:
    out = {}
    for n in COUNTS:
        status, sec, _ = _post(url, heavy_body(n))
        out[str(n)] = {"status": status, "seconds": sec, "body_bytes": len(heavy_body(n))}
        print(f"  {n} empty messages: {status} in {sec} s", file=sys.stderr, flush=True)
    return out


def hello_during(url: str, heavy: int, body: bytes, delay: float = 1.0) -> dict:
    """A hello sent ``delay`` s after ``heavy`` parallel copies of ``body``."""
    results: list = [None] * heavy

    def send(i: int) -> None:
        status, sec, _ = _post(url, body)
        results[i] = {"status": status, "seconds": sec, "finished_at": time.perf_counter()}

    threads = [threading.Thread(target=send, args=(i,)) for i in range(heavy)]
    for t in threads:
        t.start()
    time.sleep(delay)
    status, sec, _ = _post(url, json.dumps(HELLO).encode())
    hello_done = time.perf_counter()
    for t in threads:
        t.join()
    return {"heavy_bodies": heavy, "body_bytes": len(body), "hello_sent_after_s": delay, "hello_status": status,
            "hello_s": sec, "heavy": [{"status": r["status"], "seconds": r["seconds"]} for r in results],
            "hello_finished_before_all_heavy": all(hello_done < r["finished_at"] for r in results)}


def bad_inputs(url: str) -> dict:
    out = {}
    for name, body in BAD_INPUTS.items():
        path = "/v1/completions" if name.startswith("completion") else "/v1/chat/completions"
        status, _, err = _post(url, body, path)
        out[name] = {"status": status, "param": err.get("param"), "message": (err.get("message") or "")[:120]}
    return out


def measure(srv: Server) -> dict:
    load0, cpu0 = os.getloadavg(), srv.cpu_seconds()
    t0 = time.perf_counter()
    entry: dict = {"idle_hello_s": idle_hello(srv.url)}
    entry["scaling"] = scaling(srv.url)
    empty = heavy_body(30000)
    entry["fairness"] = {"one": hello_during(srv.url, 1, empty), "three": hello_during(srv.url, 3, empty),
                         "three_hello_at_0.1s": hello_during(srv.url, 3, empty, delay=0.1),
                         "three_1mb_messages_hello_at_0.1s": hello_during(srv.url, 3, long_message_body(), 0.1)}
    entry["idle_hello_after_s"] = idle_hello(srv.url)
    entry["bad_inputs"] = bad_inputs(srv.url)
    entry["wall_s"] = round(time.perf_counter() - t0, 2)
    entry["server_cpu_s"] = round(srv.cpu_seconds() - cpu0, 2)
    entry["loadavg_start"], entry["loadavg_end"] = [round(x, 2) for x in load0], [round(x, 2) for x in
                                                                                  os.getloadavg()]
    for f in entry["fairness"].values():
        f["hello_delay_s"] = round(f["hello_s"] - entry["idle_hello_s"], 3)
    return entry


def _servers(model: str, before: str | None, tmp: Path) -> dict:
    # -P: the server imports dialogpt from PYTHONPATH (this tree, or the --before one), never from the cwd
    cmd = [sys.executable, "-P", "-m", "dialogpt.cli.serve", model, "--port", "0", "--device", "cpu", "--threads", "1",
           "--blocklist", "none", "--served-model-name", "bench", "--max-new-tokens", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    out = {}
    if before:
        src = tmp / "before"
        src.mkdir()
        archive = subprocess.run(["git", "archive", before], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        out["before"] = lambda: Server("before", cmd, None, "bench", {**env, "PYTHONPATH": str(src)})
    here = {**env, "PYTHONPATH": str(REPO)}
    out["after"] = lambda: Server("after", cmd, None, "bench", here)
    out["after_cap_50000"] = lambda: Server("after_cap_50000", [*cmd, "--max-messages", "50000"], None, "bench",
                                            here)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", help="a git revision to measure side by side (e.g. the commit before issue 27)")
    p.add_argument("--servers", nargs="+", default=["before", "after", "after_cap_50000"])
    p.add_argument("--output", help="also write the JSON here")
    args = p.parse_args(argv)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-fair-") as tmp:
        model = str(build_tiny_model(Path(tmp) / "model"))
        makers = _servers(model, args.before, Path(tmp))
        for name in args.servers:
            if name not in makers:
                results[name] = {"error": "not run (give --before REV for the 'before' server)"}
                continue
            print(f"{name}:", file=sys.stderr, flush=True)
            srv = makers[name]()
            try:
                srv.wait_ready(300)
                results[name] = measure(srv)
            except Exception as e:  # one server that cannot run must not lose the others' figures
                results[name] = {"error": f"{type(e).__name__}: {str(e)[-500:]}"}
            finally:
                srv.stop()
    return emit({"bench": "serve_fairness", "before": args.before, "cpu_cores": os.cpu_count(),
                 "model": "tiny-random-gpt2 (2 layers, 64 wide, 256 positions), 4 new tokens per reply",
                 "servers": results}, args.output)


if __name__ == "__main__":
    sys.exit(main())
