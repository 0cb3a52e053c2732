"""--torch_compile (and --packing) through the real training loop on CPU: same losses as eager, model saved plainly."""

from __future__ import annotations

import pytest
from train_helpers import base_config, read_csv_log, write_parquet_dataset

from dialogpt.train.config import TrainingError
from dialogpt.train.loop import train


@pytest.mark.slow
def test_compiled_packed_run_matches_eager(tmp_path, tokenizer_dir):
    """inductor (it compiles on this CPU; first compile ~30 s to 2 min on 2 busy cores): 4 steps, equal losses."""
    import torch._dynamo.utils
    from transformers import AutoModelForCausalLM

    ds = write_parquet_dataset(tmp_path / "ds", n_train=64, n_valid=8)
    shared = dict(num_optim_steps=4, dropout=0.0, packing=True, max_seq_length=128)
    eager = train(base_config(tmp_path / "eager", ds, tokenizer_dir, **shared))
    torch._dynamo.utils.counters.clear()
    compiled = train(base_config(tmp_path / "compiled", ds, tokenizer_dir, torch_compile=True, **shared))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # really compiled
    assert compiled.loss_history == pytest.approx(eager.loss_history, rel=1e-4)
    assert compiled.eval_loss == pytest.approx(eager.eval_loss, rel=1e-4)
    assert compiled.loss_history[-1] < compiled.loss_history[0]
    # in-place block compilation leaves the saved names alone: the folder loads as a plain GPT-2
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "compiled" / "run")
    assert not any("_orig_mod" in k for k in model.state_dict())
    # the logs carry the same losses (printed to 6 decimals: inductor's fused kernels may move the last digit)
    assert [float(r["loss"]) for r in read_csv_log(tmp_path / "compiled" / "run" / "train_log.txt")] == \
        pytest.approx([float(r["loss"]) for r in read_csv_log(tmp_path / "eager" / "run" / "train_log.txt")], abs=2e-6)


def test_unknown_compile_backend_is_one_line(tmp_path, tokenizer_dir):
    ds = write_parquet_dataset(tmp_path / "ds", n_train=8, n_valid=0)
    with pytest.raises(TrainingError, match="--torch_compile_backend 'nope' is not one of .*inductor"):
        train(base_config(tmp_path, ds, tokenizer_dir, torch_compile=True, torch_compile_backend="nope",
                          eval_split=None))


@pytest.mark.slow
def test_gradient_checkpointing_with_packing_trains_the_same_and_logs_mfu(tmp_path, tokenizer_dir, capsys):
    """Recomputing activations changes memory, not maths; with --peak_tflops the step lines carry MFU."""
    ds = write_parquet_dataset(tmp_path / "ds", n_train=32, n_valid=4)
    shared = dict(num_optim_steps=3, dropout=0.0, packing=True, max_seq_length=128, eval_split=None)
    plain = train(base_config(tmp_path / "plain", ds, tokenizer_dir, **shared))
    capsys.readouterr()
    ckpt = train(base_config(tmp_path / "ckpt", ds, tokenizer_dir, gradient_checkpointing=True, peak_tflops=0.001,
                             **shared))
    out = capsys.readouterr().out
    assert ckpt.loss_history == pytest.approx(plain.loss_history, rel=1e-5)
    assert "MFU against 0.001 TFLOPS per device" in out
    assert out.count(", MFU ") == 3  # one per step line (logging_steps 1)


def test_gradient_checkpointing_flag_reaches_the_model(tokenizer):
    from dialogpt.train.config import TrainConfig
    from dialogpt.train.model import load_model

    base = dict(dataset="d", model_config="tiny", tokenizer_name="t", cpu=True)
    assert load_model(TrainConfig(**base, gradient_checkpointing=True), tokenizer).is_activation_checkpointing
    assert not load_model(TrainConfig(**base), tokenizer).is_activation_checkpointing
