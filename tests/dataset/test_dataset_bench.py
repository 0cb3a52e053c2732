"""bench/extract.py runs in --quick mode and reports its figures as JSON."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "extract.py"


def test_extract_bench_quick(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--tmp", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["bench"] == "extract" and r["generated"]["base"]["comments"] == 8000
    for key in ("quarter_num_proc_1", "base_num_proc_1", "base_num_proc_2"):
        run = r[key]
        assert run["comments"] == r["generated"][key.split("_num")[0]]["comments"]
        assert run["comments_per_s"] > 0 and run["peak_rss_largest_process_mb"] > 10 and run["sessions"] > 0
    # the same month gives the same sessions whatever the number of workers
    assert r["base_num_proc_1"]["sessions"] == r["base_num_proc_2"]["sessions"]
    assert r["speedup_num_proc_2_vs_1"] > 0 and r["peak_rss_ratio_base_vs_quarter"] > 0
    assert list(tmp_path.iterdir()) == []  # the synthetic dumps are cleaned up
