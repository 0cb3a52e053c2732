"""The original DialoGPT .pkl checkpoints -> HF weights (DESIGN.md's four rules), safely loaded."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from train_helpers import base_config, write_parquet_dataset

from dialogpt.cli.convert import main
from dialogpt.train.model import CheckpointError, convert_legacy_state_dict, load_legacy_checkpoint


def _legacy_state(model) -> dict[str, torch.Tensor]:
    """What the seed's torch.save(model.state_dict()) looked like after DDP and model.half()."""
    out = {}
    for k, v in model.state_dict().items():
        name = "lm_head.decoder.weight" if k == "lm_head.weight" else k
        out["module." + name] = v.detach().clone().half()
    n_pos = model.config.n_positions
    for i in range(model.config.n_layer):
        out[f"module.transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(n_pos, n_pos)).view(1, 1, n_pos, n_pos)
        out[f"module.transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    return out


@pytest.fixture()
def legacy_pkl(tmp_path, tiny_model) -> Path:
    p = tmp_path / "GP2-pretrain-step-1000.pkl"
    torch.save(_legacy_state(tiny_model), p)
    return p


def test_conversion_applies_the_four_rules(tiny_model):
    conv = convert_legacy_state_dict(_legacy_state(tiny_model))
    own = tiny_model.state_dict()
    assert not any(k.startswith("module.") for k in conv)
    assert "lm_head.weight" in conv and "lm_head.decoder.weight" not in conv
    assert not any(k.endswith((".attn.bias", ".attn.masked_bias")) for k in conv)
    assert set(conv) == set(own)
    for k, v in conv.items():
        assert v.dtype == torch.float32, k
        assert torch.equal(v, own[k].half().float()), k


def test_transformer_only_checkpoints_get_their_prefix(tiny_model):
    bare = {k[len("transformer."):]: v for k, v in tiny_model.state_dict().items() if k.startswith("transformer.")}
    conv = convert_legacy_state_dict(bare)
    assert set(conv) == {k for k in tiny_model.state_dict() if k.startswith("transformer.")}


def test_load_is_weights_only_and_errors_are_one_line(tmp_path, legacy_pkl):
    assert "transformer.wte.weight" in load_legacy_checkpoint(legacy_pkl)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(CheckpointError, match="not a readable state dict"):
        load_legacy_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no such file"):
        load_legacy_checkpoint(tmp_path / "missing.pkl")
    empty = tmp_path / "empty.pkl"  # torch.load raises with an empty message here
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pkl: not a readable state dict \(\w+"):
        load_legacy_checkpoint(empty)


def test_convert_cli_writes_a_from_pretrained_folder(tmp_path, legacy_pkl, tiny_model, tokenizer_dir, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "hf"
    cfg_json = tmp_path / "config.json"
    tiny_model.config.to_json_file(str(cfg_json))
    assert main([str(legacy_pkl), str(out), "--model_config", str(cfg_json), "--tokenizer_name",
                 str(tokenizer_dir)]) == 0
    model = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    ids = torch.tensor([tok("does money buy happiness")["input_ids"]])
    ref = tiny_model.half().float()  # the seed's fp16 weights, cast back
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, ref(ids).logits, atol=1e-5)
    assert tok.chat_template
    assert main([str(tmp_path / "nope.pkl"), str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_init_checkpoint_trains_from_the_pkl_and_a_wrong_shape_stops_before_work(tmp_path, legacy_pkl, tokenizer_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    from dialogpt.train.config import TrainingError
    from dialogpt.train.loop import train

    ds = write_parquet_dataset(tmp_path / "ds", n_train=16, n_valid=4)
    res = train(base_config(tmp_path, ds, tokenizer_dir, init_checkpoint=str(legacy_pkl), num_optim_steps=1,
                            learning_rate=1e-9))
    from safetensors.torch import load_file

    trained = load_file(str(tmp_path / "run" / "model.safetensors"))
    expected = load_legacy_checkpoint(legacy_pkl)
    assert res.global_step == 1
    assert torch.allclose(trained["transformer.h.1.mlp.c_fc.weight"], expected["transformer.h.1.mlp.c_fc.weight"],
                          atol=1e-6)
    other = GPT2LMHeadModel(GPT2Config(vocab_size=1000, n_layer=2, n_embd=32, n_head=2, n_positions=64,
                                             bos_token_id=0, eos_token_id=0))
    wrong = tmp_path / "other_shape.pkl"
    torch.save(_legacy_state(other), wrong)
    out = tmp_path / "wrong"
    with pytest.raises(TrainingError, match="another shape than the model: transformer.wte.weight"):
        train(base_config(out, ds, tokenizer_dir, init_checkpoint=str(wrong)))
    assert not (out / "run" / "train_log.txt").exists()
