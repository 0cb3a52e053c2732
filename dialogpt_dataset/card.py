"""Render the dataset card (``model_cards/dataset_card.md``) with valid Hub metadata.

The YAML header carries ``configs:`` with the Parquet ``data_files`` per split, which is what makes
``load_dataset(folder_or_repo)`` find the splits, plus license / language / task / months; the body
holds the per-rule filter counts so a user sees why most of a month was dropped.
"""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

from dialogpt_dataset.normalize import RULES

TEMPLATE_NAME = "dataset_card.md"
_FALLBACK = """---
{{ card_data }}
---

# {{ pretty_name }}

Rows per split: {{ num_rows }}

| rule | stage | what it drops | count |
|---|---|---|---|
{% for rule in filter_rows -%}
| `{{ rule.name }}` | {{ rule.stage }} | {{ rule.description }} | {{ rule.count }} |
{% endfor %}
"""



def _template() -> Path | None:
    """The full card template (source checkout or installed copy); None -> the short built-in one."""
    from dialogpt.cards import find_template_dir

    try:
        path = find_template_dir() / TEMPLATE_NAME
    except FileNotFoundError:
        return None
    return path if path.is_file() else None

def filter_rows(counters: Counter) -> list[dict]:
    rows = [{"name": n, "stage": st, "description": d, "count": int(counters.get(n, 0))} for n, st, d in RULES]
    extra = [("offensive_turn", "instance", "turn kept with weight 0.0 (blocklisted word)"),
             ("discarded_turn", "instance", "turn kept with weight 0.0 (hash in --discard-keys-file)"),
             ("rooted_at_comment", "thread", "session rooted at a top-level comment (month without RS file)"),
             ("months_without_rs", "read", "months with no RS (submissions) file"),
             ("duplicate_record", "comment", "comment id repeated in a dump")]
    rows += [{"name": n, "stage": st, "description": d, "count": int(counters.get(n, 0))} for n, st, d in extra]
    return rows


def counts_table(counters: Counter) -> str:
    """A plain-text table of every rule's count (what the CLI prints)."""
    lines = [f"{'rule':<26} {'stage':<9} {'count':>10}"]
    for r in filter_rows(counters):
        lines.append(f"{r['name']:<26} {r['stage']:<9} {r['count']:>10}")
    for k in sorted(k for k in counters if k.startswith("drift_")):  # schema drift: tolerated, counted
        lines.append(f"{k:<26} {'drift':<9} {int(counters[k]):>10}")
    for k in ("records_rs", "records_rc", "sessions", "rows_train", "rows_validation", "rows_test"):
        lines.append(f"{k:<26} {'total':<9} {int(counters.get(k, 0)):>10}")
    return "\n".join(lines)


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if n < limit:
            return name
    return "100M<n<1B"


def _months_text(months: list[str]) -> str:
    if not months:
        return "none (hash split of the training months)"
    if len(months) <= 12:
        return ", ".join(months)
    return f"{months[0]} .. {months[-1]} ({len(months)} months)"


def command_line(cfg) -> str:
    """The CLI call that reproduces a build (shown on the card)."""
    parts = ["python scripts/build_dataset.py"]
    if cfg.size:
        parts += ["--size", cfg.size]
    else:
        months = cfg.months if isinstance(cfg.months, str) else ",".join(cfg.months)
        parts += ["--months", months]
    if cfg.dumps_dir:
        parts += ["--dumps", str(cfg.dumps_dir)]
    parts += ["--output", str(cfg.output_dir)]
    if cfg.num_proc > 1:
        parts += ["--num-proc", str(cfg.num_proc)]
    if cfg.keys_file:
        parts += ["--keys-file", str(cfg.keys_file)]
    if cfg.min_refs != 5 or cfg.max_refs is not None:
        parts += ["--min-refs", str(cfg.min_refs)] + (["--max-refs", str(cfg.max_refs)] if cfg.max_refs else [])
    return " ".join(shlex.quote(p) if p != parts[0] else p for p in parts)


def render_dataset_card(result, cfg, plan):
    """A ``huggingface_hub.DatasetCard`` for a finished build (``result``: build.BuildResult)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        language="en",
        license="other",
        license_name="reddit-user-content",
        license_details="Reddit user content via Pushshift dumps; extraction code MIT. See License notes.",
        pretty_name="Reddit dialogue (DialoGPT extraction)",
        task_categories=["text-generation"],
        tags=["dialogue", "conversational", "reddit", "dialogpt"],
        size_categories=_size_category(sum(result.num_rows.values())),
        configs=[{"config_name": "default", "data_files": [
            {"split": s, "path": result.data_files_pattern(s)} for s, n in result.num_rows.items() if n]}],
        months=list(plan.months),
        test_months=list(plan.test_months),
        build_size=cfg.size or "custom",
    )
    template = _template()
    kwargs = dict(
        pretty_name="Reddit dialogue (DialoGPT extraction)",
        size=cfg.size or "custom",
        months_text=_months_text(list(plan.months)),
        test_months_text=_months_text(list(plan.test_months)) if plan.test_months else "none (a stable hash of the link id picks test threads)",
        command=command_line(cfg),
        num_rows=result.num_rows,
        min_refs=plan.min_refs, max_refs=plan.max_refs,
        filter_rows=filter_rows(result.counters),
        drift_rows=sorted((k, v) for k, v in result.counters.items() if k.startswith("drift_")),
        months_without_rs=", ".join(result.months_without_rs),
    )
    if template is not None:
        return DatasetCard.from_template(data, template_path=str(template), **kwargs)
    return DatasetCard.from_template(data, template_str=_FALLBACK, **kwargs)
