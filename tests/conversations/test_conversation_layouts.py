"""Every layout in every file type it makes sense for gives the same dialogues, weights and roles; the
detection line says what was found; flags and LLaMA-Factory / axolotl mappings override detection."""

from __future__ import annotations

import json

import pytest
from conversation_helpers import as_tuples, expected, layout_rows, write_rows

from dialogpt.conversations import (
    ConversationError,
    ConversationOptions,
    from_axolotl,
    from_llamafactory,
    load_conversations,
)

CASES = [(layout, suffix) for layout in ("messages", "sharegpt", "turns", "strings")
         for suffix in (".jsonl", ".json", ".lines.json", ".csv", ".parquet", ".arrow")]
CASES += [(layout, suffix) for layout in ("prompt_completion", "context_response", "speaker_table")
          for suffix in (".jsonl", ".json", ".csv", ".parquet", ".arrow")]
FILE_TYPE = {".jsonl": "jsonl", ".json": "json", ".lines.json": "json", ".csv": "csv", ".parquet": "parquet",
             ".arrow": "arrow"}


@pytest.mark.parametrize("layout, suffix", CASES)
def test_each_layout_and_file_type_reads_the_same_dialogues(tmp_path, layout, suffix):
    path = write_rows(layout_rows(layout), tmp_path / f"chats{suffix}")
    ds, report = load_conversations(files=[str(path)])
    assert report.layout == layout and report.file_type == FILE_TYPE[suffix]
    want = expected(layout)
    assert as_tuples(ds) == want
    assert (report.dialogues, report.turns, report.skipped) == (2, sum(len(t) for _, t in want), {})
    if layout == "speaker_table":  # the raw speaker names are kept; roles of characters are unknown ("")
        assert [t["speaker"] for t in ds[0]["turns"]] == ["ALICE", "BOB", "ALICE", "BOB"]
    elif layout == "sharegpt":
        assert [t["speaker"] for t in ds[1]["turns"]] == ["human", "gpt"]


def test_the_detection_line_says_layout_keys_roles_counts_skips_and_system_messages(tmp_path):
    rows = [{"conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "hi"},
                               {"from": "gpt", "value": "hello"}, {"from": "human", "value": "bye"}]},
            {"conversations": [{"from": "human", "value": "alone"}]},
            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "  "},
                               {"from": "gpt", "value": "a"}]}]
    path = write_rows(rows, tmp_path / "chats.json")
    ds, report = load_conversations(files=[str(path)])
    assert report.describe() == (
        f"{path}: layout sharegpt (column 'conversations', role 'from', text 'value'; gpt->assistant, "
        "human->user, system->system): 2 dialogues, 5 turns; skipped 1 dialogue (too_few_turns 1), "
        "1 turn (empty_turn 1); 1 system message dropped")
    d = report.as_dict()
    assert d["source_format"] == "sharegpt" and d["skipped"] == {"too_few_turns": 1, "empty_turn": 1}
    assert d["columns_used"] == {"dialogue_column": "conversations", "role_key": "from", "content_key": "value"}
    assert (d["skipped_dialogues"], d["skipped_turns"], d["system_messages"]) == (1, 1, 1)
    # consecutive turns of one speaker stay separate turns
    assert [(t["text"], t["role"]) for t in ds[1]["turns"]] == [("q", "user"), ("a", "assistant")]


def test_system_messages_dropped_or_kept_as_context_turns(tmp_path):
    rows = [{"messages": [{"role": "system", "content": "you are kind"}, {"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "hello"}]},
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "only one"}]}]
    path = write_rows(rows, tmp_path / "sys.jsonl")
    ds, rep = load_conversations(files=[str(path)])
    assert [[t["text"] for t in r["turns"]] for r in ds] == [["hi", "hello"]]
    assert (rep.system_messages, rep.skipped) == (2, {"too_few_turns": 1})  # system turns do not count
    ds, rep = load_conversations(files=[str(path)], options=ConversationOptions(system_messages="context"))
    assert [(t["text"], t["weight"], t["role"]) for t in ds[0]["turns"]] == [
        ("you are kind", 0.0, "system"), ("hi", 1.0, "user"), ("hello", 1.0, "assistant")]
    assert rep.describe().endswith("2 system messages kept as context turns") and len(ds) == 1


