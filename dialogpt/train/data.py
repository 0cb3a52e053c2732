"""Training data: dialogues -> tokenised windows -> length-bucketed, dynamically padded batches.

Everything that turns text into ids goes through :mod:`dialogpt.windowing` (which encodes with
:mod:`dialogpt.chat_format`); this module only maps, filters, batches and pads. Where the dialogues come
from is :mod:`dialogpt.train.sources`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from dialogpt.tensors import pad_right
from dialogpt.train.config import TrainConfig
from dialogpt.train.packing import PackedBatchSampler, PackedCollator
from dialogpt.windowing import encode_windows, train_on_weights

#: Bump when the tokenised layout changes, so stale ``datasets`` caches are never reused.
FORMAT_VERSION = 2
TOKENIZED_COLUMNS = ("input_ids", "labels", "length", "num_label_tokens", "trained_turns", "truncated_turns")


# ----------------------------------------------------------------------------------------------
# tokenisation
# ----------------------------------------------------------------------------------------------

def tokenizer_fingerprint(tokenizer) -> str:
    """A stable hash of what decides the ids: vocabulary, merges, special tokens."""
    from datasets.fingerprint import Hasher

    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return Hasher.hash([body, tokenizer.eos_token, tokenizer.pad_token])


def _encode_batch(batch, tokenizer, max_seq_length: int, reverse: bool, train_on: str):
    """Dialogues -> their windows (``dialogpt.windowing``); a dialogue with no window leaves one empty row,
    so the filter after the map can count it."""
    eos = tokenizer.eos_token_id
    texts = [str(t["text"]) for turns in batch["turns"] for t in turns]
    ids = iter(tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])
    out = {k: [] for k in TOKENIZED_COLUMNS}
    for turns in batch["turns"]:
        token_turns = [next(ids) for _ in turns]
        examples = encode_windows(token_turns, train_on_weights(turns, train_on), eos, max_seq_length, reverse)
        for ex in examples or [None]:
            enc = ex.encoded if ex is not None else None
            out["input_ids"].append(enc.input_ids if enc else [])
            out["labels"].append(enc.labels if enc else [])
            out["length"].append(len(enc.input_ids) if enc else 0)
            out["num_label_tokens"].append(enc.num_label_tokens if enc else 0)
            out["trained_turns"].append(ex.trained_turns if ex else 0)
            out["truncated_turns"].append(ex.truncated_turns if ex else 0)
    return out


@dataclass
class TokenizeStats:
    """What tokenising made of the dialogues: windows kept, dialogues with nothing to train, turn counts."""

    kept: int
    dropped_no_labels: int
    trained_turns: int = 0
    truncated_turns: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def arrow_column(ds, name: str):
    """One column as Arrow, through the dataset's index map: ``ds.data`` alone is the whole table under a
    ``select`` or ``filter`` (a held-out split, the dropped no-label rows), so it would count those rows too."""
    return ds.select_columns([name]).with_format("arrow")[:][name]


def _column_sum(ds, name: str) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(arrow_column(ds, name)).as_py() or 0) if len(ds) else 0


def tokenize_sessions(ds, tokenizer, max_seq_length: int, reverse: bool = False,
                      num_proc: int | None = None, desc: str = "tokenising", train_on: str = "all"):
    """Dialogues -> windows of ``input_ids``/``labels``/``length`` via ``datasets.map`` (cached).

    A dialogue longer than ``max_seq_length`` becomes several windows, each target turn labelled in exactly
    one (:mod:`dialogpt.windowing`); a short one is one example, as ``encode_session`` encodes it.
    ``train_on`` picks the target turns (:func:`dialogpt.windowing.train_on_weights`).
    The cache key (``new_fingerprint``) is the input dataset's fingerprint plus the tokenizer's
    fingerprint, ``max_seq_length``, the direction, ``train_on`` and :data:`FORMAT_VERSION`: change any of
    them and the map runs again; change none and the cached Arrow file is reused.
    Dialogues with no trained token (one turn, every weight 0, no turn of ``train_on``) are dropped and counted.
    """
    from datasets.fingerprint import Hasher

    if len(ds) == 0:
        raise ValueError("the training data is empty (0 sessions)")
    fp = Hasher.hash([ds._fingerprint, tokenizer_fingerprint(tokenizer), max_seq_length, reverse, train_on,
                      FORMAT_VERSION])
    n_proc = num_proc if (num_proc and num_proc > 1 and len(ds) >= 2 * num_proc) else None
    tok = ds.map(
        _encode_batch, batched=True, batch_size=1000, num_proc=n_proc,
        fn_kwargs={"tokenizer": tokenizer, "max_seq_length": max_seq_length, "reverse": reverse,
                   "train_on": train_on},
        remove_columns=ds.column_names, new_fingerprint=fp, desc=desc,
    )
    before = len(tok)
    tok = tok.filter(lambda n: [x > 0 for x in n], input_columns="num_label_tokens", batched=True,
                     new_fingerprint=Hasher.hash([fp, "has-labels"]), desc="dropping sessions with no labels")
    return tok, TokenizeStats(kept=len(tok), dropped_no_labels=before - len(tok),
                              trained_turns=_column_sum(tok, "trained_turns"),
                              truncated_turns=_column_sum(tok, "truncated_turns"))


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
