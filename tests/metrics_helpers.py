"""Shared readers for the official-tool reference cases in tests/data/reference_metrics/."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REF_DIR = REPO_ROOT / "tests" / "data" / "reference_metrics"
CASES = ("demo", "he_teama", "he_baseline")
TOL = 1e-4


def load_case(name: str) -> tuple[list[str], list[list[str]], dict]:
    """(hypotheses, references per hypothesis, expected scores) as the official scorer saw them."""
    d = REF_DIR / name
    with open(d / "hyp.txt", encoding="utf-8") as f:
        hyps = [line.rstrip("\n") for line in f]
    with open(d / "refs.txt", encoding="utf-8") as f:
        refs = [line.rstrip("\n").split("\t") for line in f]
    expected = json.loads((d / "expected.json").read_text())
    assert len(hyps) == len(refs)
    return hyps, refs, expected


# ---------------------------------------------------------------- the official scorer (optional)

#: Where the official DSTC7 scorer is looked for when DSTC7_SCORER is not set (see tests/README.md).
DEFAULT_SCORER_DIR = Path("~/.cache/dstc7-scorer").expanduser()
_PERL_MODULES = ("XML::Twig", "Sort::Naturally", "String::Util")


def official_scorer_dir() -> Path:
    """The DSTC7 ``evaluation/src`` folder with ``3rdparty/mteval-v14c.pl``, or ``pytest.skip`` saying
    what is missing. Never shipped with the project: tests/README.md says how to get it."""
    import os
    import shutil
    import subprocess

    import pytest

    env = os.environ.get("DSTC7_SCORER")
    d = Path(env).expanduser() if env else DEFAULT_SCORER_DIR
    where = f"DSTC7_SCORER={env}" if env else f"{DEFAULT_SCORER_DIR} (DSTC7_SCORER not set)"
    for need in ("metrics.py", "3rdparty/mteval-v14c.pl"):
        if not (d / need).is_file():
            pytest.skip(f"official DSTC7 scorer not found: no {need} in {where}; see tests/README.md")
    if shutil.which("perl") is None:
        pytest.skip("official DSTC7 scorer needs perl, which is not on PATH")
    probe = subprocess.run(["perl"] + [f"-M{m}" for m in _PERL_MODULES] + ["-e", "1"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mteval-v14c.pl needs the perl modules XML::Twig, Sort::Naturally, String::Util "
                    "(apt-get install libxml-twig-perl libsort-naturally-perl libstring-util-perl)")
    return d


def load_official_write_xml(scorer: Path):
    """DSTC7's own ``metrics._write_xml`` (the XML quirks: ``&``/``<`` removed, ``__empty__``)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(scorer))  # its `from util import *`
    try:
        spec = importlib.util.spec_from_file_location("dstc7_official_metrics", scorer / "metrics.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(scorer))
        sys.modules.pop("util", None)
    return mod._write_xml


def full_precision_mteval(scorer: Path, out_dir: Path) -> Path:
    """A copy of mteval-v14c.pl whose report prints 12 decimals instead of 4.

    Only the ``printf`` formats of the report change (``%2.4f`` -> ``%.12f``); the computation is
    the official one. Without it no comparison could be closer than the printed 5e-5.
    """
    src = (scorer / "3rdparty" / "mteval-v14c.pl").read_text(encoding="utf-8")
    patched = src.replace('printf "  %2.4f ",', 'printf "  %.12f ",')
    assert patched != src, "mteval-v14c.pl report format not found: is it the v14c script?"
    dst = out_dir / "mteval-v14c-full-precision.pl"
    dst.write_text(patched, encoding="utf-8")
    return dst


def run_official_nist_bleu(scorer: Path, write_xml, mteval: Path, hyps: list[str], refs: list[list[str]],
                           work: Path) -> tuple[list[float], list[float]]:
    """NIST-1..4 and BLEU-1..4 as ``metrics.calc_nist_bleu`` computes them (its files, its XML, its
    parsing of the cumulative lines), without its one-second sleep."""
    import subprocess

    n_refs = len(refs[0])
    (work / "hyp.txt").write_text("\n".join(hyps), encoding="utf-8")
    ref_paths = []
    for i in range(n_refs):
        p = work / f"ref{i}.txt"
        p.write_text("\n".join(row[i] for row in refs), encoding="utf-8")
        ref_paths.append(str(p))
    write_xml([""], str(work / "src.xml"), "src", n_lines=len(hyps))
    write_xml([str(work / "hyp.txt")], str(work / "hyp.xml"), "hyp", n_lines=len(hyps))
    write_xml(ref_paths, str(work / "ref.xml"), "ref", n_lines=len(hyps))
    out = subprocess.run(["perl", str(mteval), "-s", str(work / "src.xml"), "-t", str(work / "hyp.xml"),
                          "-r", str(work / "ref.xml")], capture_output=True, cwd=work, timeout=120)
    lines = out.stdout.decode("utf-8").split("\n")
    try:
        nist = [float(x) for x in lines[-6].strip("\r").split()[1:5]]
        bleu = [float(x) for x in lines[-4].strip("\r").split()[1:5]]
    except (IndexError, ValueError):
        raise AssertionError(f"mteval-v14c.pl printed no scores: {out.stderr.decode()[-800:]}") from None
    return nist, bleu


def need_meteor_jar() -> Path:
    """The METEOR jar, or skip the test saying why (no java on PATH, or no jar)."""
    if shutil.which("java") is None:
        pytest.skip("METEOR needs java, which is not on PATH")
    meteor = importlib.import_module("dialogpt.scoring.meteor")  # the package re-exports the function
    try:
        return meteor.find_meteor_jar()
    except meteor.MeteorError as e:
        pytest.skip(f"METEOR jar not available: {e}")
