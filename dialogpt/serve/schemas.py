"""OpenAI request bodies as pydantic models, and their mapping onto decoding options.

Every check the stdlib server had is kept (its tests are ported): wrong types, out-of-range values,
unknown roles, unsupported OpenAI features (tools, logprobs, JSON output) and ``stream_options``
without ``stream`` are 400s whose ``param`` and message name the field; an unknown ``model`` is a
404. Strings and numbers the body carries were already checked where it was parsed
(:func:`dialogpt.serve.request_body.load_json`: lone surrogates, numbers of thousands of digits, NaN),
once for every field. Fields a DialoGPT model has no use for (``user``, ``logit_bias``,
``metadata``, ...) are accepted (``user`` and a message's ``name`` must be strings) and ignored, as
OpenAI clients send them freely.

Bounded work: more than ``max_messages`` messages (or ``<|endoftext|>``-separated turns of a
``prompt``) is a 400 before anything is validated; of the rest, only the last ones that can reach
the model (``context_turns``: ``max_history_turns``, at most the context window) are validated and
become turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError, field_validator

from dialogpt.chat_format import EOS_TOKEN, Turn, messages_to_turns
from dialogpt.decode import GenerationOptions
from dialogpt.serve.request_body import ApiError

__all__ = ["ApiError", "GenRequest", "parse_chat", "parse_completion", "MAX_MESSAGES"]

#: default cap on a request's messages: a GPT-2 window (1,024 positions) holds at most 1,024 turns
#: (each costs its EOS), so ten times that lets a client send a whole long chat log unedited, while
#: the 1 MB default body (up to ~36,000 empty messages) cannot make the server validate more.
MAX_MESSAGES = 10_000


def _strict_number(v: Any) -> Any:
    # JSON true/false and "0.5" are not numbers; pydantic's lax mode would take them.
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise ValueError("must be a number")
    return v


def _strict_int(v: Any) -> Any:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise ValueError("must be an integer")
    return v


Number = Annotated[float | None, BeforeValidator(_strict_number)]
Integer = Annotated[int | None, BeforeValidator(_strict_int)]

#: OpenAI fields a DialoGPT model cannot honour: asking for them is a 400, not a silent no-op.
_UNSUPPORTED = ("tools", "functions", "audio", "modalities", "prediction", "top_logprobs", "logprobs", "echo",
                "suffix", "best_of")


#: a ``temperature`` below this decodes greedily, as 0 does (vLLM's ``_SAMPLING_EPS``): dividing the
#: logits by 5e-324 makes them infinite, and sampling from NaN probabilities fails the request.
GREEDY_BELOW = 1e-5


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else " ".join(p.text for p in self.content)


class _Sampling(BaseModel):
    """Fields shared by /v1/chat/completions and /v1/completions."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    user: str | None = None
    temperature: Number = Field(None, ge=0, le=2)
    top_p: Number = Field(None, ge=0, le=1)
    max_tokens: Integer = Field(None, ge=1)
    n: Integer = Field(None, ge=1)
    stream: StrictBool = False
    stream_options: dict | None = None
    seed: Integer = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    frequency_penalty: Number = Field(None, ge=-2, le=2)
    presence_penalty: Number = Field(None, ge=-2, le=2)
    response_format: Any = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, v: Any) -> Any:
        items = [v] if isinstance(v, str) else v
        if v is not None and (not isinstance(items, list) or len(items) > 4 or not all(
                isinstance(x, str) and x for x in items)):
            raise ValueError("'stop' must be a non-empty string or a list of up to 4 of them")
        return v


class ChatCompletionRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: Integer = Field(None, ge=1)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    """DialoGPT's own text: turns separated (and optionally closed) by ``<|endoftext|>``."""

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("'prompt' must be a string (or a list of exactly one)")
        return v


