"""A checkpoint folder's manifest: what a complete save wrote, so a resume can tell a whole checkpoint
from a damaged one before it loads anything.

``manifest.json`` is written last, after every other file of the save: the name, size and (for
files up to :data:`HASHED_MAX_BYTES`) the SHA-256 of each file. Large weight and optimizer files get
their size checked only (a truncated ``optimizer.bin`` is caught by it; hashing gigabytes on every
resume is not worth it). Verification returns the problems, each naming its file, so callers can
word them as one line (a PATH resume) or fall back to an older checkpoint (``latest``).

RNG state (Accelerate's ``random_states_<rank>.pkl``) is told apart from the rest: without it the
run can go on, but dropout masks differ from an uninterrupted run, so only ``--allow_inexact_resume``
accepts that.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"
HASHED_MAX_BYTES = 1 << 20
RNG_FILE_RE = re.compile(r"^random_states_\d+\.pkl$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (recursive: FSDP/DeepSpeed write sub-folders), as sorted posix paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: str | os.PathLike) -> Path:
    """Describe every file now in ``folder``; written to a temporary name and renamed, so it is whole or absent."""
    folder = Path(folder)
    entries = {}
    for name in _files(folder):
        size = (folder / name).stat().st_size
        entries[name] = {"size": size, "sha256": _sha256(folder / name) if size <= HASHED_MAX_BYTES else None}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "files": entries}, indent=1))
    os.replace(tmp, folder / MANIFEST)
    return folder / MANIFEST


@dataclass
class Verdict:
    """What verification found: problems with the model/optimizer/etc., and missing or damaged RNG state."""

    problems: list[str] = field(default_factory=list)
    rng_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.rng_problems

    def usable(self, allow_inexact: bool) -> bool:
        """Loadable at all: only RNG state may be missing, and only when inexact resumes are allowed."""
        return not self.problems and (allow_inexact or not self.rng_problems)

    def first(self) -> str:
        return (self.problems or self.rng_problems or [""])[0]


def verify_checkpoint(folder: str | os.PathLike) -> Verdict:
    """Check ``folder`` against its manifest; every problem names the file it is about."""
    folder = Path(folder)
    verdict = Verdict()
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        verdict.problems.append(f"{MANIFEST} is missing (the save never finished, or the folder was damaged)")
        return verdict
    except (ValueError, KeyError, TypeError) as e:
        verdict.problems.append(f"{MANIFEST} is unreadable ({type(e).__name__})")
        return verdict
    for name, entry in listed.items():
        problem = _check_file(folder / name, name, entry)
        if problem:
            (verdict.rng_problems if RNG_FILE_RE.match(Path(name).name) else verdict.problems).append(problem)
    return verdict


def _check_file(path: Path, name: str, entry: dict) -> str | None:
    if not path.is_file():
        return f"{name} is missing"
    size = path.stat().st_size
    if size != entry.get("size"):
        return f"{name} has {size} bytes but {MANIFEST} says {entry.get('size')} (truncated or replaced)"
    if entry.get("sha256") and _sha256(path) != entry["sha256"]:
        return f"{name} does not match its SHA-256 in {MANIFEST} (changed after the save)"
    return None
