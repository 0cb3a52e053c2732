"""Bad input: every skip reason counted (turn or dialogue, as documented), --strict, malformed lines naming
file:line, unrecognised layouts listing the columns and the layouts accepted, empty inputs, bad options."""

from __future__ import annotations

import json

import pytest
from conversation_helpers import write_rows

from dialogpt.conversations import ConversationError, ConversationOptions, load_conversations

ROWS = [
    {"messages": [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "kept"}]},            # kept
    {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "a"},
                  {"role": "user", "content": "b"}]},                                          # empty_turn, kept
    {"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"},
                  {"role": "user", "content": "y"}]},                                     # non_string_turn, kept
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
                  {"role": "assistant", "content": "p"}, {"role": "user", "content": "q"}]},
    # ^ non_text_part, then the message has no text: empty_turn; kept
    {"messages": [{"role": "user", "content": "call"}, {"role": "tool", "content": "{}"},
                  {"role": "assistant", "content": "done"}]},                                # unknown_role, dropped
    {"messages": "not a list"},                                                            # not_a_dialogue, dropped
    {"messages": [{"role": "user", "content": "alone"}, {"role": "assistant", "content": ""}]},
    # ^ empty_turn, then too_few_turns: dropped
]


def test_every_skip_reason_is_counted_and_drops_what_the_docs_say(tmp_path):
    path = write_rows(ROWS, tmp_path / "bad.jsonl")
    ds, rep = load_conversations(files=[str(path)])
    assert rep.skipped == {"empty_turn": 3, "non_string_turn": 1, "non_text_part": 1, "unknown_role": 1,
                           "not_a_dialogue": 1, "too_few_turns": 1}
    assert [[t["text"] for t in r["turns"]] for r in ds] == [["fine", "kept"], ["a", "b"], ["x", "y"], ["p", "q"]]
    assert list(ds["dialogue_id"]) == ["bad:0", "bad:1", "bad:2", "bad:3"]
    assert (rep.dialogues, rep.turns, rep.skipped_dialogues, rep.skipped_turns) == (4, 8, 3, 4)
    assert "skipped 3 dialogues (not_a_dialogue 1, too_few_turns 1, unknown_role 1), 4 turns (empty_turn 3, " \
           "non_string_turn 1), 1 part (non_text_part 1)" in rep.describe()
    assert "tool->unknown" in rep.describe()


def test_a_speaker_row_without_a_dialogue_id_is_a_counted_skip(tmp_path):
    rows = [{"dialogue_id": "a", "speaker": "X", "text": "one"}, {"dialogue_id": "", "speaker": "Y", "text": "lost"},
            {"dialogue_id": "a", "speaker": "Y", "text": "two"}]
    ds, rep = load_conversations(files=[str(write_rows(rows, tmp_path / "t.csv"))])
    assert rep.skipped == {"missing_id": 1} and [t["text"] for t in ds[0]["turns"]] == ["one", "two"]


@pytest.mark.parametrize("row, reason", [
    (1, "empty_turn"), (2, "non_string_turn"), (3, "non_text_part"), (4, "unknown_role"), (5, "not_a_dialogue"),
    (6, "empty_turn")])
def test_strict_makes_the_first_skip_an_error_naming_file_line_and_reason(tmp_path, row, reason):
    path = write_rows([ROWS[0], ROWS[row]], tmp_path / "s.jsonl")
    with pytest.raises(ConversationError) as e:
        load_conversations(files=[str(path)], options=ConversationOptions(strict=True))
    msg = str(e.value)
    assert msg.startswith(f"{path}:2: ") and f"({reason}; --strict makes every skip an error)" in msg
    assert "\n" not in msg


def test_strict_names_the_row_of_a_typed_source(tmp_path):
    path = write_rows([{"dialog": ["a", "b"]}, {"dialog": ["only"]}], tmp_path / "s.parquet")
    with pytest.raises(ConversationError, match=rf"^{path} row 1: 1 turn\(s\) left, at least 2 needed "
                                                r"\(too_few_turns; --strict"):
        load_conversations(files=[str(path)], options=ConversationOptions(strict=True))


