"""Batch tensors shared by training, reranking and perplexity: one right-padding rule, one loss.

Training, log-prob reranking and perplexity all score "ids + labels" rows; they must pad and count
tokens the same way or their numbers disagree (a perplexity that is not the training loss is a bug
report waiting to happen). So the padding and the token-weighted cross entropy live here, once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dialogpt.chat_format import IGNORE_INDEX


def pad_right(input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]] | None = None, *,
              pad_id: int, pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """Right-pad rows to the longest (rounded up to ``pad_to_multiple_of``).

    Padding gets attention_mask 0 and label ``IGNORE_INDEX``; pad ids are never compared with EOS, so
    the EOS labels the format keeps survive although pad == EOS for GPT-2. Without ``labels`` the
    result has no ``labels`` key.
    """
    if not input_ids:
        raise ValueError("pad_right: no rows to pad")
    width = max(len(r) for r in input_ids)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    rows = len(input_ids)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    out_labels = torch.full((rows, width), IGNORE_INDEX, dtype=torch.long) if labels is not None else None
    for i, row in enumerate(input_ids):
        n = len(row)
        ids[i, :n] = torch.as_tensor(row, dtype=torch.long)
        mask[i, :n] = 1
        if out_labels is not None:
            if len(labels[i]) != n:
                raise ValueError(f"pad_right: row {i} has {n} ids but {len(labels[i])} labels")
            out_labels[i, :n] = torch.as_tensor(labels[i], dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if out_labels is not None:
        batch["labels"] = out_labels
    return batch


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row summed negative log-likelihood and label-token count, for causal LM logits.

    Position t predicts label t+1 (the shift GPT-2's own loss does); computed in float32 whatever the
    autocast dtype, so bf16 runs report the same loss as fp32 up to the logits' rounding. Summing per
    row (not averaging per batch) is what makes a loss "token-weighted" across batches and processes.
    """
    shifted = labels[:, 1:]
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), shifted, ignore_index=IGNORE_INDEX,
                          reduction="none")
    return nll.sum(1), (shifted != IGNORE_INDEX).sum(1)
