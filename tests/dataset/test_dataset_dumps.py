"""Dump reading: every compression, schema drift on real Pushshift records, and bad input errors."""

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import msgspec
import pytest
import zstandard

from dialogpt_dataset import dumps, synthetic
from dialogpt_dataset.dumps import DumpError, coerce_comment, coerce_submission, iter_records
from dialogpt_dataset.records import Comment

PUSHSHIFT = Path(__file__).resolve().parents[1] / "data" / "pushshift"


def test_real_pushshift_comments_schema_drift():
    counters = Counter()
    recs = [coerce_comment(r, counters) for _, r in iter_records(PUSHSHIFT / "test_comments.json", counters)]
    assert len(recs) == 27 and all(r is not None for r in recs)
    assert all(isinstance(r.created, int) and r.created > 1_100_000_000 for r in recs)
    assert all(r.id.startswith("t1_") and r.link.startswith("t3_") for r in recs)
    assert all(r.parent.startswith(("t1_", "t3_")) for r in recs)
    # the README of the samples: created_utc as str (6) and float (10); _meta on 10
    assert counters["drift_created_utc_str"] == 6
    assert counters["drift_created_utc_float"] == 10
    assert counters["drift_meta_field"] == 10
    assert {r.body for r in recs} >= {"[deleted]", "[removed]"}
    # only the used fields, typed: what stage 1 writes as one JSON array per record
    assert all(type(r) is Comment and msgspec.json.decode(msgspec.json.encode(r), type=Comment) == r for r in recs)


def test_real_pushshift_submissions():
    counters = Counter()
    recs = [coerce_submission(r, counters) for _, r in iter_records(PUSHSHIFT / "test_submissions.json", counters)]
    assert len(recs) == 31 and all(r.id.startswith("t3_") and r.title for r in recs)
    assert all(isinstance(r.score, int) and r.link == r.id for r in recs)


def test_drift_ids_scores_and_subreddit_fallback():
    c = Counter()
    r = coerce_comment({"id": "t1_abc", "link_id": "xyz", "parent_id": "xyz", "body": "hi there",
                        "created_utc": "1136073600", "permalink": "/r/Python/comments/xyz/t/abc/"}, c)
    assert (r.id, r.link, r.parent, r.score, r.created, r.subreddit) == ("t1_abc", "t3_xyz", "t3_xyz", 0, 1136073600, "python")
    assert c["drift_id_prefixed"] == 1 and c["drift_link_id_bare"] == 1 and c["drift_score_missing"] == 1
    r = coerce_comment({"id": "a", "link_id": "t3_x", "parent_id": "b", "body": "x", "created_utc": 1.5e9,
                        "score": "7", "subreddit": "AskReddit"}, c)
    assert (r.parent, r.score, r.created, r.subreddit) == ("t1_b", 7, 1500000000, "askreddit")
    assert coerce_comment({"id": "a", "link_id": "t3_x", "body": "no parent"}, c) is None
    assert c["missing_field"] == 1


@pytest.mark.parametrize("compression", synthetic.COMPRESSIONS)
def test_every_compression_streams_the_same_records(tmp_path, compression):
    st = synthetic.write_month(tmp_path, "2007-05", n_comments=300, compression=compression, seed=3)
    assert dumps.find_month_files(tmp_path, "2007-05") == (st.rs_path, st.rc_path)
    rc = [r for _, r in iter_records(st.rc_path)]
    assert len(rc) == st.comments == 300
    ref = tmp_path / "ref"
    plain = synthetic.write_month(ref, "2007-05", n_comments=300, compression="json", seed=3)
    assert rc == [json.loads(line) for line in plain.rc_path.read_text(encoding="utf-8").splitlines()]


