"""The extraction rules in ONE config: presets, named switchable rules, and the blocklists.

:class:`ExtractRules` is the single definition of *what* is selected; ``pipeline.Plan`` embeds it
(and stores it in ``plan.json`` for resume), ``threads.ExtractConfig`` compiles it for one kind of
month. Two presets:

* ``original`` -- exactly the selection of microsoft/DialoGPT's ``reddit_extractor`` as its
  README/Makefile ran it for the released data: min score 1, depth 2-5, leaves only in training
  months, title off, the original's (empty) word and subreddit blocklists, no test or validation
  split inside training months, and none of the project-only rules below.
* ``default`` -- the project's choice: the original's rules plus every project-only rule, the
  shipped blocklists, the submission title as root turn, and 5% test / 5% validation threads
  hashed out of the training months (20% / 10% on the tiny ``dummy`` sample, so it has a test set).

Project-only rules (the original has none of them), each switchable with ``--rules +name,-name``:

* ``removed``   drop ``[removed]`` bodies under their own name (the original keeps them; they are
  one word, so its "fewer than 2 words" filter drops them: off, they count as ``too_short``).
* ``bot``       drop comments by bots (``AutoModerator``, names ending in ``bot``, "I am a bot").
* ``non_ascii`` drop comments whose letters/digits are more than 10% non-ASCII (the original keeps
  them and its normalisation strips those characters, leaving fragments).

Blocklists match as the original's flashtext ``KeywordProcessor`` does (:class:`WordBlocklist`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path

#: project-only rules, switchable by name; (name, what it does)
SWITCHABLE: dict[str, str] = {
    "removed": "drop [removed] bodies (else they fall to too_short, as in the original)",
    "bot": "drop comments by bots (AutoModerator, *bot authors, 'I am a bot')",
    "non_ascii": "drop comments with more than 10% non-ASCII letters",
}
PRESETS = ("original", "default")
#: a blocklist field set to this means the list shipped in ``dialogpt_dataset/data``
SHIPPED = "shipped"
#: flashtext's ``non_word_boundaries``: a keyword matches only between characters outside this set
_WORD_CHARS = "A-Za-z0-9_"


class RulesError(ValueError):
    """A rule name, preset or value is not valid; the message names the option."""


def read_list_file(path: str | Path, what: str) -> list[str]:
    """The entries of a blocklist file, as the original reads them: one per line, ``#`` lines and
    blank lines skipped, lower-cased (flashtext is case-insensitive; subreddits are lowered)."""
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise RulesError(f"{what} {p}: no such file") from None
    except UnicodeDecodeError as e:
        raise RulesError(f"{what} {p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return [x.strip().lower() for x in lines if x.strip() and not x.startswith("#")]


class WordBlocklist:
    """Whole-word/phrase, case-insensitive matching with flashtext's semantics.

    The original runs ``flashtext.KeywordProcessor().extract_keywords(turn)``: lower-cased text, a
    keyword matches only where the characters just before and after it are not ``[A-Za-z0-9_]``
    (so "dick" hits "in Moby Dick" and "dick's" but not "dickens" or "x_dick"; "kill yourself" needs
    exactly one space). One regex with the same boundaries gives the same yes/no answer
    (property-tested against flashtext in ``tests/dataset/test_dataset_rules.py``).
    """

    def __init__(self, entries: Iterable[str] = ()):
        self.entries = sorted({e.strip().lower() for e in entries if e.strip() and not e.startswith("#")},
                              key=lambda e: (-len(e), e))
        alts = "|".join(re.escape(e) for e in self.entries)
        self._re = re.compile(rf"(?<![{_WORD_CHARS}])(?:{alts})(?![{_WORD_CHARS}])") if alts else None

    @classmethod
    def from_file(cls, path: str | Path) -> WordBlocklist:
        return cls(read_list_file(path, "--words-blocklist"))

    def __bool__(self) -> bool:
        return self._re is not None

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, text: str) -> bool:
        return self._re is not None and self._re.search(text.lower()) is not None


def _data_file(name: str) -> Path:
    return Path(str(resources.files("dialogpt_dataset").joinpath("data", name)))


@functools.lru_cache(maxsize=8)
def load_words(spec: str | None) -> WordBlocklist:
    """``None`` -> empty, :data:`SHIPPED` -> the package's list, else a file path."""
    if not spec:
        return WordBlocklist()
    return WordBlocklist.from_file(_data_file("words.blocklist.txt") if spec == SHIPPED else spec)


@functools.lru_cache(maxsize=8)
def load_subreddits(spec: str | None) -> frozenset[str]:
    """The one subreddit-list loader: ``None`` -> empty, :data:`SHIPPED`, or a file path."""
    if not spec:
        return frozenset()
    path = _data_file("subreddits.blocklist.txt") if spec == SHIPPED else spec
    return frozenset(read_list_file(path, "--subreddits-blocklist"))


