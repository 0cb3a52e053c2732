"""train/launch.py without launching: the launch config's precision vs --mixed_precision, when a process
asks Accelerate for CPU, and fp16 on CPU refused (the launch tests in test_train_accelerate_configs.py
run the same code under accelerate launch)."""

from __future__ import annotations

import pytest

from dialogpt.train.config import TrainingError
from dialogpt.train.launch import launched_without_device, make_accelerator, resolve_mixed_precision


@pytest.mark.parametrize("launched,flag,want", [(None, "no", "no"), ("fp16", "no", "fp16"), ("no", "bf16", "bf16"),
                                                ("bf16", "bf16", "bf16"), (None, "fp16", "fp16")])
def test_the_launch_configs_precision_wins_over_the_flag_default(monkeypatch, launched, flag, want):
    if launched is None:
        monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    else:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    assert resolve_mixed_precision(flag) == want


def test_a_precision_clash_names_both(monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(TrainingError, match="sets mixed_precision fp16 but --mixed_precision is bf16"):
        resolve_mixed_precision("bf16")


def test_cpu_is_asked_for_only_as_one_of_several_launched_processes_without_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for key in ("LOCAL_RANK", "WORLD_SIZE", "ACCELERATE_USE_DEEPSPEED"):
        monkeypatch.delenv(key, raising=False)
    assert not launched_without_device()  # a plain `python run_clm_dialog.py`
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched_without_device()  # torchrun with one process: nothing to fix
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_without_device()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # DeepSpeed brings its own CPU accelerator
    assert not launched_without_device()
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not launched_without_device()


def test_fp16_on_cpu_is_one_line_not_a_silent_fp32_run():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        with pytest.raises(TrainingError, match="fp16 needs a CUDA GPU") as e:
            make_accelerator(cpu=True, mixed_precision="fp16")
        assert "\n" not in str(e.value)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
