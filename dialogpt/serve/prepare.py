"""From a request body's bytes to a :class:`GenRequest` with its prompt ids: the request-side work,
done in a worker thread so that no request's preparation holds up another's.

Why a worker thread: the event loop serves every connection and the model thread decodes every
running request; a body parsed, validated or tokenised on either stalls all the others for as long
as that takes. Here the work is also bounded (``max_messages``, only the turns that can reach the
model are tokenised, from the newest back), so a worker is never held long either.

The tokenizer is shared with the model thread. That is safe for what both do (encode and decode with
the fixed no-truncation, no-padding settings): the Rust tokenizer only takes shared borrows for them,
and nothing in dialogpt sets truncation or padding on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dialogpt.serve.request_body import ApiError, load_json
from dialogpt.serve.schemas import MAX_MESSAGES, GenRequest

Parser = Callable[..., GenRequest]
"""``parse_chat`` or ``parse_completion``."""


@dataclass(frozen=True)
class RequestLimits:
    """What a server accepts from one request (taken from its ``ServerConfig``)."""

    served: str = "dialogpt"
    max_n: int = 8
    max_tokens_limit: int = 256
    max_messages: int = MAX_MESSAGES


def prepare_request(raw: bytes, parse: Parser, responder: Any, limits: RequestLimits) -> GenRequest:
    """Parse and check ``raw``, map it onto ``responder``'s options, and build its prompt ids (an
    :class:`ApiError` for a client mistake). Blocking work: call it from a worker thread."""
    body = load_json(raw)
    req = parse(body, responder.options, limits.served, limits.max_n, limits.max_tokens_limit,
                max_messages=limits.max_messages, context_turns=responder.max_context_turns)
    try:
        responder.prompt_budget(req.options)  # max_tokens must leave room for a prompt
    except ValueError as e:
        raise ApiError(400, str(e).replace("--max-new-tokens", "max_tokens"), "max_tokens") from None
    req.prepared = responder.prompt(req.turns, req.options)
    return req
