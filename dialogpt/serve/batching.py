"""Continuous batching: one model thread, requests join the running batch between decoding steps.

Why our own scheduler: transformers' ``ContinuousBatchingManager`` has per-request temperature / top-k /
top-p only: no response-only penalties, no per-request seeds (one generator for all), no
``min_new_tokens``, and no hook between tokens for stop strings or the safety check. A step loop
over GPT-2 with transformers' cache API and logits processors does all of that and stays short
(:mod:`dialogpt.serve.rows`, :mod:`dialogpt.serve.kv_cache`); how it is made fast is said there.

How it works (all model work on one thread, so the tokenizer and model are never shared):

* a request with one candidate and no beam search is a *row*: it waits in the line until a slot is
  free (``max_batch`` rows at once), its prompt is prefilled (packed with other joining prompts, a
  bounded number of tokens a pass) and from then on every step decodes one token for every row at
  once. Each row has its own positions, processors, seed and stop rules; a finished (or
  disconnected) row leaves at once and its slot goes to the next waiting request;
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
from dataclasses import dataclass

import torch

from dialogpt.serve.cpu_matmul import check_mode, use_onednn
from dialogpt.serve.rows import Result, RowBatch
from dialogpt.serve.schemas import GenRequest

logger = logging.getLogger("dialogpt.serve.batching")

Emit = Callable[[str, object], None]


class Busy(Exception):
    """The waiting line is full."""


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


class Scheduler:
    """The model thread and its waiting line (see the module docstring)."""

    def __init__(self, responder, max_batch: int = 16, max_queue: int = 128, prefill_tokens: int = 512,
                 cpu_matmul: str = "auto", idle_release_s: float = 1.0):
        if prefill_tokens < 1:
            raise ValueError(f"prefill_tokens must be >= 1, got {prefill_tokens}")
        check_mode(cpu_matmul)
        self.responder, self.max_batch, self.max_queue = responder, max_batch, max_queue
        self.prefill_tokens, self.cpu_matmul, self.idle_release_s = prefill_tokens, cpu_matmul, idle_release_s
        self.waiting: deque[Job] = deque()
        self.cond = threading.Condition()
        self._batch: RowBatch | None = None
        self.counters = {"requests": 0, "rejected_busy": 0, "completed": 0, "failed": 0, "batches": 0,
                         "steps": 0, "joined_running_batch": 0, "max_rows": 0, "onednn_layers": 0}
        self._stop = False
        self.thread = threading.Thread(target=self._run, name="dialogpt-model", daemon=True)

    # ------------------------------------------------------------------ public
    def start(self) -> None:
        """Start the model thread (first switching a CPU float32 model's linear layers to oneDNN, see
        :mod:`dialogpt.serve.cpu_matmul`, unless ``cpu_matmul="stock"``)."""
        model = getattr(self.responder, "model", None)
        if isinstance(model, torch.nn.Module):
            self.counters["onednn_layers"] = use_onednn(model, self.cpu_matmul)
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
        b = self._batch
        with self.cond:
            return {**self.counters, "queue_depth": len(self.waiting), "max_queue": self.max_queue,
                    "running": len(b.rows) if b else 0, "kv_cache_mb": round(b.cache.nbytes() / 2**20, 1) if b else 0}

    @property
    def batch(self) -> RowBatch:
        """The running rows, made on first use (a Scheduler for rerank-mode work only needs no model)."""
        if self._batch is None:
            self._batch = RowBatch(self.responder, self.max_batch, self.prefill_tokens, self._count)
        return self._batch

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self.cond:
                    while not self._stop and not self.waiting and not self._busy():
                        holding = self._batch is not None and self._batch.cache.nbytes() > 0
                        if not self.cond.wait(self.idle_release_s if holding else None):
                            self._batch.cache.release()  # idle: the KV memory goes back
                    if self._stop:
                        return
                    calls, rerank, new = self._take()
                for job in calls:
                    self._run_call(job)
                if rerank:
                    self._rerank_batch(rerank)
                try:
                    self._admit(new)
                    if self._busy():
                        self.batch.advance()
                except Exception as e:  # a bug must cost the running requests, not the server
                    logger.exception("decoding step failed")
                    self._fail(self.batch.reset(), e)

    def _busy(self) -> bool:
        return self._batch is not None and self._batch.size > 0

    def _admit(self, jobs: list[Job]) -> None:
        """New rows wait in the batch's joining line (a request that cannot be decoded fails alone)."""
        for j in jobs:
            try:
                self.batch.joining.append(self.batch.new_row(j))
            except Exception as e:
                logger.exception("bad request")
                self._fail([j], e)

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
            elif not job.rerank_mode and (self._batch.size if self._batch else 0) + len(new) < self.max_batch:
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
        self._count("completed", n)

    def _count(self, key: str, n: int = 1, peak: bool = False) -> None:
        with self.cond:
            self.counters[key] = max(self.counters[key], n) if peak else self.counters[key] + n

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


__all__ = ["Busy", "Job", "Result", "Scheduler"]
