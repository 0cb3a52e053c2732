"""Batching and tokenising for training: bucketed sampler, dynamic padding, the datasets.map cache key."""

from __future__ import annotations

import random

import pytest
import torch
from train_helpers import make_sessions

from dialogpt.chat_format import IGNORE_INDEX, encode_reverse, encode_session
from dialogpt.train.data import (
    DialogCollator,
    LengthBucketBatchSampler,
    RandomBatchSampler,
    padding_efficiency,
    tokenize_sessions,
)


def _lengths(n=1000, seed=0):
    rng = random.Random(seed)
    return [rng.randint(5, 128) for _ in range(n)]


def test_bucketed_sampler_covers_every_example_once_and_is_seeded():
    lengths = _lengths()
    s = LengthBucketBatchSampler(lengths, batch_size=8, bucket_batches=20, seed=3)
    batches = list(s)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    assert len(batches) == len(s) == 125
    assert list(LengthBucketBatchSampler(lengths, 8, 20, seed=3)) == batches      # same seed, same plan
    s.set_epoch(1)
    assert list(s) != batches                                                   # a new order each epoch
    assert list(LengthBucketBatchSampler(lengths, 8, 20, seed=4)) != batches


def test_bucketing_reaches_95_percent_real_tokens_where_random_batches_do_not():
    lengths = _lengths(4000)
    bucketed = padding_efficiency(lengths, list(LengthBucketBatchSampler(lengths, 16, bucket_batches=100)))
    plain = padding_efficiency(lengths, list(RandomBatchSampler(lengths, 16)))
    assert bucketed >= 0.95 > plain


def test_sampler_len_with_ragged_tail_and_drop_last():
    lengths = _lengths(103)
    assert len(list(LengthBucketBatchSampler(lengths, 10, bucket_batches=3))) == 11
    dl = LengthBucketBatchSampler(lengths, 10, bucket_batches=3, drop_last=True)
    assert len(list(dl)) == len(dl) == 10


def test_collator_pads_right_and_masks_padding_but_keeps_eos_labels():
    eos = 0
    feats = [{"input_ids": [5, 6, eos, 7, eos], "labels": [-100, -100, -100, 7, eos]},
             {"input_ids": [8, eos], "labels": [-100, -100]}]
    b = DialogCollator(pad_token_id=eos, pad_to_multiple_of=8)(feats)
    assert b["input_ids"].shape == (2, 8)
    assert b["labels"][0].tolist() == [-100, -100, -100, 7, eos] + [IGNORE_INDEX] * 3  # EOS label survives pad == eos
    assert b["attention_mask"].sum(1).tolist() == [5, 2]
    assert b["input_ids"][1, 2:].eq(eos).all() and b["labels"][1].eq(IGNORE_INDEX).all()
    assert b["input_ids"].dtype == torch.long


def test_tokenising_goes_through_chat_format_and_keys_the_cache_by_tokenizer_and_length(tokenizer):
    import datasets

    rows = make_sessions(30, seed=5) + [{"turns": [{"text": "only one turn", "weight": 1.0, "score": 1}]}]
    ds = datasets.Dataset.from_list(rows)
    tok, stats = tokenize_sessions(ds, tokenizer, max_seq_length=256)
    assert stats.dropped_no_labels == 1 and stats.kept == 30 == len(tok)   # the 1-turn session has no label
    for i in (0, 7, 29):   # every session fits in 256 tokens: one example each, as encode_session makes it
        enc = encode_session(tokenizer, rows[i]["turns"], 256)
        assert tok[i]["input_ids"] == enc.input_ids and tok[i]["labels"] == enc.labels
        assert tok[i]["length"] == len(enc.input_ids) <= 256
    assert stats.trained_turns == sum(len(r["turns"]) - 1 for r in rows[:30]) and stats.truncated_turns == 0
    rev, _ = tokenize_sessions(ds, tokenizer, max_seq_length=256, reverse=True)
    assert rev[3]["input_ids"] == encode_reverse(tokenizer, rows[3]["turns"], 256).input_ids
    # at 32 tokens the longer sessions become several windows, and still every reply is trained once
    short, short_stats = tokenize_sessions(ds, tokenizer, max_seq_length=32)
    assert len(short) > 30 and short_stats.trained_turns == stats.trained_turns
    tok, _ = short, None
    # another length, direction or tokenizer -> another cache key
    other_len, _ = tokenize_sessions(ds, tokenizer, max_seq_length=16)
    assert other_len._fingerprint != tok._fingerprint and rev._fingerprint != tok._fingerprint
    from dialogpt.tokenization import train_bytelevel_tokenizer

    tok2 = train_bytelevel_tokenizer(["completely different words here"] * 5, vocab_size=300)
    assert tokenize_sessions(ds, tok2, max_seq_length=32)[0]._fingerprint != tok._fingerprint


def test_a_second_tokenisation_reads_the_map_cache_and_never_calls_the_encoder(tmp_path, tokenizer, monkeypatch):
    """The cache is really reused: same data + tokenizer + length -> no session is encoded again."""
    import datasets

    import dialogpt.train.data as data_mod

    datasets.Dataset.from_list(make_sessions(30, seed=6)).to_parquet(str(tmp_path / "train.parquet"))
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "train.parquet"), split="train",
                               cache_dir=str(tmp_path / "cache"))   # on disk, so .map writes a cache file
    calls = []
    real = data_mod.encode_windows

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(data_mod, "encode_windows", counting)
    first, _ = tokenize_sessions(ds, tokenizer, max_seq_length=32)
    assert len(calls) == 30                                  # the counter sees real work
    calls.clear()
    again, _ = tokenize_sessions(ds, tokenizer, max_seq_length=32)
    assert calls == []                                       # read from the cache file, nothing encoded
    assert again["input_ids"] == first["input_ids"] and again.cache_files == first.cache_files
    tokenize_sessions(ds, tokenizer, max_seq_length=24)
    assert len(calls) == 30                                  # another key: encoded again


def test_tokenising_with_num_proc_gives_the_same_rows(tokenizer):
    import datasets

    ds = datasets.Dataset.from_list(make_sessions(40, seed=9))
    one, _ = tokenize_sessions(ds, tokenizer, max_seq_length=48)
    two, _ = tokenize_sessions(ds, tokenizer, max_seq_length=48, num_proc=2)
    assert one["input_ids"] == two["input_ids"] and one["labels"] == two["labels"]


def test_empty_data_is_an_error(tokenizer):
    import datasets

    empty = datasets.Dataset.from_dict({"turns": []})
    with pytest.raises(ValueError, match="empty"):
        tokenize_sessions(empty, tokenizer, max_seq_length=32)
