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
import operator
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from dialogpt_dataset import normalize
from dialogpt_dataset.records import Comment, Submission
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
    #: whether ``word_blocklist`` has an entry (asked per instance: WordBlocklist.__bool__ is a Python call)
    blocks_words: bool = field(init=False, default=False)

    #: the rules' thresholds, at hand (read once per target)
    min_score: int = field(init=False, default=1)
    min_depth: int = field(init=False, default=2)
    max_depth: int = field(init=False, default=5)

    def __post_init__(self):
        self.blocks_words = bool(self.word_blocklist)
        self.min_score, self.min_depth, self.max_depth = self.rules.min_score, self.rules.min_depth, self.rules.max_depth

    @classmethod
    def from_rules(cls, rules: ExtractRules, leaves_only: bool, keys=None, discard=None) -> ExtractConfig:
        return cls(rules=rules, leaves_only=leaves_only, word_blocklist=load_words(rules.words_blocklist),
                   subreddit_blocklist=load_subreddits(rules.subreddits_blocklist), keys=keys, discard_hashes=discard)


class SessionTurn(msgspec.Struct, gc=False):
    """One turn of a session: its normalised text, its weight (0.0: context only) and the score of its
    comment (or submission, for the title)."""

    text: str
    weight: float
    score: int


class Session(msgspec.Struct, gc=False):
    """One instance, encoded (msgspec) exactly as a row of the train / validation Parquet."""

    id: str  # "<link_id>,<parent_id>,<comment_id>" (session_id)
    subreddit: str
    created_utc: int
    turns: list[SessionTurn]  # oldest first; the last one is the response
    references: list[str] = msgspec.field(default_factory=list)  # (test rows only: their replies)

    @property
    def link_id(self) -> str:
        return self.id.split(",")[0]

    @property
    def parent_id(self) -> str:
        return self.id.split(",")[1]

    @property
    def comment_id(self) -> str:
        return self.id.split(",")[2]

    def to_row(self) -> dict:
        return msgspec.to_builtins(self)


def session_id(link_id: str, parent_id: str, comment_id: str) -> str:
    return f"{link_id},{parent_id},{comment_id}"


def key_of_id(instance_id: str) -> tuple[str, str]:
    """The (link_id, comment_id) pair an instance id stands for (what --keys-file matches on)."""
    parts = instance_id.split(",")
    return parts[0], parts[-1]


def build_sessions(
    submission: Submission | None,
    comments: Iterable[Comment],
    cfg: ExtractConfig,
    counters: Counter,
    has_rs: bool = True,
) -> list[Session]:
    """All sessions of one thread (one ``link_id`` of one month). See the module doc for the rules.

    ``submission`` / ``comments`` are the compact records of :mod:`dialogpt_dataset.records`.
    """
    comments = list(comments)
    if has_rs and submission is None:
        counters["no_submission_in_month"] += len(comments)
        return []
    if submission is not None and submission.num_comments is not None and submission.num_comments < 2:
        counters["submission_few_comments"] += 1
        return []
    kept = usable_comments(comments, cfg.rules, counters)
    turns = _Turns(submission, title_turn(submission, cfg.rules), kept, cfg.word_blocklist)
    sessions: list[Session] = []
    for tgt in select_targets(kept, cfg.leaves_only, counters):
        session = _session(tgt, kept, turns, cfg, counters)
        if session is not None:
            sessions.append(session)
    return sessions


_SHORT = 2 * normalize.MAX_TURN_WORDS  # characters: a body this short has at most MAX_TURN_WORDS words


