"""A per-client request rate limit (``dialogpt-serve --rate-limit N/min``): one token bucket per key.

Each client (an API key, or a client address on a server without keys) holds a bucket of ``N``
requests refilled at ``N`` per minute: it may spend its whole minute at once and then goes at the
steady rate, which is how per-minute limits of hosted APIs behave. The buckets live in the server's
event loop (one thread), so no lock is needed; full buckets are forgotten, so many client addresses
cannot grow the table without bound.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Hashable

_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(?:min|minute|m))?\s*$")
_PRUNE_AT = 10_000


def parse_rate_limit(text: str) -> int:
    """``"60/min"`` (or ``"60"``) -> 60 requests per minute; a ValueError names the flag."""
    m = _RATE.match(text)
    if m is None or int(m.group(1)) < 1:
        raise ValueError(f"--rate-limit must look like 60/min (requests per minute, >= 1), got {text!r}")
    return int(m.group(1))


class RateLimiter:
    """``take(client)`` is 0.0 when the request may go, else the seconds until it may."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        if per_minute < 1:
            raise ValueError(f"rate limit must be >= 1 request per minute, got {per_minute}")
        self.per_minute = per_minute
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def take(self, client: Hashable) -> float:
        now = self._clock()
        tokens, last = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * self._per_second)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > _PRUNE_AT:
                self._prune(now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self._per_second

    def _prune(self, now: float) -> None:
        full = [c for c, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self._per_second >= self.per_minute]
        for c in full:
            del self._buckets[c]


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
