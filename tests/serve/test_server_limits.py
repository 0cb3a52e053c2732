"""The issue's "done when" for dialogpt-serve, on loopback with the tiny model: slow-loris sockets
cannot starve normal clients, JSON nested 100,000 deep is a 400, a burst of 500 connections gets
200/503 and no reset, and the openai client receives a long reply token by token."""

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

MESSAGES = [{"role": "user", "content": "hello there, how are you?"}]


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    return Responder.from_pretrained(str(tiny_model_dir), device="cpu", options=GenerationOptions(max_new_tokens=4))


@contextmanager
def serving(responder, **config):
    cfg = ServerConfig(host="127.0.0.1", port=0, model_name="tiny", **config)
    with serving_in_thread(create_app(responder, cfg), cfg) as url:
        host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
        yield url, (host, int(port))


def _post(addr, body: bytes, timeout: float = 60):
    conn = http.client.HTTPConnection(*addr, timeout=timeout)
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_150_slow_loris_sockets_do_not_starve_10_normal_requests(responder):
    with serving(responder, header_timeout=60) as (_, addr):
        slow = [socket.create_connection(addr, timeout=10) for _ in range(150)]
        stop = threading.Event()

        def trickle() -> None:  # one more header byte per socket every 0.5 s, never a full request
            while not stop.is_set():
                for s in slow:
                    try:
                        s.sendall(b"X")
                    except OSError:
                        pass
                stop.wait(0.5)

        for s in slow:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        statuses: list[int] = []
        body = json.dumps({"messages": MESSAGES, "max_tokens": 4}).encode()
        clients = [threading.Thread(target=lambda: statuses.append(_post(addr, body, timeout=30)[0]))
                   for _ in range(10)]
        try:
            for c in clients:
                c.start()
            for c in clients:
                c.join(60)
            still_open = 0
            for s in slow:  # the slow sockets were held open all along (nothing answered them yet)
                s.setblocking(False)
                try:
                    still_open += s.recv(1) != b""
                except BlockingIOError:
                    still_open += 1
        finally:
            stop.set()
            t.join(10)
            for s in slow:
                s.close()
        assert statuses == [200] * 10
        assert still_open == 150


def test_json_nested_100000_deep_is_a_400(responder):
    with serving(responder) as (_, addr):
        for body in (b"[" * 100_000, b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
            status, raw = _post(addr, body)
            assert status == 400, raw[:200]
            err = json.loads(raw)["error"]
            assert "not valid JSON" in err["message"] and err["code"] == "invalid_json"
        deep = json.dumps({"messages": json.loads("[" * 500 + "]" * 500)}).encode()  # parses; wrong shape
        status, raw = _post(addr, deep)
        assert status == 400 and json.loads(raw)["error"]["param"].startswith("messages")
        assert _post(addr, json.dumps({"messages": MESSAGES}).encode())[0] == 200  # still serving


@pytest.mark.slow
def test_a_burst_of_500_connections_gets_200_or_503_and_no_reset(responder):
    with serving(responder, max_queue=8, max_batch=4) as (_, addr):
        body = json.dumps({"messages": MESSAGES, "max_tokens": 2}).encode()
        request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        go = threading.Barrier(500, timeout=120)
        statuses: list[int] = []
        errors: list[str] = []

        def client() -> None:
            try:
                go.wait()
                with socket.create_connection(addr, timeout=120) as s:
                    s.sendall(request)
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                statuses.append(int(data.split(b" ", 2)[1]))
            except (OSError, ValueError, IndexError, threading.BrokenBarrierError) as e:
                errors.append(type(e).__name__)

        threads = [threading.Thread(target=client) for _ in range(500)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert errors == [] and len(statuses) == 500
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 8


def test_openai_client_streams_token_by_token(tiny_model_dir):
    """48 tokens, decoded one step at a time: the first piece of text must arrive long before the
    last (a server that streams after generating delivers them all at once, at the end).

    Each forward pass of the tiny model is held for 20 ms, so decoding takes about a second whatever
    the machine's load: unslowed, the whole reply took ~0.05 s and HTTP jitter could decide the ratio."""
    r = Responder.from_pretrained(str(tiny_model_dir), device="cpu",
                                  options=GenerationOptions(max_new_tokens=48, min_new_tokens=48))
    r.model.register_forward_hook(lambda *_: time.sleep(0.02))
    with serving(r) as (url, _):
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        full = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=48)
        t0 = time.perf_counter()
        arrivals, pieces = [], []
        for chunk in c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=48,
                                               stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter() - t0)
                pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == full.choices[0].message.content
    assert len(pieces) >= 24  # about one chunk per token (a few tokens are parts of one character)
    total = arrivals[-1]
    assert arrivals[-1] - arrivals[0] > 0.5 * total, arrivals  # spread over the decoding, not a burst at the end
