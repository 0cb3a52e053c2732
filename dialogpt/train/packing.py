"""Padding-free packing: whole sessions side by side in fixed-width rows, each attending only to itself.

Why: length buckets already waste little (0.989 real tokens) but every batch has another shape, which
defeats ``torch.compile`` with static shapes and CUDA graphs. Packing puts several sessions in a row of
exactly ``max_seq_length`` tokens, so every micro-batch is ``rows x width`` whatever the data.

How attention stays inside a session: ``position_ids`` restart at 0 at every session start and no 2D
``attention_mask`` is passed. transformers 5 reads such position ids as packed sequences: for
eager/SDPA/flex it builds the block-diagonal causal mask itself (``masking_utils.find_packed_sequence_indices``),
and flash-attention takes its variable-length path (``cu_seqlens`` from the position ids) when the batch
is one flattened row (``flatten=True``). A session's positions are 0..n-1 exactly as in a padded row, so
the position embeddings are the same too. The test ``tests/train/test_packing.py`` shows per-session
losses and gradients equal the padded batch's.

Labels stay exactly as :mod:`dialogpt.chat_format` made them. The label at a session's first position is
never a target in a padded row (the causal shift drops position 0); in a packed row the previous
session's last token would predict it, so it is set to ``IGNORE_INDEX`` (``chat_format`` already makes
it -100: the first turn is never trained).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from dialogpt.chat_format import IGNORE_INDEX


def first_fit_decreasing(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into rows whose lengths sum to <= ``width`` (first fit, longest first).

    First fit decreasing keeps rows within 11/9 of the optimum count and, on dialogue lengths (mean ~53
    of 128), fills them to ~0.99. It also has the property :func:`next_fit` relies on: an item of a
    later row never fits in an earlier row's final free space, so next fit over the rows in order
    rebuilds the very same rows.
    """
    lens = np.asarray(lengths, dtype=np.int64)
    if len(lens) and (lens.max() > width or lens.min() < 1):
        raise ValueError(f"every session must have 1..{width} tokens to be packed (got {lens.min()}..{lens.max()})")
    order = np.argsort(-lens, kind="stable")
    room = np.empty(len(lens), dtype=np.int64)
    rows: list[list[int]] = []
    for i in order:
        n = lens[i]
        fits = room[:len(rows)] >= n
        r = int(fits.argmax()) if len(rows) and fits.any() else len(rows)
        if r == len(rows):
            rows.append([])
            room[r] = width
        rows[r].append(int(i))
        room[r] -= n
    return rows


def next_fit(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Positions of ``lengths`` cut, in order, into rows: a new row when the next item does not fit.

    The collator uses it on the sampler's flat index list. Over any concatenation of valid rows it opens
    at most one row per input row (the rest of an input row always fits in a fresh row), so a batch
    never needs more rows than planned.
    """
    rows: list[list[int]] = []
    used = width
    for i, n in enumerate(lengths):
        if n > width:
            raise ValueError(f"a session of {n} tokens does not fit in a packed row of {width}")
        if used + n > width:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += n
    return rows


class PackedBatchSampler(Sampler[list[int]]):
    """Batches of ``rows_per_batch`` packed rows, as flat index lists (row after row).

    Like ``data.LengthBucketBatchSampler`` (same arguments, ``set_epoch``, ``batches``): shuffle, cut
    into pools (here of about ``bucket_batches`` batches' worth of tokens), pack each pool by first fit
    decreasing, cut the rows into batches, shuffle the batches. Deterministic given ``seed`` and the
    epoch, so resume and ``skip_first_batches`` see the same batches, and Accelerate shards whole
    batches across processes.
    """

    def __init__(self, lengths: Sequence[int], rows_per_batch: int, width: int, bucket_batches: int = 100,
                 seed: int = 42, shuffle: bool = True, drop_last: bool = False):
        if rows_per_batch < 1:
            raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        # not ``batch_size``: Accelerate would take it for sessions per batch and hold back every batch
        # whose session count differs when sharding; without it batches are variable-length lists
        self.rows_per_batch = int(rows_per_batch)
        self.width = int(width)
        self.bucket_batches = max(1, int(bucket_batches))
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rows(self) -> list[list[int]]:
        """The epoch's packed rows (indices into the dataset), pool after pool."""
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        budget = self.rows_per_batch * self.bucket_batches * self.width
        ends = np.searchsorted(np.cumsum(self.lengths[order]), np.arange(budget, int(self.lengths.sum()) + budget,
                                                                          budget), side="right")
        out: list[list[int]] = []
        start = 0
        for end in list(ends) + [n]:
            pool = order[start:end]
            out += [[int(pool[j]) for j in row] for row in first_fit_decreasing(self.lengths[pool], self.width)]
            start = end
        return out

    def batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rows = self.rows()
        out = [[i for row in rows[b:b + self.rows_per_batch] for i in row] for b in range(0, len(rows), self.rows_per_batch)]
        if self.drop_last and out and len(rows) % self.rows_per_batch:
            out.pop()
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, 1])
            out = [out[i] for i in rng.permutation(len(out))]
        self._cache = (self.epoch, out)
        return out

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())

    def real_token_fraction(self) -> float:
        """Real tokens / computed tokens of this epoch's plan, with empty rows topping up short batches."""
        return real_token_fraction(self.lengths, self.batches(), self.width, self.rows_per_batch)


