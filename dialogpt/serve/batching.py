"""Continuous batching: one model thread, requests join the running batch between decoding steps.

Why our own scheduler: transformers' ``ContinuousBatchingManager`` needs paged attention kernels and
gives no hook for DialoGPT's response-only penalties, per-request seeds or a safety check between
tokens; a step loop over GPT-2's KV cache is short and does all three.

How it works (all model work on one thread, so the tokenizer and model are never shared):

* a request with one candidate and no beam search is a *row*: its prompt is prefilled (new rows
  together, left-padded), its KV cache is padded on the left to the running batch's width and
  concatenated to it, and from then on every step decodes one token for every row at once.
  Each row has its own attention mask, position ids, logits processors, seed and stop rules; a
  finished (or disconnected) row leaves at once and its slot is taken by the next waiting request;
* a request asking for several candidates (``n > 1``, beam search, reranking with MMI/DialogRPT)
  is the *rerank mode*: it goes through ``Responder.respond_batch`` as a whole, batched with
  waiting requests of the same options, and its reply streams after choosing;
* the waiting line is bounded (``max_queue``): a full line is :class:`Busy` (the app's 503).

Rows report through ``emit(kind, payload)``: ``"delta"`` (text, streamed requests only), ``"done"``
(:class:`Result`), ``"reply"`` (a rerank-mode ``Reply``) or ``"error"``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import (
    DynamicCache,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from dialogpt.decode.processors import response_processors
from dialogpt.decode.responder import left_pad
from dialogpt.serve import kv_cache
from dialogpt.serve.schemas import GenRequest
from dialogpt.serve.streaming import TextStream

logger = logging.getLogger("dialogpt.serve.batching")

Emit = Callable[[str, object], None]


class Busy(Exception):
    """The waiting line is full."""


@dataclass
class Result:
    text: str
    finish_reason: str
    completion_tokens: int
    prompt_tokens: int


@dataclass
class Job:
    request: GenRequest | None
    emit: Emit
    cancelled: bool = False
    call: Callable[[], object] | None = None
    """set for :meth:`Scheduler.call` jobs (no request)."""

    @property
    def rerank_mode(self) -> bool:
        o = self.request.options
        return o.num_candidates > 1 or o.strategy == "beam"


@dataclass
class _Row:
    job: Job
    prompt: list[int]
    processors: LogitsProcessorList
    sample: bool
    generator: torch.Generator | None
    text: TextStream
    generated: list[int] = field(default_factory=list)


class Scheduler:
    """The model thread and its waiting line (see the module docstring)."""

    def __init__(self, responder, max_batch: int = 16, max_queue: int = 128):
        self.responder, self.max_batch, self.max_queue = responder, max_batch, max_queue
        self.waiting: deque[Job] = deque()
        self.cond = threading.Condition()
        self.rows: list[_Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None
        self.counters = {"requests": 0, "rejected_busy": 0, "completed": 0, "failed": 0, "batches": 0,
                         "steps": 0, "joined_running_batch": 0, "max_rows": 0}
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="dialogpt-model", daemon=True)

    # ------------------------------------------------------------------ public
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self._stop = True
            self.cond.notify_all()
        if self.thread.ident is not None:
            self.thread.join(timeout=30)

    def submit(self, job: Job) -> None:
        with self.cond:
            if len(self.waiting) >= self.max_queue:
                self.counters["rejected_busy"] += 1
                raise Busy
            self.waiting.append(job)
            self.counters["requests"] += 1
            self.cond.notify()

    def call(self, fn: Callable[[], object], timeout: float = 300.0) -> object:
        """Run ``fn()`` on the model thread between decoding steps and return its result (raising
        what it raised). For pages that use the Responder directly (the web chat): the model and
        the tokenizer are then never used from two threads at once. :class:`Busy` when the line is
        full, TimeoutError after ``timeout`` seconds."""
        done, box = threading.Event(), {}

        def emit(kind: str, payload: object) -> None:
            box[kind] = payload
            done.set()

        job = Job(None, emit, call=fn)
        self.submit(job)
        if not done.wait(timeout):
            job.cancelled = True
            raise TimeoutError(f"the model thread did not get to this call within {timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def snapshot(self) -> dict:
        with self.cond:
            return {**self.counters, "queue_depth": len(self.waiting), "max_queue": self.max_queue,
                    "running": len(self.rows)}

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self.cond:
                    while not self._stop and not self.waiting and not self.rows:
                        self.cond.wait()
                    if self._stop:
                        return
                    calls, rerank, new = self._take()
                for job in calls:
                    self._run_call(job)
                if rerank:
                    self._rerank_batch(rerank)
                try:
                    if new:
                        self._admit(new)
                    if self.rows:
                        self._step()
                except Exception as e:  # a bug must cost the running requests, not the server
                    logger.exception("decoding step failed")
                    running = {id(r.job) for r in self.rows}
                    self._fail([r.job for r in self.rows] + [j for j in new if id(j) not in running], e)
                    self.rows, self.cache, self.mask = [], None, None

    def _take(self) -> tuple[list[Job], list[Job], list[Job]]:
        """Jobs to start now: every waiting call; free row slots go to row jobs in arrival order;
        the first waiting rerank-mode job takes waiting ones with the same options along (seeded
        ones go alone)."""
        calls: list[Job] = []
        rerank: list[Job] = []
        new: list[Job] = []
        keep: deque[Job] = deque()
        while self.waiting:
            job = self.waiting.popleft()
            if job.cancelled:
                continue
            if job.call is not None:
                calls.append(job)
            elif job.rerank_mode and self._fits_rerank(rerank, job):
                rerank.append(job)
            elif not job.rerank_mode and len(self.rows) + len(new) < self.max_batch:
                new.append(job)
            else:
                keep.append(job)
        self.waiting = keep
        return calls, rerank, new

    def _fits_rerank(self, group: list[Job], job: Job) -> bool:
        if not group:
            return True
        first = group[0].request
        return (len(group) < self.max_batch and first.seed is None and job.request.seed is None
                and dataclasses.astuple(first.options) == dataclasses.astuple(job.request.options))

    def _fail(self, jobs: list[Job], e: BaseException) -> None:
        with self.cond:
            self.counters["failed"] += len(jobs)
        for j in jobs:
            j.emit("error", e)

    def _done(self, n: int = 1) -> None:
        with self.cond:
            self.counters["completed"] += n

    def _run_call(self, job: Job) -> None:
        try:
            result = job.call()
        except Exception as e:
            self._fail([job], e)
            return
        self._done()
        job.emit("result", result)

    # ------------------------------------------------------------------ rerank mode
    def _rerank_batch(self, jobs: list[Job]) -> None:
        try:
            if jobs[0].request.seed is not None:
                torch.manual_seed(jobs[0].request.seed)
            replies = self.responder.respond_batch([j.request.turns for j in jobs], jobs[0].request.options)
        except Exception as e:
            if len(jobs) > 1:  # one request's problem must not fail the others batched with it
                logger.warning("a batch of %d failed (%s); decoding its requests one by one", len(jobs), e)
                for j in jobs:
                    self._rerank_batch([j])
                return
            logger.exception("generation failed")
            self._fail(jobs, e)
            return
        with self.cond:
            self.counters["batches"] += 1
        self._done(len(jobs))
        for j, r in zip(jobs, replies):
            j.emit("reply", r)

    # ------------------------------------------------------------------ rows
    def _new_row(self, job: Job) -> _Row:
        r, opts = self.responder, job.request.options
        # the app builds the prompt in a worker thread (dialogpt.serve.prepare): none of it here
        prompt, truncated = job.request.prepared or r.prompt(job.request.turns, opts)
        r.stats["truncated_prompts"] += truncated
        procs = LogitsProcessorList()  # min_new_tokens is applied to the whole batch in _advance
        if opts.no_repeat_ngram_size > 0:
            procs.append(NoRepeatNGramLogitsProcessor(opts.no_repeat_ngram_size))
        procs.extend(response_processors(opts, len(prompt)))
        sample = opts.strategy == "sample"
        if sample:
            if opts.temperature != 1.0:
                procs.append(TemperatureLogitsWarper(opts.temperature))
            if opts.top_k > 0:
                procs.append(TopKLogitsWarper(opts.top_k))
            if opts.top_p < 1.0:
                procs.append(TopPLogitsWarper(opts.top_p))
        gen = None
        if job.request.seed is not None:
            gen = torch.Generator().manual_seed(job.request.seed % (2**63))
        text = TextStream(r.tokenizer, job.request.stop, r.safety, streaming=job.request.stream)
        return _Row(job, prompt, procs, sample, gen, text)

    def _admit(self, jobs: list[Job]) -> None:
        """Prefill the new rows together and join them to the running batch."""
        rows = []
        for j in jobs:
            try:
                rows.append(self._new_row(j))
            except Exception as e:
                logger.exception("bad request")
                self._fail([j], e)
        if not rows:
            return
        model = self.responder.model
        device = next(model.parameters()).device
        pad = self.responder.tokenizer.pad_token_id or 0
        ids, mask = left_pad([r.prompt for r in rows], pad)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                    cache=cache, use_cache=True)
        if self.rows:
            with self.cond:
                self.counters["joined_running_batch"] += len(rows)
        self.cache, self.mask = kv_cache.join(self.cache, self.mask, cache, mask.to(device))
        self.rows.extend(rows)
        with self.cond:
            self.counters["max_rows"] = max(self.counters["max_rows"], len(self.rows))
        self._advance(out.logits[:, -1], first=len(self.rows) - len(rows))

    def _step(self) -> None:
        """One token for every running row."""
        model = self.responder.model
        device = self.mask.device
        last = torch.tensor([[r.generated[-1]] for r in self.rows], device=device)
        pos = torch.tensor([[len(r.prompt) + len(r.generated) - 1] for r in self.rows], device=device)
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], 1)
        out = model(input_ids=last, attention_mask=self.mask, position_ids=pos, cache=self.cache, use_cache=True)
        with self.cond:
            self.counters["steps"] += 1
        self._advance(out.logits[:, -1], first=0)

    def _advance(self, logits: torch.Tensor, first: int) -> None:
        """Pick the next token of rows ``first``.. (``logits`` has one line per such row), then drop
        the finished and cancelled rows. Greedy rows without processors share one argmax; the others
        run their own processors (as ``generate`` would: min_new_tokens first, warpers last)."""
        eos = int(self.responder.tokenizer.eos_token_id)
        rows = self.rows[first:]
        logits = logits.float()
        early = [i for i, r in enumerate(rows) if len(r.generated) < r.job.request.options.min_new_tokens]
        if early:
            logits[early, eos] = -float("inf")
        picks = logits.argmax(-1).tolist()
        for i, row in enumerate(rows):
            if row.processors or row.sample:
                ids = torch.tensor([row.prompt + row.generated], device=logits.device)
                scores = row.processors(ids, logits[i:i + 1])
                if row.sample:
                    probs = torch.softmax(scores, -1).cpu()
                    picks[i] = int(torch.multinomial(probs, 1, generator=row.generator))
                else:
                    picks[i] = int(scores.argmax(-1))
        finished = [first + i for i, r in enumerate(rows) if r.job.cancelled or self._feed(r, picks[i], eos)]
        finished += [k for k in range(first) if self.rows[k].job.cancelled]  # running rows whose client left
        if finished:
            self._drop(sorted(set(finished)))

    def _feed(self, row: _Row, tok: int, eos: int) -> bool:
        """Add ``tok`` to ``row``; True when the row is done (and has reported so)."""
        opts = row.job.request.options
        if tok != eos:
            row.generated.append(tok)
        finish = "stop" if tok == eos else ("length" if len(row.generated) >= opts.max_new_tokens else None)
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
        self._done()
        row.job.emit("done", Result(row.text.text, reason, len(row.generated) + int(tok == eos), len(row.prompt)))
        return True

    def _drop(self, finished: list[int]) -> None:
        gone = set(finished)
        keep = [k for k in range(len(self.rows)) if k not in gone]
        self.rows = [self.rows[k] for k in keep]
        if self.rows:
            self.cache, self.mask = kv_cache.keep_rows(self.cache, self.mask, keep)
        else:
            self.cache, self.mask = None, None
