"""``prepare(PrepareConfig) -> PrepareResult``: the user's dialogues -> figures, and a loadable, pushable folder.

What ``dialogpt-data prepare`` runs. It reads and holds out dialogues as ``dialogpt-train`` does
(:func:`dialogpt.train.sources.read_dialogues`), counts what a run would train
(:mod:`dialogpt.train.prepare_stats`), and with ``output`` writes::

    data/train-<fingerprint>-NNNNN-of-NNNNN.parquet       dialogue_id, turns, messages (conversations.export)
    data/validation-<fingerprint>-NNNNN-of-NNNNN.parquet  only with validation_split_percentage (whole dialogues)
    README.md             dataset card with YAML ``configs:`` (load_dataset(folder) needs no project code)
    prepare_stats.json    the figures, the command line and the files

and with ``push_to_hub`` uploads that folder as a Hub dataset repo (a temporary one when no ``output``).
Every mistake a user can make is a :class:`PrepareError` (or the reader's ``ConversationError``) with one
line naming the flag or the input, raised before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dialogpt.conversations import ConversationOptions
from dialogpt.conversations.export import prepare_rows
from dialogpt.dataset_folder import export_parquet, fingerprint_parquet, push_dataset_folder
from dialogpt.errors import first_line
from dialogpt.train.prepare_card import render_prepared_card
from dialogpt.train.prepare_stats import PrepareStats, compute_stats
from dialogpt.train.sources import read_dialogues

STATS_FILE = "prepare_stats.json"


class PrepareError(ValueError):
    """A flag or input ``dialogpt-data prepare`` cannot use; the message is one line naming it."""


@dataclass
class PrepareConfig:
    """What to read, how to count it and where the folder goes. Checked in ``__post_init__`` (no I/O
    but looking at the paths), so a bad flag fails before any reading."""

    files: list[str] = field(default_factory=list)   # dialogue files (one type and layout) ...
    dataset: str | None = None                       # ... or a folder / Hub id
    dataset_config: str | None = None
    split: str = "train"                             # the split of --dataset to read
    output: str | None = None
    overwrite: bool = False                          # write into a non-empty --output
    tokenizer: str | None = None                     # name or folder: token figures, windows, coverage
    max_seq_length: int = 128
    train_on: str = "all"                            # all | assistant | a speaker's name
    validation_split_percentage: float | None = None
    seed: int = 42                                   # dialogpt-train's default: the same dialogues held out
    push_to_hub: str | None = None
    private: bool = False
    license: str | None = None
    options: ConversationOptions = field(default_factory=ConversationOptions)
    num_proc: int | None = None

    def __post_init__(self):
        self.files = [str(f) for f in self.files]
        for msg in (self._source_problem(), self._number_problem(), self._output_problem(), self._hub_problem()):
            if msg:
                raise PrepareError(msg)

    def _source_problem(self) -> str | None:
        if bool(self.files) == bool(self.dataset):
            return "give dialogue FILE... or --dataset DIR_OR_ID (one of the two)"
        missing = [f for f in self.files if not Path(f).is_file()]
        if missing:
            return f"{missing[0]}: no such file"
        if self.files and self.split != "train":
            return f"--split {self.split} picks a split of --dataset; FILE... are read whole"
        if self.dataset_config and not self.dataset:
            return "--dataset_config needs --dataset"
        return None

    def _number_problem(self) -> str | None:
        if not isinstance(self.max_seq_length, int) or self.max_seq_length < 2:
            return f"--max_seq_length must be an integer >= 2, got {self.max_seq_length!r}"
        if not self.train_on:
            return "--train_on needs a value: all, assistant, or a speaker's name"
        pct = self.validation_split_percentage
        if pct is not None and not 0 < pct < 100:
            return f"--validation_split_percentage must be between 0 and 100 (exclusive), got {pct}"
        return None

    def _output_problem(self) -> str | None:
        if self.output is None:
            return None
        out = Path(self.output)
        if out.exists() and not out.is_dir():
            return f"--output {out}: exists and is not a directory"
        if out.is_dir() and any(out.iterdir()) and not self.overwrite:
            return (f"--output {out}: exists and is not empty (--overwrite writes into it, replacing its "
                    f"data/*.parquet, README.md and {STATS_FILE})")
        return None

    def _hub_problem(self) -> str | None:
        if self.private and not self.push_to_hub:
            return "--private needs --push-to-hub org/name"
        if self.push_to_hub:
            from huggingface_hub.utils import validate_repo_id

            try:
                validate_repo_id(self.push_to_hub)
            except ValueError as e:
                return f"--push-to-hub {self.push_to_hub!r}: {first_line(e)}"
        return None

    def source_name(self) -> str:
        """The input as the card names it: file names, a Hub id, or a folder's name (never a local path)."""
        if self.files:
            return ", ".join(f"`{Path(f).name}`" for f in self.files)
        return f"`{_public(self.dataset)}`" + (f" (config `{self.dataset_config}`)" if self.dataset_config else "") \
            + f", split `{self.split}`"

    def command_line(self) -> str:
        """The command that makes this folder again (local paths as their last component)."""
        parts = ["dialogpt-data", "prepare"] + [Path(f).name for f in self.files]
        for flag, value in (("--dataset", self.dataset and _public(self.dataset)), ("--dataset_config", self.dataset_config),
                            ("--split", None if self.split == "train" else self.split),
                            ("--tokenizer", self.tokenizer and _public(self.tokenizer)),
                            ("--max_seq_length", self.max_seq_length),
                            ("--train_on", None if self.train_on == "all" else self.train_on),
                            ("--validation_split_percentage", _num(self.validation_split_percentage)),
                            ("--seed", self.seed if self.validation_split_percentage else None)):
            if value is not None:
                parts += [flag, str(value)]
        parts += _option_flags(self.options)
        if self.output:
            parts += ["--output", Path(self.output).resolve().name]
        if self.push_to_hub:
            parts += ["--push-to-hub", self.push_to_hub] + (["--private"] if self.private else [])
        if self.license:
            parts += ["--license", self.license]
        return shlex.join(parts)


