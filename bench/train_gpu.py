#!/usr/bin/env python
"""Training throughput matrix: the ONE command to run when a CUDA GPU is available.

    python bench/train_gpu.py --output bench/train_gpu.results.json     # on the GPU machine
    python bench/train_gpu.py --output bench/train_gpu.cpu.results.json # on a CPU (CI keeps it working)

On CUDA it trains GPT-2 117M and 345M (bf16 autocast, fused AdamW) for a fixed number of steps over
{padded-bucketed, packed} x {sdpa, flash_attention_2 if installed} x {compile off, on} and prints one
JSON: real tokens/s, MFU (FLOPs per token from the config, peak from the device name or
--peak_tflops), peak memory and the loss after N steps for each. Every configuration is time-boxed
(--config_cap_s, an alarm) and the whole run keeps to --budget_s (default 450 s: under 8 minutes on one
H100 including start-up); what the budget leaves out is listed as skipped, never estimated. Eager
configurations run first, then the compiled ones, packed first (static shapes: compile's best case).

On a CPU it runs a tiny GPT-2 through the same matrix in about a minute (fp32) and prints the CPU
ratios: packed vs bucketed tokens/s and compile vs eager. flash-attention is reported unavailable
with the reason the training CLI would give.

Both sides see the same token budget per step: packed batches are ``rows x max_seq_length`` tokens,
bucketed batches hold as many sessions as fill that budget on average. The data are synthetic
dialogue sessions (2-6 turns, Reddit-like long-tailed lengths, mean ~53 tokens) encoded by
``chat_format.encode_token_turns``, with Zipf-distributed token ids so the loss has something to learn.
This measures the model step with our batching; the Accelerate loop around it costs ~2% (bench/train.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from report import emit  # noqa: E402  (bench/report.py, beside this script)

MODELS = {  # GPT-2 shapes (DESIGN.md): name -> (config kwargs)
    "117M": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),
    "345M": dict(n_layer=24, n_embd=1024, n_head=16, vocab_size=50257, n_positions=1024),
    "tiny-cpu": dict(n_layer=2, n_embd=128, n_head=4, vocab_size=4096, n_positions=256),
}


def synthetic_sessions(n: int, vocab: int, max_len: int, seed: int = 0) -> list[dict]:
    """Encoded sessions through the one dialogue format (labels as training makes them)."""
    import numpy as np

    from dialogpt.chat_format import encode_token_turns

    rng = np.random.default_rng(seed)
    eos = vocab - 1
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        lens = np.clip(rng.exponential(12, size=k).astype(int), 1, 40)
        turns = [((rng.zipf(1.3, size=m) - 1) % (vocab - 1)).tolist() for m in lens]
        enc = encode_token_turns(turns, [0.0] + [1.0] * (k - 1), eos, max_len)
        out.append({"input_ids": enc.input_ids, "labels": enc.labels})
    return out


class PaddedCollate:
    """Right padding through the project's one padding helper (``tensors.pad_right``), to a multiple of 8."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, feats):
        from dialogpt.tensors import pad_right

        return pad_right([f["input_ids"] for f in feats], [f["labels"] for f in feats], pad_id=self.pad_id,
                         pad_to_multiple_of=8)


def make_loader(data, batching: str, attn: str, compiled: bool, rows: int, width: int, pad: int, seed: int = 0):
    """Bucketed (dynamic shapes) or packed (fixed rows x width; flash: one flattened row) batches."""
    import torch
    from torch.utils.data import DataLoader

    from dialogpt.train.data import LengthBucketBatchSampler
    from dialogpt.train.packing import PackedBatchSampler, PackedCollator

    lengths = [len(d["input_ids"]) for d in data]
    if batching == "packed":
        sampler = PackedBatchSampler(lengths, rows, width, seed=seed, drop_last=True)
        # flash's varlen path wants one row; without compile it is padding-free (real tokens only)
        collate = PackedCollator(width, pad, rows=rows if (compiled or attn != "flash_attention_2") else None,
                                 flatten=attn == "flash_attention_2")
    else:
        per_batch = max(1, round(rows * width / (sum(lengths) / len(lengths))))
        sampler = LengthBucketBatchSampler(lengths, per_batch, seed=seed, drop_last=True)
        collate = PaddedCollate(pad)
    workers = 2 if torch.cuda.is_available() else 0
    return DataLoader(data, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                      pin_memory=torch.cuda.is_available())


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def time_box(seconds: int):
    """Raise ``_Timeout`` in the main thread after ``seconds`` (a compile that never ends must not eat the run)."""
    def fire(signum, frame):
        signal.alarm(5)  # again and again: a compile may swallow one exception, not every one
        raise _Timeout(f"time box of {seconds}s reached")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def build(model_name: str, attn: str, compiled: bool, device, backend: str):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dialogpt.train.model import compile_blocks

    torch.manual_seed(0)
    cfg = GPT2Config(**MODELS[model_name], use_cache=False)
    model = GPT2LMHeadModel._from_config(cfg, attn_implementation=attn, dtype=torch.float32).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.0, fused=device.type == "cuda")
    if compiled:  # as --torch_compile does: each block compiled in place, one graph shared by all layers
        compile_blocks(model, backend)
    return model, opt


