"""``build_dataset(BuildConfig) -> BuildResult``: dumps -> a loadable, pushable dataset folder.

Runs the :class:`~dialogpt_dataset.builder.RedditDialog` builder (which runs or resumes the
datatrove pipeline) with ``download_and_prepare(num_proc=...)``, then writes ``output_dir``::

    data/{train,validation,test}-NNNNN-of-NNNNN.parquet   the rows (features in builder.FEATURES)
    README.md        dataset card: YAML ``configs:`` (so load_dataset(dir) works) + filter counts
    test.refs.txt    the seed's multi-reference file: src \\t score|ref \\t score|ref ...
    keys.txt         every instance id in the build: --keys-file keys.txt reproduces it exactly
    train.tsv        (--export-tsv) the seed's train.tsv: "0.0 t1 EOS 1.0 t2\\t1.0 response"
    LICENSE.md       what the card's ``license_link`` points at: the terms of the text and the code
    .work/           shards, datatrove logs and completion marks: a killed build resumes from here

and optionally pushes the folder (without ``.work``) to the Hub as a dataset repo.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from dialogpt import legacy_tsv
from dialogpt.dataset_folder import data_files_pattern, export_parquet, fingerprint_parquet, push_dataset_folder
from dialogpt_dataset import pipeline
from dialogpt_dataset.builder import RedditDialog, resolve_months
from dialogpt_dataset.card import counts_table, render_dataset_card, write_license
from dialogpt_dataset.dumps import find_month_files
from dialogpt_dataset.multiref import DEFAULT_MIN_REFS, refs_file_rows
from dialogpt_dataset.rules import SHIPPED, ExtractRules, RulesError


class SubmittedToSlurm(Exception):
    """``--executor slurm`` submitted the pipeline's jobs; the dataset is written by a later run."""


