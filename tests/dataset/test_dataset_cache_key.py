"""Two builds in folders of the same name must not share datasets' cache (a datasets 5.x pitfall:
its cache key for a folder with README ``configs:`` ignores the files' paths and contents)."""

from __future__ import annotations

import datasets

from dialogpt_dataset.build import BuildConfig, build_dataset


def test_same_folder_name_different_data_loads_the_right_rows(tmp_path):
    a = build_dataset(BuildConfig(output_dir=str(tmp_path / "a" / "reddit-dialog"), size="dummy", quiet=True))
    full = datasets.load_dataset(str(a.output_dir), cache_dir=str(tmp_path / "cache"))
    keys = tmp_path / "half.keys.txt"
    train_ids = full["train"]["id"]
    keys.write_text("\n".join(train_ids[: len(train_ids) // 2]) + "\n")
    b = build_dataset(BuildConfig(output_dir=str(tmp_path / "b" / "reddit-dialog"), size="dummy", quiet=True,
                                  keys_file=str(keys)))
    assert b.data_fingerprint != a.data_fingerprint
    half = datasets.load_dataset(str(b.output_dir), cache_dir=str(tmp_path / "cache"))
    assert half["train"]["id"] == train_ids[: len(train_ids) // 2]
    # the same data built again elsewhere gets the same names (deterministic, shareable cache)
    c = build_dataset(BuildConfig(output_dir=str(tmp_path / "c" / "reddit-dialog"), size="dummy", quiet=True))
    assert c.data_fingerprint == a.data_fingerprint