@pytest.mark.parametrize("name, text, message", [
    ("a.jsonl", '{"dialog": ["a", "b"]}\n\n{"dialog": ["c", "d"]\n', r"a.jsonl:3: malformed JSON line \("),
    ("b.json", '[\n {"dialog": ["a", "b"]},\n {"dialog": ["c", "d"]]\n]\n', r"b.json:3: malformed JSON \("),
    ("c.json", '[{"dialog": ["a", "b"]}\n {"dialog": ["c"]}]', r"c.json:2: malformed JSON \(expected ','"),
    ("d.json", '{"dialog": ["a", "b"]}\n[1, 2\n', r"d.json:2: malformed JSON line"),
    ("e.jsonl", '{"dialog": ["a", "b"]}\n"just a string"\n', r"e.jsonl:2: expected a JSON object"),
    ("f.csv", 'speaker,text\nA,hi\nB,hello,extra\n', r"f.csv:3: 3 fields, but the header has 2 \(speaker, text\)"),
    ("g.csv", 'speaker,text\nA,"unclosed\n', r"g.csv:\d+: malformed CSV"),
    ("h.tsv", '0.0 hi\t1.0 there\nno tab here\n', r"h.tsv:2: expected 2 tab-separated columns"),
])
def test_a_malformed_line_is_an_error_naming_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConversationError, match=message) as e:
        load_conversations(files=[str(path)])
    assert "\n" not in str(e.value)


def test_a_byte_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"dialog": ["a", "b"]}\n{"dialog": ["caf\xe9", "b"]}\n')
    with pytest.raises(ConversationError, match=r"x.jsonl:2: not UTF-8"):
        load_conversations(files=[str(path)])


def test_unrecognised_layout_lists_the_columns_and_the_layouts(tmp_path):
    path = write_rows([{"title": "x", "score": 3}], tmp_path / "posts.jsonl")
    with pytest.raises(ConversationError) as e:
        load_conversations(files=[str(path)], flag="--train_file")
    msg = str(e.value)
    assert msg.startswith(f"{path}: no dialogue layout recognised in its columns [title (str), score (other)]")
    for layout in ("messages", "sharegpt", "turns", "strings", "prompt_completion", "context_response",
                   "speaker_table"):
        assert f"{layout}: " in msg
    assert msg.endswith("name yours with --layout and the column flags")


def test_empty_inputs_and_zero_dialogues_are_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ConversationError, match=r"empty.jsonl: no rows \(the file is empty\)"):
        load_conversations(files=[str(empty)])
    header = tmp_path / "header.csv"
    header.write_text("speaker,text\n")
    with pytest.raises(ConversationError, match="no rows"):
        load_conversations(files=[str(header)])
    short = write_rows([{"dialog": ["one"]}, {"dialog": []}], tmp_path / "short.jsonl")
    with pytest.raises(ConversationError, match=r"^--train_file .*short.jsonl: no dialogues to read \(skipped 2 "
                                                r"dialogues \(too_few_turns 2\)\)$"):
        load_conversations(files=[str(short)])


def test_bad_files_and_options_name_the_flag(tmp_path):
    with pytest.raises(ConversationError, match=r"^--eval_file .*nope.jsonl: no such file$"):
        load_conversations(files=[str(tmp_path / "nope.jsonl")], flag="--eval_file")
    txt = tmp_path / "notes.txt"
    txt.write_text("hi\n")
    with pytest.raises(ConversationError, match=r"notes.txt: unknown file type '.txt' \(accepted: .jsonl, .json"):
        load_conversations(files=[str(txt)])
    a = write_rows([{"dialog": ["a", "b"]}], tmp_path / "a.jsonl")
    with pytest.raises(ConversationError, match="give files of one type, got csv, jsonl"):
        load_conversations(files=[str(a), str(write_rows([{"speaker": "x", "text": "y"}], tmp_path / "b.csv"))])
    with pytest.raises(ConversationError, match="give dialogue files or a dataset"):
        load_conversations(files=[str(a)], dataset=str(tmp_path))
    with pytest.raises(ConversationError, match="--layout must be one of messages, sharegpt"):
        ConversationOptions(layout="alpaca")
    with pytest.raises(ConversationError, match="--system_messages must be drop or context"):
        ConversationOptions(system_messages="keep")
    with pytest.raises(ConversationError, match=r"--role_key 'speaker' is not a key of column 'messages'"):
        load_conversations(files=[str(write_rows([{"messages": [{"role": "user", "content": "x"}]}],
                                                 tmp_path / "m.jsonl"))],
                           options=ConversationOptions(role_key="speaker"))
    with pytest.raises(ConversationError, match=r"--text_column 'utterance' is not a column \(columns: speaker, "
                                                r"text\)"):
        load_conversations(files=[str(tmp_path / "b.csv")], options=ConversationOptions(text_column="utterance"))
    assert json.loads(a.read_text().splitlines()[0]) == {"dialog": ["a", "b"]}
