"""The three ways users meet the project, through the (mock) Hub, end to end:
``load_dataset("org/name")`` of pushed dialogue data, ``accelerate``-style training that reads it by
id and pushes forward and reverse models privately, and ``from_pretrained`` of both for MMI decoding.
The token is given only through ``HF_TOKEN`` and must never be printed or written anywhere."""

from __future__ import annotations

import uuid

import pytest


def test_dataset_model_and_reverse_model_round_trip_privately(tmp_path, tokenizer_dir, mock_hub, capsys, caplog,
                                                               monkeypatch):
    import datasets
    from huggingface_hub.errors import RepositoryNotFoundError
    from transformers import AutoModelForCausalLM

    from dialogpt.cli.train import main as train_main
    from dialogpt.decode.responder import Responder
    from dialogpt_dataset.cli import main as build_main

    token = "hf_e2e_" + uuid.uuid4().hex
    org = "e2e-" + uuid.uuid4().hex[:6]
    mock_hub.add_token(token, "erin", orgs=[org])
    monkeypatch.setenv("HF_TOKEN", token)
    data_id, fwd_id, rev_id = f"{org}/reddit-dialog", f"{org}/dialogpt-tiny", f"{org}/dialogpt-tiny-reverse"

    assert build_main(["--size", "dummy", "--output", str(tmp_path / "data"), "--push-to-hub", data_id,
                       "--private"]) == 0
    hub_ds = datasets.load_dataset(data_id, cache_dir=str(tmp_path / "ds_cache"))
    assert {"train", "validation", "test"} <= set(hub_ds) and hub_ds["train"].num_rows > 0
    assert "references" in hub_ds["test"].column_names

    common = ["--dataset", data_id, "--model_config", "tiny", "--tokenizer_name", str(tokenizer_dir),
              "--max_seq_length", "64", "--num_optim_steps", "3", "--lr_schedule", "None", "--save_steps", "0",
              "--no-pbar", "--push_to_hub", "--hub_private"]
    assert train_main(common + ["--output_dir", str(tmp_path / "fwd"), "--hub_model_id", fwd_id]) == 0
    assert train_main(common + ["--output_dir", str(tmp_path / "rev"), "--hub_model_id", rev_id, "--reverse"]) == 0
    for repo in (fwd_id, rev_id):
        assert {"config.json", "model.safetensors", "README.md"} <= set(mock_hub.repo_files("model", repo))
    assert "reverse" in mock_hub.repo_files("model", rev_id)["README.md"].decode().lower()

    # anonymous callers see nothing of the private repos
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises((RepositoryNotFoundError, OSError)):
        AutoModelForCausalLM.from_pretrained(fwd_id, token=False)
    with pytest.raises((datasets.exceptions.DatasetNotFoundError, OSError)):
        datasets.load_dataset(data_id, cache_dir=str(tmp_path / "anon"), token=False)
    monkeypatch.setenv("HF_TOKEN", token)

    from transformers import set_seed

    set_seed(0)
    bot = Responder.from_pretrained(fwd_id, reverse_model=rev_id, device="cpu")
    reply = bot.respond(["Does money buy happiness?"], strategy="sample", num_candidates=3, max_new_tokens=8)
    assert len(reply.candidates) == 3 and all(c.score is not None for c in reply.candidates)
    assert reply.text == reply.candidates[reply.chosen].text

    captured = capsys.readouterr()
    assert token not in captured.out + captured.err + caplog.text
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert token.encode() not in p.read_bytes(), p
    assert mock_hub.errors == []
