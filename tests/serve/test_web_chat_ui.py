"""The web chat's backend without a browser: history, settings, the safety filter always on, MMI on/off,
and the page mounted at /ui/ on a FastAPI app."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dialogpt.decode import GenerationOptions, Responder, SafetyFilter
from dialogpt.decode.rerank import MMIReranker
from dialogpt.decode.safety import DEFAULT_FALLBACK, load_blocklist
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.batching import Busy
from dialogpt.serve.ui import ChatUIBackend, ChatUIConfig, build_chat_ui, history_turns, mount_chat_ui

gr = pytest.importorskip("gradio", reason="gradio not installed (pip install 'dialogpt-hf[ui]')")

OPTS = GenerationOptions(max_new_tokens=8)


@pytest.fixture()
def responder(tiny_model, tokenizer):
    return Responder(tiny_model, tokenizer, OPTS)


def test_history_is_every_turn_in_order_ending_with_the_message():
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
               {"role": "user", "content": "  "}, {"role": "assistant", "content": "fine"}]
    assert history_turns(" and you? ", history) == ["hi", "yo", "fine", "and you?"]
    assert history_turns(" and you? ", history, max_turns=3) == ["yo", "fine", "and you?"]  # read from the end


def test_a_long_history_is_cut_to_what_the_model_can_read_and_bad_text_is_a_message(responder):
    backend = ChatUIBackend(responder)
    given, respond = [], backend.plain.respond
    backend.plain.respond = lambda turns, opts: given.append(list(turns)) or respond(turns, opts)
    history = [{"role": "user", "content": f"turn {i}"} for i in range(5000)]
    backend.reply("last", history)
    window = responder.max_positions  # every turn costs a token: no more than this many can reach the model
    assert given == [[f"turn {i}" for i in range(5001 - window, 5000)] + ["last"]]
    with pytest.raises(ValueError, match="not valid Unicode"):
        backend.reply("hi \ud800", [])


def test_replies_use_the_whole_conversation(responder):
    backend = ChatUIBackend(responder)
    first = backend.reply("Hello there", [])
    assert first == responder.respond(["Hello there"]).text
    history = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": first}]
    second = backend.reply("What do you do?", history)
    assert second == responder.respond(["Hello there", first, "What do you do?"]).text
    assert second != responder.respond(["What do you do?"]).text  # so the history did matter
    with pytest.raises(ValueError, match="type a message"):
        backend.reply("   ", history)


def test_settings_are_checked_and_named_as_on_the_page(responder):
    backend = ChatUIBackend(responder)
    with pytest.raises(ValueError) as e:
        backend.options("greedy", 1.0, 3)
    assert "candidates" in str(e.value) and "--" not in str(e.value)
    beam = backend.options("beam", 1.0, 5)
    assert (beam.strategy, beam.num_candidates, beam.num_beams) == ("beam", 5, 5)
    sample = backend.options("sample", 0.7, 2)
    assert (sample.top_p, sample.num_candidates, sample.max_new_tokens) == (0.7, 2, OPTS.max_new_tokens)
    assert len(backend.safe.respond(["hi"], beam).candidates) == 5
    page_fn = build_chat_ui(responder).fn  # what the page calls: a bad setting is a message on the page
    with pytest.raises(gr.Error, match="candidates > 1"):
        page_fn("hi", [], "greedy", 1.0, 3)
    assert page_fn("hi", [], "beam", 1.0, 2) == backend.reply("hi", [], "beam", 1.0, 2)


def test_safety_filter_is_on_even_when_the_server_has_none(responder):
    assert responder.safety is None
    backend = ChatUIBackend(responder)
    assert responder.safety is None  # the server's own Responder is left as it is
    assert [p.pattern for p in backend.safe.safety.patterns] == [p.pattern for p in load_blocklist()]
    assert [p.pattern for p in backend.plain.safety.patterns] == [p.pattern for p in load_blocklist()]
    # a filter that blocks every non-empty reply: the page shows the fallback, not the reply
    responder.safety = SafetyFilter(patterns=[re.compile(r"\S")])
    assert ChatUIBackend(responder).reply("Hello there", []) == DEFAULT_FALLBACK


def test_mmi_switch_turns_the_reverse_model_reranker_on_and_off(tiny_model, tokenizer, monkeypatch):
    calls = []
    reranker = MMIReranker(tiny_model, tokenizer)
    original = MMIReranker.score
    monkeypatch.setattr(MMIReranker, "score", lambda self, h, c: calls.append(len(c[0])) or original(self, h, c))
    backend = ChatUIBackend(Responder(tiny_model, tokenizer, OPTS, reranker=reranker))
    assert backend.has_mmi
    backend.reply("Hello there", [], "beam", 1.0, 3, mmi=True)
    assert calls == [3]
    backend.reply("Hello there", [], "beam", 1.0, 3, mmi=False)
    assert calls == [3]
    labels = [c.label for c in build_chat_ui(Responder(tiny_model, tokenizer, OPTS, reranker=reranker)).additional_inputs]
    assert any("MMI" in str(x) for x in labels)


def test_the_page_is_mounted_at_ui_and_offers_the_settings(responder):
    ui = build_chat_ui(responder)
    assert [str(c.label) for c in ui.additional_inputs] == ["Strategy", "Top-p (sample)", "Candidates"]  # no MMI
    app = FastAPI()
    assert mount_chat_ui(app, responder) is app
    client = TestClient(app)
    page = client.get("/ui/")
    assert page.status_code == 200 and "gradio" in page.text.lower()
    config = client.get("/ui/config").json()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Strategy", "Candidates"} <= labels
    with pytest.raises(ValueError, match="ui path"):
        ChatUIConfig(path="/v1")


def test_the_server_mounts_the_page_only_when_asked(responder):
    assert TestClient(create_app(responder, ServerConfig())).get("/ui/").status_code == 404
    page = TestClient(create_app(responder, ServerConfig(ui=True))).get("/ui/")
    assert page.status_code == 200 and "gradio" in page.text.lower()


def test_replies_run_where_the_server_says(responder):
    """The page's decoding goes through ``run`` (the server's model thread); a full line is a page message."""
    ran = []
    backend = ChatUIBackend(responder, run=lambda fn: ran.append(fn) or fn())
    assert backend.reply("Hello there", []) == responder.respond(["Hello there"]).text
    assert len(ran) == 1

    def busy(fn):
        raise Busy

    with pytest.raises(gr.Error, match="busy"):
        build_chat_ui(responder, run=busy).fn("Hello there", [], "greedy", 1.0, 1)
