"""``dialogpt-serve``: an OpenAI-compatible HTTP server for a DialoGPT model (stdlib only).

Endpoints: ``POST /v1/chat/completions`` (``messages``, ``temperature``, ``top_p``,
``max_tokens``, ``n``, ``stream`` with server-sent events in OpenAI's chunk format, ending with
``data: [DONE]``), ``GET /v1/models``, ``GET /health``.

Why it stays up under load: connections are handled by at most ``max_connections`` threads
(more get an immediate 503), generation work goes through one bounded queue (``max_queue``; a
full queue is a 503 with ``Retry-After``) drained by a single worker thread that owns the model and
batches compatible requests into one ``generate`` call. Bodies over ``max_body_bytes`` get 413,
malformed JSON or fields get a 400 JSON error naming the field, and any unexpected exception in a
request becomes a 500 JSON error instead of killing the server.

Streaming note: a reply is reranked and safety-checked as a whole before anyone sees it, so the
chunks of a streamed reply are sent once it has been chosen (word by word, in OpenAI's format).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import queue
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dialogpt.chat_format import messages_to_turns

logger = logging.getLogger("dialogpt.serve.app")


@dataclass
class ServerConfig:
    """Limits and names of one server."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "dialogpt"
    """the id clients pass as ``model`` (and ``/v1/models`` lists)."""
    max_queue: int = 32
    """generation requests waiting at most; more are answered 503."""
    max_connections: int = 64
    """connection threads at most; more are answered 503 at once."""
    max_batch: int = 8
    """requests with the same decoding options decoded in one generate call."""
    max_body_bytes: int = 1 << 20
    max_tokens_limit: int = 256
    """largest ``max_tokens`` a request may ask for."""
    max_n: int = 8
    """largest ``n`` a request may ask for."""
    request_timeout: float = 300.0
    """seconds a request waits for its reply before a 504."""
    idle_timeout: float = 30.0
    """seconds a connection may sit without sending a full request (slow or idle clients cannot
    hold connection slots forever)."""

    def __post_init__(self):
        for name in ("max_queue", "max_connections", "max_batch", "max_body_bytes", "max_tokens_limit", "max_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535 (0 picks a free one), got {self.port}")


