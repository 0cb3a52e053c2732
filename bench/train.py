#!/usr/bin/env python
"""Training benchmark, side by side in one run, printed as JSON.

1. ``loop_overhead``: tokens/s of our Accelerate loop (``dialogpt.train.loop.train``) vs a bare PyTorch
   loop doing the same work (same model init, same batches from the same sampler and collator, same
   AdamW groups, schedule, clipping, accumulation and data-loader RNG). ``same_work`` checks that the
   two produce identical per-step losses, so the baseline is fair. Runs are interleaved and repeated;
   the ratio of medians is reported (target >= 0.95). ``--quick`` runs 4 steps of the tiny model, where
   start-up dominates: its ratio is not meaningful, only the full run's.
2. ``padding``: real tokens / padded tokens of the length-bucketed batch plan vs plain shuffled
   batches, on tokenised dialogue sessions (target >= 0.95 for bucketing).
3. ``gpt2_117m_cpu``: tokens/s of the 117M shape (12 x 768, vocab 50257) on this CPU for a few steps.
4. ``packing``: real tokens / computed tokens of the packed plan (``--packing``: sessions side by side in
   rows of 128) vs the length-bucketed plan, on the same sessions as ``padding``.
5. ``throughput_levers``: ``train()`` of the 4 x 256 model with {length buckets, --packing} x
   {eager, --torch_compile (inductor)}, about the same tokens per step; steady-state real tokens/s from
   ``train_log.txt`` after the warm-up steps (compile happens there), total wall and CPU time beside it.
   ``--sections packing,throughput_levers`` runs only these (the others take long on 2 cores).

No GPU figures are produced unless CUDA is present; nothing is estimated for hardware not measured.

    python bench/train.py            # full (a few minutes on 2 cores)
    python bench/train.py --quick    # smoke run (seconds), used by the test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from report import emit  # noqa: E402  (bench/report.py, beside this script)

WORDS = ("does money buy happiness depends how much you spend on it what is the best way to be the richest man "
         "in world i think so not sure maybe yes no good bad day night cat dog thanks for this great post love "
         "it hate that really people would say about why when where who which lol").split()


def _sessions(n: int, seed: int = 0) -> list[dict]:
    """Reddit-like sessions: 2-6 turns of 1-40 words (a long-tailed spread of lengths)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        turns = []
        for j in range(rng.randint(2, 6)):
            n_words = min(40, max(1, int(rng.expovariate(1 / 12))))
            turns.append({"text": " ".join(rng.choice(WORDS) for _ in range(n_words)),
                          "weight": 0.0 if j == 0 else 1.0})
        rows.append({"turns": turns})
    return rows


def _tokenizer(tmp: Path):
    from dialogpt.tokenization import train_bytelevel_tokenizer

    texts = []
    for name in ("test_comments.json", "test_submissions.json"):
        p = REPO / "tests" / "data" / "pushshift" / name
        if p.exists():
            for line in p.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                texts += [str(rec.get(k) or "") for k in ("body", "title", "selftext")]
    texts += [" ".join(WORDS)] * 10
    return train_bytelevel_tokenizer([t for t in texts if t], vocab_size=1000, save_dir=tmp / "tok")


def _dataset_dir(tmp: Path, n: int) -> Path:
    import datasets

    d = tmp / f"ds{n}"
    d.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(_sessions(n)).to_parquet(str(d / "train.parquet"))
    return d


def bench_padding(tokenizer, n_sessions: int, batch_size: int, max_seq_length: int) -> dict:
    import datasets

    from dialogpt.train.data import LengthBucketBatchSampler, RandomBatchSampler, padding_efficiency, tokenize_sessions

    tok, _ = tokenize_sessions(datasets.Dataset.from_list(_sessions(n_sessions, seed=1)), tokenizer, max_seq_length)
    lengths = tok["length"]
    bucketed = padding_efficiency(lengths, list(LengthBucketBatchSampler(lengths, batch_size, bucket_batches=100)))
    plain = padding_efficiency(lengths, list(RandomBatchSampler(lengths, batch_size)))
    return {"sessions": len(lengths), "batch_size": batch_size, "max_seq_length": max_seq_length,
            "mean_length": round(sum(lengths) / len(lengths), 1),
            "bucketed_real_token_fraction": round(bucketed, 4), "random_real_token_fraction": round(plain, 4),
            "padded_tokens_saved": round(1 - plain / bucketed, 4), "target": 0.95, "meets_target": bucketed >= 0.95}


