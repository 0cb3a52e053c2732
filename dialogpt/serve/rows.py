"""The running rows of continuous batching: joining, decoding, choosing each next token, finishing.
Used by :class:`dialogpt.serve.batching.Scheduler` on its model thread only.

Why it is built this way: at the 117M shape the model's forward is ~95% of the server's work
(py-spy, ``bench/serve_profile.py``; the split before and after is in ``bench/serve.117M.results.json``),
and before this module a third of it was spent on padding, re-padding and copying. So the loop gives
the model no work it does not need, and reads its weights as few times as it can:

* **one forward pass per step** (:meth:`~dialogpt.serve.kv_cache.SlotCache.forward`): the next token of
  every running row and, packed after them without padding, the prompts of joining rows, at most
  ``prefill_tokens`` prompt tokens a pass (at least one prompt). A burst of new requests therefore
  delays the running rows by one bounded pass at a time, never by the whole burst, and the running
  rows' tokens ride along with the prefill instead of costing a pass of their own. Each prompt attends
  only to itself, and only the last position of each prompt goes through the output layer (what
  ``generate`` does with ``logits_to_keep=1``);
* keys and values live in preallocated **slots with a length per row**
  (:class:`~dialogpt.serve.kv_cache.SlotCache`): a step writes one column per row and attends over
  views; a row leaving moves one row; nothing is re-padded or concatenated;
* the next tokens of all rows are chosen with **batched tensor ops**: one argmax, the EOS mask of
  ``min_new_tokens``, and the penalties and sampling warpers applied by transformers' own processors
  to all rows sharing their values at once (:func:`dialogpt.decode.processors.process_rows`); only
  seeded rows draw one by one, each from its own generator, and ``no_repeat_ngram_size`` (which looks
  at the prompt too) runs per row;
* replies are decoded to text only for streamed requests and those with stop strings
  (:class:`~dialogpt.serve.streaming.TextStream`), as before.

On CPU the linear layers run on oneDNN (:mod:`dialogpt.serve.cpu_matmul`), which is most of what is
left. Each row still decodes what the Responder decodes for it alone (same prompt ids, positions and
processors; tested with rows joining and leaving mid-batch): greedy replies are the same tokens.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessorList, NoRepeatNGramLogitsProcessor

from dialogpt.decode.options import GenerationOptions
from dialogpt.decode.processors import process_rows
from dialogpt.serve.kv_cache import SlotCache
from dialogpt.serve.streaming import TextStream


@dataclass
class Result:
    text: str
    finish_reason: str
    completion_tokens: int
    prompt_tokens: int


@dataclass
class Row:
    job: object
    """the scheduler's Job: ``request``, ``emit(kind, payload)``, ``cancelled``."""
    prompt: list[int]
    options: GenerationOptions
    ngram: LogitsProcessorList | None
    generator: torch.Generator | None
    text: TextStream
    generated: list[int] = field(default_factory=list)