class _Turns:
    """One thread's turns, each worked out once, when a target first needs it: a comment is a
    context turn of many sessions, and most comments are never a turn at all (not a leaf, too low a
    score, no parent), so nothing is normalised before the structural rules have kept it."""

    def __init__(self, submission: Submission | None, title: str | None, kept: dict[str, Comment],
                 blocklist: WordBlocklist | None = None):
        self.submission = submission
        self.subreddit = submission.subreddit if submission else None
        self.title = title
        #: ids of the comments longer than a turn may be (a short body is never too long: not asked)
        self.long = {cid for cid, c in kept.items() if len(c.body) > _SHORT and normalize.too_long_body(c.body)}
        self.blocked = blocklist.matches if blocklist else None
        #: id -> (gpt_norm text, tokens, rule flags, has a blocklisted word)
        self.normed: dict[str, tuple[str, int, int, bool]] = {}

    def normed_turn(self, c: Comment | Submission) -> tuple[str, int, int, bool]:
        """A comment (or, for the title, the submission) as a turn: (text, tokens, rule flags, offensive)."""
        t = self.normed.get(c.id)
        if t is None:
            text, tokens, flags = normalize.turn_of(self.title if c is self.submission else normalize.minimal_norm(c.body))
            t = self.normed[c.id] = (text, tokens, flags, self.blocked is not None and self.blocked(text))
        return t

    def of_chain(self, chain: list) -> tuple[list[tuple[str, int, int, bool]], int, int]:
        """The chain's turns (:meth:`normed_turn`'s: a context turn of several sessions is looked up,
        not re-made), their summed token counts and their rule flags or-ed together."""
        known = self.normed
        normed = []
        tokens = flags = 0
        for c in chain:
            t = known.get(c.id) or self.normed_turn(c)
            normed.append(t)
            tokens += t[1]
            flags |= t[2]
        return normed, tokens, flags


def _session(tgt: Comment, kept: dict[str, Comment], turns: _Turns, cfg: ExtractConfig, counters: Counter) -> Session | None:
    """The session ending at target ``tgt``, or None (the rule that dropped it counted). It runs once
    per target, so the target checks and the context walk are written out here."""
    subreddit = turns.subreddit or tgt.subreddit
    long = turns.long
    # the per-target checks before the context walk, in the original's order (each counted)
    rule = None
    if cfg.keys is not None and (tgt.link, tgt.id) not in cfg.keys:
        rule = "not_in_keys"
    elif subreddit in cfg.subreddit_blocklist:
        rule = "bad_subreddit"
    elif tgt.score < cfg.min_score:
        rule = "low_score"
    elif tgt.id in long:
        rule = "target_too_long"
    if rule:
        counters[rule] += 1
        return None
    # get_convo: from the target up through its parents, at most max_depth comments; a too-long
    # comment or a missing (filtered) parent ends the walk; reaching the submission places the title
    chain = [tgt]
    c, max_depth, reached_top = tgt, cfg.max_depth, False
    while True:
        if c.parent.startswith("t3_"):
            reached_top = True
            break
        c = kept.get(c.parent)
        if c is None or len(chain) >= max_depth or c.id in long:
            break
        chain.append(c)
    chain.reverse()
    with_title = reached_top and turns.title is not None
    if len(chain) + with_title < cfg.min_depth:
        counters["min_depth"] += 1
        return None
    if with_title:
        chain.insert(0, turns.submission)
    normed, tokens, flags = turns.of_chain(chain)
    weights = turn_weights(normed, tokens, flags, cfg, counters)
    if weights is None:
        return None
    if reached_top and turns.title is None and turns.submission is None:
        counters["rooted_at_comment"] += 1
    counters["sessions"] += 1
    return Session(session_id(tgt.link, tgt.parent, tgt.id), subreddit, tgt.created,
                   [SessionTurn(n[0], w, c.score) for n, w, c in zip(normed, weights, chain)])


#: counters that a one-target rerun shares with every other target of the thread
_THREAD_WIDE = {"not_a_leaf", "not_in_keys", "duplicate_record", "sessions"} | set(normalize.COMMENT_RULES)


