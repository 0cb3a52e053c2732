"""Extraction benchmark: wall AND CPU seconds, comments per CPU-second, peak RSS; ours vs the original.

Every run is a fresh subprocess on one synthetic Pushshift month (``dialogpt_dataset.synthetic``,
zst, seed 0). CPU time is ``getrusage(RUSAGE_CHILDREN)`` before/after (user + sys of every waited-for
descendant), or the sampled per-process CPU of the whole tree when that is larger (``--num-proc 2``);
peak RSS is sampled over the tree (psutil) every 0.1 s, and the extraction worker also reports its
own ``ru_maxrss`` (it runs both stages in-process at ``--num-proc 1``).

``--profile`` (with ``--vs-original``) adds a per-stage profile of ours on the same month, the pipeline
and the whole CLI each in a fresh process (``bench/extract_profile.py``: start-up, imports, stage 1,
stage 2, writing, the datasets builder, exports, card), and cProfile's top functions of the pipeline.

``--vs-original`` runs the original DialoGPT extractor (``../shared/reference/dialogpt_extractor``,
unmodified, MIT; run as an outside program exactly as its README says DialoGPT ran it: ``reddit.py
--task=extract``, gzip, ``reddit.py --task=conv ... --use_title 0 --leaves_only 1``, gzip) and ours
(``run_pipeline`` with ``--preset original``, one process, both stages to Parquet; and the whole
``dialogpt-build-dataset --preset original --export-tsv`` CLI) on the same month, then ours alone on
growing months for the memory curve. ``speedup_vs_original`` = original wall / ours wall. The
pipeline's worker owns its process as the CLI does and sets it up as the CLI does
(``dialogpt_dataset.process``: one OpenBLAS thread, imports frozen out of the GC; nothing more), so its
figures are the CLI's pipeline part.

    python bench/extract.py --vs-original                  # 200K comments; curve 250K/500K/1M
    python bench/extract.py --vs-original --comments 200000 --profile   # + where the time goes
    python bench/extract.py --vs-original --comments 50000 --curve 50000,100000
    python bench/extract.py                                # ours: --num-proc 1 vs 2, 1M comments
    python bench/extract.py --quick [--vs-original]        # 8K comments (the tests' smoke run)
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MONTH = "2010-06"
ORIGINAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "dialogpt_extractor"


def _sample_tree(proc, rss_peak: list[int], cpu_by_pid: dict[int, float]) -> None:
    """One sample of a process tree: the summed RSS (peak kept) and each process's own CPU seconds."""
    try:
        procs = [proc] + proc.children(recursive=True)
    except Exception:
        return
    total = 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                t = p.cpu_times()
                cpu_by_pid[p.pid] = t.user + t.system
        except Exception:
            continue
    rss_peak[0] = max(rss_peak[0], total)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(cmds: list[list[str]], log: Path, cwd: str | None = None) -> dict:
    """Run ``cmds`` one after another: wall seconds, CPU seconds, peak tree RSS, last stdout line.

    CPU is ``getrusage(RUSAGE_CHILDREN)`` (exact for every waited-for descendant) or, when larger, the
    sum of each process's own CPU time sampled every 0.1 s: ``--num-proc 2`` workers are children of
    datatrove's forkserver, which nobody waits for, so rusage alone misses them."""
    import psutil

    cpu0, t0, peak, last, sampled = _cpu_children(), time.perf_counter(), 0, "", 0.0
    for cmd in cmds:
        with open(log, "a") as f:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=f, text=True)
            ps, stop, top, cpu_by_pid = psutil.Process(proc.pid), threading.Event(), [0], {}

            def sample(ps=ps, stop=stop, top=top, cpu_by_pid=cpu_by_pid):
                while not stop.is_set():
                    _sample_tree(ps, top, cpu_by_pid)
                    stop.wait(0.1)

            th = threading.Thread(target=sample, daemon=True)
            th.start()
            out, _ = proc.communicate()
            stop.set()
            th.join()
        peak, sampled = max(peak, top[0]), sampled + sum(cpu_by_pid.values())
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)} (log: {log})")
        last = (out.strip().splitlines() or [""])[-1]
    wall, cpu = time.perf_counter() - t0, max(_cpu_children() - cpu0, sampled)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak / 2**20, 1), "_last": last}


