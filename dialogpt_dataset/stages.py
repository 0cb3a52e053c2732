"""The two datatrove steps of the extraction and the files they write under the work directory.

Stage 1 (:class:`ShardDumps`, one task per dump file: the RS or the RC file of a month) streams the
file and writes compact records (:mod:`dialogpt_dataset.records`, one JSON array a line) to
``stage1/<month>/<RS|RC>/shard-<k>.jsonl`` with ``k = crc32(link_id) % num_shards``: every record of
a thread lands in the same shard, and memory never holds more than a few records per shard. Files and
months are the parallel unit, so no file is decompressed twice.

Stage 2 (:class:`BuildConversations`, one task per shard) reads shard ``k`` of each month, groups it
by ``link_id`` (one shard-month in memory: the shard count grows with the input so this stays
bounded), calls the pure :func:`threads.build_sessions`, assigns each thread to a split, builds the
multi-reference test rows, and writes ``stage2/<split>/<month>-<k>.parquet`` (rows sorted by id, encoded
as JSON lines in one call, which Arrow's JSON reader turns into the table).

Each task writes its outputs under its own names, replacing any partial output of a killed earlier
attempt, so a resumed build has no duplicates. Every rule's counters are written per task to
``counters/<stage>/<rank>.json`` (and to datatrove's stats).
"""

from __future__ import annotations

import io
import json
import operator
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import msgspec
from datatrove.pipeline.base import PipelineStep
from tqdm.auto import tqdm

from dialogpt_dataset import dumps
from dialogpt_dataset.keys import load_discard_hashes, load_keys
from dialogpt_dataset.multiref import multiref_rows
from dialogpt_dataset.plan import DUMP_KINDS, SPLITS, Plan, shard_of, split_of
from dialogpt_dataset.process import frozen_heap
from dialogpt_dataset.records import Comment, Submission
from dialogpt_dataset.threads import build_sessions

_ROW_ENCODER = msgspec.json.Encoder()


def quiet_datatrove(quiet: bool) -> None:
    """Silence datatrove's per-task INFO logging (console and task log files) in this process."""
    if quiet:
        from loguru import logger

        logger.disable("datatrove")


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


def _progress(records, desc: str):
    """tqdm's bar on a terminal, the bare iterator otherwise (what ``tqdm(disable=None)`` shows, without
    its pass-through layer around each of millions of records)."""
    if not getattr(sys.stderr, "isatty", lambda: False)():
        return records
    return tqdm(records, desc=desc, unit=" rec", mininterval=5, leave=False)


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
        quiet_datatrove(self.quiet)

    def _report(self, stage: str, rank: int, counters: Counter) -> None:
        for k, v in counters.items():
            self.stat_update(k, value=v)
        _write_counters(self.plan.work_dir, stage, rank, counters)


class ShardDumps(_PlannedStep):
    """Stage 1: one dump file (a month's RS or RC) -> hash-partitioned shards of compact records."""

    name = "shard dumps"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        quiet_datatrove(self.quiet)
        month, kind = self.plan.stage1_task(rank)
        counters: Counter = Counter()
        with frozen_heap():
            self.shard_month(month, kind, counters)
        self._report("stage1", rank, counters)
        return iter(())

    def shard_month(self, month: str, kind: str, counters: Counter) -> None:
        """Shard ``month``'s ``kind`` ("RS" or "RC") file; ``meta.json`` says whether it had records."""
        plan = self.plan
        rs, rc = dumps.find_month_files(plan.dumps_dir, month)
        path = rs if kind == "RS" else rc
        if path is None and kind == "RC":
            raise dumps.DumpError(f"{plan.dumps_dir}: no RC_{month}.* comments file for month {month}")
        out = Path(plan.work_dir) / "stage1" / month / kind
        out.mkdir(parents=True, exist_ok=True)
        empty_before = counters["empty_dump_files"]
        if path is not None:
            self._shard_file(path, kind, out, counters)
        has_records = path is not None and counters["empty_dump_files"] == empty_before
        if kind == "RS" and not has_records:
            counters["months_without_rs"] += 1
        (out / "meta.json").write_text(json.dumps({"has_records": has_records}))

    def _shard_file(self, path: Path, kind: str, out: Path, counters: Counter) -> None:
        plan = self.plan
        _allow_open_files(plan.num_shards)
        encode_lines = msgspec.json.Encoder().encode_lines
        # records wait per shard and are written as JSON lines in small batches (one msgspec call
        # each): small, so the memory of written records is reused while it is still in the cache
        batch = 64
        queues: list[list] = [[] for _ in range(plan.num_shards)]
        files = [open(out / f"shard-{k:04d}.jsonl", "wb", buffering=1 << 16) for k in range(plan.num_shards)]
        records = dumps.iter_records(path, counters, plan.max_bad_lines, kind=kind[1].lower(),
                                     allow_empty=plan.allow_empty_months, count_as=f"records_{kind.lower()}")
        try:
            for _, r in _progress(records, path.name):
                k = shard_of(r.link, plan.num_shards)
                queue = queues[k]
                queue.append(r)
                if len(queue) >= batch:
                    files[k].write(encode_lines(queue))
                    queue.clear()
            for f, queue in zip(files, queues):
                f.write(encode_lines(queue))
        finally:
            for f in files:
                f.close()


