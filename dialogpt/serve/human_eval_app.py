"""The judges' web page: a small FastAPI app over a :class:`VoteStore`, served by uvicorn.

The page is plain HTML + JS (``dialogpt/data/human_eval.html``); it only ever sees "response 1" and
"response 2" and posts answers in those terms. Which one is A is known to the store alone, so
neither the page source nor the network traffic unblinds a judge.

Who is judging: by default only judges with a link (``dialogpt-human-eval invite``) may vote. The
page reads the token from the link's ``#token=...`` fragment (never sent in a URL, so it is in no
access log or Referer) and sends it as ``Authorization: Bearer TOKEN``; the judge is whoever the
token names. An unknown token, no token, or a token sent with another judge's name is a 403 and
nothing is written. ``--open`` keeps the older mode where a judge types a name (names of link
judges excepted): for trusted rooms only, since one person can vote under many names.

Routes: ``GET /`` the page; ``GET /api/info`` the questions, the mode and (with a token) the judge;
``GET /api/next[?judge=NAME]`` the item to judge (or ``done``); ``POST /api/vote``
``{item, answers: {question: first|tie|second}[, judge]}``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from importlib import resources
from typing import TYPE_CHECKING

from dialogpt.serve.human_eval_inputs import QUESTIONS, HumanEvalInputError
from dialogpt.serve.human_eval_store import AlreadyVotedError, NotAssignedError, VoteStore
from dialogpt.serve.request_body import ApiError, load_json, read_body

if TYPE_CHECKING:
    from fastapi import FastAPI

#: A judge name: what a person types (letters, digits, space, . _ @ -), at most 64 characters.
JUDGE_RE = re.compile(r"^[\w .@-]{1,64}$")

#: a vote is {judge, item, answers} (well under 1 KB): a larger body is a 413, read no further
MAX_VOTE_BYTES = 64 * 1024


@dataclass
class HumanEvalConfig:
    """How ``dialogpt-human-eval serve`` runs."""

    host: str = "127.0.0.1"
    """loopback by default: judges on other machines need an explicit --host 0.0.0.0"""
    port: int = 8001
    title: str = "Which response is better?"
    open: bool = False
    """also accept typed judge names (no link); otherwise only judges with a link may vote."""


def page_html(title: str) -> str:
    """The page, with the title filled in (everything else comes from /api/*)."""
    html = (resources.files("dialogpt") / "data" / "human_eval.html").read_text(encoding="utf-8")
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return html.replace("{{TITLE}}", safe)


def _web_stack():
    """FastAPI and uvicorn are the ``serve`` extra: ``report`` runs without them."""
    try:
        import fastapi
        import uvicorn
    except ImportError as e:
        raise HumanEvalInputError(f"the judges' page needs the 'serve' extra (pip install 'dialogpt-hf[serve]'): "
                                  f"{e}") from None
    return fastapi, uvicorn


def create_human_eval_app(store: VoteStore, config: HumanEvalConfig | None = None) -> FastAPI:
    """The FastAPI app judges use; every store call runs in a worker thread (SQLite blocks)."""
    fastapi, _ = _web_stack()
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, JSONResponse

    cfg = config or HumanEvalConfig()
    app = fastapi.FastAPI(title="DialoGPT blind pairwise evaluation", docs_url=None, redoc_url=None)
    html = page_html(cfg.title)
    judge_of = _judge_resolver(store, cfg, fastapi)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return html

    @app.get("/api/info")
    async def info(authorization: str | None = fastapi.Header(None)) -> dict:
        judge = await judge_of(authorization, None) if authorization else None
        return {"title": cfg.title, "questions": QUESTIONS, "mode": "open" if cfg.open else "link", "judge": judge}

    @app.get("/api/next")
    async def next_item(judge: str | None = None, authorization: str | None = fastapi.Header(None)) -> dict:
        name = await judge_of(authorization, judge)
        a = await run_in_threadpool(store.next_item, name)
        if a is None:
            return {"done": True, "judged": await run_in_threadpool(store.judged_items, name)}
        return {"done": False, **asdict(a)}

    async def vote(request) -> JSONResponse:
        try:  # the API server's body checks: size, time, JSON, strings and numbers (request_body)
            body = load_json(await read_body(request, MAX_VOTE_BYTES, 30.0))
        except ApiError as e:
            raise fastapi.HTTPException(e.status, e.message) from None
        body = body if isinstance(body, dict) else {}
        authorization = request.headers.get("authorization")
        judge, item, answers = body.get("judge"), body.get("item"), body.get("answers")
        if (judge is not None and not isinstance(judge, str)) or type(item) is not int or not isinstance(answers, dict):
            raise fastapi.HTTPException(400, "body must be {item: int, answers: {question: choice}, judge: str "
                                             "(without a link)}")
        name = await judge_of(authorization, judge)
        try:
            await run_in_threadpool(store.record, name, item, answers)
        except (AlreadyVotedError, NotAssignedError) as e:
            raise fastapi.HTTPException(409, str(e)) from None
        except ValueError as e:
            raise fastapi.HTTPException(400, str(e)) from None
        return JSONResponse({"ok": True})

    # a plain route (the raw request, read under a cap), not a FastAPI body parameter
    app.add_route("/api/vote", vote, methods=["POST"])
    return app


def _judge_resolver(store: VoteStore, cfg: HumanEvalConfig, fastapi):
    """``judge_of(Authorization header, claimed name)``: the judge a request acts as, or an HTTP error.

    A token (``Bearer``) decides alone: unknown -> 403, a claimed name other than the token's -> 403.
    Without one, a typed name is taken only with ``--open``."""
    from fastapi.concurrency import run_in_threadpool

    def forbidden(msg: str):
        return fastapi.HTTPException(403, msg)

    async def judge_of(authorization: str | None, claimed: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            judge = await run_in_threadpool(store.judge_for_token, token.strip())
            if judge is None:
                raise forbidden("this judge link is not valid (ask the organiser for yours)")
            if claimed is not None and claimed.strip() != judge:
                raise forbidden("this judge link belongs to another judge")
            return judge
        if not cfg.open:
            raise forbidden("open this page through your judge link")
        name = (claimed or "").strip()
        if not JUDGE_RE.match(name):
            raise fastapi.HTTPException(400, "judge: 1-64 letters, digits, spaces or . _ @ -")
        if name in await run_in_threadpool(store.linked_judges):
            raise forbidden(f"{name!r} is a judge with a link: use the link")
        return name

    return judge_of


def serve_human_eval(store: VoteStore, config: HumanEvalConfig) -> None:
    """Run the page until interrupted (uvicorn handles Ctrl-C; every vote is already committed)."""
    _, uvicorn = _web_stack()
    app = create_human_eval_app(store, config)
    mode = "judge links and typed names (--open)" if config.open else "judge links only"
    print(f"human evaluation page on http://{config.host}:{config.port}/ (store {store.path}; {mode})", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
