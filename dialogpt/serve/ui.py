"""The web chat at ``/ui/``: a Gradio ``ChatInterface`` mounted on the server's FastAPI app.

The seed's only demo was a third-party Gradio page; this one runs on the same process and model as
the OpenAI routes (``create_app`` mounts it), so what a person tries in the browser is what an API
client gets: the same :class:`Responder`, its reranker and its safety filter. The page keeps the
multi-turn history (the whole conversation is sent with each message, as DialoGPT expects), offers
the decoding settings people change most (strategy, top-p, number of candidates, MMI on/off when a
reverse model is loaded) and a reset (the chat's clear button).

The safety filter is always on here: a server started with ``--blocklist none`` still gets the
shipped blocklist on its web page, because a public demo page is where unfiltered output hurts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI

from dialogpt.decode import GenerationOptions, Responder, SafetyFilter
from dialogpt.decode.rerank import MMIReranker
from dialogpt.errors import first_line
from dialogpt.serve.batching import Busy
from dialogpt.serve.request_body import invalid_unicode

if TYPE_CHECKING:
    import gradio as gr

STRATEGY_CHOICES = ("greedy", "sample", "beam")

#: How the page runs a Responder call: ``run(fn) -> fn()``, e.g. the server's ``Scheduler.call``,
#: which runs it on the model thread between decoding steps (the model is never used from two
#: threads at once, and a full waiting line is :class:`Busy`).
Runner = Callable[[Callable[[], str]], str]


def _gradio():
    """Gradio is the optional ``ui`` extra: the API server runs without it, the page needs it."""
    try:
        import gradio
    except ImportError:
        raise ImportError("the web chat needs gradio: pip install 'dialogpt-hf[ui]' (or run without --ui)") from None
    return gradio


@dataclass
class ChatUIConfig:
    """How the web chat looks and what it allows."""

    path: str = "/ui"
    title: str = "DialoGPT"
    description: str = ("Chat with a DialoGPT model. The whole conversation is the model's context; "
                        "the trash icon starts a new one.")
    max_candidates: int = 8
    """upper end of the candidates slider (every candidate costs a decoding pass and a rerank)."""

    def __post_init__(self):
        if not self.path.startswith("/") or self.path.rstrip("/") in ("", "/v1"):
            raise ValueError(f"ui path must start with '/' and not be '/' or '/v1', got {self.path!r}")
        if self.max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {self.max_candidates}")


def _text(content) -> str:
    """A Gradio message's content as plain text (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, Sequence):
        return " ".join(_text(c) for c in content if not (isinstance(c, dict) and "path" in c and "text" not in c))
    return ""


def history_turns(message: str, history: Sequence[dict], max_turns: int | None = None) -> list[str]:
    """The dialogue so far, oldest first, ending with the new message (empty turns dropped); with
    ``max_turns``, only that many from the end (walked backwards: older ones cannot reach the model,
    so a page that sends a long history costs what the model can read, not what it sent)."""
    turns = [message.strip()]
    for m in reversed(history):
        if max_turns is not None and len(turns) >= max_turns:
            break
        text = _text(m.get("content")).strip() if isinstance(m, dict) else ""
        if text:
            turns.append(text)
    return turns[::-1]


