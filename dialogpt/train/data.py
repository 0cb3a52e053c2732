"""Training data: sessions -> tokenised examples -> length-bucketed, dynamically padded batches.

Everything that turns text into ids goes through :mod:`dialogpt.chat_format` (``encode_session``
or ``encode_reverse``); this module only loads, maps, filters, batches and pads.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from dialogpt.chat_format import encode_reverse, encode_session
from dialogpt.dialog_data import load_dialog_data
from dialogpt.errors import first_line
from dialogpt.legacy_tsv import read_train_tsv
from dialogpt.tensors import pad_right
from dialogpt.train.config import TrainConfig, TrainingError
from dialogpt.train.packing import PackedBatchSampler, PackedCollator

#: Bump when the tokenised layout changes, so stale ``datasets`` caches are never reused.
FORMAT_VERSION = 1
TOKENIZED_COLUMNS = ("input_ids", "labels", "length", "num_label_tokens")


# ----------------------------------------------------------------------------------------------
# loading sessions
# ----------------------------------------------------------------------------------------------

def load_session_splits(dataset: str | None = None, train_file: str | None = None,
                        eval_file: str | None = None, train_split: str = "train",
                        eval_split: str | None = "validation", cache_dir: str | None = None):
    """Return ``(train, eval_or_None)`` ``datasets.Dataset`` objects with a ``turns`` column.

    ``dataset`` is a built dialogue dataset (a directory, a ``save_to_disk`` folder or a Hub id), read
    by the one shared loader (:func:`dialogpt.dialog_data.load_dialog_data`, one-line errors naming
    ``--dataset``); ``train_file``/``eval_file`` are the seed's ``train.tsv`` files.
    """
    if dataset is not None:
        dd = load_dialog_data(dataset, flag="--dataset", cache_dir=cache_dir)
        if train_split not in dd:
            raise ValueError(f"--dataset {dataset}: no split {train_split!r} (has {', '.join(dd)}); "
                             "choose one with --train_split")
        train = dd[train_split]
        ev = None
        if eval_file is not None:
            ev = _tsv_dataset(eval_file)
        elif eval_split and eval_split in dd:
            ev = dd[eval_split]
    else:
        if train_file is None:
            raise ValueError("give --dataset DIR_OR_ID or --train_file train.tsv")
        train = _tsv_dataset(train_file)
        ev = _tsv_dataset(eval_file) if eval_file else None
    for name, ds in (("train", train), ("eval", ev)):
        if ds is not None and "turns" not in ds.column_names:
            raise ValueError(f"{name} data has no 'turns' column (columns: {', '.join(ds.column_names)})")
    return train, ev


def _tsv_dataset(path: str):
    """The seed's train.tsv as a Dataset of sessions (each turn ``{text, weight}``)."""
    import datasets

    rows = [{"turns": [{"text": t.text, "weight": float(t.weight)} for t in s]} for s in read_train_tsv(path)]
    if not rows:
        raise ValueError(f"{path}: no training instances in the file")
    return datasets.Dataset.from_list(rows)


# ----------------------------------------------------------------------------------------------
# tokenisation
# ----------------------------------------------------------------------------------------------

def tokenizer_fingerprint(tokenizer) -> str:
    """A stable hash of what decides the ids: vocabulary, merges, special tokens."""
    from datasets.fingerprint import Hasher

    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return Hasher.hash([body, tokenizer.eos_token, tokenizer.pad_token])


def _encode_batch(batch, tokenizer, max_seq_length: int, reverse: bool):
    encode = encode_reverse if reverse else encode_session
    out = {k: [] for k in TOKENIZED_COLUMNS}
    for turns in batch["turns"]:
        if reverse and len(turns) < 2:
            enc = None  # no source to predict: counted and dropped by the caller's filter
        else:
            enc = encode(tokenizer, turns, max_seq_length)
        if enc is None:
            out["input_ids"].append([])
            out["labels"].append([])
            out["length"].append(0)
            out["num_label_tokens"].append(0)
        else:
            out["input_ids"].append(enc.input_ids)
            out["labels"].append(enc.labels)
            out["length"].append(len(enc.input_ids))
            out["num_label_tokens"].append(enc.num_label_tokens)
    return out


