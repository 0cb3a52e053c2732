"""Model cards for trained dialogue and reverse (MMI) models, rendered with ``huggingface_hub.ModelCard``.

The templates live in ``model_cards/`` (``dialogue_model.md``, ``reverse_model.md``); they are
Jinja, filled with figures read from the run itself (training config, step count, throughput,
padding efficiency, measured validation loss/perplexity, and any metrics added later by
evaluation), so a card never carries placeholder numbers. Metadata: ``pipeline_tag:
text-generation``, ``library_name: transformers``, ``datasets`` and a ``model-index`` with the
measured results.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "model_cards"
INSTALLED_TEMPLATE_DIR = Path(sys.prefix) / "share" / "dialogpt-hf" / "model_cards"
DIALOGUE_TEMPLATE = "dialogue_model.md"
REVERSE_TEMPLATE = "reverse_model.md"

#: What the data side writes beside a built dataset (dialogpt_dataset.build): rows per split, rule
#: counters, months and the extraction rules. Read as JSON so the model side never imports the data side.
BUILD_STATS = "build_stats.json"


@dataclass
class DataFacts:
    """Facts about the training data, read from the dataset's ``build_stats.json`` (none: unknown)."""

    months: list[str] = field(default_factory=list)
    test_months: list[str] = field(default_factory=list)
    num_rows: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    preset: str | None = None
    words_blocklist: str | None = None   # "shipped", a file name, or None (no offensive-word filter)
    switches: list[str] = field(default_factory=list)


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
    dataset: str | None = None           # a name to show: Hub id, else the folder / file name (never a path)
    dataset_hub_id: str | None = None
    data_months: str | None = None
    num_train_examples: int | None = None
    data: DataFacts | None = None        # None: the data was not built by dialogpt_dataset (or is unreadable)
    training: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    eval_split: str = "validation"
    license: str = "mit"
    #: the run's loss/perplexity PNG, relative to the card (dialogpt/train/plot.py); None = no plot
    plot: str | None = None
    #: how much of the data the run trained (train_results.json's data_coverage); empty = unknown
    coverage: dict = field(default_factory=dict)
    #: LoRA settings and trained-parameter figures (:func:`lora_facts`); None = full fine-tuning
    lora: dict | None = None


def _size_name(n_layer: int | None, n_embd: int | None) -> str:
    return {(12, 768): "small (117M)", (24, 1024): "medium (345M)", (36, 1280): "large (762M)"}.get(
        (n_layer, n_embd), "custom")


def _hub_dataset_id(dataset: str | None) -> str | None:
    """Only ids that look like ``org/name`` and are not local paths go into ``datasets:`` metadata."""
    if not dataset or Path(dataset).exists() or dataset.count("/") != 1:
        return None
    return dataset


def shown_name(value: str | None) -> str | None:
    """A local path shows as its last part (a card must not carry this machine's folders); an id as is."""
    if not value:
        return None
    p = Path(value)
    return p.name if p.exists() or p.is_absolute() or value.startswith((".", "~")) else value


def _month_span(months: list[str]) -> str | None:
    if not months:
        return None
    months = sorted(months)
    return f"{months[0]} .. {months[-1]} ({len(months)} month{'s' if len(months) > 1 else ''})"


def read_data_facts(dataset: str | None) -> DataFacts | None:
    """``build_stats.json`` of a local dataset folder or a Hub dataset; ``None`` when there is none."""
    if not dataset:
        return None
    path = Path(dataset) / BUILD_STATS
    if not path.is_file():
        if _hub_dataset_id(dataset) is None:
            return None
        try:  # a pushed dataset carries the same file; any failure just means "unknown"
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(dataset, BUILD_STATS, repo_type="dataset"))
        except Exception:  # noqa: BLE001 - offline, missing file, private repo: the card says less
            return None
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rules = stats.get("rules") or {}
    return DataFacts(months=list(stats.get("months") or []), test_months=list(stats.get("test_months") or []),
                     num_rows=dict(stats.get("num_rows") or {}),
                     counters={k: v for k, v in (stats.get("counters") or {}).items() if v},
                     preset=rules.get("preset"), words_blocklist=rules.get("words_blocklist"),
                     switches=list(rules.get("enabled") or []))