class ChatUIBackend:
    """What the page calls: one reply for a history and the chosen settings.

    Two views of the same Responder are kept (sharing model, tokenizer and counters): with the
    reverse-model reranker and without it, so the MMI switch costs nothing and the server's own
    Responder is never mutated. ``run`` (default: call directly) is where the decoding happens.
    """

    def __init__(self, responder: Responder, run: Runner | None = None):
        self.run = run
        self.safe = copy.copy(responder)
        if self.safe.safety is None:
            self.safe.safety = SafetyFilter.from_blocklist()
        self.has_mmi = isinstance(responder.reranker, MMIReranker)
        self.plain = copy.copy(self.safe)
        if self.has_mmi:
            self.plain.reranker = None

    def options(self, strategy: str, top_p: float, candidates: int) -> GenerationOptions:
        """The Responder's defaults with the page's settings applied (a ValueError names the setting)."""
        base = self.safe.options
        kw = dict(strategy=strategy, top_p=float(top_p), num_candidates=int(candidates))
        if strategy == "beam":
            kw["num_beams"] = max(base.num_beams, int(candidates), 2)
        try:
            return base.replace(**kw)
        except ValueError as e:
            raise ValueError(str(e).replace("--strategy", "strategy").replace("--num-candidates", "candidates")
                             .replace("--top-p", "top-p")) from None

    def reply(self, message: str, history: Sequence[dict], strategy: str = "greedy", top_p: float = 1.0,
              candidates: int = 1, mmi: bool = True) -> str:
        if not message or not message.strip():
            raise ValueError("type a message first")
        opts = self.options(strategy, top_p, candidates)
        responder = self.safe if (mmi and self.has_mmi) else self.plain
        turns = history_turns(message, history, responder.max_context_turns(opts))
        if any(invalid_unicode(t) for t in turns):  # the API's check (dialogpt.serve.request_body)
            raise ValueError("the conversation has text that is not valid Unicode (a lone surrogate)")

        def decode() -> str:
            return responder.respond(turns, opts).text

        return self.run(decode) if self.run is not None else decode()


def build_chat_ui(responder: Responder, config: ChatUIConfig | None = None, run: Runner | None = None) -> gr.Blocks:
    """The Gradio page (not yet mounted): chat, settings and reset."""
    gr = _gradio()
    cfg = config or ChatUIConfig()
    backend = ChatUIBackend(responder, run)
    default = backend.safe.options

    def respond(message, history, strategy, top_p, candidates, mmi=True):
        try:
            return backend.reply(message, history, strategy, top_p, candidates, mmi)
        except ValueError as e:  # a setting that does not fit: shown on the page, not a traceback
            raise gr.Error(first_line(e).split(": ", 1)[-1]) from None
        except Busy:
            raise gr.Error("The server is busy; please try again in a moment.") from None
        except TimeoutError:
            raise gr.Error("No reply in time; please try again.") from None

    settings = [
        gr.Dropdown(list(STRATEGY_CHOICES), value=default.strategy, label="Strategy",
                    info="greedy: one reply; sample / beam: several candidates, reranked", elem_id="strategy"),
        gr.Slider(0.05, 1.0, value=default.top_p, step=0.05, label="Top-p (sample)", elem_id="top-p"),
        gr.Slider(1, max(cfg.max_candidates, default.num_candidates), value=default.num_candidates, step=1,
                  label="Candidates",
                  info="replies generated per turn; the reranker and safety filter pick one",
                  elem_id="candidates"),
    ]
    if backend.has_mmi:
        settings.append(gr.Checkbox(value=True, label="MMI reranking (reverse model)", elem_id="mmi"))
    return gr.ChatInterface(
        respond, title=cfg.title, description=cfg.description, additional_inputs=settings,
        additional_inputs_accordion=gr.Accordion("Decoding settings", open=False),
        # Replies are shown as written (no markdown): Reddit text is full of '*', '#' and '>'.
        chatbot=gr.Chatbot(elem_id="chatbot", height=420, render_markdown=False,
                           placeholder="Say something to start a conversation."),
        textbox=gr.Textbox(placeholder="Say something...", elem_id="message"),
        # no analytics calls home from a server; no flagged-chat files written beside it
        flagging_mode="never", save_history=False, autofocus=False, analytics_enabled=False,
    )


def mount_chat_ui(app: FastAPI, responder: Responder, config: ChatUIConfig | None = None,
                  run: Runner | None = None) -> FastAPI:
    """Mount the web chat on ``app`` at ``config.path`` (default ``/ui``); returns ``app``.

    Without ``run``, an app made by ``create_app`` lends its scheduler's ``call`` (``app.state.scheduler``),
    so the page's replies take turns with the API's on the model thread.
    """
    cfg = config or ChatUIConfig()
    if run is None:
        run = getattr(getattr(app.state, "scheduler", None), "call", None)
    return _gradio().mount_gradio_app(app, build_chat_ui(responder, cfg, run), path=cfg.path.rstrip("/"),
                                      footer_links=[], ssr_mode=False)