@dataclass
class TokenizeStats:
    kept: int
    dropped_no_labels: int

    def as_dict(self) -> dict[str, int]:
        return {"kept": self.kept, "dropped_no_labels": self.dropped_no_labels}


def tokenize_sessions(ds, tokenizer, max_seq_length: int, reverse: bool = False,
                      num_proc: int | None = None, desc: str = "tokenising"):
    """Sessions -> ``input_ids``/``labels``/``length`` via ``datasets.map`` (cached).

    The cache key (``new_fingerprint``) is the input dataset's fingerprint plus the tokenizer's
    fingerprint, ``max_seq_length``, the direction and :data:`FORMAT_VERSION`: change any of them
    and the map runs again; change none and the cached Arrow file is reused.
    Sessions with no trained token (one turn, or every weight 0) are dropped and counted.
    """
    from datasets.fingerprint import Hasher

    if len(ds) == 0:
        raise ValueError("the training data is empty (0 sessions)")
    fp = Hasher.hash([ds._fingerprint, tokenizer_fingerprint(tokenizer), max_seq_length, reverse,
                      FORMAT_VERSION])
    n_proc = num_proc if (num_proc and num_proc > 1 and len(ds) >= 2 * num_proc) else None
    tok = ds.map(
        _encode_batch, batched=True, batch_size=1000, num_proc=n_proc,
        fn_kwargs={"tokenizer": tokenizer, "max_seq_length": max_seq_length, "reverse": reverse},
        remove_columns=ds.column_names, new_fingerprint=fp, desc=desc,
    )
    before = len(tok)
    tok = tok.filter(lambda n: [x > 0 for x in n], input_columns="num_label_tokens", batched=True,
                     new_fingerprint=Hasher.hash([fp, "has-labels"]), desc="dropping sessions with no labels")
    return tok, TokenizeStats(kept=len(tok), dropped_no_labels=before - len(tok))


# ----------------------------------------------------------------------------------------------
# batching
# ----------------------------------------------------------------------------------------------

