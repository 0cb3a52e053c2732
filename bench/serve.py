#!/usr/bin/env python
"""dialogpt-serve vs ``transformers serve`` side by side, same model, same load (prints JSON).

Each server runs as its own process on 127.0.0.1 with the same torch thread count. After ``--warmup``
requests that are not counted, ``--clients`` threads (16, then 64) each send ``--requests`` streamed
greedy chat completions one after another (a 503 is retried after 10 ms and counted). Reported per
server and load: requests/s, latency and time to first token (first content chunk) p50/p95, the
server's CPU seconds beside the wall seconds and per generated token, its resident memory (now and
peak), the load average before and after, and the tokens each reply had (so equal work is visible).
The machine is shared: compare servers within one run, and CPU seconds more than wall seconds.

Servers: ``ours`` (dialogpt-serve), ``ours_stock_matmul`` (the same with ``--cpu-matmul stock``:
PyTorch's MKL matmuls instead of oneDNN, to separate the kernels' share from the scheduler's),
``transformers`` (``transformers serve MODEL``), ``transformers_cb`` (``--continuous-batching``, its
paged cache capped by ``--cb-cache-gib``: uncapped it takes the machine's free memory) and, when git
has it, ``old_static`` (the stdlib server this repo had before, commit ``--old-commit``).

The model (``bench/serve_model.py``): random GPT-2 weights at ``--shape`` (tiny, 117M, 345M) with the
bench's ~1,000-token vocabulary or ``--vocab full`` (50,257 rows), never writing EOS, so every reply is
exactly ``--max-tokens`` tokens; or a real checkpoint with ``--model DIR``. After the loads ``ours``
answers ``--parity`` contexts (greedy, all at once, so rows join and leave a running batch) and the
JSON says whether each reply equals the :class:`~dialogpt.decode.Responder`'s in this process.
``--profile`` adds py-spy's split of our model thread at 16 and 64 rows (``bench/serve_profile.py``).

    python bench/serve.py --quick            # smoke run (tiny model, ours only)
    # the committed bench/serve.results.json (~10 minutes on 2 shared cores):
    python bench/serve.py --shape 117M --servers ours ours_stock_matmul transformers_cb --clients 16 64 \
        --requests 2 --profile > bench/serve.results.json
    # the same at GPT-2's real vocabulary (bench/serve.117M-full.results.json):
    python bench/serve.py --shape 117M --vocab full --servers ours transformers_cb --clients 16 64 --requests 2
    # GPU, prepared for the first lent device (a few minutes; time-boxed):
    timeout 420 python bench/serve.py --shape 345M --vocab full --device cuda --servers ours transformers_cb \
        --clients 16 64 --requests 2 > bench/serve.345M-cuda.results.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from generate import make_contexts  # noqa: E402
from serve_load import Server, chat_messages, free_port, run_load  # noqa: E402
from serve_model import SHAPES, build_bench_model, cb_num_blocks, model_facts_line  # noqa: E402

_OLD_RUNNER = """
import importlib.util, sys, transformers
transformers.logging.set_verbosity_error()
import torch; torch.set_num_threads(int(sys.argv[3]))
spec = importlib.util.spec_from_file_location("old_app", sys.argv[1])
old = importlib.util.module_from_spec(spec); sys.modules["old_app"] = old; spec.loader.exec_module(old)
from dialogpt.decode import Responder
r = Responder.from_pretrained(sys.argv[2], device="cpu", batch_size=64)
srv = old.make_server(r, old.ServerConfig(host="127.0.0.1", port=0, model_name="bench", max_queue=256,
                                          max_batch=16, max_connections=128))