def _bare_loop(cfg, tokenizer, steps: int) -> tuple[float, list[float]]:
    """The same work as ``train()`` with nothing around it: tokens/s and per-step losses over ``steps``."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import GPT2LMHeadModel

    from dialogpt.train.data import DialogCollator, LengthBucketBatchSampler, tokenize_sessions
    from dialogpt.train.model import build_model_config
    from dialogpt.train.optim import param_groups
    from dialogpt.train.schedules import build_scheduler
    from dialogpt.train.sources import load_session_splits

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = GPT2LMHeadModel(build_model_config(cfg.model_config, len(tokenizer), tokenizer.eos_token_id))
    model.config.use_cache = False
    train_raw, _, _ = load_session_splits(cfg.dataset, eval_split=None)
    tok, _ = tokenize_sessions(train_raw, tokenizer, cfg.max_seq_length)
    sampler = LengthBucketBatchSampler(tok["length"], cfg.micro_batch_size, cfg.bucket_batches, seed=cfg.seed)
    dl = DataLoader(tok.select_columns(["input_ids", "labels"]), batch_sampler=sampler,
                    collate_fn=DialogCollator(tokenizer.pad_token_id),
                    generator=torch.Generator().manual_seed(cfg.seed))
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate, eps=cfg.adam_epsilon)
    sched = build_scheduler(opt, cfg.lr_schedule, warmup_steps=cfg.warmup_steps,
                            warmup_proportion=cfg.warmup_proportion, n_embd=model.config.n_embd,
                            num_optim_steps=cfg.num_optim_steps)
    model.train()
    accum = cfg.gradient_accumulation_steps
    real = torch.zeros((), dtype=torch.long)
    losses = []
    step_losses = []
    step = micro = 0
    t0 = time.perf_counter()
    epoch = 0
    while step < steps:
        sampler.set_epoch(epoch)
        for batch in dl:
            out = model(**batch, use_cache=False)
            (out.loss / accum).backward()
            losses.append(out.loss.detach())
            real += batch["attention_mask"].sum()
            micro += 1
            if micro % accum == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step_losses.append(torch.stack(losses[-accum:]).mean())
                step += 1
                if step >= steps:
                    break
        epoch += 1
    per_step = torch.stack(step_losses).tolist()
    return real.item() / (time.perf_counter() - t0), per_step


def bench_loop(tmp: Path, tokenizer_dir: Path, tokenizer, *, model_config: str, steps: int, repeats: int,
               n_sessions: int) -> dict:
    from dialogpt.train.config import TrainConfig
    from dialogpt.train.loop import train

    ds = _dataset_dir(tmp, n_sessions)
    if model_config == "bench":  # 4 layers x 256: big enough that the step, not the Python around it, dominates
        from transformers import GPT2Config

        path = tmp / "bench_config.json"
        GPT2Config(n_layer=4, n_embd=256, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0).to_json_file(str(path))
        model_config = str(path)
    label = "4 layers x 256 (bench)" if model_config.endswith(".json") else model_config

    def cfg(out: str) -> TrainConfig:
        return TrainConfig(output_dir=out, dataset=str(ds), eval_split=None, model_config=model_config,
                           tokenizer_name=str(tokenizer_dir), max_seq_length=128, train_batch_size=16,
                           gradient_accumulation_steps=2, learning_rate=1e-4, lr_schedule="noam", warmup_steps=10,
                           num_optim_steps=steps, logging_steps=10 ** 6, eval_steps=0, save_steps=0, pbar=False,
                           seed=3, cpu=True)

    ours, bare = [], []
    max_loss_diff = 0.0
    for r in range(repeats):  # interleaved, so load from neighbours hits both sides alike
        res = train(cfg(str(tmp / f"ours{r}")))
        ours.append(res.tokens_per_sec)
        tps, bare_losses = _bare_loop(cfg(str(tmp / "bare")), tokenizer, steps)
        bare.append(tps)
        # proof that both did the same work: same init, same batches, same updates -> same losses
        max_loss_diff = max([max_loss_diff] + [abs(a - b) for a, b in zip(res.loss_history, bare_losses)])
        if len(res.loss_history) != len(bare_losses):
            max_loss_diff = float("inf")
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    return {"model": label, "optimizer_steps": steps, "micro_batch": 8, "accumulation": 2, "repeats": repeats,
            "ours_tokens_per_sec": [round(x, 1) for x in ours], "bare_tokens_per_sec": [round(x, 1) for x in bare],
            "ours_median": round(m_ours, 1), "bare_median": round(m_bare, 1),
            "max_step_loss_difference": max_loss_diff, "same_work": max_loss_diff < 1e-3,
            "ratio_ours_over_bare": round(m_ours / m_bare, 4), "target": 0.95, "meets_target": m_ours / m_bare >= 0.95}


def bench_117m(tmp: Path, tokenizer, steps: int, n_sessions: int) -> dict:
    """The GPT-2 117M shape (vocab 50257) saved once, then trained a few steps on CPU through ``train()``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from dialogpt.train.config import TrainConfig
    from dialogpt.train.loop import train

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50257, n_positions=1024, n_layer=12, n_embd=768, n_head=12,
                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    model_dir = tmp / "gpt2-117m"
    GPT2LMHeadModel(cfg).save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    ds = _dataset_dir(tmp, n_sessions)
    res = train(TrainConfig(output_dir=str(tmp / "run117m"), dataset=str(ds), eval_split=None,
                            model_name_or_path=str(model_dir), max_seq_length=128, train_batch_size=8,
                            gradient_accumulation_steps=2, learning_rate=1e-5, lr_schedule="noam", warmup_steps=16000,
                            num_optim_steps=steps, logging_steps=1, eval_steps=0, save_steps=0, pbar=False, cpu=True))
    return {"parameters": res.num_parameters, "optimizer_steps": steps, "micro_batch": 4, "accumulation": 2,
            "max_seq_length": 128, "tokens_per_sec": round(res.tokens_per_sec, 1),
            "seconds_per_optimizer_step": round(res.train_runtime / steps, 3),
            "padding_efficiency": round(res.padding_efficiency, 4), "device": "cpu",
            "torch_threads": torch.get_num_threads()}


