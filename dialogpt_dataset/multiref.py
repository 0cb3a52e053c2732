"""The multi-reference test set: contexts that received several distinct human replies.

The seed's 6K set (``data/test-multi-refs-ids.txt`` + ``src/create-multiref.py``) lists, for one
context, several instances ``score,link_id,parent_id,comment_id`` that share the same source; its
``test.refs.txt`` row is ``source\\tscore|reference\\tscore|reference...`` with the source turns joined
by `` EOS ``, references ordered by Reddit score (highest first) and curly quotes turned into ``"``.

Here the test threads are extracted with every comment as a target (the original's
``--leaves_only 0`` for test months); sessions sharing ``(link_id, parent_id)`` share their context.
A context becomes a test row when it has at least ``min_refs`` distinct replies (else counted as
``multiref_too_few_refs``); at most ``max_refs`` are kept, best score first (ties: comment id).
The row's ``turns`` hold the context only; the replies are in ``references``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from dialogpt_dataset.threads import Session

DEFAULT_MIN_REFS = 5  # the smallest reference count in the seed's test-multi-refs-ids.txt
DEFAULT_MAX_REFS = None


def _straight_quotes(text: str) -> str:
    # create-multiref.py replaces curly double quotes on the whole line
    return text.replace("“", '"').replace("”", '"')


def multiref_rows(
    sessions: Iterable[Session],
    counters: Counter,
    min_refs: int = DEFAULT_MIN_REFS,
    max_refs: int | None = DEFAULT_MAX_REFS,
) -> list[dict]:
    """Group test sessions by context; one row per context with enough distinct replies.

    Rows carry the public columns (``id``, ``subreddit``, ``created_utc``, ``turns``,
    ``references``) plus ``reference_scores`` and ``reference_ids`` for ``test.refs.txt`` and the
    keys file.
    """
    groups: dict[tuple[str, str], list[Session]] = defaultdict(list)
    for s in sessions:
        groups[(s.link_id, s.parent_id)].append(s)
    rows = []
    for (link_id, parent_id), members in sorted(groups.items()):
        best: dict[str, tuple[int, str]] = {}
        for s in members:
            text = _straight_quotes(s.turns[-1].text)
            score = s.turns[-1].score
            if text not in best or (-score, s.comment_id) < (-best[text][0], best[text][1]):
                best[text] = (score, s.comment_id)
        refs = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        if len(refs) < min_refs:
            counters["multiref_too_few_refs"] += 1
            continue
        if max_refs is not None:
            refs = refs[:max_refs]
        first = members[0]
        context = [{"text": _straight_quotes(t.text), "weight": t.weight, "score": t.score} for t in first.turns[:-1]]
        counters["multiref_contexts"] += 1
        counters["multiref_references"] += len(refs)
        rows.append({
            "id": f"{link_id},{parent_id}",
            "subreddit": first.subreddit,
            "created_utc": min(s.created_utc for s in members),
            "turns": context,
            "references": [t for t, _ in refs],
            "reference_scores": [sc for _, (sc, _) in refs],
            "reference_ids": [f"{link_id},{parent_id},{cid}" for _, (_, cid) in refs],
        })
    return rows


def refs_file_rows(rows: Iterable[dict]) -> list[tuple[str, list[tuple[float, str]]]]:
    """Test rows -> the (source, [(score, reference), ...]) rows ``legacy_tsv.write_refs`` takes."""
    out = []
    for r in rows:
        src = " EOS ".join(t["text"] for t in r["turns"])
        out.append((src, [(float(s), t) for s, t in zip(r["reference_scores"], r["references"])]))
    return out
