"""Per-stage profile of the extraction (``bench/extract.py --profile``): where the wall and CPU seconds go.

One run of the pipeline (``run_pipeline --preset original``, as ``bench/extract.py --vs-original`` runs
it) or of the whole CLI (``dialogpt-build-dataset --preset original --export-tsv``), in this process,
with two clock reads wrapped around each of the library's named steps. ``parts`` splits the process's
whole life into exclusive parts that add up to its total: start-up (the interpreter, until this script
runs), imports, stage 1, stage 2 (reading shards, building sessions, writing Parquet, the rest), the datatrove
executor (its import and task bookkeeping), then for the CLI the ``datasets`` builder (Arrow cache),
the Parquet export, test.refs/keys, train.tsv, the card and stats; ``steps`` has the inclusive figures.

A step that a version of the library lacks is left out, so the same harness profiles the code before a
change (``PYTHONPATH=<old checkout> python bench/extract_profile.py ...``). ``top`` runs the pipeline
under cProfile instead and lists the functions with the most own time, as shares of the profiled
total (cProfile slows Python calls unevenly: read shares, not seconds).

    python bench/extract_profile.py pipeline --dumps DIR --work DIR [--spawned-at UNIX_TIME]
    python bench/extract_profile.py cli --dumps DIR --work DIR
    python bench/extract_profile.py top --dumps DIR --work DIR --top 25
"""

from __future__ import annotations

import time

_STARTED = time.time()  # noqa: E402 (first: what came before this line is the interpreter's start-up)

import argparse  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

