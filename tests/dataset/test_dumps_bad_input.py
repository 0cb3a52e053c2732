"""Bad input in a dump: each kind is a counted skip under a named rule (or a one-line error naming the
file), never a traceback and never a silent 0-row success."""

import json
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from dialogpt_dataset import dumps
from dialogpt_dataset.dumps import DumpError, DumpWarning, coerce_comment, coerce_submission, iter_records


def _comment(i: int, **kw) -> dict:
    rec = {"id": f"c{i}", "link_id": "t3_x", "parent_id": "t3_x", "body": "hello there friend",
           "score": 3, "created_utc": 1136073600, "subreddit": "pics", "author": "u"}
    rec.update(kw)
    return rec


def _write(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if path.suffix == ".zst" else data)
    return path


def _read(path: Path, kind: str | None = "c", **kw):
    counters = Counter()
    with pytest.warns(DumpWarning) as warned:
        recs = list(iter_records(path, counters, kind=kind, **kw))
    return recs, counters, [str(w.message) for w in warned]


@pytest.mark.parametrize("bad", [
    '"score": 1e999', '"score": -1e999', '"created_utc": "1e999"', '"created_utc": 1e999', '"score": NaN',
    '"created_utc": "nan"', '"score": "Infinity"', '"score": 123456789012345678901234567890',
    '"created_utc": -99999999999999999999',
])
def test_non_finite_or_overflowing_numbers_are_a_counted_skip(tmp_path, bad):
    good = json.dumps(_comment(1))
    broken = json.dumps(_comment(2))[:-1] + ", " + bad + "}"  # the later key wins, as in any JSON reader
    path = _write(tmp_path / "RC_2006-01.zst", [good, broken, json.dumps(_comment(3))])
    recs, counters, warned = _read(path)
    assert [n for n, _ in recs] == [1, 3] and [r["id"] for _, r in recs] == ["t1_c1", "t1_c3"]
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
    assert (r["s"], r["t"]) == (7, 1_500_000_000) and c["bad_number"] == 4


def test_json_nested_too_deep_is_a_counted_skip_naming_file_and_line(tmp_path):
    deep = "[" * 100_000  # one line of 100k nested '[' (it used to abort the whole build)
    deep_field = json.dumps(_comment(2))[:-1] + ', "edited": ' + "[" * 5000 + "]" * 5000 + "}"
    path = _write(tmp_path / "RC_2006-01.json", [json.dumps(_comment(1)), deep, deep_field, json.dumps(_comment(4))])
    for kind in ("c", None):
        recs, counters, warned = _read(path, kind=kind)
        assert [n for n, _ in recs] == [1, 4]
        assert counters["json_too_deep"] == 2 and counters["bad_json"] == 0
        assert f"{path}:2: skipped (json_too_deep)" in warned[0] and f"{path}:3: skipped (json_too_deep)" in warned[1]


def test_too_deep_lines_count_towards_max_bad_lines(tmp_path):
    path = _write(tmp_path / "RC_2006-01.zst", [json.dumps(_comment(1))] + ["[" * 3000] * 3)
    with pytest.warns(DumpWarning), pytest.raises(DumpError, match=r"RC_2006-01\.zst:4: more than --max-bad-lines=2"):
        list(iter_records(path, Counter(), max_bad_lines=2, kind="c"))


def test_a_bad_first_line_that_is_an_object_does_not_make_it_a_non_dump(tmp_path):
    path = _write(tmp_path / "RC_2006-01.zst", ["[" * 3000, json.dumps(_comment(2, score=1e300 * 10))])
    counters = Counter()
    with pytest.warns(DumpWarning):
        assert list(iter_records(path, counters, kind="c")) == []
    assert counters["json_too_deep"] == 1


def test_skipped_lines_are_named_up_to_a_limit_then_only_counted(tmp_path):
    lines = [json.dumps(_comment(0))] + ["{broken"] * (dumps.MAX_NAMED_SKIPS + 5)
    recs, counters, warned = _read(_write(tmp_path / "RC_2006-01.zst", lines))
    assert len(recs) == 1 and counters["bad_json"] == dumps.MAX_NAMED_SKIPS + 5
    assert len(warned) == dumps.MAX_NAMED_SKIPS and "only counted" in warned[-1]


@pytest.mark.parametrize("name,data", [
    ("RC_2006-01.zst", b""),  # 0 bytes
    ("RS_2006-01.zst", zstandard.ZstdCompressor().compress(b"")),  # a valid frame holding nothing
    ("RC_2006-01.json", b"\n\n"),  # blank lines only
])
def test_an_empty_dump_is_an_error_naming_it_unless_allowed(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DumpError, match=rf"{name}: empty dump .*--allow-empty-months"):
        list(iter_records(path, Counter(), kind="c"))
    counters = Counter()
    with pytest.warns(DumpWarning, match=rf"{name}: empty dump"):
        assert list(iter_records(path, counters, kind="c", allow_empty=True)) == []
    assert counters["empty_dump_files"] == 1


def test_zero_byte_file_is_caught_before_reading(tmp_path):
    path = tmp_path / "RC_2006-01.zst"
    path.write_bytes(b"")
    with pytest.raises(DumpError, match=r"RC_2006-01\.zst: empty file \(0 bytes\)"):
        dumps.check_not_empty(path)
    dumps.check_not_empty(path, allow_empty=True)