def schedule_text(config) -> str:
    """The learning-rate schedule as it really ran, with the warm-up the schedule used."""
    sched = config.lr_schedule
    if sched == "BERT":
        steps = round(config.warmup_proportion * config.num_optim_steps)
        return (f"BERT: linear warm-up over warmup_proportion {config.warmup_proportion} of "
                f"{config.num_optim_steps} steps ({steps} steps), then linear decay to 0")
    if sched in ("noam", "noamwd"):
        tail = ", then decays as step^-0.5" + (" and 0.5x every 1000 steps" if sched == "noamwd" else "")
        return f"{sched}: warm-up over warmup_steps {config.warmup_steps}{tail}"
    return "None: constant learning rate, no warm-up"


def trained_share(trained: int, total: int) -> str:
    """``"8,192 of 188,672 (4.342%)"``: the parameters a LoRA run trains (the startup summary and the card)."""
    return f"{trained:,} of {total:,} ({100 * trained / max(total, 1):.3f}%)"


def lora_facts(config, result) -> dict | None:
    """What a LoRA run (``--lora_r``) trained, for the card; None for full fine-tuning."""
    if getattr(config, "lora_r", None) is None:
        return None
    trained = result.trainable_parameters or 0
    total = trained + result.num_parameters
    return {"r": config.lora_r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "target_modules": ", ".join(n.strip() for n in config.lora_target_modules.split(",")),
            "trained": trained_share(trained, total)}


def lora_text(info: ModelCardInfo) -> str | None:
    """The card's LoRA paragraph (both templates): what trained, and what the folder holds."""
    if not info.lora:
        return None
    f = info.lora
    return (f"Only LoRA adapters were trained ([peft](https://github.com/huggingface/peft)): rank {f['r']}, alpha "
            f"{f['alpha']:g}, dropout {f['dropout']:g}, on `{f['target_modules']}`; {f['trained']} parameters trained, "
            "the base weights frozen.\nThis folder holds the **merged** weights (the adapter folded into the base: a "
            "plain GPT-2 that `from_pretrained`, `pipeline(\"text-generation\")` and `dialogpt-serve` load without "
            f"peft) and the adapter alone in `adapter/`, for the model it started from ({info.training.get('from')}):\n"
            f"`PeftModel.from_pretrained(base, \"{info.model_name}\", subfolder=\"adapter\")`.")


def card_info_from_run(config, result, model_config) -> ModelCardInfo:
    """A finished run (``TrainConfig``, ``TrainResult``, the model's config) -> card contents."""
    name = config.hub_model_id or Path(config.output_dir).name
    metrics: dict[str, float] = {}
    if result.eval_loss is not None:
        metrics["loss"] = round(float(result.eval_loss), 4)
        if result.eval_ppl is not None and math.isfinite(result.eval_ppl):
            metrics["perplexity"] = round(float(result.eval_ppl), 3)
    facts = read_data_facts(config.dataset)
    return ModelCardInfo(
        model_name=name, reverse=config.reverse, base_model=config.model_name_or_path,
        n_layer=getattr(model_config, "n_layer", None), n_embd=getattr(model_config, "n_embd", None),
        n_head=getattr(model_config, "n_head", None), n_positions=getattr(model_config, "n_positions", None),
        vocab_size=getattr(model_config, "vocab_size", None), num_parameters=result.num_parameters,
        dataset=shown_name(config.dataset or config.train_file), dataset_hub_id=_hub_dataset_id(config.dataset),
        data_months=_month_span(facts.months) if facts else None, data=facts,
        num_train_examples=result.num_train_examples,
        training={
            "from": shown_name(config.model_name_or_path) or f"scratch ({config.model_config})",
            "init_checkpoint": shown_name(config.init_checkpoint),
            "max_seq_length": config.max_seq_length,
            "train_batch_size (per device per step)": config.train_batch_size,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "processes": result.num_processes,
            "learning_rate": config.learning_rate,
            "lr_schedule": schedule_text(config),
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
            "validation perplexity before training (--eval_on_start)":
                None if getattr(result, "initial_eval_ppl", None) is None else round(result.initial_eval_ppl, 3),
        },
        metrics=metrics,
        eval_split=config.eval_split or "validation", lora=lora_facts(config, result),
        coverage=dict(getattr(result, "data_coverage", None) or {}),
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
        tags=["conversational", "dialogpt", "gpt2"] + (["mmi", "reverse-model"] if info.reverse else [])
        + (["lora"] if info.lora else []),
        datasets=[info.dataset_hub_id] if info.dataset_hub_id else None,
        base_model=info.base_model if info.base_model and not Path(info.base_model).exists() else None,
        model_name=info.model_name, eval_results=results or None,
    )


