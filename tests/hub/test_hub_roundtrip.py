"""Datasets make the round trip through the mock Hub: ``push_to_hub`` / folder upload, then ``load_dataset``.

This is how the dataset builder publishes (Parquet shards + a README whose YAML ``configs:`` names the
splits) and how training reads it back, so the nested ``turns`` column (list of ``{text, weight}``) and the
multi-reference ``references`` column must survive exactly, in regular and streaming mode.
"""

from __future__ import annotations

import uuid

import pytest

TRAIN_ROWS = [
    {"id": "t3_a", "turns": [{"text": "anyone here?", "weight": 0.0}, {"text": "yes, hi!", "weight": 1.0}],
     "references": ["yes, hi!"]},
    {"id": "t3_b", "turns": [{"text": "what's up", "weight": 0.0}, {"text": "not much", "weight": 1.0},
                             {"text": "cool", "weight": 1.0}],
     "references": ["cool", "nice", "ok then"]},
    {"id": "t3_c", "turns": [{"text": "é ü 中文 🙂", "weight": 0.0}, {"text": "unicode ok", "weight": 0.5}],
     "references": []},
]
TEST_ROWS = [
    {"id": "t3_d", "turns": [{"text": "test ctx", "weight": 0.0}, {"text": "test resp", "weight": 1.0}],
     "references": ["test resp", "other"]},
]


def _repo(name: str) -> str:
    return f"org/{name}-{uuid.uuid4().hex[:8]}"


def _features():
    from datasets import Features, List, Value

    return Features({
        "id": Value("string"),
        "turns": List({"text": Value("string"), "weight": Value("float32")}),
        "references": List(Value("string")),
    })


def _dataset_dict():
    from datasets import Dataset, DatasetDict

    return DatasetDict({
        "train": Dataset.from_list(TRAIN_ROWS, features=_features()),
        "test": Dataset.from_list(TEST_ROWS, features=_features()),
    })


def test_datasetdict_push_to_hub_then_load_dataset(mock_hub, tmp_path):
    from datasets import load_dataset

    repo_id = _repo("reddit-dialog")  # unique: the hub is shared by every test of this worker
    _dataset_dict().push_to_hub(repo_id)
    files = mock_hub.repo_files("dataset", repo_id)
    assert "README.md" in files and any(p.endswith(".parquet") for p in files)

    loaded = load_dataset(repo_id, cache_dir=str(tmp_path / "cache"))
    assert sorted(loaded) == ["test", "train"]
    assert loaded["train"].to_list() == TRAIN_ROWS
    assert loaded["test"].to_list() == TEST_ROWS
    assert loaded["train"].features == _features()

    # Pushing again replaces the split's shards (datasets deletes the old ones in the same commit).
    from datasets import Dataset

    Dataset.from_list(TRAIN_ROWS[:1], features=_features()).push_to_hub(repo_id, split="train")
    again = load_dataset(repo_id, split="train", cache_dir=str(tmp_path / "cache2"))
    assert again.to_list() == TRAIN_ROWS[:1]
    assert load_dataset(repo_id, split="test", cache_dir=str(tmp_path / "cache2")).to_list() == TEST_ROWS
    assert mock_hub.errors == []


def test_load_dataset_streaming(mock_hub):
    from datasets import load_dataset

    repo_id = _repo("reddit-dialog-stream")
    _dataset_dict().push_to_hub(repo_id)
    streamed = load_dataset(repo_id, streaming=True)
    assert sorted(streamed) == ["test", "train"]
    assert list(streamed["train"]) == TRAIN_ROWS
    assert list(streamed["test"]) == TEST_ROWS
    assert mock_hub.errors == []


README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
  - split: validation
    path: data/valid-*.parquet
- config_name: multiref
  data_files:
  - split: test
    path: multiref/test.parquet
---
# Reddit dialogue (test fixture)
"""


def test_folder_upload_with_yaml_configs(mock_hub, tmp_path):
    """Parquet files + README ``configs:`` uploaded as a folder: the layout our dataset builder publishes."""
    from datasets import Dataset, load_dataset
    from huggingface_hub import HfApi

    root = tmp_path / "export"
    (root / "data").mkdir(parents=True)
    (root / "multiref").mkdir()
    Dataset.from_list(TRAIN_ROWS[:2], features=_features()).to_parquet(root / "data" / "train-00000-of-00002.parquet")
    Dataset.from_list(TRAIN_ROWS[2:], features=_features()).to_parquet(root / "data" / "train-00001-of-00002.parquet")
    Dataset.from_list(TEST_ROWS, features=_features()).to_parquet(root / "data" / "valid-00000-of-00001.parquet")
    Dataset.from_list(TEST_ROWS + TRAIN_ROWS[1:2], features=_features()).to_parquet(root / "multiref" / "test.parquet")
    (root / "README.md").write_text(README, encoding="utf-8")

    repo_id = _repo("reddit-dialog-folder")
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="dataset")

    cache = str(tmp_path / "cache")
    default = load_dataset(repo_id, cache_dir=cache)
    assert sorted(default) == ["train", "validation"]
    assert default["train"].to_list() == TRAIN_ROWS
    assert default["validation"].to_list() == TEST_ROWS
    multiref = load_dataset(repo_id, "multiref", split="test", cache_dir=cache)
    assert multiref.to_list() == TEST_ROWS + TRAIN_ROWS[1:2]
    with pytest.raises(ValueError, match="nope"):
        load_dataset(repo_id, "nope", cache_dir=cache)
    assert mock_hub.errors == []


def test_private_dataset_needs_token(mock_hub, tmp_path):
    from datasets import load_dataset
    from datasets.exceptions import DatasetNotFoundError

    mock_hub.add_token("hf_mock_datasets_token", "carol", orgs=["carol-lab"])
    repo_id = f"carol-lab/private-dialog-{uuid.uuid4().hex[:8]}"
    _dataset_dict().push_to_hub(repo_id, private=True, token="hf_mock_datasets_token")
    with pytest.raises(DatasetNotFoundError):
        load_dataset(repo_id, cache_dir=str(tmp_path / "anon"))
    loaded = load_dataset(repo_id, split="test", cache_dir=str(tmp_path / "auth"), token="hf_mock_datasets_token")
    assert loaded.to_list() == TEST_ROWS
    assert mock_hub.errors == []
