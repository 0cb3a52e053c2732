"""A pure-Python copy of METEOR 1.5's English ``-norm`` step.

Why it exists: the paraphrase-table filter has to know the exact tokens METEOR's aligner sees,
and those come from ``edu.cmu.meteor.util.Normalizer.normalizeLine(line, LANG_EN, true)`` inside
the jar. Starting a JVM only to normalise a corpus costs seconds; this module gives the same
strings in-process. It follows the jar's bytecode step by step (a Moses-tokenizer port), with
Java's regex semantics spelled out: ``\\p{Digit}``/``\\p{Lower}``/``\\s`` are ASCII-only there,
``String.trim()`` drops every char <= U+0020, and ``StringTokenizer`` splits on `` \\t\\n\\r\\f``
only. Steps are skipped when the line lacks the character they act on, which never changes the
result (a regex without its trigger character cannot match) but keeps 40K lines well under a
second.
"""

from __future__ import annotations

import re

__all__ = ["normalize_line", "normalize_lines"]

# The jar's `alpha` and `alnum` class bodies (Latin-1, Latin Extended-A bits, Cyrillic ranges).
_ALPHA = ("A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e"
          "\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f")
_ALNUM = "0-9" + _ALPHA
_JAVA_S = " \t\n\x0b\x0c\r"  # Java's default (ASCII) \s

_SEP_OTHER = re.compile(f"([^{_ALNUM}{_JAVA_S}.'`,\\-\u2018\u2019])")
_MULTI_DOT = re.compile(r"\.(\.+)")
_MULTI_DOT2 = re.compile(r"DOTMULTI\.([^.])")
_COMMAS = (re.compile(r"([^0-9]),([^0-9])"), re.compile(r"([0-9]),([^0-9])"),
           re.compile(r"([^0-9]),([0-9])"))
