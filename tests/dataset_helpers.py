"""Texts shared by the dataset tests: every text of the fixtures, and seeded strings gpt_norm and the
tokeniser treat specially."""

from __future__ import annotations

import json
import random
from pathlib import Path

from dialogpt_dataset import synthetic

PUSHSHIFT = Path(__file__).resolve().parent / "data" / "pushshift"

_ALPHABET = ("abcXYZ019 ''\"“”.,!?:;()[]{}<>#@&*%$^~=+-_/\\|\n\t…—éü日😀" + "8DPpOo3" + "   ")
_PIECES = ["http://x.co/a", "https://", "www.a.com", "__url__", "URL", "MENTION", "__mention__", "b/c", "w/o",
           "w/", "j/k", "#tag", "...", ". .", ":)", ":-(", ";P", "<3", "@user", "&amp;", "&gt;", "1,000", "3.5",
           "555-1234", "(555) 123-4567", "don't", "o'clock", "'quoted'", "U.S.A.", "a.b", "!!!!", "????", "heyyyyy",
           "x.com", "e-mail", "--", "—", "ʕ•ᴥ•ʔ", "¯\\_(ツ)_/¯", ":D", "D:", "8)", ":'(", "=)", "^_^", "o_O"]


def random_texts(n: int, seed: int = 0) -> list[str]:
    """Seeded strings mixing single characters and pieces gpt_norm/TweetTokenizer treat specially."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(_PIECES) if rng.random() < 0.3 else "".join(rng.choices(_ALPHABET, k=rng.randint(1, 6)))
                 for _ in range(rng.randint(1, 14))]
        out.append("".join(p + rng.choice(["", " ", " ", "  "]) for p in parts))
    return out


def corpus_texts() -> list[str]:
    """Every body, title and selftext of a drifted synthetic month and of the real Pushshift samples."""
    texts = []
    for _, rec in synthetic.generate_month("2006-05", 4000, seed=35, drift="extreme"):
        texts += [str(rec[k]) for k in ("body", "title", "selftext") if rec.get(k)]
    for name in ("test_comments.json", "test_submissions.json"):
        with open(PUSHSHIFT / name, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                texts += [str(rec[k]) for k in ("body", "title", "selftext") if rec.get(k)]
    return texts