def _public(name: str) -> str:
    """A Hub id as it is; a local path by its last component."""
    return Path(name).resolve().name if Path(name).exists() else name


def _num(x: float | None) -> str | None:
    return None if x is None else f"{x:g}"


def _option_flags(options: ConversationOptions) -> list[str]:
    """The reading flags that differ from the defaults, as flags."""
    out: list[str] = []
    default = ConversationOptions()
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if f.name == "min_turns" or value == getattr(default, f.name):
            continue
        if isinstance(value, bool):
            out.append(f"--{f.name}" if value else f"--no-{f.name}")
        else:
            out += [f"--{f.name}", ",".join(value) if isinstance(value, tuple) else str(value)]
    return out


@dataclass
class PrepareResult:
    stats: PrepareStats
    output_dir: str | None = None
    #: split -> Parquet files written, relative to the folder
    files: dict[str, list[str]] = field(default_factory=dict)
    data_fingerprint: str = ""
    hub_url: str | None = None

    def as_dict(self) -> dict:
        return {**self.stats.as_dict(), "output_dir": self.output_dir, "files": self.files,
                "data_fingerprint": self.data_fingerprint, "hub_url": self.hub_url}


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except Exception as e:  # not found, offline, not a tokenizer folder
        raise PrepareError(f"--tokenizer {name}: cannot load a tokenizer ({first_line(e)})") from None
    if tok.eos_token_id is None:
        raise PrepareError(f"--tokenizer {name}: it has no eos token (DialoGPT ends every turn with one)")
    return tok


def prepare(config: PrepareConfig) -> PrepareResult:
    """Read, count, and (with ``output`` / ``push_to_hub``) write and upload; see the module doc."""
    tokenizer = load_tokenizer(config.tokenizer) if config.tokenizer else None
    train_raw, eval_raw, report = read_dialogues(
        dataset=config.dataset, train_file=config.files or None, train_split=config.split,
        eval_split=None if config.files or config.split == "validation" else "validation",
        dataset_config=config.dataset_config, options=config.options,
        validation_split_percentage=config.validation_split_percentage, seed=config.seed, num_proc=config.num_proc)
    stats = compute_stats(train_raw, eval_raw, report, train_on=config.train_on,
                          max_seq_length=config.max_seq_length, tokenizer=tokenizer,
                          tokenizer_name=config.tokenizer and _public(config.tokenizer), num_proc=config.num_proc)
    result = PrepareResult(stats)
    splits = {"train": train_raw, **({"validation": eval_raw} if eval_raw is not None else {})}
    name = config.push_to_hub or (Path(config.output).resolve().name if config.output else "dialogues")
    detected = dataclasses.replace(report, source=config.source_name().replace("`", "")).describe()
    if config.output:
        _write_folder(Path(config.output), splits, config, result, name, detected)
        result.output_dir = str(config.output)
    if config.push_to_hub:
        if config.output:
            result.hub_url = _push(Path(config.output), config)
        else:
            with tempfile.TemporaryDirectory(prefix="dialogpt-prepare-") as tmp:
                _write_folder(Path(tmp), splits, config, result, name, detected)
                result.hub_url = _push(Path(tmp), config)
    return result


def _write_folder(out: Path, splits: dict, config: PrepareConfig, result: PrepareResult, name: str,
                  detected: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / "data").glob("*.parquet"):  # --overwrite: the old rows must not load beside the new
        old.unlink()
    files = {s: export_parquet(prepare_rows(ds, config.train_on, config.num_proc), out, s) for s, ds in splits.items()}
    fingerprint, files = fingerprint_parquet(files)
    result.data_fingerprint = fingerprint
    result.files = {s: [str(p.relative_to(out)) for p in ps] for s, ps in files.items()}
    card = render_prepared_card(result.stats, name=name, source=config.source_name(), detected=detected,
                                command=config.command_line(), fingerprint=fingerprint, license_id=config.license)
    card.save(str(out / "README.md"))
    facts = {**result.stats.as_dict(), "detected": detected, "command": config.command_line(),
             "data_fingerprint": fingerprint, "files": result.files}
    (out / STATS_FILE).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")


def _push(folder: Path, config: PrepareConfig) -> str:
    import httpx

    try:
        return push_dataset_folder(folder, config.push_to_hub, private=config.private,
                                   commit_message="Upload dialogues prepared by dialogpt-data prepare")
    except (httpx.HTTPError, OSError) as e:  # HfHubHTTPError is both; a dead endpoint is httpx's
        msg = " ".join(str(e).split())[:300]
        where = f"the folder {config.output} is complete: run the same command with --overwrite to retry" \
            if config.output else "nothing was kept locally: give --output DIR to keep the folder"
        raise PrepareError(f"--push-to-hub {config.push_to_hub}: upload failed ({type(e).__name__}: {msg}); "
                           f"{where}") from None
