"""Hold out whole dialogues for validation (``--validation_split_percentage``, as HF ``run_clm.py``)."""

from __future__ import annotations

import hashlib

import numpy as np

from dialogpt.conversations.options import ConversationError


def split_dialogues(ds, validation_percentage: float, seed: int = 0):
    """``(train, validation)``: ``validation_percentage`` % of the dialogues (rounded, at least one), whole.

    The held-out dialogues are those with the smallest ``sha256(f"{seed}:{dialogue_id}")``, so the
    choice depends on the ids and the seed only: not on row order, and a dialogue added to the file
    does not move others across. Each side keeps the input order. Windowing happens after this split,
    so no window of a held-out dialogue is ever trained on.
    """
    if not 0 < validation_percentage < 100:
        raise ConversationError(f"--validation_split_percentage must be between 0 and 100 (exclusive), "
                                f"got {validation_percentage}")
    n = len(ds)
    n_val = max(1, int(n * validation_percentage / 100 + 0.5))
    if n_val >= n:
        raise ConversationError(f"--validation_split_percentage {validation_percentage}: {n} dialogue(s) cannot "
                                f"give {n_val} to validation and keep one to train on")
    keys = [int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") for i in ds["dialogue_id"]]
    order = np.argsort(np.array(keys, dtype=np.uint64), kind="stable")
    val = np.sort(order[:n_val])
    train = np.sort(order[n_val:])
    return ds.select(train), ds.select(val)
