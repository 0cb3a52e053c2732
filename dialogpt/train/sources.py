"""Where a run's dialogues come from, what became of them, and the tokenised sets it trains on.

Dialogues are read (a built dataset, the seed's TSV, or the user's own files), a validation share is held
out as whole dialogues when asked, both sides are tokenised into windows (:mod:`dialogpt.train.data`),
and the run says out loud how much of the data it trains: :class:`DataCoverage` goes to the log before
training, into ``train_results.json`` and into the model card.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from dialogpt.dialog_data import load_dialog_data
from dialogpt.errors import first_line
from dialogpt.legacy_tsv import read_train_tsv
from dialogpt.train.config import TrainConfig, TrainingError
from dialogpt.train.data import TokenizeStats, tokenize_sessions


@dataclass
class DataCoverage:
    """How much of the training data the run trains, counted (``data_coverage`` in train_results.json)."""

    source_format: str
    dialogues: int
    turns: int
    #: turns that carry labels in the training set (each in exactly one window)
    trained_turns: int
    #: trained turns cut inside because a single turn was longer than max_seq_length
    truncated_turns: int
    #: training examples (windows) made from the dialogues
    windows: int
    train_on: str = "all"
    max_seq_length: int = 128
    validation_dialogues: int = 0
    #: dialogues left out, by reason (reading skips, and ``no_trained_turn`` from tokenising)
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        skipped = ", ".join(f"{k} {v:,}" for k, v in self.skipped.items() if v) or "none"
        return (f"data coverage: {self.dialogues:,} dialogues ({self.source_format}), {self.turns:,} turns; "
                f"{self.trained_turns:,} turns trained (--train_on {self.train_on}) in {self.windows:,} windows of "
                f"<= {self.max_seq_length} tokens; {self.truncated_turns:,} cut to fit; "
                f"{self.validation_dialogues:,} dialogues held out for validation; skipped: {skipped}")


@dataclass
class TrainingData:
    """The tokenised sets a run trains and validates on, and the coverage of the training side."""

    train: object
    eval: object | None
    coverage: DataCoverage


# ----------------------------------------------------------------------------------------------
# reading dialogues
# ----------------------------------------------------------------------------------------------

def load_session_splits(dataset: str | None = None, train_file: str | None = None,
                        eval_file: str | None = None, train_split: str = "train",
                        eval_split: str | None = "validation", cache_dir: str | None = None):
    """Return ``(train, eval_or_None)`` ``datasets.Dataset`` objects with a ``turns`` column.

    ``dataset`` is a built dialogue dataset (a directory, a ``save_to_disk`` folder or a Hub id), read
    by the one shared loader (:func:`dialogpt.dialog_data.load_dialog_data`, one-line errors naming
    ``--dataset``); ``train_file``/``eval_file`` are the seed's ``train.tsv`` files.
    """
    if dataset is not None:
        dd = load_dialog_data(dataset, flag="--dataset", cache_dir=cache_dir)
        if train_split not in dd:
            raise ValueError(f"--dataset {dataset}: no split {train_split!r} (has {', '.join(dd)}); "
                             "choose one with --train_split")
        train = dd[train_split]
        ev = None
        if eval_file is not None:
            ev = _tsv_dataset(eval_file)
        elif eval_split and eval_split in dd:
            ev = dd[eval_split]
    else:
        if train_file is None:
            raise ValueError("give --dataset DIR_OR_ID or --train_file train.tsv")
        train = _tsv_dataset(train_file)
        ev = _tsv_dataset(eval_file) if eval_file else None
    for name, ds in (("train", train), ("eval", ev)):
        if ds is not None and "turns" not in ds.column_names:
            raise ValueError(f"{name} data has no 'turns' column (columns: {', '.join(ds.column_names)})")
    return train, ev


def _tsv_dataset(path: str):
    """The seed's train.tsv as a Dataset of sessions (each turn ``{text, weight}``)."""
    import datasets

    rows = [{"turns": [{"text": t.text, "weight": float(t.weight)} for t in s]} for s in read_train_tsv(path)]
    if not rows:
        raise ValueError(f"{path}: no training instances in the file")
    return datasets.Dataset.from_list(rows)


def hold_out_dialogues(ds, percentage: float, seed: int):
    """``(train, validation)``: ``percentage`` percent of the DIALOGUES, seeded. Rows are dialogues and windows
    are made later, so no dialogue has windows on both sides."""
    n_val = int(round(len(ds) * percentage / 100))
    if n_val < 1 or n_val >= len(ds):
        raise TrainingError(f"--validation_split_percentage {percentage:g} of {len(ds)} dialogues leaves "
                            f"{n_val} for validation: give more data or another percentage")
    parts = ds.train_test_split(test_size=n_val, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def _turn_count(ds) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.list_value_length(ds.data.column("turns"))).as_py() or 0) if len(ds) else 0


# ----------------------------------------------------------------------------------------------
# a run's data, from its config
# ----------------------------------------------------------------------------------------------

def _read(config: TrainConfig):
    try:
        train_raw, eval_raw = load_session_splits(config.dataset, config.train_file, config.eval_file,
                                                  config.train_split, config.eval_split)
    except (OSError, ValueError) as e:
        raise TrainingError((str(e).strip().splitlines() or [first_line(e)])[0]) from None
    if len(train_raw) == 0:
        raise TrainingError(f"the training data ({config.dataset or config.train_file}) is empty")
    if eval_raw is None and config.validation_split_percentage:
        train_raw, eval_raw = hold_out_dialogues(train_raw, config.validation_split_percentage, config.seed)
    return train_raw, eval_raw, "tsv" if config.train_file else "turns", {}


def _coverage(config: TrainConfig, train_raw, stats: TokenizeStats, source_format: str,
              skipped: dict[str, int], n_eval: int) -> DataCoverage:
    return DataCoverage(
        source_format=source_format, dialogues=len(train_raw), turns=_turn_count(train_raw),
        trained_turns=stats.trained_turns, truncated_turns=stats.truncated_turns, windows=stats.kept,
        train_on=config.train_on, max_seq_length=config.max_seq_length, validation_dialogues=n_eval,
        skipped={**skipped, "no_trained_turn": stats.dropped_no_labels})


def load_training_data(config: TrainConfig, accelerator, tokenizer) -> TrainingData:
    """Dialogues -> tokenised train (and eval) windows, and the training side's coverage."""
    train_raw, eval_raw, source_format, skipped = _read(config)
    n_eval = len(eval_raw) if eval_raw is not None else 0
    if config.max_eval_examples and eval_raw is not None:
        eval_raw = eval_raw.select(range(min(len(eval_raw), config.max_eval_examples)))
    kw = dict(max_seq_length=config.max_seq_length, reverse=config.reverse,
              num_proc=config.preprocessing_num_workers, train_on=config.train_on)
    with accelerator.main_process_first():
        train_tok, stats = tokenize_sessions(train_raw, tokenizer, desc="tokenising train", **kw)
        eval_tok = None
        if eval_raw is not None and len(eval_raw):
            eval_tok, _ = tokenize_sessions(eval_raw, tokenizer, desc="tokenising eval", **kw)
    if len(train_tok) == 0:
        raise TrainingError(f"no training dialogue has a turn to train (--train_on {config.train_on}) after "
                            f"tokenising ({stats.dropped_no_labels} dropped): check the weights, roles or speakers")
    coverage = _coverage(config, train_raw, stats, source_format, skipped, n_eval)
    return TrainingData(train_tok, eval_tok if eval_tok is not None and len(eval_tok) else None, coverage)
