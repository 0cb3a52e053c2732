"""Golden digests of the extraction's outputs, recorded BEFORE the speed work of issue 25.

Every speed-up of the extraction must leave every output line as it was. These digests were made
with the code as it stood before that work (commit 6159051) and are compared, not regenerated:

* a whole default-preset build (two training months with schema drift, duplicates and extreme
  drift, one multi-reference test month): every Parquet row of every split, the counters,
  ``test.refs.txt``, ``keys.txt`` and ``train.tsv``;
* :func:`build_sessions` of every thread of a drifted month under both presets (the ``original``
  preset's sessions without the pipeline; the oracle test checks them against the original itself);
* :func:`gpt_norm` of every text of a synthetic month, of the real Pushshift samples and of seeded
  random strings over the characters its rules treat specially.

``python tests/dataset/test_dataset_golden.py`` prints the current digests (to see what changed;
replacing the recorded ones is a decision about the data, not a fix for a failing test).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from dataset_helpers import corpus_texts, random_texts

from dialogpt_dataset import synthetic
from dialogpt_dataset.build import BuildConfig, build_dataset
from dialogpt_dataset.dumps import coerce_comment, coerce_submission
from dialogpt_dataset.normalize import gpt_norm, minimal_norm
from dialogpt_dataset.rules import ExtractRules
from dialogpt_dataset.threads import ExtractConfig, build_sessions

MONTHS = {"2006-01": dict(compression="zst", seed=31, drift=True, duplicates=0.02),
          "2006-02": dict(compression="gz", seed=32, drift="extreme"),
          "2006-03": dict(compression="zst", seed=33, drift=True)}
N_COMMENTS = 1500

GOLDEN = {
    "build": {
        "train": [
            991,
            "f4660e6aa6d86c79d864c7eaa36423dbea70c36dce7a959a28e0a3773a487fa7"
        ],
        "validation": [
            28,
            "965d5c9aaf38cc7671cc958db45c77a5cdae3fc2601e631a0cfdab962caca292"
        ],
        "test": [
            110,
            "4eaf6ee9a5978aff460d958a2e30c33d543573074ff598c21f6249ff115180c6"
        ],
        "counters": "61034e481a8018db2f5669064d6533cabf6831f4ad1e675837dca258632d6113",
        "test.refs.txt": "2728a83ba0eb33d99ca5cfedd1fe563296857a3ace017f2249ecb76aad864532",
        "keys.txt": "1809cc43fb9a0ab488b2859ad83a9dc09bf1408fc957a808b426527295cc03d0",
        "train.tsv": "dd8ba23246bfb7c6b008c7b0b4035c07c9e55bde4a59e860ecd1e64b6cae1d55"
    },
    "sessions": {
        "original/leaves": [
            352,
            "0e969b78a58b8acb1e27be9b015c8ad474e637165b4c4e17aa8e539eaca9af47",
            "6fd973cb66999645dfa3a8b1160d90e95a218f6fbac2ffd025a1ebbf17e80162"
        ],
        "original/all": [
            499,
            "e98e74f52fac35ba6642303d54f5bdb6c44d1750eedfb678ec8fdbe09a58ea1a",
            "5613e62dd02cfbc0287d9f9d69615c3eea11765062a156540ce48ee0f90168ba"
        ],
        "default/leaves": [
            472,
            "8f3d2e2a62a9864538160e45ebf04fcf8260705f6447843c71672b149042fcac",
            "050c12d13f2f638bad81b3a2dc85e59dc07f330bcf103627fbadf5b1ce72e273"
        ],
        "default/all": [
            705,
            "68f04ddb64c1f92ac04ca36c9a519b48c2cbd8477b44ce71859e2a53fced492b",
            "bf16678c5c4d30ac8b780c552eb803ac4d588274232aa0f8727b7cde1cf739f8"
        ]
    },
    "gpt_norm": {
        "corpus": "c81f155f55790f75e1ce8a361ce398179d55129ba6a5b4d5bc3570b70c06dee6",
        "random": "fcd80b70f9ec310da2285fa1e3da984681ff95572a505e35cc756661d88249de"
    }
}


def _sha(lines) -> str:
    h = hashlib.sha256()
    for x in lines:
        h.update(x.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def _rows_digest(rows: list[dict]) -> list:
    return [len(rows), _sha(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)]


def build_digest(tmp: Path) -> dict:
    dumps = tmp / "dumps"
    for month, kw in MONTHS.items():
        synthetic.write_month(dumps, month, N_COMMENTS, **kw)
    out = tmp / "rd"
    result = build_dataset(BuildConfig(output_dir=str(out), dumps_dir=str(dumps), months="2006-01:2006-02",
                                       test_months="2006-03", min_refs=2, num_shards=2, export_tsv=True, quiet=True))
    digest = {}
    for split in ("train", "validation", "test"):
        rows = [r for p in sorted((out / "data").glob(f"{split}-*.parquet")) for r in pq.read_table(p).to_pylist()]
        digest[split] = _rows_digest(rows)
    digest["counters"] = _sha(json.dumps(dict(sorted(result.counters.items()))).splitlines())
    for name in ("test.refs.txt", "keys.txt", "train.tsv"):
        digest[name] = _sha((out / name).read_text(encoding="utf-8").splitlines())
    return digest


def _threads(month: str, **kw) -> dict:
    out: dict = defaultdict(lambda: [None, []])
    for kind, rec in synthetic.generate_month(month, N_COMMENTS, **kw):
        r = (coerce_submission if kind == "s" else coerce_comment)(rec, Counter())
        if r is not None and kind == "s":
            out[r.link][0] = r
        elif r is not None:
            out[r.link][1].append(r)
    return out


def sessions_digest() -> dict:
    threads = _threads("2006-04", seed=34, drift="extreme", duplicates=0.02)
    digest = {}
    for preset in ("original", "default"):
        for leaves_only in (True, False):
            cfg = ExtractConfig.from_rules(ExtractRules.from_preset(preset, use_selftext=True), leaves_only)
            counters: Counter = Counter()
            rows = [s.to_row() for link in sorted(threads)
                    for s in build_sessions(threads[link][0], threads[link][1], cfg, counters)]
            digest[f"{preset}/{'leaves' if leaves_only else 'all'}"] = _rows_digest(rows) + [
                _sha(json.dumps(dict(sorted(counters.items()))).splitlines())]
    return digest


def norm_digest() -> dict:
    return {"corpus": _sha(gpt_norm(minimal_norm(t)) for t in corpus_texts()),
            "random": _sha(gpt_norm(t) for t in random_texts(20000))}


def test_default_build_rows_are_the_golden_ones(tmp_path):
    assert build_digest(tmp_path) == GOLDEN["build"]


def test_sessions_of_both_presets_are_the_golden_ones():
    assert sessions_digest() == GOLDEN["sessions"]


def test_gpt_norm_outputs_are_the_golden_ones():
    assert norm_digest() == GOLDEN["gpt_norm"]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        print(json.dumps({"build": build_digest(Path(d)), "sessions": sessions_digest(), "gpt_norm": norm_digest()},
                         indent=1))
    sys.exit(0)
