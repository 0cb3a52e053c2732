"""A dataset folder that ``load_dataset(folder)`` and ``load_dataset("org/name")`` read with no project code.

Shared by the Reddit builder (``dialogpt_dataset.build``) and ``dialogpt-data prepare`` (the user's own
dialogues): Parquet shards under ``data/`` whose names carry a content fingerprint
(``data/<split>-<fingerprint>-NNNNN-of-NNNNN.parquet``), the README ``configs:`` pattern that finds them,
and the upload of the finished folder as a Hub dataset repo.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROWS_PER_PARQUET = 500_000


def export_parquet(ds, out: str | Path, split: str, rows_per_file: int = ROWS_PER_PARQUET) -> list[Path]:
    """``ds`` -> ``out/data/<split>-NNNNN-of-NNNNN.parquet`` (contiguous shards of ``rows_per_file`` rows)."""
    n = max(1, -(-len(ds) // rows_per_file))
    paths = []
    for i in range(n):
        p = Path(out) / "data" / f"{split}-{i:05d}-of-{n:05d}.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        ds.shard(num_shards=n, index=i, contiguous=True).to_parquet(str(p))
        paths.append(p)
    return paths


def fingerprint_parquet(files: dict[str, list[Path]]) -> tuple[str, dict[str, list[Path]]]:
    """Put a content hash into every Parquet name (``train-<fp>-00000-of-00001.parquet``).

    Why: ``datasets`` (5.x) caches ``load_dataset(dir)`` of a folder whose README declares
    ``configs:`` under a key made from the folder's *name* and the data_files *patterns* only, not
    from the files' paths or contents. Two builds in ``a/reddit-dialog`` and ``b/reddit-dialog``
    (or a rebuild in place) would silently load the first one's rows. With the fingerprint in the
    patterns, different data gets a different cache entry and identical data shares one.
    """
    h = hashlib.sha256()
    for split in sorted(files):
        for p in files[split]:
            h.update(split.encode() + b"\0" + p.read_bytes())
    fp = h.hexdigest()[:10]
    renamed = {}
    for split, paths in files.items():
        renamed[split] = []
        for p in paths:
            q = p.with_name(p.name.replace(f"{split}-", f"{split}-{fp}-", 1))
            p.replace(q)
            renamed[split].append(q)
    return fp, renamed


def data_files_pattern(split: str, fingerprint: str = "") -> str:
    """The README ``configs:`` ``data_files`` path of a split written by :func:`export_parquet`."""
    fp = f"{fingerprint}-" if fingerprint else ""
    return f"data/{split}-{fp}*.parquet"


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if n < limit:
            return name
    return "100M<n<1B"


def push_dataset_folder(folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None,
                        commit_message: str = "Upload dataset", ignore_patterns: list[str] | None = None) -> str:
    """Upload ``folder`` as the Hub dataset repo ``repo_id`` (created if needed); returns the repo URL.

    ``token`` None: huggingface_hub's own lookup (``HF_TOKEN``, then the saved login); it is never printed.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                      ignore_patterns=ignore_patterns, commit_message=commit_message)
    return str(url)
