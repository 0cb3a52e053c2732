"""Two CPU processes (gloo DDP via ``accelerate launch --multi_gpu``) == one process with doubled accumulation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from train_helpers import base_config, read_csv_log, write_parquet_dataset

from dialogpt.train.loop import train

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_double_accumulation(tmp_path, tokenizer_dir):
    from safetensors.torch import load_file

    ds = write_parquet_dataset(tmp_path / "ds", n_train=64, n_valid=8)
    # dropout off: the two runs draw dropout masks in a different order, everything else is equal
    # noam peaks at lr * 1e4 * 64**-0.5 * 3**-0.5 = 1.4e-3 here: checks it steps once per optimizer step
    shared = dict(num_optim_steps=6, dropout=0.0, lr_schedule="noam", warmup_steps=3, learning_rate=2e-6,
                  eval_steps=0, seed=7)
    ddp_out = tmp_path / "ddp"
    argv = ["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
            "--output_dir", str(ddp_out), "--max_seq_length", "64", "--train_batch_size", "4",
            "--gradient_accumulation_steps", "1", "--logging_steps", "1", "--save_steps", "0", "--no-pbar"]
    for k, v in shared.items():
        argv += [f"--{k}", str(v)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run(
        [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--main_process_port", str(_free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
         str(REPO / "scripts" / "run_clm_dialog.py"), *argv],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # really two processes (``--cpu --num_processes 2`` would silently run one)
    assert "processes (world size)       = 2" in proc.stdout, proc.stdout[-2000:]
    assert yaml.safe_load((ddp_out / "hyperparameters.yaml").read_text())["num_processes"] == 2
    assert proc.stdout.count("done: 6 steps") == 1

    single = train(base_config(tmp_path / "one", ds, tokenizer_dir, train_batch_size=8, gradient_accumulation_steps=2,
                               save_steps=0, **shared))
    assert single.num_processes == 1
    # same examples per optimizer step (2 x 4 = 4 x 2), same losses and same weights after 6 steps
    ddp_rows = read_csv_log(ddp_out / "train_log.txt")
    one_rows = read_csv_log(tmp_path / "one" / "run" / "train_log.txt")
    assert [float(r["lr"]) for r in ddp_rows] == [float(r["lr"]) for r in one_rows]  # not stepped twice per step
    assert [float(r["loss"]) for r in ddp_rows] == pytest.approx(single.loss_history, abs=1e-4)
    assert [int(r["n_token_real"]) for r in ddp_rows] == [int(r["n_token_real"]) for r in one_rows]
    a = load_file(str(ddp_out / "model.safetensors"))
    b = load_file(str(tmp_path / "one" / "run" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max().item() < 1e-5, k
    assert single.loss_history[-1] < single.loss_history[0]


_SHARD_SCRIPT = '''
import json, sys
import torch
from dialogpt.train.config import TrainConfig
from dialogpt.train.data import build_loaders
from dialogpt.train.sources import load_training_data
from dialogpt.train.launch import accelerator_kwargs, make_accelerator
from dialogpt.train.model import load_tokenizer

dataset, tokenizer_dir, out = sys.argv[1:4]
report = {}
for mode in ("bucketed", "packed"):
    cfg = TrainConfig(dataset=dataset, model_config="tiny", tokenizer_name=tokenizer_dir, output_dir=out,
                      eval_split=None, max_seq_length=128, train_batch_size=4, gradient_accumulation_steps=1,
                      packing=mode == "packed", seed=5)
    acc = make_accelerator(**accelerator_kwargs(cfg))
    tok = load_tokenizer(cfg)
    train_tok = load_training_data(cfg, acc, tok).train
    train_dl, _, sampler = build_loaders(cfg, tok, train_tok, None)
    train_dl = acc.prepare(train_dl)
    train_dl.set_epoch(0)
    sampler.set_epoch(0)
    batches = []
    for batch in train_dl:  # each session of the batch as its ids: padded rows, or packed segments
        ids = batch["input_ids"].tolist()
        if "real_tokens" in batch:
            flat = batch["input_ids"][batch["real_tokens"]].tolist()
            starts = (batch["position_ids"][batch["real_tokens"]] == 0).nonzero().flatten().tolist() + [len(flat)]
            batches.append([flat[a:b] for a, b in zip(starts, starts[1:])])
        else:
            mask = batch["attention_mask"].bool().tolist()
            batches.append([[t for t, m in zip(r, k) if m] for r, k in zip(ids, mask)])
    report[mode] = {"rank": acc.process_index, "world": acc.num_processes, "batches": batches,
                    "n_batches": len(sampler), "all": list(train_tok["input_ids"])}
    acc.wait_for_everyone()
json.dump(report, open(f"{out}/rank{acc.process_index}.json", "w"))
'''


@pytest.mark.slow
def test_two_process_loaders_shard_the_data_disjointly_and_completely(tmp_path, tokenizer_dir):
    """Each rank sees its own batches (bucketed and packed); together they are every session once, except
    the batch Accelerate repeats (``even_batches``) to give both ranks a last batch when the count is odd."""
    from collections import Counter

    ds = write_parquet_dataset(tmp_path / "ds", n_train=61, n_valid=4)
    script = tmp_path / "shard.py"
    script.write_text(_SHARD_SCRIPT)
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run(
        [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--main_process_port", str(_free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
         str(script), str(ds), str(tokenizer_dir), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for mode in ("bucketed", "packed"):
        r0, r1 = reports[0][mode], reports[1][mode]
        assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
        everything = Counter(tuple(s) for s in r0["all"])
        seen = [Counter(tuple(s) for b in r["batches"] for s in b) for r in (r0, r1)]
        n = r0["n_batches"]
        assert len(r0["batches"]) == len(r1["batches"]) == (n + 1) // 2  # equal step counts on both ranks
        repeated = Counter(tuple(s) for s in r0["batches"][0]) if n % 2 else Counter()
        assert seen[0] + seen[1] == everything + repeated, mode  # together: all of it (plus the repeat)
        assert (seen[0] & seen[1]) == repeated, mode  # apart: nothing in common but the repeat
        assert seen[0] and seen[1]
