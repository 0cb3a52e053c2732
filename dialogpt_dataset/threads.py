"""One Reddit thread in, sessions and counters out: a pure function, no I/O, no executor.

The pipeline groups a month's records by ``link_id`` and calls :func:`build_sessions` once per
thread, so the same code runs in a unit test, in a local worker and on a Ray or Slurm cluster.

Rules (the original ``reddit.py`` ``save_convo`` / ``get_convo``, each rejection counted under the
name in :data:`dialogpt_dataset.normalize.RULES`; what is switched on comes from one
:class:`~dialogpt_dataset.rules.ExtractRules`):

1. Each month is processed on its own, as in the original: a comment is used only when its
   submission is in the same month's RS file (``no_submission_in_month``), and submissions with
   ``num_comments < 2`` are dropped (``submission_few_comments``). When the month has **no RS file**
   at all, threads are rooted at their top-level comments instead (each such session is counted
   as ``rooted_at_comment``; the original would have crashed on the missing submission).
2. Comments are filtered by :func:`normalize.comment_rule`; a filtered comment is as if absent, so
   a reply to it starts a new context (the original's ``pid in comments`` test).
3. Targets: in training months only leaves (comments with no kept reply; ``--leaves_only 1``),
   in test months every comment (``--leaves_only 0``). Targets are visited sorted by
   ``(link_id, parent_id, id)`` as the original sorts them.
4. Per target, in order: ``--keys-file`` (``not_in_keys``), subreddit blocklist
   (``bad_subreddit``), score >= 1 (``low_score``, missing score = 0), then the context walk.
5. Context walk (``get_convo``): from the target up through its parents, at most ``max_depth`` (5)
   comments; a comment longer than 30 words ends the walk above it (the context starts after
   it; a too-long target drops the instance: ``target_too_long``); a parent that is missing or
   filtered ends it too. If the walk reaches the submission and ``use_title`` is on, the title
   (plus selftext with ``use_selftext``) is the root turn, prefixed ``title: `` as the original's
   ``get_convo`` does (``title : ...`` once tokenised). Fewer than ``min_depth`` (2) turns:
   ``min_depth``.
6. Each turn goes through :func:`normalize.gpt_norm`; weights are 1.0, or 0.0 for a turn with a
   blocklisted word in training months (``offensive_turn``; in test months the instance is dropped:
   ``offensive``), and 0.0 for a turn whose sha224 is in ``--discard-keys-file`` (the original's
   ``--discard_tgt_keys``: ``discarded_turn``); then :func:`normalize.instance_rule`.

Ids: a session's id is ``"<link_id>,<parent_id>,<comment_id>"`` (``t3_..,t1_..,t1_..``), the
header the original wrote in front of each instance and the one its multi-reference id lists use.
No author names leave this module.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from dialogpt_dataset import normalize
from dialogpt_dataset.rules import ExtractRules, WordBlocklist, load_subreddits, load_words

#: the original's ``get_convo`` starts a thread with ``"title: " + title`` (it marks the root turn as
#: a submission title rather than a reply)
TITLE_PREFIX = "title: "


@dataclass
class ExtractConfig:
    """:class:`ExtractRules` compiled for one kind of month: lists loaded, keys attached.

    The rules themselves (depth, score, title, switches) live only in ``rules``; this adds what a
    worker needs at run time. Build it with :meth:`from_rules`.
    """

    rules: ExtractRules = field(default_factory=ExtractRules)
    #: training months use leaves only; the test months (multi-reference set) use every comment
    leaves_only: bool = True
    word_blocklist: WordBlocklist | None = None
    subreddit_blocklist: frozenset[str] = frozenset()
    #: (link_id, comment_id) pairs to keep, from --keys-file; None keeps everything
    keys: frozenset[tuple[str, str]] | None = None
    #: sha224 hex digests of normalised turns to train on with weight 0.0 (the original's
    #: ``--discard_tgt_keys`` ``keys/<month>-o.gz`` files), from --discard-keys-file
    discard_hashes: frozenset[str] | None = None

    @classmethod
    def from_rules(cls, rules: ExtractRules, leaves_only: bool, keys=None, discard=None) -> ExtractConfig:
        return cls(rules=rules, leaves_only=leaves_only, word_blocklist=load_words(rules.words_blocklist),
                   subreddit_blocklist=load_subreddits(rules.subreddits_blocklist), keys=keys, discard_hashes=discard)


@dataclass
class Session:
    id: str
    link_id: str
    parent_id: str
    comment_id: str
    subreddit: str
    created_utc: int
    turns: list[dict] = field(default_factory=list)  # {"text", "weight", "score"}, oldest first

    def to_row(self) -> dict:
        return {"id": self.id, "subreddit": self.subreddit, "created_utc": self.created_utc,
                "turns": self.turns, "references": []}


def session_id(link_id: str, parent_id: str, comment_id: str) -> str:
    return f"{link_id},{parent_id},{comment_id}"


def key_of_id(instance_id: str) -> tuple[str, str]:
    """The (link_id, comment_id) pair an instance id stands for (what --keys-file matches on)."""
    parts = instance_id.split(",")
    return parts[0], parts[-1]


def build_sessions(
    submission: dict | None,
    comments: Iterable[dict],
    cfg: ExtractConfig,
    counters: Counter,
    has_rs: bool = True,
) -> list[Session]:
    """All sessions of one thread (one ``link_id`` of one month). See the module doc for the rules.

    ``submission`` / ``comments`` are the compact records of :mod:`dialogpt_dataset.dumps`
    (``id``, ``p`` parent, ``l`` link, ``s`` score, ``t`` created, ``r`` subreddit, ``b`` body,
    ``a`` author; submissions ``ti`` title, ``st`` selftext, ``n`` num_comments).
    """
    comments = list(comments)
    if has_rs and submission is None:
        counters["no_submission_in_month"] += len(comments)
        return []
    if submission is not None and submission.get("n") is not None and submission["n"] < 2:
        counters["submission_few_comments"] += 1
        return []
    kept = usable_comments(comments, cfg.rules, counters)
    root_text = title_turn(submission, cfg.rules)
    norm = _NormCache()
    sessions: list[Session] = []
    for tgt in select_targets(kept, cfg.leaves_only, counters):
        subreddit = (submission or {}).get("r") or tgt["r"]
        if not target_passes(tgt, subreddit, cfg, counters):
            continue
        raw, reached_top = context_chain(tgt, kept, cfg.rules.max_depth)
        if reached_top and root_text is not None:
            raw.insert(0, (submission["id"], root_text, submission["s"]))
        if len(raw) < cfg.rules.min_depth:
            counters["min_depth"] += 1
            continue
        texts = [norm(k, t) for k, t, _ in raw]
        weights = turn_weights(texts, cfg, counters)
        if weights is None:
            continue
        if reached_top and root_text is None and submission is None:
            counters["rooted_at_comment"] += 1
        counters["sessions"] += 1
        sessions.append(Session(
            id=session_id(tgt["l"], tgt["p"], tgt["id"]), link_id=tgt["l"], parent_id=tgt["p"],
            comment_id=tgt["id"], subreddit=subreddit, created_utc=int(tgt["t"]),
            turns=[{"text": t, "weight": w, "score": int(s)} for t, w, (_, _, s) in zip(texts, weights, raw)],
        ))
    return sessions


#: counters that a one-target rerun shares with every other target of the thread
_THREAD_WIDE = {"not_a_leaf", "not_in_keys", "duplicate_record", "sessions"} | set(normalize.COMMENT_RULES)


def explain_target(submission: dict | None, comments: Iterable[dict], cfg: ExtractConfig, comment_id: str,
                   has_rs: bool = True) -> str:
    """Why ``comment_id`` is or is not the target of a session: the name of the rule that dropped it,
    or ``"kept"``. For a user asking "why is this reply not in my data?" and for the oracle test's report."""
    comments = list(comments)
    tgt = next((c for c in comments if c["id"] == comment_id), None)
    if tgt is None:
        return "not in this thread's records"
    counters: Counter = Counter()
    kept = usable_comments(comments, cfg.rules, counters)
    if comment_id not in kept:
        return normalize.comment_rule(tgt["b"], tgt.get("a"), frozenset(cfg.rules.enabled)) or "duplicate_record"
    if cfg.leaves_only and any(c["p"] == comment_id for c in kept.values()):
        return "not_a_leaf"
    one = ExtractConfig(cfg.rules, cfg.leaves_only, cfg.word_blocklist, cfg.subreddit_blocklist,
                        frozenset({(tgt["l"], comment_id)}), cfg.discard_hashes)
    counters = Counter()
    if build_sessions(submission, comments, one, counters, has_rs):
        return "kept"
    return ", ".join(sorted(k for k in counters if k not in _THREAD_WIDE)) or "no rule counted it"