def test_content_parts_and_untrained_marks(tmp_path):
    rows = [{"messages": [
        {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}},
                                     {"type": "text", "text": "at this"}]},
        {"role": "assistant", "content": "nice", "trainable": False},
        {"role": "user", "content": "thanks", "weight": 0},
        {"role": "assistant", "content": "welcome"}]}]
    ds, rep = load_conversations(files=[str(write_rows(rows, tmp_path / "parts.jsonl"))])
    assert [(t["text"], t["weight"]) for t in ds[0]["turns"]] == [
        ("look\nat this", 1.0), ("nice", 0.0), ("thanks", 0.0), ("welcome", 1.0)]
    assert rep.skipped == {"non_text_part": 1}


def test_column_key_and_role_flags_override_detection(tmp_path):
    rows = [{"session": [{"who": "Agent", "says": "how can I help"}, {"who": "Customer", "says": "my bill"},
                         {"who": "Agent", "says": "let me look"}]}]
    path = write_rows(rows, tmp_path / "support.jsonl")
    with pytest.raises(ConversationError, match=r"no dialogue layout recognised in its columns \[session "
                                                r"\(list_dict\)\]; accepted layouts: messages: .*speaker_table"):
        load_conversations(files=[str(path)])
    opts = ConversationOptions(dialogue_column="session", role_key="who", content_key="says",
                               user_roles="customer", assistant_roles=("agent",))
    ds, rep = load_conversations(files=[str(path)], options=opts)
    assert [(t["role"], t["speaker"]) for t in ds[0]["turns"]] == [
        ("assistant", "Agent"), ("user", "Customer"), ("assistant", "Agent")]
    assert rep.layout == "messages" and "Agent->assistant, Customer->user" in rep.describe()
    # a forced layout that the column does not hold names the column and what it holds
    with pytest.raises(ConversationError, match=r"column 'session' holds \[\{who, says\}\], which is not the "
                                                r"strings layout"):
        load_conversations(files=[str(path)], options=ConversationOptions(layout="strings", dialogue_column="session"))
    # a default role value given to the other side moves there
    opts = ConversationOptions(user_roles="bot")
    assert opts.role_map()["bot"] == "user" and "bot" not in opts.role_sides()["assistant"]
    with pytest.raises(ConversationError, match="given to both --user_roles and --assistant_roles"):
        ConversationOptions(user_roles="a,b", assistant_roles="B")


def test_llamafactory_and_axolotl_mappings(tmp_path):
    rows = [{"dialog": [{"speaker": "Q", "txt": "who are you"}, {"speaker": "A", "txt": "a bot"},
                        {"speaker": "S", "txt": "ignore"}]}]
    path = write_rows(rows, tmp_path / "custom.json")
    entry = {"file_name": "custom.json", "formatting": "sharegpt", "columns": {"messages": "dialog"},
             "tags": {"role_tag": "speaker", "content_tag": "txt", "user_tag": "Q", "assistant_tag": "A",
                      "system_tag": "S"}}
    axolotl = {"path": "custom.json", "type": "chat_template", "field_messages": "dialog",
               "message_property_mappings": {"role": "speaker", "content": "txt"},
               "roles": {"user": ["Q"], "assistant": ["A"], "system": ["S"]}}
    for opts in (from_llamafactory(entry), from_axolotl(axolotl)):
        ds, rep = load_conversations(files=[str(path)], options=opts)
        assert [(t["text"], t["role"]) for t in ds[0]["turns"]] == [("who are you", "user"), ("a bot", "assistant")]
        assert rep.system_messages == 1
    with pytest.raises(ConversationError, match="only LLaMA-Factory's sharegpt formatting"):
        from_llamafactory({"formatting": "alpaca"})


def test_pairs_with_message_lists_and_a_context_of_several_turns(tmp_path):
    rows = [{"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
             "completion": [{"role": "assistant", "content": "hey"}]}]
    ds, rep = load_conversations(files=[str(write_rows(rows, tmp_path / "trl.jsonl"))])
    assert [(t["text"], t["weight"], t["role"]) for t in ds[0]["turns"]] == [("hi", 0.0, "user"), ("hey", 1.0, "assistant")]
    assert rep.layout == "prompt_completion" and rep.system_messages == 1
    rows = [{"src": "a EOS b EOS c", "tgt": "d"}]
    opts = ConversationOptions(layout="context_response", context_column="src", response_column="tgt")
    ds, rep = load_conversations(files=[str(write_rows(rows, tmp_path / "dstc.csv"))], options=opts)
    assert [(t["text"], t["weight"], t["role"]) for t in ds[0]["turns"]] == [
        ("a", 0.0, "user"), ("b", 0.0, "assistant"), ("c", 0.0, "user"), ("d", 1.0, "assistant")]
    assert rep.columns_used == {"context_column": "src", "response_column": "tgt"}


