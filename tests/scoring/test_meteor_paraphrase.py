"""The corpus-filtered METEOR paraphrase table: same alignments, same statistics, as the full table."""

from __future__ import annotations

import gzip
import importlib
import shutil

import pytest
from metrics_helpers import load_case

M = mp = importlib.import_module("dialogpt.scoring.meteor")  # the package re-exports the function as `meteor`


def _need_jar():
    if shutil.which("java") is None:
        pytest.skip("METEOR needs java, which is not on PATH")
    try:
        return M.find_meteor_jar()
    except M.MeteorError as e:
        pytest.skip(f"METEOR jar not available: {e}")


def test_filter_keeps_entries_whose_two_phrases_are_corpus_ngrams_in_file_order(tmp_path):
    table = tmp_path / "para.gz"
    entries = [("0.5", "the cat", "a cat"), ("0.1", "dog", "hound"), ("0.2", "cat", "kitty"),
               ("0.3", "a cat", "the cat"), ("0.4", "cat sat", "cat")]
    table.write_bytes(gzip.compress("".join(f"{p}\n{a}\n{b}\n" for p, a, b in entries).encode()))
    grams = mp.corpus_ngrams([["the", "cat", "sat"], ["a", "cat"]])
    assert b"the cat sat" in grams and b"cat sat" in grams and b"sat a" not in grams
    kept = mp.filter_table(table, grams).decode().split("\n")
    # "dog"/"hound" and "kitty" are no corpus n-grams; the order of the rest is the file's
    assert kept == ["0.5", "the cat", "a cat", "0.3", "a cat", "the cat", "0.4", "cat sat", "cat", ""]


def test_filtered_table_is_cached_per_corpus(tmp_path, monkeypatch):
    jar = _need_jar()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = mp.filtered_table(shutil.which("java"), jar, ["Don't stop, it's fine", "it is fine"])
    assert first.parent == tmp_path / "dialogpt" / "meteor-paraphrase" and first.stat().st_size > 0
    monkeypatch.setattr(mp, "filter_table", lambda *a: pytest.fail("cache missed"))
    assert mp.filtered_table(shutil.which("java"), jar, ["Don't stop, it's fine", "it is fine"]) == first
    with pytest.raises(pytest.fail.Exception, match="cache missed"):
        mp.filtered_table(shutil.which("java"), jar, ["another corpus"])


@pytest.mark.slow
@pytest.mark.parametrize("case, rows", [("demo", None), ("he_teama", 200)])
def test_filtered_table_gives_the_full_tables_statistics_bit_for_bit(case, rows, tmp_path, monkeypatch):
    _need_jar()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    hyps, refs, _ = load_case(case)
    hyps, refs = hyps[:rows], refs[:rows]
    seen = []
    real = M.meteor_from_stats
    monkeypatch.setattr(M, "meteor_from_stats", lambda r: seen.append([list(x) for x in r]) or real(r))
    filtered = M.meteor(hyps, refs, jobs=1)
    full = M.meteor(hyps, refs, jobs=1, filter_paraphrases=False)
    assert filtered == full and seen[0] == seen[1]
    if case != "demo":  # (the demo's 3 rows have no paraphrase match)
        assert any(row[16] + row[17] + row[18] + row[19] > 0 for row in seen[0]), "no paraphrase match tested"
