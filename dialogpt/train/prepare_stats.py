"""What ``dialogpt-data prepare`` says about a set of dialogues before anyone trains on it.

Sizes (dialogues, turns, turns per dialogue; characters, words and, with a tokenizer, tokens per turn),
and the coverage at ``--max_seq_length`` under ``--train_on``: target turns (pure counting, no tokenizer),
then windows, trained and cut turns from :func:`dialogpt.train.data.tokenize_sessions` and
:func:`dialogpt.train.sources.coverage_of`, the very calls a training run makes, so the figures are
``train_results.json``'s ``data_coverage`` for the same input and flags, not an estimate of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from dialogpt.conversations import ConversationReport
from dialogpt.train.data import tokenize_sessions
from dialogpt.train.sources import DataCoverage, coverage_of, turns_column
from dialogpt.windowing import target_turns, train_on_weights

TOKENIZE_BATCH = 10_000
NEEDS_TOKENIZER = ("tokens per turn, windows and trained turns need --tokenizer NAME_OR_DIR (the tokenizer of "
                   "the model you will fine-tune, e.g. microsoft/DialoGPT-medium)")


@dataclass
class PrepareStats:
    """The figures prepare prints, writes to ``prepare_stats.json`` and puts on the dataset card."""

    detected: str                                   # the reader's one line (layout, counts, skips)
    source_format: str
    splits: dict[str, int]                          # dialogues per split written
    dialogues: int
    turns: int
    turns_per_dialogue: dict[str, float]            # mean, max
    chars_per_turn: dict[str, float]                # mean, median, p95, max
    words_per_turn: dict[str, float]
    train_on: str = "all"
    max_seq_length: int = 128
    #: train side: turns that --train_on makes targets, and dialogues with none (never trained)
    target_turns: int = 0
    dialogues_without_target: int = 0
    skipped: dict[str, int] = field(default_factory=dict)   # the reader's skips, by reason
    tokenizer: str | None = None
    tokens_per_turn: dict[str, float] | None = None  # the text only (each turn also takes one EOS token)
    #: exactly dialogpt-train's data_coverage for the same input and flags (None without a tokenizer)
    data_coverage: dict | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def summary(values: np.ndarray, percentiles: bool = True) -> dict[str, float]:
    """mean, median, p95 (the smallest value at least 95% of them reach), max."""
    if len(values) == 0:
        return {"mean": 0.0, "median": 0.0, "p95": 0, "max": 0} if percentiles else {"mean": 0.0, "max": 0}
    out = {"mean": round(float(values.mean()), 2)}
    if percentiles:
        out["median"] = float(np.median(values))
        out["p95"] = int(np.percentile(values, 95, method="inverted_cdf"))
    out["max"] = int(values.max())
    return out


def _texts(ds):
    import pyarrow.compute as pc

    return pc.struct_field(pc.list_flatten(turns_column(ds)), "text")


def _lengths(ds):
    """(turns per dialogue, characters per turn, words per turn) as arrays (Arrow compute, no Python loop)."""
    import pyarrow.compute as pc

    texts = _texts(ds)
    turns = pc.list_value_length(turns_column(ds)).to_numpy()
    chars = pc.utf8_length(texts).to_numpy()
    words = pc.list_value_length(pc.utf8_split_whitespace(texts)).to_numpy()
    return turns, chars, words


def token_lengths(ds, tokenizer) -> np.ndarray:
    """Tokens of each turn's text (no special tokens), in batches."""
    texts = _texts(ds)
    out = []
    for start in range(0, len(texts), TOKENIZE_BATCH):
        chunk = texts.slice(start, TOKENIZE_BATCH).to_pylist()
        out.extend(len(ids) for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"])
    return np.asarray(out, dtype=np.int64)


def count_targets(ds, train_on: str) -> tuple[int, int]:
    """(target turns, dialogues without one) under ``train_on``: the turns training will put labels on."""
    targets = without = 0
    for batch in ds.select_columns(["turns"]).iter(batch_size=1000):
        for turns in batch["turns"]:
            k = len(target_turns(train_on_weights(turns, train_on)))
            targets += k
            without += k == 0
    return targets, without


def _concat(train_raw, eval_raw):
    import datasets

    return train_raw if eval_raw is None else datasets.concatenate_datasets([train_raw, eval_raw])


def compute_stats(train_raw, eval_raw, report: ConversationReport, *, train_on: str = "all",
                  max_seq_length: int = 128, tokenizer=None, tokenizer_name: str | None = None,
                  num_proc: int | None = None) -> PrepareStats:
    """The figures of every dialogue read (both splits); coverage of the train side, as a run reports it."""
    every = _concat(train_raw, eval_raw)
    turns, chars, words = _lengths(every)
    targets, without = count_targets(train_raw, train_on)
    n_eval = len(eval_raw) if eval_raw is not None else 0
    stats = PrepareStats(
        detected=report.describe(), source_format=report.layout,
        splits={"train": len(train_raw), **({"validation": n_eval} if eval_raw is not None else {})},
        dialogues=len(every), turns=int(turns.sum()), turns_per_dialogue=summary(turns, percentiles=False),
        chars_per_turn=summary(chars), words_per_turn=summary(words), train_on=train_on,
        max_seq_length=max_seq_length, target_turns=targets, dialogues_without_target=without,
        skipped=dict(report.skipped), tokenizer=tokenizer_name)
    if tokenizer is not None:
        stats.tokens_per_turn = summary(token_lengths(every, tokenizer))
        _, tok_stats = tokenize_sessions(train_raw, tokenizer, max_seq_length, num_proc=num_proc,
                                         desc="windowing train", train_on=train_on)
        stats.data_coverage = coverage_of(train_raw, tok_stats, report, train_on=train_on,
                                          max_seq_length=max_seq_length, validation_dialogues=n_eval).as_dict()
    return stats


# ---------------------------------------------------------------------------------------- as text
def _fig(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else f"{k} {v:,}"
                     for k, v in d.items())


def stats_rows(s: PrepareStats) -> list[tuple[str, str]]:
    """(what, figures) rows: the printed table and the card's table."""
    split_text = ", ".join(f"{k} {v:,}" for k, v in s.splits.items())
    rows = [("dialogues", f"{s.dialogues:,} ({split_text})"),
            ("turns", f"{s.turns:,} (per dialogue: {_fig(s.turns_per_dialogue)})"),
            ("characters per turn", _fig(s.chars_per_turn)),
            ("words per turn", _fig(s.words_per_turn))]
    if s.tokens_per_turn is not None:
        rows.append(("tokens per turn", f"{_fig(s.tokens_per_turn)} ({s.tokenizer}; the text only: each turn "
                                        "also takes one EOS token)"))
    rows.append(("target turns (train)", f"{s.target_turns:,} under --train_on {s.train_on}; "
                                         f"{s.dialogues_without_target:,} dialogues have none"))
    cov = s.data_coverage
    if cov is not None:
        rows.append(("windows (train)", f"{cov['windows']:,} of <= {cov['max_seq_length']} tokens"))
        rows.append(("trained turns (train)", f"{cov['trained_turns']:,} trained, {cov['truncated_turns']:,} "
                                              "cut to fit (a turn longer than --max_seq_length)"))
    skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(s.skipped.items()) if v) or "nothing"
    rows.append(("skipped while reading", skipped))
    return rows


def describe(s: PrepareStats) -> str:
    """The printed report: the detection line, one line per figure, and the run's coverage line."""
    width = max(len(k) for k, _ in stats_rows(s))
    lines = [s.detected] + [f"{k:<{width}}  {v}" for k, v in stats_rows(s)]
    if s.data_coverage is not None:
        lines.append(DataCoverage(**s.data_coverage).describe())
    else:
        lines.append(NEEDS_TOKENIZER)
    return "\n".join(lines)
