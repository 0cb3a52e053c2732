"""The judges' web page: a small FastAPI app over a :class:`VoteStore`, served by uvicorn.

The page is plain HTML + JS (``dialogpt/data/human_eval.html``); it only ever sees "response 1" and
"response 2" and posts answers in those terms. Which one is A is known to the store alone, so
neither the page source nor the network traffic unblinds a judge.

Routes: ``GET /`` the page; ``GET /api/info`` the questions; ``GET /api/next?judge=NAME`` the item to
judge (or ``done``); ``POST /api/vote`` ``{judge, item, answers: {question: first|tie|second}}``.
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

    def judge_name(name: str) -> str:
        name = name.strip()
        if not JUDGE_RE.match(name):
            raise fastapi.HTTPException(400, "judge: 1-64 letters, digits, spaces or . _ @ -")
        return name

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return html

    @app.get("/api/info")
    def info() -> dict:
        return {"title": cfg.title, "questions": QUESTIONS}

    @app.get("/api/next")
    async def next_item(judge: str = fastapi.Query(...)) -> dict:
        name = judge_name(judge)
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
        judge, item, answers = body.get("judge"), body.get("item"), body.get("answers")
        if not isinstance(judge, str) or type(item) is not int or not isinstance(answers, dict):
            raise fastapi.HTTPException(400, "body must be {judge: str, item: int, answers: {question: choice}}")
        name = judge_name(judge)
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


def serve_human_eval(store: VoteStore, config: HumanEvalConfig) -> None:
    """Run the page until interrupted (uvicorn handles Ctrl-C; every vote is already committed)."""
    _, uvicorn = _web_stack()
    app = create_human_eval_app(store, config)
    print(f"human evaluation page on http://{config.host}:{config.port}/ (store {store.path})", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
