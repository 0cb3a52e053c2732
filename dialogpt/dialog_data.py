"""Loading a built dialogue dataset (folder, ``save_to_disk`` folder or Hub id), with one-line errors.

Training (``--dataset``), batch decoding (``--input``) and evaluation (``--refs``/``--dataset``) all read
the same Parquet the builder writes; they share this loader so a missing split, an empty folder or an
unreachable Hub id reads the same everywhere, naming the flag and the source.
"""

from __future__ import annotations

from pathlib import Path

from dialogpt.errors import first_line


class DialogDataError(ValueError):
    """A dataset the user named cannot be read; the message names the flag and the source."""


class MissingSplitError(DialogDataError):
    """The dataset has no split of that name (callers for whom a split is optional catch this one)."""


def _is_saved_to_disk(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def load_dialog_data(source: str, *, flag: str = "--dataset", cache_dir: str | None = None,
                     name: str | None = None):
    """All splits of ``source`` as a ``DatasetDict`` (a single saved ``Dataset`` becomes ``{"train": ...}``);
    ``name`` is the dataset's config (``--dataset_config``, as ``load_dataset(source, name)``)."""
    import datasets

    path = Path(source)
    if not path.exists() and (source.startswith((".", "/", "~")) or path.suffix):
        raise DialogDataError(f"{flag} {source}: no such file or dataset directory")
    if name is not None and _is_saved_to_disk(path):
        raise DialogDataError(f"{flag} {source}: a save_to_disk folder has no configs (drop --dataset_config {name})")
    try:
        if _is_saved_to_disk(path):
            data = datasets.load_from_disk(str(path))
        else:
            data = datasets.load_dataset(source, name, cache_dir=cache_dir)
    except Exception as e:  # not found, offline, unreachable hub, a folder of unrelated files
        cause = e.__cause__ if isinstance(e, datasets.exceptions.DatasetGenerationError) and e.__cause__ else e
        if "corresponds to no data" in str(e):  # datasets' words for an empty folder
            raise DialogDataError(f"{flag} {source}: the data is empty ({first_line(e, 300)})") from None
        raise DialogDataError(f"{flag} {source}: cannot load it as a dataset ({first_line(cause, 300)})") from None
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({"train": data})
    return data


def load_dialog_split(source: str, split: str, *, flag: str = "--dataset", cache_dir: str | None = None,
                      column: str | None = "turns", name: str | None = None):
    """One split of ``source``, which must have ``column`` (None: any columns); a split it lacks is an
    error listing the splits it has."""
    data = load_dialog_data(source, flag=flag, cache_dir=cache_dir, name=name)
    if split not in data:
        raise MissingSplitError(f"{flag} {source}: no split {split!r} (has {', '.join(data)})")
    ds = data[split]
    if column is not None and column not in ds.column_names:
        raise DialogDataError(f"{flag} {source} split {split!r} has no {column!r} column "
                              f"(columns: {', '.join(ds.column_names)})")
    return ds
