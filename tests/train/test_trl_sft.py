"""TRL's SFTTrainer on the built dataset's ``messages`` with the saved tokenizer: its assistant-only loss
mask is exactly chat_format's labels (first turn and weight-0 turns masked, each trained turn's EOS kept)."""

from __future__ import annotations

import pytest

from dialogpt.chat_format import IGNORE_INDEX, encode_session, messages_to_turns

MAX_LENGTH = 256  # the tiny model's n_positions


@pytest.mark.slow
def test_sft_trainer_assistant_only_loss_equals_chat_format_labels(tmp_path, tokenizer_dir, tiny_model_dir):
    trl = pytest.importorskip("trl", reason="trl is not installed (pip install -e '.[dev]')")
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt_dataset.build import BuildConfig, build_dataset

    build_dataset(BuildConfig(output_dir=str(tmp_path / "rd"), size="dummy", quiet=True))
    train = datasets.load_dataset(str(tmp_path / "rd"), split="train")
    # sessions with nothing to train on are dropped, as dialogpt.train.data does (TRL refuses them)
    train = train.filter(lambda r: any(m["trainable"] for m in r["messages"]))
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    # rows with a weight-0 turn first, so the mask that the original's keys file sets is exercised
    has_w0 = [i for i, r in enumerate(train) if any(t["weight"] == 0.0 for t in r["turns"][1:])]
    rows = train.select(has_w0[:4] + [i for i in range(40) if i not in has_w0][:24]).select_columns(["messages"])
    encoded = [encode_session(tok, messages_to_turns(m), max_seq_length=None) for m in rows["messages"]]
    assert len(has_w0) >= 4 and max(len(e.input_ids) for e in encoded) <= MAX_LENGTH  # no truncation to compare

    config = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"), assistant_only_loss=True, max_length=MAX_LENGTH, max_steps=3,
        per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, dataloader_num_workers=0, seed=0, bf16=False, fp16=False)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=rows, processing_class=tok)

    # 1. what TRL tokenised: the same ids, and its labels (TRL >= 1.x folds the assistant mask into a
    #    labels column) or its assistant mask (older TRL) == chat_format's labels
    ds = trainer.train_dataset
    assert len(ds) == len(encoded)
    for row, enc in zip(ds, encoded):
        assert row["input_ids"] == enc.input_ids
        if "labels" in row:
            assert row["labels"] == enc.labels
        else:
            assert row["assistant_masks"] == [int(y != IGNORE_INDEX) for y in enc.labels]
    # 2. what the loss sees: the collator's labels are chat_format's labels (right-padded with -100)
    batch = trainer.data_collator([ds[i] for i in range(8)])
    for i in range(8):
        want = encoded[i].labels
        assert batch["labels"][i, : len(want)].tolist() == want
        assert (batch["labels"][i, len(want):] == IGNORE_INDEX).all()
    assert (batch["labels"][:8] != IGNORE_INDEX).sum() < (batch["attention_mask"][:8] == 1).sum()  # not all trained
    # 3. it trains
    out = trainer.train()
    assert out.global_step == 3 and torch.isfinite(torch.tensor(out.training_loss))


@pytest.mark.slow
def test_sft_trainer_on_a_users_messages_jsonl_gets_the_labels_dialogpt_train_gives(tmp_path, tokenizer_dir,
                                                                                     tiny_model_dir):
    """Stock-tool parity for issue 23: the same messages JSONL through TRL and through our reader + windows."""
    trl = pytest.importorskip("trl", reason="trl is not installed (pip install -e '.[dev]')")
    import json

    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt.conversations import load_conversations
    from dialogpt.train.data import tokenize_sessions

    words = "so what did you think of the film last night it was long but the music was great".split()
    rows = [{"messages": [{"role": "user" if (5 - k) % 2 else "assistant",
                           "content": " ".join(words[(i + k * 3 + j) % len(words)] for j in range(2 + (i + k) % 6))}
                          for k in range(2 + i % 5)]} for i in range(16)]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ours, _ = tokenize_sessions(load_conversations(files=[str(path)])[0], tok, max_seq_length=MAX_LENGTH)
    assert len(ours) == len(rows)   # every chat fits: one window each, in file order
    config = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"), assistant_only_loss=True, max_length=MAX_LENGTH, max_steps=2,
        per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, dataloader_num_workers=0, seed=0, bf16=False, fp16=False)
    trainer = trl.SFTTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), args=config,
                             train_dataset=datasets.load_dataset("json", data_files=str(path), split="train"),
                             processing_class=tok)
    for theirs, mine in zip(trainer.train_dataset, ours):
        assert theirs["input_ids"] == mine["input_ids"]
        want = mine["labels"]
        got = theirs["labels"] if "labels" in theirs else [
            x if m else IGNORE_INDEX for x, m in zip(theirs["input_ids"], theirs["assistant_masks"])]
        assert got == want
    assert trainer.train().global_step == 2
