"""Sources other than single files: folders split by file name, the Reddit build, ``save_to_disk``, a Hub id
with a config (loopback mock Hub); ``split_dialogues`` holds out whole dialogues."""

from __future__ import annotations

import random
import uuid

import pytest
from conversation_helpers import layout_rows, write_rows

from dialogpt.conversations import ConversationError, ConversationOptions, load_conversations, split_dialogues


def test_a_folder_of_jsonl_files_is_split_by_file_name(tmp_path):
    write_rows(layout_rows("messages"), tmp_path / "chats" / "train.jsonl")
    write_rows(layout_rows("messages")[:1], tmp_path / "chats" / "validation.jsonl")
    (tmp_path / "chats" / "README.md").write_text("# my chats\n")
    ds, rep = load_conversations(dataset=str(tmp_path / "chats"), split="validation")
    assert (len(ds), rep.file_type, rep.layout) == (1, "folder", "messages")
    assert list(ds["dialogue_id"]) == ["d1"]
    with pytest.raises(ConversationError, match=r"no split 'test' \(has train, validation\)"):
        load_conversations(dataset=str(tmp_path / "chats"), split="test", flag="--dataset")
    # a file given as --dataset is read as a file
    ds, rep = load_conversations(dataset=str(tmp_path / "chats" / "train.jsonl"))
    assert (len(ds), rep.file_type) == (2, "jsonl")


def test_the_reddit_build_loads_with_its_weights_and_ids(tmp_path):
    import datasets

    from dialogpt_dataset.build import BuildConfig, build_dataset

    build_dataset(BuildConfig(output_dir=str(tmp_path / "rd"), size="dummy", quiet=True))
    raw = datasets.load_dataset(str(tmp_path / "rd"), split="validation")
    ds, rep = load_conversations(dataset=str(tmp_path / "rd"), split="validation", flag="--dataset")
    assert (rep.layout, rep.file_type, rep.columns_used) == ("turns", "folder",
                                                            {"dialogue_column": "turns", "id_column": "id"})
    assert len(ds) == len(raw) and rep.skipped == {} and rep.turns == sum(len(t) for t in raw["turns"])
    assert list(ds["dialogue_id"]) == list(raw["id"])
    for got, want in zip(ds["turns"], raw["turns"]):
        assert [(t["text"], t["weight"]) for t in got] == [(t["text"], t["weight"]) for t in want]
        n = len(got)  # roles alternate back from the last turn, as chat_format.turns_to_messages
        assert [t["role"] for t in got] == ["assistant" if (n - 1 - i) % 2 == 0 else "user" for i in range(n)]
    assert any(t["weight"] == 0.0 for r in ds["turns"] for t in r)  # weights are not all 1
    # the test split holds single-turn contexts: too few turns to train on, but readable with min_turns=1
    ds, rep = load_conversations(dataset=str(tmp_path / "rd"), split="test", options=ConversationOptions(min_turns=1))
    assert len(ds) == len(datasets.load_dataset(str(tmp_path / "rd"), split="test"))
    # the Arrow shortcut took these batches, and gives what the Python rules give
    _same_as_python_rules(raw.data.table, "id", expect_shortcut=True)
    # save_to_disk folders go through the same path
    datasets.DatasetDict({"train": raw}).save_to_disk(str(tmp_path / "saved"))
    ds2, _ = load_conversations(dataset=str(tmp_path / "saved"))
    assert list(ds2["dialogue_id"]) == list(raw["id"])


def _same_as_python_rules(table, id_col, expect_shortcut: bool, min_turns: int = 2):
    import pyarrow as pa

    from dialogpt.conversations.detect import Layout
    from dialogpt.conversations.fast_turns import _clean_turns, turns_batch
    from dialogpt.conversations.normalize import normalize_batch, output_features

    layout, opts = Layout("turns", dialogue_column="turns", id_column=id_col), ConversationOptions(min_turns=min_turns)
    assert (_clean_turns(table, "turns", id_col, min_turns) is not None) == expect_shortcut
    idx = list(range(5, 5 + len(table)))
    fast = turns_batch(table, idx, layout, opts, "src", "p")
    slow = normalize_batch(table.to_pydict(), idx, layout, opts, "src", "p")
    assert fast.to_pydict() == pa.Table.from_pydict(slow, schema=output_features().arrow_schema).to_pydict()