_QUOTE1 = re.compile("[`\u2018\u2019]")
_QUOTE2 = re.compile("[\u201c\u201d]|''")
_RM_DASH = re.compile(f"([{_ALNUM}.])-([{_ALNUM}])")
# English contractions, applied in this order; the first three split off the apostrophe on both
# sides, the last two attach it to the following word.
_CONTRACTIONS = (
    (re.compile(f"([^{_ALPHA}])'([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([^{_ALPHA}0-9])'([{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])'([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])'([{_ALPHA}])"), r"\1 '\2"),
    (re.compile(r"([0-9])'(s)"), r"\1 '\2"),
)
_HAS_ALPHA = re.compile(f"[{_ALPHA}]")
_ALPHA_SET = frozenset(_HAS_ALPHA.findall("".join(map(chr, range(0x10000)))))
# StringTokenizer splits on " \t\n\r\f" only; str.split() on those and on the chars below, so
# it is used only when none of these is present.
_SPLIT_ONLY_BY_PY = re.compile("[\x0b\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_TOKEN = re.compile("[^ \t\n\r\f]+")
_WHITE = re.compile("[ \u2000-\u200a\u202f\u205f\u3000\u00a0]+")
_JAVA_TRIM = "".join(map(chr, range(0x21)))

# nonbreaking/english.prefixes from the jar: 1 = never ends a sentence, 2 = only before a number.
_PREFIXES = dict.fromkeys(
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z Adj Adm Adv Asst Bart Bldg Brig Bros Capt "
    "Cmdr Col Comdr Con Corp Cpl DR Dr Drs Ens Gen Gov Hon Hr Hosp Insp Lt MM MR MRS MS Maj Messrs "
    "Mlle Mme Mr Mrs Ms Msgr Op Ord Pfc Ph Prof Pvt Rep Reps Res Rev Rt Sen Sens Sfc Sgt Sr St Supt "
    "Surg v vs i.e rev e.g Nos Nr".split(), 1)
_PREFIXES.update(dict.fromkeys(("No", "Art", "pp"), 2))


def _split_punctuation(s: str) -> str:
    """The regex half of normalizeLine, up to (not including) the tokenizer; each step is guarded
    by the character it needs so common lines skip most passes."""
    s = _SEP_OTHER.sub(r" \1 ", s)
    if ".." in s:
        s = _MULTI_DOT.sub(r" DOTMULTI\1", s)
    while "DOTMULTI." in s:
        s = _MULTI_DOT2.sub(r"DOTDOTMULTI \1", s)
        s = s.replace("DOTMULTI.", "DOTDOTMULTI")
    if "," in s:
        s = _commas(s)
    if "`" in s or "\u2018" in s or "\u2019" in s:
        s = _QUOTE1.sub("'", s)
    if "\u201c" in s or "\u201d" in s or "''" in s:
        s = _QUOTE2.sub(' " ', s)
    if "-" in s or "\u2013" in s:
        s = s.replace("\u2013", "-").replace("--", "-")
        s = _RM_DASH.sub(r"\1 \2", s)
    if "'" in s:
        s = _contractions(s)
    return s


def _far_apart(parts: list[str]) -> bool:
    """Whether the separators ``parts`` was split on stand at least 3 chars apart. Then no regex
    match consumes a neighbour another one needs, so each is decided by its own two neighbours
    (the line is space-padded, so every part is non-empty)."""
    return len(parts) < 3 or min(map(len, parts[1:-1])) >= 2


def _commas(s: str) -> str:
    """The three comma passes: every comma not between two digits gets spaces around it."""
    parts = s.split(",")
    if not _far_apart(parts):
        for pattern in _COMMAS:
            s = pattern.sub(r"\1 , \2", s)
        return s
    out = [parts[0]]
    for prev, nxt in zip(parts, parts[1:]):
        out.append("," if "0" <= prev[-1] <= "9" and "0" <= nxt[0] <= "9" else " , ")
        out.append(nxt)
    return "".join(out)


def _contractions(s: str) -> str:
    """The five English apostrophe passes. When the apostrophes are far apart the outcome of each
    depends only on its neighbours x and y: "x 'y" when both are letters or x is a digit and y is
    's', unchanged when x is a digit and y another letter, "x ' y" otherwise."""
    parts = s.split("'")
    if not _far_apart(parts):
        for pattern, repl in _CONTRACTIONS:
            s = pattern.sub(repl, s)
        return s
    out = [parts[0]]
    for prev, nxt in zip(parts, parts[1:]):
        x, y = prev[-1], nxt[0]
        if y not in _ALPHA_SET:
            out.append(" ' ")
        elif x in _ALPHA_SET or (y == "s" and "0" <= x <= "9"):
            out.append(" '")
        else:
            out.append("'" if "0" <= x <= "9" else " ' ")
        out.append(nxt)
    return "".join(out)


def _tokens(s: str) -> list[str]:
    """``java.util.StringTokenizer(s)``'s tokens (whitespace = `` \\t\\n\\r\\f``)."""
    if _SPLIT_ONLY_BY_PY.search(s) is None:
        return s.split()
    return _TOKEN.findall(s)


def _join_with_prefixes(toks: list[str]) -> str:
    """Re-join the tokens, splitting a final '.' off a token unless METEOR treats it as part of an
    abbreviation (a known prefix, a dotted acronym whose dots are dropped, or a lower-case or, for
    numeric-only prefixes, numeric next token)."""
    last = len(toks) - 1
    for i in [i for i, tok in enumerate(toks) if tok[-1] == "." and len(tok) > 1]:
        tok = toks[i]  # toks[i + 1] is still the original: tokens are rewritten left to right
        pre = tok[:-1]
        kind = _PREFIXES.get(pre)
        if "." in pre and _HAS_ALPHA.search(pre):
            toks[i] = tok.replace(".", "")
        elif kind == 1 or (i < last and "a" <= toks[i + 1][0] <= "z"):
            pass
        elif not (kind == 2 and i < last and "0" <= toks[i + 1][0] <= "9"):
            toks[i] = pre + " ."
    return " ".join(toks)


def normalize_line(line: str) -> str:
    """What ``java -cp meteor-1.5.jar edu.cmu.meteor.util.Normalizer en true`` prints for ``line``
    (``normalizeLine(line, LANG_EN, keepPunctuation=True)``)."""
    s = _split_punctuation(" " + line + " ")
    toks = _tokens(s)
    # no '.' anywhere: no token ends in one, so the prefix pass would only re-join
    s = _join_with_prefixes(toks) if "." in s else " ".join(toks)
    while "DOTDOTMULTI" in s:
        s = s.replace("DOTDOTMULTI", "DOTMULTI.")
    if "DOTMULTI" in s:
        s = s.replace("DOTMULTI", ".")
    if not s.isascii():
        s = _WHITE.sub(" ", s)
    return s.strip(_JAVA_TRIM)


def normalize_lines(lines: list[str]) -> list[str]:
    """:func:`normalize_line` of each line, in order (what one jar run over the lines prints)."""
    return [normalize_line(line) for line in lines]
