"""Model cards for trained dialogue and reverse (MMI) models, rendered with ``huggingface_hub.ModelCard``.

The templates live in ``model_cards/`` (``dialogue_model.md``, ``reverse_model.md``); they are
Jinja, filled with figures read from the run itself (training config, step count, throughput,
padding efficiency, measured validation loss/perplexity, and any metrics added later by
evaluation), so a card never carries placeholder numbers. Metadata: ``pipeline_tag:
text-generation``, ``library_name: transformers``, ``datasets`` and a ``model-index`` with the
measured results.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "model_cards"
INSTALLED_TEMPLATE_DIR = Path(sys.prefix) / "share" / "dialogpt-hf" / "model_cards"
DIALOGUE_TEMPLATE = "dialogue_model.md"
REVERSE_TEMPLATE = "reverse_model.md"

#: Reddit months per dataset size (DESIGN.md, the seed's demo.py / prepro choices)
DATA_MONTHS = {
    "small": "2005-12 .. 2009-12",
    "full": "2005-12 .. 2017-11",
    "dummy": "shipped sample dumps (a few Pushshift records plus synthetic threads)",
}
#: The seed's instance filters (its data extraction README), quoted in every card
SEED_FILTERS = [
    "URLs replaced by a placeholder, markdown and non-ASCII stripped, text lower-cased and tokenised",
    "turns with too few or too many words, or repeated words, dropped",
    "sessions with offensive language (the seed's word list) or from blocked subreddits dropped",
    "responses with a `[deleted]`/`[removed]` body dropped; sessions too long for max_seq_length truncated "
    "from the oldest turn",
]


@dataclass
class ModelCardInfo:
    """What a card says. Built from a finished run by :func:`card_info_from_run`."""

    model_name: str
    reverse: bool = False
    base_model: str | None = None
    architecture: str = "GPT-2"
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    n_positions: int | None = None
    vocab_size: int | None = None
    num_parameters: int | None = None
    dataset: str | None = None
    dataset_hub_id: str | None = None
    data_months: str | None = None
    num_train_examples: int | None = None
    filters: list[str] = field(default_factory=lambda: list(SEED_FILTERS))
    training: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    eval_split: str = "validation"
    license: str = "mit"
    #: the run's loss/perplexity PNG, relative to the card (dialogpt/train/plot.py); None = no plot
    plot: str | None = None


def _size_name(n_layer: int | None, n_embd: int | None) -> str:
    return {(12, 768): "small (117M)", (24, 1024): "medium (345M)", (36, 1280): "large (762M)"}.get(
        (n_layer, n_embd), "custom")


def _hub_dataset_id(dataset: str | None) -> str | None:
    """Only ids that look like ``org/name`` and are not local paths go into ``datasets:`` metadata."""
    if not dataset or Path(dataset).exists() or dataset.count("/") != 1:
        return None
    return dataset


def _months_for(dataset: str | None) -> str | None:
    if not dataset:
        return None
    low = dataset.lower()
    for key, months in DATA_MONTHS.items():
        if key in Path(low).name.split("-") or low.endswith(key):
            return months
    return None


def card_info_from_run(config, result, model_config) -> ModelCardInfo:
    """A finished run (``TrainConfig``, ``TrainResult``, the model's config) -> card contents."""
    name = config.hub_model_id or Path(config.output_dir).name
    metrics: dict[str, float] = {}
    if result.eval_loss is not None:
        metrics["loss"] = round(float(result.eval_loss), 4)
        if result.eval_ppl is not None and math.isfinite(result.eval_ppl):
            metrics["perplexity"] = round(float(result.eval_ppl), 3)
    data = config.dataset or config.train_file
    return ModelCardInfo(
        model_name=name, reverse=config.reverse, base_model=config.model_name_or_path,
        n_layer=getattr(model_config, "n_layer", None), n_embd=getattr(model_config, "n_embd", None),
        n_head=getattr(model_config, "n_head", None), n_positions=getattr(model_config, "n_positions", None),
        vocab_size=getattr(model_config, "vocab_size", None), num_parameters=result.num_parameters,
        dataset=data, dataset_hub_id=_hub_dataset_id(config.dataset), data_months=_months_for(data),
        num_train_examples=result.num_train_examples,
        training={
            "from": config.model_name_or_path or f"scratch ({config.model_config})",
            "init_checkpoint": config.init_checkpoint,
            "max_seq_length": config.max_seq_length,
            "train_batch_size (per device per step)": config.train_batch_size,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "processes": result.num_processes,
            "learning_rate": config.learning_rate,
            "lr_schedule": config.lr_schedule,
            "warmup_steps": config.warmup_steps,
            "num_optim_steps": config.num_optim_steps,
            "mixed_precision": config.mixed_precision,
            "seed": config.seed,
        },
        figures={
            "optimizer steps": result.global_step,
            "epochs completed": result.epoch,
            "final training loss": None if result.train_loss is None else round(result.train_loss, 4),
            "training tokens/s": round(result.tokens_per_sec, 1),
            "padding efficiency (real/padded tokens)": round(result.padding_efficiency, 4),
            "training time (s)": round(result.train_runtime, 1),
        },
        metrics=metrics,
        eval_split=config.eval_split or "validation",
    )


def _card_data(info: ModelCardInfo):
    from huggingface_hub import EvalResult, ModelCardData

    ds_name = info.dataset_hub_id or (Path(info.dataset).name if info.dataset else "dialogue data")
    results = [
        EvalResult(task_type="text-generation", task_name="Dialogue response generation"
                   if not info.reverse else "Reverse (MMI) scoring", dataset_type=info.dataset_hub_id or ds_name,
                   dataset_name=ds_name, dataset_split=info.eval_split, metric_type=k, metric_name=k,
                   metric_value=v)
        for k, v in info.metrics.items()
    ]
    return ModelCardData(
        language="en", license=info.license, library_name="transformers", pipeline_tag="text-generation",
        tags=["conversational", "dialogpt", "gpt2"] + (["mmi", "reverse-model"] if info.reverse else []),
        datasets=[info.dataset_hub_id] if info.dataset_hub_id else None,
        base_model=info.base_model if info.base_model and not Path(info.base_model).exists() else None,
        model_name=info.model_name, eval_results=results or None,
    )


def find_template_dir() -> Path:
    """``model_cards/`` of a source checkout (editable install), else the copy ``pip install .`` puts
    under ``<prefix>/share/dialogpt-hf`` (setup.cfg's ``data_files``): the templates are top-level, not
    package data, so both layouts must work."""
    for d in (SOURCE_TEMPLATE_DIR, INSTALLED_TEMPLATE_DIR):
        if (d / DIALOGUE_TEMPLATE).is_file():
            return d
    raise FileNotFoundError(f"model card templates not found in {SOURCE_TEMPLATE_DIR} or {INSTALLED_TEMPLATE_DIR}: "
                            "reinstall dialogpt-hf")


def render_model_card(info: ModelCardInfo, template_dir: Path | None = None):
    """``ModelCard`` for a dialogue model (or the reverse model when ``info.reverse``)."""
    from huggingface_hub import ModelCard

    tdir = Path(template_dir) if template_dir else find_template_dir()
    template = tdir / (REVERSE_TEMPLATE if info.reverse else DIALOGUE_TEMPLATE)
    if not template.is_file():
        raise FileNotFoundError(f"{template}: model card template not found")
    return ModelCard.from_template(
        _card_data(info), template_path=str(template), info=info,
        size_name=_size_name(info.n_layer, info.n_embd),
        params_m=None if info.num_parameters is None else f"{info.num_parameters / 1e6:.2f}M",
    )


def add_metrics(folder: str | Path, metrics: dict[str, float], split: str = "test") -> None:
    """Add evaluation results (e.g. BLEU-4, NIST-4 from the multi-reference test) to a saved card.

    Both the ``model-index`` metadata and the metrics table in the text are updated, so the
    card's numbers stay the measured ones.
    """
    from huggingface_hub import EvalResult, ModelCard

    path = Path(folder) / "README.md"
    card = ModelCard.load(str(path))
    data = card.data
    existing = list(data.eval_results or [])
    ds_name = existing[0].dataset_name if existing else "dialogue data"
    ds_type = existing[0].dataset_type if existing else ds_name
    for k, v in metrics.items():
        existing.append(EvalResult(task_type="text-generation", dataset_type=ds_type, dataset_name=ds_name,
                                   dataset_split=split, metric_type=k, metric_name=k, metric_value=v))
    data.eval_results = existing
    if not data.model_name:
        data.model_name = Path(folder).name
    rows = "".join(f"| {k} | {split} | {v} |\n" for k, v in metrics.items())
    marker = "<!-- metrics-end -->"
    text = card.text.replace(marker, rows + marker) if marker in card.text else card.text + "\n" + rows
    new = ModelCard(f"---\n{data.to_yaml()}\n---\n{text}")
    new.save(str(path))
