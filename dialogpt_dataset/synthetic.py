"""Seeded, realistic synthetic Pushshift dumps, for tests, the benchmark and ``make demo``.

Real dumps are tens of GB and cannot ship; the real Pushshift samples in ``tests/data/pushshift``
are single records, not threads. This generator writes whole months with what the extractor must
cope with: nested threads (deep chains, and popular comments with many distinct replies, the
multi-reference contexts), ``[deleted]``/``[removed]`` bodies, ``&gt;`` quotes, scores (some
negative, some missing), URLs, markdown links, hashtags, unicode (accents, CJK, emoji), bots, all
caps, repetitions, over-long comments, and schema drift, in every compression the reader supports.
Same seed and month -> byte-identical files.

Drift comes in two levels. ``drift=True``: what real dumps show and the original extractor reads the
same way as we do (``created_utc`` as int/str/float, ``_meta`` fields, no ``subreddit`` field,
``"score": null``, ``num_comments`` as a string), so its output is an oracle for ours on these
files. ``drift="extreme"`` adds records the original cannot read (``t1_``-prefixed ids, no
``score`` key, no ``num_comments``: it skips or mislinks them with a traceback) and we tolerate.

    from dialogpt_dataset.synthetic import write_month
    write_month("dumps/", "2006-01", n_comments=5000, compression="zst", seed=0)
"""

from __future__ import annotations

import bz2
import calendar
import gzip
import io
import json
import lzma
import os
import random
from dataclasses import dataclass
from pathlib import Path

import zstandard

COMPRESSIONS = ("zst", "bz2", "xz", "gz", "json")

_WORDS = (
    "the a I you we they it this that what why how when where who is are was were be have has do does did "
    "not no yes just really very so too also only even still already maybe probably actually basically "
    "think know see want need like love hate feel guess mean say tell make take get give go come look try "
    "use work play watch read write find keep call ask seem leave put "
    "good bad great best better worse new old big small long short right wrong sure real funny weird "
    "nice cool awesome terrible interesting important hard easy free full true "
    "time people year day way thing man world life game movie book song car dog cat house school job "
    "money friend family city story idea point question answer problem reason place part week night "
    "phone computer internet music food water coffee beer pizza team player fan show episode season"
).split()
_SUBREDDITS = ("reddit.com", "programming", "science", "politics", "pics", "funny", "gaming",
               "askreddit", "worldnews", "technology", "movies", "music")
_UNICODE = ("café", "naïve", "日本語のテキスト", "😀", "Zürich", "—", "smart “quotes”", "€5")
_BOTS = ("AutoModerator", "RemindMeBot", "totesmessenger")


@dataclass
class MonthStats:
    month: str
    submissions: int
    comments: int
    rs_path: Path | None
    rc_path: Path | None


def _month_start(month: str) -> int:
    y, m = map(int, month.split("-"))
    return calendar.timegm((y, m, 1, 0, 0, 0))