def test_speaker_table_without_an_id_column_is_one_dialogue_per_file(tmp_path):
    a = write_rows([{"character": "HAMLET", "line": "to be"}, {"character": "HORATIO", "line": "my lord"},
                    {"character": "HAMLET", "line": "or not"}], tmp_path / "act1.csv")
    b = write_rows([{"character": "OPHELIA", "line": "good my lord"}, {"character": "HAMLET", "line": "ay"}],
                   tmp_path / "act2.csv")
    ds, rep = load_conversations(files=[str(a), str(b)])
    assert list(ds["dialogue_id"]) == ["act1", "act2"]
    assert [t["speaker"] for t in ds[0]["turns"]] == ["HAMLET", "HORATIO", "HAMLET"]
    assert rep.describe().startswith(f"{a} (+1 more): layout speaker_table (text 'line', speaker 'character', "
                                     "one dialogue per file; 3 speakers): 2 dialogues, 5 turns")


def test_ids_from_the_file_or_stem_and_index_and_made_unique(tmp_path):
    a = write_rows([{"dialog": ["a", "b"]}, {"dialog": ["c", "d"]}], tmp_path / "one.jsonl")
    b = write_rows([{"id": 7, "dialog": ["e", "f"]}, {"id": 7, "dialog": ["g", "h"]}], tmp_path / "two.jsonl")
    ds, rep = load_conversations(files=[str(a)])
    assert list(ds["dialogue_id"]) == ["one:0", "one:1"]
    ds, rep = load_conversations(files=[str(b)])
    assert list(ds["dialogue_id"]) == ["7", "7#2"] and rep.renamed_ids == 1 and "suffixed '#k'" in rep.describe()
    with pytest.raises(ConversationError, match="give files of one layout"):
        load_conversations(files=[str(a), str(write_rows([{"messages": [{"role": "user", "content": "x"}]}],
                                                         tmp_path / "three.jsonl"))])


def test_the_seed_tsv_is_the_turns_layout_with_its_weights(tmp_path):
    from dialogpt.legacy_tsv import write_train_tsv

    path = tmp_path / "train.tsv"
    write_train_tsv(path, [[("hi", 0.0), ("hello", 1.0), ("bye", 1.0)], [("q", 1.0), ("a", 0.0)]])
    ds, rep = load_conversations(files=[str(path)])
    assert (rep.layout, rep.file_type) == ("turns", "tsv")
    assert as_tuples(ds) == [("train:0", [("hi", 0.0, "assistant"), ("hello", 1.0, "user"), ("bye", 1.0, "assistant")]),
                             ("train:1", [("q", 1.0, "user"), ("a", 0.0, "assistant")])]


def test_csv_cells_keep_na_and_none_as_text(tmp_path):
    path = tmp_path / "script.csv"
    path.write_text("conversation_id,speaker,text\n1,A,NA\n1,B,None\n", encoding="utf-8")
    ds, _ = load_conversations(files=[str(path)])
    assert [t["text"] for t in ds[0]["turns"]] == ["NA", "None"]


def test_a_legacy_sequence_of_dicts_reads_as_a_list_of_messages(tmp_path):
    import datasets

    f = datasets.Features({"messages": datasets.Sequence({"role": datasets.Value("string"),
                                                          "content": datasets.Value("string")}),
                           "turns": datasets.Sequence({"text": datasets.Value("string"),
                                                       "weight": datasets.Value("float32")})})
    ds = datasets.Dataset.from_dict({"messages": [{"role": ["user", "assistant"], "content": ["a", "b"]}],
                                     "turns": [{"text": ["c", "d"], "weight": [0.0, 1.0]}]}, features=f)
    ds.to_parquet(str(tmp_path / "legacy.parquet"))
    for opts, want in ((ConversationOptions(dialogue_column="messages"), [("a", 1.0, "user"), ("b", 1.0, "assistant")]),
                       (ConversationOptions(), [("c", 0.0, "user"), ("d", 1.0, "assistant")])):
        got, rep = load_conversations(files=[str(tmp_path / "legacy.parquet")], options=opts)
        assert as_tuples(got)[0][1] == want


def test_the_unrecognised_error_names_at_most_twenty_columns(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({f"uuid-{i}": {"messages": []} for i in range(500)}) + "\n")
    with pytest.raises(ConversationError, match=r"uuid-19 \(other\), \.\.\. 480 more\]; accepted layouts"):
        load_conversations(files=[str(path)])
