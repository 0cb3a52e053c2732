"""``--executor slurm`` for real, on a single-node Slurm cluster of this machine (Debian slurm-wlm +
munge, started by ``.ci/slurm_single_node.sh``; ``.ci/run`` installs and starts it).

The shipped sample is built through ``sbatch`` job arrays (datatrove's SlurmPipelineExecutor: stage 1
one task per dump file, stage 2 one task per shard after it), finished with ``--executor local`` (which
must find every task done), and compared with a plain local build: same Parquet rows, same refs and
keys. A second build is cancelled mid-way through stage 1 (its array submitted held, two tasks
released, then everything ``scancel``-ed) and resubmitted: only the unfinished tasks run again.
Without Slurm the tests skip saying so. Every wait is bounded.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dialogpt_dataset.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "slurm_single_node.sh"
WAIT_S = 240

pytestmark = pytest.mark.slow


def _node_up() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc") for s in out.stdout.split())


@pytest.fixture(scope="module")
def partition():
    """The default partition of a running single-node cluster. When Slurm is installed but not running
    and we are root, it is started here and left running: with ``pytest -n 2`` the other worker may be
    using it (stop it with ``.ci/slurm_single_node.sh stop``)."""
    if not (shutil.which("sbatch") and shutil.which("slurmctld") and shutil.which("munged")):
        pytest.skip("slurm not installed (apt-get install slurm-wlm munge; .ci/run installs and starts it)")
    if not _node_up() and os.geteuid() == 0:
        subprocess.run([str(SCRIPT), "start"], capture_output=True, timeout=120)
    if not _node_up():
        pytest.skip("slurm installed but no node is up (start it with .ci/slurm_single_node.sh start)")
    info = subprocess.run(["sinfo", "-h", "-o", "%P %m"], capture_output=True, text=True, timeout=15).stdout.split()
    name, mem = info[0], int(info[1].rstrip("+"))
    if mem < 4096:
        pytest.skip(f"the slurm node has {mem} MB; --executor slurm asks 4 GB per task")
    return name.rstrip("*")


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "ds"
    assert cli_main(["--size", "dummy", "--output", str(out), "--quiet"]) == 0
    return out


def _our_jobs(cwd: Path, name: str | None = None) -> list[str]:
    """Ids of the jobs submitted from ``cwd`` (each test submits from its own folder), by job name."""
    out = subprocess.run(["squeue", "-h", "-o", "%F %j %Z"], capture_output=True, text=True, timeout=15).stdout
    rows = [line.split() for line in out.splitlines()]
    return sorted({r[0] for r in rows if r[2:] == [str(cwd)] and name in (None, r[1])})


def _cancel(cwd: Path) -> None:
    jobs = _our_jobs(cwd)
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=30)


def _done(work: Path, stage: str) -> list[str]:
    d = work / "logs" / stage / "completions"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _wait(cwd: Path, what, timeout: float = WAIT_S) -> None:
    t0 = time.monotonic()
    while not what():
        if time.monotonic() - t0 > timeout:
            logs = sorted(cwd.rglob("slurm_logs/*.out"))
            tail = logs[-1].read_text()[-1500:] if logs else "no slurm logs"
            _cancel(cwd)
            pytest.fail(f"slurm jobs did not finish in {timeout:.0f} s; last log:\n{tail}")
        time.sleep(2)


def _submit(cwd: Path, out: Path, partition: str, hold: bool = False) -> str:
    """Submit the dummy build from ``cwd``: the CLI, or (``hold``) the API with ``sbatch --hold``."""
    if hold:
        code = ("from dialogpt_dataset.build import BuildConfig, SubmittedToSlurm, build_dataset\n"
                f"cfg = BuildConfig(output_dir={str(out)!r}, size='dummy', executor='slurm', quiet=True,\n"
                f"                  slurm_kwargs={{'partition': {partition!r}, 'sbatch_args': {{'hold': ''}}}})\n"
                "try:\n    build_dataset(cfg)\nexcept SubmittedToSlurm as e:\n    print(e)\n")
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "dialogpt_dataset.cli", "--size", "dummy", "--output", str(out),
               "--executor", "slurm", "--slurm-partition", partition, "--quiet"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _finish_locally_and_compare(out: Path, local_build: Path) -> None:
    work = out / ".work" / "pipeline"
    stage2 = {p: p.stat().st_mtime_ns for p in (work / "stage2").rglob("*.parquet")}
    assert cli_main(["--size", "dummy", "--output", str(out), "--quiet"]) == 0
    # every task had run on Slurm: the local step only wrote the dataset
    assert {p: p.stat().st_mtime_ns for p in (work / "stage2").rglob("*.parquet")} == stage2
    for split in ("train", "validation", "test"):
        ours = pq.read_table(sorted((out / "data").glob(f"{split}-*.parquet")))
        ref = pq.read_table(sorted((local_build / "data").glob(f"{split}-*.parquet")))
        assert ours.num_rows > 0 and ours.equals(ref), split
    for name in ("test.refs.txt", "keys.txt"):
        assert (out / name).read_text() == (local_build / name).read_text(), name
    a = json.loads((out / "build_stats.json").read_text())["counters"]
    assert a == json.loads((local_build / "build_stats.json").read_text())["counters"]


def test_slurm_build_equals_the_local_build(partition, local_build, tmp_path):
    out = tmp_path / "ds"
    try:
        said = _submit(tmp_path, out, partition)
        assert "submitted 8 + 2 Slurm tasks" in said and "--executor local" in said
        work = out / ".work" / "pipeline"
        _wait(tmp_path, lambda: len(_done(work, "stage2")) == 2 and not _our_jobs(tmp_path))
        assert _done(work, "stage1") == [f"{r:05d}" for r in range(8)]
        _finish_locally_and_compare(out, local_build)
    finally:
        _cancel(tmp_path)


def test_slurm_build_killed_midway_resumes(partition, local_build, tmp_path):
    out = tmp_path / "ds"
    work = out / ".work" / "pipeline"
    try:
        _submit(tmp_path, out, partition, hold=True)
        shard_job = min(_our_jobs(tmp_path, "reddit-shard"), key=int)  # the array (its merge-stats job comes after)
        for task in (0, 1):  # only the first month's RS and RC tasks may run, then the build is killed
            subprocess.run(["scontrol", "release", f"{shard_job}_{task}"], check=True, capture_output=True, timeout=30)
        _wait(tmp_path, lambda: len(_done(work, "stage1")) == 2)
        _cancel(tmp_path)
        _wait(tmp_path, lambda: not _our_jobs(tmp_path), timeout=60)
        assert _done(work, "stage1") == ["00000", "00001"] and _done(work, "stage2") == []

        _submit(tmp_path, out, partition)  # the same build again: only what did not finish is submitted
        assert json.loads((work / "logs" / "stage1" / "ranks_to_run.json").read_text()) == list(range(2, 8))
        _wait(tmp_path, lambda: len(_done(work, "stage2")) == 2 and not _our_jobs(tmp_path))
        _finish_locally_and_compare(out, local_build)
    finally:
        _cancel(tmp_path)
