"""The built dataset's ``messages`` column: roles from the right end, the weight-0 mask kept, and the
tokenizer's assistant-token mask over it equal to chat_format's labels."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dialogpt.chat_format import IGNORE_INDEX, encode_session, turns_to_messages
from dialogpt_dataset.messages import add_messages, messages_array


def _turns(*weights: float) -> list[dict]:
    return [{"text": f"t{i}", "weight": w, "score": 1} for i, w in enumerate(weights)]


def test_messages_array_matches_the_core_helper_on_sliced_and_chunked_tables():
    rows = [{"id": "a", "turns": _turns(1.0, 0.0, 1.0, 1.0)}, {"id": "b", "turns": _turns(1.0, 1.0)},
            {"id": "c", "turns": _turns(0.0, 1.0, 0.0)}]
    table = pa.concat_tables([pa.Table.from_pylist(rows[:1]), pa.Table.from_pylist(rows[1:])])
    assert table.column("turns").num_chunks == 2
    for t in (table, table.slice(1), table.slice(1, 1)):
        for context_only in (False, True):
            out = add_messages(t, context_only).to_pylist()
            assert [r["messages"] for r in out] == [
                turns_to_messages(r["turns"], last_role="user" if context_only else "assistant") for r in out]
    got = messages_array(table.column("turns"), context_only=False).to_pylist()[0]
    assert [m["role"] for m in got] == ["user", "assistant", "user", "assistant"]
    assert [m["trainable"] for m in got] == [False, False, True, True]  # first turn and the weight-0 turn


@pytest.mark.slow
def test_dummy_build_has_messages_beside_turns(tmp_path, tokenizer):
    import datasets

    from dialogpt_dataset.build import BuildConfig, build_dataset

    out = tmp_path / "rd"
    build_dataset(BuildConfig(output_dir=str(out), size="dummy", quiet=True))
    ds = datasets.load_dataset(str(out))
    assert ds["train"].column_names == ["id", "subreddit", "created_utc", "turns", "messages", "references"]
    n_weight0 = 0
    for split, last in (("train", "assistant"), ("validation", "assistant"), ("test", "user")):
        for row in ds[split]:
            assert row["messages"] == turns_to_messages(row["turns"], last_role=last), (split, row["id"])
            n_weight0 += sum(t["weight"] == 0.0 for t in row["turns"][1:])
    assert n_weight0 > 0  # the sample has offensive-word turns kept as context only
    # stock tooling over the column: apply_chat_template's assistant mask is exactly the training labels
    checked = 0
    for row in ds["train"]:
        if not any(t["weight"] == 0.0 for t in row["turns"][1:]) and checked > 20:
            continue
        out_ = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True)
        enc = encode_session(tokenizer, row["turns"], max_seq_length=None)
        assert list(out_["input_ids"]) == enc.input_ids
        assert list(out_["assistant_masks"]) == [int(y != IGNORE_INDEX) for y in enc.labels], row["id"]
        checked += 1
    assert checked > 20