@dataclass
class ExtractRules:
    """What the extraction selects. Build one with :meth:`preset`; every field is a CLI option."""

    preset: str = "default"
    #: the project-only rules switched on (names in :data:`SWITCHABLE`)
    enabled: list[str] = field(default_factory=lambda: sorted(SWITCHABLE))
    min_score: int = 1
    min_depth: int = 2
    max_depth: int = 5
    #: the submission title as root turn (``title : ...``); the original's released data had it off
    use_title: bool = True
    use_selftext: bool = False
    #: None: no list; :data:`SHIPPED`: ours; else a file (the original's are effectively empty)
    words_blocklist: str | None = SHIPPED
    subreddits_blocklist: str | None = SHIPPED
    #: share of training-month threads hashed into the test / validation split (test months set
    #: -> no hashed test split); the original has neither
    test_fraction: float = 0.05
    validation_fraction: float = 0.05

    def __post_init__(self):
        self.enabled = sorted(set(self.enabled))
        if self.preset not in PRESETS:
            raise RulesError(f"--preset {self.preset!r}: expected one of {', '.join(PRESETS)}")
        unknown = [r for r in self.enabled if r not in SWITCHABLE]
        if unknown:
            raise RulesError(f"--rules: unknown rule {unknown[0]!r} (switchable: {', '.join(SWITCHABLE)})")
        if not 2 <= self.min_depth <= self.max_depth:
            raise RulesError(f"--min-depth {self.min_depth} / --max-depth {self.max_depth}: need 2 <= min <= max")
        for name in ("test_fraction", "validation_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise RulesError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be in [0, 1)")
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise RulesError("--test-fraction + --validation-fraction must stay below 1 (nothing left to train on)")

    @classmethod
    def from_preset(cls, name: str = "default", size: str | None = None, **overrides) -> ExtractRules:
        """The preset's rules, then ``overrides`` (fields left at None keep the preset's value)."""
        if name == "original":
            base = dict(enabled=[], use_title=False, words_blocklist=None, subreddits_blocklist=None,
                        test_fraction=0.0, validation_fraction=0.0)
        elif name == "default":
            # the dummy sample is ~100 threads: 5% would leave the test split empty
            base = dict(test_fraction=0.2, validation_fraction=0.1) if size == "dummy" else {}
        else:
            raise RulesError(f"--preset {name!r}: expected one of {', '.join(PRESETS)}")
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(preset=name, **base)

    @classmethod
    def from_dict(cls, d: dict) -> ExtractRules:
        return cls(**d)

    def with_switches(self, spec: str | None) -> ExtractRules:
        """Apply ``--rules +bot,-non_ascii`` (a bare name means ``+name``; ``none``/``all`` too)."""
        if not spec:
            return self
        on = set(self.enabled)
        for item in (s.strip() for s in spec.split(",")):
            if item in ("none", "-all"):
                on.clear()
            elif item in ("all", "+all"):
                on = set(SWITCHABLE)
            elif item:
                name = item.lstrip("+-")
                if name not in SWITCHABLE:
                    raise RulesError(f"--rules: unknown rule {name!r} (switchable: {', '.join(SWITCHABLE)})")
                (on.discard if item.startswith("-") else on.add)(name)
        return replace(self, enabled=sorted(on))

    def is_on(self, name: str) -> bool:
        return name in self.enabled

    def to_dict(self) -> dict:
        return asdict(self)

    def with_abs_paths(self) -> ExtractRules:
        """List files as absolute paths (plan.json must mean the same from any working directory)."""
        fix = {k: str(Path(v).resolve()) for k in ("words_blocklist", "subreddits_blocklist")
               if (v := getattr(self, k)) and v != SHIPPED}
        return replace(self, **fix)


def list_label(spec: str | None) -> str:
    """How a blocklist setting is shown (card, CLI): never an absolute local path."""
    if not spec:
        return "none"
    if spec == SHIPPED:
        return "shipped"
    return Path(spec).name


def _list_value(spec: str | None, n: int) -> str:
    return "none" if not spec else f"{list_label(spec)} ({n} entries)"


def settings_rows(rules: ExtractRules) -> list[tuple[str, str, str]]:
    """(setting, value, what the original does) rows for the card and the CLI's rule table."""
    rows = [
        ("preset", rules.preset, "-"),
        ("min_score", str(rules.min_score), "1"),
        ("depth", f"{rules.min_depth}-{rules.max_depth}", "2-5"),
        ("use_title", "on" if rules.use_title else "off", "off"),
        ("use_selftext", "on" if rules.use_selftext else "off", "off"),
        ("words_blocklist", _list_value(rules.words_blocklist, len(load_words(rules.words_blocklist))), "empty"),
        ("subreddits_blocklist", _list_value(rules.subreddits_blocklist, len(load_subreddits(rules.subreddits_blocklist))),
         "empty"),
        ("test_fraction", f"{rules.test_fraction:g}", "0 (no test split in training months)"),
        ("validation_fraction", f"{rules.validation_fraction:g}", "0"),
    ]
    rows += [(f"rule {name}", "on" if rules.is_on(name) else "off", "off (project-only)") for name in SWITCHABLE]
    return rows
