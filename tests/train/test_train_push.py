"""--push_to_hub against the loopback mock Hub: a private repo, a token that never shows, and
``from_pretrained("org/name")`` of what was pushed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import torch
from train_helpers import base_config, write_parquet_dataset

from dialogpt.cli.train import main


def test_push_to_hub_private_then_from_pretrained(tmp_path, tokenizer_dir, mock_hub, capsys, caplog):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    token = "hf_" + uuid.uuid4().hex
    user = "trainer-" + uuid.uuid4().hex[:6]
    mock_hub.add_token(token, user, orgs=["dialog-org"])
    repo_id = f"dialog-org/dialogpt-tiny-{uuid.uuid4().hex[:8]}"
    ds = write_parquet_dataset(tmp_path / "ds", n_train=16, n_valid=4)
    out = tmp_path / "run"
    rc = main(["--dataset", str(ds), "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
               "--output_dir", str(out), "--max_seq_length", "64", "--num_optim_steps", "2", "--lr_schedule", "None",
               "--save_steps", "1", "--no-pbar", "--push_to_hub", "--hub_model_id", repo_id, "--hub_private",
               "--hub_token", token])
    assert rc == 0
    files = mock_hub.repo_files("model", repo_id)
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md",
            "train_log.txt", "hyperparameters.yaml"} <= set(files)
    assert not any(f.startswith("checkpoints/") for f in files)          # checkpoints stay local
    assert mock_hub.errors == []

    # private: anonymous callers cannot see it, the token holder can load it
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises((RepositoryNotFoundError, OSError)):
        AutoModelForCausalLM.from_pretrained(repo_id, token=False)
    model = AutoModelForCausalLM.from_pretrained(repo_id, token=token)
    tok = AutoTokenizer.from_pretrained(repo_id, token=token)
    assert tok.chat_template and GenerationConfig.from_pretrained(repo_id, token=token).eos_token_id == tok.eos_token_id
    local = AutoModelForCausalLM.from_pretrained(str(out))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), local.state_dict().values()))
    card = files["README.md"].decode()
    assert f"name: {repo_id}" in card and f'from_pretrained("{repo_id}")' in card

    # the token appears nowhere: stdout/stderr, logs, the written files, the pushed files
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err + caplog.text
    assert "--hub_token on the command line is visible to other users of this machine" in captured.err
    for p in out.rglob("*"):
        if p.is_file():
            assert token.encode() not in p.read_bytes(), p
    assert not any(token.encode() in data for data in files.values())
    assert "hub_token: '***'" in (out / "hyperparameters.yaml").read_text()


def test_push_with_a_bad_token_is_one_clear_line_without_the_token(tmp_path, tokenizer_dir, mock_hub):
    from dialogpt.train.config import TrainingError
    from dialogpt.train.loop import train

    bad = "hf_bad_" + uuid.uuid4().hex
    token_file = tmp_path / "token"
    token_file.write_text(bad + "\n")
    ds = write_parquet_dataset(tmp_path / "ds", n_train=8, n_valid=2)
    cfg = base_config(tmp_path, ds, tokenizer_dir, num_optim_steps=1, push_to_hub=True,
                      hub_model_id=f"dialog-org/x-{uuid.uuid4().hex[:6]}", hub_token_file=str(token_file))
    assert bad not in repr(cfg)
    with pytest.raises(TrainingError, match="--push_to_hub") as err:
        train(cfg)
    assert bad not in str(err.value)


def test_the_hub_token_comes_from_a_file_or_the_environment_never_from_a_flag_silently(tmp_path, mock_hub,
                                                                                       monkeypatch, capsys):
    from huggingface_hub import HfApi

    from dialogpt.train.config import TrainingError
    from dialogpt.train.hub import resolve_hub_token

    token, user = "hf_" + uuid.uuid4().hex, "env-" + uuid.uuid4().hex[:6]
    mock_hub.add_token(token, user)
    cfg = base_config(tmp_path, tmp_path / "ds", tmp_path / "tok", push_to_hub=True, hub_model_id="org/x")
    # nothing given: huggingface_hub's own lookup (HF_TOKEN, then the saved login) decides
    monkeypatch.setenv("HF_TOKEN", token)
    assert resolve_hub_token(cfg) is None
    assert HfApi(token=resolve_hub_token(cfg)).whoami()["name"] == user
    monkeypatch.delenv("HF_TOKEN")
    (tmp_path / "t").write_text(f"{token}\n")
    cfg.hub_token_file = str(tmp_path / "t")
    assert resolve_hub_token(cfg) == token
    for content, message in ((None, "cannot read it"), ("\n", "the file is empty")):
        cfg.hub_token_file = str(tmp_path / ("missing" if content is None else "empty"))
        if content is not None:
            Path(cfg.hub_token_file).write_text(content)
        with pytest.raises(TrainingError, match=f"--hub_token_file {cfg.hub_token_file}: {message}"):
            resolve_hub_token(cfg)
    with pytest.raises(TrainingError, match="--hub_token and --hub_token_file clash"):
        base_config(tmp_path, tmp_path / "ds", tmp_path / "tok", hub_token="x", hub_token_file="f")
    # on the command line the token shows in `ps` for the whole run: a warning, which never repeats the token
    rc = main(["--hub_token", "hf_secret_flag", "--dataset", "d", "--model_config", "tiny"])
    err = capsys.readouterr().err
    assert rc == 2 and "visible to other users of this machine" in err and "hf_secret_flag" not in err