def generate(dirpath: Path, n: int) -> dict:
    """Write the month in a subprocess: the generator holds a whole month in memory, and a worker
    forked from a big process starts with that process's ``ru_maxrss`` (Linux keeps it across exec)."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--generate", str(dirpath), "--comments", str(n)],
                         capture_output=True, text=True, check=True).stdout
    return {**json.loads(out), "seconds": round(time.perf_counter() - t0, 1)}


def _generate_here(dirpath: Path, n: int) -> None:
    from dialogpt_dataset.synthetic import write_month

    st = write_month(dirpath, MONTH, n_comments=n, compression="zst", seed=0)
    print(json.dumps({"comments": st.comments, "submissions": st.submissions,
                      "rc_mb_compressed": round(st.rc_path.stat().st_size / 2**20, 1)}))


def worker(args) -> None:
    """One extraction (both datatrove stages) in this process; prints its counters as JSON. The worker
    owns its process as the CLI does and sets it up as the CLI does (``dialogpt_dataset.process``: one
    OpenBLAS thread before numpy is imported, its imports frozen out of the GC), so its figures are the
    CLI's pipeline part."""
    from dialogpt_dataset.process import freeze_owned_process, limit_blas_threads

    limit_blas_threads()  # (the CLI's module does it first thing, before its imports)
    from dialogpt_dataset.dumps import available_months
    from dialogpt_dataset.pipeline import Plan, auto_num_shards, run_pipeline
    from dialogpt_dataset.rules import ExtractRules

    freeze_owned_process()
    months = available_months(args.dumps)
    plan = Plan(dumps_dir=str(args.dumps), work_dir=str(args.work), months=months,
                num_shards=auto_num_shards(str(args.dumps), months, minimum=max(2, args.num_proc),
                                           multiple_of=args.num_proc),
                rules=ExtractRules.from_preset(args.preset), min_refs=5)
    counters = run_pipeline(plan, "local", args.num_proc, quiet=True)
    print(json.dumps({"records_rc": counters["records_rc"], "sessions": counters["sessions"],
                      "rows_train": counters["rows_train"], "num_shards": plan.num_shards,
                      "self_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def run_ours(dumps: Path, work: Path, num_proc: int, preset: str, log: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    cmd = [sys.executable, __file__, "--worker", "--dumps", str(dumps), "--work", str(work),
           "--num-proc", str(num_proc), "--preset", preset]
    m = measure([cmd], log)
    inner = json.loads(m.pop("_last"))
    shutil.rmtree(work, ignore_errors=True)
    return _rates({"num_proc": num_proc, **m, **inner}, inner["records_rc"])


def _rates(r: dict, comments: int) -> dict:
    r["comments_per_s"] = round(comments / r["wall_s"], 1)
    r["comments_per_cpu_s"] = round(comments / r["cpu_s"], 1)
    return r


def run_original(original: Path, dumps: Path, out: Path, log: Path) -> dict:
    """The original's README recipe for one training month (extract, gzip, conv, gzip)."""
    shutil.rmtree(out, ignore_errors=True)
    src = original / "src"
    py, outdir = sys.executable, str(out / "train")
    extract = [py, "reddit.py", MONTH, "--task=extract", "--reddit_input", str(dumps), "--reddit_output", outdir]
    conv = [py, "reddit.py", MONTH, "--task=conv", "--ignore_keys=True", "--parallel=True",
            "--bl_words", "../lists/words.blocklist.txt", "--bl_subreddits", "../lists/subreddits.blocklist.txt",
            "--reddit_input", str(dumps), "--reddit_output", outdir, "--clean", "True", "--min_score", "1",
            "--min_depth", "2", "--max_depth", "5", "--use_title", "0", "--leaves_only", "1"]
    m = measure([extract], log, cwd=str(src))
    extracted = sorted(glob.glob(str(out / "train" / "extract" / MONTH / "r[cs]_sub*.tsv")))
    rest = measure([["gzip", "-f", *extracted], conv, ["gzip", "-f", str(out / "train" / "conv" / f"{MONTH}.tsv")]],
                   log, cwd=str(src))
    m = {"wall_s": round(m["wall_s"] + rest["wall_s"], 2), "cpu_s": round(m["cpu_s"] + rest["cpu_s"], 2),
         "peak_rss_mb": max(m["peak_rss_mb"], rest["peak_rss_mb"])}
    with gzip.open(out / "train" / "conv" / f"{MONTH}.tsv.gz", "rt", encoding="utf-8") as f:
        m["pairs"] = sum(1 for line in f if line.strip())
    shutil.rmtree(out, ignore_errors=True)
    return m


def run_ours_cli(dumps: Path, out: Path, log: Path) -> dict:
    """The whole user-facing build: pipeline + datasets Arrow/Parquet + card + train.tsv."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "dialogpt_dataset.cli", "--dumps", str(dumps), "--months", MONTH, "--output",
           str(out), "--preset", "original", "--export-tsv", "--num-proc", "1", "--quiet"]
    m = measure([cmd], log)
    m.pop("_last")
    with open(out / "train.tsv", encoding="utf-8") as f:
        m["pairs"] = sum(1 for line in f if line.strip())
    shutil.rmtree(out, ignore_errors=True)
    return m


def profile_runs(dumps: Path, tmp: Path) -> dict:
    """bench/extract_profile.py on ``dumps``: the pipeline and the CLI per stage, and cProfile's top."""
    script = str(Path(__file__).with_name("extract_profile.py"))
    out = {}
    for mode in ("pipeline", "cli", "top"):
        work = tmp / f"profile-{mode}"
        shutil.rmtree(work, ignore_errors=True)
        cmd = [sys.executable, script, mode, "--dumps", str(dumps), "--work", str(work), "--spawned-at", str(time.time())]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        shutil.rmtree(work, ignore_errors=True)
    out["load_avg_1m_after"] = round(os.getloadavg()[0], 1)
    return out


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (its own figures) and every run's wall and CPU seconds."""
    mid = dict(sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2])
    mid["runs_wall_s"] = [r["wall_s"] for r in runs]
    mid["runs_cpu_s"] = [r["cpu_s"] for r in runs]
    return mid


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return round((xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2, 2)


def _memory_curve(sizes: list[int], tmp: Path, log: Path) -> list[dict]:
    curve = []
    for n in sizes:
        g = generate(tmp / f"m{n}", n)
        r = run_ours(tmp / f"m{n}", tmp / f"w{n}", 1, "original", log)
        curve.append({"comments": g["comments"], "self_maxrss_mb": r["self_maxrss_mb"], "peak_rss_tree_mb": r["peak_rss_mb"],
                      "num_shards": r["num_shards"], "cpu_s": r["cpu_s"], "comments_per_cpu_s": r["comments_per_cpu_s"]})
        shutil.rmtree(tmp / f"m{n}", ignore_errors=True)
    return curve


def vs_original(args, tmp: Path) -> dict:
    """The original and ours (pipeline, and the whole CLI) on one month, interleaved ``--repeat`` times
    (a shared machine's load drifts over minutes: each speed-up is taken within one repeat)."""
    original = Path(args.original).resolve()
    if not (original / "src" / "reddit.py").is_file():
        raise SystemExit(f"bench/extract.py: error: the original extractor is not at {original} (--original DIR)")
    log, load_before = tmp / "runs.log", os.getloadavg()[0]
    gen = generate(tmp / "month", args.comments)
    runs: dict[str, list[dict]] = {"original": [], "ours": [], "ours_cli": []}
    for _ in range(args.repeat):
        runs["original"].append(_rates(run_original(original, tmp / "month", tmp / "orig", log), gen["comments"]))
        runs["ours"].append(run_ours(tmp / "month", tmp / "work", 1, "original", log))
        runs["ours_cli"].append(_rates(run_ours_cli(tmp / "month", tmp / "cli", log), gen["comments"]))
    profile = profile_runs(tmp / "month", tmp) if args.profile else None
    shutil.rmtree(tmp / "month", ignore_errors=True)
    ratio = {k: [o[f] / u[f] for o, u in zip(runs["original"], runs[name])]
             for k, name, f in (("wall", "ours", "wall_s"), ("cpu", "ours", "cpu_s"), ("cli", "ours_cli", "wall_s"))}
    curve = _memory_curve(args.curve, tmp, log)
    return {
        "bench": "extract_vs_original", "comments": gen["comments"], "generated": gen, "repeat": args.repeat,
        "cpu_count": os.cpu_count(), "load_avg_1m_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "original": _median_run(runs["original"]), "ours": _median_run(runs["ours"]),
        "ours_cli": _median_run(runs["ours_cli"]),
        "speedup_vs_original": _median(ratio["wall"]), "speedup_vs_original_runs": [round(x, 2) for x in ratio["wall"]],
        "cpu_speedup_vs_original": _median(ratio["cpu"]), "speedup_cli_vs_original": _median(ratio["cli"]),
        "memory_curve": curve,
        "peak_rss_ratio_last_vs_first": round(curve[-1]["self_maxrss_mb"] / curve[0]["self_maxrss_mb"], 2) if curve else None,
        **({"profile": profile} if profile else {}),
    }


def num_proc_runs(args, tmp: Path) -> dict:
    """Ours at --num-proc 1 and 2 on one month, and --num-proc 1 on a quarter (and --full: 4x) month."""
    log = tmp / "runs.log"
    sizes = {"quarter": args.comments // 4, "base": args.comments}
    if args.full:
        sizes["x4"] = args.comments * 4
    gen, runs = {}, {}
    for name, n in sizes.items():
        gen[name] = generate(tmp / name, n)
        runs[f"{name}_num_proc_1"] = run_ours(tmp / name, tmp / f"w_{name}_1", 1, args.preset, log)
        if name == "base":
            runs["base_num_proc_2"] = run_ours(tmp / name, tmp / "w_base_2", 2, args.preset, log)
        shutil.rmtree(tmp / name, ignore_errors=True)
    base1, base2 = runs["base_num_proc_1"], runs["base_num_proc_2"]
    result = {"bench": "extract", "cpu_count": os.cpu_count(), "load_avg_1m_after": round(os.getloadavg()[0], 1),
              "preset": args.preset, "generated": gen, **runs,
              "comments_per_cpu_s": base1["comments_per_cpu_s"],
              "speedup_num_proc_2_vs_1": round(base1["wall_s"] / base2["wall_s"], 2),
              "peak_rss_ratio_base_vs_quarter": round(
                  base1["self_maxrss_mb"] / runs["quarter_num_proc_1"]["self_maxrss_mb"], 2)}
    if args.full:
        result["peak_rss_ratio_x4_vs_base"] = round(runs["x4_num_proc_1"]["self_maxrss_mb"] / base1["self_maxrss_mb"], 2)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vs-original", action="store_true", help="run the original extractor and ours on the same month")
    p.add_argument("--comments", type=int, default=None,
                   help="comments in the benchmark month (default: 200K with --vs-original, else 1M)")
    p.add_argument("--curve", default="250000,500000,1000000",
                   help="--vs-original: month sizes for ours' peak-RSS curve (comma list; '' for none)")
    p.add_argument("--repeat", type=int, default=1, help="--vs-original: interleaved runs of each (medians reported)")
    p.add_argument("--profile", action="store_true", help="--vs-original: also profile ours per stage on the same "
                   "month (bench/extract_profile.py: pipeline, CLI, cProfile's top functions)")
    p.add_argument("--original", default=str(ORIGINAL), help="the original extractor's folder (holds src/reddit.py)")
    p.add_argument("--preset", default="default", choices=["default", "original"], help="our rules (without --vs-original)")
    p.add_argument("--full", action="store_true", help="also a 4x month for the RSS comparison (without --vs-original)")
    p.add_argument("--quick", action="store_true", help="8K comments, small curve (a smoke run for the tests)")
    p.add_argument("--tmp", default=None, help="where to write the synthetic dumps (default: a temp dir)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--dumps", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--num-proc", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.comments, args.full, args.curve = 8_000, False, "2000,8000"
    if args.comments is None:
        args.comments = 200_000 if args.vs_original else 1_000_000
    args.curve = [int(x) for x in args.curve.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.generate:
        _generate_here(args.generate, args.comments)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-", dir=args.tmp))
    try:
        result = vs_original(args, tmp) if args.vs_original else num_proc_runs(args, tmp)
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
