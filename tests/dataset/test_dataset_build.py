"""End to end: dumps -> datatrove pipeline -> datasets builder -> Parquet + card, resume, keys, Ray, Hub."""

import gc
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dialogpt.chat_format import as_turns
from dialogpt.legacy_tsv import read_refs, read_train_tsv
from dialogpt_dataset import dumps as dumps_mod
from dialogpt_dataset import pipeline, process, stages, synthetic
from dialogpt_dataset.build import BuildConfig, build_dataset
from dialogpt_dataset.cli import main as cli_main
from dialogpt_dataset.rules import ExtractRules

MONTHS = "2006-01:2006-03"


@pytest.fixture(scope="module")
def dumps_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("dumps")
    synthetic.write_month(d, "2006-01", 500, "zst", seed=7)
    synthetic.write_month(d, "2006-02", 500, "xz", seed=7)
    synthetic.write_month(d, "2006-03", 500, "bz2", seed=7, with_rs=False)  # no RS: rooted at comments
    return d


def cfg(dumps_dir, out, **kw) -> BuildConfig:
    base = dict(output_dir=str(out), dumps_dir=str(dumps_dir), months=MONTHS, num_shards=3, min_refs=2,
                test_fraction=0.3, validation_fraction=0.1)
    base.update(kw)
    return BuildConfig(**base)


@pytest.fixture(scope="module")
def reference_build(dumps_dir, tmp_path_factory):
    """One uninterrupted local build that the other tests compare against."""
    return build_dataset(cfg(dumps_dir, tmp_path_factory.mktemp("ref") / "rd"))


def split_rows(out: Path, split: str) -> list[dict]:
    rows = []
    for f in sorted((Path(out) / "data").glob(f"{split}-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def only_parquet(out: Path, split: str) -> Path:
    (path,) = (Path(out) / "data").glob(f"{split}-*.parquet")
    return path


def test_reference_build_layout_and_counts(reference_build):
    r = reference_build
    assert r.num_rows["train"] > 50 and r.num_rows["validation"] > 0 and r.num_rows["test"] > 0
    fp = r.data_fingerprint
    assert len(fp) == 10 and sorted(p.name for p in (r.output_dir / "data").iterdir()) == [
        f"test-{fp}-00000-of-00001.parquet", f"train-{fp}-00000-of-00001.parquet",
        f"validation-{fp}-00000-of-00001.parquet"]
    c = r.counters
    assert c["records_rc"] == 1500 and c["months_without_rs"] == 1 and c["rooted_at_comment"] > 0
    assert c["rows_train"] == r.num_rows["train"] and c["rows_test"] == r.num_rows["test"]
    for rule in ("deleted", "removed", "quote", "bot", "url", "low_score", "not_a_leaf", "min_depth"):
        assert c[rule] > 0, rule
    ids = [row["id"] for row in split_rows(r.output_dir, "train")]
    assert len(set(ids)) == len(ids)  # deterministic order: by month-shard file, then id


def test_tasks_leave_the_garbage_collector_as_they_found_it(reference_build, monkeypatch):
    # a library build (reference_build ran both stages in this process) leaves nothing frozen
    assert gc.get_freeze_count() == 0
    with process.frozen_heap():  # a task: what was alive when it started is frozen while it runs
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    monkeypatch.setattr(process, "_owner_froze", False)
    try:  # a command owning its process (the CLI) keeps what its tasks froze frozen, and runs them
        pipeline.freeze_owned_process()  # without the cyclic collector
        with process.frozen_heap():
            assert not gc.isenabled()
        assert gc.get_freeze_count() > 0 and gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


_NUMPY_SPY = """
import os, sys
class Spy:  # says what OPENBLAS_NUM_THREADS was when numpy was first imported
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            print("numpy imported with OPENBLAS_NUM_THREADS", os.environ.get("OPENBLAS_NUM_THREADS"))
            sys.meta_path.remove(self)
sys.meta_path.insert(0, Spy())
import dialogpt_dataset.cli
"""


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("3", "3")])
def test_the_cli_process_starts_one_blas_thread_unless_told(preset, expected):
    # the command's module limits OpenBLAS (whose idle threads spin at numpy's import) before
    # anything imports numpy, and keeps a user's own setting
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset:
        env["OPENBLAS_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", _NUMPY_SPY], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"numpy imported with OPENBLAS_NUM_THREADS {expected}"


