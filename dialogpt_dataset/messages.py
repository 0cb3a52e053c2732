"""The ``messages`` column: each row's turns as chat messages, for stock tools (TRL, ``apply_chat_template``).

``turns`` stays the source of truth (text, weight, score); ``messages`` is derived from it per Arrow
table, vectorised, so a shard of millions of rows costs a few array operations:

* ``content`` is the turn's text;
* roles alternate counted back from the end: the last turn of a train/validation session is the reply
  (``assistant``); a test row holds only the context (its replies are ``references``), so its last
  turn is the ``user`` turn being answered;
* ``trainable`` is true exactly where :func:`dialogpt.chat_format.encode_session` puts labels: not the
  first turn, not a weight-0 turn (the original's ``-o.gz`` keys mask), so the tokenizer's
  ``{% generation %}`` blocks and TRL's assistant-only loss train what DialoGPT trains.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string()), ("trainable", pa.bool_())])


def messages_array(turns: pa.Array | pa.ChunkedArray, context_only: bool) -> pa.ListArray:
    """``turns`` (list of {text, weight, ...}) -> list of {role, content, trainable}, row for row."""
    if isinstance(turns, pa.ChunkedArray):
        turns = turns.combine_chunks() if turns.num_chunks else pa.array([], turns.type)
    offsets = turns.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = offsets - offsets[0]
    flat = turns.flatten()  # honours a sliced array's offsets
    lengths = np.diff(offsets)
    row = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(len(flat)) - offsets[:-1][row]
    from_end = lengths[row] - 1 - pos + (1 if context_only else 0)
    role = np.where(from_end % 2 == 0, "assistant", "user")
    weight = flat.field("weight").to_numpy(zero_copy_only=False)
    trainable = (pos > 0) & (weight != 0.0)
    values = pa.StructArray.from_arrays(
        [pa.array(role, pa.string()), flat.field("text"), pa.array(trainable, pa.bool_())],
        fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=turns.is_null())


def add_messages(table: pa.Table, context_only: bool, after: str = "turns") -> pa.Table:
    """``table`` with a ``messages`` column right after ``after`` (see the module docstring)."""
    col = messages_array(table.column("turns"), context_only)
    return table.add_column(table.column_names.index(after) + 1, pa.field("messages", col.type), col)
