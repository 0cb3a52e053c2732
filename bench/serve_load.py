"""The load side of bench/serve.py: a server subprocess (its CPU seconds and peak memory) and the
clients that drive it (streamed greedy chat completions, 503s retried after 10 ms and counted)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
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

    def _procs(self) -> list:
        import psutil

        p = psutil.Process(self.proc.pid)
        return [p, *p.children(recursive=True)]

    def cpu_seconds(self) -> float:
        return sum(x.cpu_times().user + x.cpu_times().system for x in self._procs())

    def memory_mb(self) -> dict:
        """Resident memory of the server's processes now, and their peak so far (VmHWM), in MB."""
        rss, peak = 0, 0
        for x in self._procs():
            rss += x.memory_info().rss
            status = Path(f"/proc/{x.pid}/status")
            if status.is_file():
                m = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
                peak += int(m.group(1)) * 1024 if m else 0
        return {"rss_mb": round(rss / 2**20), "peak_rss_mb": round(peak / 2**20) if peak else None}

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


def chat_messages(ctx: list[str]) -> list[dict]:
    """A context's turns as chat messages, the last one the user's."""
    return [{"role": "user" if (len(ctx) - j) % 2 else "assistant", "content": t} for j, t in enumerate(ctx)]


def run_load(srv: Server, contexts, clients: int, requests: int, max_tokens: int, reply_tokens: int | None) -> dict:
    """``clients`` threads, each sending ``requests`` streamed greedy chat completions one after another.
    ``reply_tokens`` (what one reply measured, every reply being the same length) turns the server's CPU
    seconds into milliseconds per generated token."""
    lat, ttft, chunk_counts, errors, rejected = [], [], [], [], [0]
    lock = threading.Lock()

    def client(ci: int) -> None:
        with httpx.Client(timeout=300) as c:
            for k in range(requests):
                ctx = contexts[(ci * requests + k) % len(contexts)]
                body = {"model": srv.model, "messages": chat_messages(ctx), "max_tokens": max_tokens, "temperature": 0,
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

    load0 = os.getloadavg()
    cpu0, client0, t0 = srv.cpu_seconds(), time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu, client_cpu = time.perf_counter() - t0, srv.cpu_seconds() - cpu0, time.process_time() - client0
    ttft_ok = [x for x in ttft if x == x]
    tokens = len(lat) * reply_tokens if reply_tokens else None
    return {
        "clients": clients, "requests": clients * requests, "ok": len(lat), "errors": len(errors),
        "retried_503": rejected[0], "wall_s": round(wall, 3), "server_cpu_s": round(cpu, 3),
        "client_cpu_s": round(client_cpu, 3), "generated_tokens": tokens,
        "server_cpu_ms_per_token": round(1000 * cpu / tokens, 2) if tokens else None,
        "requests_per_s": round(len(lat) / wall, 2) if wall else None,
        "latency_s": {"p50": pct(lat, 50), "p95": pct(lat, 95)},
        "ttft_s": {"p50": pct(ttft_ok, 50), "p95": pct(ttft_ok, 95)},
        "content_chunks_per_reply": {"min": min(chunk_counts, default=None), "max": max(chunk_counts, default=None)},
        "memory_after": srv.memory_mb(), "loadavg_before": [round(x, 2) for x in load0],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


