"""The corpus-filtered METEOR paraphrase table: same alignments, same statistics, as the full table."""

from __future__ import annotations

import gzip
import importlib

import pytest
from metrics_helpers import load_case, need_meteor_jar

M = importlib.import_module("dialogpt.scoring.meteor")  # the package re-exports the function as `meteor`
mp = importlib.import_module("dialogpt.scoring.meteor_paraphrase")


def _table(tmp_path, text: str):
    path = tmp_path / "para.gz"
    path.write_bytes(gzip.compress(text.encode()))
    return mp.read_table(path)


ENTRIES = [("0.5", "the cat", "a cat"), ("0.1", "dog", "hound"), ("0.2", "cat", "kitty"),
           ("0.3", "a cat", "the cat"), ("0.4", "cat sat", "cat"), ("0.6", "sat a", "cat")]


def test_corpus_ngrams_are_each_lists_ngrams_and_none_across_two_lists():
    grams = set(mp.corpus_ngrams([["the", "cat", "sat"], ["a", "cat"]], max_n=3).to_pylist())
    assert grams == {b"the\n", b"cat\n", b"sat\n", b"a\n", b"the cat\n", b"cat sat\n", b"the cat sat\n",
                     b"a cat\n"}  # no "sat a": it would join the end of one list to the next
    assert mp.corpus_ngrams([]).to_pylist() == []


def test_filter_keeps_entries_whose_two_phrases_are_corpus_ngrams_in_file_order(tmp_path):
    lines, single_spaced = _table(tmp_path, "".join(f"{p}\n{a}\n{b}\n" for p, a, b in ENTRIES))
    assert single_spaced and len(lines) == 3 * len(ENTRIES)
    index = mp.index_table(lines, single_spaced)
    # each distinct phrase once; the entries point at them
    assert sorted(index.phrases.to_pylist()) == sorted({f"{x}\n".encode() for _, a, b in ENTRIES for x in (a, b)})
    assert [index.phrases[int(i)].as_py() for i in index.first] == [f"{a}\n".encode() for _, a, _ in ENTRIES]
    grams = mp.corpus_ngrams([["the", "cat", "sat"], ["a", "cat"]])
    kept = mp.filter_table(index, grams).decode().split("\n")
    # "dog"/"hound", "kitty" and "sat a" are no corpus n-grams; the order of the rest is the file's
    assert kept == ["0.5", "the cat", "a cat", "0.3", "a cat", "the cat", "0.4", "cat sat", "cat", ""]


@pytest.mark.parametrize("odd", ["the  cat", " the cat", "the cat ", "the\tcat", "the cat\r"])
def test_a_phrase_with_odd_blanks_is_matched_as_the_jars_tokenizer_splits_it(tmp_path, odd):
    text = f"0.5\n{odd}\na cat\n0.1\ndog\nhound\n"
    lines, single_spaced = _table(tmp_path, text)
    assert not single_spaced
    grams = mp.corpus_ngrams([["the", "cat"], ["a", "cat"]])
    # written back as the jar's StringTokenizer reads it (the same tokens, so the same alignments)
    assert mp.filter_table(mp.index_table(lines, single_spaced), grams) == b"0.5\nthe cat\na cat\n"
    # the control: taken as its own key, the odd line matches nothing
    assert mp.filter_table(mp.index_table(lines, True), grams) == b""


def test_a_table_without_final_newline_or_in_two_gzip_members_reads_whole(tmp_path):
    path = tmp_path / "para.gz"
    path.write_bytes(gzip.compress(b"0.5\nthe cat\na cat\n") + gzip.compress(b"0.3\na cat\nthe cat"))
    lines, _ = mp.read_table(path)
    assert lines.to_pylist() == [b"0.5\n", b"the cat\n", b"a cat\n", b"0.3\n", b"a cat\n", b"the cat\n"]


def test_filtered_table_is_cached_per_corpus(tmp_path, monkeypatch):
    jar = need_meteor_jar()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = mp.filtered_table(jar, ["Don't stop, it's fine", "it is fine"])
    assert first.parent == tmp_path / "dialogpt" / "meteor-paraphrase" and first.stat().st_size > 0
    monkeypatch.setattr(mp, "filter_table", lambda *a: pytest.fail("cache missed"))
    assert mp.filtered_table(jar, ["it is fine", "Don't stop, it's fine"]) == first
    with pytest.raises(pytest.fail.Exception, match="cache missed"):
        mp.filtered_table(jar, ["another corpus"])


@pytest.mark.slow
@pytest.mark.parametrize("case, rows", [("demo", None), ("he_teama", 200)])
def test_filtered_table_gives_the_full_tables_statistics_bit_for_bit(case, rows, tmp_path, monkeypatch):
    need_meteor_jar()
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


def test_the_table_index_is_kept_in_the_cache_and_a_damaged_one_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    table = tmp_path / "para.gz"
    table.write_bytes(gzip.compress("".join(f"{p}\n{a}\n{b}\n" for p, a, b in ENTRIES).encode()))
    grams = mp.corpus_ngrams([["the", "cat", "sat"], ["a", "cat"]])
    expected = mp.filter_table(mp.table_index(table), grams)
    [kept] = (tmp_path / "cache" / "dialogpt" / "meteor-paraphrase").glob("table-*")
    assert sorted(p.name for p in kept.iterdir()) == ["entries.arrow", "phrases.arrow"]
    real_read = mp.read_table
    monkeypatch.setattr(mp, "read_table", lambda *a: pytest.fail("the cached index was not used"))
    assert mp.filter_table(mp.table_index(table), grams) == expected
    entries = kept / "entries.arrow"
    entries.write_bytes(entries.read_bytes()[:100])  # a truncated cache file: read the table again
    monkeypatch.setattr(mp, "read_table", real_read)
    assert mp.filter_table(mp.table_index(table), grams) == expected and entries.stat().st_size > 100
    table.write_bytes(gzip.compress(b"0.9\nthe\na\n"))  # another table (size and mtime change): another index
    assert mp.filter_table(mp.table_index(table), grams) == b"0.9\nthe\na\n"


def test_words_a_jvm_reading_utf8_as_ascii_or_latin1_would_see_are_in_the_ngrams():
    """Under a non-UTF-8 locale a Java 17 jar reads 'café' as 'caf' + two U+FFFD: a paraphrase of
    'caf' could fire there, so the cut table must keep it."""
    misread = mp.as_java_may_read(["a café au lait", "plain ascii"])
    assert misread == ["a caf\ufffd\ufffd au lait", "a cafÃ© au lait"]  # only the non-ASCII line, twice
    lines = ["a café au lait"] + misread
    grams = set(mp.corpus_ngrams(mp.variants(lines, mp.normalize_lines(lines))).to_pylist())
    assert {b"caf\n", b"au lait\n", "café\n".encode()} <= grams
    assert b"caf\n" not in set(mp.corpus_ngrams(mp.variants(lines[:1], mp.normalize_lines(lines[:1]))).to_pylist())
