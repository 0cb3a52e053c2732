"""Bad input in a dump: each kind is a counted skip under a named rule (or a one-line error naming the
file), never a traceback and never a silent 0-row success."""

import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from dialogpt_dataset import dumps, synthetic
from dialogpt_dataset.cli import main as cli_main
from dialogpt_dataset.dumps import DumpError, coerce_comment, coerce_submission, iter_records


def _comment(i: int, **kw) -> dict:
    rec = {"id": f"c{i}", "link_id": "t3_x", "parent_id": "t3_x", "body": "hello there friend",
           "score": 3, "created_utc": 1136073600, "subreddit": "pics", "author": "u"}
    rec.update(kw)
    return rec


def _write(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if path.suffix == ".zst" else data)
    return path


def _read(caplog, path: Path, kind: str | None = "c", **kw):
    """(records, counters, the warnings logged) of one read."""
    counters = Counter()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dialogpt_dataset.dumps"):
        recs = list(iter_records(path, counters, kind=kind, **kw))
    return recs, counters, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("bad", [
    '"score": 1e999', '"score": -1e999', '"created_utc": "1e999"', '"created_utc": 1e999', '"score": NaN',
    '"created_utc": "nan"', '"score": "Infinity"', '"score": 123456789012345678901234567890',
    '"created_utc": -99999999999999999999',
])
def test_non_finite_or_overflowing_numbers_are_a_counted_skip(tmp_path, caplog, bad):
    good = json.dumps(_comment(1))
    broken = json.dumps(_comment(2))[:-1] + ", " + bad + "}"  # the later key wins, as in any JSON reader
    path = _write(tmp_path / "RC_2006-01.zst", [good, broken, json.dumps(_comment(3))])
    recs, counters, warned = _read(caplog, path)
    assert [n for n, _ in recs] == [1, 3] and [r.id for _, r in recs] == ["t1_c1", "t1_c3"]
    assert counters["bad_number"] == 1 and counters["bad_json"] == 0 and counters["missing_field"] == 0
    assert len(warned) == 1 and f"{path}:2: skipped (bad_number)" in warned[0]


def test_bad_numbers_in_submissions_and_in_the_dict_api(tmp_path):
    c = Counter()
    assert coerce_submission({"id": "s", "num_comments": float("inf"), "title": "t"}, c) is None
    assert coerce_submission({"id": "s", "score": "nan", "title": "t"}, c) is None
    assert coerce_comment(_comment(1, score=float("nan")), c) is None
    assert coerce_comment(_comment(1, created_utc=2**70), c) is None
    assert c["bad_number"] == 4
    # finite drift is still coerced, not skipped
    r = coerce_comment(_comment(1, score="7", created_utc=1.5e9), c)
    assert (r.score, r.created) == (7, 1_500_000_000) and c["bad_number"] == 4


def test_json_nested_too_deep_is_a_counted_skip_naming_file_and_line(tmp_path, caplog):
    deep = "[" * 100_000  # one line of 100k nested '[' (it used to abort the whole build)
    deep_field = json.dumps(_comment(2))[:-1] + ', "edited": ' + "[" * 5000 + "]" * 5000 + "}"
    path = _write(tmp_path / "RC_2006-01.json", [json.dumps(_comment(1)), deep, deep_field, json.dumps(_comment(4))])
    for kind in ("c", None):
        recs, counters, warned = _read(caplog, path, kind=kind)
        assert [n for n, _ in recs] == [1, 4]
        assert counters["json_too_deep"] == 2 and counters["bad_json"] == 0
        assert f"{path}:2: skipped (json_too_deep)" in warned[0] and f"{path}:3: skipped (json_too_deep)" in warned[1]


def test_too_deep_lines_count_towards_max_bad_lines(tmp_path):
    path = _write(tmp_path / "RC_2006-01.zst", [json.dumps(_comment(1))] + ["[" * 3000] * 3)
    with pytest.raises(DumpError, match=r"RC_2006-01\.zst:4: more than --max-bad-lines=2"):
        list(iter_records(path, Counter(), max_bad_lines=2, kind="c"))


def test_a_bad_first_line_that_is_an_object_does_not_make_it_a_non_dump(tmp_path):
    path = _write(tmp_path / "RC_2006-01.zst", ["[" * 3000, json.dumps(_comment(2, score=1e300 * 10))])
    counters = Counter()
    assert list(iter_records(path, counters, kind="c")) == []
    assert counters["json_too_deep"] == 1 and counters["bad_number"] == 1


def test_skipped_lines_are_named_up_to_a_limit_then_only_counted(tmp_path, caplog):
    lines = [json.dumps(_comment(0))] + ["{broken"] * (dumps.MAX_NAMED_SKIPS + 5)
    recs, counters, warned = _read(caplog, _write(tmp_path / "RC_2006-01.zst", lines))
    assert len(recs) == 1 and counters["bad_json"] == dumps.MAX_NAMED_SKIPS + 5
    assert len(warned) == dumps.MAX_NAMED_SKIPS and "only counted" in warned[-1]