@dataclass
class BuildConfig:
    """What to build and where. ``size`` (dummy, small, full) or ``months`` ("2006-01:2006-06")."""

    output_dir: str
    dumps_dir: str | None = None
    size: str | None = None
    months: str | list[str] | None = None
    #: multi-reference test months; default: 2018-03..2019-01 for full, none (hash split) otherwise
    test_months: str | list[str] | None = None
    num_proc: int = 1
    keys_file: str | None = None
    #: the original's per-month ``-o.gz`` target hashes: listed turns get weight 0.0
    discard_keys_file: str | None = None
    min_refs: int = DEFAULT_MIN_REFS
    max_refs: int | None = None
    executor: str = "local"
    export_tsv: bool = False
    push_to_hub: str | None = None
    private: bool = False
    token: str | None = None
    max_bad_lines: int = 1000
    #: an empty RS/RC dump is a warning (read as no records) instead of an error
    allow_empty_months: bool = False
    num_shards: int | None = None
    #: the extraction rules: a preset (``original`` or ``default``), then ``--rules +bot,-non_ascii``
    #: switches, then any setting given here (None keeps the preset's); see dialogpt_dataset.rules
    preset: str = "default"
    rules: str | None = None
    validation_fraction: float | None = None
    test_fraction: float | None = None
    use_title: bool | None = None
    use_selftext: bool | None = None
    #: a file, "none" (no list) or "shipped" (ours); None keeps the preset's
    words_blocklist: str | None = None
    subreddits_blocklist: str | None = None
    slurm_kwargs: dict = field(default_factory=dict)
    #: hide datatrove's per-task log lines (make demo); the counters table is printed either way
    quiet: bool = False

    def __post_init__(self):
        if self.size is None and self.months is None:
            self.size = "dummy"
        if self.size is not None and self.months is not None:
            raise ValueError("give --size or --months, not both")
        if self.size not in (None, "dummy", "small", "full"):
            raise ValueError(f"--size {self.size!r}: expected dummy, small or full")
        if self.size != "dummy" and not self.dumps_dir:
            raise ValueError("--dumps DIR is required unless --size dummy")
        if self.executor not in ("local", "ray", "slurm"):
            raise ValueError(f"--executor {self.executor!r}: expected local, ray or slurm")
        if self.num_proc < 1:
            raise ValueError(f"--num-proc {self.num_proc}: must be >= 1")
        if self.min_refs < 1:
            raise ValueError(f"--min-refs {self.min_refs}: must be >= 1")
        if self.max_refs is not None and self.max_refs < self.min_refs:
            raise ValueError(f"--max-refs {self.max_refs} is below --min-refs {self.min_refs}")
        if self.keys_file and not Path(self.keys_file).is_file():
            raise ValueError(f"--keys-file {self.keys_file}: no such file")
        if self.discard_keys_file and not Path(self.discard_keys_file).is_file():
            raise ValueError(f"--discard-keys-file {self.discard_keys_file}: no such file")
        if self.max_bad_lines < 0:
            raise ValueError(f"--max-bad-lines {self.max_bad_lines}: must be >= 0")
        if self.num_shards is not None and self.num_shards < 1:
            raise ValueError(f"--num-shards {self.num_shards}: must be >= 1")
        if self.push_to_hub:  # checked now, not after hours of building
            from huggingface_hub.utils import validate_repo_id

            try:
                validate_repo_id(self.push_to_hub)
            except ValueError as e:
                raise ValueError(f"--push-to-hub {self.push_to_hub!r}: {e}") from None
        if Path(self.output_dir).exists() and not Path(self.output_dir).is_dir():
            raise ValueError(f"--output {self.output_dir}: exists and is not a directory")
        self.extract_rules()  # a bad preset, rule name, fraction or list file fails now, not after stage 1

    def extract_rules(self) -> ExtractRules:
        """The one rules config this build runs (preset, then switches, then explicit settings)."""
        lists = {k: (None if v.lower() == "none" else v) for k in ("words_blocklist", "subreddits_blocklist")
                 if (v := getattr(self, k)) is not None}
        for k, v in lists.items():
            if v not in (None, SHIPPED) and not Path(v).is_file():
                raise RulesError(f"--{k.replace('_', '-')} {v}: no such file")
        rules = ExtractRules.from_preset(
            self.preset, size=self.size, use_title=self.use_title, use_selftext=self.use_selftext,
            test_fraction=self.test_fraction, validation_fraction=self.validation_fraction,
        ).with_switches(self.rules)
        return replace(rules, **lists).with_abs_paths()

    @property
    def config_name(self) -> str:
        return self.size or "custom"

    def resolved_months(self) -> tuple[str, list[str], list[str]]:
        """(dumps_dir, train months, test months), checked against the files present."""
        return resolve_months(self.size, self.dumps_dir, self.months, self.test_months)


@dataclass
class BuildResult:
    output_dir: Path
    parquet_files: dict[str, list[Path]]
    num_rows: dict[str, int]
    counters: Counter
    refs_path: Path
    keys_path: Path
    card_path: Path
    tsv_path: Path | None = None
    hub_url: str | None = None
    months: list[str] = field(default_factory=list)
    test_months: list[str] = field(default_factory=list)
    #: content hash in the Parquet names and the README ``configs:`` patterns (dataset_folder.fingerprint_parquet)
    data_fingerprint: str = ""
    #: months built without an RS (submissions) file: their threads are rooted at top-level comments
    months_without_rs: list[str] = field(default_factory=list)
    #: the extraction rules this build ran (preset, switches, lists)
    rules: ExtractRules | None = None

    def data_files_pattern(self, split: str) -> str:
        return data_files_pattern(split, self.data_fingerprint)

    def counts_table(self) -> str:
        return counts_table(self.counters, self.rules)


def _plan_overrides(cfg: BuildConfig) -> dict:
    return {
        "num_shards": cfg.num_shards, "rules": cfg.extract_rules(),
        "min_refs": cfg.min_refs, "max_refs": cfg.max_refs,
        "keys_file": str(Path(cfg.keys_file).resolve()) if cfg.keys_file else None,
        "discard_keys_file": str(Path(cfg.discard_keys_file).resolve()) if cfg.discard_keys_file else None,
        "max_bad_lines": cfg.max_bad_lines, "allow_empty_months": cfg.allow_empty_months,
    }