def bench_packing(tokenizer, n_sessions: int, rows: int, max_seq_length: int) -> dict:
    import datasets

    from dialogpt.train.data import LengthBucketBatchSampler, padding_efficiency, tokenize_sessions
    from dialogpt.train.packing import PackedBatchSampler, real_token_fraction

    tok, _ = tokenize_sessions(datasets.Dataset.from_list(_sessions(n_sessions, seed=1)), tokenizer, max_seq_length)
    lengths = tok["length"]
    packed = real_token_fraction(lengths, PackedBatchSampler(lengths, rows, max_seq_length).batches(),
                                 max_seq_length, rows)
    per_batch = max(1, round(rows * max_seq_length / (sum(lengths) / len(lengths))))
    bucketed = padding_efficiency(lengths, list(LengthBucketBatchSampler(lengths, per_batch, bucket_batches=100)))
    return {"sessions": len(lengths), "rows_per_batch": rows, "max_seq_length": max_seq_length,
            "bucketed_batch_size_same_tokens": per_batch, "packed_real_token_fraction": round(packed, 4),
            "bucketed_real_token_fraction": round(bucketed, 4),
            "note": "packed: fixed rows x max_seq_length (the epoch's last batch topped up with empty rows)"}


def _steady_tokens_per_sec(log_path: Path, warmup: int) -> float:
    rows = [ln.split(",") for ln in log_path.read_text().splitlines()[1:]]
    first, last = rows[warmup - 1], rows[-1]  # n_token_real (7) and epoch_time (12) are cumulative
    return (int(last[7]) - int(first[7])) / max(float(last[12]) - float(first[12]), 1e-9)