@pytest.mark.parametrize("name,data", [
    ("RC_2006-01.zst", b""),  # 0 bytes
    ("RS_2006-01.zst", zstandard.ZstdCompressor().compress(b"")),  # a valid frame holding nothing
    ("RC_2006-01.json", b"\n\n"),  # blank lines only
])
def test_an_empty_dump_is_an_error_naming_it_unless_allowed(tmp_path, caplog, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DumpError, match=rf"{name}: empty dump .*--allow-empty-months"):
        list(iter_records(path, Counter(), kind="c"))
    recs, counters, warned = _read(caplog, path, allow_empty=True)
    assert recs == [] and counters["empty_dump_files"] == 1
    assert len(warned) == 1 and warned[0].startswith(f"{path}: empty dump")


def test_zero_byte_file_is_caught_before_reading(tmp_path):
    path = tmp_path / "RC_2006-01.zst"
    path.write_bytes(b"")
    with pytest.raises(DumpError, match=r"RC_2006-01\.zst: empty file \(0 bytes\)"):
        dumps.check_not_empty(path)
    dumps.check_not_empty(path, allow_empty=True)


# --- end to end: the CLI goes on past bad lines and names empty files -------------------------------

def _month_with_bad_lines(d: Path) -> Path:
    """A synthetic month whose RC file also holds one line of each bad kind (lines 301-305)."""
    st = synthetic.write_month(d, "2006-01", 300, "json", seed=5)
    lines = st.rc_path.read_text(encoding="utf-8").splitlines()
    lines += [json.dumps(_comment(901))[:-1] + ', "score": 1e999}', json.dumps(_comment(902, created_utc="1e999")),
              json.dumps(_comment(903))[:-1] + ', "score": NaN}', "[" * 100_000, '{"id": "c905", "body": ']
    st.rc_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return st.rc_path


@pytest.mark.slow
def test_cli_build_goes_on_past_bad_lines_and_counts_them(tmp_path):
    rc = _month_with_bad_lines(tmp_path / "dumps")
    cmd = [sys.executable, "-m", "dialogpt_dataset.cli", "--dumps", str(tmp_path / "dumps"), "--months", "2006-01",
           "--output", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # stderr exactly as a user sees it
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    rows = {line.split()[0]: line.split()[-1] for line in proc.stdout.splitlines() if line.strip()}
    assert (rows["bad_number"], rows["json_too_deep"], rows["bad_json"]) == ("3", "1", "1")
    assert rows["records_rc"] == "305"  # every line read is either used or counted under a rule
    for n, rule in ((301, "bad_number"), (302, "bad_number"), (303, "bad_number"), (304, "json_too_deep"),
                    (305, "bad_json")):
        assert f"{rc}:{n}: skipped ({rule})" in proc.stderr
    stats = json.loads((tmp_path / "out" / "build_stats.json").read_text())
    assert stats["num_rows"]["train"] > 0 and stats["counters"]["bad_number"] == 3


@pytest.mark.parametrize("kind", ["RC", "RS"])
def test_cli_zero_byte_dump_is_one_line_error_naming_it(tmp_path, capfd, kind):
    d = tmp_path / "dumps"
    synthetic.write_month(d, "2006-01", 200, "zst", seed=1)
    (d / f"{kind}_2006-01.zst").write_bytes(b"")
    code = cli_main(["--dumps", str(d), "--months", "2006-01", "--output", str(tmp_path / "out"), "--quiet"])
    out, err = capfd.readouterr()
    assert code == 2 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"{kind}_2006-01.zst: empty file (0 bytes)" in line and "--allow-empty-months" in line


@pytest.mark.slow
def test_cli_allow_empty_months_warns_and_builds_the_rest(tmp_path, capfd, caplog):
    d = tmp_path / "dumps"
    synthetic.write_month(d, "2006-01", 300, "zst", seed=1)
    synthetic.write_month(d, "2006-02", 300, "zst", seed=2)
    (d / "RC_2006-02.zst").write_bytes(b"")
    code = cli_main(["--dumps", str(d), "--months", "2006-01:2006-02", "--output", str(tmp_path / "out"), "--quiet",
                     "--allow-empty-months"])
    out, err = capfd.readouterr()
    assert code == 0, err[-2000:]
    assert f"{d / 'RC_2006-02.zst'}: empty dump (no records)" in caplog.text
    stats = json.loads((tmp_path / "out" / "build_stats.json").read_text())
    assert stats["counters"]["empty_dump_files"] == 1 and stats["num_rows"]["train"] > 0
    assert stats["counters"]["records_rc"] == 300  # the empty month added nothing
