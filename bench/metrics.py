#!/usr/bin/env python
"""How long DSTC7's metrics take on a test set the size of DialoGPT's 6K multi-reference set, ours and,
with ``--official DIR``, DSTC7's own scorer side by side on the same files.

The text is real DSTC-7 Task 2 text: the hypotheses and six reference slots of the two systems
shipped in tests/data/reference_metrics (1,908 rows), cycled to 6,000 rows (``--quick``: 100). From
the second pass on, the words of each line are shuffled (seeded), so no line repeats verbatim: a
repeated line would flatter any cache, and the real test set has no such copies.

* ``ours``: ``dialogpt-eval --hyp hyp.txt --refs refs.tsv`` in a subprocess (imports included), every
  metric, wall and CPU seconds (CPU includes the METEOR JVMs), twice, in a fresh cache folder:

  - ``first_run``: the cache is empty, as on a machine that never ran METEOR through us: the run
    reads the whole paraphrase table, keeps its index (distinct phrases, entries) as Arrow files in
    the cache (written once per machine) and builds the table cut to this corpus;
  - ``later_run``: the corpus's cut table is deleted and only the table's index is kept, as for any
    new corpus on that machine afterwards (the cut table is still built inside the run);
* ``official`` (``--official DIR``: DSTC7's ``evaluation/src`` with ``3rdparty/mteval-v14c.pl`` and
  ``3rdparty/meteor-1.5/``, see tests/README.md): its ``metrics.nlp_metrics`` on the same hypothesis and
  reference files, in a subprocess run from DIR, as ``dstc.py`` calls it (perl mteval, then the METEOR
  jar, then its Python entropy / distinct / length); wall and CPU seconds, and its scores;
* ``--repeats N``: N rounds of official then ours, so both sides meet the same drifts of a shared host;
  each side reports the run with its median wall time, and every run's times;
* ``speedup``: official / ours, wall and CPU, for each of ours' runs; ``max_abs_difference`` of every
  metric (the official NIST/BLEU are printed with 4 decimals, so up to 5e-5 is rounding).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "data" / "reference_metrics"


def dstc_corpus(n_hyps: int, n_refs: int = 6, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """``n_hyps`` rows of real DSTC-7 text (see the module docstring)."""
    def lines(path: Path) -> list[str]:
        text = path.read_text(encoding="utf-8")
        return (text[:-1] if text.endswith("\n") else text).split("\n")

    rows = []
    for case in ("he_teama", "he_baseline"):
        hyps, refs = lines(CASES / case / "hyp.txt"), lines(CASES / case / "refs.txt")
        rows += [(h, r.split("\t")[:n_refs]) for h, r in zip(hyps, refs)]
    rng = random.Random(seed)

    def shuffled(line: str) -> str:
        words = line.split()
        rng.shuffle(words)
        return " ".join(words)

    out_h, out_r = [], []
    for j in range(n_hyps):
        h, r = rows[j % len(rows)]
        if j >= len(rows):
            h, r = shuffled(h), [shuffled(x) for x in r]
        out_h.append(h)
        out_r.append(r)
    return out_h, out_r


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _timed_run(cmd: list[str], cwd: Path | None = None,
               env: dict | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """(process, wall seconds, CPU seconds of it and everything it waited for: perl, the JVMs)."""
    t, c = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t, _children_cpu() - c
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc, wall, cpu


def _ours_once(work: Path, cache: Path) -> dict:
    out = work / "ours.json"
    cmd = [sys.executable, "-m", "dialogpt.cli.eval", "--hyp", str(work / "hyp.txt"), "--refs",
           str(work / "refs.tsv"), "--refs-format", "tsv", "--allow-empty", "--output-json", str(out)]
    _, wall, cpu = _timed_run(cmd, cwd=REPO, env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "scores": json.loads(out.read_text())}


def run_ours(work: Path, cache: Path) -> dict:
    """``first_run`` with the empty ``cache``, then ``later_run`` with only the table's index kept."""
    cache.mkdir()
    first = _ours_once(work, cache)
    kept = cache / "dialogpt" / "meteor-paraphrase"
    cut = list(kept.glob("*.gz"))
    if len(cut) != 1 or len([p for p in kept.glob("table-*") if p.is_dir()]) != 1:
        raise SystemExit(f"expected one cut table and one table index in {kept}, found {sorted(kept.iterdir())}")
    cut[0].unlink()
    return {"first_run": first, "later_run": _ours_once(work, cache)}


