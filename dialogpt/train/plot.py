"""Loss and perplexity curves of a run, as a PNG next to its logs (and in its model card).

The seed left its curves in ``train_log.txt`` / ``eval_log.txt`` only; TensorBoard needs a server.
:func:`plot_run` reads the same two CSV logs a run writes (so it works on any run folder, finished,
interrupted or resumed) and draws two panels over optimizer steps: loss (per logged step, the
running mean, validation) and perplexity on a log scale. ``train()`` calls it at the end of a run;
``dialogpt-train plot RUN`` redraws it at any time.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

PLOT_FILE = "loss.png"


def _read_columns(path: Path, columns: tuple[str, ...]) -> dict[str, list[float]]:
    """The named columns of a CSV log as floats; a row cut short by a killed run is skipped."""
    out: dict[str, list[float]] = {c: [] for c in columns}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a dialogpt-hf log (no column {', '.join(missing)})")
        for row in reader:
            try:
                values = [float(row[c]) for c in columns]
            except (TypeError, ValueError):
                continue
            for c, v in zip(columns, values):
                out[c].append(v)
    return out


def read_run_logs(run_dir: str | Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(train, eval) columns of a run folder; raises naming the folder when there is nothing to plot."""
    run = Path(run_dir)
    train_log = run / "train_log.txt"
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run folder")
    if not train_log.is_file():
        raise FileNotFoundError(f"{run}: no train_log.txt (not a dialogpt-train output folder?)")
    train = _read_columns(train_log, ("global_step", "loss", "mean_loss"))
    if not train["global_step"]:
        raise ValueError(f"{train_log}: no step lines yet")
    eval_log = run / "eval_log.txt"
    evals = _read_columns(eval_log, ("global_step", "eval_loss")) if eval_log.is_file() else \
        {"global_step": [], "eval_loss": []}
    return train, evals


def _ppl(values: list[float]) -> list[float]:
    return [math.exp(min(v, 700.0)) for v in values]


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Draw ``loss.png`` (or ``output``) for a run folder; returns the path written."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    train, evals = read_run_logs(run_dir)
    out = Path(output) if output else Path(run_dir) / PLOT_FILE
    fig, (ax_loss, ax_ppl) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    series = [("train (logged step)", train["global_step"], train["loss"], dict(alpha=0.35, lw=1)),
              ("train (running mean)", train["global_step"], train["mean_loss"], dict(lw=2))]
    if evals["global_step"]:
        series.append(("validation", evals["global_step"], evals["eval_loss"], dict(marker="o", lw=2)))
    for label, x, y, style in series:
        ax_loss.plot(x, y, label=label, **style)
        ax_ppl.plot(x, _ppl(y), label=label, **style)
    ax_loss.set(title="Loss (token cross-entropy)", xlabel="optimizer step", ylabel="loss")
    ax_ppl.set(title="Perplexity", xlabel="optimizer step", ylabel="perplexity", yscale="log")
    for ax in (ax_loss, ax_ppl):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(Path(run_dir).resolve().name, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