class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so dynamic padding wastes little.

    Like the seed's ``BucketSampler`` (``data_loader.py``): shuffle all indices, cut them into
    pools of ``batch_size * bucket_batches`` examples, sort each pool by length, cut it into
    batches, then shuffle the batches so lengths are not visited in order. Deterministic given
    ``seed`` and the epoch (``set_epoch``), so a resumed run sees the very same batches and can skip
    the ones it already trained on. ``shuffle=False`` keeps data order (pools still sorted).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, bucket_batches: int = 100,
                 seed: int = 42, shuffle: bool = True, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.bucket_batches = max(1, int(bucket_batches))
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pool = self.batch_size * self.bucket_batches
        out: list[list[int]] = []
        for start in range(0, n, pool):
            idx = order[start:start + pool]
            # stable sort, longest first, so the first batch of a run shows the peak memory early
            idx = idx[np.argsort(-self.lengths[idx], kind="stable")]
            for b in range(0, len(idx), self.batch_size):
                chunk = idx[b:b + self.batch_size]
                if len(chunk) < self.batch_size and self.drop_last:
                    continue
                out.append(chunk.tolist())
        if self.shuffle:
            perm = rng.permutation(len(out))
            out = [out[i] for i in perm]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        pool = self.batch_size * self.bucket_batches
        full, rest = divmod(n, pool)
        per_pool = pool // self.batch_size
        tail = (rest // self.batch_size) if self.drop_last else math.ceil(rest / self.batch_size)
        return full * per_pool + tail


class RandomBatchSampler(LengthBucketBatchSampler):
    """Plain shuffled batches (no length sorting): the baseline the padding benchmark compares to."""

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        out = [order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        return out

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


@dataclass
class DialogCollator:
    """Dynamic right padding to the longest example of the batch (optionally to a multiple of 8).

    Padding positions get attention_mask 0 and label ``IGNORE_INDEX``; pad ids are never compared
    with EOS, so the EOS labels the format keeps survive even though pad == EOS for GPT-2.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        return pad_right([f["input_ids"] for f in features], [f["labels"] for f in features],
                         pad_id=self.pad_token_id, pad_to_multiple_of=self.pad_to_multiple_of)


def padding_efficiency(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Real tokens / padded tokens for a batch plan (1.0 = no padding at all)."""
    lengths = np.asarray(lengths)
    real = padded = 0
    for b in batches:
        ls = lengths[list(b)]
        real += int(ls.sum())
        padded += int(ls.max()) * len(b)
    return real / padded if padded else 1.0


def num_proc_default() -> int:
    return max(1, min(8, (os.cpu_count() or 1)))


# ----------------------------------------------------------------------------------------------
# a run's data, from its config
# ----------------------------------------------------------------------------------------------

def load_training_data(config: TrainConfig, accelerator, tokenizer):
    """Sessions -> tokenised train (and eval) sets; returns them and the count of sessions with no label."""
    try:
        train_raw, eval_raw = load_session_splits(config.dataset, config.train_file, config.eval_file,
                                                  config.train_split, config.eval_split)
    except (OSError, ValueError) as e:
        raise TrainingError((str(e).strip().splitlines() or [first_line(e)])[0]) from None
    if len(train_raw) == 0:
        raise TrainingError(f"the training data ({config.dataset or config.train_file}) is empty")
    if config.max_eval_examples and eval_raw is not None:
        eval_raw = eval_raw.select(range(min(len(eval_raw), config.max_eval_examples)))
    with accelerator.main_process_first():
        train_tok, stats = tokenize_sessions(train_raw, tokenizer, config.max_seq_length, config.reverse,
                                             config.preprocessing_num_workers, "tokenising train")
        eval_tok = None
        if eval_raw is not None and len(eval_raw):
            eval_tok, _ = tokenize_sessions(eval_raw, tokenizer, config.max_seq_length, config.reverse,
                                            config.preprocessing_num_workers, "tokenising eval")
    if len(train_tok) == 0:
        raise TrainingError("no training session has a trained turn after tokenising "
                            f"({stats.dropped_no_labels} dropped): check the weights in the data")
    return train_tok, (eval_tok if eval_tok is not None and len(eval_tok) else None), stats.dropped_no_labels


def build_loaders(config: TrainConfig, tokenizer, train_tok, eval_tok):
    """Length-bucketed (or packed) train batches, seeded and resumable, and in-order eval batches, padded."""
    from torch.utils.data import DataLoader

    sampler, packed_collate = _train_batching(config, tokenizer, train_tok["length"])
    padded_collate = DialogCollator(tokenizer.pad_token_id, config.pad_to_multiple_of)
    kwargs = dict(collate_fn=padded_collate, num_workers=config.dataloader_num_workers,
                  pin_memory=torch.cuda.is_available())
    # a private generator: iterating the loader must not draw from the global RNG (dropout's),
    # or a resumed run would see other dropout masks than an uninterrupted one
    train_dl = DataLoader(train_tok.select_columns(["input_ids", "labels"]), batch_sampler=sampler,
                          generator=torch.Generator().manual_seed(config.seed),
                          **{**kwargs, "collate_fn": packed_collate or padded_collate})
    eval_dl = None
    if eval_tok is not None:
        ev_sampler = LengthBucketBatchSampler(eval_tok["length"], config.eval_batch_size,
                                              bucket_batches=len(eval_tok), shuffle=False)
        eval_dl = DataLoader(eval_tok.select_columns(["input_ids", "labels"]), batch_sampler=ev_sampler, **kwargs)
    return train_dl, eval_dl, sampler


def _train_batching(config: TrainConfig, tokenizer, lengths):
    """The train batch sampler, and the packed collator under ``--packing`` (else None: the padding one).

    Packed micro-batches are ``micro_batch_size`` rows of ``max_seq_length`` tokens, topped up with empty
    rows to that fixed shape; flash-attention gets them as one flattened row (its variable-length
    path), without the padding at all unless a static shape is wanted for ``--torch_compile``.
    """
    if not config.packing:
        return LengthBucketBatchSampler(lengths, config.micro_batch_size, config.bucket_batches,
                                        seed=config.seed), None
    flash = config.attn_implementation == "flash_attention_2"
    sampler = PackedBatchSampler(lengths, config.micro_batch_size, config.max_seq_length, config.bucket_batches,
                                 seed=config.seed)
    collate = PackedCollator(config.max_seq_length, tokenizer.pad_token_id,
                             rows=None if flash and not config.torch_compile else config.micro_batch_size,
                             flatten=flash)
    return sampler, collate
