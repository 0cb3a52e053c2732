#!/usr/bin/env python
"""dialogpt-serve vs ``transformers serve`` side by side, same tiny model, same load (prints JSON).

Each server runs as its own process on 127.0.0.1 with the same torch thread count; ``--clients``
threads (16, then 64) each send ``--requests`` streamed chat completions one after another (a 503
is retried after 10 ms and counted). Reported per server and load: requests/s, latency p50/p95,
time to first token (first content chunk) p50/p95, the server process's CPU seconds beside the
wall seconds, and the tokens each reply had (so equal work is visible).

Servers: ``ours`` (dialogpt-serve: continuous batching), ``transformers`` (``transformers serve
MODEL``), ``transformers_cb`` (``--continuous-batching``) and, when git has it, ``old_static``
(the stdlib server this repo had before, commit ``--old-commit``: one generate call per batch of
waiting requests, streamed only after the whole reply).

The model is a tiny random GPT-2 built here (as the tests use) whose output row for EOS is zero, so
greedy decoding never picks EOS (every other logit is a random draw, the largest of ~1,000 is well
above 0): every server writes exactly ``--max-tokens`` tokens per request, whatever it does with
``min_new_tokens`` (transformers' continuous batching ignores it). ``completion_tokens`` in the JSON
shows the work per request.

    python bench/serve.py            # a few minutes on 2 shared CPU cores
    python bench/serve.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from generate import build_tiny_model, make_contexts  # noqa: E402

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))], 4)


class Server:
    """A server subprocess: its URL, the model name clients send, and its CPU seconds."""

    def __init__(self, name: str, cmd: list[str], url: str | None, model: str, env: dict, extra: dict | None = None):
        self.name, self.model, self.extra = name, model, extra or {}
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self.url = url

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self._tail()}")
            if self.url is None:
                m = re.search(r"http://127\.0\.0\.1:\d+", self._tail(4000))
                self.url = m.group(0) if m else None
            if self.url is not None:
                try:
                    if httpx.get(self.url + "/v1/models", timeout=5).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s: {self._tail()}")

    def _tail(self, n: int = 600) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-n:]

    def cpu_seconds(self) -> float:
        import psutil

        p = psutil.Process(self.proc.pid)
        procs = [p, *p.children(recursive=True)]
        return sum(x.cpu_times().user + x.cpu_times().system for x in procs)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _one_request(client: httpx.Client, srv: Server, body: dict) -> tuple[int, float | None, int]:
    """(status, seconds to the first content chunk, content chunks) of one streamed request."""
    t0 = time.perf_counter()
    first, chunks = None, 0
    with client.stream("POST", srv.url + "/v1/chat/completions", json={**body, **srv.extra}) as resp:
        if resp.status_code != 200:
            resp.read()
            return resp.status_code, None, 0
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            obj = json.loads(line[6:])
            if obj.get("choices") and (obj["choices"][0].get("delta") or {}).get("content"):
                chunks += 1
                if first is None:
                    first = time.perf_counter() - t0
    return 200, first, chunks


def run_load(srv: Server, contexts, clients: int, requests: int, max_tokens: int) -> dict:
    lat, ttft, chunk_counts, errors, rejected = [], [], [], [], [0]
    lock = threading.Lock()

    def client(ci: int) -> None:
        with httpx.Client(timeout=300) as c:
            for k in range(requests):
                ctx = contexts[(ci * requests + k) % len(contexts)]
                msgs = [{"role": "user" if (len(ctx) - j) % 2 else "assistant", "content": t}
                        for j, t in enumerate(ctx)]
                body = {"model": srv.model, "messages": msgs, "max_tokens": max_tokens, "temperature": 0,
                        "stream": True}
                t0 = time.perf_counter()
                while True:
                    try:
                        status, first, chunks = _one_request(c, srv, body)
                    except httpx.HTTPError as e:
                        with lock:
                            errors.append(type(e).__name__)
                        break
                    if status == 503:
                        with lock:
                            rejected[0] += 1
                        time.sleep(0.01)
                        continue
                    with lock:
                        if status == 200:
                            lat.append(time.perf_counter() - t0)
                            ttft.append(first if first is not None else float("nan"))
                            chunk_counts.append(chunks)
                        else:
                            errors.append(str(status))
                    break

    cpu0, client0, t0 = srv.cpu_seconds(), time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu, client_cpu = time.perf_counter() - t0, srv.cpu_seconds() - cpu0, time.process_time() - client0
    ttft_ok = [x for x in ttft if x == x]
    return {
        "clients": clients, "requests": clients * requests, "ok": len(lat), "errors": len(errors),
        "retried_503": rejected[0], "wall_s": round(wall, 3), "server_cpu_s": round(cpu, 3),
        "client_cpu_s": round(client_cpu, 3),
        "requests_per_s": round(len(lat) / wall, 2) if wall else None,
        "latency_s": {"p50": _pct(lat, 50), "p95": _pct(lat, 95)},
        "ttft_s": {"p50": _pct(ttft_ok, 50), "p95": _pct(ttft_ok, 95)},
        "content_chunks_per_reply": {"min": min(chunk_counts, default=None), "max": max(chunk_counts, default=None)},
    }


def _usage_tokens(srv: Server, max_tokens: int) -> int | None:
    body = {"model": srv.model, "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": max_tokens, "temperature": 0, **srv.extra}
    resp = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=300)
    return resp.json().get("usage", {}).get("completion_tokens") if resp.status_code == 200 else None


def _no_eos_model(out: Path) -> str:
    """The bench's tiny GPT-2 with an untied output layer whose EOS row is zero (see the docstring)."""
    import torch
    from transformers import GPT2LMHeadModel

    build_tiny_model(out)
    tied = GPT2LMHeadModel.from_pretrained(str(out))
    tied.config.tie_word_embeddings = False
    model = GPT2LMHeadModel(tied.config)
    model.load_state_dict(tied.state_dict(), strict=False)
    with torch.no_grad():
        model.lm_head.weight.copy_(tied.transformer.wte.weight)
        model.lm_head.weight[tied.config.eos_token_id] = 0
    model.save_pretrained(str(out))
    return str(out)


