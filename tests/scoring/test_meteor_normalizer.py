"""The pure-Python METEOR normaliser prints what the jar's ``Normalizer en true`` prints.

The jar is the oracle (one JVM run per test, all lines batched); the hand cases below were taken
from it and need no Java. Lines never hold '\\r' or '\\n': the jar reads stdin line by line.
"""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from metrics_helpers import REF_DIR, need_meteor_jar

from dialogpt.scoring.meteor_normalizer import normalize_line, normalize_lines

# what the normaliser touches: quotes, dashes, dots, commas, apostrophes, digits, symbols,
# Java-vs-Python whitespace, the jar's Latin-1/Cyrillic letters and letters outside them
_CHARS = ("abcsyzABCXYZ0159 \t.,'`\u2018\u2019\u201c\u201d\"-\u2013\u2014!?;:()$%&@#/\\"
          "\x0b\x0c\x1c\xa0\u2009\u3000\u00e9\u00c0\u00d7\u00f7\u00df\u0161\u017e\u0178\u017f"
          "\u0416\u0436\u0527\ua640\u65e5\u672c\u0627\u060c\u00bf\U0001f600")
_WORDS = ["Mr.", "Mrs.", "Dr.", "No. 5", "No.", "Art. 3", "pp.", "U.S.", "e.g.", "i.e.", "vs.", "A.",
          "...", "..", "--", "''", "n't", "'s", "1990's", "$5,000.00", "3.5", "1,000", "well-known",
          "DOTMULTI", "x.", " the", " The"]


def jar_normalise(java: str, jar, lines: list[str]) -> list[str]:
    """The oracle: the jar's own ``Normalizer en true`` (what ``-norm`` does), one JVM for all lines."""
    proc = subprocess.run([java, "-Xmx1g", "-XX:+UseSerialGC", "-cp", str(jar), "edu.cmu.meteor.util.Normalizer",
                           "en", "true"], input="".join(x + "\n" for x in lines).encode("utf-8"),
                          capture_output=True, check=True)
    return proc.stdout.decode("utf-8").split("\n")[:len(lines)]


def _assert_same_as_jar(lines: list[str], monkeypatch) -> None:
    jar = need_meteor_jar()
    # the jar decodes stdin and encodes stdout with the JVM's default charset
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Dfile.encoding=UTF-8 -Dstdout.encoding=UTF-8")
    expected = jar_normalise(shutil.which("java"), jar, lines)
    got = normalize_lines(lines)
    diffs = [(line, g, e) for line, g, e in zip(lines, got, expected) if g != e]
    assert len(got) == len(expected) == len(lines)
    assert not diffs, f"{len(diffs)} of {len(lines)} lines differ, e.g. {diffs[:3]!r}"


def _random_line(rng: random.Random) -> str:
    pieces = [rng.choice(_WORDS) if rng.random() < 0.2 else rng.choice(_CHARS) for _ in range(rng.randint(0, 30))]
    return "".join(pieces)


@pytest.mark.parametrize("line, expected", [
    ("Don't stop, it's fine...", "Don 't stop , it 's fine ..."),
    ("I can't believe it's the 1990's", "I can 't believe it 's the 1990 's"),
    ("The U.S. is big.", "The US is big ."),
    ("Wait... what?!", "Wait ... what ? !"),
    ("It costs $5,000.00, ok", "It costs $ 5,000.00 , ok"),
    ("a -- b - c well-known", "a - b - c well known"),
    ("Mr. Smith met Dr. Who at No. 5 and No. more.", "Mr. Smith met Dr. Who at No. 5 and No. more ."),
    ("\u201cHello,\u201d she said \u2018quietly\u2019", "\" Hello , \" she said ' quietly '"),
    ("rock 'n' roll", "rock ' n ' roll"),
    ("e.g. this, i.e. that.", "eg this , ie that ."),
    ("  \t ", ""),
])
def test_hand_cases_match_what_the_jar_printed(line, expected):
    assert normalize_line(line) == expected


def test_every_reference_case_line_matches_the_jar(monkeypatch):
    lines = []
    for case in sorted(p for p in REF_DIR.iterdir() if (p / "hyp.txt").is_file()):
        lines += (case / "hyp.txt").read_text(encoding="utf-8").splitlines()
        for row in (case / "refs.txt").read_text(encoding="utf-8").splitlines():
            lines += row.split("\t")
    assert len(lines) > 5000, "the reference cases went missing"
    _assert_same_as_jar(lines, monkeypatch)


def test_seeded_random_strings_match_the_jar(monkeypatch):
    rng = random.Random(20150210)
    lines = [_random_line(rng) for _ in range(3000)]
    _assert_same_as_jar(lines, monkeypatch)


def test_hypothesis_strings_match_the_jar(monkeypatch):
    hypothesis = pytest.importorskip("hypothesis", reason="the property test needs hypothesis (the dev extra)")
    st = hypothesis.strategies
    piece = st.one_of(st.sampled_from(list(_CHARS)), st.sampled_from(_WORDS),
                      st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)))
    lines: list[str] = []

    @hypothesis.settings(max_examples=500, deadline=None, derandomize=True, database=None)
    @hypothesis.given(st.lists(piece, max_size=25).map("".join))
    def collect(line):
        lines.append(line)

    collect()
    assert len(lines) > 100
    _assert_same_as_jar(lines, monkeypatch)