def _b36(n: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if n == 0:
            return out


class _Gen:
    def __init__(self, month: str, seed: int, drift: bool | str):
        self.rng = random.Random(f"{seed}:{month}")
        self.month = month
        self.t0 = _month_start(month)
        self.drift = drift
        y, m = map(int, month.split("-"))
        self.id_base = ((y - 2005) * 12 + m) * 10**8 + seed * 10**7

    def sentence(self, lo: int = 3, hi: int = 18) -> str:
        r = self.rng
        words = r.choices(_WORDS, k=r.randint(lo, hi))
        words[0] = words[0].capitalize()
        return " ".join(words) + r.choice((".", ".", ".", "!", "?", "", ","))

    def body(self) -> str:
        r = self.rng
        x = r.random()
        if x < 0.04:
            return "[deleted]"
        if x < 0.06:
            return "[removed]"
        if x < 0.09:
            return f"&gt; {self.sentence()}\n\n{self.sentence()}"
        if x < 0.11:
            return f"{self.sentence()} http://example.com/{_b36(r.randint(0, 10**6))}"
        if x < 0.12:
            return f"https://i.imgur.com/{_b36(r.randint(0, 10**6))}.jpg"
        if x < 0.14:
            return f"See [this link](http://example.org/{r.randint(1, 999)}) {self.sentence()}"
        if x < 0.16:
            return f"{self.sentence()} {r.choice(_UNICODE)} {self.sentence(2, 6)}"
        if x < 0.17:
            return "日本語 の コメント です よろしく お願い します"
        if x < 0.18:
            return f"WHAT {self.sentence().upper()}"
        if x < 0.19:
            w = r.choice(_WORDS)
            return f"{w} {w} {w} {self.sentence(2, 5)}"
        if x < 0.21:
            return " ".join(self.sentence(10, 16) for _ in range(3))  # > 30 words
        if x < 0.22:
            return f"#{r.choice(_WORDS)} {self.sentence()}"
        if x < 0.23:
            return r.choice(_WORDS)  # one word: too short
        if x < 0.235:
            return f"{self.sentence(2, 6)} shit {self.sentence(2, 6)}"  # blocklisted word: weight 0.0
        if x < 0.245:
            return f"{self.sentence()} (edit: {self.sentence(2, 4)})"  # brackets: the "tags" rule
        if x < 0.3:
            return f"{self.sentence()}\n{self.sentence()}"
        return self.sentence()

    def created(self, t: int):
        if not self.drift:
            return t
        x = self.rng.random()
        return str(t) if x < 0.2 else (float(t) if x < 0.4 else t)

    def score(self):
        r = self.rng
        if self.drift and r.random() < 0.02:
            return None
        return r.choice((-3, -1, 0, 1, 1, 1, 2, 2, 3, 5, 8, 13, 40, 120))

    def record_extras(self, rec: dict) -> dict:
        r = self.rng
        if self.drift and r.random() < 0.2:
            rec["_meta"] = {"retrieved_2nd_on": self.t0 + 40 * 86400}
        if not self.drift or r.random() > 0.1:
            rec["subreddit"] = rec.pop("_sub")
        else:
            rec.pop("_sub")
        # fields real dumps carry, so the benchmark parses realistic line sizes
        rec.update({"gilded": 0, "edited": False, "controversiality": 0, "distinguished": None,
                    "retrieved_on": self.t0 + 30 * 86400, "archived": True, "stickied": False,
                    "author_flair_text": None, "author_flair_css_class": None, "ups": 1, "downs": 0})
        return rec


def _submission(g: _Gen, sid: str, sub: str, t: int, size: int) -> dict:
    r = g.rng
    title = g.sentence(4, 12).rstrip(".,")
    submission = {
        "id": sid, "author": f"user{r.randint(1, 5000)}", "title": title,
        "selftext": r.choice(("", "", g.sentence(), "[deleted]")), "score": g.score(),
        "num_comments": size if r.random() > 0.03 else 1, "created_utc": g.created(t),
        "permalink": f"/r/{sub}/comments/{sid}/x/", "domain": f"self.{sub}", "is_self": True,
        "_sub": sub,
    }
    if g.drift and r.random() < 0.05:
        if g.drift == "extreme":
            submission.pop("num_comments")
        else:
            submission["num_comments"] = str(submission["num_comments"])
    return g.record_extras(submission)


def _comment(g: _Gen, cid: str, sid: str, sub: str, parent: str, created: int) -> dict:
    r, drift = g.rng, g.drift
    author = r.choice(_BOTS) if r.random() < 0.01 else f"user{r.randint(1, 5000)}"
    body = g.body()
    if author == "AutoModerator":
        body = "I am a bot, and this action was performed automatically."
    rec = {
        "id": ("t1_" + cid) if drift and r.random() < 0.05 and drift == "extreme" else cid,
        "author": author if body != "[deleted]" else "[deleted]",
        "body": body, "score": g.score(), "created_utc": g.created(created),
        "link_id": "t3_" + sid, "parent_id": parent,
        "permalink": f"/r/{sub}/comments/{sid}/x/{cid}/", "_sub": sub,
    }
    if rec["score"] is None and drift == "extreme":
        del rec["score"]  # else "score": null, which the original reads as 0 as we do
    return g.record_extras(rec)


def _parent(r: random.Random, sid: str, ids: list[str], popular: str | None) -> str:
    x = r.random()
    if not ids or x < 0.2:
        return "t3_" + sid
    if popular is not None and x < 0.6:
        return "t1_" + popular
    return "t1_" + r.choice(ids[-4:])  # recent comments -> deep chains


def _with_duplicates(records: list[dict], seed: int, month: str, duplicates: float) -> list[dict]:
    dup = random.Random(f"dup:{seed}:{month}")  # its own stream: the month itself is unchanged
    for rec in [x for x in records if "parent_id" in x and dup.random() < duplicates]:
        again = dict(rec, score=dup.choice((-2, 0, 1, 4, 30)))
        if dup.random() < 0.2:
            again.update(body="[deleted]", author="[deleted]")
        records.append(again)
    return records


def generate_month(month: str, n_comments: int, seed: int = 0, drift: bool | str = True, duplicates: float = 0.0):
    """Yield ("s", submission) then ("c", comment) records for about ``n_comments`` comments.

    ``duplicates``: share of comments emitted once more at the end of the month, as a re-ingested
    record (a new score, or deleted since): real dumps repeat some ids, and the original keeps the
    last copy that passes its comment filters (its dict is keyed by id)."""
    g = _Gen(month, seed, drift)
    r = g.rng
    made = 0
    next_id = g.id_base
    records = []
    while made < n_comments:
        next_id += 1
        sid = _b36(next_id)
        sub = r.choice(_SUBREDDITS)
        t = g.t0 + r.randint(0, 27 * 86400)
        size = min(n_comments - made, r.choice((2, 3, 5, 8, 12, 20, 30, 45)))
        records.append(_submission(g, sid, sub, t, size))
        ids: list[str] = []
        popular = None
        for j in range(size):
            next_id += 1
            cid = _b36(next_id)
            parent = _parent(r, sid, ids, popular)
            if popular is None and j >= 1 and size >= 12:
                popular = ids[0]
            records.append(_comment(g, cid, sid, sub, parent, t + 60 * (j + 1)))
            ids.append(cid)
            made += 1
    if duplicates:
        records = _with_duplicates(records, seed, month, duplicates)
    for rec in records:
        yield ("c" if "parent_id" in rec else "s"), rec


class _Writer:
    def __init__(self, path: Path, compression: str):
        self.raw = open(path, "wb")
        if compression == "zst":
            self.fh = zstandard.ZstdCompressor(level=3).stream_writer(self.raw, closefd=False)
        elif compression == "bz2":
            self.fh = bz2.BZ2File(self.raw, "wb")
        elif compression == "xz":
            self.fh = lzma.LZMAFile(self.raw, "wb")
        elif compression == "gz":
            self.fh = gzip.GzipFile(fileobj=self.raw, mode="wb", mtime=0)  # mtime 0: byte-identical
        else:
            self.fh = self.raw
        self.buf = io.StringIO()

    def write(self, rec: dict) -> None:
        self.buf.write(json.dumps(rec, ensure_ascii=False))
        self.buf.write("\n")
        if self.buf.tell() > 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.fh.write(self.buf.getvalue().encode("utf-8"))
        self.buf = io.StringIO()

    def close(self) -> None:
        self.flush()
        if self.fh is not self.raw:
            self.fh.close()
        self.raw.close()


def write_month(
    out_dir: str | os.PathLike,
    month: str,
    n_comments: int = 2000,
    compression: str = "zst",
    seed: int = 0,
    with_rs: bool = True,
    drift: bool | str = True,
    duplicates: float = 0.0,
) -> MonthStats:
    """Write ``RS_<month>.<ext>`` (unless ``with_rs`` is False) and ``RC_<month>.<ext>``."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression {compression!r}: expected one of {COMPRESSIONS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rs_path = out / f"RS_{month}.{compression}"
    rc_path = out / f"RC_{month}.{compression}"
    rs = _Writer(rs_path, compression) if with_rs else None
    rc = _Writer(rc_path, compression)
    n_s = n_c = 0
    try:
        for kind, rec in generate_month(month, n_comments, seed, drift, duplicates):
            if kind == "s":
                n_s += 1
                if rs is not None:
                    rs.write(rec)
            else:
                n_c += 1
                rc.write(rec)
    finally:
        rc.close()
        if rs is not None:
            rs.close()
    return MonthStats(month, n_s, n_c, rs_path if with_rs else None, rc_path)