def explain_target(submission: Submission | None, comments: Iterable[Comment], cfg: ExtractConfig, comment_id: str,
                   has_rs: bool = True) -> str:
    """Why ``comment_id`` is or is not the target of a session: the name of the rule that dropped it,
    or ``"kept"``. For a user asking "why is this reply not in my data?" and for the oracle test's report."""
    comments = list(comments)
    tgt = next((c for c in comments if c.id == comment_id), None)
    if tgt is None:
        return "not in this thread's records"
    counters: Counter = Counter()
    kept = usable_comments(comments, cfg.rules, counters)
    if comment_id not in kept:
        return normalize.comment_rule(tgt.body, tgt.author, frozenset(cfg.rules.enabled)) or "duplicate_record"
    if cfg.leaves_only and any(c.parent == comment_id for c in kept.values()):
        return "not_a_leaf"
    one = ExtractConfig(cfg.rules, cfg.leaves_only, cfg.word_blocklist, cfg.subreddit_blocklist,
                        frozenset({(tgt.link, comment_id)}), cfg.discard_hashes)
    counters = Counter()
    if build_sessions(submission, comments, one, counters, has_rs):
        return "kept"
    return ", ".join(sorted(k for k in counters if k not in _THREAD_WIDE)) or "no rule counted it"


def usable_comments(comments: list[Comment], rules: ExtractRules, counters: Counter) -> dict[str, Comment]:
    """Comments that pass the comment rules, by id (bodies are normalised later, only for the turns)."""
    enabled = frozenset(rules.enabled)
    kept: dict[str, Comment] = {}
    for c in comments:
        rule = normalize.comment_rule(c.body, c.author, enabled)
        if rule:
            counters[rule] += 1
            continue
        if c.id in kept:  # a record repeated in the dump: the last usable copy wins, as in the
            counters["duplicate_record"] += 1  # original (its comments dict is keyed by id)
            del kept[c.id]  # re-inserted below: a dict keeps insertion order, the sort ignores it
        kept[c.id] = c
    return kept


#: the original sorts a thread's targets by (link_id, parent_id, comment_id)
_TARGET_ORDER = operator.attrgetter("link", "parent", "id")


def select_targets(kept: dict[str, Comment], leaves_only: bool, counters: Counter) -> list[Comment]:
    """Leaves (training months) or every comment (test months), sorted as the original sorts them."""
    if leaves_only:
        parents = {c.parent for c in kept.values()}
        targets = [c for c in kept.values() if c.id not in parents]
        if len(targets) < len(kept):  # (a counter is only written once it counted something)
            counters["not_a_leaf"] += len(kept) - len(targets)
    else:
        targets = list(kept.values())
    targets.sort(key=_TARGET_ORDER)
    return targets


def title_turn(submission: Submission | None, rules: ExtractRules) -> str | None:
    """The root turn when ``use_title`` is on (None otherwise)."""
    if submission is None or not rules.use_title:
        return None
    # the original's extract stage minimal-normalises the title too (backslashes go before the
    # conv stage looks for '#' tags: "\#tag" is dropped, not kept as "tag")
    text = TITLE_PREFIX + normalize.minimal_norm(submission.title)
    if rules.use_selftext and submission.selftext not in ("", "[deleted]", "[removed]"):
        text = f"{text} {normalize.minimal_norm(submission.selftext)}"
    return text


def turn_weights(normed: list[tuple], tokens: int, flags: int, cfg: ExtractConfig, counters: Counter) -> list[float] | None:
    """1.0 per turn, 0.0 for discarded / blocklisted ones (training months); None when the instance
    is dropped (an offensive test response, or an instance rule). ``normed``, ``tokens``, ``flags``:
    _Turns.of_chain's."""
    weights = [1.0] * len(normed)
    if cfg.discard_hashes and cfg.leaves_only:
        for i, (t, *_) in enumerate(normed):
            if hashlib.sha224(t.encode("utf-8")).hexdigest() in cfg.discard_hashes:
                weights[i] = 0.0
                counters["discarded_turn"] += 1
    if cfg.blocks_words:
        if cfg.leaves_only:
            for i, (*_, offensive) in enumerate(normed):
                if offensive:
                    weights[i] = 0.0
                    counters["offensive_turn"] += 1
        elif normed[-1][3]:
            counters["offensive"] += 1
            return None
    rule = normalize.rule_of_turns(tokens, len(normed), flags, normed[-1][0].split(), cfg.leaves_only)
    if rule:
        counters[rule] += 1
        return None
    return weights