def test_kill_and_resume_gives_identical_parquet(dumps_dir, reference_build, tmp_path, monkeypatch):
    out = tmp_path / "rd"
    real_iter = dumps_mod.iter_records

    def dying_iter(path, *a, **kw):  # "kill" stage 1 halfway through the third month's comments
        for i, rec in enumerate(real_iter(path, *a, **kw)):
            if "2006-03" in str(path) and i == 200:
                raise KeyboardInterrupt("killed")
            yield rec

    monkeypatch.setattr(dumps_mod, "iter_records", dying_iter)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg(dumps_dir, out))
    monkeypatch.setattr(dumps_mod, "iter_records", real_iter)

    seen_months, seen_shards = [], []
    real_shard_month = pipeline.ShardDumps.shard_month
    real_write = pipeline.write_rows

    def spy_shard_month(self, month, part, counters):
        seen_months.append(month)
        return real_shard_month(self, month, part, counters)

    def dying_write(path, rows, test_extras):  # then kill stage 2 in its second shard, mid-write
        if "-0001.parquet" in path.name and path.parent.name == "validation":
            raise KeyboardInterrupt("killed")
        return real_write(path, rows, test_extras)

    monkeypatch.setattr(pipeline.ShardDumps, "shard_month", spy_shard_month)
    monkeypatch.setattr(stages, "write_rows", dying_write)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(cfg(dumps_dir, out))
    assert seen_months == ["2006-03"]  # the finished months were not read again

    def spy_process(self, month, shard, *a):
        seen_shards.append(shard)
        return real_process(self, month, shard, *a)

    real_process = pipeline.BuildConversations.process_shard
    monkeypatch.setattr(stages, "write_rows", real_write)
    monkeypatch.setattr(pipeline.BuildConversations, "process_shard", spy_process)
    seen_months.clear()
    result = build_dataset(cfg(dumps_dir, out))
    assert seen_months == [] and sorted(set(seen_shards)) == [1, 2]

    assert result.num_rows == reference_build.num_rows
    assert result.counters == reference_build.counters  # no task counted twice
    for split in pipeline.SPLITS:
        a = pq.read_table(only_parquet(reference_build.output_dir, split))
        b = pq.read_table(only_parquet(out, split))
        assert a.equals(b), split
    assert (out / "test.refs.txt").read_text() == (reference_build.output_dir / "test.refs.txt").read_text()


_KILL_SCRIPT = """
import os, signal, sys
from dialogpt_dataset import pipeline
from dialogpt_dataset.build import BuildConfig, build_dataset

real = pipeline.BuildConversations.process_shard

def process_then_die(self, month, shard, *a):
    real(self, month, shard, *a)
    if shard == 1 and month == "2006-02":  # SIGKILL: no exception handler, no cleanup runs
        os.kill(os.getpid(), signal.SIGKILL)

pipeline.BuildConversations.process_shard = process_then_die
build_dataset(BuildConfig(**eval(sys.argv[1])))
"""


def test_sigkilled_build_resumes_to_identical_parquet(dumps_dir, reference_build, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "rd"
    kw = dict(output_dir=str(out), dumps_dir=str(dumps_dir), months=MONTHS, num_shards=3, min_refs=2,
              test_fraction=0.3, validation_fraction=0.1)
    log = tmp_path / "killed.log"
    with open(log, "w") as f:  # a file, not a pipe: the killed build's orphans must not keep us waiting
        proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, repr(kw)], stdout=f, stderr=f,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=300)
        finally:  # the killed process leaves datatrove's multiprocess manager behind: end its group
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert rc == -signal.SIGKILL, log.read_text()[-2000:]
    done = sorted(p.name for p in (out / ".work" / "pipeline" / "logs" / "stage2" / "completions").iterdir())
    assert done == ["00000"]  # shard 0 finished, shard 1 died halfway through its months, shard 2 never ran
    result = build_dataset(BuildConfig(**kw))
    assert result.counters == reference_build.counters
    for split in pipeline.SPLITS:
        a = pq.read_table(only_parquet(reference_build.output_dir, split))
        assert a.equals(pq.read_table(only_parquet(out, split))), split


