"""User-facing guards of the training script: each bad input is one line naming it, before any work;
--report_to tensorboard really writes events; --resume_from_checkpoint PATH continues exactly and
refuses a checkpoint of another model shape; launcher settings cannot silently override the flags."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
from train_helpers import base_config, read_csv_log, write_parquet_dataset

from dialogpt.cli.train import main
from dialogpt.train.checkpointing import list_checkpoints, sync_accelerate_config
from dialogpt.train.config import TrainingError
from dialogpt.train.loop import train


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_parquet_dataset(tmp_path_factory.mktemp("guard_ds"), n_train=16, n_valid=4)


def _one_line_error(capsys, rc, message):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_missing_dataset_or_model_is_one_line_naming_the_flag(tmp_path, ds, tokenizer_dir, capsys, monkeypatch):
    out = tmp_path / "run"
    base = ["--output_dir", str(out), "--max_seq_length", "64", "--no-pbar"]
    rc = main(["--dataset", str(tmp_path / "no_such_dataset"), "--model_config", "tiny",
               "--tokenizer_name", str(tokenizer_dir), *base])
    _one_line_error(capsys, rc, f"--dataset {tmp_path / 'no_such_dataset'}")
    # the tokenizer defaults to the model path: the error names the flag the user gave
    rc = main(["--dataset", str(ds), "--model_name_or_path", str(tmp_path / "no_model"), *base])
    err = _one_line_error(capsys, rc, f"--model_name_or_path {tmp_path / 'no_model'}")
    assert "--tokenizer_name" not in err
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    rc = main(["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
               "--init_checkpoint", str(empty), *base])
    _one_line_error(capsys, rc, "empty.pkl: not a readable state dict")
    # an unreachable hub (any exception type from load_dataset) is still one line
    import datasets

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'org/data' on the Hub (OfflineModeIsEnabled)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    rc = main(["--dataset", "org/data", "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir), *base])
    _one_line_error(capsys, rc, "--dataset org/data: cannot load it as a dataset (ConnectionError: Couldn't reach")
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_report_to_an_uninstalled_tracker_is_an_error_not_a_silent_no_op(tmp_path, ds, tokenizer_dir, capsys):
    rc = main(["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
               "--output_dir", str(tmp_path / "run"), "--report_to", "wandb", "--no-pbar"])
    _one_line_error(capsys, rc, "--report_to wandb: the wandb package is not installed")


def test_launcher_accumulation_that_differs_from_the_flag_stops_the_run(tmp_path, ds, tokenizer_dir, monkeypatch):
    # what `accelerate launch` exports from a DeepSpeed config's gradient_accumulation_steps
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")
    with pytest.raises(TrainingError, match="sets gradient accumulation to 4 but --gradient_accumulation_steps is 2"):
        train(base_config(tmp_path, ds, tokenizer_dir))
    assert not (tmp_path / "run" / "train_log.txt").exists()
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "2")  # equal: fine
    assert train(base_config(tmp_path, ds, tokenizer_dir, num_optim_steps=1)).global_step == 1


def test_deepspeed_clipping_and_accumulation_follow_the_flags():
    cfg = SimpleNamespace(gradient_accumulation_steps=2, max_grad_norm=0.5, micro_batch_size=4)

    def acc(ds_config):
        plugin = SimpleNamespace(deepspeed_config=ds_config)
        return SimpleNamespace(gradient_accumulation_steps=2, state=SimpleNamespace(deepspeed_plugin=plugin))

    # accelerate's own plugin, as built from deepspeed_zero2.yaml (no DeepSpeed json; deepspeed not needed)
    from accelerate.utils import DeepSpeedPlugin

    plugin = DeepSpeedPlugin(zero_stage=2)
    assert plugin.is_auto("gradient_clipping") and plugin.is_auto("train_micro_batch_size_per_gpu")
    sync_accelerate_config(SimpleNamespace(gradient_accumulation_steps=2, state=SimpleNamespace(deepspeed_plugin=plugin)),
                           cfg)
    assert plugin.get_value("gradient_clipping") == 0.5   # not accelerate's fill-in 1.0
    # else prepare() fails: our batch_sampler loaders have batch_size None, which cannot fill "auto"
    assert plugin.get_value("train_micro_batch_size_per_gpu") == 4
    with pytest.raises(TrainingError, match="train_micro_batch_size_per_gpu 16 differs"):
        sync_accelerate_config(acc({"train_micro_batch_size_per_gpu": 16}), cfg)
    with pytest.raises(TrainingError, match="gradient_clipping 1.0 differs from --max_grad_norm 0.5"):
        sync_accelerate_config(acc({"gradient_clipping": 1.0}), cfg)
    with pytest.raises(TrainingError, match="gradient_accumulation_steps 8 differs"):
        sync_accelerate_config(acc({"gradient_accumulation_steps": 8}), cfg)
    with pytest.raises(TrainingError, match="gradient_clipping must be a number or auto, got 'one'"):
        sync_accelerate_config(acc({"gradient_clipping": "one"}), cfg)
    sync_accelerate_config(acc({"gradient_accumulation_steps": 2, "gradient_clipping": 0.5}), cfg)


def test_tensorboard_events_resume_from_a_path_and_a_checkpoint_of_another_shape(tmp_path, ds, tokenizer_dir):
    pytest.importorskip("tensorboard")
    from transformers import GPT2Config

    common = dict(num_optim_steps=4, save_steps=2, lr_schedule="noam", warmup_steps=2, learning_rate=1e-4)
    full = train(base_config(tmp_path, ds, tokenizer_dir, report_to="tensorboard", **common))
    out = tmp_path / "run"
    events = list((out / "runs").rglob("events.out.tfevents.*"))
    assert events and any(b"train/loss" in e.read_bytes() for e in events)
    assert any(b"eval/loss" in e.read_bytes() for e in events)

    # an explicit checkpoint folder (not the latest one) continues exactly
    step2 = out / "checkpoints" / "step-000002"
    resumed = train(base_config(tmp_path, ds, tokenizer_dir, resume_from_checkpoint=str(step2), **common))
    assert resumed.loss_history == full.loss_history[2:]
    assert [int(r["global_step"]) for r in read_csv_log(out / "train_log.txt")] == [1, 2, 3, 4]

    # a checkpoint of another shape: one line before any data work (the logs are untouched)
    other = tmp_path / "other.json"
    GPT2Config(vocab_size=10, n_layer=1, n_embd=32, n_head=2, n_positions=128, bos_token_id=0, eos_token_id=0).to_json_file(str(other))
    log_before = (out / "train_log.txt").read_text()
    with pytest.raises(TrainingError, match=r"saved from another model shape than --model_config .*other.json"):
        train(base_config(tmp_path, ds, tokenizer_dir, model_config=str(other), resume_from_checkpoint=str(step2),
                          **common))
    assert (out / "train_log.txt").read_text() == log_before


def test_a_fresh_run_never_mixes_with_an_old_run_in_its_output_dir(tmp_path, ds, tokenizer_dir, capsys):
    out = tmp_path / "run"
    train(base_config(tmp_path, ds, tokenizer_dir, num_optim_steps=3, save_steps=1))
    capsys.readouterr()  # that run's output (e.g. a first-time "Generating train split" bar) is not the CLI's
    # again without a choice: refused before any work, naming what is there and the ways out
    argv = ["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
            "--output_dir", str(out), "--max_seq_length", "64", "--no-pbar", "--num_optim_steps", "1",
            "--save_steps", "1", "--save_total_limit", "1"]
    err = _one_line_error(capsys, main(argv), "already holds a run (checkpoints up to step-000003)")
    assert "--resume_from_checkpoint latest" in err and "--overwrite_output_dir" in err
    # --overwrite_output_dir: old step-000003 must not outlive (save_total_limit) or outrank (latest) the new one
    assert main(argv + ["--overwrite_output_dir"]) == 0
    assert [p.name for p in list_checkpoints(out)] == ["step-000001"]
    assert [int(r["global_step"]) for r in read_csv_log(out / "train_log.txt")] == [1]
    assert [int(r["global_step"]) for r in read_csv_log(out / "eval_log.txt")] == [1]
    # `auto` that finds no checkpoint restarts a job killed before its first one: its log starts over
    out2 = tmp_path / "killed"
    out2.mkdir()
    (out2 / "train_log.txt").write_text("epoch,global_step\n1,1\n1,2\n")
    train(base_config(tmp_path / "k", ds, tokenizer_dir, output_dir=str(out2), num_optim_steps=1,
                      resume_from_checkpoint="auto"))
    assert [int(r["global_step"]) for r in read_csv_log(out2 / "train_log.txt")] == [1]


def test_tiny_configs_keep_their_special_ids_inside_the_vocabulary():
    """GPT2Config's default ids (50256) are outside a 1,000-token vocabulary: transformers would warn."""
    import subprocess
    import sys

    code = ("from dialogpt.train.model import build_model_config as b\n"
            "c = b('tiny', 1000, eos_token_id=0); print(c.bos_token_id, c.eos_token_id, c.pad_token_id)\n"
            "c = b('tiny', 1000); print(c.bos_token_id, c.eos_token_id)\n"
            "c = b('small', 50257); print(c.bos_token_id, c.eos_token_id)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.split("\n")[:3] == ["0 0 0", "None None", "50256 50256"]
    assert "within the vocabulary" not in out.stderr
