"""The extraction as two datatrove stages: dumps -> hash-partitioned shards -> Parquet sessions.

The pieces live in their own modules: :mod:`~dialogpt_dataset.plan` (what a run does, fixed in
``plan.json``), :mod:`~dialogpt_dataset.stages` (stage 1 :class:`ShardDumps`, one task per dump file;
stage 2 :class:`BuildConversations`, one task per shard), :mod:`~dialogpt_dataset.keys` (keys files).
This module runs them under a datatrove executor:

* ``local`` (``LocalPipelineExecutor``): ``--num-proc`` workers; its ``completions/`` files make a
  re-run skip finished tasks, i.e. finished dump files and shards;
* ``ray`` (``RayPipelineExecutor`` on an already initialised Ray);
* ``slurm`` (``SlurmPipelineExecutor``): submits stage 1 and stage 2 (after it) and returns; the
  same command with ``--executor local`` then skips every finished task and writes the dataset.

Before any task runs, the inputs that would otherwise fail hours later are checked: the keys files
and 0-byte dump files (each a one-line error naming the file).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from dialogpt_dataset import dumps
from dialogpt_dataset.keys import load_discard_hashes, load_keys
from dialogpt_dataset.plan import SPLITS, Plan, PlanError, auto_num_shards, shard_of, split_of
from dialogpt_dataset.process import freeze_owned_process, frozen_heap, limit_blas_threads
from dialogpt_dataset.stages import (
    BuildConversations,
    ShardDumps,
    nonempty_stage2_files,
    quiet_datatrove,
    read_counters,
    stage2_files,
    write_rows,
)

__all__ = [
    "SPLITS", "BuildConversations", "Plan", "PlanError", "ShardDumps", "auto_num_shards", "freeze_owned_process",
    "frozen_heap", "limit_blas_threads", "load_discard_hashes", "load_keys", "make_executors", "nonempty_stage2_files", "read_counters", "run_pipeline", "shard_of",
    "split_of", "stage2_files", "write_rows",
]

#: what ``--executor slurm`` asks for per task unless ``slurm_kwargs`` says otherwise
SLURM_DEFAULTS = {"time": "24:00:00", "partition": "cpu", "cpus_per_task": 1, "mem_per_cpu_gb": 4}


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

        kw = {**SLURM_DEFAULTS, **(slurm_kwargs or {})}
        if not any(kw.get(k) for k in ("env_command", "venv_path", "condaenv")):
            # the jobs run datatrove's `launch_pickled_pipeline` script, installed beside this Python:
            # a build started as `.venv/bin/python -m ...` has no .venv/bin on PATH, so add it
            kw["env_command"] = f'export PATH="{Path(sys.executable).parent}:$PATH"'
        e1 = SlurmPipelineExecutor(s1, tasks=plan.stage1_tasks, logging_dir=str(logs / "stage1"),
                                   job_name="reddit-shard", **kw)
        e2 = SlurmPipelineExecutor(s2, tasks=plan.num_shards, logging_dir=str(logs / "stage2"),
                                   job_name="reddit-conv", depends=e1, **kw)
        return e1, e2
    raise ValueError(f"--executor {executor!r}: expected local, ray or slurm")


def check_inputs(plan: Plan) -> None:
    """Fail now, naming the file, on what stage 1 or 2 would only find after hours of work."""
    # stage-2 tasks load the keys files only after stage 1 has read every dump: read them once here
    # so a bad line is reported before any work (nothing is kept)
    if plan.keys_file:
        load_keys(plan.keys_file, shard=-1, num_shards=plan.num_shards)
    if plan.discard_keys_file:
        load_discard_hashes(plan.discard_keys_file)
    for month in plan.all_months:
        for path in dumps.find_month_files(plan.dumps_dir, month):
            if path is not None:
                dumps.check_not_empty(path, plan.allow_empty_months)


def run_pipeline(plan: Plan, executor: str = "local", num_proc: int = 1, slurm_kwargs: dict | None = None,
                 quiet: bool = False) -> Counter:
    """Run (or resume) both stages; returns the summed counters. Slurm only submits the jobs.

    ``quiet`` turns off datatrove's per-task log lines (the counters table says what happened)."""
    check_inputs(plan)
    plan.save()
    e1, e2 = make_executors(plan, executor, num_proc, slurm_kwargs, quiet)
    if quiet:
        quiet_datatrove(True)
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
