"""What one extraction run does, fixed before any work: months, shard layout, rules (``plan.json``).

Every task of both stages gets the same :class:`Plan`; it is written to ``<work>/plan.json`` on the
first run and a resumed run must match it (other settings would mix two selections in one folder).
The pure helpers here decide where a record goes: :func:`shard_of` (which stage-2 task holds a
thread) and :func:`split_of` (which split a thread lands in).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dialogpt_dataset import dumps
from dialogpt_dataset.rules import ExtractRules
from dialogpt_dataset.threads import ExtractConfig

SPLITS = ("train", "validation", "test")
#: the dump files of a month, in the order stage 1's tasks take them (one task per file)
DUMP_KINDS = ("RS", "RC")
#: uncompressed bytes per compressed byte, to size the shards before reading anything
_EXPANSION = {"zst": 8.0, "bz2": 6.0, "xz": 7.0, "gz": 5.0}
#: target raw dump bytes per shard-month in stage 2 (what one task holds in memory at once, about
#: 3x this as Python objects): small enough that the minimum of 2 shards does not make small months
#: cheaper than big ones (measured: peak RSS 250K -> 1M comments 1.25x at 96 MiB)
SHARD_TARGET_BYTES = 32 * 2**20
MAX_SHARDS = 1024  # stage 1 keeps one open file per shard


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
    #: what is selected: the one config of extraction rules (presets, switches, blocklists, fractions)
    rules: ExtractRules = field(default_factory=ExtractRules)
    min_refs: int = 5
    max_refs: int | None = None
    keys_file: str | None = None
    discard_keys_file: str | None = None
    max_bad_lines: int = 1000
    #: an empty RS/RC file is read as a month without those records (with a warning) instead of
    #: stopping the build: an empty dump is usually a failed download, so this is opt-in
    allow_empty_months: bool = False
    #: the layout of stage 1's shard files (2: one JSON array per record, a records.Comment or
    #: Submission): a work directory written in another layout is refused, never misread
    shard_format: int = 2

    def __post_init__(self):
        if isinstance(self.rules, dict):  # from plan.json
            self.rules = ExtractRules.from_dict(self.rules)

    @property
    def all_months(self) -> list[str]:
        return sorted(set(self.months) | set(self.test_months))

    @property
    def stage1_tasks(self) -> int:
        """One task per dump file (RS and RC of each month): months and files are the parallel unit,
        so no file is decompressed twice."""
        return len(self.all_months) * len(DUMP_KINDS)

    def stage1_task(self, rank: int) -> tuple[str, str]:
        """(month, "RS" or "RC") of stage-1 task ``rank``."""
        month_idx, kind_idx = divmod(rank, len(DUMP_KINDS))
        return self.all_months[month_idx], DUMP_KINDS[kind_idx]

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


def auto_num_shards(dumps_dir: str, months: list[str], minimum: int = 2, multiple_of: int = 1) -> int:
    """Enough shards that one shard-month stays near :data:`SHARD_TARGET_BYTES` of raw dump,
    rounded up to a multiple of the worker count so stage 2's tasks balance."""
    biggest = 0.0
    for m in months:
        total = 0.0
        for p in dumps.find_month_files(dumps_dir, m):
            if p is not None:
                ext = dumps.parse_dump_name(p.name)[2]
                total += p.stat().st_size * _EXPANSION.get(ext, 1.0)
        biggest = max(biggest, total)
    n = max(minimum, math.ceil(biggest / SHARD_TARGET_BYTES))
    return min(MAX_SHARDS, multiple_of * math.ceil(n / multiple_of))


def shard_of(link_id: str, num_shards: int) -> int:
    return zlib.crc32(link_id.encode()) % num_shards


def split_of(link_id: str, month: str, plan: Plan) -> str:
    """Whole threads go to one split: test months -> test; else a stable hash of the link id."""
    if month in plan.test_months:
        return "test"
    test_fraction = 0.0 if plan.test_months else plan.rules.test_fraction
    if not test_fraction and not plan.rules.validation_fraction:
        return "train"  # (what the hash below gives then: it is never below 0; one md5 less per thread)
    h = int(hashlib.md5(link_id.encode()).hexdigest()[:8], 16) / 2**32
    if h < test_fraction:
        return "test"
    if h < test_fraction + plan.rules.validation_fraction:
        return "validation"
    return "train"
