"""Token ids -> text deltas for streaming, with stop strings and the safety filter checked as the
reply grows, and the server-sent-event framing of OpenAI's chunk format.

The deltas of a stream concatenate to exactly the text a non-streamed request gets (the Responder's
``" ".join(decode(ids).split())``). What is held back, and why:

* a trailing U+FFFD: a character whose UTF-8 bytes span two tokens is not complete yet;
* the last ``max(len(stop)) - 1`` characters when ``stop`` strings are set: they may be the start
  of a stop string, which must never reach the client;
* with a safety filter, the word being written: the blocklist matches whole words ("hell" must not
  block "hello"), so a word is checked, and sent, once the next token shows where it ends. A reply
  that turns out blocked ends with ``finish_reason: "content_filter"``; the blocked words were
  never sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

_WORD_TAIL = re.compile(r"\w+$")


def normalize(text: str) -> str:
    return " ".join(text.split())


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop string (trailing spaces dropped), and whether one was found."""
    cut = min((k for k in (text.find(s) for s in stop) if k >= 0), default=-1)
    return (text[:cut].rstrip(), True) if cut >= 0 else (text, False)


class TextStream:
    """One row's reply as it grows (see the module docstring)."""

    def __init__(self, tokenizer, stop: Sequence[str] = (), safety=None, streaming: bool = True):
        self.tokenizer, self.stop, self.safety, self.streaming = tokenizer, tuple(stop), safety, streaming
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.sent = ""
        self.text = ""
        self._deltas: list[str] = []

    def take_deltas(self) -> list[str]:
        out, self._deltas = self._deltas, []
        return out

    def update(self, token_ids: Sequence[int], finish: str | None) -> str | None:
        """Take the row's generated ids (EOS excluded); ``finish`` is "stop" (EOS came), "length"
        (max_new_tokens) or None (going on). Returns the finish reason once the reply is over."""
        if finish is None and not self.streaming and not self.stop:
            return None  # nothing to look at before the end
        full = normalize(self.tokenizer.decode(list(token_ids), skip_special_tokens=True))
        full, stopped = cut_at_stop(full, self.stop)
        finish = "stop" if stopped else finish
        if finish is None:
            if self.streaming:
                ready = self._ready(full)
                if ready is None:
                    self.text = self.sent
                    return "content_filter"
                self._send(ready)
            return None
        if self.safety is not None and self.safety.check(full) is not None:
            self.text = self.sent if self.streaming else self.safety.fallback
            return "content_filter"
        if self.streaming:
            self._send(full)
        self.text = self.sent if self.streaming else full
        return finish

    def _ready(self, full: str) -> str | None:
        """The part of ``full`` that may be sent now; None when it is blocked."""
        ready = full.rstrip("\ufffd").rstrip()
        if self.hold:
            ready = ready[: max(len(ready) - self.hold, 0)]
        if self.safety is not None:
            ready = _WORD_TAIL.sub("", ready).rstrip()
            if len(ready) > len(self.sent) and self.safety.check(ready) is not None:
                return None
        return ready

    def _send(self, ready: str) -> None:
        if len(ready) > len(self.sent) and ready.startswith(self.sent):
            self._deltas.append(ready[len(self.sent):])
            self.sent = ready


def sse(obj: dict | str) -> bytes:
    """One server-sent event (``data: [DONE]`` for the final marker)."""
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
