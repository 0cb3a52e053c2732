"""The extraction as two datatrove stages: dumps -> hash-partitioned shards -> Parquet sessions.

Stage 1 (:class:`ShardDumps`, one task per month, or per month and line slice when there are more
workers than months) streams the RS/RC files and writes compact records to
``stage1/<month>/part<r>/shard-<k>.jsonl`` with ``k = crc32(link_id) % num_shards``: every record
of a thread lands in the same shard, and memory never holds more than a buffer.

Stage 2 (:class:`BuildConversations`, one task per shard) reads shard ``k`` of each month, groups
it by ``link_id`` (one shard-month in memory: the shard count grows with the input so this stays
bounded), calls the pure :func:`threads.build_sessions`, assigns each thread to a split, builds the
multi-reference test rows, and writes ``stage2/<split>/<month>-<k>.parquet`` (rows sorted by id).

Both stages run under a datatrove executor: ``local`` (``LocalPipelineExecutor``: ``--num-proc``
workers, its ``completions/`` files make a re-run skip finished tasks, i.e. finished months),
``ray`` (``RayPipelineExecutor`` on an already initialised Ray) or ``slurm``
(``SlurmPipelineExecutor``). Each task writes its outputs under its own names, replacing any
partial output of a killed earlier attempt, so a resumed build has no duplicates. The counters of
every rule are written per task to ``counters/`` (and to datatrove's stats).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import zlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datatrove.pipeline.base import PipelineStep
from tqdm.auto import tqdm

from dialogpt_dataset import dumps as dumps_mod
from dialogpt_dataset.multiref import multiref_rows
from dialogpt_dataset.rules import ExtractRules
from dialogpt_dataset.threads import ExtractConfig, build_sessions, key_of_id

SPLITS = ("train", "validation", "test")
#: uncompressed bytes per compressed byte, to size the shards before reading anything
_EXPANSION = {"zst": 8.0, "bz2": 6.0, "xz": 7.0, "gz": 5.0}
#: target raw dump bytes per shard-month in stage 2 (what one task holds in memory at once)
SHARD_TARGET_BYTES = 96 * 2**20


class PlanError(ValueError):
    """The work directory was made with other settings."""


@dataclass
class Plan:
    """Everything a task needs, fixed at the first run and stored as ``plan.json`` (for resume)."""

    dumps_dir: str
    work_dir: str
    months: list[str]
    test_months: list[str] = field(default_factory=list)
    num_shards: int = 4
    read_splits: int = 1
    #: what is selected: the one config of extraction rules (presets, switches, blocklists, fractions)
    rules: ExtractRules = field(default_factory=ExtractRules)
    min_refs: int = 5
    max_refs: int | None = None
    keys_file: str | None = None
    discard_keys_file: str | None = None
    max_bad_lines: int = 1000

    def __post_init__(self):
        if isinstance(self.rules, dict):  # from plan.json
            self.rules = ExtractRules.from_dict(self.rules)

    @property
    def all_months(self) -> list[str]:
        return sorted(set(self.months) | set(self.test_months))

    @property
    def stage1_tasks(self) -> int:
        return len(self.all_months) * self.read_splits

    def save(self) -> None:
        p = Path(self.work_dir) / "plan.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists():
            old = json.loads(p.read_text())
            if old != asdict(self):
                diff = sorted(k for k in set(old) | set(asdict(self)) if old.get(k) != asdict(self).get(k))
                raise PlanError(
                    f"{p}: this work directory was started with other settings ({', '.join(diff)}); "
                    "use another --output (or delete it) to rebuild"
                )
            return
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, p)

    @classmethod
    def load(cls, work_dir: str | os.PathLike) -> Plan:
        return cls(**json.loads((Path(work_dir) / "plan.json").read_text()))

    def extract_config(self, leaves_only: bool, keys=None, discard=None) -> ExtractConfig:
        return ExtractConfig.from_rules(self.rules, leaves_only, keys, discard)


MAX_SHARDS = 1024  # stage 1 keeps one open file per shard


def auto_num_shards(dumps_dir: str, months: list[str], minimum: int = 2, multiple_of: int = 1) -> int:
    """Enough shards that one shard-month stays near :data:`SHARD_TARGET_BYTES` of raw dump,
    rounded up to a multiple of the worker count so stage 2's tasks balance."""
    biggest = 0.0
    for m in months:
        total = 0.0
        for p in dumps_mod.find_month_files(dumps_dir, m):
            if p is not None:
                ext = dumps_mod.parse_dump_name(p.name)[2]
                total += p.stat().st_size * _EXPANSION.get(ext, 1.0)
        biggest = max(biggest, total)
    n = max(minimum, math.ceil(biggest / SHARD_TARGET_BYTES))
    return min(MAX_SHARDS, multiple_of * math.ceil(n / multiple_of))


