"""The keys files that freeze a selection: ``--keys-file`` (instances to keep) and
``--discard-keys-file`` (turns to train on with weight 0.0), in our format or the original's.

Both are read line by line as bytes so that a file that is not gzip / not UTF-8 is a one-line error
naming ``file:line``; the pipeline reads them once before stage 1 so a bad line costs no dump read.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from dialogpt_dataset.plan import shard_of
from dialogpt_dataset.threads import key_of_id


def _key_lines(p: Path, flag: str):
    """``(line_no, line)`` of a keys file (``.gz`` or plain), with a one-line error naming the file and
    line for one that is not gzip / not UTF-8 text (instead of a codec or gzip traceback)."""
    opener = gzip.open if p.suffix == ".gz" else open
    i = 0
    try:
        with opener(p, "rb") as f:  # bytes, decoded line by line, so an error names its line
            for i, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"{p}:{i}: {flag} is not UTF-8 text") from None
                yield i, line
    except (OSError, EOFError) as e:
        raise ValueError(f"{p}:{i + 1}: {flag} cannot be read ({type(e).__name__}: {e})") from None


def load_keys(path: str | os.PathLike, shard: int | None = None, num_shards: int = 1) -> frozenset[tuple[str, str]]:
    """Keys to keep: our instance ids (``t3_..,t1_..,t1_..``, one a line) or the original's
    ``keys-*.gz`` lines (``t3_..\\tt1_..\\tkeep``; ``dep`` lines are for its extract stage and skipped).
    Only keys of ``shard`` are kept when given (each stage-2 task loads its own share)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: --keys-file not found")
    keys = set()
    for i, line in _key_lines(p, "--keys-file"):
        line = line.strip()
        if not line or line.startswith("#") or line.endswith("\tdep"):
            continue
        if "\t" in line:
            parts = line.split("\t")
            link, cid = parts[0], parts[1]
        else:
            link, cid = key_of_id(line)
        if not (link.startswith("t3_") and cid.startswith(("t1_", "t3_"))):
            raise ValueError(f"{p}:{i}: not an instance id (t3_...,t1_...,t1_...): {line[:60]!r}")
        if shard is None or shard_of(link, num_shards) == shard:
            keys.add((link, cid))
    return frozenset(keys)


def load_discard_hashes(path: str | os.PathLike) -> frozenset[str]:
    """sha224 hex digests, one a line (first tab field; ``dep`` lines skipped, as the original)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: --discard-keys-file not found")
    out = set()
    for i, line in _key_lines(p, "--discard-keys-file"):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#") or line.endswith("\tdep"):
            continue
        h = line.split("\t")[0].strip().lower()
        if len(h) != 56 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError(f"{p}:{i}: not a sha224 hex digest: {h[:60]!r}")
        out.add(h)
    return frozenset(out)
