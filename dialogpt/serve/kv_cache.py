"""KV slots for continuous batching: one preallocated slot per running row, each with its own length,
and the attention that reads them.

Why not a ``DynamicCache`` (what the scheduler used before): it grows by ``torch.cat`` of every layer at
every step, and rows that started at different times must all be left-padded to the widest, so every
join re-pads and copies the whole cache, and attention runs over the padding (at 117M and 64 rows that
copying was 41% of a decoding step, ``bench/serve.117M.results.json``).

Layout, per layer: ``keys`` and ``values`` of shape ``(slots, heads, width, head_dim)``. Running row
``i`` is slot ``i``; its tokens fill columns ``0 .. length_i - 1``, which are also its position ids (the
positions the Responder's left-padded batch gives the same tokens). One forward pass
(:meth:`SlotCache.forward`) takes, packed into one sequence without padding, the next token of every
running row and the prompts of the rows joining (which take the next free slots), so the weights are
read once for both:

* the cache writes every token's key/value at its row's column (one indexed write per layer);
* :func:`slot_attention` (registered with transformers' ``AttentionInterface``) lets each running row's
  token attend to its own columns ``<= length_i``, reading views of the buffers (nothing is copied):
  one batched attention with a boolean mask for the shorter rows, or, on CPU when padding to the
  longest row would more than double what is read, one attention per row over its own columns (at 64
  rows of the bench's prompts that halves the attention's time; on a GPU, where each call is a kernel
  launch, the batched one); each new prompt attends causally to itself only
  (one attention per prompt: no quadratic work across the packed prompts);
* only the positions whose next token is needed reach the output layer (``logits_to_keep``).

A row that leaves frees its slot and the last rows move down into the holes (one row copied per hole),
so the running rows are always slots ``0 .. n-1``. Memory: slots grow (doubling) to at most
``max_rows``; the width is what the longest row may come to hold (its prompt plus ``max_new_tokens``,
known when it joins, so decoding never reallocates), never past the model's context, and shrinks when
the longest rows leave; the scheduler releases it all once the server is idle (not between two
requests, where it would be allocated again at once). The cache is sized by ``--max-batch`` x context
at worst, never by the machine.

The model code runs unchanged: the cache is a transformers :class:`~transformers.Cache`, and the
attention function is only swapped in for the duration of :meth:`SlotCache.forward` (any other forward
pass meanwhile gets exactly ``sdpa``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

ATTENTION = "dialogpt_slots"


@dataclass
class SlotPlan:
    """Where the tokens of one packed forward pass go: ``rows`` running rows (one token each, first),
    then ``segments`` ``(slot, start, length)`` of new prompts."""

    slots: torch.Tensor
    cols: torch.Tensor
    rows: int
    width: int
    decode_mask: torch.Tensor | None
    """``None`` when the running rows attend one by one (``seen``) rather than padded to ``width``."""
    seen: list[int]
    """columns each running row attends to (its length + 1)."""
    segments: list[tuple[int, int, int]]


def slot_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, slot_plan=None,
                   **kwargs):
    """Attention over a :class:`SlotCache` (``key``/``value`` are a layer's whole buffers); without a
    plan, plain ``sdpa``."""
    if slot_plan is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    n, w, parts = slot_plan.rows, slot_plan.width, []
    sdpa = functools.partial(F.scaled_dot_product_attention, scale=scaling, enable_gqa=key.shape[1] != query.shape[1])
    if n:  # query: (1, heads, tokens, dim) -> (rows, heads, 1, dim)
        q = query[0, :, :n].transpose(0, 1).unsqueeze(2)
        if slot_plan.decode_mask is not None:
            out = sdpa(q, key[:n, :, :w], value[:n, :, :w], attn_mask=slot_plan.decode_mask)
        else:  # rows of very different lengths: each reads its own columns only
            out = torch.cat([sdpa(q[i:i + 1], key[i:i + 1, :, :k], value[i:i + 1, :, :k])
                             for i, k in enumerate(slot_plan.seen)])
        parts.append(out.transpose(1, 2).reshape(1, n, out.shape[1], out.shape[3]))
    for slot, start, length in slot_plan.segments:
        out = sdpa(query[:, :, start:start + length], key[slot:slot + 1, :, :length], value[slot:slot + 1, :, :length],
                   is_causal=True)
        parts.append(out.transpose(1, 2))
    return torch.cat(parts, 1) if len(parts) > 1 else parts[0].contiguous(), None


AttentionInterface.register(ATTENTION, slot_attention)
AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


@contextlib.contextmanager
def _attention(model, name: str):
    old = model.config._attn_implementation
    model.config._attn_implementation = name
    try:
        yield
    finally:
        model.config._attn_implementation = old


class _SlotLayer(CacheLayerMixin):
    """One layer's buffers; the writes are the owning :class:`SlotCache`'s."""

    is_sliding = False

    def __init__(self, owner: SlotCache):
        super().__init__()
        self.owner = owner

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        return self.owner._write(self, key_states, value_states)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def get_seq_length(self) -> int:
        return max(self.owner.lengths, default=0)

    def get_max_length(self) -> int:
        return self.owner.max_width


class SlotCache(Cache):
    """The running rows' keys and values (see the module docstring)."""

    def __init__(self, num_layers: int, max_rows: int, max_width: int, grain: int = 64):
        super().__init__(layers=[_SlotLayer(self) for _ in range(num_layers)])
        self.max_rows, self.max_width, self.grain = max_rows, max_width, grain
        #: tokens cached per running row (row i is slot i), and the most each may come to hold
        self.lengths: list[int] = []
        self.limits: list[int] = []
        self._rows_cap, self._width_cap = 0, 0
        self._plan: SlotPlan | None = None

    def forward(self, model, last: Sequence[int], prompts: Sequence[Sequence[int]],
                limits: Sequence[int]) -> torch.Tensor:
        """One pass of ``model``: the next token ``last[i]`` of every running row, and the ``prompts`` of
        new rows (row ``j`` may come to hold ``limits[j]`` tokens). Returns the next-token logits, one line
        per row: the running rows, then the new ones (whose slots follow)."""
        if len(last) != len(self.lengths):
            raise ValueError(f"{len(last)} tokens for {len(self.lengths)} running rows")
        device = next(model.parameters()).device
        pos, keep = self._plan_pass([len(p) for p in prompts], limits, device)
        ids = torch.tensor([list(last) + [t for p in prompts for t in p]], device=device)
        here = torch.ones((1, 1, 1, 1), dtype=torch.bool, device=device)  # 4D: the model builds no mask
        with _attention(model, ATTENTION):
            out = model(input_ids=ids, position_ids=pos, attention_mask=here, cache=self, use_cache=True,
                        logits_to_keep=keep, slot_plan=self._plan)
        self.lengths = [k + 1 for k in self.lengths] + [len(p) for p in prompts]
        self.limits = self.limits + list(limits)
        self._plan = None
        return out.logits[0]

    def _plan_pass(self, lengths: Sequence[int], limits: Sequence[int], device) -> tuple[torch.Tensor, torch.Tensor]:
        n, k = len(self.lengths), len(lengths)
        if n + k > self.max_rows or max(limits, default=0) > self.max_width:
            raise ValueError(f"{k} new rows (up to {max(limits)} tokens) do not fit beside {n} rows "
                             f"(at most {self.max_rows} rows of {self.max_width} tokens)")
        if any(length >= limit for length, limit in zip(self.lengths, self.limits)):
            raise ValueError("a running row is past the tokens it joined with")
        self._reserve(n + k, max([*self.limits, *limits]))
        running = torch.tensor(self.lengths, dtype=torch.long, device=device)
        sizes = torch.tensor(list(lengths), dtype=torch.long, device=device)
        starts = torch.cumsum(sizes, 0) - sizes
        new_slots = torch.repeat_interleave(torch.arange(n, n + k, device=device), sizes)
        new_cols = torch.arange(int(sizes.sum()), device=device) - torch.repeat_interleave(starts, sizes)
        seen = [k + 1 for k in self.lengths]
        width = max(seen, default=0)
        mask = None
        if n and (n * width < 2 * sum(seen) or device.type != "cpu"):  # padding at most doubles what is read
            mask = (torch.arange(width, device=device)[None, :] <= running[:, None])[:, None, None]
        segments = [(n + j, n + s, size) for j, (s, size) in enumerate(zip(starts.tolist(), lengths))]
        self._plan = SlotPlan(torch.cat([torch.arange(n, device=device), new_slots]),
                              torch.cat([running, new_cols]), n, width, mask, seen, segments)
        keep = torch.cat([torch.arange(n, device=device), n + starts + sizes - 1])
        return self._plan.cols[None, :], keep

    # ------------------------------------------------------------------ rows leaving
    def drop(self, gone: Sequence[int]) -> list[int]:
        """Free the slots ``gone``; the last rows move into the holes. Returns the new order: entry ``t``
        is the old slot of the row now in slot ``t``."""
        gone_set = set(gone)
        n, keep = len(self.lengths), len(self.lengths) - len(gone_set)
        holes = sorted(s for s in gone_set if s < keep)
        movers = [s for s in range(keep, n) if s not in gone_set]
        order = list(range(n))
        for h, m in zip(holes, movers):
            order[h] = m
        order = order[:keep]
        self.lengths = [self.lengths[s] for s in order]
        self.limits = [self.limits[s] for s in order]
        if not order:
            return order
        if holes:
            dst, src = torch.tensor(holes), torch.tensor(movers)
            for layer in self.layers:
                for buf in (layer.keys, layer.values):
                    buf[dst.to(buf.device)] = buf[src.to(buf.device)]
        width = self._round(max(self.limits))
        if self._width_cap >= 2 * width:  # the longest rows left: far too wide
            self._resize(self._rows_cap, width)
        return order

    def release(self) -> None:
        """Give the memory back (an idle server); only with no running rows."""
        if self.lengths:
            raise ValueError(f"{len(self.lengths)} rows are running")
        self._release()

    def reserve(self, rows: int, width: int) -> None:
        """Make room for ``rows`` rows of up to ``width`` tokens at the next write (one allocation for a
        burst that joins over several passes, instead of one per doubling)."""
        self._reserve(min(rows, self.max_rows), min(width, self.max_width))

    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for layer in self.layers for b in (layer.keys, layer.values)
                   if b is not None)

    # ------------------------------------------------------------------ buffers
    def _round(self, width: int) -> int:
        return min(self.max_width, -(-width // self.grain) * self.grain)

    def _pow2(self, rows: int) -> int:
        return min(self.max_rows, max(4, 1 << (rows - 1).bit_length()))

    def _reserve(self, rows: int, width: int) -> None:
        if rows > self._rows_cap or width > self._width_cap:
            self._rows_cap = max(self._rows_cap, self._pow2(rows))
            self._width_cap = max(self._width_cap, self._round(width))

    def _resize(self, rows: int, width: int) -> None:
        """Shrink the buffers to ``rows`` x ``width`` (the running rows are kept)."""
        self._rows_cap, self._width_cap = rows, width
        for layer in self.layers:
            if layer.keys is not None:
                layer.keys = layer.keys[:rows, :, :width].clone()
                layer.values = layer.values[:rows, :, :width].clone()

    def _release(self) -> None:
        self._rows_cap = self._width_cap = 0
        for layer in self.layers:
            layer.keys = layer.values = None
            layer.is_initialized = False

    def _grow(self, layer: _SlotLayer, like: torch.Tensor) -> None:
        """Bigger buffers for ``layer``, the old contents kept. Everything else is zeros: a masked-out
        column must still hold a finite number (0 x NaN is NaN in attention)."""
        shape = (self._rows_cap, like.shape[1], self._width_cap, like.shape[3])
        for name in ("keys", "values"):
            old, new = getattr(layer, name), torch.empty(shape, dtype=like.dtype, device=like.device)
            r, w = (0, 0) if old is None else (old.shape[0], old.shape[2])
            if old is not None:
                new[:r, :, :w] = old
            new[:r, :, w:].zero_()
            new[r:].zero_()
            setattr(layer, name, new)
        layer.is_initialized = True

    def _write(self, layer: _SlotLayer, key: torch.Tensor, value: torch.Tensor):
        """Every packed token's key/value (``(1, heads, tokens, dim)``) into its row's column; returns the
        whole buffers, which :func:`slot_attention` slices."""
        if layer.keys is None or layer.keys.shape[0] < self._rows_cap or layer.keys.shape[2] < self._width_cap:
            self._grow(layer, key)
        plan = self._plan
        layer.keys[plan.slots, :, plan.cols] = key[0].transpose(0, 1)
        layer.values[plan.slots, :, plan.cols] = value[0].transpose(0, 1)
        return layer.keys, layer.values