def test_keys_file_freezes_the_selection(dumps_dir, reference_build, tmp_path):
    keys = (reference_build.output_dir / "keys.txt").read_text().split()
    # the full keys.txt reproduces the build exactly
    full = build_dataset(cfg(dumps_dir, tmp_path / "full", keys_file=str(reference_build.output_dir / "keys.txt")))
    for split in pipeline.SPLITS:
        assert split_rows(full.output_dir, split) == split_rows(reference_build.output_dir, split)
    # a subset, half in our format and half in the original's keys-*.gz format, keeps exactly that subset
    train_ids = [r["id"] for r in split_rows(reference_build.output_dir, "train")]
    chosen = train_ids[::3]
    kf = tmp_path / "keys.gz"
    with gzip.open(kf, "wt") as f:
        for i, k in enumerate(chosen):
            link, _, cid = k.split(",")
            f.write(f"{k}\n" if i % 2 else f"{link}\t{cid}\tkeep\n{link}\t{cid}\tdep\n")
    sub = build_dataset(cfg(dumps_dir, tmp_path / "sub", keys_file=str(kf)))
    assert [r["id"] for r in split_rows(sub.output_dir, "train")] == chosen
    assert sub.num_rows["validation"] == 0 and sub.num_rows["test"] == 0
    assert sub.counters["not_in_keys"] > 0
    assert keys == (full.output_dir / "keys.txt").read_text().split()