@pytest.mark.parametrize("texts, expect_shortcut", [
    (["fine", "also fine"], True), (["fine", " padded"], False), (["fine", "\x1c"], False), (["fine", ""], False),
    (["just one"], False), (["ok", "\u3000wide space"], False)])
def test_the_arrow_shortcut_for_turns_equals_the_python_rules(texts, expect_shortcut):
    import datasets

    rows = [{"id": "a", "turns": [{"text": "x y", "weight": 0.0, "score": 1}, {"text": "z", "weight": 1.0, "score": 2},
                                  {"text": "w", "weight": 0.5, "score": 3}]},
            {"id": None, "turns": [{"text": t, "weight": None, "score": 1} for t in texts]},
            {"id": "", "turns": [{"text": "b", "weight": 1.0, "score": 1}, {"text": "c", "weight": 1.0, "score": 1}]}]
    table = datasets.Dataset.from_list(rows).data.table
    _same_as_python_rules(table, "id", expect_shortcut)
    _same_as_python_rules(table.drop_columns(["id"]), None, expect_shortcut)


def test_a_hub_dataset_with_a_config_and_split(mock_hub, tmp_path):
    import datasets

    repo = f"org/chats-{uuid.uuid4().hex[:8]}"
    rows = layout_rows("sharegpt")
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[1:])}) \
        .push_to_hub(repo, config_name="support")
    ds, rep = load_conversations(dataset=repo, dataset_config="support", split="test", flag="--dataset",
                                 cache_dir=str(tmp_path / "cache"))
    assert (rep.file_type, rep.layout, rep.source) == ("hub", "sharegpt", f"{repo} (support) [test]")
    assert [[t["text"] for t in r] for r in ds["turns"]] == [["what is up ?", "not much"]]
    with pytest.raises(ConversationError, match=rf"--dataset {repo}: cannot load it as a dataset"):
        load_conversations(dataset=repo, dataset_config="nope", flag="--dataset", cache_dir=str(tmp_path / "c2"))
    assert mock_hub.errors == []


def _dialogues(n: int, tmp_path):
    rows = [{"id": f"c{i}", "dialog": [f"turn {i} {k}" for k in range(2 + i % 3)]} for i in range(n)]
    return load_conversations(files=[str(write_rows(rows, tmp_path / f"many{n}.jsonl"))])[0]


def test_split_dialogues_holds_out_whole_dialogues_deterministically(tmp_path):
    ds = _dialogues(40, tmp_path)
    train, val = split_dialogues(ds, 10, seed=3)
    assert (len(train), len(val)) == (36, 4)
    assert set(train["dialogue_id"]).isdisjoint(val["dialogue_id"])
    assert sorted(list(train["dialogue_id"]) + list(val["dialogue_id"])) == sorted(ds["dialogue_id"])
    # each held-out dialogue comes whole (all its turns), and each side keeps the input order
    whole = {r["dialogue_id"]: r["turns"] for r in ds}
    assert all(r["turns"] == whole[r["dialogue_id"]] for r in val)
    assert list(train["dialogue_id"]) == [i for i in ds["dialogue_id"] if i in set(train["dialogue_id"])]
    # the choice depends on the ids and the seed, not on row order
    order = list(range(len(ds)))
    random.Random(0).shuffle(order)
    _, val2 = split_dialogues(ds.select(order), 10, seed=3)
    assert sorted(val2["dialogue_id"]) == sorted(val["dialogue_id"])
    _, val3 = split_dialogues(ds, 10, seed=4)
    assert sorted(val3["dialogue_id"]) != sorted(val["dialogue_id"])
    assert len(split_dialogues(ds, 0.1, seed=0)[1]) == 1  # at least one
    with pytest.raises(ConversationError, match="--validation_split_percentage must be between 0 and 100"):
        split_dialogues(ds, 100, seed=0)
    with pytest.raises(ConversationError, match="cannot give 1 to validation and keep one"):
        split_dialogues(ds.select([0]), 50, seed=0)
