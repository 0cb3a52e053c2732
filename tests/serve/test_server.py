"""dialogpt-serve (FastAPI + uvicorn) on 127.0.0.1 with the tiny model: the openai client (normal and
streaming), bad requests over plain HTTP, a full queue (503), header deadlines, 20 concurrent clients."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from contextlib import contextmanager

import openai
import pytest

from dialogpt.decode import GenerationOptions, Responder
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.runner import serving_in_thread

MESSAGES = [{"role": "system", "content": "ignored by DialoGPT"},
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "how are you?"}]
HISTORY = ["hello there", "hi", "how are you?"]


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    return Responder.from_pretrained(str(tiny_model_dir), device="cpu",
                                     options=GenerationOptions(max_new_tokens=8))


class _Running:
    def __init__(self, app, url: str):
        self.app, self.url = app, url
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
        self.server_address = (host, int(port))

    @property
    def worker(self):
        return self.app.state.scheduler


@contextmanager
def serving(responder, **config):
    cfg = ServerConfig(host="127.0.0.1", port=0, model_name="tiny", **config)
    app = create_app(responder, cfg)
    with serving_in_thread(app, cfg) as url:
        yield _Running(app, url)


@pytest.fixture(scope="module")
def server(responder):
    with serving(responder, max_queue=8, max_batch=4, max_body_bytes=4096, max_tokens_limit=512, max_n=4) as srv:
        yield srv


def _client(srv) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def _http(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_openai_client_models_and_chat_completion(server, responder):
    c = _client(server)
    assert [m.id for m in c.models.list().data] == ["tiny"]
    out = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=8)
    expected = responder.respond(HISTORY, GenerationOptions(max_new_tokens=8))
    assert out.object == "chat.completion" and out.model == "tiny" and len(out.choices) == 1
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == expected.text
    assert out.choices[0].finish_reason == ("stop" if expected.candidates[0].finished else "length")
    assert out.usage.prompt_tokens == expected.prompt_tokens
    assert out.usage.completion_tokens == len(expected.candidates[0].token_ids) + expected.candidates[0].finished
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    stop = expected.text[2:4]
    assert len(stop) == 2, "the tiny model's greedy reply is longer than 4 characters"
    cut = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=8, stop=[stop])
    assert cut.choices[0].message.content == expected.text[: expected.text.find(stop)].rstrip()
    assert cut.choices[0].finish_reason == "stop"
    many = c.chat.completions.create(model="tiny", messages=MESSAGES, n=3, temperature=1.3, top_p=0.9, max_tokens=5)
    assert [ch.index for ch in many.choices] == [0, 1, 2]
    assert all(ch.message.content for ch in many.choices)
    # A seed makes a sampled reply repeatable.
    seeded = [c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=1.5, max_tokens=6,
                                        seed=s).choices[0].message.content for s in (5, 5, 6)]
    assert seeded[0] == seeded[1] != seeded[2]


def test_streaming_matches_the_non_streamed_reply(server):
    c = _client(server)
    full = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=8)
    chunks = list(c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=8,
                                            stream=True, stream_options={"include_usage": True}))
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == full.choices[0].message.content
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].usage.total_tokens == full.usage.total_tokens
    # On the wire: SSE events ending with data: [DONE].
    body = json.dumps({"model": "tiny", "messages": MESSAGES, "stream": True, "max_tokens": 3}).encode()
    status, headers, raw = _http(server, "POST", "/v1/chat/completions", body)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers["x-dialogpt-stream"] == "tokens"
    events = [e for e in raw.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)


def test_completions_route_penalties_and_the_rerank_mode_stream(server, responder):
    c = _client(server)
    expected = responder.respond(HISTORY, GenerationOptions(max_new_tokens=8))
    prompt = "<|endoftext|>".join(HISTORY) + "<|endoftext|>"
    out = c.completions.create(model="tiny", prompt=prompt, max_tokens=8, temperature=0)
    assert out.object == "text_completion" and out.choices[0].text == expected.text
    streamed = list(c.completions.create(model="tiny", prompt=prompt, max_tokens=8, temperature=0, stream=True))
    assert "".join(ch.choices[0].text for ch in streamed if ch.choices) == expected.text
    # OpenAI's penalties are applied (over the response only), not accepted and ignored.
    opts = GenerationOptions(max_new_tokens=8, frequency_penalty=2.0, presence_penalty=2.0)
    penalised = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=8,
                                          frequency_penalty=2.0, presence_penalty=2.0)
    assert penalised.choices[0].message.content == responder.respond(HISTORY, opts).text
    # n > 1 reranks whole candidates: it streams after choosing, and says so.
    body = json.dumps({"messages": MESSAGES, "stream": True, "max_tokens": 3, "n": 2, "temperature": 1.0}).encode()
    status, headers, raw = _http(server, "POST", "/v1/chat/completions", body)
    assert status == 200 and headers["x-dialogpt-stream"] == "after-choosing"
    chunks = [json.loads(e[6:]) for e in raw.decode().split("\n\n") if e.startswith("data: {")]
    assert sorted(ch["choices"][0]["index"] for ch in chunks if ch["choices"][0]["finish_reason"]) == [0, 1]


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"model": "tiny"}).encode(), 400, "messages"),
    (json.dumps({"messages": []}).encode(), 400, "messages"),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), 400, "role"),
    (json.dumps({"messages": [{"role": "user", "content": 5}]}).encode(), 400, "content"),
    (json.dumps({"messages": [{"role": "system", "content": "only"}]}).encode(), 400, "no user"),
    (json.dumps({"messages": MESSAGES, "temperature": "hot"}).encode(), 400, "temperature"),
    (json.dumps({"messages": MESSAGES, "temperature": 3}).encode(), 400, "temperature"),
    (json.dumps({"messages": MESSAGES, "max_tokens": 1000}).encode(), 400, "between 1 and 512"),
    (json.dumps({"messages": MESSAGES, "max_tokens": 2.5}).encode(), 400, "max_tokens"),
    (json.dumps({"messages": MESSAGES, "max_tokens": 300}).encode(), 400, "no room for a prompt"),
    (json.dumps({"messages": MESSAGES, "n": 0}).encode(), 400, "'n'"),
    (json.dumps({"messages": MESSAGES, "stream": "yes"}).encode(), 400, "stream"),
    (json.dumps({"messages": MESSAGES, "stream_options": {"include_usage": True}}).encode(), 400,
     "only allowed when 'stream' is true"),
    (json.dumps({"messages": MESSAGES, "model": "gpt-4"}).encode(), 404, "does not exist"),
    (json.dumps({"messages": MESSAGES, "tools": [{"type": "function"}]}).encode(), 400, "'tools' is not supported"),
    (json.dumps({"messages": MESSAGES, "logprobs": True}).encode(), 400, "'logprobs' is not supported"),
    (json.dumps({"messages": MESSAGES, "response_format": {"type": "json_object"}}).encode(), 400, "response_format"),
    (json.dumps({"messages": MESSAGES, "stop": ["a", 3]}).encode(), 400, "'stop'"),
    (json.dumps({"messages": MESSAGES, "presence_penalty": 3}).encode(), 400, "presence_penalty"),
    (json.dumps({"messages": MESSAGES, "stream_options": 5, "stream": True}).encode(), 400, "stream_options"),
    (b"x" * 5000, 413, "at most 4096"),
    (b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}', 400, "not valid Unicode"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "stop": "\\udfff"}', 400, "'stop'"),
])
def test_bad_requests_get_clear_json_errors(server, body, status, needle):
    got, _, raw = _http(server, "POST", "/v1/chat/completions", body)
    assert got == status
    err = json.loads(raw)["error"]
    assert needle in err["message"] and err["type"]


def test_routes_methods_and_raw_garbage_never_crash(server):
    assert _http(server, "GET", "/nowhere")[0] == 404
    assert _http(server, "GET", "/v1/chat/completions")[0] == 405
    assert _http(server, "DELETE", "/v1/models")[0] == 405
    assert _http(server, "GET", "/v1/models/tiny")[0] == 200
    assert _http(server, "GET", "/v1/models/other")[0] == 404
    host, port = server.server_address[:2]
    for raw in (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n",  # no Content-Length
                b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(raw)
            first = s.recv(200)
            assert first.startswith(b"HTTP/"), first
    status, _, raw = _http(server, "GET", "/health")
    health = json.loads(raw)
    assert status == 200 and health["status"] == "ok" and health["model"] == "tiny"
    assert health["max_queue"] == 8 and health["failed"] == 0


def test_full_queue_answers_503_then_recovers(responder):
    with serving(responder, max_queue=1, max_batch=1) as srv:
        opened, entered = threading.Event(), threading.Event()
        # the model thread runs this call between steps, and stays in it until the gate opens
        held = threading.Thread(target=lambda: srv.worker.call(lambda: entered.set() or opened.wait(60)))
        held.start()
        assert entered.wait(60)
        body = json.dumps({"model": "tiny", "messages": MESSAGES, "max_tokens": 2}).encode()
        results = []
        first = threading.Thread(target=lambda: results.append(_http(srv, "POST", "/v1/chat/completions", body)))
        first.start()
        deadline = time.monotonic() + 60
        while srv.worker.snapshot()["queue_depth"] < 1 and time.monotonic() < deadline:  # job 1 waits
            time.sleep(0.01)
        status, headers, raw = _http(srv, "POST", "/v1/chat/completions", body)
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(raw)["error"]["code"] == "overloaded"
        opened.set()
        held.join(60)
        first.join(60)
        assert [r[0] for r in results] == [200]
        assert srv.worker.counters["rejected_busy"] == 1
        assert _http(srv, "POST", "/v1/chat/completions", body)[0] == 200


def test_idle_and_trickling_connections_are_closed_at_the_header_deadline(responder):
    with serving(responder, header_timeout=1.0) as srv:
        host, port = srv.server_address
        with socket.create_connection((host, port), timeout=30) as idle:
            idle.sendall(b"GET /health HTTP/1.1\r\n")  # never finishes its headers
            assert idle.recv(100) == b""  # closed by the server after header_timeout
        with socket.create_connection((host, port), timeout=30) as slow:
            sent, closed = 0, False
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                try:
                    slow.sendall(bytes([byte]))  # one byte every 50 ms: each byte must not extend the deadline
                except OSError:
                    closed = True
                    break
                sent += 1
                time.sleep(0.05)
            if not closed:
                slow.settimeout(5)
                try:
                    closed = slow.recv(100) == b""
                except OSError:
                    closed = True
            assert closed and sent < 200  # cut off around 1 s (20 bytes), not after the 200 bytes (10 s)
        assert _http(srv, "GET", "/health")[0] == 200


def test_twenty_concurrent_clients(responder):
    with serving(responder, max_queue=6, max_batch=4, max_connections=32) as srv:
        outcomes: dict[int, list[int]] = {}
        texts: dict[int, str] = {}

        def client(i: int) -> None:
            c = _client(srv)
            seen = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:  # retries on 503, bounded in time
                try:
                    out = c.chat.completions.create(
                        model="tiny", temperature=0, max_tokens=4,
                        messages=[{"role": "user", "content": f"message number {i % 5}"}])
                    seen.append(200)
                    texts[i] = out.choices[0].message.content
                    break
                except openai.APIStatusError as e:
                    seen.append(e.status_code)
                    time.sleep(0.05)
            outcomes[i] = seen

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert sorted(outcomes) == list(range(20))
        assert all(seen[-1] == 200 and set(seen) <= {200, 503} for seen in outcomes.values())
        # Same message -> same greedy reply, however the requests were batched together.
        for i in range(20):
            assert texts[i] == texts[i % 5]
        w = srv.worker.counters
        assert w["completed"] == 20 and w["failed"] == 0
        assert w["rejected_busy"] == sum(s.count(503) for s in outcomes.values())
        assert w["steps"] > 0


@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_dialogpt_serve_command_starts_answers_and_stops(tiny_model_dir, stop_signal):
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "dialogpt.cli.serve", str(tiny_model_dir), "--host", "127.0.0.1", "--port", "0",
         "--served-model-name", "tiny", "--device", "cpu", "--max-new-tokens", "3"],
        stderr=subprocess.PIPE, text=True,
        # as a background job of a non-interactive shell (CI, nohup, `cmd &`) starts it: SIGINT ignored,
        # so Python's own Ctrl-C handler is never installed and the server must install one itself
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        m, seen = None, []
        while m is None and len(seen) < 50:  # skip any warnings printed before the banner
            seen.append(proc.stderr.readline())
            m = re.search(r"http://127\.0\.0\.1:\d+", seen[-1])
        assert m, seen
        with urllib.request.urlopen(m.group(0) + "/health", timeout=30) as resp:
            assert json.loads(resp.read())["model"] == "tiny"
        req = urllib.request.Request(m.group(0) + "/v1/chat/completions", method="POST",
                                     data=json.dumps({"messages": MESSAGES, "model": "tiny"}).encode())
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.loads(resp.read())
        assert reply["usage"]["completion_tokens"] <= 3
    finally:
        proc.send_signal(getattr(signal, stop_signal))
        assert proc.wait(timeout=60) == 0  # a clean exit on either


def test_choices_skip_blocked_candidates_and_fill_with_the_fallback():
    from dialogpt.decode import Candidate, Reply
    from dialogpt.serve.app import _choices

    cands = [Candidate("bad", [1], True, blocked="classifier"), Candidate("good", [2, 3], True),
             Candidate("long", [4, 5, 6], False)]
    reply = Reply("good", cands, chosen=1, prompt_tokens=4)
    assert _choices(reply, 1, "fb") == [("good", "stop", 3)]
    assert _choices(reply, 3, "fb") == [("good", "stop", 3), ("long", "length", 3), ("fb", "content_filter", 0)]
    assert _choices(reply, 2, "fb", stop=["on", "oo"]) == [("g", "stop", 3), ("l", "stop", 3)]


def test_one_failing_request_does_not_fail_the_ones_batched_with_it(responder):
    from dialogpt.serve.batching import Job, Scheduler
    from dialogpt.serve.schemas import parse_chat

    class Picky:
        """Fails any batch that holds the history 'boom' (as a tokenizer error would)."""

        def __init__(self):
            self.calls = []

        def respond_batch(self, histories, options=None):
            self.calls.append(len(histories))
            if any(t.text == "boom" for h in histories for t in h):
                raise RuntimeError("bad input")
            return [f"ok {len(h)}" for h in histories]

    picky = Picky()
    sched = Scheduler(picky, max_batch=8, max_queue=8)
    events = {}
    # n=2 is the rerank mode: whole respond_batch calls over the requests waiting with the same options
    reqs = [parse_chat({"messages": [{"role": "user", "content": c}], "n": 2, "temperature": 1.0},
                       responder.options, "tiny", 4, 64) for c in ("fine", "boom", "also fine")]
    for i, r in enumerate(reqs):
        sched.submit(Job(r, lambda kind, payload, i=i: events.__setitem__(i, (kind, payload))))
    sched.start()  # queued before the model thread starts: one batch of 3
    try:
        deadline = time.monotonic() + 30
        while len(events) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sched.stop()
    assert picky.calls == [3, 1, 1, 1]
    assert events[0] == ("reply", "ok 1") and events[2] == ("reply", "ok 1")
    assert events[1][0] == "error" and isinstance(events[1][1], RuntimeError)
    assert sched.counters["completed"] == 2 and sched.counters["failed"] == 1


def test_a_port_in_use_or_out_of_range_is_a_clear_error(responder, tiny_model_dir, capsys):
    from dialogpt.cli.serve import main
    from dialogpt.serve.runner import bind_socket

    with pytest.raises(ValueError, match="--port"):
        ServerConfig(port=70000)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError) as e:
            bind_socket("127.0.0.1", port)
        assert not isinstance(e.value, RuntimeError) and e.value.errno is not None
        from transformers.utils import logging as hf_logging

        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        try:
            assert main([str(tiny_model_dir), "--port", str(port), "--device", "cpu"]) == 1
        finally:  # main() is meant for a server process: it quiets transformers for good
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_the_safety_filter_checks_the_stream_as_it_goes(responder):
    """A word the model writes is blocklisted: the stream stops before it with finish_reason
    content_filter (the word is never sent); the non-streamed reply is the fallback."""
    import copy

    from dialogpt.decode.safety import SafetyFilter, parse_blocklist

    opts = GenerationOptions(max_new_tokens=16, min_new_tokens=16)
    text = responder.respond(HISTORY, opts).text
    assert len(text.split()) >= 2, f"the tiny model's reply is a single word: {text!r}"
    guarded = copy.copy(responder)
    guarded.safety = SafetyFilter(parse_blocklist([text.split()[1]]))  # its second word
    guarded.options = opts
    with serving(guarded) as srv:
        c = _client(srv)
        chunks = list(c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=16,
                                                stream=True))
        sent = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
        plain = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=16)
    assert finals == ["content_filter"]
    assert guarded.safety.check(sent) is None and text.startswith(sent) and sent != text
    assert plain.choices[0].finish_reason == "content_filter"
    assert plain.choices[0].message.content == guarded.safety.fallback


def test_a_trickled_body_gets_408_at_the_body_deadline(responder):
    with serving(responder, body_timeout=1.0) as srv:
        with socket.create_connection(srv.server_address, timeout=30) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 200\r\n\r\n")
            s.settimeout(0.05)
            answer, sent = b"", 0
            while not answer and sent < 200:  # one body byte every 50 ms would take 10 s
                s.sendall(b" ")
                sent += 1
                try:
                    answer = s.recv(4096)
                except TimeoutError:
                    pass
            assert answer.startswith(b"HTTP/1.1 408") and sent < 200, (sent, answer[:100])
        assert _http(srv, "GET", "/health")[0] == 200
