"""The dataset card (``README.md``) of a folder ``dialogpt-data prepare`` writes.

Its YAML ``configs:`` names each split's Parquet files, so ``load_dataset(folder)`` and
``load_dataset("org/name")`` work with no project code; the body says where the dialogues came from,
which layout was detected, the figures of :mod:`dialogpt.train.prepare_stats`, what was skipped, and the
command that made it. The licence is the user's to state (``--license``); without it the card says
``other`` and that the terms are unknown. Nothing on it is an absolute local path.
"""

from __future__ import annotations

from dialogpt.conversations.normalize import SKIP_UNITS
from dialogpt.dataset_folder import data_files_pattern, size_category
from dialogpt.train.prepare_stats import NEEDS_TOKENIZER, PrepareStats, stats_rows

TEMPLATE = """---
{{ card_data }}
---

# {{ name }}

Dialogues prepared for DialoGPT-style fine-tuning with `dialogpt-data prepare` (dialogpt-hf).

- **Source:** {{ source }}
- **Layout detected:** {{ detected }}
- **Licence:** {{ license_text }}

## Figures

| | |
|---|---|
{% for k, v in rows -%}
| {{ k }} | {{ v }} |
{% endfor %}
{% if coverage_line %}{{ coverage_line }}{% else %}{{ needs_tokenizer }}.{% endif %}

## Skipped while reading

{% if skipped %}| reason | what it drops | count |
|---|---|---|
{% for k, unit, v in skipped -%}
| `{{ k }}` | a {{ unit }} | {{ v }} |
{% endfor %}{% else %}Nothing was skipped.{% endif %}

## Columns

- `dialogue_id`: the dialogue's id in the source (or `<file>:<row>`).
- `turns`: `[{text, weight, role, speaker}]`, oldest first. Weight 0.0 = context only; with `--train_on`
  `assistant` or a speaker, the other turns are written with weight 0, so the default `--train_on all`
  trains the same turns from this folder. DialoGPT never trains a dialogue's first turn.
- `messages`: `[{role, content, trainable}]`, the same turns for chat tooling (TRL, `apply_chat_template`);
  `trainable` is false exactly where DialoGPT puts no labels (the first turn and weight-0 turns).

## Use

```python
from datasets import load_dataset
ds = load_dataset("{{ name }}")
```

```bash
dialogpt-train --dataset {{ name }} --model_name_or_path microsoft/DialoGPT-medium --max_seq_length {{ max_seq_length }}
```

## How it was made

```bash
{{ command }}
```
"""


def license_text(license_id: str | None) -> str:
    if license_id:
        return f"`{license_id}` (as stated by whoever prepared it)"
    return ("unknown: the terms of the source dialogues apply (the card says `other`; "
            "`dialogpt-data prepare --license ID` states one)")


def render_prepared_card(stats: PrepareStats, *, name: str, source: str, detected: str, command: str,
                         fingerprint: str, license_id: str | None = None):
    """A ``huggingface_hub.DatasetCard`` for a prepared folder of ``stats.splits`` (train, validation);
    ``source`` and ``detected`` (the reader's line) name the input without local paths."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license=license_id or "other", pretty_name=name, task_categories=["text-generation"],
        tags=["dialogue", "conversational", "dialogpt"], size_categories=size_category(stats.dialogues),
        configs=[{"config_name": "default", "data_files": [
            {"split": s, "path": data_files_pattern(s, fingerprint)} for s, n in stats.splits.items() if n]}],
        source_format=stats.source_format, train_on=stats.train_on, max_seq_length=stats.max_seq_length)
    cov = stats.data_coverage
    coverage_line = None
    if cov is not None:
        coverage_line = (f"Training on it (`--train_on {cov['train_on']}`, `--max_seq_length {cov['max_seq_length']}`) "
                         f"trains **{cov['trained_turns']:,} turns** in {cov['windows']:,} windows "
                         "(a longer dialogue becomes several windows, each turn trained in exactly one).")
    return DatasetCard.from_template(
        data, template_str=TEMPLATE, name=name, source=source, detected=detected,
        license_text=license_text(license_id), rows=[(k, v.replace("|", "\\|")) for k, v in stats_rows(stats)],
        coverage_line=coverage_line, needs_tokenizer=NEEDS_TOKENIZER.capitalize(),
        skipped=[(k, SKIP_UNITS.get(k, "dialogue"), f"{v:,}") for k, v in sorted(stats.skipped.items()) if v],
        max_seq_length=stats.max_seq_length, command=command)
