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
