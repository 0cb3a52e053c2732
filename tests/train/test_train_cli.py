"""The CLI: YAML config + flag overrides, the seed's flag spellings, legacy TSV input, and bad input
rejected with one line (no traceback) before any work starts."""

from __future__ import annotations

import pytest
import yaml
from train_helpers import make_sessions, write_parquet_dataset

from dialogpt.cli.train import config_from_args, main
from dialogpt.train.config import TrainConfig, TrainingError


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return write_parquet_dataset(tmp_path_factory.mktemp("cli_ds"), n_train=16, n_valid=4)


def _argv(ds, tokenizer_dir, out, *extra):
    return ["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
            "--output_dir", str(out), "--max_seq_length", "64", "--no-pbar", *extra]


def test_yaml_config_with_flag_overrides(tmp_path):
    y = tmp_path / "run.yaml"
    y.write_text(yaml.safe_dump({"dataset": "d", "model_config": "small", "tokenizer_name": "gpt2",
                                 "learning_rate": 5e-5, "num_optim_steps": 100, "lr_schedule": "BERT"}))
    cfg = config_from_args(["--config", str(y), "--num_optim_steps", "7", "--valid_step", "3", "--fp16", "true"])
    assert (cfg.learning_rate, cfg.num_optim_steps, cfg.lr_schedule) == (5e-5, 7, "BERT")  # flag beats YAML
    assert cfg.eval_steps == 3 and cfg.mixed_precision == "fp16"                              # seed spellings
    assert cfg.train_batch_size == 4 and cfg.gradient_accumulation_steps == 2                  # seed defaults
    y.write_text(yaml.safe_dump({"dataset": "d", "lerning_rate": 1}))
    with pytest.raises(TrainingError, match="unknown keys lerning_rate"):
        config_from_args(["--config", str(y)])


@pytest.mark.parametrize("extra, message", [
    (["--lr_schedule", "cosine"], "--lr_schedule 'cosine' is not one of noam, noamwd, BERT, None"),
    (["--model_name_or_path", "x"], "--model_name_or_path and --model_config clash"),
    (["--train_batch_size", "5"], "not divisible by --gradient_accumulation_steps"),
    (["--max_seq_length", "512"], "--max_seq_length 512 > the model's n_positions 256"),
    (["--continue_from", "3", "--resume_from_checkpoint", "latest"], "clash"),
    (["--resume_from_checkpoint", "latest"], "no step-NNNNNN checkpoint"),
    (["--push_to_hub"], "--push_to_hub needs --hub_model_id"),
    (["--overwrite_output_dir", "--resume_from_checkpoint", "latest"], "--overwrite_output_dir and --resume"),
    (["--num_epochs", "0"], "--num_epochs must be >= 1"),             # would save an untrained model
    (["--dataloader_num_workers", "-1"], "--dataloader_num_workers must be >= 0"),
    (["--max_eval_examples", "0"], "--max_eval_examples must be >= 1"),
    (["--bucket_batches", "0"], "--bucket_batches must be >= 1"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, ds, tokenizer_dir, capsys, extra, message):
    out = tmp_path / "run"
    argv = _argv(ds, tokenizer_dir, out, *extra)
    if "--max_seq_length" in extra:
        argv = [a for i, a in enumerate(argv) if not (a == "--max_seq_length" or argv[i - 1] == "--max_seq_length")
                or i >= len(argv) - len(extra)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (out / "train_log.txt").exists()


def test_empty_dataset_is_rejected(tmp_path, tokenizer_dir, capsys):
    import datasets

    d = tmp_path / "empty"
    d.mkdir()
    datasets.Dataset.from_dict({"turns": []}, features=datasets.Features(
        {"turns": [{"text": datasets.Value("string"), "weight": datasets.Value("float32")}]})).to_parquet(
        str(d / "train.parquet"))
    assert main(_argv(d, tokenizer_dir, tmp_path / "run")) == 2
    assert "empty" in capsys.readouterr().err


def test_legacy_train_tsv_trains(tmp_path, tokenizer_dir):
    from dialogpt.legacy_tsv import write_train_tsv

    tsv = tmp_path / "train.tsv"
    write_train_tsv(tsv, [[(t["text"], t["weight"]) for t in s["turns"]] for s in make_sessions(24, seed=3)])
    out = tmp_path / "run"
    rc = main(["--train_input_file", str(tsv), "--eval_input_file", str(tsv), "--model_config", "tiny",
               "--tokenizer_name", str(tokenizer_dir), "--output_dir", str(out), "--num_optim_steps", "2",
               "--max_seq_length", "64", "--lr_schedule", "None", "--no-pbar"])
    assert rc == 0
    assert (out / "model.safetensors").exists() and (out / "eval_log.txt").read_text().count("\n") == 2


def test_config_dataclass_checks_itself():
    with pytest.raises(TrainingError, match="exactly one of --dataset and --train_file"):
        TrainConfig(model_config="tiny", tokenizer_name="t")
    with pytest.raises(TrainingError, match="needs --tokenizer_name"):
        TrainConfig(dataset="d", model_config="tiny")


@pytest.mark.parametrize("name, layers, width, params", [
    ("small", 12, 768, 124_439_808),     # the paper's "117M" (GPT-2 small, tied embeddings)
    ("medium", 24, 1024, 354_823_168),   # "345M"
    ("large", 36, 1280, 774_030_080),    # "762M"
])
def test_model_config_sizes_are_the_gpt2_shapes(name, layers, width, params):
    import torch
    from transformers import GPT2LMHeadModel

    from dialogpt.train.model import build_model_config

    cfg = build_model_config(name, vocab_size=50257, eos_token_id=50256)
    assert (cfg.n_layer, cfg.n_embd, cfg.n_positions, cfg.vocab_size) == (layers, width, 1024, 50257)
    with torch.device("meta"):  # shapes only, no memory
        model = GPT2LMHeadModel(cfg)
    assert sum(p.numel() for p in model.parameters()) == params


def test_unknown_model_config_is_one_line(tmp_path, ds, tokenizer_dir, capsys):
    argv = [a if a != "tiny" else "huge" for a in _argv(ds, tokenizer_dir, tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--model_config 'huge' is not one of tiny, small, medium, large" in err and err.count("\n") == 1
