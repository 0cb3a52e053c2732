"""Growing and shrinking a batch's KV cache between decoding steps (continuous batching).

Rows are left-padded: each row's tokens end at the last column, so one new column per step serves
every row, and the attention mask (1 = a real token) says where each row starts. Joining rows pads
the narrower side on the left; dropping rows also drops the leading columns that are padding in
every row left, so the cache never grows wider than the longest running row.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache


def _pad_left(t: torch.Tensor, width: int, seq_dim: int) -> torch.Tensor:
    d = width - t.shape[seq_dim]
    if d == 0:
        return t
    spec = [0, 0] * (t.dim() - 1 - seq_dim) + [d, 0]
    return torch.nn.functional.pad(t, spec)


def join(cache: DynamicCache | None, mask: torch.Tensor | None, new_cache: DynamicCache,
         new_mask: torch.Tensor) -> tuple[DynamicCache, torch.Tensor]:
    """The rows of ``new_cache`` appended below those of ``cache`` (which is updated in place)."""
    if cache is None:
        return new_cache, new_mask
    width = max(mask.shape[1], new_mask.shape[1])
    for old, new in zip(cache.layers, new_cache.layers):  # keys/values: (batch, heads, seq, head_dim)
        old.keys = torch.cat([_pad_left(old.keys, width, 2), _pad_left(new.keys, width, 2)], 0)
        old.values = torch.cat([_pad_left(old.values, width, 2), _pad_left(new.values, width, 2)], 0)
    return cache, torch.cat([_pad_left(mask, width, 1), _pad_left(new_mask, width, 1)], 0)


def keep_rows(cache: DynamicCache, mask: torch.Tensor, keep: list[int]) -> tuple[DynamicCache, torch.Tensor]:
    """Only rows ``keep`` (non-empty), without the columns that are padding in all of them."""
    idx = torch.tensor(keep, device=mask.device)
    mask = mask[idx]
    start = int((mask.sum(0) > 0).nonzero()[0])
    for layer in cache.layers:
        layer.keys = layer.keys[idx, :, start:]
        layer.values = layer.values[idx, :, start:]
    return cache, mask[:, start:]