@dataclass
class GenRequest:
    """A validated request in the server's terms."""

    turns: list[Turn]
    options: GenerationOptions
    n: int
    stream: bool
    include_usage: bool = False
    seed: int | None = None
    stop: tuple[str, ...] = ()
    prepared: tuple[list[int], bool] | None = None
    """the prompt ids and whether they were truncated, when the app built them off the model thread."""


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list"}


def _param(loc: tuple) -> str:
    """('messages', 0, 'content', 'str') -> 'messages[0].content' (union member tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier() and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
    return out


def validate(model: type[BaseModel], body: Any, messages_from: int = 0) -> Any:
    """``model.model_validate(body)`` with the first problem as an :class:`ApiError` naming the field
    (``messages_from``: the index in the client's list of ``body["messages"][0]``, when only a tail
    of them is validated)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    for name in _UNSUPPORTED:
        if body.get(name):
            raise ApiError(400, f"'{name}' is not supported by this server", name, "unsupported_parameter")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = e.errors(include_url=False, include_input=False)[0]
        loc = err["loc"]
        if messages_from and loc[:1] == ("messages",) and len(loc) > 1 and isinstance(loc[1], int):
            loc = ("messages", loc[1] + messages_from, *loc[2:])
        param = _param(loc)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        text = msg if msg.startswith("'") else f"'{param}' {msg}"
        raise ApiError(400, text, param or None, "invalid_value") from None


def _common_checks(req: _Sampling, served: str, max_n: int, max_tokens_limit: int, max_tokens: int | None) -> None:
    if req.model is not None and req.model != served:
        raise ApiError(404, f"the model '{req.model}' does not exist; this server serves '{served}'", "model",
                       "model_not_found")
    rf = req.response_format
    if rf is not None and (not isinstance(rf, dict) or rf.get("type") != "text"):
        raise ApiError(400, "only response_format {'type': 'text'} is supported", "response_format",
                       "unsupported_parameter")
    if req.stream_options and not req.stream:
        raise ApiError(400, "'stream_options' is only allowed when 'stream' is true (as OpenAI's API)",
                       "stream_options")
    if max_tokens is not None and max_tokens > max_tokens_limit:
        raise ApiError(400, f"'max_tokens' must be between 1 and {max_tokens_limit}, got {max_tokens}",
                       "max_tokens", "invalid_value")
    if req.n is not None and req.n > max_n:
        raise ApiError(400, f"'n' must be between 1 and {max_n}, got {req.n}", "n", "invalid_value")


def to_options(req: _Sampling, defaults: GenerationOptions, max_tokens: int | None) -> GenerationOptions:
    """Fields left out use the server's decoding defaults. ``temperature: 0`` (or below 1e-5) is greedy; a positive
    ``temperature`` or a ``top_p`` samples; ``n > 1`` without sampling is beam search returning
    ``n`` beams. The penalties run over the response only (``dialogpt.decode.processors``)."""
    overrides: dict = {"frequency_penalty": req.frequency_penalty, "presence_penalty": req.presence_penalty}
    if max_tokens is not None:
        overrides["max_new_tokens"] = max_tokens
        overrides["min_new_tokens"] = min(defaults.min_new_tokens, max_tokens)
    strategy = defaults.strategy
    if req.temperature is not None and req.temperature < GREEDY_BELOW:
        strategy = "greedy"
    elif req.temperature is not None or req.top_p is not None:
        strategy = "sample"
    if strategy == "sample":
        if req.top_p == 0:
            raise ApiError(400, "'top_p' must be > 0", "top_p", "invalid_value")
        overrides.update(temperature=req.temperature, top_p=req.top_p)
    n = req.n or 1
    candidates = max(n, defaults.num_candidates if strategy == defaults.strategy else 1)
    if strategy == "greedy" and candidates > 1:
        strategy = "beam"  # n distinct deterministic replies
    if strategy == "beam":
        overrides["num_beams"] = max(defaults.num_beams, candidates, 2)
    overrides.update(strategy=strategy, num_candidates=candidates)
    try:
        return defaults.replace(**overrides)
    except ValueError as e:
        raise ApiError(400, str(e)) from None