class RowBatch:
    """Rows waiting to join (``joining``) and running (``rows``, row i in KV slot i)."""

    def __init__(self, responder, max_rows: int, prefill_tokens: int, count: Callable[..., None]):
        self.responder, self.max_rows, self.prefill_tokens, self.count = responder, max_rows, prefill_tokens, count
        self.model = responder.model
        self.eos = int(responder.tokenizer.eos_token_id)
        self.cache = SlotCache(self.model.config.num_hidden_layers, max_rows, responder.max_positions)
        self.rows: list[Row] = []
        self.joining: deque[Row] = deque()

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.joining)

    def new_row(self, job) -> Row:
        """A row for ``job`` (raises on a request it cannot decode)."""
        r, opts, req = self.responder, job.request.options, job.request
        # the app builds the prompt in a worker thread (dialogpt.serve.prepare): none of it here, then
        prompt, truncated = req.prepared or r.prompt(req.turns, opts)
        r.stats["truncated_prompts"] += truncated
        ngram = None
        if opts.no_repeat_ngram_size > 0:
            ngram = LogitsProcessorList([NoRepeatNGramLogitsProcessor(opts.no_repeat_ngram_size)])
        gen = None
        if req.seed is not None and opts.strategy == "sample":
            gen = torch.Generator().manual_seed(req.seed % (2**63))
        text = TextStream(r.tokenizer, req.stop, r.safety, streaming=req.stream)
        return Row(job, prompt, opts, ngram, gen, text)

    def advance(self) -> None:
        """One forward pass: the next token of every running row and, packed after them, the prompts of
        joining rows (at most ``prefill_tokens`` tokens of them, at least one prompt)."""
        chunk, tokens = [], 0
        if self.joining:
            self.cache.reserve(self.size, max(len(r.prompt) + r.options.max_new_tokens for r in self.joining))
        while self.joining and (not chunk or tokens + len(self.joining[0].prompt) <= self.prefill_tokens):
            row = self.joining.popleft()
            if not row.job.cancelled:
                chunk.append(row)
                tokens += len(row.prompt)
        if chunk:
            self._join(chunk)
        elif self.rows:
            self._step()

    def _join(self, chunk: list[Row]) -> None:
        """A pass with prompts joining (the running rows decode in it too)."""
        if self.rows:
            self.count("joined_running_batch", len(chunk))
        self._pass(chunk)

    def _step(self) -> None:
        """A pass of the running rows only."""
        self._pass([])

    def _pass(self, chunk: list[Row]) -> None:
        logits = self.cache.forward(self.model, [r.generated[-1] for r in self.rows], [r.prompt for r in chunk],
                                    [len(r.prompt) + r.options.max_new_tokens for r in chunk])
        if self.rows:
            self.count("steps")
        self.rows.extend(chunk)
        self.count("max_rows", len(self.rows), peak=True)
        self._advance(logits)

    def reset(self) -> list:
        """Forget every row (after a failed step); returns their jobs."""
        jobs = [r.job for r in self.rows] + [r.job for r in self.joining]
        self.rows, self.joining = [], deque()
        self.cache = SlotCache(self.model.config.num_hidden_layers, self.max_rows, self.responder.max_positions)
        return jobs

    # ------------------------------------------------------------------ choosing tokens
    def _advance(self, logits: torch.Tensor) -> None:
        """Pick every row's next token (one line of ``logits`` each), feed it to them, and drop the rows
        that finished or whose client left."""
        rows = self.rows
        logits = logits.float()
        early = [i for i, r in enumerate(rows) if len(r.generated) < r.options.min_new_tokens]
        if early:  # generate's MinNewTokensLengthLogitsProcessor, first as there
            logits[early, self.eos] = -float("inf")
        for i, r in enumerate(rows):
            if r.ngram is not None:
                ids = torch.tensor([r.prompt + r.generated], device=logits.device)
                logits[i:i + 1] = r.ngram(ids, logits[i:i + 1])
        logits = process_rows(logits, [r.generated for r in rows], [r.options for r in rows])
        picks = logits.argmax(-1).tolist()
        sample = [i for i, r in enumerate(rows) if r.options.strategy == "sample"]
        if sample:
            for i, tok in zip(sample, self._sample(logits, [rows[i] for i in sample], sample)):
                picks[i] = tok
        finished = [i for i, r in enumerate(rows) if r.job.cancelled or self._feed(r, picks[i])]
        if finished:
            order = self.cache.drop(finished)
            self.rows = [self.rows[k] for k in order]

    @staticmethod
    def _sample(logits: torch.Tensor, rows: list[Row], idx: list[int]) -> list[int]:
        """Draws for sampling rows: seeded ones from their own generator (one by one, on the CPU where
        the generator lives), the others in one draw from torch's global generator."""
        probs = torch.softmax(logits[idx], -1)
        out = [0] * len(rows)
        free = [j for j, r in enumerate(rows) if r.generator is None]
        if free:
            for j, tok in zip(free, torch.multinomial(probs[free], 1)[:, 0].tolist()):
                out[j] = tok
        for j, r in enumerate(rows):
            if r.generator is not None:
                out[j] = int(torch.multinomial(probs[j:j + 1].cpu(), 1, generator=r.generator))
        return out

    def _feed(self, row: Row, tok: int) -> bool:
        """Add ``tok`` to ``row``; True when the row is done (and has reported so)."""
        if tok != self.eos:
            row.generated.append(tok)
        finish = "stop" if tok == self.eos else ("length" if len(row.generated) >= row.options.max_new_tokens else None)
        reason = row.text.update(row.generated, finish)
        for delta in row.text.take_deltas():
            row.job.emit("delta", delta)
        if reason is None:
            return False
        stats = self.responder.stats
        stats["contexts"] += 1
        stats["candidates"] += 1
        stats["unfinished_candidates"] += reason == "length"
        stats["empty_candidates"] += not row.text.text
        stats["blocked_candidates"] += reason == "content_filter"
        stats["all_blocked"] += reason == "content_filter"
        self.count("completed")
        row.job.emit("done", Result(row.text.text, reason, len(row.generated) + int(tok == self.eos), len(row.prompt)))
        return True
