"""The seed's train.tsv and multi-reference formats: round trips and file:line errors."""

from __future__ import annotations

import pytest

from dialogpt.chat_format import Turn
from dialogpt.legacy_tsv import (
    LegacyFormatError,
    format_train_line,
    parse_train_line,
    read_refs,
    read_train_tsv,
    write_refs,
    write_train_tsv,
)


def test_train_line_matches_the_seed_layout():
    line = format_train_line([("hi there", 0.0), ("how are you", 1.0), ("fine thanks", 1.0)])
    assert line == "0.0 hi there EOS 1.0 how are you\t1.0 fine thanks"
    assert parse_train_line(line) == [Turn("hi there", 0.0), Turn("how are you", 1.0), Turn("fine thanks", 1.0)]


def test_train_tsv_round_trip(tmp_path):
    sessions = [
        [Turn("what's up?", 0.0), Turn("not much :) you?", 1.0), Turn("same", 1.0)],
        [Turn("a b c", 1.0), Turn("d", 0.0)],
        [Turn("tabs\tand\nnewlines   fold", 0.0), Turn("ok", 1.0)],
    ]
    path = tmp_path / "train.tsv"
    assert write_train_tsv(path, sessions) == 3
    back = read_train_tsv(path)
    assert back[:2] == sessions[:2]
    assert back[2][0].text == "tabs and newlines fold"  # whitespace folded, structure kept
    assert path.read_text().count("\n") == 3


@pytest.mark.parametrize(
    "bad, message",
    [
        ("only one column", "2 tab-separated columns"),
        ("0.0 a\t1.0 b\textra", "2 tab-separated columns"),
        ("x a EOS 1.0 b\t1.0 c", "does not start with a weight"),
        ("\t1.0 c", "empty source"),
    ],
)
def test_malformed_train_rows_name_file_and_line(tmp_path, bad, message):
    path = tmp_path / "bad.tsv"
    path.write_text("0.0 fine\t1.0 row\n\n" + bad + "\n")
    with pytest.raises(LegacyFormatError, match=message) as err:
        read_train_tsv(path)
    assert str(err.value).startswith(f"{path}:3:")
    assert err.value.line_no == 3


def test_train_line_refuses_separator_word_and_single_turns():
    with pytest.raises(ValueError, match="EOS"):
        format_train_line(["a EOS b", "c"])
    with pytest.raises(ValueError, match="at least one source turn"):
        format_train_line(["only"])


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_train_tsv(tmp_path / "nope.tsv")
    with pytest.raises(FileNotFoundError, match="refs.txt"):
        read_refs(tmp_path / "refs.txt")


def test_refs_round_trip_seed_and_dstc_shapes(tmp_path):
    path = tmp_path / "test.refs.txt"
    rows = [
        ("hi there EOS how are you", [(1.0, "fine"), (0.5, "good, you?")]),
        ("3f2a9c", ["plain string ref", "another"]),
    ]
    assert write_refs(path, rows) == 2
    assert path.read_text().splitlines()[0] == "hi there EOS how are you\t1|fine\t0.5|good, you?"
    back = read_refs(path)
    key, refs = back[0]
    assert key == "hi there EOS how are you" and refs == [(1.0, "fine"), (0.5, "good, you?")]
    assert back[0].context_turns == ["hi there", "how are you"]
    assert back[1].texts == ["plain string ref", "another"]
    # a reference text may itself contain '|': only the first one separates the score
    path.write_text("k\t1.0|a|b\n")
    assert read_refs(path)[0].texts == ["a|b"]


@pytest.mark.parametrize(
    "bad, message",
    [("key only", "at least one reference"), ("k\tno score here", "no '<score>|' prefix"), ("k\tx|ref", "not a number")],
)
def test_malformed_refs_rows_name_file_and_line(tmp_path, bad, message):
    path = tmp_path / "refs.txt"
    path.write_text("k\t1.0|ok\n" + bad + "\n")
    with pytest.raises(LegacyFormatError, match=message) as err:
        read_refs(path)
    assert str(err.value).startswith(f"{path}:2:")
