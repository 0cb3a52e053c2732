"""End-to-end runs of the training loop on a tiny GPT-2 (CPU, a few dozen steps)."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from train_helpers import Killed, base_config, kill_at, read_csv_log, write_parquet_dataset

from dialogpt.chat_format import CHAT_TEMPLATE
from dialogpt.train.checkpointing import list_checkpoints
from dialogpt.train.loop import train


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return write_parquet_dataset(tmp_path_factory.mktemp("dialog_ds"))


def test_loss_falls_and_the_run_folder_is_complete(tmp_path, dataset_dir, tokenizer_dir, capsys):
    cfg = base_config(tmp_path, dataset_dir, tokenizer_dir, num_optim_steps=30, eval_steps=15, save_steps=10,
                      save_total_limit=2)
    res = train(cfg)
    out = tmp_path / "run"
    rows = read_csv_log(out / "train_log.txt")
    assert [int(r["global_step"]) for r in rows] == list(range(1, 31))
    losses = [float(r["loss"]) for r in rows]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0, losses
    assert res.loss_history == pytest.approx(losses, abs=1e-5)
    # seed columns present, tokens/s and padding efficiency reported
    assert {"epoch", "global_step", "step", "loss", "ppl", "mean_loss", "n_token_real", "n_token_total",
            "tokens_per_sec", "lr"} <= set(rows[0])
    assert float(rows[-1]["padding_efficiency"]) > 0.9 and float(rows[-1]["tokens_per_sec"]) > 0
    assert int(rows[1]["step"]) == 4  # micro-steps: 2 per optimizer step
    evals = read_csv_log(out / "eval_log.txt")
    assert [int(e["global_step"]) for e in evals] == [15, 30]
    assert float(evals[-1]["eval_loss"]) < float(evals[0]["eval_loss"])
    assert res.eval_loss == pytest.approx(float(evals[-1]["eval_loss"]), abs=1e-5)
    # checkpoints: atomic names only, newest 2 kept
    assert [p.name for p in list_checkpoints(out)] == ["step-000020", "step-000030"]
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert json.loads((out / "checkpoints/step-000030/trainer_state.json").read_text())["global_step"] == 30
    # final folder: model, tokenizer with the chat template, generation config, card, hyperparameters
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(str(out))
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.chat_template == CHAT_TEMPLATE
    gen = GenerationConfig.from_pretrained(str(out))
    assert gen.eos_token_id == tok.eos_token_id and gen.pad_token_id == tok.pad_token_id and gen.max_new_tokens
    assert model.config.n_layer == 2 and model.config.n_embd == 64
    hp = yaml.safe_load((out / "hyperparameters.yaml").read_text())
    assert hp["num_optim_steps"] == 30 and hp["num_processes"] == 1
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and f"{round(res.eval_loss, 4)}" in card
    # the card's "how to chat" snippet runs as written against the saved folder
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0].replace(f'"{out.name}"', repr(str(out)))
    exec(compile(snippet, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "***** Running training *****" in printed and "processes (world size)       = 1" in printed
    assert "tok/s" in printed and "padding eff" in printed


def test_killed_run_resumes_with_the_same_loss_sequence(tmp_path, dataset_dir, tokenizer_dir):
    """Dropout on, an epoch boundary crossed (12 steps per epoch), killed 2 steps after a checkpoint."""
    common = dict(num_optim_steps=16, save_steps=5, lr_schedule="noam", warmup_steps=3, learning_rate=1e-4)
    full = train(base_config(tmp_path / "a", dataset_dir, tokenizer_dir, **common))

    cfg = base_config(tmp_path / "b", dataset_dir, tokenizer_dir, **common)
    with pytest.raises(Killed):
        train(cfg, step_callback=kill_at(7))
    out = tmp_path / "b" / "run"
    assert [p.name for p in list_checkpoints(out)] == ["step-000005"]
    resumed = train(base_config(tmp_path / "b", dataset_dir, tokenizer_dir, resume_from_checkpoint="latest", **common))
    assert resumed.global_step == 16
    assert resumed.loss_history == full.loss_history[5:]       # bit-identical continuation
    rows = read_csv_log(out / "train_log.txt")                  # steps 6-7 of the killed run were dropped
    assert [int(r["global_step"]) for r in rows] == list(range(1, 17))
    assert [float(r["loss"]) for r in rows] == pytest.approx(full.loss_history, abs=2e-6)
    assert [float(r["lr"]) for r in rows] == [float(r["lr"]) for r in read_csv_log(tmp_path / "a/run/train_log.txt")]


def test_bf16_mixed_precision_runs_on_cpu(tmp_path, dataset_dir, tokenizer_dir, capsys):
    res = train(base_config(tmp_path, dataset_dir, tokenizer_dir, mixed_precision="bf16", num_optim_steps=4, cpu=True))
    assert res.global_step == 4 and all(math.isfinite(x) for x in res.loss_history)
    assert "mixed precision bf16" in capsys.readouterr().out


def test_reverse_trains_the_mmi_direction(tmp_path, dataset_dir, tokenizer_dir):
    res = train(base_config(tmp_path, dataset_dir, tokenizer_dir, reverse=True, num_optim_steps=3))
    assert res.global_step == 3
    card = (tmp_path / "run" / "README.md").read_text()
    assert "reverse / MMI model" in card and "reverse-model" in card
    assert yaml.safe_load((tmp_path / "run" / "hyperparameters.yaml").read_text())["reverse"] is True


def test_continue_from_keeps_the_seed_meaning(tmp_path, dataset_dir, tokenizer_dir):
    from dialogpt.train.schedules import lr_lambda

    res = train(base_config(tmp_path, dataset_dir, tokenizer_dir, continue_from=10, num_optim_steps=12,
                            lr_schedule="noam", warmup_steps=4, learning_rate=1e-4))
    rows = read_csv_log(tmp_path / "run" / "train_log.txt")
    assert res.global_step == 12 and [int(r["global_step"]) for r in rows] == [11, 12]
    f = lr_lambda("noam", warmup_steps=4, warmup_proportion=0.1, n_embd=64, num_optim_steps=12)
    assert float(rows[0]["lr"]) == pytest.approx(1e-4 * f(10), rel=1e-5)
    assert int(rows[0]["step"]) == 2 * 10 - 1 + 2  # the seed's step = 2N - 1, then two micro-steps


def test_resume_from_a_checkpoint_taken_on_the_last_batch_of_an_epoch(tmp_path, tokenizer_dir):
    """16 sessions / micro-batch 4 / accumulation 2 = 2 steps per epoch: step-000002 ends epoch 1 exactly."""
    ds = write_parquet_dataset(tmp_path / "ds", n_train=16, n_valid=4)
    common = dict(num_optim_steps=6, save_steps=2, lr_schedule="None", learning_rate=1e-3, max_seq_length=256)
    full = train(base_config(tmp_path / "a", ds, tokenizer_dir, **common))

    with pytest.raises(Killed):
        train(base_config(tmp_path / "b", ds, tokenizer_dir, **common), step_callback=kill_at(3))
    resumed = train(base_config(tmp_path / "b", ds, tokenizer_dir, resume_from_checkpoint="latest", **common))
    assert resumed.loss_history == full.loss_history[2:] and resumed.epoch == full.epoch
    rows = read_csv_log(tmp_path / "b" / "run" / "train_log.txt")
    assert [int(r["epoch"]) for r in rows] == [1, 1, 2, 2, 3, 3]
