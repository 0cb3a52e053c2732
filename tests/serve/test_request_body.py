"""The one path request bodies take (dialogpt.serve.request_body) and the bounded chat parsing after it:
every bad string or number is a 400 naming where it sits, and only the messages that can reach the
prompt are validated and read."""

from __future__ import annotations

import json

import pytest

from dialogpt.decode import GenerationOptions
from dialogpt.serve.request_body import MAX_INT_DIGITS, ApiError, check_values, load_json
from dialogpt.serve.schemas import parse_chat, parse_completion

OPTS = GenerationOptions(max_new_tokens=4)


def _error(raw: bytes) -> ApiError:
    with pytest.raises(ApiError) as e:
        load_json(raw)
    assert e.value.status == 400
    return e.value


@pytest.mark.parametrize("raw, param, needle", [
    (b'{"max_tokens": ' + b"9" * 5000 + b"}", "max_tokens", "5000 digits"),
    (b'{"seed": -' + b"1" * (MAX_INT_DIGITS + 1) + b"}", "seed", f"{MAX_INT_DIGITS + 1} digits"),
    (b'{"temperature": NaN}', "temperature", "NaN"),
    (b'{"a": [1, {"b": -Infinity}]}', "a[1].b", "-Infinity"),
    (b'{"model": "\\ud800"}', "model", "not valid Unicode"),
    (b'{"messages": [{"content": [{"type": "text", "text": "ok"}, {"text": "x\\udfff"}]}]}',
     "messages[0].content[1].text", "not valid Unicode"),
    (b'{"metadata": {"\\ud800": 1}}', "metadata", "has a key"),
    (b'{"logit_bias": {"a b": "\\ud800"}}', 'logit_bias["a b"]', "not valid Unicode"),
    (b'"\\ud800"', None, "'the body'"),
])
def test_bad_strings_and_numbers_are_400s_naming_where_they_are(raw, param, needle):
    err = _error(raw)
    assert err.param == param and needle in err.message and err.code == "invalid_value"
    assert err.body()["error"]["type"] == "invalid_request_error"
    json.dumps(err.body(), ensure_ascii=False).encode("utf-8")  # the answer itself can be written


def test_the_first_bad_value_in_the_body_is_the_one_named():
    err = _error(b'{"stop": ["ok", "\\ud800"], "user": "\\udc00", "n": ' + b"1" * 100 + b"}")
    assert err.param == "stop[1]"


def test_good_bodies_parse_as_json_does():
    raw = json.dumps({"seed": 2**63 - 1, "big": int("9" * MAX_INT_DIGITS), "emoji": "\U0001f600 ok",
                      "digits_in_text": "1" * 500, "nested": [[[{"x": 1.5e300}]]]}).encode()  # \ud83d\ude00
    assert b"\\ud83d" in raw and load_json(raw) == json.loads(raw)
    check_values(json.loads(raw))


@pytest.mark.parametrize("raw, needle", [
    (b"{", "not valid JSON"), (b"\xff{}", "not valid JSON"), (b"[" * 100_000, "nested too deeply"),
])
def test_malformed_bodies_are_invalid_json(raw, needle):
    err = _error(raw)
    assert err.code == "invalid_json" and needle in err.message


def test_only_the_messages_that_can_reach_the_prompt_are_validated_and_read():
    empty = {"role": "user", "content": ""}
    body = {"messages": [{"role": "robot"}] + [empty] * 29_998 + [{"role": "user", "content": "hi"}]}
    req = parse_chat(body, OPTS, "m", 8, 256, max_messages=50_000, context_turns=lambda o: 5)
    assert [t.text for t in req.turns] == ["", "", "", "", "hi"]  # message 0 was never looked at
    # a bad message among the kept ones is named by its index in the client's list
    body["messages"][-3] = {"role": "user", "content": 5}
    with pytest.raises(ApiError) as e:
        parse_chat(body, OPTS, "m", 8, 256, max_messages=50_000, context_turns=lambda o: 5)
    assert e.value.param == "messages[29997].content"
    # system messages among the last ones are skipped, not counted
    msgs = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "system", "content": "s"},
            {"role": "user", "content": "c"}]
    req = parse_chat({"messages": msgs}, OPTS, "m", 8, 256, context_turns=lambda o: 2)
    assert [t.text for t in req.turns] == ["b", "c"]


def test_more_messages_than_the_cap_is_a_400_before_anything_is_read():
    body = {"messages": [{"role": "robot"}] * 11}
    with pytest.raises(ApiError) as e:
        parse_chat(body, OPTS, "m", 8, 256, max_messages=10)
    assert e.value.param == "messages" and e.value.code == "too_many_messages"
    assert "has 11 messages" in e.value.message and "--max-messages" in e.value.message
    with pytest.raises(ApiError) as e:
        parse_completion({"prompt": "a<|endoftext|>" * 11}, OPTS, "m", 8, 256, max_messages=10)
    assert e.value.param == "prompt"
    req = parse_completion({"prompt": "a<|endoftext|>b<|endoftext|> <|endoftext|>c"}, OPTS, "m", 8, 256,
                           context_turns=lambda o: 2)
    assert [t.text for t in req.turns] == ["b", "c"]