def test_ray_executor_gives_the_same_rows(dumps_dir, reference_build, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        result = build_dataset(cfg(dumps_dir, tmp_path / "ray", executor="ray", num_proc=2))
    finally:
        ray.shutdown()
    for split in pipeline.SPLITS:
        assert split_rows(result.output_dir, split) == split_rows(reference_build.output_dir, split)


def test_ray_joins_an_existing_cluster_without_num_cpus(monkeypatch):
    """Ray raises "When connecting to an existing cluster, num_cpus ... must not be provided": the
    build joins RAY_ADDRESS / a `ray start` cluster with no resource arguments and starts a local
    instance sized by --num-proc only when none runs (ray.init recorded, not run)."""
    import ray

    from dialogpt_dataset.build import _connect_ray

    calls = []

    def fake_init(address=None, **kw):
        calls.append((address, kw))
        if address == "auto" and not cluster_running:
            raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    cluster_running = True
    _connect_ray(4)
    assert calls == [(None, {"include_dashboard": False})]
    monkeypatch.delenv("RAY_ADDRESS")
    calls.clear()
    _connect_ray(4)
    assert calls == [("auto", {"include_dashboard": False})]
    cluster_running = False
    calls.clear()
    _connect_ray(4)
    assert calls == [("auto", {"include_dashboard": False}), (None, {"num_cpus": 4, "include_dashboard": False})]


def test_slurm_executor_is_constructed(dumps_dir, tmp_path):
    plan = pipeline.Plan(dumps_dir=str(dumps_dir), work_dir=str(tmp_path), months=["2006-01"], num_shards=2)
    e1, e2 = pipeline.make_executors(plan, "slurm", 2, {"partition": "cpu"})
    assert (e1.tasks, e2.tasks, e2.depends) == (2, 2, e1)  # stage 1: one task per dump file (RS, RC)
    with pytest.raises(ValueError, match="expected local, ray or slurm"):
        pipeline.make_executors(plan, "spark", 1)


def test_slurm_executor_submits_and_says_how_to_finish(dumps_dir, tmp_path, monkeypatch, capsys):
    from datatrove.executor.slurm import SlurmPipelineExecutor

    submitted = []
    monkeypatch.setattr(SlurmPipelineExecutor, "run", lambda self: submitted.append((self.job_name, self.tasks)))
    args = ["--months", "2006-01:2006-02", "--dumps", str(dumps_dir), "--output", str(tmp_path / "s"),
            "--executor", "slurm", "--num-shards", "4"]
    assert cli_main(args) == 0
    assert submitted == [("reddit-conv", 4)]  # stage 2's run() submits stage 1 as its dependency
    assert "--executor local" in capsys.readouterr().out


def test_builder_download_and_prepare_num_proc_2(dumps_dir, reference_build, tmp_path, capfd):
    from dialogpt_dataset.builder import RedditDialog

    b = RedditDialog(config_name="custom", cache_dir=str(tmp_path / "cache"), dumps_dir=str(dumps_dir),
                     months=["2006-01", "2006-02", "2006-03"], work_dir=str(tmp_path / "work"), pipeline_num_proc=2,
                     quiet=True,
                     plan_overrides=dict(num_shards=3, min_refs=2, rules=ExtractRules.from_preset(
                         test_fraction=0.3, validation_fraction=0.1)))
    b.download_and_prepare(num_proc=2)
    # quiet reaches the pipeline's worker processes too (their stderr is this test's fd 2)
    assert "Launching pipeline" not in capfd.readouterr().err
    train = b.info.splits["train"]
    assert len(train.shard_lengths) == 2 and sum(train.shard_lengths) == train.num_examples
    assert train.num_examples == reference_build.num_rows["train"]
    assert sorted(b.as_dataset("train")["id"]) == sorted(r["id"] for r in split_rows(reference_build.output_dir, "train"))


def test_dummy_cli_build_loads_offline_with_card_refs_and_tsv(tmp_path, capsys, mock_hub):
    import datasets
    from huggingface_hub import DatasetCard

    out = tmp_path / "reddit-dialog"
    assert cli_main(["--size", "dummy", "--output", str(out), "--export-tsv", "--push-to-hub", "org/reddit-dialog",
                     "--quiet"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "not_a_leaf" in printed and "load_dataset" in printed and "pushed to" in printed
    assert "months without an RS (submissions) file, threads rooted at top-level comments: 2006-03" in printed
    assert "Launching pipeline" not in captured.err  # --quiet: no datatrove task chatter

    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].features["turns"].feature["weight"].dtype == "float32"
    assert ds["train"].num_rows > 500 and ds["test"].num_rows >= 5
    row = ds["train"][0]
    assert len(as_turns(row["turns"])) >= 2 and row["references"] == []
    t = ds["test"][0]
    assert len(t["references"]) >= 5 and len(set(t["references"])) == len(t["references"])
    stream = datasets.load_dataset(str(out), split="train", streaming=True)
    assert next(iter(stream))["id"] == row["id"]

    stats = json.loads((out / "build_stats.json").read_text())
    card = DatasetCard.load(out / "README.md")
    fp = only_parquet(out, "train").name.split("-")[1]
    assert card.data.configs[0]["data_files"][0] == {"split": "train", "path": f"data/train-{fp}-*.parquet"}
    assert card.data.months == ["2006-01", "2006-02", "2006-03", "2024-02"]
    assert card.data.task_categories == ["text-generation"]
    assert f"| `deleted` | comment | body is [deleted] | yes | {stats['counters']['deleted']} |" in card.text
    assert f"| train | {ds['train'].num_rows} |" in card.text

    refs = read_refs(out / "test.refs.txt")
    assert len(refs) == ds["test"].num_rows
    # row k of test.refs.txt is row k of the Parquet test split (hypotheses line up with either)
    for r, row_k in zip(refs, ds["test"]):
        assert r.context_turns == [x["text"] for x in row_k["turns"]] and r.texts == row_k["references"]
    tsv = read_train_tsv(out / "train.tsv")
    assert len(tsv) == ds["train"].num_rows
    assert [x.text for x in tsv[0]] == [x["text"] for x in row["turns"]]

    # --push-to-hub uploaded it to the (mock) Hub: load it back by repo id
    from dialogpt_dataset.build import push_dataset

    files = mock_hub.repo_files("dataset", "org/reddit-dialog")
    assert "README.md" in files and not any(f.startswith(".work") for f in files)
    hub = datasets.load_dataset("org/reddit-dialog", cache_dir=str(tmp_path / "hub_cache"))
    assert hub["test"]["references"] == ds["test"]["references"] and hub["train"].num_rows == ds["train"].num_rows

    # a private repo: only its owner's token sees it, and the token is never printed
    token = "hf_mock_dataset_owner_token"
    mock_hub.add_token(token, "dora", orgs=["dataorg"])
    capsys.readouterr()
    push_dataset(out, "dataorg/reddit-private", private=True, token=token)
    with pytest.raises(datasets.exceptions.DatasetNotFoundError):
        datasets.load_dataset("dataorg/reddit-private", cache_dir=str(tmp_path / "anon"), token=False)
    priv = datasets.load_dataset("dataorg/reddit-private", cache_dir=str(tmp_path / "auth"), token=token)
    assert priv["validation"]["id"] == ds["validation"]["id"]
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    assert mock_hub.errors == []


def test_cli_reports_user_errors_without_traceback(tmp_path, capsys, dumps_dir):
    assert cli_main(["--size", "small", "--output", str(tmp_path / "x")]) == 2
    assert "--dumps DIR is required" in capsys.readouterr().err
    assert cli_main(["--months", "2007-01:2007-02", "--dumps", str(dumps_dir), "--output", str(tmp_path / "y")]) == 2
    assert "no RC_<month> comments dump for 2007-01, 2007-02" in capsys.readouterr().err
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    (zipped / "RC_2006-01.zip").write_bytes(b"PK")
    assert cli_main(["--months", "2006-01", "--dumps", str(zipped), "--output", str(tmp_path / "v")]) == 2
    assert "(found RC_2006-01.zip: readable endings are .zst" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (dumps_dir / "RC_2006-01.zst").read_bytes()
    (bad / "RC_2006-01.zst").write_bytes(data[: len(data) // 2])
    assert cli_main(["--months", "2006-01", "--dumps", str(bad), "--output", str(tmp_path / "z")]) == 2
    assert "RC_2006-01.zst" in capsys.readouterr().err
    assert cli_main(["--months", "2006-0x", "--dumps", str(dumps_dir), "--output", str(tmp_path / "w")]) == 2
    assert "expected YYYY-MM" in capsys.readouterr().err


def test_month_parsing_sizes_and_config_validation(tmp_path):
    from dialogpt_dataset.builder import SIZES, month_range, parse_months

    assert parse_months("2006-11:2007-02") == ["2006-11", "2006-12", "2007-01", "2007-02"]
    assert parse_months("2006-03,2006-01") == ["2006-01", "2006-03"] and parse_months("") == []
    assert SIZES["small"]["months"][0] == "2005-12" and SIZES["small"]["months"][-1] == "2009-12"
    assert len(SIZES["full"]["months"]) == 144 and SIZES["full"]["test_months"] == month_range("2018-03", "2019-01")
    with pytest.raises(ValueError, match="is empty"):
        parse_months("2007-02:2007-01")
    with pytest.raises(ValueError, match="not both"):
        BuildConfig(output_dir=str(tmp_path), size="small", months="2006-01", dumps_dir=str(tmp_path))
    with pytest.raises(ValueError, match="--max-refs 2 is below --min-refs 5"):
        BuildConfig(output_dir=str(tmp_path), max_refs=2)
    with pytest.raises(ValueError, match="--keys-file .*: no such file"):
        BuildConfig(output_dir=str(tmp_path), keys_file=str(tmp_path / "nope.txt"))
    assert BuildConfig(output_dir=str(tmp_path)).size == "dummy"
    with pytest.raises(ValueError, match="--num-shards 0: must be >= 1"):  # was a ZeroDivisionError in stage 1
        BuildConfig(output_dir=str(tmp_path), num_shards=0)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="--output .*a_file: exists and is not a directory"):  # was FileExistsError
        BuildConfig(output_dir=str(tmp_path / "a_file"))


def test_unreadable_keys_files_and_empty_dumps_folder_are_one_line_errors(tmp_path, capsys):
    """A keys file that is not UTF-8 or a .gz that is not gzip names the file and line (no codec or
    gzip traceback); --dumps over a folder without dumps (and no --size/--months) says so."""
    bad_text = tmp_path / "keys.txt"
    bad_text.write_bytes(b"t3_a,t3_a,t1_b\n\xff\xfe junk\n")
    not_gz = tmp_path / "keys.gz"
    not_gz.write_text("t3_a\tt1_b\tkeep\n")
    for flag, path, msg in [("--keys-file", bad_text, "keys.txt:2: --keys-file is not UTF-8 text"),
                            ("--keys-file", not_gz, "keys.gz:1: --keys-file cannot be read (BadGzipFile"),
                            ("--discard-keys-file", not_gz, "keys.gz:1: --discard-keys-file cannot be read")]:
        out = tmp_path / "o"
        assert cli_main(["--size", "dummy", "--output", str(out), flag, str(path), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and err.count("\n") == 1
        assert not (out / ".work" / "pipeline").exists()  # checked before any work or plan is written
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["--dumps", str(empty), "--output", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert f"{empty}: no RS_YYYY-MM.* / RC_YYYY-MM.* dump files" in err and "--size small|full" in err


def test_push_to_hub_failure_is_one_line_and_the_repo_id_is_checked_first(dumps_dir, tmp_path, capsys, mock_hub,
                                                                          monkeypatch):
    out = tmp_path / "rd"
    args = ["--months", MONTHS, "--dumps", str(dumps_dir), "--output", str(out), "--num-shards", "3", "--quiet"]
    # a bad repo id is refused before any work
    assert cli_main(args + ["--push-to-hub", "bad id!!"]) == 2
    assert "--push-to-hub 'bad id!!': Repo id must use" in capsys.readouterr().err and not out.exists()
    # the Hub refuses the upload (the mock Hub answers 401 to an unknown token): one line, the folder is kept
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_known_token")
    assert cli_main(args + ["--push-to-hub", "org/refused"]) == 2
    err = capsys.readouterr().err
    assert "--push-to-hub org/refused: upload failed (HfHubHTTPError" in err and "Traceback" not in err
    assert f"the dataset in {out} is complete" in err and (out / "README.md").is_file()
    assert "hf_not_a_known_token" not in err and mock_hub.errors == []