_OFFICIAL = """
import json, sys
sys.path.insert(0, ".")
from metrics import nlp_metrics
nist, bleu, meteor, entropy, div, avg_len = nlp_metrics({refs!r}, {hyp!r}, fld_out={fld!r})
out = {{f"nist{{n}}": v for n, v in enumerate(nist, 1)}}
out.update({{f"bleu{{n}}": v for n, v in enumerate(bleu, 1)}})
out["meteor"] = meteor
out.update({{f"entropy{{n}}": float(v) for n, v in enumerate(entropy, 1)}})
out.update({{"dist1": div[0], "dist2": div[1], "avg_len": float(avg_len)}})
print(json.dumps(out))
"""


def run_official(scorer: Path, work: Path, n_refs: int, fld: Path) -> dict:
    for need in ("metrics.py", "3rdparty/mteval-v14c.pl", "3rdparty/meteor-1.5/meteor-1.5.jar"):
        if not (scorer / need).exists():
            raise SystemExit(f"--official {scorer}: no {need} (see tests/README.md for how to get the scorer)")
    fld.mkdir()  # DSTC7's util.makedirs recurses forever on a missing folder
    code = _OFFICIAL.format(refs=[str(work / f"ref{i}.txt") for i in range(n_refs)], hyp=str(work / "hyp.txt"),
                            fld=str(fld))
    proc, wall, cpu = _timed_run([sys.executable, "-c", code], cwd=scorer)
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "scores": json.loads(proc.stdout.strip().splitlines()[-1])}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (its CPU seconds and scores), and every run's times."""
    mid = sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]
    return {**mid, "runs": [{k: r[k] for k in ("seconds", "cpu_seconds", "load_average_1min_before")}
                            for r in runs]}


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def run(n_hyps: int, n_refs: int, official: Path | None, repeats: int = 1) -> dict:
    """``repeats`` rounds of official, then ours (first and later run): on a shared host whose speed
    drifts, alternating keeps the two sides under the same conditions; each side reports its median."""
    hyps, refs = dstc_corpus(n_hyps, n_refs)
    runs: dict[str, list[dict]] = {"official": [], "first_run": [], "later_run": []}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        work = Path(tmp)
        # DSTC7's own layout: '\n'.join (no final newline), one file per reference slot
        (work / "hyp.txt").write_text("\n".join(hyps), encoding="utf-8")
        (work / "refs.tsv").write_text("\n".join("\t".join(r) for r in refs), encoding="utf-8")
        for i in range(n_refs):
            (work / f"ref{i}.txt").write_text("\n".join(r[i] for r in refs), encoding="utf-8")
        for k in range(repeats):
            if official is not None:
                load = _load()
                runs["official"].append({**run_official(official, work, n_refs, work / f"official{k}"),
                                         "load_average_1min_before": load})
            load = _load()
            for name, r in run_ours(work, work / f"cache{k}").items():
                runs[name].append({**r, "load_average_1min_before": load})
    result = {"n_hyps": n_hyps, "n_refs": n_refs, "text": "DSTC-7 Task 2 (tests/data/reference_metrics)",
              "cpu_count": os.cpu_count(), "repeats": repeats}
    if official is not None:
        result["official"] = _median_run(runs["official"])
    result["ours"] = {name: _median_run(runs[name]) for name in ("first_run", "later_run")}
    if official is not None:
        o = result["official"]
        result["speedup"] = {name: {"wall": round(o["seconds"] / u["seconds"], 2),
                                    "cpu": round(o["cpu_seconds"] / u["cpu_seconds"], 2)}
                             for name, u in result["ours"].items()}
        result["max_abs_difference"] = {
            k: float(f"{max(abs(u['scores'][k] - v) for u in result['ours'].values()):.3g}")
            for k, v in o["scores"].items()}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100 hypotheses: a smoke run")
    p.add_argument("--n-hyps", type=int, default=None, help="default 6000 (the 6K multi-reference set)")
    p.add_argument("--n-refs", type=int, default=6)
    p.add_argument("--official", type=Path, default=None, metavar="DIR",
                   help="DSTC7's evaluation/src folder with 3rdparty/: time the official scorer side by side")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds of official-then-ours; each side reports its median run (default 1)")
    args = p.parse_args(argv)
    n = args.n_hyps or (100 if args.quick else 6000)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    print(json.dumps(run(n, args.n_refs, args.official, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