def make_builder(cfg: BuildConfig) -> RedditDialog:
    dumps_dir, months, test_months = cfg.resolved_months()
    work = Path(cfg.output_dir).resolve() / ".work"  # absolute: plan.json must match from any cwd
    return RedditDialog(
        config_name=cfg.config_name,
        cache_dir=str(work / "hf_cache"),
        dumps_dir=str(Path(dumps_dir).resolve()), months=months, test_months=test_months,
        work_dir=str(work / "pipeline"), pipeline_num_proc=cfg.num_proc, executor=cfg.executor, quiet=cfg.quiet,
        plan_overrides=_plan_overrides(cfg),
    )


def _connect_ray(num_proc: int) -> None:
    """Join the Ray cluster in ``RAY_ADDRESS`` or one ``ray start`` left on this machine; start a local
    instance with ``num_proc`` CPUs only when there is none. (Ray refuses ``num_cpus`` when joining an
    existing cluster, so passing it always made ``--executor ray`` fail on a real cluster.)"""
    import os

    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(include_dashboard=False)  # the user named a cluster: never fall back to a local one
        return
    try:
        ray.init(address="auto", include_dashboard=False)
    except ConnectionError:  # no running cluster found
        ray.init(num_cpus=num_proc, include_dashboard=False)


def build_dataset(cfg: BuildConfig) -> BuildResult:
    """Build (or resume building) the dataset folder described by ``cfg``; see the module doc."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    builder, plan = _run_builder(cfg)
    files, rows, test_order = _export_splits(builder, out)
    fingerprint, files = fingerprint_parquet(files)
    work = Path(plan.work_dir)
    refs_path, keys_path = _write_refs_and_keys(work, out, test_order)
    tsv_path = _export_tsv(builder, out / "train.tsv") if cfg.export_tsv else None
    counters = pipeline.read_counters(work)
    result = BuildResult(out, files, rows, counters, refs_path, keys_path, out / "README.md", tsv_path,
                         months=plan.months, test_months=plan.test_months, data_fingerprint=fingerprint,
                         months_without_rs=[m for m in plan.all_months if find_month_files(plan.dumps_dir, m)[0] is None],
                         rules=plan.rules)
    write_license(out)
    render_dataset_card(result, cfg, plan, builder.info).save(str(result.card_path))
    (out / "build_stats.json").write_text(json.dumps(
        {"num_rows": rows, "counters": dict(sorted(counters.items())), "months": plan.months,
         "test_months": plan.test_months, "months_without_rs": result.months_without_rs,
         "rules": plan.rules.to_dict()}, indent=2))
    if cfg.push_to_hub:
        result.hub_url = _push(cfg, out)
    return result


def _run_builder(cfg: BuildConfig) -> tuple[RedditDialog, pipeline.Plan]:
    """Run (or resume) the pipeline under the datasets builder; Slurm only submits and stops here."""
    if cfg.executor == "ray":
        _connect_ray(cfg.num_proc)
    builder = make_builder(cfg)
    if cfg.executor == "slurm":
        # the cluster runs both stages; this machine only submits them and comes back later
        plan = builder.make_plan()
        pipeline.run_pipeline(plan, "slurm", cfg.num_proc, cfg.slurm_kwargs)
        raise SubmittedToSlurm(
            f"submitted {plan.stage1_tasks} + {plan.num_shards} Slurm tasks (logs: {plan.work_dir}/logs); once they "
            "finish, run the same command with --executor local to write the dataset (finished tasks are skipped)"
        )
    builder.download_and_prepare(num_proc=cfg.num_proc if cfg.num_proc > 1 else None)
    return builder, builder.make_plan()


def _export_splits(builder: RedditDialog, out: Path) -> tuple[dict, dict, list[str]]:
    """Each split the builder made -> ``data/<split>-*.parquet``; (files, rows, test ids in order)."""
    for old in (out / "data").glob("*.parquet"):
        old.unlink()
    files, rows, test_order = {}, {}, []
    for split in pipeline.SPLITS:
        if split not in builder.info.splits:  # no rows at all (e.g. --preset original has no validation)
            files[split], rows[split] = [], 0
            continue
        ds = builder.as_dataset(split)
        files[split] = export_parquet(ds, out, split)
        rows[split] = len(ds)
        if split == "test":
            test_order = ds["id"]
    return files, rows, test_order


def _write_refs_and_keys(work: Path, out: Path, test_order: list[str]) -> tuple[Path, Path]:
    """``test.refs.txt`` and ``keys.txt`` from the stage-2 shards (they keep scores and reference ids)."""
    import pyarrow.parquet as pq

    test_rows = []
    for f in pipeline.stage2_files(work, "test"):
        test_rows.extend(pq.read_table(f).to_pylist())
    # test.refs.txt lists the contexts in the Parquet test split's order, so a hypothesis file
    # decoded from either one lines up with references read from the other.
    position = {i: k for k, i in enumerate(test_order)}
    test_rows.sort(key=lambda r: (position.get(r["id"], len(position)), r["id"]))
    refs_path = out / "test.refs.txt"
    legacy_tsv.write_refs(refs_path, refs_file_rows(test_rows))
    keys_path = out / "keys.txt"
    with open(keys_path, "w", encoding="utf-8") as f:
        for split in ("train", "validation"):
            for p in pipeline.stage2_files(work, split):
                for i in pq.read_table(p, columns=["id"]).column("id").to_pylist():
                    f.write(i + "\n")
        for r in test_rows:
            for i in r["reference_ids"]:
                f.write(i + "\n")
    return refs_path, keys_path


def _export_tsv(builder: RedditDialog, path: Path) -> Path:
    """The original's train.tsv lines for the train split (with ``--preset original``: every selected
    pair, since that preset hashes no thread into validation or test)."""
    train = builder.as_dataset("train").with_format("arrow") if "train" in builder.info.splits else None
    legacy_tsv.write_train_tsv(path, _arrow_turns(train) if train is not None else ())
    return path


def _arrow_turns(ds, batch_size: int = 10_000):
    """Each row's turns as (text, weight) pairs, read column-wise from the split's Arrow batches
    (formatting every row as Python dicts through ``datasets`` cost more than all the rest of the export)."""
    for batch in ds.iter(batch_size=batch_size):
        turns = batch.column("turns").combine_chunks()
        offsets = turns.offsets.to_pylist()  # absolute positions in .values, sliced or not
        texts = turns.values.field("text").to_pylist()
        weights = turns.values.field("weight").to_pylist()
        for a, b in zip(offsets, offsets[1:]):
            yield list(zip(texts[a:b], weights[a:b]))


def _push(cfg: BuildConfig, out: Path) -> str:
    import httpx

    try:
        return push_dataset(out, cfg.push_to_hub, private=cfg.private, token=cfg.token)
    except (httpx.HTTPError, OSError) as e:  # HfHubHTTPError is both; a dead endpoint is httpx's
        msg = " ".join(str(e).split())[:300]
        raise RuntimeError(
            f"--push-to-hub {cfg.push_to_hub}: upload failed ({type(e).__name__}: {msg}); the dataset in "
            f"{out} is complete: run the same command again to retry the upload"
        ) from None


def push_dataset(folder: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a built folder (minus ``.work``) as a Hub dataset repo; returns the repo URL."""
    return push_dataset_folder(folder, repo_id, private=private, token=token, ignore_patterns=[".work/**", ".work"],
                               commit_message="Upload Reddit dialogue dataset")


def clean_work_dir(output_dir: str | Path) -> None:
    """Remove the resumable work state of a finished build (shards, logs, Arrow cache)."""
    shutil.rmtree(Path(output_dir) / ".work", ignore_errors=True)
