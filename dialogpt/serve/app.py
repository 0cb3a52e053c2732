"""The OpenAI-compatible app (FastAPI): ``/v1/chat/completions``, ``/v1/completions``,
``/v1/models``, ``/health``, and the Gradio web chat at ``/ui/`` when asked for.

Why it stays up under load: generation work goes through one bounded waiting line drained by one
model thread with continuous batching (:mod:`dialogpt.serve.batching`); a full line is a 503 with
``Retry-After``, sent after the request was read, so the client sees the answer and never a reset.
Bodies are read under a size cap (413) and a deadline (408); malformed JSON (including JSON nested
too deeply to parse), invalid strings and numbers (:mod:`dialogpt.serve.request_body`) and bad fields
(:mod:`dialogpt.serve.schemas`) are 400s naming the field; any unexpected exception is a 500 JSON
error, never a dead server. A request is parsed, validated and tokenised in a worker thread
(:mod:`dialogpt.serve.prepare`), never on the event loop or the model thread, so a heavy body
cannot hold up the others.

Streaming: a request for one candidate without beam search streams token by token as it is decoded
(header ``X-DialoGPT-Stream: tokens``); the safety filter checks the words as they come and a
blocked reply ends with ``finish_reason: "content_filter"``. A request that reranks several
candidates (``n > 1``, beam search, MMI / DialogRPT) can only choose once all are written, so its
reply streams after choosing (``X-DialoGPT-Stream: after-choosing``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialogpt.errors import first_line
from dialogpt.serve.auth import SecurityConfig, install_security
from dialogpt.serve.batching import Busy, Job, Result, Scheduler
from dialogpt.serve.prepare import RequestLimits, prepare_request
from dialogpt.serve.request_body import ApiError, read_body
from dialogpt.serve.schemas import MAX_MESSAGES, GenRequest, parse_chat, parse_completion
from dialogpt.serve.streaming import cut_at_stop, sse
from dialogpt.serve.ui import mount_chat_ui

logger = logging.getLogger("dialogpt.serve.app")


@dataclass
class ServerConfig:
    """Limits and names of one server."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "dialogpt"
    """the id clients pass as ``model`` (and ``/v1/models`` lists)."""
    max_queue: int = 128
    """requests waiting for a decoding slot at most; more are answered 503 + Retry-After."""
    max_batch: int = 16
    """rows decoded together (continuous batching), and rerank-mode requests per generate call."""
    cpu_matmul: str = "auto"
    """auto | onednn | stock: the kernels of a CPU float32 model's linear layers (dialogpt.serve.cpu_matmul)."""
    max_connections: int = 1024
    """open connections at most (uvicorn's limit_concurrency)."""
    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 16384
    max_tokens_limit: int = 256
    """largest ``max_tokens`` a request may ask for."""
    max_n: int = 8
    """largest ``n`` a request may ask for."""
    max_messages: int = MAX_MESSAGES
    """messages (or ``prompt`` turns) a request may carry; more are a 400."""
    request_timeout: float = 300.0
    """seconds a request waits for its reply before a 504."""
    header_timeout: float = 10.0
    """seconds a client has to send its request line and headers; trickling bytes do not extend it."""
    body_timeout: float = 30.0
    """seconds a client has to send its body once the headers are in."""
    keep_alive_timeout: float = 5.0
    ui: bool = False
    """mount the Gradio web chat at /ui/ (needs the ``ui`` extra)."""
    log_requests: bool = False
    security: SecurityConfig = field(default_factory=SecurityConfig)
    """API keys, CORS origins, rate limit and TLS files (:mod:`dialogpt.serve.auth`)."""

    def __post_init__(self):
        for name in ("max_queue", "max_connections", "max_batch", "max_body_bytes", "max_header_bytes",
                     "max_tokens_limit", "max_n", "max_messages"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("request_timeout", "header_timeout", "body_timeout", "keep_alive_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535 (0 picks a free one), got {self.port}")


def _error(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


# ---------------------------------------------------------------------- answers
def _choices(reply, n: int, fallback: str, stop=()) -> list[tuple[str, str, int]]:
    """(text, finish_reason, generated tokens) for the first ``n`` shown candidates of a rerank-mode
    ``Reply`` (blocked ones skipped; missing ones are the safety fallback, finish_reason
    ``content_filter``). A reply cut at a ``stop`` string finishes with ``stop``."""
    out = []
    for c in [c for c in reply.candidates if not c.blocked][:n]:
        text, stopped = cut_at_stop(c.text, stop)
        out.append((text, "stop" if c.finished or stopped else "length", len(c.token_ids) + int(c.finished)))
    while len(out) < n:
        out.append((fallback, "content_filter", 0))
    return out


def _outcome(req: GenRequest, payload, fallback: str) -> tuple[list[tuple[str, str, int]], int]:
    """Choices and prompt tokens from a scheduler result (one row) or a rerank-mode reply."""
    if isinstance(payload, Result):
        return [(payload.text, payload.finish_reason, payload.completion_tokens)], payload.prompt_tokens
    return _choices(payload, req.n, fallback, req.stop), payload.prompt_tokens


def _usage(prompt: int, choices) -> dict:
    completion = sum(k for _, _, k in choices)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Kind:
    """Chat and text completions differ only in object names and where the text goes."""

    def __init__(self, chat: bool):
        self.chat = chat
        self.object = "chat.completion" if chat else "text_completion"
        self.chunk_object = "chat.completion.chunk" if chat else "text_completion"
        self.prefix = "chatcmpl" if chat else "cmpl"

    def choice(self, i: int, text: str, finish: str) -> dict:
        if self.chat:
            return {"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                    "finish_reason": finish}
        return {"index": i, "text": text, "logprobs": None, "finish_reason": finish}

    def delta(self, i: int, text: str | None, finish: str | None = None, role: bool = False) -> dict:
        if self.chat:
            d = {"role": "assistant", "content": ""} if role else ({"content": text} if text is not None else {})
            return {"index": i, "delta": d, "logprobs": None, "finish_reason": finish}
        return {"index": i, "text": text or "", "logprobs": None, "finish_reason": finish}


# ---------------------------------------------------------------------- the app
def create_app(responder, config: ServerConfig | None = None) -> FastAPI:
    """The FastAPI app serving ``responder``; its model thread starts and stops with the app's
    lifespan. ``app.state.scheduler`` is the waiting line other pages (the web chat) submit to."""
    cfg = config or ServerConfig()
    scheduler = Scheduler(responder, max_batch=cfg.max_batch, max_queue=cfg.max_queue, cpu_matmul=cfg.cpu_matmul)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler.start()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, scheduler.stop)

    app = FastAPI(title="dialogpt-serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scheduler, app.state.responder, app.state.config = scheduler, responder, cfg
    app.state.started = int(time.time())
    _install_errors(app)
    install_security(app, cfg.security, home="/ui/" if cfg.ui else None)
    _add_info_routes(app, cfg, scheduler, responder)
    _add_generation_routes(app, cfg, scheduler, responder)
    if cfg.ui:
        _mount_ui(app, responder)
    return app


def _mount_ui(app: FastAPI, responder) -> None:
    # The page submits its work through app.state.scheduler.call, so it takes turns with the API on
    # the model thread. gradio (the optional ``ui`` extra) is imported by ui.py only when mounting.
    try:
        mount_chat_ui(app, responder)
    except ImportError as e:
        raise ImportError(f"--ui needs the 'ui' extra (pip install 'dialogpt-hf[ui]'): {first_line(e)}") from None


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return _error(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        msg = f"{request.method} is not allowed on {request.url.path}" if e.status_code == 405 else (
            f"no route {request.url.path}" if e.status_code == 404 else str(e.detail))
        code = "not_found" if e.status_code == 404 else None
        return _error(ApiError(e.status_code, msg, code=code))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):  # a bug must cost one request, not the server
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(ApiError(500, "internal server error", etype="server_error"))


def _add_info_routes(app: FastAPI, cfg: ServerConfig, scheduler: Scheduler, responder) -> None:
    def model_card() -> dict:
        return {"id": cfg.model_name, "object": "model", "created": app.state.started, "owned_by": "dialogpt-hf"}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": cfg.model_name, **scheduler.snapshot(), "responder": dict(responder.stats)}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str):
        if name != cfg.model_name:
            raise ApiError(404, f"the model '{name}' does not exist", "model", "model_not_found")
        return model_card()


def _add_generation_routes(app: FastAPI, cfg: ServerConfig, scheduler: Scheduler, responder) -> None:
    fallback = responder.safety.fallback if responder.safety is not None else ""
    limits = RequestLimits(cfg.model_name, cfg.max_n, cfg.max_tokens_limit, cfg.max_messages)

    async def handle(request: Request, parse: Callable, kind: _Kind):
        raw = await read_body(request, cfg.max_body_bytes, cfg.body_timeout)
        req = await run_in_threadpool(prepare_request, raw, parse, responder, limits)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job = Job(req, lambda k, p: loop.call_soon_threadsafe(events.put_nowait, (k, p)))
        try:
            scheduler.submit(job)
        except Busy:
            raise ApiError(503, "the server is busy; retry shortly", code="overloaded", etype="server_error",
                           headers={"Retry-After": "1"}) from None
        cid, created = f"{kind.prefix}-{uuid.uuid4().hex}", int(time.time())
        head = {"id": cid, "created": created, "model": cfg.model_name}
        if req.stream:
            mode = "after-choosing" if job.rerank_mode else "tokens"
            return StreamingResponse(_stream(req, job, events, kind, head, fallback, cfg),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-DialoGPT-Stream": mode})
        try:
            payload = await asyncio.wait_for(_final(events), cfg.request_timeout)
        except asyncio.TimeoutError:
            job.cancelled = True
            raise ApiError(504, "generation timed out", code="timeout", etype="server_error") from None
        finally:
            job.cancelled = True  # a no-op once done; frees the row if the wait was cut short
        choices, prompt = _outcome(req, payload, fallback)
        return {**head, "object": kind.object, "usage": _usage(prompt, choices),
                "choices": [kind.choice(i, t, f) for i, (t, f, _) in enumerate(choices)]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await handle(request, parse_chat, _Kind(chat=True))

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, parse_completion, _Kind(chat=False))


async def _final(events: asyncio.Queue):
    while True:
        kind, payload = await events.get()
        if kind == "error":
            raise ApiError(500, f"generation failed: {payload}", etype="server_error")
        if kind in ("done", "reply"):
            return payload


_WORDS = re.compile(r"\s*\S+")


async def _stream(req: GenRequest, job: Job, events: asyncio.Queue, kind: _Kind, head: dict, fallback: str,
                  cfg: ServerConfig) -> AsyncIterator[bytes]:
    def chunk(choices: list, usage=None) -> bytes:
        obj = {**head, "object": kind.chunk_object, "choices": choices}
        if req.include_usage:
            obj["usage"] = usage
        return sse(obj)

    deadline = time.monotonic() + cfg.request_timeout
    try:
        if kind.chat:
            yield chunk([kind.delta(0, None, role=True)])
        while True:
            try:
                ev, payload = await asyncio.wait_for(events.get(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                yield sse({"error": ApiError(504, "generation timed out", code="timeout", etype="server_error")
                           .body()["error"]})
                return
            if ev == "delta":
                yield chunk([kind.delta(0, payload)])
                continue
            if ev == "error":
                yield sse({"error": {"message": f"generation failed: {payload}", "type": "server_error"}})
                return
            choices, prompt = _outcome(req, payload, fallback)
            if ev == "reply":  # rerank mode: the chosen replies, streamed after choosing
                for i, (text, fin, _) in enumerate(choices):
                    if kind.chat and i:
                        yield chunk([kind.delta(i, None, role=True)])
                    for piece in _WORDS.findall(text):
                        yield chunk([kind.delta(i, piece)])
                    yield chunk([kind.delta(i, None, fin)])
            else:
                yield chunk([kind.delta(0, None, choices[0][1])])
            if req.include_usage:
                yield chunk([], _usage(prompt, choices))
            yield sse("[DONE]")
            return
    finally:
        job.cancelled = True  # the client left (or the stream ended): free the row
