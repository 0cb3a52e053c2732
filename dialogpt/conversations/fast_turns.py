"""The ``turns`` layout on Arrow arrays: our Reddit build (146M sessions at full size) read without a Python
loop per turn.

A batch whose every turn is clean (a string, not empty, no outer whitespace, in a list of at least
``min_turns``) is rewritten with pyarrow/numpy: roles alternate back from the last turn, weights kept,
``speaker`` = role. Any other batch goes through :func:`~dialogpt.conversations.normalize.normalize_batch`,
which owns every skip rule; the two give identical rows (tested), so this is only a shortcut. Turns that
carry a ``role`` (``dialogpt-data prepare``'s folders, small) always take the row path, which keeps it.
"""

from __future__ import annotations

import functools

import numpy as np

from dialogpt.conversations.detect import Layout
from dialogpt.conversations.normalize import normalize_batch, output_features
from dialogpt.conversations.options import ConversationOptions


@functools.cache
def _outer_space_regex() -> str:
    """RE2 pattern of a string that starts or ends with a character Python's ``str.strip()`` removes."""
    cls = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(0x110000)) if c.isspace())
    return f"^[{cls}]|[{cls}]$"


def _clean_turns(batch, col: str, id_col: str | None, min_turns: int):
    """``(lengths, texts, weights)`` when the fast path applies, else ``None``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    turns = batch.column(col).combine_chunks()
    if not (pa.types.is_list(turns.type) or pa.types.is_large_list(turns.type)):
        return None  # e.g. a legacy Sequence(dict), a struct of lists
    flat = turns.flatten()
    if turns.null_count or flat.null_count or not pa.types.is_struct(flat.type):
        return None
    names = [flat.type.field(i).name for i in range(flat.type.num_fields)]
    if "role" in names:  # turns that carry their roles (dialogpt-data prepare): the row reader keeps them
        return None
    texts = pc.struct_field(flat, "text")
    if not pa.types.is_string(texts.type) or texts.null_count:
        return None
    weights = pc.struct_field(flat, "weight") if "weight" in names else pa.nulls(len(flat), pa.float32())
    if not (pa.types.is_floating(weights.type) or pa.types.is_integer(weights.type) or pa.types.is_null(weights.type)):
        return None
    if id_col is not None and not pa.types.is_string(batch.column(id_col).type):
        return None
    lengths = pc.list_value_length(turns).to_numpy(zero_copy_only=False)
    if (lengths < min_turns).any() or pc.any(pc.equal(pc.utf8_length(texts), 0)).as_py() \
            or pc.any(pc.match_substring_regex(texts, _outer_space_regex())).as_py():
        return None
    return lengths, texts, pc.fill_null(weights.cast(pa.float32()), 1.0)


def turns_batch(batch, indices: list[int], layout: Layout, options: ConversationOptions, source: str,
                id_prefix: str):
    """``datasets.map`` body over Arrow batches (``with_format("arrow")``) for the ``turns`` layout."""
    import pyarrow as pa
    import pyarrow.compute as pc

    clean = _clean_turns(batch, layout.dialogue_column, layout.id_column, options.min_turns)
    if clean is None:
        out = normalize_batch(batch.to_pydict(), indices, layout, options, source, id_prefix)
        return pa.Table.from_pydict(out, schema=output_features().arrow_schema)
    lengths, texts, weights = clean
    n = len(indices)
    parent = np.repeat(np.arange(n), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    from_end = lengths[parent] - 1 - (np.arange(len(parent)) - starts[parent])
    roles = pc.if_else(pa.array(from_end % 2 == 0), "assistant", "user")
    values = pa.StructArray.from_arrays([texts, weights, roles, roles], names=["text", "weight", "role", "speaker"])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    defaults = pa.array([f"{id_prefix}:{i}" for i in indices])
    if layout.id_column is not None:
        ids = batch.column(layout.id_column).combine_chunks()
        ids = pc.if_else(pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False), ids, defaults)
    else:
        ids = defaults
    cols = {"dialogue_id": ids, "turns": pa.ListArray.from_arrays(offsets, values),
            "_keep": pa.array(np.ones(n, dtype=bool)), "_skips": pa.array([[]] * n, pa.list_(pa.string())),
            "_detail": pa.array([""] * n), "_where": pa.array([f"{source} row {i}" for i in indices]),
            "_roles": pa.array([[]] * n, pa.list_(pa.string())), "_system": pa.array(np.zeros(n, dtype=np.int32))}
    return pa.Table.from_pydict(cols).cast(output_features().arrow_schema)
