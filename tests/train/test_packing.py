"""Packing: whole sessions per row, labels as chat_format makes them, and no session sees another.

The proof is numeric: a packed batch's per-session losses and gradients equal those of the same
sessions right-padded one per row, in fp32 on the CPU, for every attention path packing uses.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from train_helpers import make_sessions

from dialogpt.chat_format import IGNORE_INDEX, encode_session
from dialogpt.tensors import pad_right, token_nll
from dialogpt.train.packing import (
    PackedBatchSampler,
    PackedCollator,
    first_fit_decreasing,
    model_inputs,
    next_fit,
    real_token_count,
    real_token_fraction,
)

WIDTH = 128  # rows hold two or more sessions of at most MAX_LEN tokens
MAX_LEN = 64


def _encoded(tokenizer, n: int = 9, seed: int = 0):
    return [encode_session(tokenizer, s["turns"], MAX_LEN) for s in make_sessions(n, seed, max_turns=5)]


def _features(encs):
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in encs]


def _tiny_model(vocab: int, impl: str):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_layer=2, n_head=2, n_embd=64, n_positions=256,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel._from_config(cfg, attn_implementation=impl, dtype=torch.float32)
    return model.train()  # dropout is 0: train mode, deterministic


def _per_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL at each label position (position t+1 predicted from t), 0 where there is no target."""
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=IGNORE_INDEX, reduction="none")
    return F.pad(nll, (1, 0))


def _packed_session_nll(logits, batch, lengths) -> torch.Tensor:
    """Sum the packed batch's token NLL per session (next fit keeps the input order, row after row)."""
    per_token = _per_token_nll(logits, batch["labels"])[batch["real_tokens"]]
    return torch.stack([seg.sum() for seg in per_token.split(lengths)])


def _grads(model, loss):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params)


def test_first_fit_decreasing_rows_are_valid_full_and_rebuilt_by_next_fit():
    rng = random.Random(0)
    lengths = [min(128, max(2, int(rng.expovariate(1 / 50)))) for _ in range(3000)]
    rows = first_fit_decreasing(lengths, 128)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))  # every session once
    assert all(sum(lengths[i] for i in r) <= 128 for r in rows)
    fill = sum(lengths) / (len(rows) * 128)
    assert fill > 0.97, fill
    # the collator re-cuts a flat list with next fit: it must rebuild exactly these rows
    flat = [i for r in rows for i in r]
    rebuilt = next_fit([lengths[i] for i in flat], 128)
    assert [[flat[j] for j in r] for r in rebuilt] == rows
    with pytest.raises(ValueError, match="1..128 tokens"):
        first_fit_decreasing([129], 128)


def test_next_fit_never_needs_more_rows_than_planned():
    """Any concatenation of valid rows (batches mix pools) re-cuts into at most as many rows."""
    rng = random.Random(1)
    for _ in range(200):
        rows = []
        for _ in range(rng.randint(1, 6)):
            row, room = [], 32
            while room > 0:
                n = rng.randint(1, room)
                row.append(n)
                room -= n
                if rng.random() < 0.3:
                    break
            rows.append(row)
        assert len(next_fit([n for r in rows for n in r], 32)) <= len(rows)


def test_packed_sampler_sees_every_session_once_per_epoch_and_is_deterministic():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 65, size=500).tolist()
    s = PackedBatchSampler(lengths, rows_per_batch=4, width=64, bucket_batches=5, seed=3)
    e0 = s.batches()
    assert sorted(i for b in e0 for i in b) == list(range(500))
    assert len(s) == len(e0)
    assert all(len(next_fit([lengths[i] for i in b], 64)) <= 4 for b in e0)
    assert PackedBatchSampler(lengths, 4, 64, bucket_batches=5, seed=3).batches() == e0  # resumable
    s.set_epoch(1)
    assert s.batches() != e0 and sorted(i for b in s.batches() for i in b) == list(range(500))
    assert real_token_fraction(lengths, e0, 64, padding_free=True) == 1.0


def test_packed_plan_of_dialogue_lengths_is_nearly_all_real_tokens():
    """Reddit-like lengths (mean ~53 of 128), the default pools: fixed 16 x 128 batches are > 0.99 real."""
    rng = random.Random(0)
    lengths = [min(128, max(2, int(rng.expovariate(1 / 53)))) for _ in range(5000)]
    batches = PackedBatchSampler(lengths, rows_per_batch=16, width=128, bucket_batches=100).batches()
    frac = real_token_fraction(lengths, batches, 128, rows_per_batch=16)
    assert 0.99 < frac < 1.0, frac  # only row ends and the epoch's last batch are padding


