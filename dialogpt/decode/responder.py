"""Responder: DialoGPT decoding from a dialogue history, batched, reranked and filtered.

The original release withheld its decoder (the README points to third-party ones), so users wrote
their own and hit the same bugs: repetition, shrinking replies, histories that grow past the
context window, no MMI. This module is the one decoder the CLI, the server and batch generation
share:

* prompts come only from :func:`dialogpt.chat_format.build_prompt_ids` (whole turns dropped from
  the left, room left for ``max_new_tokens``);
* decoding is ``model.generate`` with a ``GenerationConfig`` built from :class:`GenerationOptions`
  (whose defaults can be saved with the model, see :func:`save_generation_defaults`);
* the repetition penalty only looks at the tokens of the response being written
  (:class:`ResponseRepetitionPenalty`): transformers' own penalty also punishes every token of the
  history, which makes replies avoid the words the user just said;
* many contexts and N candidates per context go through one ``generate`` call, left-padded with an
  attention mask; ``generate`` derives position ids from the mask, so batched greedy decoding gives
  exactly the one-at-a-time result (tested);
* candidates are reranked (:mod:`dialogpt.decode.rerank`) and screened by :mod:`dialogpt.decode.safety`: a
  blocked candidate falls back to the next one in rank order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from dialogpt.chat_format import Turn, TurnLike, as_turns, build_prompt_ids, install_chat_template
from dialogpt.decode.rerank import (
    RERANK_CHOICES,
    DialogRPTReranker,
    LogprobReranker,
    MMIReranker,
    RankerSpec,
    Reranker,
)
from dialogpt.decode.safety import SafetyFilter
from dialogpt.errors import first_line

STRATEGIES = ("greedy", "sample", "beam")
STAT_KEYS = ("contexts", "candidates", "blocked_candidates", "all_blocked", "empty_candidates",
             "truncated_prompts", "unfinished_candidates")

#: Keys under which our own options travel inside ``generation_config.json`` (transformers keeps
#: unknown attributes), so ``save_pretrained``'d defaults round-trip.
_EXTRA_KEYS = {
    "strategy": "dialogpt_strategy",
    "repetition_penalty": "dialogpt_response_repetition_penalty",
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
    num_candidates: int = 1
    """candidates per context; the reranker / safety filter choose among them."""
    max_history_turns: int | None = None
    """keep at most this many most recent turns of the history."""
    max_prompt_tokens: int | None = None
    """token budget of the prompt; always capped at n_positions - max_new_tokens."""

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"--min-new-tokens must be in [0, max_new_tokens], got {self.min_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"--temperature must be > 0 (use --strategy greedy for 0), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"--top-k must be >= 0, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"--repetition-penalty must be > 0, got {self.repetition_penalty}")
        if self.num_candidates < 1:
            raise ValueError(f"--num-candidates must be >= 1, got {self.num_candidates}")
        if self.strategy == "greedy" and self.num_candidates > 1:
            raise ValueError("--strategy greedy gives one candidate; use sample or beam for --num-candidates > 1")
        if self.strategy == "beam" and self.num_beams < max(2, self.num_candidates):
            raise ValueError(f"--num-beams ({self.num_beams}) must be >= 2 and >= --num-candidates "
                             f"({self.num_candidates})")
        if self.max_history_turns is not None and self.max_history_turns < 1:
            raise ValueError(f"--max-history-turns must be >= 1, got {self.max_history_turns}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise ValueError(f"--max-prompt-tokens must be >= 1, got {self.max_prompt_tokens}")

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
        """The ``GenerationConfig`` handed to ``model.generate`` (our repetition penalty excluded:
        it runs as :class:`ResponseRepetitionPenalty`)."""
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
        kw: dict = {}
        strategy = getattr(gc, _EXTRA_KEYS["strategy"], None)
        if strategy is None:
            if getattr(gc, "do_sample", False):
                strategy = "sample"
            elif (getattr(gc, "num_beams", 1) or 1) > 1:
                strategy = "beam"
            else:
                strategy = "greedy"
        kw["strategy"] = strategy
        for name in ("max_new_tokens", "min_new_tokens", "temperature", "top_k", "top_p", "length_penalty",
                     "no_repeat_ngram_size"):
            v = getattr(gc, name, None)
            if v is not None:
                kw[name] = v
        if (getattr(gc, "num_beams", None) or 1) > 1:
            kw["num_beams"] = gc.num_beams
        if strategy != "greedy" and (getattr(gc, "num_return_sequences", None) or 1) > 1:
            kw["num_candidates"] = gc.num_return_sequences
        # A plain HF repetition_penalty is honoured, but over the response only.
        rp = getattr(gc, _EXTRA_KEYS["repetition_penalty"], None) or getattr(gc, "repetition_penalty", None)
        if rp is not None:
            kw["repetition_penalty"] = rp
        for ours in ("max_history_turns", "max_prompt_tokens"):
            v = getattr(gc, _EXTRA_KEYS[ours], None)
            if v is not None:
                kw[ours] = v
        kw.setdefault("max_new_tokens", d.max_new_tokens)
        if kw.get("min_new_tokens") is None or kw["min_new_tokens"] > kw["max_new_tokens"]:
            kw["min_new_tokens"] = min(d.min_new_tokens, kw["max_new_tokens"])
        if kw.get("top_k") is None:
            kw["top_k"] = d.top_k
        return cls(**kw)


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


def resolve_device(device: str | None) -> torch.device:
    """``--device`` -> a usable ``torch.device`` (default: cuda when available), or a ValueError
    naming the flag (an unknown name, or CUDA asked for on a machine without it)."""
    try:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device name; use cpu, cuda, cuda:N, mps, ...") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available here (torch {torch.__version__})")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


class ResponseRepetitionPenalty(LogitsProcessor):
    """CTRL-style repetition penalty over the generated tokens only.

    ``transformers.RepetitionPenaltyLogitsProcessor`` penalises every id in ``input_ids``, i.e. the
    whole history too. Prompts are left-padded to one width, so the response starts at the same
    column in every row (beam search included).
    """

    def __init__(self, penalty: float, prompt_length: int):
        if penalty <= 0:
            raise ValueError(f"repetition penalty must be > 0, got {penalty}")
        self.penalty = float(penalty)
        self.prompt_length = int(prompt_length)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length:]
        if generated.shape[1] == 0 or self.penalty == 1.0:
            return scores
        picked = torch.gather(scores, 1, generated)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, generated, picked)


@dataclass
class Candidate:
    text: str
    token_ids: list[int]
    #: the response ended with EOS (rather than running into max_new_tokens)
    finished: bool
    score: float | None = None
    #: why the safety filter blocked it (None = shown)
    blocked: str | None = None


@dataclass
class Reply:
    """The chosen reply for one context, with every candidate in rank order."""

    text: str
    candidates: list[Candidate]
    chosen: int | None
    prompt_tokens: int

    @property
    def all_blocked(self) -> bool:
        return self.chosen is None


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``input_ids`` and ``attention_mask`` (decoder-only models generate at the right)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        if p:
            ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[i, width - len(p):] = 1
    return ids, mask


class Responder:
    """Decode replies for dialogue histories (see the module docstring for what it guarantees)."""

    def __init__(
        self,
        model,
        tokenizer,
        options: GenerationOptions | None = None,
        reranker: Reranker | None = None,
        safety: SafetyFilter | None = None,
        batch_size: int = 16,
    ):
        if tokenizer.eos_token_id is None or tokenizer.pad_token is None or not getattr(tokenizer, "chat_template", None):
            install_chat_template(tokenizer)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.options = options or GenerationOptions.from_generation_config(getattr(model, "generation_config", None))
        self.reranker = reranker
        self.safety = safety
        if batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        #: every key present from the start: the server's /health copies this while the worker
        #: updates it, and a key appearing mid-copy would break the copy.
        self.stats: Counter[str] = Counter(dict.fromkeys(STAT_KEYS, 0))

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        reverse_model: str | None = None,
        rankers: Sequence[RankerSpec] = (),
        rerank: str = "auto",
        options: GenerationOptions | None = None,
        safety: SafetyFilter | None = None,
        device: str | None = None,
        dtype: str | None = None,
        length_normalize: bool = False,
        batch_size: int = 16,
    ) -> Responder:
        """Load a model dir or hub id (e.g. ``microsoft/DialoGPT-medium``) and its helpers.

        ``rerank="auto"`` picks ``mmi`` when a reverse model is given, ``dialogrpt`` when rankers
        are, else none.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if rerank == "auto":
            rerank = "mmi" if reverse_model else ("dialogrpt" if rankers else "none")
        if rerank not in RERANK_CHOICES:
            raise ValueError(f"--rerank must be one of {RERANK_CHOICES}, got {rerank!r}")
        if rerank == "mmi" and not reverse_model:
            raise ValueError("--rerank mmi needs --reverse-model")
        if rerank == "dialogrpt" and not rankers:
            raise ValueError("--rerank dialogrpt needs --ranker")
        dev = resolve_device(device)
        kw = {"dtype": getattr(torch, dtype)} if dtype else {}
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kw).to(dev).eval()
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        install_chat_template(tokenizer)
        opts = options or GenerationOptions.from_generation_config(model.generation_config)
        reranker: Reranker | None = None
        if rerank == "logprob":
            reranker = LogprobReranker(model, tokenizer, length_normalize=length_normalize, batch_size=batch_size)
        elif rerank == "mmi":
            rev = AutoModelForCausalLM.from_pretrained(reverse_model, **kw).to(dev).eval()
            reranker = MMIReranker(rev, tokenizer, length_normalize=length_normalize, batch_size=batch_size)
        elif rerank == "dialogrpt":
            reranker = DialogRPTReranker.from_specs(rankers, fallback_tokenizer=tokenizer, device=dev,
                                                    batch_size=batch_size)
        return cls(model, tokenizer, opts, reranker, safety, batch_size)

    # ------------------------------------------------------------------ decoding
    @property
    def max_positions(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or 1024)

    def prompt_budget(self, options: GenerationOptions) -> int:
        """Tokens the prompt may use: the context window minus room for the response."""
        budget = self.max_positions - options.max_new_tokens
        if budget < 1:
            raise ValueError(f"--max-new-tokens {options.max_new_tokens} leaves no room for a prompt "
                             f"(the model has {self.max_positions} positions)")
        if options.max_prompt_tokens is not None:
            budget = min(budget, options.max_prompt_tokens)
        return budget

    def prompt_ids(self, history: Iterable[TurnLike], options: GenerationOptions | None = None) -> list[int]:
        """The prompt for ``history``: last ``max_history_turns`` turns, within the token budget."""
        opts = options or self.options
        ts = as_turns(history)
        if opts.max_history_turns is not None:
            ts = ts[-opts.max_history_turns:]
        return build_prompt_ids(self.tokenizer, ts, self.prompt_budget(opts))

    @torch.no_grad()
    def generate_candidates(
        self, histories: Sequence[Iterable[TurnLike]], options: GenerationOptions | None = None,
    ) -> tuple[list[list[Candidate]], list[int]]:
        """Raw candidates (generation order) for each history, plus each prompt's length."""
        opts = options or self.options
        eos = int(self.tokenizer.eos_token_id)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        histories = [as_turns(h) for h in histories]
        prompts = [self.prompt_ids(h, opts) for h in histories]
        for h, p in zip(histories, prompts):
            if len(p) < len(build_prompt_ids(self.tokenizer, h)):
                self.stats["truncated_prompts"] += 1
        gc = opts.to_generation_config(eos, pad)
        device = next(self.model.parameters()).device
        out: list[list[Candidate]] = [[] for _ in prompts]
        # Similar lengths share a batch (less padding); results do not depend on the grouping.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            ids, mask = left_pad([prompts[i] for i in idx], pad)
            processors = LogitsProcessorList()
            if opts.repetition_penalty != 1.0:
                processors.append(ResponseRepetitionPenalty(opts.repetition_penalty, ids.shape[1]))
            seqs = self.model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=gc,
                logits_processor=processors,
            )
            new = seqs[:, ids.shape[1]:].tolist()
            for row, toks in enumerate(new):
                i = idx[row // opts.num_candidates]
                finished = eos in toks
                toks = toks[: toks.index(eos)] if finished else toks
                text = self.tokenizer.decode(toks, skip_special_tokens=True).strip()
                out[i].append(Candidate(text=" ".join(text.split()), token_ids=toks, finished=finished))
        return out, [len(p) for p in prompts]

    def respond_batch(
        self,
        histories: Sequence[Iterable[TurnLike]],
        options: GenerationOptions | None = None,
        progress: bool = False,
        **overrides,
    ) -> list[Reply]:
        """Replies for many histories: generate, rerank, filter (in chunks of ``batch_size``)."""
        opts = (options or self.options).replace(**overrides) if overrides else (options or self.options)
        hist = [as_turns(h) for h in histories]
        replies: list[Reply] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(hist), desc="generating", unit="ctx")
        # Chunks of batch_size contexts keep memory flat and let the progress bar move.
        for start in range(0, len(hist), self.batch_size):
            chunk = hist[start:start + self.batch_size]
            cands, plens = self.generate_candidates(chunk, opts)
            replies.extend(self._choose(chunk, cands, plens, opts))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return replies

    def respond(self, history: Iterable[TurnLike], options: GenerationOptions | None = None, **overrides) -> Reply:
        """The reply to one history."""
        return self.respond_batch([history], options, **overrides)[0]

    def _choose(self, histories: list[list[Turn]], cands: list[list[Candidate]], plens: list[int],
                opts: GenerationOptions) -> list[Reply]:
        if self.reranker is not None and any(len(c) > 1 for c in cands):
            # Rerankers see the context the candidates were generated from: the same last
            # max_history_turns turns, and for log p(candidate | prompt) the same token budget.
            if opts.max_history_turns is not None:
                histories = [h[-opts.max_history_turns:] for h in histories]
            reranker = self.reranker
            if isinstance(reranker, LogprobReranker):
                budget = self.prompt_budget(opts)
                if reranker.max_prompt_tokens is not None:
                    budget = min(budget, reranker.max_prompt_tokens)
                reranker = dataclasses.replace(reranker, max_prompt_tokens=budget)
            scores = reranker.score(histories, [[c.text for c in cs] for cs in cands])
            for cs, ss in zip(cands, scores):
                for c, s in zip(cs, ss):
                    c.score = float(s)
        replies = []
        for cs, plen in zip(cands, plens):
            # Stable sort: ties (and no reranker) keep generation order, i.e. beam / sample order.
            ranked = sorted(cs, key=lambda c: -(c.score if c.score is not None else 0.0))
            # Every candidate is checked, not only up to the first clean one: the server may
            # show several (``n``), and the counters should describe everything generated.
            if self.safety is not None:
                for c in ranked:
                    c.blocked = self.safety.check(c.text)
                    self.stats["blocked_candidates"] += c.blocked is not None
            # An empty reply (e.g. only whitespace was generated) is shown only when nothing else is.
            shown = [k for k, c in enumerate(ranked) if c.blocked is None]
            chosen = next((k for k in shown if ranked[k].text), shown[0] if shown else None)
            self.stats["empty_candidates"] += sum(not c.text for c in cs)
            self.stats["contexts"] += 1
            self.stats["candidates"] += len(cs)
            self.stats["unfinished_candidates"] += sum(not c.finished for c in cs)
            if chosen is None:
                self.stats["all_blocked"] += 1
                text = self.safety.fallback if self.safety is not None else ""
            else:
                text = ranked[chosen].text
            replies.append(Reply(text=text, candidates=ranked, chosen=chosen, prompt_tokens=plen))
        return replies


__all__ = [
    "Candidate", "GenerationOptions", "Reply", "Responder", "ResponseRepetitionPenalty", "STRATEGIES",
    "left_pad", "save_generation_defaults",
]
