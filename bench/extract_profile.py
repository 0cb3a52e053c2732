"""Per-stage profile of the extraction (``bench/extract.py --profile``): where the wall and CPU seconds go.

One run of the pipeline (``run_pipeline``, as the ``--vs-original`` bench runs it) and one of the whole
CLI (``dialogpt-build-dataset ... --export-tsv``), each in a fresh subprocess with light timers wrapped
around the library's named steps (two clock reads per call: the figures add up to the run's own
totals). Every label is inclusive; ``rest`` is what no label covers (the interpreter's own shutdown is
outside the run). ``stage2.*`` are parts of ``stage2``; the other labels do not overlap.

A step that a version of the library does not have is left out, so the same harness profiles the code
before and after a change (``PYTHONPATH=<old checkout> python bench/extract_profile.py ...``).

``--top N`` adds a cProfile run of the pipeline: the N functions with the most own time, as shares of
the profiled total (cProfile slows Python calls unevenly: read shares, not seconds).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import time
from pathlib import Path

MONTH = "2010-06"

#: (label, "module:attribute.path") of every timed step; the first label wins where two wrap one call
PIPELINE_STEPS = [
    ("stage1", "dialogpt_dataset.stages:ShardDumps.run"),
    ("stage2", "dialogpt_dataset.stages:BuildConversations.run"),
    ("stage2.read_shard", "dialogpt_dataset.stages:read_shard"),
    ("stage2.build_sessions", "dialogpt_dataset.stages:build_sessions"),
    ("stage2.multiref", "dialogpt_dataset.stages:multiref_rows"),
    ("stage2.write_parquet", "dialogpt_dataset.stages:write_rows"),
    ("pipeline", "dialogpt_dataset.pipeline:run_pipeline"),
]
CLI_STEPS = PIPELINE_STEPS + [
    ("builder.prepare", "datasets.builder:DatasetBuilder.download_and_prepare"),
    ("export.parquet", "dialogpt_dataset.build:_export_splits"),
    ("export.fingerprint", "dialogpt_dataset.build:_fingerprint_parquet"),
    ("export.refs_keys", "dialogpt_dataset.build:_write_refs_and_keys"),
    ("export.tsv", "dialogpt_dataset.build:_export_tsv"),
    ("card", "dialogpt_dataset.build:render_dataset_card"),
    ("card.license", "dialogpt_dataset.build:write_license"),
    ("stats_table", "dialogpt_dataset.build:counts_table"),
]


class Clock:
    """Inclusive wall and CPU seconds (this process) per label."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, label: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[label] = self.wall.get(label, 0.0) + time.perf_counter() - w0
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - c0
                self.calls[label] = self.calls.get(label, 0) + 1

        timed.__wrapped_by_profile__ = True
        return timed

    def install(self, steps: list[tuple[str, str]]) -> list[str]:
        """Wrap each step found; returns the labels whose step this library version lacks."""
        missing = []
        for label, spec in steps:
            module_name, _, path = spec.partition(":")
            try:
                owner = importlib.import_module(module_name)
                *parents, attr = path.split(".")
                for p in parents:
                    owner = getattr(owner, p)
                fn = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
            except (ImportError, AttributeError, KeyError):
                missing.append(label)
                continue
            if getattr(fn, "__wrapped_by_profile__", False):
                continue
            setattr(owner, attr, self.wrap(label, fn))
        return missing

    def table(self) -> dict:
        return {k: {"wall_s": round(self.wall[k], 3), "cpu_s": round(self.cpu[k], 3), "calls": self.calls[k]}
                for k in self.wall}


def _startup() -> dict:
    """The interpreter's start-up before this script ran: CPU so far, wall since the process began."""
    import psutil

    t = os.times()
    return {"wall_s": round(time.time() - psutil.Process().create_time(), 3), "cpu_s": round(t.user + t.system, 3)}


def run_profiled(mode: str, dumps: Path, work: Path) -> dict:
    """One profiled run (``pipeline`` or ``cli``) in this process; the figures as a dict."""
    startup = _startup()
    w0, c0 = time.perf_counter(), time.process_time()
    clock = Clock()
    if mode == "cli":
        import dialogpt_dataset.cli as entry
    else:
        import dialogpt_dataset.pipeline as entry  # noqa: F401
        from dialogpt_dataset.dumps import available_months
        from dialogpt_dataset.pipeline import Plan, auto_num_shards
        from dialogpt_dataset.rules import ExtractRules
    imports = {"wall_s": round(time.perf_counter() - w0, 3), "cpu_s": round(time.process_time() - c0, 3)}
    missing = clock.install(CLI_STEPS if mode == "cli" else PIPELINE_STEPS)
    w1, c1 = time.perf_counter(), time.process_time()
    if mode == "cli":
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            rc = entry.main(["--dumps", str(dumps), "--months", MONTH, "--output", str(work), "--preset", "original",
                             "--export-tsv", "--num-proc", "1", "--quiet"])
        assert rc == 0, rc
    else:
        import dialogpt_dataset.pipeline as pipeline

        months = available_months(dumps)
        plan = Plan(dumps_dir=str(dumps), work_dir=str(work), months=months,
                    num_shards=auto_num_shards(str(dumps), months), rules=ExtractRules.from_preset("original"))
        pipeline.run_pipeline(plan, "local", 1, quiet=True)
    run = {"wall_s": round(time.perf_counter() - w1, 3), "cpu_s": round(time.process_time() - c1, 3)}
    steps = clock.table()
    top = [k for k in steps if "." not in k and k != "pipeline"]
    if mode == "cli":
        top = [k for k in steps if k not in ("pipeline", "card.license") and not k.startswith("stage")]
        top = [k for k in top if k != "builder.prepare"] + ["builder.prepare"]
    covered = {m: sum(steps[k][f"{m}_s"] for k in top) for m in ("wall", "cpu")}
    return {"mode": mode, "startup": startup, "imports": imports, "run": run, "steps": steps,
            "rest": {f"{m}_s": round(run[f"{m}_s"] - covered[m], 3) for m in ("wall", "cpu")},
            "not_in_this_version": missing}


def cprofile_top(dumps: Path, work: Path, n: int) -> list[dict]:
    """The pipeline under cProfile: the ``n`` functions with the most own time, as shares of the total."""
    import cProfile
    import pstats

    from dialogpt_dataset.dumps import available_months
    from dialogpt_dataset.pipeline import Plan, auto_num_shards, run_pipeline
    from dialogpt_dataset.rules import ExtractRules

    months = available_months(dumps)
    plan = Plan(dumps_dir=str(dumps), work_dir=str(work), months=months,
                num_shards=auto_num_shards(str(dumps), months), rules=ExtractRules.from_preset("original"))
    prof = cProfile.Profile()
    prof.runcall(run_pipeline, plan, "local", 1, quiet=True)
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:n]
    root = str(Path(__file__).resolve().parents[1])
    out = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in rows:
        where = file.replace(root + "/", "").replace(str(Path(sys.prefix)), "<venv>")
        out.append({"function": f"{where}:{line}({name})", "calls": ncalls, "own_share": round(tottime / total, 3),
                    "cumulative_share": round(cumtime / total, 3)})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["pipeline", "cli", "top"])
    p.add_argument("--dumps", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    if args.mode == "top":
        print(json.dumps(cprofile_top(args.dumps, args.work, args.top)))
    else:
        print(json.dumps(run_profiled(args.mode, args.dumps, args.work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
