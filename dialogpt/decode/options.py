"""Decoding options: one dataclass, validated once, mapped to and from ``GenerationConfig``.

The CLI flags, ``--decoding-config`` files, the server's request fields and a model's saved
``generation_config.json`` all end up as :class:`GenerationOptions`; the only way they reach
``model.generate`` is :meth:`GenerationOptions.to_generation_config`, so every entry point decodes
the same way. Fields transformers has no name for (the strategy, the response-only repetition
penalty, history limits) travel inside ``generation_config.json`` under ``dialogpt_*`` keys
(transformers keeps unknown attributes), so saved defaults round-trip.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from transformers import GenerationConfig

from dialogpt.errors import first_line

STRATEGIES = ("greedy", "sample", "beam")

#: Keys under which our own options travel inside ``generation_config.json``.
_EXTRA_KEYS = {
    "strategy": "dialogpt_strategy",
    "repetition_penalty": "dialogpt_response_repetition_penalty",
    "frequency_penalty": "dialogpt_frequency_penalty",
    "presence_penalty": "dialogpt_presence_penalty",
    "max_history_turns": "dialogpt_max_history_turns",
    "max_prompt_tokens": "dialogpt_max_prompt_tokens",
}


@dataclass
class GenerationOptions:
    """How to decode. Defaults follow what DialoGPT users settled on: short greedy replies."""

    strategy: str = "greedy"
    """greedy | sample | beam"""
    max_new_tokens: int = 40
    min_new_tokens: int = 1
    """>= 1 forbids the empty reply (EOS as the first token)."""
    temperature: float = 1.0
    top_k: int = 50
    """0 = no top-k filtering (50 is transformers' default for sampling)."""
    top_p: float = 1.0
    num_beams: int = 4
    """used by strategy=beam only."""
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    """> 1 penalises tokens already in the *response* (never the history)."""
    frequency_penalty: float = 0.0
    """OpenAI's: logit -= frequency_penalty * (times the token occurs in the response so far)."""
    presence_penalty: float = 0.0
    """OpenAI's: logit -= presence_penalty if the token occurs in the response so far."""
    num_candidates: int = 1
    """candidates per context; the reranker / safety filter choose among them."""
    max_history_turns: int | None = None
    """keep at most this many most recent turns of the history."""
    max_prompt_tokens: int | None = None
    """token budget of the prompt; always capped at n_positions - max_new_tokens."""

    def __post_init__(self):
        for problem in _problems(self):
            raise ValueError(problem)

    def replace(self, **overrides) -> GenerationOptions:
        """A copy with ``overrides`` applied (``None`` values are ignored), validated again."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @staticmethod
    def read_overrides(path: str | Path) -> dict:
        """Fields from a YAML/JSON file (``--decoding-config``), checked against the dataclass."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"--decoding-config {p}: no such file")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            where = getattr(e, "problem_mark", None)
            at = f":{where.line + 1}" if where is not None else ""
            problem = getattr(e, "problem", None) or first_line(e)
            raise ValueError(f"--decoding-config {p}{at}: not valid YAML/JSON ({problem})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a mapping of decoding options, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(GenerationOptions)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{p}: unknown decoding option(s) {unknown}; known: {sorted(known)}")
        return data

    def to_generation_config(self, eos_token_id: int, pad_token_id: int | None = None) -> GenerationConfig:
        """The ``GenerationConfig`` handed to ``model.generate``. Every field generate reads is set,
        so a model's saved defaults never leak in; the repetition, frequency and presence penalties
        are excluded: they run as logits processors over the response only
        (:func:`dialogpt.decode.processors.response_processors`)."""
        kw: dict = dict(
            max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
            num_return_sequences=self.num_candidates, no_repeat_ngram_size=self.no_repeat_ngram_size,
            eos_token_id=eos_token_id, pad_token_id=eos_token_id if pad_token_id is None else pad_token_id,
            repetition_penalty=1.0,
        )
        if self.strategy == "sample":
            kw.update(do_sample=True, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, num_beams=1)
        elif self.strategy == "beam":
            kw.update(do_sample=False, num_beams=self.num_beams, length_penalty=self.length_penalty,
                      early_stopping=True)
        else:
            kw.update(do_sample=False, num_beams=1)
        return GenerationConfig(**kw)

    def to_saved_config(self, eos_token_id: int) -> GenerationConfig:
        """A ``GenerationConfig`` that also carries our own fields, for ``save_pretrained``."""
        gc = self.to_generation_config(eos_token_id)
        # Keep the sampling values even for greedy defaults, so a user switching strategy gets them.
        gc.temperature, gc.top_k, gc.top_p = self.temperature, self.top_k, self.top_p
        gc.num_beams, gc.length_penalty = (self.num_beams if self.strategy == "beam" else 1), self.length_penalty
        gc.num_return_sequences = self.num_candidates
        for ours, key in _EXTRA_KEYS.items():
            setattr(gc, key, getattr(self, ours))
        return gc

    @classmethod
    def from_generation_config(cls, gc: GenerationConfig | None) -> GenerationOptions:
        """Options from a model's ``generation_config`` (ours if saved by us, else a plain HF one)."""
        if gc is None:
            return cls()
        d = cls()
        kw: dict = {"strategy": getattr(gc, _EXTRA_KEYS["strategy"], None) or _hf_strategy(gc)}
        for name in ("max_new_tokens", "min_new_tokens", "temperature", "top_k", "top_p", "length_penalty",
                     "no_repeat_ngram_size"):
            v = getattr(gc, name, None)
            if v is not None:
                kw[name] = v
        if (getattr(gc, "num_beams", None) or 1) > 1:
            kw["num_beams"] = gc.num_beams
        if kw["strategy"] != "greedy" and (getattr(gc, "num_return_sequences", None) or 1) > 1:
            kw["num_candidates"] = gc.num_return_sequences
        # A plain HF repetition_penalty is honoured, but over the response only.
        rp = getattr(gc, _EXTRA_KEYS["repetition_penalty"], None) or getattr(gc, "repetition_penalty", None)
        if rp is not None:
            kw["repetition_penalty"] = rp
        for ours in ("max_history_turns", "max_prompt_tokens", "frequency_penalty", "presence_penalty"):
            v = getattr(gc, _EXTRA_KEYS[ours], None)
            if v is not None:
                kw[ours] = v
        kw.setdefault("max_new_tokens", d.max_new_tokens)
        if kw.get("min_new_tokens") is None or kw["min_new_tokens"] > kw["max_new_tokens"]:
            kw["min_new_tokens"] = min(d.min_new_tokens, kw["max_new_tokens"])
        if kw.get("top_k") is None:
            kw["top_k"] = d.top_k
        return cls(**kw)


def _hf_strategy(gc: GenerationConfig) -> str:
    if getattr(gc, "do_sample", False):
        return "sample"
    return "beam" if (getattr(gc, "num_beams", 1) or 1) > 1 else "greedy"


def _problems(o: GenerationOptions) -> list[str]:
    """Every invalid field, worded with the CLI flag (the server rewords them for its fields)."""
    checks = [
        (o.strategy in STRATEGIES, f"--strategy must be one of {STRATEGIES}, got {o.strategy!r}"),
        (o.max_new_tokens >= 1, f"--max-new-tokens must be >= 1, got {o.max_new_tokens}"),
        (0 <= o.min_new_tokens <= o.max_new_tokens,
         f"--min-new-tokens must be in [0, max_new_tokens], got {o.min_new_tokens}"),
        (o.temperature > 0, f"--temperature must be > 0 (use --strategy greedy for 0), got {o.temperature}"),
        (0 < o.top_p <= 1, f"--top-p must be in (0, 1], got {o.top_p}"),
        (o.top_k >= 0, f"--top-k must be >= 0, got {o.top_k}"),
        (o.repetition_penalty > 0, f"--repetition-penalty must be > 0, got {o.repetition_penalty}"),
        (-2 <= o.frequency_penalty <= 2, f"--frequency-penalty must be in [-2, 2], got {o.frequency_penalty}"),
        (-2 <= o.presence_penalty <= 2, f"--presence-penalty must be in [-2, 2], got {o.presence_penalty}"),
        (o.num_candidates >= 1, f"--num-candidates must be >= 1, got {o.num_candidates}"),
        (not (o.strategy == "greedy" and o.num_candidates > 1),
         "--strategy greedy gives one candidate; use sample or beam for --num-candidates > 1"),
        (not (o.strategy == "beam" and o.num_beams < max(2, o.num_candidates)),
         f"--num-beams ({o.num_beams}) must be >= 2 and >= --num-candidates ({o.num_candidates})"),
        (o.max_history_turns is None or o.max_history_turns >= 1,
         f"--max-history-turns must be >= 1, got {o.max_history_turns}"),
        (o.max_prompt_tokens is None or o.max_prompt_tokens >= 1,
         f"--max-prompt-tokens must be >= 1, got {o.max_prompt_tokens}"),
    ]
    return [msg for ok, msg in checks if not ok]


def save_generation_defaults(model_dir: str | Path, options: GenerationOptions, eos_token_id: int) -> Path:
    """Write ``generation_config.json`` next to a model so every loader gets these defaults
    (``dialogpt-chat MODEL ... --save-decoding-defaults``). The token ids already saved there
    (bos, pad) are kept."""
    gc = options.to_saved_config(eos_token_id)
    path = Path(model_dir) / "generation_config.json"
    if path.is_file():
        old = GenerationConfig.from_pretrained(str(model_dir))
        for name in ("bos_token_id", "pad_token_id"):
            if getattr(old, name, None) is not None:
                setattr(gc, name, getattr(old, name))
    gc.save_pretrained(str(model_dir))
    return path


__all__ = ["STRATEGIES", "GenerationOptions", "save_generation_defaults"]