class RequestError(Exception):
    """A client mistake: becomes a JSON error response with this status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 etype: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.etype = status, message, param, code, etype

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.etype, "param": self.param, "code": self.code}}


# ---------------------------------------------------------------------- request parsing
@dataclass
class ChatRequest:
    turns: list
    options: object  # GenerationOptions
    n: int
    stream: bool
    include_usage: bool = False
    seed: int | None = None
    stop: tuple[str, ...] = ()


def _number(body: dict, name: str, lo: float, hi: float, integer: bool = False):
    if name not in body or body[name] is None:
        return None
    v = body[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        kind = "an integer" if integer else "a number"
        raise RequestError(400, f"'{name}' must be {kind}, got {json.dumps(v)[:40]}", name, "invalid_type")
    if not lo <= v <= hi:
        raise RequestError(400, f"'{name}' must be between {lo} and {hi}, got {v}", name, "invalid_value")
    return v


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: OpenAI fields a DialoGPT model cannot honour: asking for them is a 400, not a silent no-op.
_UNSUPPORTED = ("tools", "functions", "audio", "modalities", "prediction", "top_logprobs")


def parse_chat_request(body: object, defaults, config: ServerConfig) -> ChatRequest:
    """Validate an OpenAI chat request and map it to decoding options (``defaults`` = GenerationOptions).

    Fields left out use the server's decoding defaults (the model's ``generation_config.json`` and
    the command line). ``temperature: 0`` is greedy; a positive ``temperature`` or a ``top_p``
    samples; ``n > 1`` without sampling is beam search returning ``n`` beams. ``stop`` cuts the
    reply at the first stop string. Penalties, ``logit_bias``, ``user`` and other hints are
    accepted and ignored; tools, logprobs and JSON output are refused (400).
    """
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    for name in _UNSUPPORTED:
        if body.get(name):
            raise RequestError(400, f"'{name}' is not supported by this server", name, "unsupported_parameter")
    if body.get("logprobs"):
        raise RequestError(400, "'logprobs' is not supported by this server", "logprobs", "unsupported_parameter")
    rf = body.get("response_format")
    if rf is not None and (not isinstance(rf, dict) or rf.get("type") != "text"):
        raise RequestError(400, "only response_format {'type': 'text'} is supported", "response_format",
                           "unsupported_parameter")
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(x, str) and x and _is_unicode(x)
                                                              for x in stop):
        raise RequestError(400, "'stop' must be a non-empty string or a list of up to 4 of them", "stop")
    model = body.get("model")
    if model is not None and model != config.model_name:
        raise RequestError(404, f"the model '{model}' does not exist; this server serves '{config.model_name}'",
                           "model", "model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise RequestError(400, f"messages[{i}] must be an object", f"messages[{i}]")
        if m.get("role") not in ("system", "user", "assistant", "developer"):
            raise RequestError(400, f"messages[{i}].role must be system, user or assistant, got "
                                    f"{json.dumps(m.get('role'))[:40]}", f"messages[{i}].role")
        content = m.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise RequestError(400, f"messages[{i}].content parts must all be text parts",
                                   f"messages[{i}].content")
            m = dict(m, content=" ".join(p["text"] for p in content))
            messages[i] = m
        elif not isinstance(content, str):
            raise RequestError(400, f"messages[{i}].content must be a string", f"messages[{i}].content")
        if not _is_unicode(m["content"]):
            # JSON can carry lone surrogates ("\ud800"); the tokenizer cannot, and the failure would
            # take down every request batched with this one.
            raise RequestError(400, f"messages[{i}].content is not valid Unicode (a lone surrogate)",
                               f"messages[{i}].content", "invalid_value")
    turns = messages_to_turns([m if m["role"] != "developer" else dict(m, role="system") for m in messages])
    if not turns:
        raise RequestError(400, "'messages' has no user or assistant message", "messages")
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0)
    max_tokens = _number(body, "max_tokens", 1, config.max_tokens_limit, integer=True)
    if max_tokens is None:
        max_tokens = _number(body, "max_completion_tokens", 1, config.max_tokens_limit, integer=True)
    n = _number(body, "n", 1, config.max_n, integer=True) or 1
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", "stream")
    seed = _number(body, "seed", -(2**63), 2**63 - 1, integer=True)
    so = body.get("stream_options") or {}
    if not isinstance(so, dict):
        raise RequestError(400, "'stream_options' must be an object", "stream_options")
    if so and not stream:
        raise RequestError(400, "'stream_options' is only allowed when 'stream' is true (as OpenAI's API)",
                           "stream_options")

    overrides: dict = {}
    if max_tokens is not None:
        overrides["max_new_tokens"] = max_tokens
        overrides["min_new_tokens"] = min(defaults.min_new_tokens, max_tokens)
    strategy = defaults.strategy
    if temperature == 0:
        strategy = "greedy"
    elif temperature is not None or top_p is not None:
        strategy = "sample"
    if strategy == "sample":
        if temperature is not None:
            overrides["temperature"] = temperature
        if top_p is not None:
            if top_p == 0:
                raise RequestError(400, "'top_p' must be > 0", "top_p", "invalid_value")
            overrides["top_p"] = top_p
    candidates = max(n, defaults.num_candidates if strategy == defaults.strategy else 1)
    if strategy == "greedy" and candidates > 1:
        strategy = "beam"  # n distinct deterministic replies
    if strategy == "beam":
        overrides["num_beams"] = max(defaults.num_beams, candidates, 2)
    overrides["strategy"] = strategy
    overrides["num_candidates"] = candidates
    try:
        options = defaults.replace(**overrides)
    except ValueError as e:
        raise RequestError(400, str(e)) from None
    return ChatRequest(turns, options, n, stream, bool(so.get("include_usage", False)), seed, tuple(stop))


# ---------------------------------------------------------------------- the generation worker
@dataclass
class _Job:
    request: ChatRequest
    done: threading.Event = field(default_factory=threading.Event)
    reply: object = None
    error: BaseException | None = None
    cancelled: bool = False


def _options_key(options) -> tuple:
    return dataclasses.astuple(options)


class GenerationWorker:
    """One thread owns the model; jobs wait in a bounded queue and compatible ones are batched."""

    def __init__(self, responder, max_queue: int, max_batch: int):
        self.responder = responder
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.max_batch = max_batch
        self.thread = threading.Thread(target=self._run, name="dialogpt-generation", daemon=True)
        self.lock = threading.Lock()
        self.counters = {"requests": 0, "rejected_busy": 0, "completed": 0, "failed": 0, "batches": 0}

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.ident is None:  # never started (e.g. the server could not bind its port)
            return
        try:
            self.jobs.put(None, timeout=5)
        except queue.Full:
            pass
        self.thread.join(timeout=30)

    def submit(self, request: ChatRequest) -> _Job:
        """Queue a job; ``queue.Full`` when the server is saturated."""
        job = _Job(request)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            with self.lock:
                self.counters["rejected_busy"] += 1
            raise
        with self.lock:
            self.counters["requests"] += 1
        return job

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch = [job]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            groups: dict[tuple, list[_Job]] = {}
            for j in batch:
                if not j.cancelled:
                    # A seeded request is decoded alone, so its sample does not depend on its neighbours.
                    key = _options_key(j.request.options) if j.request.seed is None else ("seeded", id(j))
                    groups.setdefault(key, []).append(j)
            for jobs in groups.values():
                self._decode(jobs)
            if stop:
                return

    def _decode(self, jobs: list[_Job]) -> None:
        try:
            if jobs[0].request.seed is not None:
                import torch

                torch.manual_seed(jobs[0].request.seed)
            replies = self.responder.respond_batch([j.request.turns for j in jobs], jobs[0].request.options)
            for j, r in zip(jobs, replies):
                j.reply = r
            with self.lock:
                self.counters["completed"] += len(jobs)
                self.counters["batches"] += 1
        except Exception as e:  # never let one bad batch kill the worker
            if len(jobs) > 1:
                # One request's problem must not fail the others batched with it: retry them alone.
                logger.warning("a batch of %d failed (%s); decoding its requests one by one", len(jobs), e)
                for j in jobs:
                    self._decode([j])
                return
            logger.exception("generation failed")
            for j in jobs:
                j.error = e
            with self.lock:
                self.counters["failed"] += len(jobs)
        finally:
            for j in jobs:
                j.done.set()


# ---------------------------------------------------------------------- responses
def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((k for k in (text.find(s) for s in stop) if k >= 0), default=-1)
    return (text[:cut].rstrip(), True) if cut >= 0 else (text, False)


def _choices(reply, n: int, fallback: str, stop: Sequence[str] = ()) -> list[tuple[str, str, int]]:
    """(text, finish_reason, generated tokens) for the first ``n`` shown candidates (blocked ones
    skipped; missing ones are the safety fallback, finish_reason ``content_filter``). A reply cut
    at a ``stop`` string finishes with ``stop``.

    Token counts come from the generated ids, so handler threads never touch the tokenizer (a
    fast tokenizer shared across threads can fail with "Already borrowed").
    """
    out = []
    for c in [c for c in reply.candidates if not c.blocked][:n]:
        text, stopped = _cut_at_stop(c.text, stop)
        out.append((text, "stop" if c.finished or stopped else "length", len(c.token_ids) + int(c.finished)))
    while len(out) < n:
        out.append((fallback, "content_filter", 0))
    return out


_WORDS = re.compile(r"\s*\S+")


class Handler(BaseHTTPRequestHandler):
    server: DialoGPTServer
    protocol_version = "HTTP/1.1"
    server_version = "dialogpt-serve/0.1"
    # Garbage request lines would otherwise be answered HTTP/0.9-style: a body with no status line.
    default_request_version = "HTTP/1.0"

    # -- plumbing
    def setup(self):
        self.timeout = self.server.config.idle_timeout  # applied to the socket by StreamRequestHandler
        super().setup()

    def log_message(self, fmt, *args):  # quiet by default; --log-requests turns it on
        logger.info("%s - %s", self.address_string(), fmt % args)

    def _send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (malformed request lines, unknown methods) as JSON too."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        try:
            self._send_json(code, RequestError(code, message or phrase).body())
        except OSError:
            pass

    def _error(self, err: RequestError, headers: dict | None = None) -> None:
        self._send_json(err.status, err.body(), headers)

    def _guard(self, fn) -> None:
        try:
            fn()
        except RequestError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug must cost one request, not the server
            logger.exception("unhandled error on %s %s", self.command, self.path)
            self.close_connection = True
            try:
                self._error(RequestError(500, "internal server error", etype="server_error"))
            except OSError:
                pass

    # -- routes
    def do_GET(self):
        self._guard(self._get)

    def do_POST(self):
        self._guard(self._post)

    def _method_not_allowed(self):
        self.close_connection = True
        self._error(RequestError(405, f"{self.command} is not allowed on {self.path}"))

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _get(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        name = self.server.config.model_name
        model = {"id": name, "object": "model", "created": self.server.started, "owned_by": "dialogpt-hf"}
        if path == "/health":
            w = self.server.worker
            with w.lock:
                counters = dict(w.counters)
            self._send_json(200, {"status": "ok", "model": name, "queue_depth": w.jobs.qsize(),
                                  "max_queue": w.jobs.maxsize, **counters,
                                  "responder": dict(self.server.responder.stats)})
        elif path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [model]})
        elif path == f"/v1/models/{name}":
            self._send_json(200, model)
        elif path.startswith("/v1/models/"):
            raise RequestError(404, f"the model '{path[len('/v1/models/'):]}' does not exist", "model",
                               "model_not_found")
        elif path == "/v1/chat/completions":
            self._method_not_allowed()
        else:
            raise RequestError(404, f"no route {self.path}", code="not_found")

    def _read_json(self) -> object:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length is None:
            self.close_connection = True
            raise RequestError(411, "send the body with a Content-Length header")
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise RequestError(400, f"bad Content-Length {length!r}") from None
        if n < 0:
            self.close_connection = True
            raise RequestError(400, f"bad Content-Length {length!r}")
        if n > self.server.config.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            self._discard(n)
            raise RequestError(413, f"the body is {n} bytes; this server accepts at most "
                                    f"{self.server.config.max_body_bytes}", code="request_too_large")
        raw = self.rfile.read(n)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RequestError(400, f"the body is not valid JSON: {e}", code="invalid_json") from None

    def _discard(self, n: int) -> None:
        """Read (and drop) a rejected body of modest size, so the client sees our 413 rather than
        a connection reset from closing a socket with unread data."""
        if n > 16 * self.server.config.max_body_bytes:
            return
        self.connection.settimeout(5)
        try:
            while n > 0:
                chunk = self.rfile.read(min(n, 1 << 16))
                if not chunk:
                    break
                n -= len(chunk)
        except OSError:
            pass

    def _post(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/chat/completions":
            # Drain a sane body so keep-alive stays in sync, then 404.
            if path in ("/health", "/v1/models"):
                self._method_not_allowed()
                return
            self.close_connection = True
            raise RequestError(404, f"no route {self.path}", code="not_found")
        body = self._read_json()
        req = parse_chat_request(body, self.server.responder.options, self.server.config)
        try:
            self.server.responder.prompt_budget(req.options)  # max_tokens must leave room for a prompt
        except ValueError as e:
            raise RequestError(400, str(e).replace("--max-new-tokens", "max_tokens"), "max_tokens") from None
        worker = self.server.worker
        try:
            job = worker.submit(req)
        except queue.Full:
            self._error(RequestError(503, "the server is busy; retry shortly", code="overloaded",
                                     etype="server_error"), {"Retry-After": "1"})
            return
        if not job.done.wait(self.server.config.request_timeout):
            job.cancelled = True
            raise RequestError(504, "generation timed out", code="timeout", etype="server_error")
        if job.error is not None:
            raise RequestError(500, f"generation failed: {job.error}", etype="server_error")
        self._reply(req, job.reply)

    def _reply(self, req: ChatRequest, reply) -> None:
        srv = self.server
        fallback = srv.responder.safety.fallback if srv.responder.safety is not None else ""
        choices = _choices(reply, req.n, fallback, req.stop)
        completion = sum(k for _, _, k in choices)
        usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": completion,
                 "total_tokens": reply.prompt_tokens + completion}
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        name = srv.config.model_name
        if not req.stream:
            self._send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                             "logprobs": None, "finish_reason": fin} for i, (text, fin, _) in enumerate(choices)],
                "usage": usage,
            })
            return
        self.close_connection = True  # the stream ends when the connection does
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def event(choices_delta: list, usage_obj=None) -> None:
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                     "choices": choices_delta}
            if req.include_usage:
                chunk["usage"] = usage_obj
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())

        for i, (text, fin, _) in enumerate(choices):
            event([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                    "finish_reason": None}])
            for piece in _WORDS.findall(text):
                event([{"index": i, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
            event([{"index": i, "delta": {}, "logprobs": None, "finish_reason": fin}])
        if req.include_usage:
            event([], usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class DialoGPTServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on live connection threads and the generation worker."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, responder, config: ServerConfig):
        self.responder = responder
        self.config = config
        self.started = int(time.time())
        self.worker = GenerationWorker(responder, config.max_queue, config.max_batch)
        self.slots = threading.BoundedSemaphore(config.max_connections)
        super().__init__((config.host, config.port), Handler)
        self.worker.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:
                body = json.dumps(RequestError(503, "too many connections; retry shortly", code="overloaded",
                                               etype="server_error").body()).encode()
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        logger.exception("connection error from %s", client_address)

    def server_close(self):
        super().server_close()
        self.worker.stop()


def make_server(responder, config: ServerConfig | None = None) -> DialoGPTServer:
    """A bound server (port 0 picks a free one) with its worker running; call ``serve_forever``."""
    return DialoGPTServer(responder, config or ServerConfig())


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def build_parser() -> argparse.ArgumentParser:
    from dialogpt.cli.responder_args import add_responder_args

    p = argparse.ArgumentParser(prog="dialogpt-serve",
                                description="OpenAI-compatible chat server for a DialoGPT model.")
    add_responder_args(p)
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--served-model-name", help="the model id clients use (default: the model's name)")
    s.add_argument("--max-queue", type=int, default=ServerConfig.max_queue)
    s.add_argument("--max-connections", type=int, default=ServerConfig.max_connections)
    s.add_argument("--max-batch", type=int, default=ServerConfig.max_batch)
    s.add_argument("--max-body-bytes", type=int, default=ServerConfig.max_body_bytes)
    s.add_argument("--max-tokens-limit", type=int, default=ServerConfig.max_tokens_limit)
    s.add_argument("--max-n", type=int, default=ServerConfig.max_n)
    s.add_argument("--request-timeout", type=float, default=ServerConfig.request_timeout)
    s.add_argument("--idle-timeout", type=float, default=ServerConfig.idle_timeout)
    s.add_argument("--log-requests", action="store_true")
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from dialogpt.cli.responder_args import spec_from_args
    from dialogpt.decode import build_responder

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.log_requests else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import transformers

        transformers.logging.set_verbosity_error()  # a server process: no need to restore
        transformers.utils.logging.disable_progress_bar()
        if args.seed is not None:
            transformers.set_seed(args.seed)
        config = ServerConfig(
            host=args.host, port=args.port,
            model_name=args.served_model_name or Path(args.model.rstrip("/")).name or args.model,
            max_queue=args.max_queue, max_connections=args.max_connections, max_batch=args.max_batch,
            max_body_bytes=args.max_body_bytes, max_tokens_limit=args.max_tokens_limit, max_n=args.max_n,
            request_timeout=args.request_timeout, idle_timeout=args.idle_timeout,
        )
        if not _is_loopback(args.host):
            print(f"warning: binding {args.host}, which is not a loopback address: the server has no "
                  f"authentication", file=sys.stderr)
        args.batch_size = max(args.batch_size, args.max_batch)
        responder = build_responder(spec_from_args(args))
        try:
            server = make_server(responder, config)
        except OSError as e:
            raise OSError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    except (ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if threading.current_thread() is threading.main_thread():
        # `kill`, `docker stop` and systemd send SIGTERM: shut down as cleanly as on Ctrl-C. SIGINT is
        # set too: a process started in the background by a non-interactive shell inherits SIGINT
        # ignored, and Python then never installs its own Ctrl-C handler.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)
    print(f"dialogpt-serve: model '{config.model_name}' on {server.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
