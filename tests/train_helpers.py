"""Small dialogue datasets for the training tests (made here, nothing downloaded)."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("does money buy happiness depends how much you spend on it what is the best way to buy "
         "be the richest man in world i think so not sure maybe yes no good bad day night cat dog "
         "thanks for this great post love it hate that really").split()


def make_sessions(n: int, seed: int = 0, min_turns: int = 2, max_turns: int = 4) -> list[dict]:
    """Sessions whose responses follow a learnable pattern (the reply repeats a word of the context)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        turns = []
        for j in range(rng.randint(min_turns, max_turns)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(2, 12))]
            if turns:
                words = [turns[-1]["text"].split()[0]] + words
            turns.append({"text": " ".join(words), "weight": 0.0 if j == 0 else 1.0, "score": rng.randint(1, 50)})
        rows.append({"turns": turns})
    return rows


def write_parquet_dataset(root: Path, n_train: int = 96, n_valid: int = 24, seed: int = 0) -> Path:
    """A dataset directory ``load_dataset(dir)`` reads as train/validation splits."""
    import datasets

    root.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(make_sessions(n_train, seed)).to_parquet(str(root / "train.parquet"))
    datasets.Dataset.from_list(make_sessions(n_valid, seed + 1)).to_parquet(str(root / "validation.parquet"))
    return root


def base_config(tmp_path: Path, dataset: Path | None, tokenizer_dir: Path, **overrides):
    """A tiny run on ``dataset`` (None: give ``train_file`` in ``overrides``)."""
    from dialogpt.train.config import TrainConfig

    kw = dict(
        output_dir=str(tmp_path / "run"), dataset=None if dataset is None else str(dataset), model_config="tiny",
        tokenizer_name=str(tokenizer_dir),
        max_seq_length=64, train_batch_size=8, gradient_accumulation_steps=2, eval_batch_size=8,
        learning_rate=3e-3, lr_schedule="None", num_optim_steps=20, logging_steps=1, eval_steps=0, save_steps=0,
        pbar=False, seed=1234, preprocessing_num_workers=None,
    )
    kw.update(overrides)
    return TrainConfig(**kw)


def read_csv_log(path: Path) -> list[dict]:
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, ln.split(","))) for ln in lines[1:]]


class Killed(Exception):
    """Stands for a kill in the middle of a run (raised from a step callback or a patched function)."""


def kill_at(step: int):
    """A ``train(step_callback=...)`` that stops the run right after optimizer step ``step``."""
    def callback(state) -> None:
        if state.global_step == step:
            raise Killed()
    return callback
