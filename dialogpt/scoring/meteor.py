"""METEOR 1.5 as DSTC7 ran it: ``java -Xmx1g -jar meteor-1.5.jar hyp.txt refs_merged.txt -r N
-l en -norm`` (default task ``rank``), with the corpus split over a few JVMs running at once.

The jar and its ``data/paraphrase-en.gz`` come from the ``pycocoevalcap`` wheel (our ``meteor``
extra), so nobody downloads METEOR by hand. The references file interleaves the references:
line ``j*N + i`` is reference i of hypothesis j. Duplicated references do not change the score.

Why several JVMs, and why the score is still the jar's: the jar is single-threaded and spends most
of its time aligning segments, so each JVM scores one contiguous shard with ``-ssOut`` (the per-segment
sufficient statistics it would otherwise add up itself), and :func:`meteor_from_stats` adds them up
and applies ``MeteorScorer.computeMetrics`` exactly as the jar does for its ``Final score:`` line
(same sums, same float operations: equal to the last bit on the reference cases). Each JVM pays a
fixed start-up cost, so shards are only made for large corpora.

Why the jar gets a paraphrase table cut to the corpus: parsing the full table costs each JVM about
8 s before it scores anything; :mod:`meteor_paraphrase` builds the cut table (same statistics, bit for
bit) in less. A JVM with the small table starts in under a second, so on a multi-core machine the
corpus is split over one JVM per core, and those JVMs run HotSpot's quick C1 compiler only
(``-XX:TieredStopAtLevel=1``): on short runs C2's compiler threads cost more CPU than they save (two
JVMs over 6,000 x 6 on 2 cores: 5.9 s and 11.7 CPU-s with C1, 10.2 s and 20 CPU-s with C2). The
flags change no number: Java's floating point is the same under either compiler.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .meteor_paraphrase import filtered_table


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


#: ``-l en -t rank`` (the jar's defaults for English): alpha, beta, gamma, delta ...
RANK_PARAMS = (0.85, 0.2, 0.6, 0.75)
#: ... and the weights of its modules exact, stem, synonym, paraphrase.
RANK_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
#: Segments per JVM below which one more JVM costs more than it saves. With the cut table a JVM costs
#: about 1 CPU-s to start (synonyms, stemmer, function words) ...
SEGMENTS_PER_JOB = 1000
#: ... with the full table about 9 CPU-s more (6,000 x 6 on 2 cores: one JVM 14-16 s, two 17 s).
SEGMENTS_PER_JOB_FULL_TABLE = 20000
#: HotSpot's C1 compiler only: for the short runs of a JVM with the cut table (see the module docstring).
QUICK_JIT = "-XX:TieredStopAtLevel=1"
_N_STATS = 23  # tstLen refLen tstFunc refFunc, 4 x (tstContent refContent tstFunction refFunction), chunks, 2 word counts


def _one_line(text: str) -> str:
    # DSTC7 wrote one segment per line; a stray newline would shift every later segment.
    return text.replace("\r", " ").replace("\n", " ")


def _java_error(stderr: str, heap: str) -> str:
    """The Java exception line (``java.lang.OutOfMemoryError: Java heap space``...), not the last
    stack frame, plus what to do about it."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip()]
    cause = next((x for x in lines if not x.startswith("at ") and re.search(r"(Exception|Error)\b", x)),
                 lines[-1] if lines else "(no output on stderr)")
    if "OutOfMemoryError" in cause:
        return f"{cause} (the JVM ran with -Xmx{heap}: give it more with --meteor-heap, e.g. 4g)"
    return f"{cause} (pass --no-meteor to score without METEOR)"


def meteor_from_stats(rows: Sequence[Sequence[float]], params: Sequence[float] = RANK_PARAMS,
                      weights: Sequence[float] = RANK_WEIGHTS) -> float:
    """Corpus METEOR from per-segment ``-ssOut`` rows, as the jar's ``MeteorStats.addStats`` and
    ``MeteorScorer.computeMetrics`` compute its ``Final score``.

    Quirk kept: a segment that matches its reference perfectly in one chunk adds no chunk.
    """
    alpha, beta, gamma, delta = params
    agg = [0.0] * _N_STATS
    for v in rows:
        tst_total = sum(v[4 + 4 * i] + v[6 + 4 * i] for i in range(4))
        ref_total = sum(v[5 + 4 * i] + v[7 + 4 * i] for i in range(4))
        perfect = tst_total == v[0] and ref_total == v[1] and v[20] == 1
        for i in range(_N_STATS):
            if not (i == 20 and perfect):
                agg[i] += v[i]
    tst_len, ref_len, tst_func, ref_func = agg[:4]
    tst_wlen = delta * (tst_len - tst_func) + (1.0 - delta) * tst_func
    ref_wlen = delta * (ref_len - ref_func) + (1.0 - delta) * ref_func
    tst_wm = ref_wm = 0.0
    for i in range(4):  # content matches, then function-word matches: the jar's order of additions
        tst_wm += agg[4 + 4 * i] * weights[i] * delta
    for i in range(4):
        ref_wm += agg[5 + 4 * i] * weights[i] * delta
    for i in range(4):
        tst_wm += agg[6 + 4 * i] * weights[i] * (1.0 - delta)
    for i in range(4):
        ref_wm += agg[7 + 4 * i] * weights[i] * (1.0 - delta)
    tst_matches = sum(agg[4 + 4 * i] + agg[6 + 4 * i] for i in range(4))
    ref_matches = sum(agg[5 + 4 * i] + agg[7 + 4 * i] for i in range(4))
    try:
        precision, recall = tst_wm / tst_wlen, ref_wm / ref_wlen
        f_mean = 1.0 / (((1.0 - alpha) / precision) + (alpha / recall))
        if tst_matches == tst_len and ref_matches == ref_len and agg[20] == 1:
            frag = 0.0
        else:
            frag = agg[20] / ((tst_matches + ref_matches) / 2)
        score = f_mean * (1.0 - gamma * math.pow(frag, beta))
    except ZeroDivisionError:  # Java's NaN/Infinity cases: the jar reports 0
        return 0.0
    return 0.0 if math.isnan(score) else max(score, 0.0)


