"""METEOR's paraphrase table cut to one corpus: the jar scores with it exactly as with the full table,
without parsing 5.3 million entries first.

Why: ``meteor-1.5.jar -l en`` parses all of ``data/paraphrase-en.gz`` (272 MB of text) into a trie
before it scores anything, about 8 s and 9 CPU-s per JVM. The jar only fires an entry when its first
phrase is a run of consecutive words of one sentence and its second phrase a run of the other
(``ParaphraseMatcher`` walks the trie over the normalised, lower-cased words and compares the
paraphrase word by word), so an entry whose phrases are not both n-grams of the corpus can never fire.
Dropping those entries keeps the order of the others (the trie lists a phrase's paraphrases in file
order) and leaves every word of a kept entry in the table's vocabulary, so the alignments, and the
scores, are the jar's own; the tests compare them to the full table's bit for bit.

Why it is fast enough to pay on a corpus scored once: the table is indexed once per machine (each
distinct phrase once, each entry as two positions; :func:`table_index`), the corpus n-grams are
joined by Arrow kernels, and one hash lookup of those n-grams among the distinct phrases
(``pyarrow.compute.index_in``) marks the entries to keep. That is about 4 CPU-s on DSTC-7's 6,000 x 6,
against 9 CPU-s for each JVM to parse the whole table; the first run on a machine also reads the table
(its lines become one Arrow array over the decompressed bytes, without a copy per line) and indexes it.

The corpus n-grams are a generous superset: the jar's ``-norm`` step (:mod:`meteor_normalizer`, a
Python copy checked line by line against the jar's ``Normalizer``) gives its words, and lower-cased
variants (Java and Python lower-case a few letters differently) and the raw whitespace tokens are
added.

Two caches under ``$XDG_CACHE_HOME/dialogpt/meteor-paraphrase`` (``~/.cache`` by default), both
keyed by the files they come from: the table's index as Arrow files (:func:`table_index`, written on
the first run on a machine, about 120 MB), and each corpus's cut table (keyed by its distinct lines
too), so re-scoring a corpus skips the filter altogether.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from .meteor_normalizer import normalize_lines

#: The longest phrase in paraphrase-en.gz has 7 words.
MAX_PHRASE = 7
#: Part of the cache key: bump it when what a filtered table holds changes.
_FORMAT = 3
_BLANKS = b"[ \t\r\f]"  # the separators of java.util.StringTokenizer, which splits the table's phrases
_NEWLINE_SCAN_BYTES = 1 << 25  # find line ends 32 MB at a time (one byte of mask per byte scanned)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dialogpt" / "meteor-paraphrase"


def variants(raw: list[str], normalised: list[str]) -> Iterable[list[str]]:
    """Each line's distinct token lists (the jar's words first; the others rarely differ)."""
    for line, norm in zip(raw, normalised):
        low = norm.lower()
        seen = {tuple(low.split(" "))}
        for toks in (low.split(), norm.casefold().split(), line.lower().split()):
            seen.add(tuple(toks))
        yield from (list(t) for t in seen)


def as_java_may_read(texts: list[str]) -> list[str]:
    """The non-ASCII lines as a Java 17 or older would decode their UTF-8 bytes under a locale that is
    not UTF-8 (the jar reads its files with the JVM's default charset): ASCII (each byte of a non-ASCII
    letter becomes U+FFFD, so ``café`` is read as the word ``caf``) or Latin-1. Adding their words keeps
    the cut table a superset of what the jar can fire, whatever the locale."""
    out = []
    for line in texts:
        if not line.isascii():
            raw = line.encode("utf-8", "surrogatepass")
            out += [raw.decode("ascii", "replace"), raw.decode("latin-1")]
    return out


def corpus_ngrams(token_lists: Iterable[list[str]], max_n: int = MAX_PHRASE) -> pa.ChunkedArray:
    """Every n-gram (n <= ``max_n``) of each token list, single-space joined, UTF-8, each ending in
    ``"\\n"`` like a line of the table (:func:`read_table`). Repeats are kept: the set lookup drops them.

    All lists are laid end to end, so each n is one element-wise join of ``n`` shifted views (Arrow
    kernels, no Python loop per n-gram); the n-grams that would cross from one list into the next are
    masked out.
    """
    tokens: list[bytes] = []
    list_ends: list[int] = []
    for toks in token_lists:
        tokens.extend(t.encode("utf-8", "surrogatepass") for t in toks)
        list_ends.append(len(tokens))
    words = pa.array(tokens, pa.large_binary())
    # ended[j]: how many lists end before token j; an n-gram is whole iff that count is the same
    # at its first and at its last token
    ended = np.zeros(len(tokens) + 1, np.int64)
    np.add.at(ended, np.asarray(list_ends, np.int64), 1)
    ended = np.cumsum(ended)
    space, newline, nothing = (pa.scalar(s, pa.large_binary()) for s in (b" ", b"\n", b""))
    grams = []
    for n in range(1, min(max_n, len(tokens)) + 1):
        count = len(tokens) - n + 1  # n-grams from k = 0 .. count - 1; the one from k ends at k + n - 1
        views = [words.slice(k, count) for k in range(n)]
        joined = views[0] if n == 1 else pc.binary_join_element_wise(*views, space)
        whole = ended[n - 1:n - 1 + count] == ended[:count]
        grams.append(pc.binary_join_element_wise(joined, newline, nothing).filter(pa.array(whole)))
    return pa.chunked_array(grams, pa.large_binary())


def _gunzip(path: Path) -> bytes:
    """All members of a gzip file, decompressed in one call each."""
    with open(path, "rb") as f:
        raw = f.read()
    parts = []
    while raw:
        member = zlib.decompressobj(wbits=31)
        parts.append(member.decompress(raw))
        raw = member.unused_data
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_table(table: Path) -> tuple[pa.LargeBinaryArray, bool]:
    """The lines of a gzipped table, each with its ``"\\n"``, as one Arrow array over the
    decompressed bytes (no copy per line), and whether each line is single-spaced (then a phrase line
    is its own key; the shipped table is)."""
    data = _gunzip(table)
    if data and not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, np.uint8)
    ends = [np.zeros(1, np.int64)]
    for start in range(0, len(buf), _NEWLINE_SCAN_BYTES):
        ends.append(np.flatnonzero(buf[start:start + _NEWLINE_SCAN_BYTES] == 10).astype(np.int64) + (start + 1))
    offsets = np.concatenate(ends)
    lines = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1,
                                             [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    # a line starting with a space, a space before a newline (an empty line looks at the byte before it,
    # a newline), a blank other than the space, two spaces in a row
    odd = (bool((buf[offsets[:-1]] == 32).any()) or bool((buf[offsets[1:] - 2] == 32).any())
           or any(c in data for c in (b"\t", b"\r", b"\f", b"  ")))
    return lines, not odd


def _as_tokenized(phrases: pa.Array) -> pa.Array:
    """Phrase lines as the jar's StringTokenizer sees them: blank runs are one space, none at the ends."""
    phrases = pc.replace_substring_regex(phrases, pattern=_BLANKS + b"*\n$", replacement=b"\n")
    phrases = pc.replace_substring_regex(phrases, pattern=b"^" + _BLANKS + b"+", replacement=b"")
    return pc.replace_substring_regex(phrases, pattern=_BLANKS + b"+", replacement=b" ")