def _gen_request(req: _Sampling, turns: list[Turn], options: GenerationOptions) -> GenRequest:
    stop = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    so = req.stream_options or {}
    return GenRequest(turns, options, req.n or 1, req.stream, bool(so.get("include_usage", False)), req.seed,
                      tuple(stop))


def _too_many(count: int, what: str, param: str, cap: int) -> None:
    if count > cap:
        raise ApiError(400, f"'{param}' has {count:,} {what}; this server takes at most {cap:,} (--max-messages)",
                       param, "too_many_messages")


def _first_kept(messages: Sequence[Any], keep: int) -> int:
    """Where the last ``keep`` messages that are not system/developer ones start (walked from the
    end over the raw JSON: anything else counts, and fails validation if it is no message)."""
    count = 0
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if not (isinstance(m, dict) and m.get("role") in ("system", "developer")):
            count += 1
            if count > keep:
                return i + 1
    return 0


ContextTurns = Callable[[GenerationOptions], int]
"""options -> the most trailing turns that can reach the model (``Responder.max_context_turns``)."""


def parse_chat(body: Any, defaults: GenerationOptions, served: str, max_n: int, max_tokens_limit: int,
               max_messages: int = MAX_MESSAGES, context_turns: ContextTurns | None = None) -> GenRequest:
    """A /v1/chat/completions body -> :class:`GenRequest` (or an :class:`ApiError`).

    Only the messages that can reach the prompt are validated and read: the last
    ``context_turns(defaults)`` user/assistant ones (a request cannot change ``max_history_turns``,
    so the server's defaults give the bound) and the system messages among them. Older ones are
    counted (``max_messages``) and their strings checked with the whole body's, nothing more:
    pydantic objects for 30,000 messages cost 25 ms and a garbage collection that stalls every thread.
    """
    start = 0
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        _too_many(len(body["messages"]), "messages", "messages", max_messages)
        if context_turns is not None:
            start = _first_kept(body["messages"], context_turns(defaults))
            body = {**body, "messages": body["messages"][start:]}
    req = validate(ChatCompletionRequest, body, start)
    max_tokens = req.max_tokens if req.max_tokens is not None else req.max_completion_tokens
    _common_checks(req, served, max_n, max_tokens_limit, max_tokens)
    options = to_options(req, defaults, max_tokens)
    turns = messages_to_turns([{"role": m.role, "content": m.text()} for m in req.messages
                               if m.role not in ("system", "developer")])
    if not turns:
        raise ApiError(400, "'messages' has no user or assistant message", "messages")
    return _gen_request(req, turns, options)


def parse_completion(body: Any, defaults: GenerationOptions, served: str, max_n: int, max_tokens_limit: int,
                     max_messages: int = MAX_MESSAGES, context_turns: ContextTurns | None = None) -> GenRequest:
    """A /v1/completions body: ``prompt`` is DialoGPT's raw text, turns joined by ``<|endoftext|>``."""
    req = validate(CompletionRequest, body)
    _common_checks(req, served, max_n, max_tokens_limit, req.max_tokens)
    text = req.prompt if isinstance(req.prompt, str) else req.prompt[0]
    _too_many(text.count(EOS_TOKEN), "turns ('<|endoftext|>' separators)", "prompt", max_messages)
    options = to_options(req, defaults, req.max_tokens)
    keep = context_turns(options) if context_turns else None
    turns: list[Turn] = []
    for piece in reversed(text.split(EOS_TOKEN)):  # newest first; older turns cannot reach the prompt
        if keep is not None and len(turns) >= keep:
            break
        if piece.strip():
            turns.append(Turn(piece.strip()))
    if not turns:
        raise ApiError(400, "'prompt' has no text", "prompt")
    return _gen_request(req, turns[::-1], options)
