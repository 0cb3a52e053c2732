"""The ``datasets`` builder over the datatrove pipeline's shards.

``RedditDialog`` is an ``ArrowBasedBuilder``: its split generators run (or, when the work directory
already holds finished tasks, reuse) the two-stage pipeline of :mod:`dialogpt_dataset.pipeline`,
then yield one Arrow table per stage-2 Parquet shard. Drive it with
``download_and_prepare(num_proc=...)``. What users load is the Parquet + README that
:func:`dialogpt_dataset.build.build_dataset` exports from it (datasets 4+ no longer runs loading
scripts), e.g. ``load_dataset("./reddit-dialog")``.

Configs: ``dummy`` (the sample dumps shipped in this package), ``small`` (2005-12..2009-12),
``full`` (2005-12..2017-11, multi-reference test months 2018-03..2019-01), and ``custom`` (any
``months``).

    builder = RedditDialog(config_name="dummy", work_dir="/tmp/rd", cache_dir="/tmp/rd/cache")
    builder.download_and_prepare(num_proc=2)
    ds = builder.as_dataset("train")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import datasets
from datasets.builder import Key

from dialogpt_dataset import pipeline
from dialogpt_dataset.dumps import available_months, find_month_files
from dialogpt_dataset.messages import add_messages
from dialogpt_dataset.rules import ExtractRules

_DESCRIPTION = "Reddit conversations extracted from Pushshift dumps with DialoGPT's rules."
PUBLIC_COLUMNS = ["id", "subreddit", "created_utc", "turns", "references"]

FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "subreddit": datasets.Value("string"),
    "created_utc": datasets.Value("int64"),
    "turns": datasets.List({
        "text": datasets.Value("string"),
        "weight": datasets.Value("float32"),
        "score": datasets.Value("int64"),
    }),
    # the same turns as chat messages for stock tools (TRL, apply_chat_template); see messages.py
    "messages": datasets.List({
        "role": datasets.Value("string"),
        "content": datasets.Value("string"),
        "trainable": datasets.Value("bool"),
    }),
    # the multi-reference test split's distinct human replies; empty in train / validation
    "references": datasets.List(datasets.Value("string")),
})


def month_range(first: str, last: str) -> list[str]:
    """``month_range("2005-12", "2006-02")`` -> ["2005-12", "2006-01", "2006-02"]."""
    for m in (first, last):
        if len(m) != 7 or m[4] != "-" or not (m[:4] + m[5:]).isdigit() or not 1 <= int(m[5:]) <= 12:
            raise ValueError(f"month {m!r}: expected YYYY-MM")
    y, mo = int(first[:4]), int(first[5:])
    out = []
    while f"{y:04d}-{mo:02d}" <= last:
        out.append(f"{y:04d}-{mo:02d}")
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    if not out:
        raise ValueError(f"month range {first}:{last} is empty")
    return out


def parse_months(spec: str | list[str] | None) -> list[str]:
    """``"2006-01:2006-06"``, ``"2006-01,2006-03"``, a list, or None -> sorted month list."""
    if spec is None:
        return []
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        out = []
        for p in parts:
            if ":" in p:
                a, b = p.split(":", 1)
                out += month_range(a, b)
            else:
                out += month_range(p, p)
        return sorted(set(out))
    return sorted({m for s in spec for m in parse_months(s)})


def dummy_dumps_dir() -> Path:
    """The sample dumps shipped inside the package (the ``dummy`` size needs no download)."""
    return Path(str(resources.files("dialogpt_dataset").joinpath("data", "dummy")))


SIZES = {
    "small": {"months": month_range("2005-12", "2009-12"), "test_months": []},
    "full": {"months": month_range("2005-12", "2017-11"), "test_months": month_range("2018-03", "2019-01")},
}


def resolve_months(size: str | None, dumps_dir: str | None, months, test_months) -> tuple[str, list[str], list[str]]:
    """(dumps_dir, train months, test months) of a size or month range, checked against the files present."""
    if size == "dummy":
        d = str(dummy_dumps_dir()) if not dumps_dir else dumps_dir
        months = available_months(d)
        if not months:  # --dumps without --size/--months means "dummy over this folder"
            raise FileNotFoundError(f"{d}: no RS_YYYY-MM.* / RC_YYYY-MM.* dump files (with --dumps, give "
                                    "--size small|full or --months A:B; leave --dumps out for the shipped sample)")
        test = parse_months(test_months)
    elif size in SIZES:
        d = dumps_dir
        months = SIZES[size]["months"]
        test = parse_months(test_months) if test_months is not None else SIZES[size]["test_months"]
    else:
        d = dumps_dir
        months = parse_months(months)
        test = parse_months(test_months)
    missing = [m for m in sorted(set(months) | set(test)) if find_month_files(d, m)[1] is None]
    if missing:
        shown = ", ".join(missing[:6]) + (f" ... ({len(missing)} months)" if len(missing) > 6 else "")
        # a dump in a format we cannot read (RC_2006-01.zip) would otherwise look like no file at all
        odd = sorted(p.name for p in Path(d).iterdir() if p.name.startswith(tuple(f"RC_{m}." for m in missing)))
        hint = (f" (found {', '.join(odd[:3])}: readable endings are .zst .bz2 .xz .gz .json .ndjson .jsonl "
                "or none)") if odd else ""
        raise FileNotFoundError(f"{d}: no RC_<month> comments dump for {shown}{hint}")
    return d, sorted(set(months) - set(test)), test


@dataclass
class RedditDialogConfig(datasets.BuilderConfig):
    """Args:
        dumps_dir: folder of ``RS_YYYY-MM.*`` / ``RC_YYYY-MM.*`` files (ignored for ``dummy``).
        months: training months (``small`` / ``full`` presets fill it in).
        test_months: months whose threads all go to the multi-reference test split; when empty a
            stable hash of the link id sends ``test_fraction`` of the threads there instead.
        work_dir: where the pipeline keeps its shards, logs and completion marks (resume).
        pipeline_num_proc: datatrove workers; executor: local, ray or slurm.
        plan_overrides: any other :class:`pipeline.Plan` field (num_shards, min_refs, keys_file...);
            ``rules`` (an :class:`~dialogpt_dataset.rules.ExtractRules` or its dict) defaults to the
            ``default`` preset for this config's size, exactly what the CLI uses.
    """

    dumps_dir: str | None = None
    months: list[str] = field(default_factory=list)
    test_months: list[str] = field(default_factory=list)
    work_dir: str | None = None
    pipeline_num_proc: int = 1
    executor: str = "local"
    quiet: bool = False
    plan_overrides: dict = field(default_factory=dict)


class RedditDialog(datasets.ArrowBasedBuilder):
    BUILDER_CONFIG_CLASS = RedditDialogConfig
    BUILDER_CONFIGS = [
        RedditDialogConfig(name="dummy", description="the sample dumps shipped with the package"),
        RedditDialogConfig(name="small", description="2005-12..2009-12", **SIZES["small"]),
        RedditDialogConfig(name="full", description="2005-12..2017-11, test 2018-03..2019-01", **SIZES["full"]),
        RedditDialogConfig(name="custom", description="any --months range"),
    ]
    DEFAULT_CONFIG_NAME = "dummy"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=_DESCRIPTION, features=FEATURES, license="see README")

    def make_plan(self) -> pipeline.Plan:
        cfg = self.config
        if cfg.work_dir is None:
            raise ValueError("RedditDialog needs work_dir= (where the pipeline keeps its shards)")
        dumps_dir = cfg.dumps_dir or (str(dummy_dumps_dir()) if cfg.name == "dummy" else None)
        if not dumps_dir:
            raise ValueError(f"config {cfg.name!r} needs dumps_dir= (the folder of RS_/RC_ files)")
        months = list(cfg.months)
        if cfg.name == "dummy" and not months:
            months = available_months(dumps_dir)
        if not months:
            raise ValueError(f"config {cfg.name!r} has no months to build")
        overrides = dict(cfg.plan_overrides)
        # the same default rules as the CLI for the same size (the dummy sample's larger fractions)
        rules = overrides.pop("rules", None)
        if not isinstance(rules, ExtractRules):
            rules = ExtractRules.from_dict(rules) if rules else ExtractRules.from_preset("default", size=cfg.name)
        overrides["rules"] = rules
        if overrides.get("num_shards") is None:
            overrides["num_shards"] = pipeline.auto_num_shards(
                dumps_dir, sorted(set(months) | set(cfg.test_months)), minimum=max(2, cfg.pipeline_num_proc),
                multiple_of=cfg.pipeline_num_proc)
        return pipeline.Plan(dumps_dir=str(dumps_dir), work_dir=str(cfg.work_dir), months=months,
                             test_months=list(cfg.test_months), **overrides)

    def _split_generators(self, dl_manager):
        plan = self.make_plan()
        saved = Path(plan.work_dir) / "plan.json"
        if saved.exists():  # resume with the stored shard layout, whatever --num-proc is now
            old = pipeline.Plan.load(plan.work_dir)
            plan.num_shards = old.num_shards
        pipeline.run_pipeline(plan, self.config.executor, self.config.pipeline_num_proc, quiet=self.config.quiet)
        return [  # an empty split (e.g. no test context kept by --keys-file) is left out
            datasets.SplitGenerator(name=split, gen_kwargs={"files": [str(p) for p in files], "split": split})
            for split in pipeline.SPLITS
            if (files := pipeline.nonempty_stage2_files(plan.work_dir, split))
        ]

    def _generate_tables(self, files: list[str], split: str = "train"):
        import pyarrow.parquet as pq

        for i, f in enumerate(files):
            table = pq.read_table(f, columns=PUBLIC_COLUMNS)
            # test rows hold the context only (the replies are ``references``): it ends on the user turn
            table = add_messages(table, context_only=split == "test")
            yield Key(i, 0), table.cast(FEATURES.arrow_schema)
