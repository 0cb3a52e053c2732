"""An offline safety filter for generated replies.

The original DialoGPT release shipped no decoder and therefore no output filter; its README
warns that the model "may generate offensive output". This filter works without a network: a
word / regex blocklist shipped as package data (``dialogpt/data/safety_blocklist.txt``) plus an
optional classifier hook, any callable ``text -> bool | float`` (a float is compared with
``threshold``). The Responder asks it about every candidate in ranked order and falls back to
the next candidate when one is blocked; every decision is counted.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

#: What a reply becomes when every candidate is blocked.
DEFAULT_FALLBACK = "Let's talk about something else."

Classifier = Callable[[str], "bool | float"]


def default_blocklist_path() -> Path:
    """The blocklist shipped with the package."""
    return Path(str(resources.files("dialogpt") / "data" / "safety_blocklist.txt"))


def parse_blocklist(lines: Iterable[str], source: str = "<blocklist>") -> list[re.Pattern[str]]:
    """Blocklist lines -> compiled patterns.

    ``# ...`` and blank lines are ignored; ``re:<pattern>`` is a case-insensitive regex; anything
    else is a word or phrase matched case-insensitively on word boundaries (so "hell" does not
    block "hello").
    """
    patterns = []
    for no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("re:"):
            try:
                patterns.append(re.compile(line[3:], re.IGNORECASE))
            except re.error as e:
                raise ValueError(f"{source}:{no}: bad regex {line[3:]!r}: {e}") from None
        else:
            words = r"\s+".join(re.escape(w) for w in line.split())
            patterns.append(re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE))
    return patterns


def load_blocklist(path: str | Path | None = None) -> list[re.Pattern[str]]:
    """Read a blocklist file (default: the shipped one)."""
    p = Path(path) if path is not None else default_blocklist_path()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such blocklist file")
    try:
        with open(p, encoding="utf-8") as f:
            return parse_blocklist(f, str(p))
    except UnicodeDecodeError as e:
        raise ValueError(f"--blocklist {p}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_classifier(spec: str) -> Classifier:
    """``"package.module:function"`` -> the callable (for ``--safety-classifier``)."""
    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"--safety-classifier must look like 'module:function', got {spec!r}")
    try:
        module = importlib.import_module(mod)
    except ImportError as e:
        raise ImportError(f"--safety-classifier {spec!r}: cannot import {mod!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"--safety-classifier {spec!r}: {attr!r} is not a callable in {mod}")
    return fn


@dataclass
class SafetyFilter:
    """Decides whether a candidate reply may be shown."""

    patterns: list[re.Pattern[str]] = field(default_factory=list)
    classifier: Classifier | None = None
    threshold: float = 0.5
    fallback: str = DEFAULT_FALLBACK

    @classmethod
    def from_blocklist(cls, path: str | Path | None = None, **kwargs) -> SafetyFilter:
        return cls(patterns=load_blocklist(path), **kwargs)

    def check(self, text: str) -> str | None:
        """``None`` when ``text`` is fine, else the reason it is blocked (for counters and logs)."""
        for p in self.patterns:
            if p.search(text):
                return f"blocklist:{p.pattern}"
        if self.classifier is not None:
            verdict = self.classifier(text)
            flagged = verdict >= self.threshold if not isinstance(verdict, bool) else verdict
            if flagged:
                return "classifier"
        return None