def default_jobs(n_segments: int, full_table: bool = False) -> int:
    """JVMs to run at once: one per :data:`SEGMENTS_PER_JOB` segments (or
    :data:`SEGMENTS_PER_JOB_FULL_TABLE`), at most one per CPU core."""
    per_job = SEGMENTS_PER_JOB_FULL_TABLE if full_table else SEGMENTS_PER_JOB
    return max(1, min(os.cpu_count() or 1, n_segments // per_job))


def _start_shard(cmd_head: list[str], hyps, refs, folder: Path, cmd_tail: Sequence[str] = ()):
    folder.mkdir()
    (folder / "hyp.txt").write_text("".join(_one_line(h) + "\n" for h in hyps), encoding="utf-8")
    (folder / "refs.txt").write_text("".join(_one_line(r) + "\n" for row in refs for r in row), encoding="utf-8")
    out, err = open(folder / "stats.txt", "wb"), open(folder / "stderr.txt", "wb")
    proc = subprocess.Popen(cmd_head + [str(folder / "hyp.txt"), str(folder / "refs.txt"), "-r", str(len(refs[0])),
                                        "-l", "en", "-norm", "-ssOut", *cmd_tail], stdout=out, stderr=err)
    out.close()
    err.close()
    return proc


def _fill(row: Sequence[str], width: int) -> list[str]:
    """A row's distinct references, cycled to ``width`` (the jar needs the same count per segment)."""
    uniq = list(dict.fromkeys(row))
    return [uniq[i % len(uniq)] for i in range(width)]


def _shards(refs: Sequence[Sequence[str]], jobs: int) -> list[tuple[list[int], int]]:
    """(segment indices, references per segment) of each JVM's shard.

    The jar aligns a segment with every reference and keeps the best (the first of equal scores), so a
    repeated reference (DSTC7's slot 2 is used twice) only costs time: each row keeps its distinct
    references. Rows are grouped by that count (the corpus score is a sum over segments, so their
    order does not matter) and each shard passes ``-r`` = the largest count in it.
    """
    order = sorted(range(len(refs)), key=lambda i: len(set(refs[i])))
    k = max(1, min(jobs, len(order)))
    bounds = [len(order) * i // k for i in range(k + 1)]
    out = []
    for i in range(k):
        idx = order[bounds[i]:bounds[i + 1]]
        out.append((idx, max(len(set(refs[j])) for j in idx)))
    return out


def meteor(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, heap: str = "1g",
           jar: str | os.PathLike | None = None, timeout: float | None = None, jobs: int | None = None,
           filter_paraphrases: bool = True) -> float:
    """Corpus METEOR 1.5 (``-l en -norm``) of ``hyps`` against ``refs`` (same number per row).

    ``jobs`` JVMs score shards at once (default :func:`default_jobs`); the result does not
    depend on it. ``heap`` is each JVM's ``-Xmx``. ``filter_paraphrases`` passes the jar a paraphrase
    table cut to the corpus (:func:`~.meteor_paraphrase.filtered_table`; same scores, no 8 s load).
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference rows")
    if not hyps:
        raise ValueError("METEOR of zero hypotheses is undefined")
    n_cols = {len(r) for r in refs}
    if len(n_cols) != 1 or 0 in n_cols:
        raise ValueError(f"METEOR needs the same number (>= 1) of references per hypothesis, got {sorted(n_cols)}")
    jar_path = Path(jar) if jar is not None else find_meteor_jar()
    java = find_java()  # before the table work: no Java is a one-line error, at once
    cmd_tail: list[str] = []
    if filter_paraphrases:
        texts = [_one_line(h) for h in hyps] + [_one_line(r) for row in refs for r in dict.fromkeys(row)]
        cmd_tail = ["-a", str(filtered_table(jar_path, texts))]
    # DSTC7's command line; the serial GC and C1 only save CPU (the score does not depend on them).
    jit = [QUICK_JIT] if filter_paraphrases else []
    cmd = [java, f"-Xmx{heap}", "-XX:+UseSerialGC", *jit, "-jar", str(jar_path)]
    shards = _shards(refs, jobs or default_jobs(len(hyps), full_table=not filter_paraphrases))
    with tempfile.TemporaryDirectory(prefix="meteor-") as tmp:
        folders = [Path(tmp) / f"shard{i}" for i in range(len(shards))]
        procs = [_start_shard(cmd, [hyps[i] for i in idx], [_fill(refs[i], width) for i in idx], d, cmd_tail)
                 for (idx, width), d in zip(shards, folders)]
        try:
            for p in procs:
                p.wait(timeout=timeout)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        rows: list[list[float]] = []
        for p, d, (idx, _) in zip(procs, folders, shards):
            lines = [x for x in (d / "stats.txt").read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
            if p.returncode != 0 or len(lines) != len(idx):
                err = _java_error((d / "stderr.txt").read_text(encoding="utf-8", errors="replace"), heap)
                raise MeteorError(f"meteor-1.5.jar failed (exit {p.returncode}): {err}")
            rows.extend([float(x) for x in line.split()] for line in lines)
    return meteor_from_stats(rows)
