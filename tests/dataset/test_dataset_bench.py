"""bench/extract.py runs in --quick mode and reports wall AND CPU figures as one JSON line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "extract.py"
ORIGINAL = ROOT / ".." / "shared" / "reference" / "dialogpt_extractor"


def _run(tmp_path, *flags) -> dict:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--tmp", str(tmp_path), *flags],
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # the synthetic dumps and work folders are cleaned up
    (line,) = out.stdout.strip().splitlines()  # one JSON line
    return json.loads(line)


def test_extract_bench_quick(tmp_path):
    r = _run(tmp_path)
    assert r["bench"] == "extract" and r["generated"]["base"]["comments"] == 8000
    for key in ("quarter_num_proc_1", "base_num_proc_1", "base_num_proc_2"):
        run = r[key]
        assert run["records_rc"] == r["generated"][key.split("_num")[0]]["comments"]
        assert run["sessions"] > 0 and run["self_maxrss_mb"] > 10
        # CPU time is measured (children included), not wall time divided by --num-proc (a worker's
        # start-up and imports alone take more than 0.3 s)
        assert run["cpu_s"] > 0.3 and run["comments_per_cpu_s"] == round(run["records_rc"] / run["cpu_s"], 1)
    # the same month gives the same sessions whatever the number of workers
    assert r["base_num_proc_1"]["sessions"] == r["base_num_proc_2"]["sessions"]
    assert r["speedup_num_proc_2_vs_1"] > 0 and r["peak_rss_ratio_base_vs_quarter"] > 0


@pytest.mark.slow
def test_extract_bench_vs_original_quick(tmp_path):
    if not (ORIGINAL / "src" / "reddit.py").is_file():
        pytest.skip(f"the original extractor is not at {ORIGINAL.resolve()}")
    pytest.importorskip("flashtext", reason="the original extractor needs flashtext (pip install -e '.[dev]')")
    r = _run(tmp_path, "--vs-original")
    orig, ours, cli = r["original"], r["ours"], r["ours_cli"]
    assert r["comments"] == 8000 and ours["records_rc"] == 8000
    # both select the same pairs from the same month (the oracle test checks the lines themselves)
    assert orig["pairs"] == ours["rows_train"] == cli["pairs"] > 0
    for run in (orig, ours, cli):
        assert run["wall_s"] > 0 and run["cpu_s"] > 0.3 and run["peak_rss_mb"] > 10
    assert r["speedup_vs_original"] == round(orig["wall_s"] / ours["wall_s"], 2)
    assert [c["comments"] for c in r["memory_curve"]] == [2000, 8000]


def test_profile_parts_add_up_for_the_pipeline_and_the_cli(tmp_path):
    """bench/extract.py --profile (profile_runs): every part of each run, adding up to the run's CPU time."""
    import importlib.util

    from dialogpt_dataset.synthetic import write_month

    spec = importlib.util.spec_from_file_location("bench_extract", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    write_month(tmp_path / "month", "2010-06", n_comments=1500, compression="zst", seed=0)
    prof = bench.profile_runs(tmp_path / "month", tmp_path)
    for mode, extra in (("pipeline", set()), ("cli", {"datasets_builder", "export_parquet", "tsv", "card"})):
        p = prof[mode]
        assert p["not_in_this_version"] == [] and p["steps"]["stage2.build_sessions"]["calls"] > 50
        assert {"startup", "imports", "stage1", "stage2.build_sessions", "stage2.write_parquet"} | extra <= set(p["parts"])
        assert p["parts"]["stage1"]["cpu_s"] > 0 and p["parts"]["startup"]["wall_s"] > 0
        assert abs(sum(x["cpu_s"] for x in p["parts"].values()) - p["total_cpu_s"]) < 0.01
    shares = [f["own_share"] for f in prof["top"]]  # (a month this small: the imports' functions lead)
    assert len(shares) == 25 and shares == sorted(shares, reverse=True) and 0 < shares[0] < 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["month"]  # the work folders are removed
