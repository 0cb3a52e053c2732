"""The continuous-batching scheduler: rows that join a running batch decode exactly what the
Responder decodes alone; streams concatenate to the reply; stop strings, seeds and cancellation."""

from __future__ import annotations

import queue
import time

import pytest

from dialogpt.chat_format import Turn
from dialogpt.decode import GenerationOptions, Responder
from dialogpt.serve.batching import Job, Scheduler
from dialogpt.serve.schemas import GenRequest
from dialogpt.serve.streaming import TextStream

HISTORIES = [["hello there"], ["how are you doing today my friend?", "fine thanks", "and you"], ["a"],
             ["I like turtles", "me too, they are great", "do you have one?"], ["ok"]]


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    return Responder.from_pretrained(str(tiny_model_dir), device="cpu")


def _job(history, options, stream=False, seed=None, stop=()):
    events: queue.Queue = queue.Queue()
    req = GenRequest([Turn(t) for t in history], options, 1, stream, seed=seed, stop=tuple(stop))
    return Job(req, lambda kind, payload: events.put((kind, payload))), events


def _wait_done(events, timeout=120):
    deltas = []
    while True:
        kind, payload = events.get(timeout=timeout)
        if kind == "delta":
            deltas.append(payload)
        elif kind == "error":
            raise payload
        else:
            return deltas, payload


def test_rows_joining_a_running_batch_decode_what_the_responder_decodes_alone(responder):
    long = GenerationOptions(max_new_tokens=24, min_new_tokens=24)
    short = GenerationOptions(max_new_tokens=6)
    sched = Scheduler(responder, max_batch=8, max_queue=8, idle_release_s=0.01)
    sched.start()
    try:
        first, first_events = _job(HISTORIES[1], long, stream=True)
        sched.submit(first)
        kind, _ = first_events.get(timeout=120)  # the first row is decoding...
        assert kind == "delta" and sched.snapshot()["kv_cache_mb"] > 0
        later = [_job(h, short) for h in HISTORIES]  # ...when these join it
        for job, _ in later:
            sched.submit(job)
        results = [_wait_done(ev)[1] for _, ev in later]
        deltas, first_result = _wait_done(first_events)
        deadline = time.monotonic() + 60
        while sched.snapshot()["kv_cache_mb"] > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sched.snapshot()["kv_cache_mb"] == 0  # idle: the KV memory went back
    finally:
        sched.stop()
    assert sched.counters["joined_running_batch"] >= 1 and sched.counters["max_rows"] >= 2
    for h, res in zip(HISTORIES, results):
        expected = responder.respond(h, short)
        assert res.text == expected.text and res.prompt_tokens == expected.prompt_tokens
        assert res.finish_reason == ("stop" if expected.candidates[0].finished else "length")
    alone = responder.respond(HISTORIES[1], long)
    assert first_result.text == alone.text and first_result.completion_tokens == 24
    assert first_result.finish_reason == "length"


def test_stream_deltas_concatenate_to_the_reply_and_seeds_repeat(responder):
    opts = GenerationOptions(strategy="sample", temperature=1.5, max_new_tokens=12, min_new_tokens=12)
    sched = Scheduler(responder, max_batch=4, max_queue=8)
    sched.start()
    try:
        runs = []
        for seed in (3, 3, 4):
            job, ev = _job(HISTORIES[0], opts, stream=True, seed=seed)
            sched.submit(job)
            runs.append(_wait_done(ev))
        job, ev = _job(HISTORIES[0], opts, seed=3)
        sched.submit(job)
        plain = _wait_done(ev)
    finally:
        sched.stop()
    (d1, r1), (d2, r2), (_, r3) = runs
    assert len(d1) > 1 and "".join(d1) == r1.text == r2.text != r3.text
    assert plain[0] == [] and plain[1].text == r1.text  # not streamed: no deltas, same reply