@dataclass
class PackedCollator:
    """Sessions -> ``rows x width`` packed tensors for a causal LM, with ``position_ids`` restarting per session.

    ``rows`` pads the batch with empty rows to a fixed count (static shapes for ``torch.compile``);
    ``flatten`` returns one row, the shape flash-attention's variable-length path needs: without ``rows``
    it holds the real tokens only (padding-free: 1.00 real tokens, a varying length), with ``rows`` all
    ``rows * width`` positions (static). The batch has no ``attention_mask`` on purpose: a 2D mask would make transformers
    ignore the packing and let sessions see each other. ``real_tokens`` marks real (non-pad) tokens for
    counting only; :func:`model_inputs` leaves it out of the model call. Pad tokens form a pseudo-session
    of their own (positions from 0), with labels ``IGNORE_INDEX``.
    """

    width: int
    pad_token_id: int
    rows: int | None = None
    flatten: bool = False

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(f["input_ids"]) for f in features]
        plan = next_fit(lengths, self.width)
        n_rows = max(len(plan), self.rows or 0)
        if self.rows and len(plan) > self.rows:
            raise ValueError(f"{len(plan)} packed rows do not fit in a batch of {self.rows}")
        ids = torch.full((n_rows, self.width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n_rows, self.width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.arange(self.width).repeat(n_rows, 1)
        real = torch.zeros((n_rows, self.width), dtype=torch.bool)
        for r, members in enumerate(plan):
            off = 0
            for i in members:
                n = lengths[i]
                ids[r, off:off + n] = torch.as_tensor(features[i]["input_ids"], dtype=torch.long)
                labels[r, off:off + n] = torch.as_tensor(features[i]["labels"], dtype=torch.long)
                labels[r, off] = IGNORE_INDEX  # never a target: see the module docstring
                positions[r, off:off + n] = torch.arange(n)
                real[r, off:off + n] = True
                off += n
            positions[r, off:] = torch.arange(self.width - off)
        batch = {"input_ids": ids, "labels": labels, "position_ids": positions, "real_tokens": real}
        if self.flatten and not self.rows:
            batch = {k: v[real].unsqueeze(0) for k, v in batch.items()}
        elif self.flatten:
            batch = {k: v.reshape(1, -1) for k, v in batch.items()}
        return batch


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keys of a padded or packed batch that go to the model (never ``real_tokens``)."""
    return {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids", "labels") if k in batch}


def real_token_count(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Real (non-pad) tokens of a padded batch (``attention_mask``) or a packed one (``real_tokens``)."""
    return (batch["real_tokens"] if "real_tokens" in batch else batch["attention_mask"]).sum()


def real_token_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]], width: int,
                        rows_per_batch: int | None = None, padding_free: bool = False) -> float:
    """Real tokens / tokens the model computes for a packed batch plan (1.0 = no padding at all).

    ``rows_per_batch`` counts the empty rows a static-shape batch is topped up with; ``padding_free``
    is the flattened real-tokens-only batch (always 1.0, computed rather than assumed).
    """
    lens = np.asarray(lengths)
    real = computed = 0
    for b in batches:
        n_rows = max(len(next_fit(lens[list(b)], width)), rows_per_batch or 0)
        real += int(lens[list(b)].sum())
        computed += int(lens[list(b)].sum()) if padding_free else n_rows * width
    return real / computed if computed else 1.0