def _servers(model: str, args, env: dict, tmp: Path) -> dict:
    tserve = str(Path(sys.executable).parent / "transformers")
    out: dict = {"ours": lambda: Server("ours", [
        sys.executable, "-m", "dialogpt.cli.serve", model, "--port", "0", "--device", "cpu", "--threads",
        str(args.threads), "--blocklist", "none", "--served-model-name", "bench", "--max-batch", str(args.max_batch),
        "--max-queue", "256"], None, "bench", env)}
    for name, flags in (("transformers", []), ("transformers_cb", ["--continuous-batching"])):
        port = _free_port()
        out[name] = (lambda port=port, flags=flags, name=name: Server(
            name, [tserve, "serve", model, "--port", str(port), "--device", "cpu", *flags],
            f"http://127.0.0.1:{port}", model, env))
    old = subprocess.run(["git", "show", f"{args.old_commit}:dialogpt/serve/app.py"], cwd=REPO,
                         capture_output=True, text=True)
    if old.returncode == 0:
        (tmp / "old_app.py").write_text(old.stdout)
        (tmp / "run_old.py").write_text(_OLD_RUNNER)
        out["old_static"] = lambda: Server("old_static", [sys.executable, str(tmp / "run_old.py"),
                                                          str(tmp / "old_app.py"), model, str(args.threads)],
                                           None, "bench", env)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 4 clients, 2 requests each, ours only")
    p.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    p.add_argument("--requests", type=int, default=4, help="requests per client")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--max-batch", type=int, default=64, help="dialogpt-serve --max-batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads in every server (OMP_NUM_THREADS)")
    p.add_argument("--servers", nargs="+", default=["ours", "transformers", "transformers_cb", "old_static"])
    p.add_argument("--old-commit", default="c0d389d", help="commit whose dialogpt/serve/app.py is the old server")
    p.add_argument("--start-timeout", type=float, default=300)
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.servers = [4], 2, ["ours"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        model = _no_eos_model(Path(tmp) / "model")
        contexts = make_contexts(64)
        makers = _servers(model, args, env, Path(tmp))
        for name in args.servers:
            if name not in makers:
                results[name] = {"error": "not available (git has no old server at --old-commit)"}
                continue
            srv = makers[name]()
            try:
                t0 = time.perf_counter()
                srv.wait_ready(args.start_timeout)
                entry: dict = {"startup_s": round(time.perf_counter() - t0, 1),
                               "completion_tokens": _usage_tokens(srv, args.max_tokens)}
                for n in args.clients:
                    entry[f"clients_{n}"] = run_load(srv, contexts, n, args.requests, args.max_tokens)
                results[name] = entry
            except Exception as e:  # one server that cannot run must not lose the others' figures
                results[name] = {"error": f"{type(e).__name__}: {str(e)[-500:]}"}
            finally:
                srv.stop()
            print(f"{name}: {json.dumps(results[name])[:300]}", file=sys.stderr, flush=True)
    import torch
    import transformers

    print(json.dumps({
        "bench": "serve", "model": "tiny-random-gpt2 (2 layers, 64 wide), exactly --max-tokens new tokens",
        "device": "cpu", "torch_threads_per_server": args.threads, "cpu_cores": os.cpu_count(),
        "transformers": transformers.__version__, "torch": torch.__version__, "max_tokens": args.max_tokens,
        "requests_per_client": args.requests, "quick": args.quick, "servers": results,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
