"""Render the dataset card (``model_cards/dataset_card.md``) with valid Hub metadata, from the run's facts.

The YAML header carries ``configs:`` with the Parquet ``data_files`` per split (what makes
``load_dataset(folder_or_repo)`` find the splits), ``dataset_info`` (features and split sizes, as
``datasets`` writes it), ``license_link`` to the ``LICENSE.md`` written beside it, and the months;
the body holds the rules that ran (preset, switches, blocklists) with every rule's count, so a user
sees why most of a month was dropped. Nothing on the card is an absolute local path: the dataset is
named by its Hub id when pushed, else by its folder's name.
"""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

from dialogpt.cards import find_template_dir
from dialogpt.dataset_folder import size_category
from dialogpt_dataset.normalize import RULES
from dialogpt_dataset.rules import SWITCHABLE, ExtractRules, list_label, settings_rows

TEMPLATE_NAME = "dataset_card.md"
LICENSE_FILE = "LICENSE.md"
_FALLBACK = """---
{{ card_data }}
---

# {{ pretty_name }}

Rows per split: {{ num_rows }}

| rule | stage | what it drops | ran | count |
|---|---|---|---|---|
{% for rule in filter_rows -%}
| `{{ rule.name }}` | {{ rule.stage }} | {{ rule.description }} | {{ rule.ran }} | {{ rule.count }} |
{% endfor %}
"""
_LICENSE_TEXT = """# License of this dataset

- **The text** is Reddit user content obtained from Pushshift dumps. Reddit's terms apply to its use; this
  dataset grants no rights over the content. Check the current Reddit / Pushshift terms before redistribution.
- **The extraction code** (`dialogpt_dataset`) is MIT licensed; the original DialoGPT extractor it follows is
  MIT (Microsoft).
- A build of the `dummy` size holds synthetic text (seeded generator, no real Reddit text, MIT) plus real
  Pushshift sample records from `Paul-E/Pushshift-Importer` (Apache-2.0).
"""
#: counters that are not rules but say something about a rule's effect (weights, roots, reading)
_EXTRA = [("offensive_turn", "instance", "turn kept with weight 0.0 (blocklisted word)"),
          ("discarded_turn", "instance", "turn kept with weight 0.0 (hash in --discard-keys-file)"),
          ("rooted_at_comment", "thread", "session rooted at a top-level comment (month without RS file)"),
          ("months_without_rs", "read", "months with no RS (submissions) file"),
          ("duplicate_record", "comment", "comment id repeated in a dump")]


def _template() -> Path | None:
    """The full card template (source checkout or installed copy); None -> the short built-in one."""
    try:
        path = find_template_dir() / TEMPLATE_NAME
    except FileNotFoundError:
        return None
    return path if path.is_file() else None


def _ran(name: str, rules: ExtractRules | None) -> str:
    """Whether a rule ran in this build: project-only rules by switch, list rules by their list."""
    if rules is None:
        return "yes"
    if name in SWITCHABLE:
        return "yes (project)" if rules.is_on(name) else "off"
    if name in ("offensive", "offensive_turn"):
        return "yes" if rules.words_blocklist else "off (empty list)"
    if name == "bad_subreddit":
        return "yes" if rules.subreddits_blocklist else "off (empty list)"
    return "yes"


def filter_rows(counters: Counter, rules: ExtractRules | None = None) -> list[dict]:
    return [{"name": n, "stage": st, "description": d, "ran": _ran(n, rules), "count": int(counters.get(n, 0))}
            for n, st, d in RULES + _EXTRA]


def counts_table(counters: Counter, rules: ExtractRules | None = None) -> str:
    """A plain-text table of the rules' settings and every rule's count (what the CLI prints)."""
    lines = []
    if rules is not None:
        lines.append(f"{'setting':<26} {'this build':<34} the original")
        lines += [f"{k:<26} {v:<34} {o}" for k, v, o in settings_rows(rules)]
        lines.append("")
    lines.append(f"{'rule':<26} {'stage':<9} {'ran':<16} {'count':>10}")
    for r in filter_rows(counters, rules):
        lines.append(f"{r['name']:<26} {r['stage']:<9} {r['ran']:<16} {r['count']:>10}")
    for k in sorted(k for k in counters if k.startswith("drift_")):  # schema drift: tolerated, counted
        lines.append(f"{k:<26} {'drift':<9} {'':<16} {int(counters[k]):>10}")
    for k in ("records_rs", "records_rc", "sessions", "rows_train", "rows_validation", "rows_test"):
        lines.append(f"{k:<26} {'total':<9} {'':<16} {int(counters.get(k, 0)):>10}")
    return "\n".join(lines)


