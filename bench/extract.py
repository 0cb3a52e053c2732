"""Extraction benchmark: comments/second per core, peak RSS, and the --num-proc 2 speed-up.

Generates one synthetic Pushshift month (``dialogpt_dataset.synthetic``, zst) of ``--comments``
comments once, then runs the two-stage datatrove pipeline on it in a fresh subprocess per setting,
sampling the RSS of the whole process tree (psutil) and reading ``getrusage(RUSAGE_CHILDREN)``:

* ``--num-proc 1`` and ``--num-proc 2`` on the same month -> speed-up;
* ``--num-proc 1`` on a quarter-size month (and, with ``--full``, a 4x month) -> peak RSS ratios
  (the shard count grows with the input, so memory should stay flat: target ratio ~1).

Prints one JSON object. ``--quick`` (used by the test) runs 8K comments.

    python bench/extract.py                 # 1M comments (and 250K for the RSS comparison)
    python bench/extract.py --full          # + a 4M-comment month: RSS at 1M vs 4M
    python bench/extract.py --quick
"""

from __future__ import annotations

import argparse
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


def _tree_rss(proc) -> tuple[int, int]:
    """(sum of RSS over the process tree, largest single RSS), in bytes."""
    total = largest = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except Exception:
        return 0, 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except Exception:
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def run_worker(dumps: Path, work: Path, num_proc: int) -> dict:
    """Run one pipeline build in a subprocess; return time and memory figures."""
    import psutil

    shutil.rmtree(work, ignore_errors=True)
    cmd = [sys.executable, __file__, "--worker", "--dumps", str(dumps), "--work", str(work), "--num-proc", str(num_proc)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ps = psutil.Process(proc.pid)
    peak = {"tree": 0, "largest": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            tree, largest = _tree_rss(ps)
            peak["tree"] = max(peak["tree"], tree)
            peak["largest"] = max(peak["largest"], largest)
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}): {' '.join(cmd)}")
    inner = json.loads(out.strip().splitlines()[-1])
    return {
        "num_proc": num_proc,
        "wall_s": round(wall, 2),
        "pipeline_s": round(inner["pipeline_s"], 2),
        "comments": inner["records_rc"],
        "sessions": inner["sessions"],
        "num_shards": inner["num_shards"],
        "comments_per_s": round(inner["records_rc"] / inner["pipeline_s"], 1),
        "comments_per_s_per_core": round(inner["records_rc"] / inner["pipeline_s"] / num_proc, 1),
        "peak_rss_tree_mb": round(peak["tree"] / 2**20, 1),
        "peak_rss_largest_process_mb": round(peak["largest"] / 2**20, 1),
    }


def worker(args) -> None:
    from dialogpt_dataset.dumps import available_months
    from dialogpt_dataset.pipeline import Plan, auto_num_shards, run_pipeline

    months = available_months(args.dumps)
    plan = Plan(dumps_dir=str(args.dumps), work_dir=str(args.work), months=months,
                num_shards=auto_num_shards(str(args.dumps), months, minimum=max(2, args.num_proc),
                                           multiple_of=args.num_proc),
                read_splits=max(1, args.num_proc // len(months)), min_refs=5)
    t0 = time.perf_counter()
    counters = run_pipeline(plan, "local", args.num_proc)
    dt = time.perf_counter() - t0
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"pipeline_s": dt, "records_rc": counters["records_rc"], "sessions": counters["sessions"],
                      "num_shards": plan.num_shards, "self_maxrss_kb": self_rss}))


def generate(dirpath: Path, n: int) -> dict:
    from dialogpt_dataset.synthetic import write_month

    t0 = time.perf_counter()
    st = write_month(dirpath, "2010-06", n_comments=n, compression="zst", seed=0)
    return {"comments": st.comments, "seconds": round(time.perf_counter() - t0, 1),
            "rc_mb_compressed": round(st.rc_path.stat().st_size / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--comments", type=int, default=1_000_000, help="comments in the benchmark month (default 1M)")
    p.add_argument("--full", action="store_true",
                   help="also build a 4x month (4M comments) for the RSS comparison (~10 more minutes on 2 cores)")
    p.add_argument("--quick", action="store_true", help="8K comments (a smoke run for the tests)")
    p.add_argument("--tmp", default=None, help="where to write the synthetic dumps (default: a temp dir)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dumps", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--num-proc", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.quick:
        args.comments, args.full = 8_000, False
    tmp = Path(tempfile.mkdtemp(prefix="bench-extract-", dir=args.tmp))
    try:
        # memory vs month size: a quarter-size month, the base month, and (--full) a 4x month
        sizes = {"quarter": args.comments // 4, "base": args.comments}
        if args.full:
            sizes["x4"] = args.comments * 4
        gen, runs = {}, {}
        for name, n in sizes.items():
            gen[name] = generate(tmp / name, n)
            runs[f"{name}_num_proc_1"] = run_worker(tmp / name, tmp / f"w_{name}_1", 1)
            if name == "base":
                runs["base_num_proc_2"] = run_worker(tmp / name, tmp / "w_base_2", 2)
            shutil.rmtree(tmp / f"w_{name}_1", ignore_errors=True)
        base1, base2 = runs["base_num_proc_1"], runs["base_num_proc_2"]
        result = {
            "bench": "extract",
            "cpu_count": os.cpu_count(),
            "generated": gen,
            **runs,
            "comments_per_s_per_core": base1["comments_per_s_per_core"],
            "speedup_num_proc_2_vs_1": round(base1["pipeline_s"] / base2["pipeline_s"], 2),
            "peak_rss_ratio_base_vs_quarter": round(
                base1["peak_rss_largest_process_mb"] / runs["quarter_num_proc_1"]["peak_rss_largest_process_mb"], 2),
        }
        if args.full:
            result["peak_rss_ratio_x4_vs_base"] = round(
                runs["x4_num_proc_1"]["peak_rss_largest_process_mb"] / base1["peak_rss_largest_process_mb"], 2)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
