"""Responder: DialoGPT decoding from a dialogue history, batched, reranked and filtered.

The original release withheld its decoder (the README points to third-party ones), so users wrote
their own and hit the same bugs: repetition, shrinking replies, histories that grow past the
context window, no MMI. This module is the one decoder the CLI, the server and batch generation
share:

* prompts come only from :func:`dialogpt.chat_format.build_prompt_ids` (whole turns dropped from
  the left, room left for ``max_new_tokens``);
* decoding is ``model.generate`` with a ``GenerationConfig`` built from
  :class:`~dialogpt.decode.options.GenerationOptions` (whose defaults can be saved with the model);
* the repetition / frequency / presence penalties only look at the tokens of the response being
  written (:mod:`dialogpt.decode.processors`): transformers' default penalty also punishes every
  token of the history, which makes replies avoid the words the user just said;
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

import torch

from dialogpt.chat_format import Turn, TurnLike, as_turns, fit_prompt_ids, install_chat_template
from dialogpt.decode.options import GenerationOptions
from dialogpt.decode.processors import response_processors
from dialogpt.decode.rerank import (
    RERANK_CHOICES,
    DialogRPTReranker,
    LogprobReranker,
    MMIReranker,
    RankerSpec,
    Reranker,
)
from dialogpt.decode.safety import SafetyFilter

STAT_KEYS = ("contexts", "candidates", "blocked_candidates", "all_blocked", "empty_candidates",
             "truncated_prompts", "unfinished_candidates")


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

    def max_context_turns(self, options: GenerationOptions | None = None) -> int:
        """The most trailing turns of a history that can reach the model: ``max_history_turns``, and
        never more than the context window has positions, since every turn costs at least one token
        (its EOS) in every encoding (prompt, MMI's reverse input, DialogRPT's input; DialoGPT's
        reverse and ranker models share GPT-2's window). Older turns can be dropped unread."""
        opts = options or self.options
        return min(self.max_positions, opts.max_history_turns or self.max_positions)

    def prompt(self, history: Iterable[TurnLike], options: GenerationOptions | None = None) -> tuple[list[int], bool]:
        """The prompt for ``history`` (last ``max_history_turns`` turns, within the token budget) and
        whether it lost turns or tokens to fit."""
        opts = options or self.options
        ts = as_turns(history)
        cut = opts.max_history_turns is not None and len(ts) > opts.max_history_turns
        if cut:
            ts = ts[-opts.max_history_turns:]
        ids, truncated = fit_prompt_ids(self.tokenizer, ts, self.prompt_budget(opts))
        return ids, truncated or cut

    def prompt_ids(self, history: Iterable[TurnLike], options: GenerationOptions | None = None) -> list[int]:
        """The prompt for ``history``: last ``max_history_turns`` turns, within the token budget."""
        return self.prompt(history, options)[0]

    @torch.no_grad()
    def generate_candidates(
        self, histories: Sequence[Iterable[TurnLike]], options: GenerationOptions | None = None,
    ) -> tuple[list[list[Candidate]], list[int]]:
        """Raw candidates (generation order) for each history, plus each prompt's length."""
        opts = options or self.options
        eos = int(self.tokenizer.eos_token_id)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        histories = [as_turns(h) for h in histories]
        fitted = [self.prompt(h, opts) for h in histories]
        prompts = [ids for ids, _ in fitted]
        self.stats["truncated_prompts"] += sum(truncated for _, truncated in fitted)
        gc = opts.to_generation_config(eos, pad)
        device = next(self.model.parameters()).device
        out: list[list[Candidate]] = [[] for _ in prompts]
        # Similar lengths share a batch (less padding); results do not depend on the grouping.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            ids, mask = left_pad([prompts[i] for i in idx], pad)
            processors = response_processors(opts, ids.shape[1])
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
    "Candidate", "GenerationOptions", "Reply", "Responder", "left_pad", "resolve_device",
]
