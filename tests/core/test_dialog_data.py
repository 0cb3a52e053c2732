"""The shared dataset loader: splits, saved folders and one-line errors naming the flag."""

from __future__ import annotations

import datasets
import pytest

from dialogpt.dialog_data import DialogDataError, load_dialog_data, load_dialog_split

ROWS = [{"turns": [{"text": "hi", "weight": 0.0}, {"text": "hello", "weight": 1.0}]}]


def _parquet_folder(root, splits=("train", "test")):
    (root / "data").mkdir(parents=True)
    for split in splits:
        datasets.Dataset.from_list(ROWS).to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def test_parquet_folder_and_saved_folder_give_the_same_rows(tmp_path):
    folder = _parquet_folder(tmp_path / "built")
    saved = tmp_path / "saved"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(saved))
    assert load_dialog_split(str(folder), "test")[0] == load_dialog_split(str(saved), "test")[0] == ROWS[0]
    assert sorted(load_dialog_data(str(folder))) == ["test", "train"]


def test_missing_split_lists_what_exists(tmp_path):
    folder = _parquet_folder(tmp_path / "built", splits=("train",))
    with pytest.raises(DialogDataError, match=r"^--input .*: no split 'test' \(has train\)$"):
        load_dialog_split(str(folder), "test", flag="--input")


def test_missing_path_and_unrelated_folder_are_one_line(tmp_path):
    with pytest.raises(DialogDataError, match="no such file or dataset directory"):
        load_dialog_data(str(tmp_path / "nope"))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.bin").write_bytes(b"\x00\x01")
    with pytest.raises(DialogDataError) as e:
        load_dialog_data(str(junk), flag="--refs")
    assert "\n" not in str(e.value) and str(e.value).startswith(f"--refs {junk}")


def test_a_split_without_turns_is_refused(tmp_path):
    root = tmp_path / "other"
    (root / "data").mkdir(parents=True)
    datasets.Dataset.from_list([{"x": 1}]).to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    with pytest.raises(DialogDataError, match="has no 'turns' column"):
        load_dialog_split(str(root), "train")
