"""A request body from bytes to checked JSON: the one path every HTTP body of the servers takes.

What it guarantees, so no later step (pydantic, the tokenizer, ``int()``, SQLite, the JSON writer of an
error) meets a value it cannot handle:

* the body arrives within ``max_bytes`` (413) and ``timeout`` seconds (408);
* it is UTF-8 JSON (400 ``invalid_json``), nested no deeper than the parser manages (400, not a
  ``RecursionError``);
* every string in it, keys included, is valid Unicode: JSON may carry a lone surrogate (``"\\ud800"``)
  that no UTF-8 encoder, tokenizer or log line accepts;
* every integer has at most :data:`MAX_INT_DIGITS` digits: Python refuses to convert more than 4,300
  (a ``ValueError`` inside ``json.loads``), and no field of ours means a number that large;
* there is no ``NaN`` / ``Infinity`` (Python's ``json`` accepts them; JSON has none).

A bad string or number is a 400 whose ``param`` is its path in the body (``messages[3].content[0].text``),
OpenAI's error shape. Checking costs one regular-expression scan of the raw bytes when nothing suspicious
is there; only a body with a surrogate escape, a long digit run or a NaN literal is walked value by value.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

#: the longest integer a body may hold (2**63 has 19 digits; seeds are the largest numbers we take).
MAX_INT_DIGITS = 64

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_INT_DIGITS + 1))


class ApiError(Exception):
    """A client mistake (or an overload): becomes an OpenAI-style JSON error with this status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 etype: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.etype = status, message, param, code, etype
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.etype, "param": self.param, "code": self.code}}


# ---------------------------------------------------------------------- reading
async def _read(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or len(length) > 20):
        raise ApiError(400, f"bad Content-Length {length[:40]!r}", headers={"Connection": "close"})
    chunks, size = [], 0
    too_big = length is not None and int(length) > max_bytes
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            too_big = True
        if size > 16 * max_bytes:
            break  # not worth draining: the connection closes
        if not too_big:
            chunks.append(chunk)
    if too_big:
        # The rest was read (and dropped) above, so the client sees this answer, not a reset.
        raise ApiError(413, f"the body is {length or size} bytes; this server accepts at most {max_bytes}",
                       code="request_too_large", headers={"Connection": "close"})
    return b"".join(chunks)


async def read_body(request: Request, max_bytes: int, timeout: float) -> bytes:
    """The request's body, read under ``max_bytes`` (413) and ``timeout`` seconds (408)."""
    try:
        return await asyncio.wait_for(_read(request, max_bytes), timeout)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the body did not arrive within {timeout:g} s", code="timeout",
                       headers={"Connection": "close"}) from None


# ---------------------------------------------------------------------- parsing and checking
class _Rejected:
    """A value the parser met and we refuse; the walk names where it sits."""

    def __init__(self, why: str):
        self.why = why


def load_json(raw: bytes) -> Any:
    """``raw`` as checked JSON (see the module docstring), or an :class:`ApiError` (400)."""
    rejected: list[_Rejected] = []

    def refuse(why: str) -> _Rejected:
        rejected.append(_Rejected(why))
        return rejected[-1]

    def long_int(digits: str) -> int | _Rejected:
        n = len(digits.lstrip("-"))
        return int(digits) if n <= MAX_INT_DIGITS else refuse(f"is a number of {n} digits (at most "
                                                                  f"{MAX_INT_DIGITS} are accepted)")

    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=lambda c: refuse(f"is {c}, which JSON does not have"),
                           parse_int=long_int if _LONG_DIGITS.search(raw) else None)
    except (UnicodeDecodeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise ApiError(400, f"the body is not valid JSON: {e}", code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON: nested too deeply", code="invalid_json") from None
    if rejected or _SURROGATE_ESCAPE.search(raw):
        check_values(value)
    return value


def invalid_unicode(s: str) -> bool:
    """Whether ``s`` holds a lone surrogate (the only way a Python str fails to encode as UTF-8)."""
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def check_values(value: Any, path: str = "") -> None:
    """Every string of ``value`` (a parsed JSON value) is valid Unicode and no value was refused by
    the parser; else an :class:`ApiError` (400) whose ``param`` is the path of the first bad one.

    Iterative, so any depth the parser produced is walked without recursion."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, v = stack.pop()
        problem = None
        if isinstance(v, str):
            problem = "is not valid Unicode (a lone surrogate)" if invalid_unicode(v) else None
        elif isinstance(v, _Rejected):
            problem = v.why
        elif isinstance(v, dict):
            if any(invalid_unicode(k) for k in v):
                problem = "has a key that is not valid Unicode (a lone surrogate)"
            else:  # reversed onto the stack, so the first bad value in the body is the one named
                stack.extend((_child(where, k), v[k]) for k in reversed(v))
        elif isinstance(v, list):
            stack.extend((_child(where, i), v[i]) for i in range(len(v) - 1, -1, -1))
        if problem is not None:
            raise ApiError(400, f"'{where or 'the body'}' {problem}", where or None, "invalid_value")