def usable_comments(comments: list[dict], rules: ExtractRules, counters: Counter) -> dict[str, dict]:
    """Comments that pass the comment rules, by id, minimally normalised (the extract stage)."""
    enabled = frozenset(rules.enabled)
    kept: dict[str, dict] = {}
    for c in comments:
        rule = normalize.comment_rule(c["b"], c.get("a"), enabled)
        if rule:
            counters[rule] += 1
            continue
        if c["id"] in kept:  # a record repeated in the dump: the last usable copy wins, as in the
            counters["duplicate_record"] += 1  # original (its comments dict is keyed by id)
            del kept[c["id"]]  # re-inserted below: a dict keeps insertion order, the sort ignores it
        kept[c["id"]] = dict(c, b=normalize.minimal_norm(c["b"]))
    return kept


def select_targets(kept: dict[str, dict], leaves_only: bool, counters: Counter) -> list[dict]:
    """Leaves (training months) or every comment (test months), sorted as the original sorts them."""
    parents = {c["p"] for c in kept.values()}
    targets = []
    for c in kept.values():
        if leaves_only and c["id"] in parents:
            counters["not_a_leaf"] += 1
        else:
            targets.append(c)
    targets.sort(key=lambda c: (c["l"], c["p"], c["id"]))
    return targets


