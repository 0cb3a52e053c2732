#!/usr/bin/env python
"""Decoding and serving throughput, side by side in one run (prints JSON).

1. responses/s for the same contexts decoded one at a time vs in batches (``--batch-size``,
   left padding), greedy, plus a check that both give identical replies;
2. the OpenAI-compatible server on 127.0.0.1 under a bounded load (``--clients`` threads, each
   sending ``--requests`` chat completions, retrying on 503): p50/p95 latency and requests/s, with
   cross-request batching on (``--server-batch``) and off (1).

Without ``--model`` a tiny random GPT-2 (2 layers, 64 wide, as the tests use) and a tokenizer
trained on the shipped Pushshift sample are built in a temp dir, so it runs offline anywhere.

    python bench/generate.py            # ~15-30 s on 2 CPU cores
    python bench/generate.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _pushshift_texts() -> list[str]:
    texts = []
    for name, keys in (("test_comments.json", ("body",)), ("test_submissions.json", ("title", "selftext"))):
        with open(REPO / "tests" / "data" / "pushshift" / name, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                texts.extend(str(rec.get(k) or "") for k in keys)
    return [" ".join(t.split()) for t in texts if t.strip()]


def build_tiny_model(out_dir: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dialogpt.tokenization import train_bytelevel_tokenizer

    tok = train_bytelevel_tokenizer(_pushshift_texts(), vocab_size=1000, save_dir=out_dir)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_layer=2, n_head=2, n_embd=64, n_positions=256,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(str(out_dir))
    return out_dir


def make_contexts(n: int) -> list[list[str]]:
    """n contexts of 1-3 turns cut from real Reddit text (varied lengths, so batches need padding)."""
    texts = [t for t in _pushshift_texts() if len(t) > 10]
    out = []
    for i in range(n):
        k = 1 + i % 3
        out.append([" ".join(texts[(i * 7 + j) % len(texts)].split()[: 6 + (i * 5 + j) % 20]) for j in range(k)])
    return out


def bench_batching(responder, contexts, batch_size: int, repeats: int) -> dict:
    from dialogpt.decode import GenerationOptions

    opts = responder.options
    assert isinstance(opts, GenerationOptions)
    responder.batch_size = batch_size
    responder.respond_batch(contexts[:batch_size])  # warm-up
    times = {"one_by_one": [], "batched": []}
    texts = {}
    for _ in range(repeats):  # alternate, so drift in machine load hits both modes alike
        for mode, bs in (("one_by_one", 1), ("batched", batch_size)):
            responder.batch_size = bs
            t0 = time.perf_counter()
            replies = responder.respond_batch(contexts)
            times[mode].append(time.perf_counter() - t0)
            texts[mode] = [r.candidates[0].token_ids for r in replies]
    med = {m: statistics.median(v) for m, v in times.items()}
    rps = {m: len(contexts) / med[m] for m in med}
    return {
        "contexts": len(contexts), "batch_size": batch_size, "max_new_tokens": opts.max_new_tokens,
        "repeats": repeats, "seconds_median": {m: round(v, 4) for m, v in med.items()},
        "responses_per_s": {m: round(v, 2) for m, v in rps.items()},
        "speedup_batched_vs_one_by_one": round(rps["batched"] / rps["one_by_one"], 2),
        "identical_replies": texts["one_by_one"] == texts["batched"],
    }


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def bench_server(responder, contexts, clients: int, requests: int, max_batch: int, max_queue: int,
                 max_tokens: int) -> dict:
    import contextlib

    from dialogpt.serve.app import ServerConfig, create_app
    from dialogpt.serve.runner import serving_in_thread

    cfg = ServerConfig(host="127.0.0.1", port=0, model_name="bench", max_queue=max_queue, max_batch=max_batch,
                       max_connections=clients + 8)
    app = create_app(responder, cfg)
    stack = contextlib.ExitStack()
    url = stack.enter_context(serving_in_thread(app, cfg))
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    latencies: list[float] = []
    rejected = [0]
    errors: list[str] = []
    lock = threading.Lock()

    def client(ci: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=120)
        for k in range(requests):
            ctx = contexts[(ci * requests + k) % len(contexts)]
            msgs = [{"role": "user" if (len(ctx) - j) % 2 else "assistant", "content": c} for j, c in enumerate(ctx)]
            body = json.dumps({"model": "bench", "messages": msgs, "temperature": 0, "max_tokens": max_tokens})
            t0 = time.perf_counter()
            for _ in range(10_000):
                try:
                    conn.request("POST", "/v1/chat/completions", body=body,
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=120)
                    with lock:
                        errors.append(type(e).__name__)
                    continue
                if resp.status == 503:
                    with lock:
                        rejected[0] += 1
                    time.sleep(0.01)
                    continue
                with lock:
                    if resp.status == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors.append(str(resp.status))
                break
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    counters = dict(app.state.scheduler.counters)
    stack.close()
    return {
        "clients": clients, "requests_per_client": requests, "server_max_batch": max_batch, "max_queue": max_queue,
        "ok": len(latencies), "rejected_503_then_retried": rejected[0], "errors": len(errors),
        "latency_s": {"p50": round(_percentile(latencies, 50), 4), "p95": round(_percentile(latencies, 95), 4),
                      "max": round(max(latencies), 4) if latencies else None},
        "requests_per_s": round(len(latencies) / wall, 2), "decode_steps": counters["steps"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model dir or hub id (default: a tiny random GPT-2 built here)")
    p.add_argument("--quick", action="store_true", help="smoke run: few contexts and requests")
    p.add_argument("--contexts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=8, help="requests per client")
    p.add_argument("--server-batch", type=int, default=8)
    p.add_argument("--max-queue", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads for both modes (default 1: tiny matmuls gain nothing from more, "
                        "and on a shared machine OpenMP spin-waits make multi-threaded timings erratic)")
    args = p.parse_args(argv)
    if args.quick:
        args.contexts, args.repeats, args.clients, args.requests, args.max_new_tokens = 16, 1, 4, 2, 8

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    from dialogpt.decode import GenerationOptions, Responder

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        model = args.model or str(build_tiny_model(Path(tmp)))
        responder = Responder.from_pretrained(model, device=args.device,
                                              options=GenerationOptions(max_new_tokens=args.max_new_tokens))
        contexts = make_contexts(args.contexts)
        batching = bench_batching(responder, contexts, args.batch_size, args.repeats)
        responder.batch_size = max(args.batch_size, args.server_batch)
        serving = {
            f"max_batch_{b}": bench_server(responder, contexts, args.clients, args.requests, b, args.max_queue,
                                           args.max_new_tokens)
            for b in (1, args.server_batch)
        }
    lo, hi = serving["max_batch_1"], serving[f"max_batch_{args.server_batch}"]
    result = {
        "bench": "generate", "model": args.model or "tiny-random-gpt2 (2 layers, 64 wide)",
        "device": args.device, "torch_threads": torch.get_num_threads(), "quick": args.quick,
        "batching": batching, "server": serving,
        "server_throughput_ratio_batched_vs_unbatched": round(hi["requests_per_s"] / lo["requests_per_s"], 2)
        if lo["requests_per_s"] else None,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