def _allow_open_files(n: int) -> None:
    """Raise the soft open-file limit when a month has many shards (the hard limit is the cap)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = n + 64
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    except (ImportError, ValueError, OSError):
        pass


def shard_of(link_id: str, num_shards: int) -> int:
    return zlib.crc32(link_id.encode()) % num_shards


def split_of(link_id: str, month: str, plan: Plan) -> str:
    """Whole threads go to one split: test months -> test; else a stable hash of the link id."""
    if month in plan.test_months:
        return "test"
    h = int(hashlib.md5(link_id.encode()).hexdigest()[:8], 16) / 2**32
    test_fraction = 0.0 if plan.test_months else plan.rules.test_fraction
    if h < test_fraction:
        return "test"
    if h < test_fraction + plan.rules.validation_fraction:
        return "validation"
    return "train"


def _key_lines(p: Path, flag: str):
    """``(line_no, line)`` of a keys file (``.gz`` or plain), with a one-line error naming the file and
    line for one that is not gzip / not UTF-8 text (instead of a codec or gzip traceback)."""
    opener = gzip.open if p.suffix == ".gz" else open
    i = 0
    try:
        with opener(p, "rb") as f:  # bytes, decoded line by line, so an error names its line
            for i, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"{p}:{i}: {flag} is not UTF-8 text") from None
                yield i, line
    except (OSError, EOFError) as e:
        raise ValueError(f"{p}:{i + 1}: {flag} cannot be read ({type(e).__name__}: {e})") from None


def load_keys(path: str | os.PathLike, shard: int | None = None, num_shards: int = 1) -> frozenset[tuple[str, str]]:
    """Keys to keep: our instance ids (``t3_..,t1_..,t1_..``, one a line) or the original's
    ``keys-*.gz`` lines (``t3_..\\tt1_..\\tkeep``; ``dep`` lines are for its extract stage and skipped).
    Only keys of ``shard`` are kept when given (each stage-2 task loads its own share)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: --keys-file not found")
    keys = set()
    for i, line in _key_lines(p, "--keys-file"):
        line = line.strip()
        if not line or line.startswith("#") or line.endswith("\tdep"):
            continue
        if "\t" in line:
            parts = line.split("\t")
            link, cid = parts[0], parts[1]
        else:
            link, cid = key_of_id(line)
        if not (link.startswith("t3_") and cid.startswith(("t1_", "t3_"))):
            raise ValueError(f"{p}:{i}: not an instance id (t3_...,t1_...,t1_...): {line[:60]!r}")
        if shard is None or shard_of(link, num_shards) == shard:
            keys.add((link, cid))
    return frozenset(keys)


def load_discard_hashes(path: str | os.PathLike) -> frozenset[str]:
    """sha224 hex digests, one a line (first tab field; ``dep`` lines skipped, as the original)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: --discard-keys-file not found")
    out = set()
    for i, line in _key_lines(p, "--discard-keys-file"):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#") or line.endswith("\tdep"):
            continue
        h = line.split("\t")[0].strip().lower()
        if len(h) != 56 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError(f"{p}:{i}: not a sha224 hex digest: {h[:60]!r}")
        out.add(h)
    return frozenset(out)


def _write_counters(work_dir: str, stage: str, rank: int, counters: Counter) -> None:
    d = Path(work_dir) / "counters" / stage
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f"{rank:05d}.json.tmp"
    tmp.write_text(json.dumps(dict(sorted(counters.items()))))
    os.replace(tmp, d / f"{rank:05d}.json")


def read_counters(work_dir: str | os.PathLike) -> Counter:
    """The sum of every task's counters (both stages) of a build."""
    total: Counter = Counter()
    for p in sorted((Path(work_dir) / "counters").glob("*/*.json")):
        total.update(json.loads(p.read_text()))
    return total


class _PlannedStep(PipelineStep):
    """A step driven by a :class:`Plan` whose per-rule counters go both to datatrove's stats and to a
    JSON file per task (what the dataset card's table is built from)."""

    type = "reddit"

    def __init__(self, plan: Plan, quiet: bool = False):
        super().__init__()
        self.plan = plan
        self.quiet = quiet

    def __setstate__(self, state):
        # a --num-proc > 1 worker (forkserver) unpickles the step before datatrove logs the task:
        # silence it here, or --quiet leaked each worker's "Launching pipeline" lines
        self.__dict__.update(state)
        _quiet_datatrove(self.quiet)

    def _report(self, stage: str, rank: int, counters: Counter) -> None:
        for k, v in counters.items():
            self.stat_update(k, value=v)
        _write_counters(self.plan.work_dir, stage, rank, counters)