def _months_text(months: list[str]) -> str:
    if not months:
        return "none (hash split of the training months)"
    if len(months) <= 12:
        return ", ".join(months)
    return f"{months[0]} .. {months[-1]} ({len(months)} months)"


def dataset_name(cfg) -> str:
    """The Hub id when the build is pushed, else the output folder's name (never a local path)."""
    return cfg.push_to_hub or Path(cfg.output_dir).resolve().name


def command_line(cfg) -> str:
    """The CLI call that reproduces a build (shown on the card), with local paths as placeholders."""
    parts = ["python scripts/build_dataset.py"]
    parts += ["--size", cfg.size] if cfg.size else ["--months", cfg.months if isinstance(cfg.months, str)
                                                    else ",".join(cfg.months)]
    if cfg.dumps_dir:
        parts += ["--dumps", "DUMPS_DIR"]
    parts += ["--output", Path(cfg.output_dir).resolve().name]
    if cfg.test_months:
        parts += ["--test-months", cfg.test_months if isinstance(cfg.test_months, str) else ",".join(cfg.test_months)]
    if cfg.preset != "default":
        parts += ["--preset", cfg.preset]
    if cfg.rules:
        parts += ["--rules", cfg.rules]
    for flag, value in (("--words-blocklist", cfg.words_blocklist), ("--subreddits-blocklist", cfg.subreddits_blocklist),
                        ("--test-fraction", cfg.test_fraction), ("--validation-fraction", cfg.validation_fraction),
                        ("--keys-file", cfg.keys_file), ("--discard-keys-file", cfg.discard_keys_file)):
        if value is not None:
            parts += [flag, Path(value).name if isinstance(value, str) else str(value)]
    if cfg.use_title is not None:
        parts.append("--use-title" if cfg.use_title else "--no-title")
    if cfg.min_refs != 5 or cfg.max_refs is not None:
        parts += ["--min-refs", str(cfg.min_refs)] + (["--max-refs", str(cfg.max_refs)] if cfg.max_refs else [])
    return " ".join(shlex.quote(p) if p != parts[0] else p for p in parts)


def write_license(out: Path) -> Path:
    """``LICENSE.md`` beside the card: what ``license_link`` points at."""
    path = Path(out) / LICENSE_FILE
    path.write_text(_LICENSE_TEXT, encoding="utf-8")
    return path


def _card_data(result, cfg, plan, info):
    from datasets import DatasetInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(
        language="en", license="other", license_name="reddit-user-content", license_link=LICENSE_FILE,
        pretty_name=dataset_name(cfg), task_categories=["text-generation"],
        tags=["dialogue", "conversational", "reddit", "dialogpt"],
        size_categories=size_category(sum(result.num_rows.values())),
        configs=[{"config_name": "default", "data_files": [
            {"split": s, "path": result.data_files_pattern(s)} for s, n in result.num_rows.items() if n]}],
        months=list(plan.months), test_months=list(plan.test_months), build_size=cfg.size or "custom",
        extraction_preset=plan.rules.preset,
    )
    if info is not None:  # features and split sizes, in datasets' own dataset_info layout
        exported = DatasetInfo(features=info.features, splits=info.splits,
                               dataset_size=sum(s.num_bytes for s in info.splits.values()) if info.splits else None,
                               download_size=sum(p.stat().st_size for ps in result.parquet_files.values() for p in ps))
        DatasetInfosDict({"default": exported}).to_dataset_card_data(data)
    return data


def render_dataset_card(result, cfg, plan, info=None):
    """A ``huggingface_hub.DatasetCard`` for a finished build (``result``: build.BuildResult,
    ``info``: the builder's ``DatasetInfo`` with its splits)."""
    from huggingface_hub import DatasetCard

    rules: ExtractRules = plan.rules
    kwargs = dict(
        pretty_name=dataset_name(cfg),
        size=cfg.size or "custom",
        months_text=_months_text(list(plan.months)),
        test_months_text=_months_text(list(plan.test_months)) if plan.test_months else
        f"none (a stable hash of the link id sends {rules.test_fraction:g} of the threads to test)",
        command=command_line(cfg),
        num_rows=result.num_rows,
        min_refs=plan.min_refs, max_refs=plan.max_refs,
        preset=rules.preset,
        settings_rows=settings_rows(rules),
        words_label=list_label(rules.words_blocklist),
        use_title=rules.use_title,
        filter_rows=filter_rows(result.counters, rules),
        drift_rows=sorted((k, v) for k, v in result.counters.items() if k.startswith("drift_")),
        months_without_rs=", ".join(result.months_without_rs),
    )
    data = _card_data(result, cfg, plan, info)
    template = _template()
    if template is not None:
        return DatasetCard.from_template(data, template_path=str(template), **kwargs)
    return DatasetCard.from_template(data, template_str=_FALLBACK, **kwargs)