#: (label, "module:attribute.path") of every timed step
PIPELINE_STEPS = [
    ("stage1", "dialogpt_dataset.stages:ShardDumps.run"),
    ("stage2", "dialogpt_dataset.stages:BuildConversations.run"),
    ("stage2.read_shard", "dialogpt_dataset.stages:read_shard"),
    ("stage2.build_sessions", "dialogpt_dataset.stages:build_sessions"),
    ("stage2.write_parquet", "dialogpt_dataset.stages:write_rows"),
    ("pipeline", "dialogpt_dataset.pipeline:run_pipeline"),
]
CLI_STEPS = PIPELINE_STEPS + [
    ("builder", "datasets.builder:DatasetBuilder.download_and_prepare"),
    ("export_parquet", "dialogpt_dataset.build:_export_splits"),
    ("fingerprint", "dialogpt_dataset.build:fingerprint_parquet"),
    ("refs_keys", "dialogpt_dataset.build:_write_refs_and_keys"),
    ("tsv", "dialogpt_dataset.build:_export_tsv"),
    ("card", "dialogpt_dataset.build:render_dataset_card"),
    ("counts_table", "dialogpt_dataset.build:counts_table"),
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
            setattr(owner, attr, self.wrap(label, fn))
        return missing

    def get(self, label: str) -> tuple[float, float]:
        return self.wall.get(label, 0.0), self.cpu.get(label, 0.0)


def _parts(clock: Clock, mode: str, total: tuple[float, float]) -> dict:
    """Exclusive parts of the run (each inclusive step minus the steps inside it), and ``other``."""
    def minus(label, *inner):
        w, c = clock.get(label)
        for i in inner:
            w, c = w - clock.get(i)[0], c - clock.get(i)[1]
        return w, c

    parts = {"stage1": clock.get("stage1"), "stage2.read_shards": clock.get("stage2.read_shard"),
             "stage2.build_sessions": clock.get("stage2.build_sessions"),
             "stage2.write_parquet": clock.get("stage2.write_parquet"),
             "stage2.other": minus("stage2", "stage2.read_shard", "stage2.build_sessions", "stage2.write_parquet"),
             "datatrove_and_plan": minus("pipeline", "stage1", "stage2")}
    if mode == "cli":
        parts["datasets_builder"] = minus("builder", "pipeline")
        for label in ("export_parquet", "fingerprint", "refs_keys", "tsv", "card", "counts_table"):
            parts[label] = clock.get(label)
    covered = (sum(w for w, _ in parts.values()), sum(c for _, c in parts.values()))
    parts["other"] = (total[0] - covered[0], total[1] - covered[1])
    return {k: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for k, (w, c) in parts.items()}


def _run(mode: str, dumps: Path, work: Path) -> None:
    # the GC as the CLI treats it in its own process (and bench/extract.py's worker): main(argv) would not
    try:
        from dialogpt_dataset.process import freeze_owned_process
    except ImportError:  # a version before it: its CLI froze with gc.freeze
        freeze_owned_process = gc.freeze
    freeze_owned_process()
    if mode == "cli":
        import contextlib
        import io

        from dialogpt_dataset.cli import main

        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(["--dumps", str(dumps), "--months", ",".join(_months(dumps)), "--output", str(work),
                       "--preset", "original", "--export-tsv", "--num-proc", "1", "--quiet"])
        if rc != 0:
            raise SystemExit(f"extract_profile: the CLI failed (rc {rc})")
        return
    from dialogpt_dataset.pipeline import run_pipeline

    run_pipeline(_plan(dumps, work), "local", 1, quiet=True)


def _months(dumps: Path) -> list[str]:
    from dialogpt_dataset.dumps import available_months

    return available_months(dumps)


def _plan(dumps: Path, work: Path):
    from dialogpt_dataset.pipeline import Plan, auto_num_shards
    from dialogpt_dataset.rules import ExtractRules

    months = _months(dumps)
    return Plan(dumps_dir=str(dumps), work_dir=str(work), months=months,
                num_shards=auto_num_shards(str(dumps), months), rules=ExtractRules.from_preset("original"))


def profile(mode: str, dumps: Path, work: Path, spawned_at: float | None = None) -> dict:
    """One profiled run (``pipeline`` or ``cli``) in this process; the figures as a dict."""
    t = os.times()
    startup = {"wall_s": round(_STARTED - spawned_at, 3) if spawned_at else None, "cpu_s": round(t.user + t.system, 3)}
    w0, c0 = time.perf_counter(), time.process_time()
    if mode != "cli":  # as bench/extract.py's worker (the CLI's module does it when it loads)
        try:
            importlib.import_module("dialogpt_dataset.process").limit_blas_threads()
        except (ImportError, AttributeError):  # a version before it
            pass
    importlib.import_module("dialogpt_dataset.cli" if mode == "cli" else "dialogpt_dataset.pipeline")
    imports = (time.perf_counter() - w0, time.process_time() - c0)
    clock = Clock()
    missing = clock.install(CLI_STEPS if mode == "cli" else PIPELINE_STEPS)
    w1, c1 = time.perf_counter(), time.process_time()
    _run(mode, dumps, work)
    run = (time.perf_counter() - w1, time.process_time() - c1)
    parts = {"startup": startup, "imports": {"wall_s": round(imports[0], 3), "cpu_s": round(imports[1], 3)},
             **_parts(clock, mode, run)}
    total_cpu = sum(p["cpu_s"] for p in parts.values())
    steps = {k: {"wall_s": round(clock.wall[k], 3), "cpu_s": round(clock.cpu[k], 3), "calls": clock.calls[k]}
             for k in clock.wall}
    return {"mode": mode, "total_cpu_s": round(total_cpu, 3), "parts": parts, "steps": steps,
            "not_in_this_version": missing}


def cprofile_top(dumps: Path, work: Path, n: int) -> list[dict]:
    """The pipeline under cProfile: the ``n`` functions with the most own time, as shares of the total."""
    import cProfile
    import pstats

    from dialogpt_dataset.pipeline import run_pipeline

    prof = cProfile.Profile()
    prof.runcall(run_pipeline, _plan(dumps, work), "local", 1, quiet=True)
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    out = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:n]:
        where = file.replace(root, "").replace(sys.prefix, "<venv>")
        out.append({"function": f"{where}:{line}({name})", "calls": ncalls, "own_share": round(tottime / total, 3),
                    "cumulative_share": round(cumtime / total, 3)})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["pipeline", "cli", "top"])
    p.add_argument("--dumps", type=Path, required=True, help="a folder of RS_/RC_ dumps (every month in it is built)")
    p.add_argument("--work", type=Path, required=True, help="the work (pipeline) or output (cli) folder")
    p.add_argument("--top", type=int, default=25, help="top: how many functions")
    p.add_argument("--spawned-at", type=float, default=None, help="the parent's time.time() just before starting "
                   "this process (for the start-up's wall time)")
    args = p.parse_args(argv)
    if args.mode == "top":
        print(json.dumps(cprofile_top(args.dumps, args.work, args.top)))
    else:
        print(json.dumps(profile(args.mode, args.dumps, args.work, args.spawned_at)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