def title_turn(submission: dict | None, rules: ExtractRules) -> str | None:
    """The root turn when ``use_title`` is on (None otherwise)."""
    if submission is None or not rules.use_title:
        return None
    # the original's extract stage minimal-normalises the title too (backslashes go before the
    # conv stage looks for '#' tags: "\#tag" is dropped, not kept as "tag")
    text = TITLE_PREFIX + normalize.minimal_norm(submission["ti"])
    if rules.use_selftext and submission["st"] not in ("", "[deleted]", "[removed]"):
        text = f"{text} {normalize.minimal_norm(submission['st'])}"
    return text


def target_passes(tgt: dict, subreddit: str, cfg: ExtractConfig, counters: Counter) -> bool:
    """The per-target checks before the context walk, in the original's order (each counted)."""
    if cfg.keys is not None and (tgt["l"], tgt["id"]) not in cfg.keys:
        counters["not_in_keys"] += 1
    elif subreddit in cfg.subreddit_blocklist:
        counters["bad_subreddit"] += 1
    elif tgt["s"] < cfg.rules.min_score:
        counters["low_score"] += 1
    elif normalize.too_long_turn(tgt["b"]):
        counters["target_too_long"] += 1
    else:
        return True
    return False


def context_chain(tgt: dict, kept: dict[str, dict], max_depth: int) -> tuple[list[tuple], bool]:
    """``get_convo``: (id, text, score) oldest first, up to ``max_depth`` comments; and whether the
    walk reached the submission (where the title turn goes)."""
    chain = []  # target first, walking up
    c = tgt
    reached_top = False
    while len(chain) < max_depth and not normalize.too_long_turn(c["b"]):
        chain.append(c)
        if c["p"].startswith("t3_"):
            reached_top = True
            break
        if c["p"] not in kept:
            break
        c = kept[c["p"]]
    chain.reverse()
    return [(cm["id"], cm["b"], cm["s"]) for cm in chain], reached_top


def turn_weights(texts: list[str], cfg: ExtractConfig, counters: Counter) -> list[float] | None:
    """1.0 per turn, 0.0 for discarded / blocklisted ones (training months); None when the instance
    is dropped (an offensive test response, or an instance rule)."""
    weights = [1.0] * len(texts)
    if cfg.discard_hashes and cfg.leaves_only:
        for i, t in enumerate(texts):
            if hashlib.sha224(t.encode("utf-8")).hexdigest() in cfg.discard_hashes:
                weights[i] = 0.0
                counters["discarded_turn"] += 1
    blocklist = cfg.word_blocklist
    if blocklist:
        if cfg.leaves_only:
            for i, t in enumerate(texts):
                if blocklist.matches(t):
                    weights[i] = 0.0
                    counters["offensive_turn"] += 1
        elif blocklist.matches(texts[-1]):
            counters["offensive"] += 1
            return None
    rule = normalize.instance_rule(texts, weighted=cfg.leaves_only)
    if rule:
        counters[rule] += 1
        return None
    return weights


class _NormCache:
    """``gpt_norm`` once per comment: a comment is a context turn of many sessions."""

    def __init__(self):
        self.cache: dict[str, str] = {}

    def __call__(self, key: str, text: str) -> str:
        if key not in self.cache:
            self.cache[key] = normalize.gpt_norm(text)
        return self.cache[key]