@dataclass
class TableIndex:
    """A paraphrase table laid out for the corpus filter: each distinct phrase once, and per entry its
    probability line and the positions of its two phrases. Looking the corpus n-grams up among 2.6
    million distinct phrases is cheaper than looking 15.8 million lines up among the n-grams."""

    phrases: pa.Array   # distinct phrases as the jar's StringTokenizer reads them, each ending in "\n"
    first: np.ndarray   # per entry (int32): position of its phrase in ``phrases``
    second: np.ndarray  # per entry: position of its paraphrase
    probs: pa.Array     # per entry: its probability line, "\n" included


def index_table(lines: pa.Array, single_spaced: bool = True) -> TableIndex:
    """The :class:`TableIndex` of a table's lines (:func:`read_table`)."""
    n = len(lines) // 3
    starts = np.arange(n, dtype=np.int64) * 3
    phrases = lines.take(pa.array(np.concatenate([starts + 1, starts + 2])))
    if not single_spaced:  # (the shipped table has single spaces only)
        phrases = _as_tokenized(phrases)
    encoded = pc.dictionary_encode(phrases)
    ids = encoded.indices.to_numpy().astype(np.int32)
    return TableIndex(encoded.dictionary, ids[:n], ids[n:], lines.take(pa.array(starts)))