class _Words:
    """A stand-in tokenizer: token i is the word w_i with a leading space (U+FFFD for 99)."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(" \ufffd" if i == 99 else f" w{i}" for i in ids)


def test_text_stream_holds_back_stop_prefixes_partial_characters_and_blocked_words():
    from dialogpt.decode.safety import SafetyFilter, parse_blocklist

    s = TextStream(_Words(), stop=["w3"])
    assert s.update([1], None) is None and s.take_deltas() == ["w"]  # the last char may begin "w3"
    assert s.update([1, 2], None) is None and "".join(s.take_deltas()) == "1 w"
    assert s.update([1, 2, 3], None) == "stop" and s.text == "w1 w2"
    s = TextStream(_Words())
    s.update([1, 99], None)
    assert s.take_deltas() == ["w1"]  # the incomplete character waits
    safe = SafetyFilter(parse_blocklist(["w2"]))
    s = TextStream(_Words(), safety=safe)
    assert s.update([1], None) is None and s.take_deltas() == []  # "w1" may still grow into "w12"
    assert s.update([1, 5], None) is None and s.take_deltas() == ["w1"]
    assert s.update([1, 5, 2], None) is None and s.take_deltas() == [" w5"]
    assert s.update([1, 5, 2, 7], None) == "content_filter" and s.take_deltas() == [] and s.text == "w1 w5"
    s = TextStream(_Words(), safety=safe, streaming=False)
    assert s.update([2], "length") == "content_filter" and s.text == safe.fallback


def test_call_runs_on_the_model_thread_and_raises_what_the_function_raised(responder):
    import threading

    sched = Scheduler(responder, max_batch=2, max_queue=4)
    sched.start()
    try:
        assert sched.call(lambda: threading.current_thread().name) == "dialogpt-model"
        reply = sched.call(lambda: responder.respond(HISTORIES[0], GenerationOptions(max_new_tokens=3)))
        assert reply.text == responder.respond(HISTORIES[0], GenerationOptions(max_new_tokens=3)).text
        with pytest.raises(ZeroDivisionError):
            sched.call(lambda: 1 / 0)
    finally:
        sched.stop()
    assert sched.counters["completed"] == 2 and sched.counters["failed"] == 1


def _alone(model, prompt: list[int], n: int) -> list[int]:
    """Greedy tokens for ``prompt`` decoded by itself with transformers' own cache (no padding)."""
    import torch

    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                         pad_token_id=0)
    return out[0, len(prompt):].tolist()


def test_slot_cache_rows_joining_and_leaving_mid_batch_decode_what_each_decodes_alone(tiny_model):
    """Rows join (prompts packed, three at once, beside running rows), leave from the middle and the front
    (the last rows move into their slots) and the cache shrinks; every row's greedy tokens equal decoding
    it alone, and a forward pass of the model outside the cache is plain sdpa meanwhile."""
    import torch

    from dialogpt.serve.kv_cache import SlotCache

    prompts = [list(range(5, 5 + k)) for k in (3, 11, 7, 2, 40, 5)]
    cache = SlotCache(len(tiny_model.transformer.h), max_rows=8, max_width=256, grain=4)
    per_row = []  # per pass with running rows: did they attend one by one (very different lengths)?
    plan = cache._plan_pass

    def spy(*args):
        out = plan(*args)
        if cache._plan.rows:
            per_row.append(cache._plan.decode_mask is None)
        return out

    cache._plan_pass = spy
    running: list[int] = []  # prompt index of the row in each slot
    got: dict[int, list[int]] = {i: [] for i in range(len(prompts))}

    def forward(new=()):
        logits = cache.forward(tiny_model, [got[i][-1] for i in running], [prompts[i] for i in new],
                               [len(prompts[i]) + 5 for i in new])
        running.extend(new)
        for i, tok in zip(running, logits.argmax(-1).tolist()):
            got[i].append(tok)

    def drop(idx):
        order = cache.drop([running.index(i) for i in idx])
        running[:] = [running[k] for k in order]

    with torch.inference_mode():
        forward([0, 1])
        assert cache.layers[0].keys.shape[:3] == (4, 2, 16)  # 4 slots, room for prompt 1 and its 5 new tokens
        forward([2])  # joins a running batch
        forward()
        drop([0])  # leaves from the front: the last row moves into slot 0
        assert running == [2, 1] and cache.lengths == [len(prompts[2]) + 1, len(prompts[1]) + 2]
        forward([3, 4, 5])
        forward()
        assert cache.layers[0].keys.shape[2] == 48  # room for the longest row's prompt and reply (40 + 5)
        drop([4, 2, 1])  # the longest rows leave: the width shrinks to what the rows left need
        assert cache.layers[0].keys.shape[2] == 12 and running == [3, 5]
        forward()
        assert tiny_model.config._attn_implementation == "sdpa"
    assert True in per_row and False in per_row  # both ways of attending were used
    for i, toks in got.items():
        assert toks == _alone(tiny_model, prompts[i], len(toks)), f"row {i}"
    drop(list(running))
    assert cache.lengths == [] and cache.nbytes() > 0  # kept for the next request...
    cache.release()
    assert cache.nbytes() == 0  # ...until the scheduler finds the server idle