class BuildConversations(_PlannedStep):
    """Stage 2: shard ``k`` of every month -> sessions -> ``stage2/<split>/<month>-<k>.parquet``."""

    name = "build conversations"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        plan = self.plan
        quiet_datatrove(self.quiet)
        keys = load_keys(plan.keys_file, rank, plan.num_shards) if plan.keys_file else None
        discard = load_discard_hashes(plan.discard_keys_file) if plan.discard_keys_file else None
        train_cfg = plan.extract_config(leaves_only=True, keys=keys, discard=discard)
        test_cfg = plan.extract_config(leaves_only=False, keys=keys)
        counters: Counter = Counter()
        import pyarrow.json  # noqa: F401 (write_rows' modules, imported before the heap is frozen)
        import pyarrow.parquet  # noqa: F401

        with frozen_heap():
            for month in plan.all_months:
                self.process_shard(month, rank, train_cfg, test_cfg, counters)
        self._report("stage2", rank, counters)
        return iter(())

    def process_shard(self, month: str, shard: int, train_cfg, test_cfg, counters: Counter) -> None:
        plan = self.plan
        has_rs, subs, comments = read_shard(Path(plan.work_dir) / "stage1" / month, shard)
        rows: dict[str, list] = {s: [] for s in SPLITS}  # Sessions; the test split's rows are dicts
        for link in sorted(set(comments) | set(subs)):
            split = split_of(link, month, plan)
            cfg = test_cfg if split == "test" else train_cfg
            sessions = build_sessions(subs.get(link), comments.get(link, ()), cfg, counters, has_rs)
            if split == "test":
                rows["test"].extend(multiref_rows(sessions, counters, plan.min_refs, plan.max_refs))
            else:  # a Session is encoded as exactly its row
                rows[split].extend(sessions)
        for split, rs in rows.items():
            counters[f"rows_{split}"] += len(rs)
            write_rows(Path(plan.work_dir) / "stage2" / split / f"{month}-{shard:04d}.parquet", rs, split == "test")


def read_shard(month_dir: Path, shard: int) -> tuple[bool, dict[str, Submission], dict[str, list[Comment]]]:
    """(has RS records, submissions by id, comments by link id) of one shard-month of stage 1."""
    has_rs = json.loads((month_dir / "RS" / "meta.json").read_text())["has_records"]
    subs: dict[str, Submission] = {}
    comments: dict[str, list[Comment]] = defaultdict(list)
    for kind, record_type in zip(DUMP_KINDS, (Submission, Comment)):
        p = month_dir / kind / f"shard-{shard:04d}.jsonl"
        if not p.exists():  # a month without an RS file
            continue
        records = msgspec.json.Decoder(record_type).decode_lines(p.read_bytes())
        if record_type is Submission:
            for r in records:
                subs.setdefault(r.id, r)
        else:
            for r in records:
                comments[r.link].append(r)
    return has_rs, subs, comments


def arrow_schema(with_test_extras: bool = False):
    import pyarrow as pa

    turn = pa.struct([("text", pa.string()), ("weight", pa.float32()), ("score", pa.int64())])
    fields = [("id", pa.string()), ("subreddit", pa.string()), ("created_utc", pa.int64()),
              ("turns", pa.list_(turn)), ("references", pa.list_(pa.string()))]
    if with_test_extras:
        fields += [("reference_scores", pa.list_(pa.int64())), ("reference_ids", pa.list_(pa.string()))]
    return pa.schema(fields)


def rows_table(rows: list, schema):
    """Rows (each with exactly the schema's fields: Sessions, or the test split's dicts) -> an Arrow
    table: one msgspec call encodes them all as JSON lines, which Arrow's JSON reader parses with the
    schema. Building the columns from Python lists (``pa.array``) cost ten times more, and its first
    call imports pandas."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    if not rows:
        return pa.Table.from_batches([], schema=schema)  # (schema.empty_table() imports pandas)
    data = _ROW_ENCODER.encode_lines(rows)
    return pa_json.read_json(
        io.BytesIO(data), read_options=pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1),
        parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"))


def write_rows(path: Path, rows: list, test_extras: bool) -> None:
    """Rows -> one Parquet file sorted by id, written atomically (a killed task leaves no half file).
    ``test_extras``: the test split's rows (dicts with the reference columns); else Sessions."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=operator.itemgetter("id") if test_extras else operator.attrgetter("id"))
    table = rows_table(rows, arrow_schema(test_extras))
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def stage2_files(work_dir: str | os.PathLike, split: str) -> list[Path]:
    return sorted((Path(work_dir) / "stage2" / split).glob("*.parquet"))


def nonempty_stage2_files(work_dir: str | os.PathLike, split: str) -> list[Path]:
    import pyarrow.parquet as pq

    return [p for p in stage2_files(work_dir, split) if pq.read_metadata(p).num_rows > 0]
