"""Attention implementations: validation errors name the flag, and packed position_ids give a block-diagonal mask."""

from __future__ import annotations

import pytest
import torch

from dialogpt.train.attention import ATTN_IMPLEMENTATIONS, check_attn_implementation, check_attn_name


def _gpt2_class():
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel


def test_known_names_pass_and_unknown_is_one_line():
    for name in ATTN_IMPLEMENTATIONS:
        check_attn_name(name)
    with pytest.raises(ValueError, match=r"--attn_implementation 'flash' is not one of eager, sdpa") as e:
        check_attn_name("flash")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["eager", "sdpa"])
def test_eager_and_sdpa_run_anywhere(name):
    check_attn_implementation(name, model_class=_gpt2_class(), on_cuda=False)


def test_flash_attention_needs_the_package_and_a_gpu():
    from transformers.utils import is_flash_attn_2_available

    with pytest.raises(ValueError, match="flash_attention_2") as e:
        check_attn_implementation("flash_attention_2", model_class=_gpt2_class(), on_cuda=False,
                                  mixed_precision="bf16")
    msg = str(e.value)
    assert "\n" not in msg
    if is_flash_attn_2_available():
        assert "needs a CUDA GPU" in msg
    else:
        assert "needs the flash-attn package" in msg


def test_flash_attention_needs_half_precision(monkeypatch):
    import transformers.utils

    monkeypatch.setattr(transformers.utils, "is_flash_attn_2_available", lambda: True)  # as on a GPU box
    with pytest.raises(ValueError, match="--mixed_precision bf16"):
        check_attn_implementation("flash_attention_2", model_class=_gpt2_class(), on_cuda=True, mixed_precision="no")
    check_attn_implementation("flash_attention_2", model_class=_gpt2_class(), on_cuda=True, mixed_precision="bf16")


def test_flex_attention_is_refused_for_a_model_without_it():
    cls = _gpt2_class()
    if getattr(cls, "_supports_flex_attn", False):
        pytest.skip("this transformers' GPT-2 supports flex attention")
    with pytest.raises(ValueError, match="GPT2LMHeadModel has no flex_attention support.*use sdpa"):
        check_attn_implementation("flex_attention", model_class=cls, on_cuda=False)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_position_ids_give_the_block_diagonal_causal_mask(impl):
    """What transformers builds from restarted position_ids (no 2D mask) is exactly per-session causal."""
    from transformers import GPT2Config
    from transformers.masking_utils import create_causal_mask

    cfg = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=10, bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = impl
    # two rows: sessions of 3 + 4 + pad run of 1, and 5 + pad run of 3
    pos = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 2, 3, 4, 0, 1, 2]])
    seq = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 2], [0, 0, 0, 0, 0, 1, 1, 1]])
    mask = create_causal_mask(config=cfg, inputs_embeds=torch.zeros(2, 8, 8), attention_mask=None, cache=None,
                              position_ids=pos)
    q = torch.arange(8)
    expected = (seq[:, :, None] == seq[:, None, :]) & (q[None, :, None] >= q[None, None, :])
    allowed = mask[:, 0] if mask.dtype == torch.bool else mask[:, 0] == 0  # eager: additive, 0 = allowed
    assert torch.equal(allowed, expected)


def test_cli_flash_on_cpu_is_one_line_error(tmp_path, tokenizer_dir, capsys):
    from train_helpers import write_parquet_dataset

    from dialogpt.cli.train import main

    ds = write_parquet_dataset(tmp_path / "ds", n_train=8, n_valid=0)
    capsys.readouterr()  # the dataset writer's own progress bar is not the CLI's output
    rc = main(["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
               "--output_dir", str(tmp_path / "run"), "--attn_implementation", "flash_attention_2", "--cpu",
               "--eval_split", "", "--no-pbar"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: --attn_implementation flash_attention_2 needs") and err.count("\n") == 1
    assert not (tmp_path / "run" / "train_log.txt").exists()  # refused before any training work


def test_config_rejects_unknown_attention_and_bad_peak():
    from dialogpt.train.config import TrainConfig, TrainingError

    base = dict(dataset="d", model_config="tiny", tokenizer_name="t")
    with pytest.raises(TrainingError, match="--attn_implementation 'flash' is not one of"):
        TrainConfig(**base, attn_implementation="flash")
    with pytest.raises(TrainingError, match="--peak_tflops must be > 0"):
        TrainConfig(**base, peak_tflops=0)


def test_eager_attention_is_what_the_loaded_model_runs(tokenizer):
    from dialogpt.train.config import TrainConfig
    from dialogpt.train.model import load_model

    cfg = TrainConfig(dataset="d", model_config="tiny", tokenizer_name="t", attn_implementation="eager", cpu=True)
    assert load_model(cfg, tokenizer).config._attn_implementation == "eager"