print("listening on " + srv.url, file=sys.stderr, flush=True)
srv.serve_forever()
"""


def _usage_tokens(srv: Server, max_tokens: int) -> int | None:
    body = {"model": srv.model, "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": max_tokens, "temperature": 0, **srv.extra}
    resp = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=300)
    return resp.json().get("usage", {}).get("completion_tokens") if resp.status_code == 200 else None


def _servers(model: str, args, env: dict, tmp: Path, cb_cap: dict) -> dict:
    tserve = str(Path(sys.executable).parent / "transformers")
    out: dict = {}
    for name, matmul in (("ours", "auto"), ("ours_stock_matmul", "stock")):
        out[name] = (lambda name=name, matmul=matmul: Server(name, [
            sys.executable, "-m", "dialogpt.cli.serve", model, "--port", "0", "--device", args.device, "--threads",
            str(args.threads), "--blocklist", "none", "--served-model-name", "bench", "--max-batch",
            str(args.max_batch), "--max-queue", "256", "--cpu-matmul", matmul], None, "bench", env))
    cb_flags = ["--continuous-batching", "--cb-num-blocks", str(cb_cap["num_blocks"])]
    for name, flags in (("transformers", []), ("transformers_cb", cb_flags)):
        port = free_port()
        out[name] = (lambda port=port, flags=flags, name=name: Server(
            name, [tserve, "serve", model, "--port", str(port), "--device", args.device, *flags],
            f"http://127.0.0.1:{port}", model, env))
    old = subprocess.run(["git", "show", f"{args.old_commit}:dialogpt/serve/app.py"], cwd=REPO,
                         capture_output=True, text=True)
    if old.returncode == 0 and args.device == "cpu":
        (tmp / "old_app.py").write_text(old.stdout)
        (tmp / "run_old.py").write_text(_OLD_RUNNER)
        out["old_static"] = lambda: Server("old_static", [sys.executable, str(tmp / "run_old.py"),
                                                          str(tmp / "old_app.py"), model, str(args.threads)],
                                           None, "bench", env)
    return out


def _parity_replies(srv: Server, contexts, max_tokens: int) -> list[str | None]:
    """Non-streamed greedy replies to ``contexts``, all sent at once (they share the running batch)."""
    from concurrent.futures import ThreadPoolExecutor

    def ask(ctx):
        body = {"model": srv.model, "messages": chat_messages(ctx), "max_tokens": max_tokens, "temperature": 0}
        resp = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=600)
        return resp.json()["choices"][0]["message"]["content"] if resp.status_code == 200 else None

    with ThreadPoolExecutor(len(contexts)) as pool:
        return list(pool.map(ask, contexts))


def _parity_check(model: str, args, contexts, got: list[str | None]) -> dict:
    """The Responder's greedy replies (this process, the server's request mapping) against ``got``."""
    import torch

    from dialogpt.decode import Responder
    from dialogpt.serve.schemas import parse_chat

    torch.set_num_threads(args.threads)
    r = Responder.from_pretrained(model, device=args.device, batch_size=16)
    reqs = [parse_chat({"messages": chat_messages(c), "max_tokens": args.max_tokens, "temperature": 0},
                       r.options, "bench", 1, 4096) for c in contexts]
    want = [x.text for x in r.respond_batch([q.turns for q in reqs], reqs[0].options)]
    bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
    return {"contexts": len(contexts), "equal": len(contexts) - len(bad),
            "mismatches": [{"context": i, "server": got[i], "responder": want[i]} for i in bad[:3]]}


def _measure(name: str, makers: dict, args, contexts) -> tuple[dict, list | None]:
    srv = makers[name]()
    parity = None
    try:
        t0 = time.perf_counter()
        srv.wait_ready(args.start_timeout)
        entry: dict = {"startup_s": round(time.perf_counter() - t0, 1), "memory_idle": srv.memory_mb()}
        entry["completion_tokens"] = _usage_tokens(srv, args.max_tokens)
        if args.warmup:  # first-use costs (allocations, kernel set-up) are no server's steady state
            run_load(srv, contexts[::-1], args.warmup, 1, args.max_tokens, None)
        for n in args.clients:
            entry[f"clients_{n}"] = run_load(srv, contexts, n, args.requests, args.max_tokens,
                                             entry["completion_tokens"])
        if name == "ours" and args.parity:
            parity = _parity_replies(srv, contexts[:args.parity], args.max_tokens)
    except Exception as e:  # one server that cannot run must not lose the others' figures
        entry = {"error": f"{type(e).__name__}: {str(e)[-500:]}"}
    finally:
        srv.stop()
    print(f"{name}: {json.dumps(entry)[:300]}", file=sys.stderr, flush=True)
    return entry, parity


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 4 clients, 2 requests each, ours only")
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="random GPT-2 weights at this shape")
    p.add_argument("--vocab", choices=["bench", "full"], default="bench",
                   help="the bench tokenizer's ~1,000 rows, or GPT-2's 50,257 (the output layer's real cost)")
    p.add_argument("--model", help="serve this checkpoint instead of a random one (--shape/--vocab ignored)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (every server)")
    p.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    p.add_argument("--requests", type=int, default=4, help="requests per client")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--max-batch", type=int, default=64, help="dialogpt-serve --max-batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads in every server (OMP_NUM_THREADS)")
    p.add_argument("--servers", nargs="+", default=["ours", "transformers", "transformers_cb", "old_static"])
    p.add_argument("--old-commit", default="c0d389d", help="commit whose dialogpt/serve/app.py is the old server")
    p.add_argument("--start-timeout", type=float, default=300)
    p.add_argument("--warmup", type=int, default=8, help="concurrent requests sent (and not counted) before the loads")
    p.add_argument("--cb-cache-gib", type=float, default=2.0,
                   help="transformers_cb's paged KV cache (--cb-num-blocks), never under one block per client")
    p.add_argument("--parity", type=int, default=8, help="contexts whose greedy replies ours must share with "
                                                         "the Responder (0: no check)")
    p.add_argument("--profile", action="store_true", help="add py-spy's split of our decode loop at 16 and 64 rows")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.servers, args.parity = [4], 2, ["ours"], min(args.parity, 4)
        args.warmup = min(args.warmup, 2)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    results: dict = {}
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        if args.model:
            model = args.model
            facts = {"model": model, **{k: v for k, v in json.loads((Path(model) / "config.json").read_text()).items()
                                        if k in ("n_layer", "n_embd", "n_head", "vocab_size")}}
        else:
            model = str(Path(tmp) / "model")
            facts = build_bench_model(Path(model), args.shape, args.vocab)
        shape = {k: facts.get(k) for k in ("n_layer", "n_embd", "n_head")}
        cb_cap = cb_num_blocks(shape, args.cb_cache_gib, max(args.clients))
        contexts = make_contexts(64)
        makers = _servers(model, args, env, Path(tmp), cb_cap)
        parity = None
        for name in args.servers:
            if name not in makers:
                results[name] = {"error": "not available (no old server at --old-commit, or not on --device cpu)"}
                continue
            results[name], got = _measure(name, makers, args, contexts)
            parity = got if got is not None else parity
        if parity is not None:
            results["ours"]["greedy_parity_with_responder"] = _parity_check(model, args, contexts[:args.parity], parity)
        profile = None
        if args.profile:
            from serve_profile import profile_rows

            profile = {str(n): profile_rows(model, n, args.max_tokens, args.threads, args.device) for n in (16, 64)}
    import torch
    import transformers

    print(json.dumps({
        "bench": "serve", "command": "python bench/serve.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": facts if args.model else {**facts, "description": model_facts_line(facts)},
        "device": args.device, "torch_threads_per_server": args.threads, "cpu_cores": os.cpu_count(),
        "transformers": transformers.__version__, "torch": torch.__version__, "max_tokens": args.max_tokens,
        "requests_per_client": args.requests, "warmup_requests": args.warmup, "quick": args.quick, "transformers_cb_cache": cb_cap,
        "loadavg_start": load_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "servers": results, "decode_profile": profile,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