def train_steps(model, opt, loader, device, warmup: int, steps: int, measure_cap_s: float) -> dict:
    """``warmup`` steps (compile happens there), then up to ``steps`` timed steps (or ``measure_cap_s``)."""
    import torch

    from dialogpt.train.packing import model_inputs, real_token_count

    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    losses, real, computed = [], 0, 0
    it = iter(loader)
    t0 = c0 = None
    done = 0
    for i in range(warmup + steps):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0, c0 = time.perf_counter(), time.process_time()
        batch = next(it)
        inputs = {k: v.to(device, non_blocking=True) for k, v in model_inputs(batch).items()}
        with autocast:
            loss = model(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        if i >= warmup:
            real += int(real_token_count(batch))
            computed += batch["input_ids"].numel()
            done += 1
            if time.perf_counter() - t0 > measure_cap_s:
                break
    if cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"timed_steps": done, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "real_tokens": real,
            "real_tokens_per_cpu_s": round(real / max(cpu, 1e-9), 1),
            "computed_tokens": computed, "real_token_fraction": round(real / max(computed, 1), 4),
            "loss_after_n_steps": round(float(losses[-1]), 4), "n_steps": len(losses),
            "first_loss": round(float(losses[0]), 4)}


def run_config(spec: dict, data, args, device) -> dict:
    import torch

    from dialogpt.train.throughput import measure, peak_tflops_for

    model, opt = build(spec["model"], spec["attn"], spec["compile"], device, args.compile_backend)
    loader = make_loader(data, spec["batching"], spec["attn"], spec["compile"], args.rows, args.max_seq_length,
                         pad=args.pad_id)
    t_build = time.perf_counter()
    with time_box(args.config_cap_s):
        out = train_steps(model, opt, loader, device, args.warmup, args.steps, args.measure_cap_s)
    out["setup_and_warmup_s"] = round(time.perf_counter() - t_build - out["wall_s"], 2)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else None
    thr = measure(out["real_tokens"], out["wall_s"], model.config, args.max_seq_length,
                  peak_tflops_for(name, args.peak_tflops))
    out.update(thr.as_dict())
    out["peak_memory_mib"] = (round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else None)
    return out


def matrix(models: list[str], attns: list[str]) -> list[dict]:
    """Eager first (cheap, always wanted), then compiled: packed before bucketed, small model first."""
    specs = [dict(model=m, batching=b, attn=a, compile=c)
             for c in (False, True) for b in (("packed", "bucketed") if c else ("bucketed", "packed"))
             for m in models for a in attns]
    return specs


def available_attns(device, precision: str) -> tuple[list[str], dict]:
    from transformers import GPT2LMHeadModel

    from dialogpt.train.attention import check_attn_implementation

    ok, why_not = ["sdpa"], {}
    try:
        check_attn_implementation("flash_attention_2", model_class=GPT2LMHeadModel, on_cuda=device.type == "cuda",
                                  mixed_precision=precision)
        ok.append("flash_attention_2")
    except ValueError as e:
        why_not["flash_attention_2"] = str(e)
    return ok, why_not


