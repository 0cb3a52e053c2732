"""dialogpt-serve on loopback (real uvicorn) against generated and heavy bodies: no input gets a 5xx
(Hypothesis, derandomised), and a normal request is answered while heavy bodies are in flight."""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogpt.decode import GenerationOptions, Responder
from dialogpt.serve.app import ServerConfig, create_app
from dialogpt.serve.runner import serving_in_thread

HELLO = {"model": "tiny", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    return Responder.from_pretrained(str(tiny_model_dir), device="cpu", options=GenerationOptions(max_new_tokens=2))


@pytest.fixture(scope="module")
def server(responder):
    cfg = ServerConfig(host="127.0.0.1", port=0, model_name="tiny", max_tokens_limit=4, max_n=2, max_body_bytes=1 << 18,
                       max_messages=2000)
    with serving_in_thread(create_app(responder, cfg), cfg) as url:
        yield url


# ---------------------------------------------------------------------- generated bodies
class Raw(str):
    """Text written into the body as is: what json.dumps cannot write (huge integers, NaN, deep nesting)."""


def dump(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(dump(x) for x in v) + "]"
    return json.dumps(v)  # a str with a lone surrogate becomes a "\ud800" escape


surrogate = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
text = st.one_of(st.text(max_size=12), st.tuples(st.text(max_size=4), surrogate).map("".join))
odd_number = st.one_of(st.integers(65, 6000).map(lambda n: Raw("9" * n)), st.integers(65, 300).map(lambda n: Raw("-" + "1" * n)),
                       st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-0.0")]))
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), text, odd_number)
anything = st.recursive(scalar, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
                        max_leaves=12)
deep = st.integers(1, 3000).map(lambda d: Raw("[" * d + "]" * d))
part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | anything, "text": text | anything})
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer", "robot"]) | anything,
     "content": text | st.lists(part, max_size=3) | anything},
    optional={"name": text | anything})
messages = st.one_of(st.lists(message, max_size=5), st.tuples(message, st.integers(100, 2500)).map(lambda t: [t[0]] * t[1]),
                     anything, deep)


def maybe(good) -> st.SearchStrategy:
    return st.one_of(good, good, anything, odd_number)


GOOD = {"model": st.just("tiny"), "max_tokens": st.integers(1, 4), "temperature": st.floats(0, 2),
        "n": st.integers(1, 2), "stream": st.booleans(), "stop": st.lists(st.text(min_size=1, max_size=3), max_size=2),
        "seed": st.integers(-(2**63), 2**63 - 1), "user": st.text(max_size=5)}
good_chat = st.fixed_dictionaries(
    {"messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]),
                                                 "content": st.text(max_size=12)}), min_size=1, max_size=4)
     .filter(lambda ms: any(m["role"] != "system" for m in ms))}, optional=GOOD)
SAMPLING = {"model": maybe(st.just("tiny")), "max_tokens": maybe(st.integers(1, 4)), "temperature": maybe(st.floats(0, 2)),
            "top_p": maybe(st.floats(0.1, 1)), "n": maybe(st.integers(1, 2)), "stream": maybe(st.booleans()),
            "stop": maybe(text | st.lists(text, max_size=5)), "seed": maybe(st.integers(-(2**63), 2**63 - 1)),
            "user": maybe(text), "stream_options": maybe(st.just({"include_usage": True})),
            "frequency_penalty": maybe(st.floats(-2, 2)), "response_format": maybe(st.just({"type": "text"})),
            "logprobs": anything, "metadata": anything}
chat = st.fixed_dictionaries({"messages": messages}, optional=SAMPLING)
completion = st.fixed_dictionaries(
    {"prompt": st.one_of(text, st.lists(text, max_size=2), anything, st.integers(1, 2500).map(lambda n: "a<|endoftext|>" * n))},
    optional=SAMPLING)