def test_collated_rows_keep_chat_format_labels_and_restart_positions(tokenizer):
    encs = _encoded(tokenizer)
    batch = PackedCollator(WIDTH, tokenizer.pad_token_id, rows=8)(_features(encs))
    assert batch["input_ids"].shape == (8, WIDTH)  # static shape: topped up with empty rows
    assert "attention_mask" not in batch  # a 2D mask would switch transformers' packing detection off
    assert real_token_count(batch).item() == sum(len(e.input_ids) for e in encs)
    real = batch["real_tokens"]
    ids, labels, pos = batch["input_ids"][real], batch["labels"][real], batch["position_ids"][real]
    start = 0
    for e in encs:
        n = len(e.input_ids)
        assert ids[start:start + n].tolist() == e.input_ids
        assert labels[start:start + n].tolist() == e.labels  # exactly chat_format's labels
        assert e.labels[0] == IGNORE_INDEX  # the first turn is never trained, so nothing was changed
        assert pos[start:start + n].tolist() == list(range(n))
        start += n
    assert (batch["labels"][~real] == IGNORE_INDEX).all()
    assert set(model_inputs(batch)) == {"input_ids", "labels", "position_ids"}


def test_flattened_padding_free_batch_has_only_real_tokens(tokenizer):
    encs = _encoded(tokenizer)
    batch = PackedCollator(WIDTH, tokenizer.pad_token_id, flatten=True)(_features(encs))
    assert batch["input_ids"].shape == (1, sum(len(e.input_ids) for e in encs))
    assert batch["real_tokens"].all()
    static = PackedCollator(WIDTH, tokenizer.pad_token_id, rows=6, flatten=True)(_features(encs))
    assert static["input_ids"].shape == (1, 6 * WIDTH)


@pytest.mark.parametrize("impl,flatten", [("eager", False), ("sdpa", False), ("sdpa", True), ("eager", True)])
def test_packed_loss_and_gradients_equal_padded(tokenizer, impl, flatten):
    """The proof that no session sees another: per-session loss and all gradients match to 1e-5 (fp32)."""
    encs = _encoded(tokenizer)
    lengths = [len(e.input_ids) for e in encs]
    model = _tiny_model(len(tokenizer), impl)

    padded = pad_right([e.input_ids for e in encs], [e.labels for e in encs], pad_id=tokenizer.pad_token_id)
    logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], use_cache=False).logits
    pad_nll, pad_count = token_nll(logits, padded["labels"])
    pad_grads = _grads(model, pad_nll.sum())

    batch = PackedCollator(WIDTH, tokenizer.pad_token_id, flatten=flatten)(_features(encs))
    assert batch["input_ids"].shape[0] < len(encs) or flatten  # really several sessions per row
    inputs = {k: v for k, v in model_inputs(batch).items() if k != "labels"}
    packed_logits = model(**inputs, use_cache=False).logits
    packed_nll = _packed_session_nll(packed_logits, batch, lengths)
    torch.testing.assert_close(packed_nll, pad_nll, rtol=1e-5, atol=1e-5)
    packed_grads = _grads(model, packed_nll.sum())
    for g_packed, g_pad in zip(packed_grads, pad_grads):
        torch.testing.assert_close(g_packed, g_pad, rtol=1e-5, atol=1e-5)

    # the model's own loss (token mean over the batch) is the padded batch's too
    loss = model(**model_inputs(batch), use_cache=False).loss
    torch.testing.assert_close(loss, pad_nll.sum() / pad_count.sum(), rtol=1e-5, atol=1e-5)


def test_packing_without_restarted_positions_lets_sessions_leak(tokenizer):
    """The control: the same rows with plain 0..width-1 positions give other losses, so the test can fail."""
    encs = _encoded(tokenizer)
    model = _tiny_model(len(tokenizer), "sdpa")
    padded = pad_right([e.input_ids for e in encs], [e.labels for e in encs], pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        pad_nll, _ = token_nll(model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits,
                               padded["labels"])
        batch = PackedCollator(WIDTH, tokenizer.pad_token_id)(_features(encs))
        leaky = model(input_ids=batch["input_ids"]).logits  # positions 0..63 per row: one long causal sequence
        nll = _packed_session_nll(leaky, batch, [len(e.input_ids) for e in encs])
    assert (nll - pad_nll).abs().max() > 1e-2


@pytest.mark.slow
def test_training_with_packing_end_to_end(tmp_path, tokenizer_dir, capsys):
    """--packing through train(): fewer, fuller micro-batches than buckets, every session trained, loss falls."""
    from train_helpers import base_config, read_csv_log, write_parquet_dataset

    from dialogpt.train.loop import train

    ds = write_parquet_dataset(tmp_path / "ds", n_train=64, n_valid=8)
    kw = dict(max_seq_length=128, num_optim_steps=6, dropout=0.0)
    packed = train(base_config(tmp_path / "packed", ds, tokenizer_dir, packing=True, **kw))
    out = capsys.readouterr().out
    assert "sdpa / packed rows / off" in out
    train(base_config(tmp_path / "bucketed", ds, tokenizer_dir, **kw))
    assert packed.loss_history[-1] < packed.loss_history[0]
    rows = read_csv_log(tmp_path / "packed" / "run" / "train_log.txt")
    # a packed micro-batch is 4 rows x 128 tokens: the fixed shape
    assert all(int(r["n_token_total"]) % (4 * 128) == 0 for r in rows)
    # one step of packed rows holds more sessions than one of 4 padded sessions: more real tokens per step
    b_rows = read_csv_log(tmp_path / "bucketed" / "run" / "train_log.txt")
    assert int(rows[-1]["n_token_real"]) > int(b_rows[-1]["n_token_real"])
    assert packed.eval_loss is not None  # validation stays padded and runs