def ratios(results: list[dict], key: str = "tokens_per_sec") -> dict:
    """packed/bucketed and compiled/eager ``key`` for each model and attention (where both ran)."""
    def tps(**k):
        for r in results:
            if all(r["config"].get(a) == b for a, b in k.items()) and key in r:
                return r[key]
        return None

    out = {}
    for m in {r["config"]["model"] for r in results}:
        for a in {r["config"]["attn"] for r in results}:
            pairs = {"packed_over_bucketed_eager": (tps(model=m, attn=a, batching="packed", compile=False),
                                                    tps(model=m, attn=a, batching="bucketed", compile=False)),
                     "compile_over_eager_packed": (tps(model=m, attn=a, batching="packed", compile=True),
                                                   tps(model=m, attn=a, batching="packed", compile=False)),
                     "compile_over_eager_bucketed": (tps(model=m, attn=a, batching="bucketed", compile=True),
                                                     tps(model=m, attn=a, batching="bucketed", compile=False))}
            for k, (x, y) in pairs.items():
                if x and y:
                    out[f"{m}/{a}/{k}"] = round(x / y, 3)
    return out


def parse_args(argv, cuda: bool):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["117M", "345M"] if cuda else ["tiny-cpu"], choices=list(MODELS))
    ap.add_argument("--max_seq_length", type=int, default=128)
    ap.add_argument("--rows", type=int, default=64 if cuda else 4, help="packed rows per step (the token budget)")
    ap.add_argument("--warmup", type=int, default=6 if cuda else 2)
    ap.add_argument("--steps", type=int, default=40 if cuda else 8, help="timed steps per configuration")
    ap.add_argument("--measure_cap_s", type=float, default=20.0 if cuda else 6.0)
    ap.add_argument("--config_cap_s", type=int, default=150 if cuda else 45, help="hard time box per configuration")
    ap.add_argument("--budget_s", type=float, default=450.0 if cuda else 60.0, help="whole run, start-up included")
    ap.add_argument("--compile_backend", default="inductor")
    ap.add_argument("--no_compile", action="store_true", help="leave the compiled half of the matrix out")
    ap.add_argument("--threads", type=int, default=None if cuda else 1,
                    help="torch CPU threads (CPU default 1: on a shared machine two spin-waiting OpenMP threads "
                         "made each step ~10x slower)")
    ap.add_argument("--peak_tflops", type=float, help="the device's dense peak when its name is not in the table")
    ap.add_argument("--output", help="also write the JSON here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    t_start = time.perf_counter()
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    args = parse_args(argv, cuda)
    device = torch.device("cuda" if cuda else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    attns, unavailable = available_attns(device, "bf16" if cuda else "no")
    n_sessions = (args.warmup + args.steps + 2) * args.rows * args.max_seq_length // 40 + 64
    vocab = min(MODELS[m]["vocab_size"] for m in args.models)
    args.pad_id = vocab - 1  # EOS doubles as pad, as for GPT-2 (masked by labels, never by id)
    data = synthetic_sessions(n_sessions, vocab, args.max_seq_length)
    specs = [s for s in matrix(args.models, attns) if not (s["compile"] and args.no_compile)]
    result = {"benchmark": "train_gpu", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.machine()}, "
              f"{os.cpu_count()} cores, {torch.get_num_threads()} threads)",
              "precision": "bf16 autocast" if cuda else "fp32", "torch": torch.__version__,
              "transformers": transformers.__version__, "compile_backend": args.compile_backend,
              "settings": {k: v for k, v in vars(args).items() if k not in ("output", "pad_id")},
              "sessions": len(data), "attention_unavailable": unavailable, "results": []}
    for spec in specs:
        left = args.budget_s - (time.perf_counter() - t_start)
        need = (60 if cuda else 20) if spec["compile"] else (10 if cuda else 4)
        entry = {"config": spec}
        if left < need:
            entry["skipped"] = f"time budget: {left:.0f}s left of {args.budget_s:.0f}s"
        else:
            try:
                entry.update(run_config(spec, data, argparse.Namespace(**{**vars(args), "config_cap_s": min(
                    args.config_cap_s, max(1, int(left - 5)))}), device))
            except Exception as e:  # a time box, OOM or compile failure in one configuration loses only that one
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                entry["error"] = f"{type(e).__name__}: {' '.join(lines[:3])[:400]}"
            finally:
                if spec["compile"]:
                    torch._dynamo.reset()
                if cuda:
                    torch.cuda.empty_cache()
        result["results"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)  # progress; stdout stays one JSON
    result["ratios_wall"] = ratios(result["results"])
    # CPU seconds too: on a shared machine the wall clock also measures the neighbours
    result["ratios_cpu_time"] = ratios(result["results"], "real_tokens_per_cpu_s")
    result["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    result["total_cpu_s"] = round(time.process_time(), 1)
    return emit(result, args.output)


if __name__ == "__main__":
    sys.exit(main())
