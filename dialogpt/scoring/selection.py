"""Which references score each hypothesis, as DSTC7's ``dstc.py`` chooses them, and the input
checks every metric shares (:func:`prepare`).

Selection (``extract_hyp_refs``): every hypothesis is scored against exactly ``n_refs`` reference
slots. Slot i takes reference ``i % len(refs)``, and if that index equals ``vshuman`` it moves to the
next one. ``dstc.py``'s ``--vshuman`` defaults to **1 for every system**, so with six or more
references the slots are refs ``[0, 2, 2, 3, 4, 5]``: ref 1 (the human response) is dropped and
ref 2 is used twice. The duplicate matters for NIST (information weights and the mean reference
length count every column); BLEU and METEOR do not move.

A leaf module (standard library and :mod:`.dstc_clean` only): the ``evaluate`` modules in ``metrics/``
load it as a sibling file, without the ``dialogpt`` package.
"""

from __future__ import annotations

from collections.abc import Sequence

from .dstc_clean import clean_str

#: dstc.py's defaults (``--n_refs 6``, ``--vshuman 1``).
DSTC_N_REFS = 6
DSTC_VSHUMAN = 1


def select_reference_indices(n_available: int, n_refs: int = DSTC_N_REFS, vshuman: int = -1) -> list[int]:
    """Indices of the references that fill the ``n_refs`` slots (dstc.py ``extract_hyp_refs``).

    >>> select_reference_indices(6, 6, vshuman=1)
    [0, 2, 2, 3, 4, 5]
    >>> select_reference_indices(3, 6, vshuman=1)
    [0, 2, 2, 0, 2, 2]
    """
    if n_available < 1:
        raise ValueError("a hypothesis needs at least one reference")
    if n_refs < 1:
        raise ValueError(f"n_refs must be >= 1, got {n_refs}")
    out = []
    for i in range(n_refs):
        idx = i % n_available
        if idx == vshuman:
            idx = (idx + 1) % n_available
        out.append(idx)
    return out


def select_references(refs: Sequence[str], n_refs: int = DSTC_N_REFS, vshuman: int = -1) -> list[str]:
    return [refs[i] for i in select_reference_indices(len(refs), n_refs, vshuman)]


def pad_references(rows: Sequence[Sequence[str]], n_refs: int | None = None, vshuman: int = -1) -> list[list[str]]:
    """Give every row the same number of references (NIST/BLEU/METEOR score reference *columns*).

    ``n_refs=None`` uses the largest row; shorter rows are filled by cycling, the DSTC7 rule.
    """
    if not rows:
        return []
    n = n_refs if n_refs is not None else max(len(r) for r in rows)
    out = []
    for i, r in enumerate(rows):
        if not r:
            raise ValueError(f"hypothesis {i + 1} has no reference")
        out.append(select_references(r, n, vshuman))
    return out


def prepare(hyps: Sequence[str], refs: Sequence[Sequence[str] | str], *, clean: bool = False,
            n_refs: int | None = None, vshuman: int = -1) -> tuple[list[str], list[list[str]]]:
    """Validate, select/pad references (see :mod:`dialogpt.scoring.refs`) and optionally clean.

    A bare string reference is one reference. Rows with fewer references than the widest row are
    filled by cycling (DSTC7's rule), because mteval and METEOR score reference *columns*.
    """
    hyps = list(hyps)
    rows = [[r] if isinstance(r, str) else list(r) for r in refs]
    if len(hyps) != len(rows):
        raise ValueError(f"{len(hyps)} hypotheses but {len(rows)} reference rows")
    if not hyps:
        raise ValueError("no hypotheses to score")
    rows = pad_references(rows, n_refs, vshuman)
    if clean:
        hyps = [clean_str(h) for h in hyps]
        rows = [[clean_str(r) for r in row] for row in rows]
    return hyps, rows