def filter_table(index: TableIndex, grams: pa.Array | pa.ChunkedArray) -> bytes:
    """The text of the entries (probability, phrase, paraphrase lines) whose two phrases are both in
    ``grams``, in file order. The phrases are written as the jar's tokenizer reads them."""
    found = np.zeros(len(index.phrases), bool)
    found[pc.drop_null(pc.index_in(grams, value_set=index.phrases)).to_numpy()] = True
    kept = np.flatnonzero(found[index.first] & found[index.second])
    columns = (index.probs.take(pa.array(kept)), index.phrases.take(pa.array(index.first[kept])),
               index.phrases.take(pa.array(index.second[kept])))
    return b"".join(b"".join(entry) for entry in zip(*(c.to_pylist() for c in columns)))


def _file_key(*files: Path) -> hashlib._Hash:
    h = hashlib.sha256(f"{_FORMAT}|{MAX_PHRASE}\n".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h


def _write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` fills a temporary file beside ``path`` that then replaces it: a concurrent run sees
    the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_index(folder: Path) -> TableIndex:
    with pa.memory_map(str(folder / "phrases.arrow")) as source:
        phrases = ipc.open_file(source).read_all().column("phrase").combine_chunks()
    with pa.memory_map(str(folder / "entries.arrow")) as source:
        entries = ipc.open_file(source).read_all()
    first, second = (entries.column(c).to_numpy() for c in ("first", "second"))
    if len(phrases) and max(first.max(initial=0), second.max(initial=0)) >= len(phrases):
        raise ValueError(f"{folder}: entries point past the phrases")
    return TableIndex(phrases, first, second, entries.column("prob").combine_chunks())


def _write_index(index: TableIndex, folder: Path) -> None:
    options = ipc.IpcWriteOptions(compression="lz4")
    for name, table in (("phrases", pa.table({"phrase": index.phrases})),
                        ("entries", pa.table({"prob": index.probs, "first": index.first, "second": index.second}))):
        with ipc.new_file(str(folder / f"{name}.arrow"), table.schema, options=options) as writer:
            writer.write_table(table)  # one batch: one array when read


def table_index(table: Path) -> TableIndex:
    """:func:`index_table` of ``table``, kept in the cache (about 120 MB, LZ4-compressed Arrow files)
    after the first run on a machine: loading it takes a fraction of a second, where reading the
    table takes 2.5 s of gunzip and line splitting and indexing it 2 s more. A damaged copy is rebuilt."""
    folder = cache_dir() / f"table-{_file_key(table).hexdigest()[:32]}"
    if folder.is_dir():
        try:
            return _read_index(folder)
        except (OSError, ValueError, KeyError, pa.ArrowException):
            shutil.rmtree(folder, ignore_errors=True)
    index = index_table(*read_table(table))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, suffix=".tmp"))
    try:
        _write_index(index, tmp)
        os.rename(tmp, folder)  # atomic: a concurrent run sees the whole folder or none
    except OSError:  # another run got there first (or the disk is full): use the index in memory
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return index


def filtered_table(jar: Path, texts: list[str]) -> Path:
    """A cached paraphrase table holding the entries of ``jar``'s ``data/paraphrase-en.gz`` that
    ``texts`` (all hypotheses and references, one line each) can fire."""
    table = jar.parent / "data" / "paraphrase-en.gz"
    key = _file_key(table, jar)
    key.update("\n".join(sorted(set(texts))).encode("utf-8", "surrogatepass"))
    out = cache_dir() / f"{key.hexdigest()[:32]}.gz"
    if out.is_file():
        return out
    with ThreadPoolExecutor(max_workers=1) as pool:  # loading mostly releases the GIL: load meanwhile
        loaded = pool.submit(table_index, table)
        lines = texts + as_java_may_read(texts)
        grams = corpus_ngrams(variants(lines, normalize_lines(lines)))
        index = loaded.result()
    kept = filter_table(index, grams)

    def write(f: BinaryIO) -> None:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=1, mtime=0) as gz:
            gz.write(kept)

    _write_atomically(out, write)
    return out