def bench_throughput_levers(tmp: Path, tokenizer_dir: Path, *, steps: int, warmup: int, n_sessions: int) -> dict:
    import torch
    from transformers import GPT2Config

    from dialogpt.train.config import TrainConfig
    from dialogpt.train.loop import train

    torch.set_num_threads(1)  # two spin-waiting OpenMP threads on a shared 2-core box made steps ~10x slower
    ds = _dataset_dir(tmp, n_sessions)
    path = tmp / "levers_config.json"
    GPT2Config(n_layer=4, n_embd=256, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0).to_json_file(str(path))
    out = {"model": "4 layers x 256", "optimizer_steps": steps, "warmup_steps_excluded": warmup,
           "torch_threads": 1, "accumulation": 2, "runs": {}}
    # about the same tokens per micro-batch: 8 sessions (~53 tokens) padded vs 4 packed rows of 128
    for packing, compiled in ((False, False), (True, False), (True, True), (False, True)):
        name = f"{'packed' if packing else 'bucketed'}_{'compiled' if compiled else 'eager'}"
        run_dir = tmp / name
        t0, c0 = time.perf_counter(), time.process_time()
        res = train(TrainConfig(output_dir=str(run_dir), dataset=str(ds), eval_split=None, model_config=str(path),
                                tokenizer_name=str(tokenizer_dir), max_seq_length=128,
                                train_batch_size=8 if packing else 16, gradient_accumulation_steps=2,
                                packing=packing, torch_compile=compiled, learning_rate=1e-4, lr_schedule="noam",
                                warmup_steps=10, num_optim_steps=steps, logging_steps=1, eval_steps=0, save_steps=0,
                                pbar=False, seed=3, cpu=True, dropout=0.0))
        out["runs"][name] = {
            "steady_tokens_per_sec": round(_steady_tokens_per_sec(run_dir / "train_log.txt", warmup), 1),
            "total_wall_s": round(time.perf_counter() - t0, 1), "total_cpu_s": round(time.process_time() - c0, 1),
            "real_token_fraction": round(res.padding_efficiency, 4), "final_loss": round(res.train_loss, 4)}
    r = out["runs"]
    out["packed_over_bucketed_eager"] = round(r["packed_eager"]["steady_tokens_per_sec"]
                                              / r["bucketed_eager"]["steady_tokens_per_sec"], 3)
    for b in ("packed", "bucketed"):
        out[f"compiled_over_eager_{b}"] = round(r[f"{b}_compiled"]["steady_tokens_per_sec"]
                                                / r[f"{b}_eager"]["steady_tokens_per_sec"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    ap.add_argument("--output", help="also write the JSON here")
    ap.add_argument("--sections", help="comma-separated subset: padding,loop_overhead,gpt2_117m_cpu,packing,"
                                       "throughput_levers (default: all)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    import logging

    logging.getLogger("accelerate").setLevel(logging.ERROR)
    import contextlib
    import io

    quick = args.quick
    result: dict = {
        "benchmark": "train", "quick": quick, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if not torch.cuda.is_available():
        result["gpu_note"] = "no GPU in this environment: fp16 tokens/s and MFU were not measured"
    with tempfile.TemporaryDirectory(prefix="bench-train-") as t:
        tmp = Path(t)
        tok = _tokenizer(tmp)
        with contextlib.redirect_stdout(io.StringIO()):  # keep stdout pure JSON
            want = set(args.sections.split(",")) if args.sections else None
            if want is None or "padding" in want:
                result["padding"] = bench_padding(tok, 500 if quick else 20000, 16, 128)
            if want is None or "loop_overhead" in want:
                result["loop_overhead"] = bench_loop(tmp, tmp / "tok", tok, model_config="tiny" if quick else "bench",
                                                     steps=4 if quick else 30, repeats=1 if quick else 3,
                                                     n_sessions=200 if quick else 2000)
            if not quick and (want is None or "gpt2_117m_cpu" in want):
                result["gpt2_117m_cpu"] = bench_117m(tmp, tok, steps=4, n_sessions=200)
            if want is None or "packing" in want:
                result["packing"] = bench_packing(tok, 2000 if quick else 20000, 4 if quick else 16, 128)
            if not quick and (want is None or "throughput_levers" in want):
                result["throughput_levers"] = bench_throughput_levers(tmp, tmp / "tok", steps=24, warmup=4,
                                                                      n_sessions=2000)
    return emit(result, args.output)


if __name__ == "__main__":
    sys.exit(main())