def test_synthetic_is_seeded_and_byte_identical(tmp_path):
    a = synthetic.write_month(tmp_path / "a", "2006-01", 200, "gz", seed=1)
    b = synthetic.write_month(tmp_path / "b", "2006-01", 200, "gz", seed=1)
    c = synthetic.write_month(tmp_path / "c", "2006-01", 200, "gz", seed=2)
    assert a.rc_path.read_bytes() == b.rc_path.read_bytes() != c.rc_path.read_bytes()


def _zst(path: Path, lines: list[str]) -> Path:
    path.write_bytes(zstandard.ZstdCompressor().compress("".join(lines).encode()))
    return path


def test_truncated_zst_names_the_file(tmp_path):
    st = synthetic.write_month(tmp_path, "2006-01", 2000, "zst", seed=0)
    data = st.rc_path.read_bytes()
    bad = tmp_path / "RC_2006-02.zst"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DumpError, match=r"RC_2006-02\.zst:\d+: corrupt or truncated"):
        list(iter_records(bad))


def test_corrupt_zst_names_the_file(tmp_path):
    bad = tmp_path / "RC_2006-03.zst"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage that is not a zstd frame" * 10)
    with pytest.raises(DumpError, match=r"RC_2006-03\.zst:1: corrupt or truncated"):
        list(iter_records(bad))


@pytest.mark.parametrize("ext", ["bz2", "xz", "gz"])
def test_truncated_other_compressions(tmp_path, ext):
    st = synthetic.write_month(tmp_path, "2006-01", 500, ext, seed=0)
    bad = tmp_path / f"RC_2006-09.{ext}"
    bad.write_bytes(st.rc_path.read_bytes()[:-200])
    with pytest.raises(DumpError, match=rf"RC_2006-09\.{ext}:\d+: corrupt or truncated"):
        list(iter_records(bad))


def test_malformed_lines_are_skipped_counted_and_limited(tmp_path, caplog):
    good = json.dumps({"id": "a", "link_id": "t3_x", "parent_id": "t3_x", "body": "hello there"}) + "\n"
    path = _zst(tmp_path / "RC_2006-01.zst", [good, "{not json\n", good, "[1, 2]\n", good, '{"id": "tr'])
    counters = Counter()
    with caplog.at_level(logging.WARNING, logger="dialogpt_dataset.dumps"):  # each skipped line: file:line
        assert [n for n, _ in iter_records(path, counters)] == [1, 3, 5]
    assert counters["bad_json"] == 3
    assert [r.getMessage().split(": skipped")[0] for r in caplog.records] == [f"{path}:{n}" for n in (2, 4, 6)]
    with pytest.raises(DumpError, match=r"RC_2006-01\.zst:4: more than --max-bad-lines=1"):
        list(iter_records(path, Counter(), max_bad_lines=1))


def test_non_dump_file(tmp_path):
    p = tmp_path / "RC_2006-01.json"
    p.write_text("Name,Age\nalice,3\n")
    with pytest.raises(DumpError, match=r"RC_2006-01\.json:1: not a Pushshift NDJSON dump"):
        list(iter_records(p))
    p2 = tmp_path / "RC_2006-02.json"
    p2.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(DumpError, match=r"RC_2006-02\.json"):
        list(iter_records(p2))


def test_month_discovery(tmp_path):
    for name in ("RS_v2_2006-01.xz", "RC_2006-01.zst", "RC_2006-02", "notes.txt", "RC_2006-13.zst"):
        (tmp_path / name).write_bytes(b"")
    assert dumps.available_months(tmp_path) == ["2006-01", "2006-02"]
    rs, rc = dumps.find_month_files(tmp_path, "2006-01")
    assert rs.name == "RS_v2_2006-01.xz" and rc.name == "RC_2006-01.zst"
    assert dumps.find_month_files(tmp_path, "2006-02") == (None, tmp_path / "RC_2006-02")
    shutil.copy(tmp_path / "RC_2006-01.zst", tmp_path / "RC_2006-01.bz2")
    with pytest.raises(DumpError, match="two RC files for 2006-01"):
        dumps.find_month_files(tmp_path, "2006-01")
