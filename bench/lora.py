#!/usr/bin/env python
"""LoRA (``--lora_r``) vs full fine-tuning: trainable parameters and peak memory, side by side in one run.

    python bench/lora.py --output bench/lora.results.json     # GPT-2 117M shape (vocab 50257), 3 steps each
    python bench/lora.py --shape tiny --steps 1 --jobs 2      # seconds: the test's smoke run

The same base model (saved once, random weights of the chosen shape) is fine-tuned through
``dialogpt.train.loop.train`` on the same synthetic dialogue data, once with every weight trained and
once with ``--lora_r`` adapters, each in its own process so that its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss``, read by the child at its end) belongs to that mode alone; each
child runs the whole ``train()``: model load, data, the optimizer steps and the final save (LoRA: adapter
plus merge). Beside it: the bytes the optimizer state and the gradients need (AdamW keeps two fp32
tensors per trained parameter, computed from the trained-parameter count), each child's own wall seconds
(since it started) and CPU seconds (``RUSAGE_SELF``), and the load average before and after (the machine
is shared: compare the two modes, not runs on different days). On CUDA each child also reports
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from report import emit  # noqa: E402  (bench/report.py, beside this script)
from train import _dataset_dir, _tokenizer  # noqa: E402  (bench/train.py: the same synthetic sessions)

SHAPES = {  # GPT-2 shapes: name -> config kwargs (117M as DESIGN.md; tiny for the smoke test)
    "117M": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),
    "tiny": dict(n_layer=2, n_embd=64, n_head=2, vocab_size=1000, n_positions=256),
}
LORA = dict(lora_r=8, lora_alpha=16.0, lora_dropout=0.05, lora_target_modules="c_attn,c_proj,c_fc")
ADAMW_STATE_BYTES = 2 * 4   # exp_avg and exp_avg_sq, fp32, per trained parameter
GRAD_BYTES = 4              # one fp32 gradient per trained parameter


def _save_base(tmp: Path, shape: dict, tokenizer) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(**shape, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.eos_token_id)
    d = tmp / "base"
    GPT2LMHeadModel(cfg).save_pretrained(str(d))
    tokenizer.save_pretrained(str(d))
    return d


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(mode: str, base: str, data: str, out: str, steps: int, batch: int) -> dict:
    """One mode's ``train()`` in this process; its figures, peak RSS read last."""
    import contextlib
    import io

    import torch

    from dialogpt.train.config import TrainConfig
    from dialogpt.train.loop import train

    rss_imports = _rss_mb()
    cfg = TrainConfig(output_dir=out, dataset=data, eval_split=None, model_name_or_path=base, max_seq_length=128,
                      train_batch_size=batch, gradient_accumulation_steps=1, learning_rate=1e-4, lr_schedule="None",
                      num_optim_steps=steps, logging_steps=1, eval_steps=0, save_steps=0, pbar=False, cpu=True,
                      **(LORA if mode == "lora" else {}))
    with contextlib.redirect_stdout(io.StringIO()):  # keep stdout for the one JSON line
        res = train(cfg)
    cuda = torch.cuda.is_available() and not cfg.cpu
    return {
        "trainable_parameters": res.trainable_parameters, "model_parameters": res.num_parameters,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_imports_mb": round(rss_imports, 1),
        "gradient_bytes": GRAD_BYTES * res.trainable_parameters,
        "adamw_state_bytes": ADAMW_STATE_BYTES * res.trainable_parameters,
        "cuda_peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
        "tokens_per_sec": round(res.tokens_per_sec, 1), "train_runtime_s": round(res.train_runtime, 2),
        "final_loss": res.train_loss, **_own_times(),
    }


def _own_times() -> dict:
    """This process's wall seconds since it started and its user + system CPU seconds (threads included)."""
    import psutil

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": round(time.time() - psutil.Process().create_time(), 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def run_children(base: Path, data: Path, tmp: Path, steps: int, batch: int, jobs: int) -> dict[str, dict]:
    """Each mode in its own process (``jobs`` 2: both at once, for the smoke test; the committed figures
    ran one after the other). Each child reports its own wall and CPU seconds."""
    out: dict[str, dict] = {}
    pending = ["full", "lora"]
    while pending:
        batch_modes, pending = pending[:jobs], pending[jobs:]
        procs = {mode: subprocess.Popen(
            [sys.executable, __file__, "--child", mode, "--base", str(base), "--data", str(data), "--out",
             str(tmp / mode), "--steps", str(steps), "--batch", str(batch)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for mode in batch_modes}
        for mode, proc in procs.items():
            print(f"bench/lora.py: {mode} fine-tuning ...", file=sys.stderr, flush=True)
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"{mode} run failed: {stderr.strip().splitlines()[-1:]}")
            out[mode] = json.loads(stdout.strip().splitlines()[-1])
    return out


def compare(full: dict, lora: dict) -> dict:
    return {
        "trainable_lora_over_full": round(lora["trainable_parameters"] / full["trainable_parameters"], 6),
        "peak_rss_lora_over_full": round(lora["peak_rss_mb"] / full["peak_rss_mb"], 3),
        "peak_rss_saved_mb": round(full["peak_rss_mb"] - lora["peak_rss_mb"], 1),
        "optimizer_and_gradient_mb_full": round((full["adamw_state_bytes"] + full["gradient_bytes"]) / 2**20, 1),
        "optimizer_and_gradient_mb_lora": round((lora["adamw_state_bytes"] + lora["gradient_bytes"]) / 2**20, 2),
    }


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="117M")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per mode")
    ap.add_argument("--batch", type=int, default=4, help="sessions per step (max_seq_length 128)")
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--jobs", type=int, choices=(1, 2), default=1,
                    help="2: both modes at once (quicker; peak RSS is per process, times then share the CPUs)")
    ap.add_argument("--output", help="also write the JSON here")
    ap.add_argument("--child", choices=("full", "lora"), help=argparse.SUPPRESS)
    for internal in ("--base", "--data", "--out"):
        ap.add_argument(internal, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if args.child:
        print(json.dumps(child(args.child, args.base, args.data, args.out, args.steps, args.batch)))
        return 0
    import peft
    import torch
    import transformers

    result: dict = {
        "benchmark": "lora", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/lora.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "shape": {"name": args.shape, **SHAPES[args.shape]},
        "settings": {"optimizer_steps": args.steps, "train_batch_size": args.batch, "max_seq_length": 128,
                     "jobs": args.jobs,
                     "optimizer": "AdamW fp32", **LORA},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as t:
        tmp = Path(t)
        tok = _tokenizer(tmp)
        base, data = _save_base(tmp, SHAPES[args.shape], tok), _dataset_dir(tmp, args.sessions)
        result.update(run_children(base, data, tmp, args.steps, args.batch, args.jobs))
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["ratios"] = compare(result["full"], result["lora"])
    return emit(result, args.output)


if __name__ == "__main__":
    sys.exit(main())