requests = st.one_of(st.tuples(st.just("/v1/chat/completions"), st.one_of(good_chat, chat, chat, anything, deep)),
                     st.tuples(st.just("/v1/completions"), st.one_of(completion, completion, anything)))


@pytest.mark.slow
def test_no_generated_body_gets_a_5xx_and_the_server_still_answers(server, caplog):
    caplog.set_level(logging.ERROR, logger="dialogpt")
    seen: dict[int, int] = {}
    with httpx.Client(base_url=server, timeout=60) as client:

        @settings(max_examples=120, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(requests)
        def one(req) -> None:
            path, body = req
            r = client.post(path, content=dump(body).encode("utf-8", "surrogatepass"),
                            headers={"Content-Type": "application/json"})
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (path, dump(body)[:300], r.text[:300])
            if r.status_code >= 400:
                err = r.json()["error"]
                assert isinstance(err["message"], str) and err["type"] == "invalid_request_error", err
            else:
                assert "server_error" not in r.text, r.text[:300]  # a streamed reply can fail after its 200

        one()
        final = client.post("/v1/chat/completions", json=HELLO)
        health = client.get("/health").json()
    assert final.status_code == 200 and final.json()["choices"][0]["message"]["role"] == "assistant"
    assert health["failed"] == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # both valid and invalid bodies were tried (Hypothesis' derandomised stream still shifts with the code it
    # runs against: 9 to 29 of the 120 were 200s across versions of the server)
    assert seen.get(200, 0) >= 5 and seen.get(400, 0) >= 50, seen


def test_the_former_500s_are_400s_naming_the_field(server):
    cases = {b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": ' + b"9" * 5000 + b"}": "max_tokens",
             b'{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}': "model",
             b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "a\\ud800"}]}]}':
                 "messages[0].content[0].text",
             b'{"messages": [{"role": "user", "content": "hi", "name": "\\udfff"}]}': "messages[0].name",
             b'{"messages": [{"role": "user", "content": "hi"}], "stop": ["x", "\\ud800"]}': "stop[1]"}
    for body, param in cases.items():
        r = httpx.post(server + "/v1/chat/completions", content=body, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


# ---------------------------------------------------------------------- fairness
class _HeldPrompts:
    """The responder, except that building a prompt of more than one turn waits at a gate: heavy
    requests stay in flight, in their preparation, for as long as the test wants."""

    def __init__(self, inner):
        self.inner, self.gate, self.held = inner, threading.Event(), threading.Semaphore(0)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def prompt(self, history, options=None):
        if len(history) > 1:
            self.held.release()
            assert self.gate.wait(60)
        return self.inner.prompt(history, options)


def test_a_normal_request_finishes_while_heavy_bodies_are_in_flight(responder):
    held = _HeldPrompts(responder)
    cfg = ServerConfig(host="127.0.0.1", port=0, model_name="tiny", max_messages=50_000)
    heavy = json.dumps({"messages": [{"role": "user", "content": ""}] * 30_000, "max_tokens": 2}).encode()
    assert 900_000 < len(heavy) < cfg.max_body_bytes  # ~1 MB: the body
    order, results = [], {}
    with serving_in_thread(create_app(held, cfg), cfg) as url:

        def send(i: int) -> None:
            r = httpx.post(url + "/v1/chat/completions", content=heavy, timeout=120)
            results[i] = r
            order.append(f"heavy{i}")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            for _ in threads:  # all three read, parsed and validated, and now held in preparation
                assert held.held.acquire(timeout=60)
            hello = httpx.post(url + "/v1/chat/completions", json=HELLO, timeout=60)
            order.append("hello")
        finally:
            held.gate.set()
            for t in threads:
                t.join(120)
    assert hello.status_code == 200
    assert order[0] == "hello" and sorted(order[1:]) == ["heavy0", "heavy1", "heavy2"]
    budget = responder.prompt_budget(GenerationOptions(max_new_tokens=2))
    for r in results.values():  # the heavy ones are answered too, their prompts filled to the budget
        assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == budget
