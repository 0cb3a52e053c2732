"""Real chat corpora from the package index that no one here wrote: their counts, computed here straight from
the packages' own files, equal what the reader reports (and the shipped sample is what the converter writes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogpt.conversations import load_conversations
from dialogpt.conversations.corpora import (
    chatterbot_dialogues,
    chatterbot_messages,
    chitchat_data,
    chitchat_rows,
    write_jsonl,
)

DATA = Path(__file__).resolve().parents[2] / "dialogpt" / "data"


def _good(x) -> bool:
    return isinstance(x, str) and bool(x.strip())


def test_chatterbot_corpus_english_messages_jsonl_loads_with_its_yaml_counts(tmp_path):
    cc = pytest.importorskip("chatterbot_corpus", reason="chatterbot-corpus is not installed (pip install -e '.[dev]')")
    import yaml

    convs = []
    for p in sorted((Path(cc.__file__).parent / "data" / "english").glob("*.yml")):
        convs.extend(yaml.load(p.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                     ["conversations"])
    lists = [c for c in convs if isinstance(c, list)]
    kept = [c for c in lists if sum(map(_good, c)) >= 2]
    path = tmp_path / "chatterbot.jsonl"
    assert write_jsonl(chatterbot_messages(chatterbot_dialogues()), path) == len(convs) > 2000
    ds, rep = load_conversations(files=[str(path)])
    assert rep.layout == "messages" and rep.dialogues == len(kept) and len(ds) == len(kept)
    assert rep.turns == sum(sum(map(_good, c)) for c in kept)
    expected_skips = {"not_a_dialogue": len(convs) - len(lists), "too_few_turns": len(lists) - len(kept),
                      "empty_turn": sum(1 for c in lists for x in c if isinstance(x, str) and not x.strip()),
                      "non_string_turn": sum(1 for c in lists for x in c if not isinstance(x, str))}
    assert rep.skipped == {k: v for k, v in expected_skips.items() if v}
    assert rep.skipped.get("not_a_dialogue") == 1  # trivia.yml's one-string conversation, counted, not hidden
    first = next(c for c in kept if len(c) > 2)
    row = next(r for r in ds if [t["text"] for t in r["turns"]] == [x.strip() for x in first])
    assert [t["role"] for t in row["turns"]][:3] == ["user", "assistant", "user"]


def test_the_shipped_chatterbot_sample_is_reproducible_and_licensed(tmp_path):
    pytest.importorskip("chatterbot_corpus", reason="chatterbot-corpus is not installed (pip install -e '.[dev]')")
    path = tmp_path / "sample.jsonl"
    write_jsonl(chatterbot_messages(chatterbot_dialogues(exclude=("tech_support", "coding"))), path)
    assert path.read_bytes() == (DATA / "chatterbot_english.jsonl").read_bytes()
    note = (DATA / "chatterbot_english.LICENSE.md").read_text(encoding="utf-8")
    assert "chatterbot-corpus 1.3.3" in note and "Copyright (c) 2017, Gunther Cox" in note
    ds, rep = load_conversations(files=[str(DATA / "chatterbot_english.jsonl")])
    assert (rep.dialogues, rep.skipped) == (791, {"not_a_dialogue": 1})


@pytest.fixture(scope="module")
def chitchat():
    """The installed chitchat-dataset's conversations (40 MB of JSON: parsed once)."""
    pytest.importorskip("chitchat_dataset", reason="chitchat-dataset is not installed (pip install -e '.[dev]')")
    return chitchat_data()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_chitchat_dataset_as_a_speaker_table_loads_with_its_own_counts(tmp_path, suffix, chitchat):
    assert len(chitchat) == 7168  # the package README's count
    data = list(chitchat.items())[:300]
    utterances = {cid: [u for burst in c["messages"] for u in burst] for cid, c in data}
    good = {cid: [u for u in us if _good(u["text"])] for cid, us in utterances.items()}
    kept = {cid: us for cid, us in good.items() if len(us) >= 2}
    rows = chitchat_rows(chitchat, limit=300)
    path = tmp_path / f"chitchat{suffix}"
    if suffix == ".jsonl":
        write_jsonl(rows, path)
    else:
        import datasets

        datasets.Dataset.from_list(rows).to_parquet(str(path))
    ds, rep = load_conversations(files=[str(path)])
    assert rep.layout == "speaker_table"
    assert rep.columns_used == {"id_column": "conversation_id", "speaker_column": "sender", "text_column": "text"}
    assert list(ds["dialogue_id"]) == list(kept)  # grouped in file order
    assert rep.turns == sum(len(us) for us in kept.values())  # one turn per utterance: a burst stays separate
    empty = sum(len(us) - len(good[cid]) for cid, us in utterances.items())
    assert rep.skipped == {k: v for k, v in {"empty_turn": empty, "too_few_turns": len(good) - len(kept)}.items() if v}
    cid = next(iter(kept))
    assert [(t["text"], t["speaker"], t["role"]) for t in ds[0]["turns"]] == [
        (u["text"].strip(), u["sender"], "") for u in kept[cid]]