def data_lines(facts: DataFacts | None) -> list[str]:
    """What the card says about the text and the rules, each line read from the build's own record."""
    if facts is None:
        return ["not built by dialogpt-hf's pipeline (no build_stats.json): see the data's own documentation"]
    lines = ["text normalised as DialoGPT's extraction does (URLs to `__url__`, characters outside "
             "`A-Za-z0-9()[]:,.!?'` removed) and tokenised with NLTK's `TweetTokenizer(preserve_case=True)`: "
             "**case is kept**, not lower-cased"]
    if facts.words_blocklist:
        lines.append(f"offensive-word list `{facts.words_blocklist}`: in the training months a turn containing a listed "
                     "word stays in its session as context with **weight 0** (no loss), it is not dropped; in the test "
                     "months such instances are dropped")
    else:
        lines.append("no offensive-word list was applied (the data may contain offensive text)")
    if facts.preset:
        lines.append(f"extraction preset `{facts.preset}`; project-only rules on: "
                     f"{', '.join(f'`{x}`' for x in facts.switches) or 'none'}")
    if facts.num_rows:
        lines.append("rows per split: " + ", ".join(f"{k} {v:,}" for k, v in facts.num_rows.items()))
    return lines


def coverage_text(coverage: dict, bold: bool = False) -> str:
    """The one sentence on how much of the data a run trained (``train_results.json``'s data_coverage): the
    training log prints it, the model card shows it (``bold``: the trained count in Markdown bold)."""
    skipped = ", ".join(f"{k} {v:,}" for k, v in coverage.get("skipped", {}).items() if v) or "none"
    trained = f"{coverage['trained_turns']:,} turns trained"
    return (f"{coverage['dialogues']:,} dialogues ({coverage['source_format']}), {coverage['turns']:,} turns; "
            f"{f'**{trained}**' if bold else trained} (--train_on {coverage['train_on']}) in {coverage['windows']:,} "
            f"windows of <= {coverage['max_seq_length']} tokens; {coverage['truncated_turns']:,} cut to fit; "
            f"{coverage['validation_dialogues']:,} validation dialogues; skipped: {skipped}")


def coverage_line(coverage: dict) -> str | None:
    """The card's sentence on how much of the data was trained, and how windows make that possible."""
    if not coverage:
        return None
    return (f"Coverage: {coverage_text(coverage, bold=True)}. A dialogue longer than max_seq_length becomes several "
            "windows, each turn trained in exactly one")


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
        size_name=_size_name(info.n_layer, info.n_embd), data_lines=data_lines(info.data),
        coverage_line=coverage_line(info.coverage),
        params_m=None if info.num_parameters is None else f"{info.num_parameters / 1e6:.2f}M",
        lora_text=lora_text(info),
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
