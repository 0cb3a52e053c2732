"""METEOR 1.5 as DSTC7 ran it: ``java -Xmx1g -jar meteor-1.5.jar hyp.txt refs_merged.txt -r N
-l en -norm`` (default task ``rank``), one JVM call for the whole corpus.

The jar and its ``data/paraphrase-en.gz`` come from the ``pycocoevalcap`` wheel (our ``meteor``
extra), so nobody downloads METEOR by hand. The references file interleaves the references:
line ``j*N + i`` is reference i of hypothesis j. The value is the full-precision ``Final score:``
line. Duplicated references do not change it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

_FINAL = re.compile(r"^Final score:\s+(\S+)\s*$", re.M)


class MeteorError(RuntimeError):
    """METEOR could not run (no Java, no jar) or printed no score."""


def find_meteor_jar() -> Path:
    """The METEOR 1.5 jar shipped in the ``pycocoevalcap`` wheel (or ``$METEOR_JAR``)."""
    env = os.environ.get("METEOR_JAR")
    if env:
        jar = Path(env)
    else:
        spec = importlib.util.find_spec("pycocoevalcap")
        if spec is None or not spec.submodule_search_locations:
            raise MeteorError(
                "METEOR needs the jar from pycocoevalcap: pip install 'dialogpt-hf[meteor]' "
                "(or set METEOR_JAR=/path/to/meteor-1.5.jar, or pass --no-meteor)")
        jar = Path(list(spec.submodule_search_locations)[0]) / "meteor" / "meteor-1.5.jar"
    if not jar.is_file():
        raise MeteorError(f"{jar}: METEOR jar not found (reinstall pycocoevalcap or set METEOR_JAR)")
    para = jar.parent / "data" / "paraphrase-en.gz"
    if not para.is_file():
        # meteor-1.5.jar dies without it ("-l en" loads the English paraphrase table).
        raise MeteorError(f"{para}: METEOR's paraphrase table is missing beside the jar")
    return jar


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise MeteorError("METEOR 1.5 needs Java, and no 'java' is on PATH: install a JRE "
                          "(e.g. apt-get install default-jre-headless) or pass --no-meteor")
    return java


def _one_line(text: str) -> str:
    # DSTC7 wrote one segment per line; a stray newline would shift every later segment.
    return text.replace("\r", " ").replace("\n", " ")


def meteor(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, heap: str = "1g",
           jar: str | os.PathLike | None = None, timeout: float | None = None) -> float:
    """Corpus METEOR 1.5 (``-l en -norm``) of ``hyps`` against ``refs`` (same number per row)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference rows")
    if not hyps:
        raise ValueError("METEOR of zero hypotheses is undefined")
    n_cols = {len(r) for r in refs}
    if len(n_cols) != 1 or 0 in n_cols:
        raise ValueError(f"METEOR needs the same number (>= 1) of references per hypothesis, got {sorted(n_cols)}")
    n_ref = n_cols.pop()
    jar_path = Path(jar) if jar is not None else find_meteor_jar()
    java = find_java()
    with tempfile.TemporaryDirectory(prefix="meteor-") as tmp:
        hyp_file = Path(tmp) / "hyp.txt"
        ref_file = Path(tmp) / "refs_merged.txt"
        hyp_file.write_text("\n".join(_one_line(h) for h in hyps) + "\n", encoding="utf-8")
        with open(ref_file, "w", encoding="utf-8") as f:
            for row in refs:
                for r in row:
                    f.write(_one_line(r) + "\n")
        # DSTC7's command line; the serial GC only saves CPU threads (the score does not depend on it).
        cmd = [java, f"-Xmx{heap}", "-XX:+UseSerialGC", "-jar", str(jar_path), str(hyp_file), str(ref_file),
               "-r", str(n_ref), "-l", "en", "-norm"]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    out = proc.stdout.decode("utf-8", "replace")
    m = _FINAL.search(out)
    if proc.returncode != 0 or m is None:
        err = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["(no stderr)"])[-1]
        raise MeteorError(f"meteor-1.5.jar failed (exit {proc.returncode}): {err}")
    return float(m.group(1))
