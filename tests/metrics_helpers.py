"""Shared readers for the official-tool reference cases in tests/data/reference_metrics/."""

from __future__ import annotations

import json
from pathlib import Path

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
