"""FLOPs per token from the model config, peaks by device name, MFU arithmetic."""

from __future__ import annotations

import pytest

from dialogpt.train.throughput import flops_per_token, matmul_parameters, measure, peak_tflops_for

GPT2_345M = dict(vocab_size=50257, n_positions=1024, n_layer=24, n_embd=1024, n_head=16)


def test_matmul_parameters_are_the_model_minus_position_embeddings():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=300, n_positions=40, n_layer=3, n_embd=32, n_head=4, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg)
    total = sum(p.numel() for p in model.parameters())  # the tied LM head is counted once, as wte
    assert matmul_parameters(cfg) == total - 40 * 32
    assert matmul_parameters(cfg.to_dict()) == matmul_parameters(cfg)  # a config.json dict works too


def test_345m_at_128_is_the_issue_figure():
    # the issue: "345M at seq 128 (~2.17 GFLOP/token)"; 117M about 0.75
    assert flops_per_token(GPT2_345M, 128) / 1e9 == pytest.approx(2.17, abs=0.01)
    assert flops_per_token(dict(GPT2_345M, n_layer=12, n_embd=768), 128) / 1e9 == pytest.approx(0.75, abs=0.01)
    assert flops_per_token(GPT2_345M, 1024) > flops_per_token(GPT2_345M, 128)  # attention grows with context


@pytest.mark.parametrize("name,tflops", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("Tesla V100-SXM2-32GB", 125.0), ("NVIDIA L4", 121.0),
    ("Some Future GPU", None), (None, None),
])
def test_peak_by_device_name(name, tflops):
    assert peak_tflops_for(name) == tflops


def test_peak_override_wins_and_is_checked():
    assert peak_tflops_for("NVIDIA H100 80GB HBM3", 500.0) == 500.0
    assert peak_tflops_for(None, 1.5) == 1.5
    with pytest.raises(ValueError, match="--peak_tflops must be > 0"):
        peak_tflops_for("cpu", 0.0)


def test_mfu_of_the_issue_goal():
    # ~180k tokens/s of 345M on one H100 is the issue's 40% MFU goal
    t = measure(180_000 * 10, 10.0, GPT2_345M, 128, peak_tflops_for("NVIDIA H100 80GB HBM3"))
    assert t.tokens_per_sec == pytest.approx(180_000)
    assert t.mfu == pytest.approx(0.394, abs=0.005)
    d = t.as_dict()
    assert d["mfu"] == round(t.mfu, 4) and d["peak_tflops"] == 989.0
    # 8 devices sharing the tokens: per-device figure, same MFU for 8x the tokens
    assert measure(8 * 180_000, 1.0, GPT2_345M, 128, 989.0, num_devices=8).mfu == pytest.approx(t.mfu)
    assert measure(1000, 1.0, GPT2_345M, 128, None).mfu is None  # unknown peak: no made-up MFU
