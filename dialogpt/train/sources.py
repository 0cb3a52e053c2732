"""Where a run's dialogues come from, what became of them, and the tokenised sets it trains on.

Dialogues are read (a built dataset, the seed's TSV, or the user's own files), a validation share is held
out as whole dialogues when asked, both sides are tokenised into windows (:mod:`dialogpt.train.data`),
and the run says out loud how much of the data it trains: :class:`DataCoverage` goes to the log before
training, into ``train_results.json`` and into the model card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from dialogpt.cards import coverage_text
from dialogpt.conversations import (
    ConversationError,
    ConversationOptions,
    ConversationReport,
    MissingSplit,
    load_conversations,
    split_dialogues,
)
from dialogpt.errors import first_line
from dialogpt.train.config import TrainConfig, TrainingError
from dialogpt.train.data import TokenizeStats, arrow_column, tokenize_sessions


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
        return f"data coverage: {coverage_text(self.as_dict())}"


@dataclass
class TrainingData:
    """The tokenised sets a run trains and validates on, and the coverage of the training side."""

    train: object
    eval: object | None
    coverage: DataCoverage


# ----------------------------------------------------------------------------------------------
# reading dialogues
# ----------------------------------------------------------------------------------------------

def load_session_splits(dataset: str | None = None, train_file: str | Sequence[str] | None = None,
                        eval_file: str | None = None, train_split: str = "train",
                        eval_split: str | None = "validation", cache_dir: str | None = None,
                        options: ConversationOptions | None = None, dataset_config: str | None = None,
                        num_proc: int | None = None):
    """``(train, eval_or_None, report)``: dialogues (``dialogue_id``, ``turns``) through the one reader,
    :func:`dialogpt.conversations.load_conversations` (every layout and file type it knows; the report
    says what it detected and skipped). ``eval_split`` that ``dataset`` lacks means no validation.
    ``train_file`` may be several files (of one type and layout: ``dialogpt-data prepare FILE...``)."""
    kw = dict(options=options, cache_dir=cache_dir, num_proc=num_proc)
    if (dataset is None) == (train_file is None):
        raise ConversationError("give --dataset DIR_OR_ID or --train_file FILE")
    if dataset is not None:
        train, report = load_conversations(dataset=dataset, dataset_config=dataset_config, split=train_split,
                                           flag="--dataset", **kw)
    else:
        files = [train_file] if isinstance(train_file, str) else list(train_file)
        train, report = load_conversations(files=files, flag="--train_file", **kw)
    ev = None
    if eval_file is not None:
        ev, _ = load_conversations(files=[eval_file], flag="--eval_file", **kw)
    elif dataset is not None and eval_split:
        try:
            ev, _ = load_conversations(dataset=dataset, dataset_config=dataset_config, split=eval_split,
                                       flag="--dataset", **kw)
        except MissingSplit:  # the default --eval_split "validation" of a dataset that has none
            pass
    return train, ev, report


def turns_column(ds):
    """The ``turns`` column as Arrow (:func:`dialogpt.train.data.arrow_column`: through a held-out split's
    index map)."""
    return arrow_column(ds, "turns")


def _turn_count(ds) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.list_value_length(turns_column(ds))).as_py() or 0) if len(ds) else 0


# ----------------------------------------------------------------------------------------------
# a run's data, from its config
# ----------------------------------------------------------------------------------------------

def read_dialogues(*, dataset: str | None = None, train_file: str | Sequence[str] | None = None,
                   eval_file: str | None = None, train_split: str = "train", eval_split: str | None = "validation",
                   dataset_config: str | None = None, options: ConversationOptions | None = None,
                   validation_split_percentage: float | None = None, seed: int = 42, num_proc: int | None = None):
    """``(train, eval_or_None, report)``: what a run trains and validates on, as whole dialogues.

    :func:`load_session_splits`, then, with no eval file or split, ``validation_split_percentage`` %
    of the dialogues held out (:func:`dialogpt.conversations.split_dialogues`, seeded). ``dialogpt-train``
    and ``dialogpt-data prepare`` both read through here, so they hold out the same dialogues.
    """
    train_raw, eval_raw, report = load_session_splits(
        dataset, train_file, eval_file, train_split, eval_split, options=options, dataset_config=dataset_config,
        num_proc=num_proc)
    if eval_raw is None and validation_split_percentage:
        train_raw, eval_raw = split_dialogues(train_raw, validation_split_percentage, seed)
    return train_raw, eval_raw, report


def _read(config: TrainConfig, is_main: bool):
    """The run's dialogues: train, eval (held out from train when asked) and the reader's report."""
    try:
        train_raw, eval_raw, report = read_dialogues(
            dataset=config.dataset, train_file=config.train_file, eval_file=config.eval_file,
            train_split=config.train_split, eval_split=config.eval_split, dataset_config=config.dataset_config,
            options=config.conversation_options(), validation_split_percentage=config.validation_split_percentage,
            seed=config.seed, num_proc=config.preprocessing_num_workers)
    except (OSError, ValueError) as e:  # ConversationError included: its message names the input
        raise TrainingError((str(e).strip().splitlines() or [first_line(e)])[0]) from None
    if is_main:
        print(report.describe(), flush=True)
    return train_raw, eval_raw, report


def coverage_of(train_raw, stats: TokenizeStats, report: ConversationReport, *, train_on: str,
                max_seq_length: int, validation_dialogues: int) -> DataCoverage:
    """The coverage of tokenising ``train_raw`` (``stats`` from :func:`tokenize_sessions`): what
    ``train_results.json`` and ``dialogpt-data prepare`` both report."""
    return DataCoverage(
        source_format=report.layout, dialogues=len(train_raw), turns=_turn_count(train_raw),
        trained_turns=stats.trained_turns, truncated_turns=stats.truncated_turns, windows=stats.kept,
        train_on=train_on, max_seq_length=max_seq_length, validation_dialogues=validation_dialogues,
        skipped={**report.skipped, "no_trained_turn": stats.dropped_no_labels})


def load_training_data(config: TrainConfig, accelerator, tokenizer) -> TrainingData:
    """Dialogues -> tokenised train (and eval) windows, and the training side's coverage."""
    train_raw, eval_raw, report = _read(config, accelerator.is_main_process)
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
    coverage = coverage_of(train_raw, stats, report, train_on=config.train_on, max_seq_length=config.max_seq_length,
                           validation_dialogues=n_eval)
    return TrainingData(train_tok, eval_tok if eval_tok is not None and len(eval_tok) else None, coverage)