class ShardDumps(_PlannedStep):
    """Stage 1: one month's RS/RC files (or a line slice of them) -> hash-partitioned shards."""

    name = "shard dumps"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        plan = self.plan
        _quiet_datatrove(self.quiet)
        month_idx, part = divmod(rank, plan.read_splits)
        month = plan.all_months[month_idx]
        counters: Counter = Counter()
        self.shard_month(month, part, counters)
        self._report("stage1", rank, counters)
        return iter(())

    def shard_month(self, month: str, part: int, counters: Counter) -> None:
        plan = self.plan
        rs, rc = dumps_mod.find_month_files(plan.dumps_dir, month)
        if rc is None:
            raise dumps_mod.DumpError(f"{plan.dumps_dir}: no RC_{month}.* comments file for month {month}")
        out = Path(plan.work_dir) / "stage1" / month / f"part{part:03d}"
        out.mkdir(parents=True, exist_ok=True)
        n = plan.read_splits
        line_filter = None if n == 1 else (lambda line_no: line_no % n == part)
        _allow_open_files(plan.num_shards)
        files = [open(out / f"shard-{k:04d}.jsonl", "w", encoding="utf-8", buffering=1 << 16)
                 for k in range(plan.num_shards)]
        try:
            for path, kind in ((rs, "s"), (rc, "c")):
                if path is None:
                    continue
                coerce = dumps_mod.coerce_submission if kind == "s" else dumps_mod.coerce_comment
                records = dumps_mod.iter_records(path, counters, plan.max_bad_lines, line_filter)
                desc = f"{path.name}" + (f" [{part + 1}/{n}]" if n > 1 else "")
                for _, rec in tqdm(records, desc=desc, unit=" rec", mininterval=5, disable=None, leave=False):
                    counters["records_rs" if kind == "s" else "records_rc"] += 1
                    r = coerce(rec, counters)
                    if r is None:
                        continue
                    files[shard_of(r["l"], plan.num_shards)].write(
                        json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
        finally:
            for f in files:
                f.close()
        if rs is None and part == 0:
            counters["months_without_rs"] += 1
        (out / "meta.json").write_text(json.dumps({"has_rs": rs is not None}))


class BuildConversations(_PlannedStep):
    """Stage 2: shard ``k`` of every month -> sessions -> ``stage2/<split>/<month>-<k>.parquet``."""

    name = "build conversations"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        plan = self.plan
        _quiet_datatrove(self.quiet)
        keys = load_keys(plan.keys_file, rank, plan.num_shards) if plan.keys_file else None
        discard = load_discard_hashes(plan.discard_keys_file) if plan.discard_keys_file else None
        train_cfg = plan.extract_config(leaves_only=True, keys=keys, discard=discard)
        test_cfg = plan.extract_config(leaves_only=False, keys=keys)
        counters: Counter = Counter()
        for month in plan.all_months:
            self.process_shard(month, rank, train_cfg, test_cfg, counters)
        self._report("stage2", rank, counters)
        return iter(())

    def process_shard(self, month: str, shard: int, train_cfg, test_cfg, counters: Counter) -> None:
        plan = self.plan
        month_dir = Path(plan.work_dir) / "stage1" / month
        parts = sorted(month_dir.glob("part*"))
        has_rs = any(json.loads((p / "meta.json").read_text())["has_rs"] for p in parts)
        subs: dict[str, dict] = {}
        comments: dict[str, list[dict]] = defaultdict(list)
        for p in parts:
            with open(p / f"shard-{shard:04d}.jsonl", encoding="utf-8") as f:
                for line in f:
                    r = json.loads(line)
                    if r["k"] == "s":
                        subs.setdefault(r["id"], r)
                    else:
                        comments[r["l"]].append(r)
        rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
        for link in sorted(set(comments) | set(subs)):
            split = split_of(link, month, plan)
            cfg = test_cfg if split == "test" else train_cfg
            sessions = build_sessions(subs.get(link), comments.get(link, ()), cfg, counters, has_rs)
            if split == "test":
                rows["test"].extend(multiref_rows(sessions, counters, plan.min_refs, plan.max_refs))
            else:
                rows[split].extend(s.to_row() for s in sessions)
        for split, rs in rows.items():
            counters[f"rows_{split}"] += len(rs)
            write_rows(Path(plan.work_dir) / "stage2" / split / f"{month}-{shard:04d}.parquet", rs, split == "test")


def arrow_schema(with_test_extras: bool = False):
    import pyarrow as pa

    turn = pa.struct([("text", pa.string()), ("weight", pa.float32()), ("score", pa.int64())])
    fields = [("id", pa.string()), ("subreddit", pa.string()), ("created_utc", pa.int64()),
              ("turns", pa.list_(turn)), ("references", pa.list_(pa.string()))]
    if with_test_extras:
        fields += [("reference_scores", pa.list_(pa.int64())), ("reference_ids", pa.list_(pa.string()))]
    return pa.schema(fields)


def write_rows(path: Path, rows: list[dict], test_extras: bool) -> None:
    """Rows sorted by id -> one Parquet file, written atomically (a killed task leaves no half file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r["id"])
    schema = arrow_schema(test_extras)
    table = pa.Table.from_pylist([{k: r.get(k, []) for k in schema.names} for r in rows], schema=schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def stage2_files(work_dir: str | os.PathLike, split: str) -> list[Path]:
    return sorted((Path(work_dir) / "stage2" / split).glob("*.parquet"))


def nonempty_stage2_files(work_dir: str | os.PathLike, split: str) -> list[Path]:
    import pyarrow.parquet as pq

    return [p for p in stage2_files(work_dir, split) if pq.read_metadata(p).num_rows > 0]


def _quiet_datatrove(quiet: bool) -> None:
    """Silence datatrove's per-task INFO logging (console and task log files) in this process."""
    if quiet:
        from loguru import logger

        logger.disable("datatrove")


def make_executors(plan: Plan, executor: str = "local", num_proc: int = 1, slurm_kwargs: dict | None = None,
                   quiet: bool = False):
    """(stage 1, stage 2) datatrove executors for ``plan``; ``executor`` is local, ray or slurm."""
    logs = Path(plan.work_dir) / "logs"
    s1 = [ShardDumps(plan, quiet)]
    s2 = [BuildConversations(plan, quiet)]
    if executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        e1 = LocalPipelineExecutor(s1, tasks=plan.stage1_tasks, workers=num_proc, logging_dir=str(logs / "stage1"))
        e2 = LocalPipelineExecutor(s2, tasks=plan.num_shards, workers=num_proc, logging_dir=str(logs / "stage2"))
        return e1, e2
    if executor == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        kw = dict(workers=num_proc, cpus_per_task=1, mem_per_cpu_gb=0.25)
        e1 = RayPipelineExecutor(s1, tasks=plan.stage1_tasks, logging_dir=str(logs / "stage1"), **kw)
        e2 = RayPipelineExecutor(s2, tasks=plan.num_shards, logging_dir=str(logs / "stage2"), **kw)
        return e1, e2
    if executor == "slurm":
        from datatrove.executor.slurm import SlurmPipelineExecutor

        kw = {"time": "24:00:00", "partition": "cpu", "cpus_per_task": 1, "mem_per_cpu_gb": 4}
        kw.update(slurm_kwargs or {})
        e1 = SlurmPipelineExecutor(s1, tasks=plan.stage1_tasks, logging_dir=str(logs / "stage1"),
                                   job_name="reddit-shard", **kw)
        e2 = SlurmPipelineExecutor(s2, tasks=plan.num_shards, logging_dir=str(logs / "stage2"),
                                   job_name="reddit-conv", depends=e1, **kw)
        return e1, e2
    raise ValueError(f"--executor {executor!r}: expected local, ray or slurm")


def run_pipeline(plan: Plan, executor: str = "local", num_proc: int = 1, slurm_kwargs: dict | None = None,
                 quiet: bool = False) -> Counter:
    """Run (or resume) both stages; returns the summed counters. Slurm only submits the jobs.

    ``quiet`` turns off datatrove's per-task log lines (the counters table says what happened)."""
    # stage-2 tasks load the keys files only after stage 1 has read every dump (hours on real
    # months): read them once here so a bad line is reported before any work (nothing is kept)
    if plan.keys_file:
        load_keys(plan.keys_file, shard=-1, num_shards=plan.num_shards)
    if plan.discard_keys_file:
        load_discard_hashes(plan.discard_keys_file)
    plan.save()
    e1, e2 = make_executors(plan, executor, num_proc, slurm_kwargs, quiet)
    if quiet:
        _quiet_datatrove(True)
        try:
            return _run_stages(e1, e2, executor, plan)
        finally:
            from loguru import logger

            logger.enable("datatrove")
    return _run_stages(e1, e2, executor, plan)


def _run_stages(e1, e2, executor: str, plan: Plan) -> Counter:
    if executor == "slurm":
        e2.run()  # submits stage 1 as its dependency, then stage 2
        return Counter()
    e1.run()
    missing = e1.get_incomplete_ranks(skip_completed=True)
    if missing:
        raise RuntimeError(f"stage 1 (shard dumps) did not finish tasks {missing}; see {e1.logging_dir.path}")
    e2.run()
    missing = e2.get_incomplete_ranks(skip_completed=True)
    if missing:
        raise RuntimeError(f"stage 2 (conversations) did not finish tasks {missing}; see {e2.logging_dir.path}")
    return read_counters(plan.work_dir)
