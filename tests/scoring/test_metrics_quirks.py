"""Hand-derived cases for each behaviour of the official tools that dialogpt.scoring copies."""

from __future__ import annotations

import math
import os

import pytest

from dialogpt.scoring import (
    InputError,
    MeteorError,
    clean_str,
    corpus_bleu,
    corpus_nist,
    diversity,
    meteor,
    mteval_tokenize,
    nist_bleu,
    prepare,
    score_all,
    tokenize_for_mteval,
)
from dialogpt.scoring.diversity import distinct, entropy
from dialogpt.scoring.refs import (
    dstc_hyps_refs,
    dstc_ref_text,
    read_dstc_submission,
    select_reference_indices,
    sniff_refs_format,
)

# ---------------------------------------------------------------- mteval-v14c tokenisation


def test_url_placeholder_is_five_tokens_for_mteval_but_one_for_diversity():
    assert mteval_tokenize("see __url__") == ["see", "_", "_", "url", "_", "_"]
    assert diversity(["see __url__"])["avg_len"] == 2.0


def test_empty_line_is_scored_as_the_empty_segment():
    assert tokenize_for_mteval("") == ["_", "_", "empty", "_", "_"]
    # a line of spaces is not empty for _write_xml: it stays, and has no tokens
    assert tokenize_for_mteval("   ") == []


def test_mteval_punctuation_rules():
    # apostrophe not split; '.' and ',' kept inside numbers; '-' split only after a digit
    assert mteval_tokenize("Don't pay 3.50, ok.") == ["don't", "pay", "3.50", ",", "ok", "."]
    assert mteval_tokenize("well-known 1990-2000 a.b") == ["well-known", "1990", "-", "2000", "a", ".", "b"]
    assert mteval_tokenize("x(y)*z#1@q/r") == ["x", "(", "y", ")", "*", "z", "#", "1", "@", "q", "/", "r"]
    # tr/[A-Z]/[a-z]/ lowercases ASCII only
    assert mteval_tokenize("ÉCOLE Ab") == ["École", "ab"]
    # v14c keeps URLs whole
    assert mteval_tokenize("go to https://x.org/a_b?c=1 now") == ["go", "to", "https://x.org/a_b?c=1", "now"]


def test_xml_step_removes_ampersand_and_less_than():
    assert tokenize_for_mteval("a&b<c>d") == ["a", "b", "c", ">", "d"]


# ---------------------------------------------------------------- NIST


def test_nist_by_hand_multi_reference_info_and_average_length_penalty():
    # refs "a b c" and "a c": 5 reference words; counts a:2 b:1 c:2, "a b":1, "b c":1, "a c":1
    hyp, refs = [["a", "b"]], [[["a", "b", "c"], ["a", "c"]]]
    info_a, info_b = -math.log2(2 / 5), -math.log2(1 / 5)
    info_ab = -math.log2(1 / 2)          # count("a b") / count("a")
    beta = -math.log(0.5) / math.log(1.5) ** 2
    bp = math.exp(-beta * math.log(2 / 2.5) ** 2)  # hyp length 2 / mean ref length 5/2
    nist = corpus_nist(hyp, refs, max_n=2)
    assert nist[0] == pytest.approx((info_a + info_b) / 2 * bp, abs=1e-12)
    assert nist[1] == pytest.approx(((info_a + info_b) / 2 + info_ab / 1) * bp, abs=1e-12)


def test_nist_perl_quirk_prefix_zero_uses_the_unigram_denominator():
    # "0" is false in Perl, so info("0 x") = -log2(1 / total words) = 1, not -log2(1/1) = 0
    nist = corpus_nist([["0", "x"]], [[["0", "x"]]], max_n=2)
    assert nist == pytest.approx([1.0, 2.0])
    nist = corpus_nist([["y", "x"]], [[["y", "x"]]], max_n=2)
    assert nist == pytest.approx([1.0, 1.0])


def test_duplicated_reference_column_moves_nist_but_not_bleu():
    hyps = ["the cat sat", "a dog ran far"]
    r0 = ["the cat sat down", "a dog ran"]
    r2 = ["cats sit", "the dog ran far away"]
    once = [[a, b] for a, b in zip(r0, r2)]
    twice = [[a, b, b] for a, b in zip(r0, r2)]
    n1, b1 = nist_bleu(hyps, once)
    n2, b2 = nist_bleu(hyps, twice)
    assert b1 == pytest.approx(b2, abs=1e-12)
    assert abs(n1[3] - n2[3]) > 1e-3


def test_nist_rejects_ragged_reference_columns():
    with pytest.raises(ValueError, match="same number"):
        corpus_nist([["a"], ["b"]], [[["a"]], [["b"], ["c"]]])


# ---------------------------------------------------------------- BLEU


def test_bleu_zero_match_order_is_smoothed_at_corpus_level():
    # mteval-v14c bleu_score: p1 = 3/4, p2 = 2/3, p3 = 1/2; no 4-gram matches, smooth 1 -> 2: p4 = 1 / (2 * 1)
    bleu = corpus_bleu([["a", "b", "c", "d"]], [[["a", "b", "c", "e"]]])
    assert bleu[0] == pytest.approx(3 / 4, abs=1e-15)
    assert bleu[1] == pytest.approx(math.sqrt(3 / 4 * 2 / 3), abs=1e-15)
    assert bleu[2] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3), abs=1e-15)
    assert bleu[3] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** (1 / 4), abs=1e-15)  # not 0


def test_bleu_smoothing_doubles_at_each_zero_match_order():
    # p1 = 2/4, p2 = 1/3; 3-grams: 2, none matches -> smooth 2: 1/(2*2); 4-grams: 1, none -> smooth 4: 1/(4*1)
    bleu = corpus_bleu([["a", "b", "c", "d"]], [[["a", "b", "x", "y"]]])
    assert bleu[2] == pytest.approx((1 / 2 * 1 / 3 * 1 / 4) ** (1 / 3), abs=1e-15)
    assert bleu[3] == pytest.approx((1 / 2 * 1 / 3 * 1 / 4 * 1 / 4) ** (1 / 4), abs=1e-15)
    # nothing matches at all: p1 = 1/(2*2), p2 = 1/(4*1), and 3-/4-grams do not exist (precision 1)
    bleu = corpus_bleu([["a", "b"]], [[["c", "d"]]])
    assert bleu == pytest.approx([1 / 4, 1 / 4, (1 / 16) ** (1 / 3), 1 / 2], abs=1e-15)


def test_bleu_order_without_hypothesis_ngrams_has_precision_one():
    # two-token replies: no 3-/4-grams in the corpus -> those orders contribute precision 1 (and no smoothing step)
    bleu = corpus_bleu([["a", "b"], ["c", "d"]], [[["a", "b"]], [["c", "e"]]])
    p1, p2 = 3 / 4, 1 / 2
    assert bleu == pytest.approx([p1, (p1 * p2) ** (1 / 2), (p1 * p2) ** (1 / 3), (p1 * p2) ** (1 / 4)], abs=1e-15)
    # counts are pooled over the corpus before smoothing: the one-word reply adds to p1 only
    bleu = corpus_bleu([["a", "b", "c", "d"], ["x"]], [[["a", "b", "c", "e"]], [["x"]]])
    assert bleu[3] == pytest.approx((4 / 5 * 2 / 3 * 1 / 2 * 1 / 2) ** (1 / 4), abs=1e-15)


def test_bleu_is_zero_without_any_hypothesis_token():
    assert corpus_bleu([[]], [[["a", "b"]]]) == [0.0, 0.0, 0.0, 0.0]


def test_bleu_closest_reference_length_ties_go_to_the_shorter():
    # hyp length 3, refs of length 2 and 4 are equally close: mteval takes 2 -> no brevity penalty
    bleu = corpus_bleu([["a", "b", "c"]], [[["a", "b"], ["a", "b", "c", "d"]]], max_n=1)
    assert bleu[0] == pytest.approx(1.0)
    # a single longer reference does penalise: exp(1 - 4/3)
    bleu = corpus_bleu([["a", "b", "c"]], [[["a", "b", "c", "d"]]], max_n=1)
    assert bleu[0] == pytest.approx(math.exp(1 - 4 / 3))


# ---------------------------------------------------------------- entropy / distinct / length


def test_diversity_by_hand():
    h = ["a b", "a"]
    assert entropy(h, 1)[0] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    assert distinct(h, 1) == [pytest.approx(2 / 3)]
    # n-grams never cross lines: "a" / "b" has no bigram at all
    with pytest.raises(ValueError, match="Distinct-2"):
        distinct(["a", "b"], 2)
    # pooled over the corpus, not averaged per sentence: 3 distinct of 4 unigrams
    assert distinct(["x y", "x z"], 1) == [pytest.approx(3 / 4)]
    assert diversity(["a b", "", "c"])["avg_len"] == 1.0  # an empty line counts 0


# ---------------------------------------------------------------- DSTC7 reference selection


@pytest.mark.parametrize("n_avail, slots", [
    (7, [0, 2, 2, 3, 4, 5]), (6, [0, 2, 2, 3, 4, 5]), (5, [0, 2, 2, 3, 4, 0]),
    (3, [0, 2, 2, 0, 2, 2]), (2, [0, 0, 0, 0, 0, 0]), (1, [0, 0, 0, 0, 0, 0]),
])
def test_vshuman_slots_as_dstc_py_default(n_avail, slots):
    assert select_reference_indices(n_avail, 6, vshuman=1) == slots


def test_without_vshuman_slots_cycle():
    assert select_reference_indices(4, 6, vshuman=-1) == [0, 1, 2, 3, 0, 1]


def test_prepare_pads_ragged_rows_by_cycling_and_accepts_bare_strings():
    hyps, rows = prepare(["x", "y"], [["a", "b", "c"], "d"])
    assert rows == [["a", "b", "c"], ["d", "d", "d"]]
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        prepare(["x", "y"], [["a"]])


def test_ref_text_is_cut_at_a_second_pipe():
    assert dstc_ref_text("a | b") == "a "


def test_submission_last_column_keys_sorted_duplicate_keeps_last(tmp_path):
    sub = tmp_path / "sub.txt"
    sub.write_text("h2\tctx\tsecond\nh9\tctx\tnot a key\nh1\tctx\tfirst old\nh1\tctx\tfirst new\n")
    s = read_dstc_submission(sub, ["h1", "h2", "h3"])
    assert s.keys == ["h1", "h2"] and s.hyps == ["first new", "second"]
    sub.write_text("h1\tctx\tok\nh2\n")
    with pytest.raises(InputError, match=r"sub.txt:2: submission line has no TAB"):
        read_dstc_submission(sub, ["h1", "h2"])


def test_dstc_hyps_refs_select_after_key_lookup(tmp_path):
    (tmp_path / "keys.txt").write_text("k2\nk1\n")
    (tmp_path / "sub.txt").write_text("k2\tb\nk1\ta\n")
    (tmp_path / "refs.txt").write_text(
        "k1\t1.0|r0\t1.0|r1\t1.0|r2\n" "k2\t1.0|s0\t1.0|s1\t1.0|s2\t1.0|s3\t1.0|s4\t1.0|s5\t1.0|s6\n")
    hyps, refs = dstc_hyps_refs(tmp_path / "sub.txt", tmp_path / "refs.txt", tmp_path / "keys.txt")
    assert hyps == ["a", "b"]
    assert refs == [["r0", "r2", "r2", "r0", "r2", "r2"], ["s0", "s2", "s2", "s3", "s4", "s5"]]
    assert sniff_refs_format(tmp_path / "refs.txt") == "legacy"
    assert sniff_refs_format(tmp_path / "sub.txt") == "tsv"


# ---------------------------------------------------------------- clean_str


def test_clean_str_readme_example():
    assert clean_str("I don't know:). how about this?https://github.com") == \
        "i do n't know :) . how about this ? __url__"


@pytest.mark.parametrize("raw, cleaned", [
    ("please try [ GitHub ] ( https://github.com )", "please try github"),
    ("I won't, can't", "i will n't , can n't"),
    ("tell 'em... now", "tell ' em ... now"),
    ("formula1 rocks", "formula 1 rocks"),              # nltk 3.10's TweetTokenizer
    ("*bold* über-cool #tag @me a_b &amp", "bold ber cool tag me a b amp"),
    ("日本語", ""),                                     # non-ASCII only -> empty
    ("he's here, they're there", "he 's here , they 're there"),
])
def test_clean_str_cases(raw, cleaned):
    assert clean_str(raw) == cleaned


def test_cleaning_applies_to_hypotheses_and_references():
    s = score_all(["I don't know:)"], [["i DO N'T know :)"]], clean=True, compute_meteor=False)
    assert s["bleu4"] == pytest.approx(1.0)


# ---------------------------------------------------------------- METEOR failure modes


def test_meteor_without_java_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MeteorError, match="Java"):
        meteor(["a"], [["a"]])


def test_meteor_out_of_memory_quotes_the_java_exception_and_says_what_to_do():
    # 8 MB cannot hold the synonym and (corpus-filtered) paraphrase tables: the JVM dies with OutOfMemoryError, whose line must be
    # quoted (not the last stack frame, "at Meteor.main(Unknown Source)") with the flag that fixes it
    with pytest.raises(MeteorError) as e:
        meteor(["a b"], [["a b"]], heap="8m")
    msg = str(e.value)
    assert "java.lang.OutOfMemoryError" in msg and "--meteor-heap" in msg and "-Xmx8m" in msg
    assert "\n" not in msg and " at " not in msg


def test_meteor_with_missing_jar_names_it(monkeypatch, tmp_path):
    monkeypatch.setenv("METEOR_JAR", os.fspath(tmp_path / "meteor-1.5.jar"))
    with pytest.raises(MeteorError, match="meteor-1.5.jar"):
        meteor(["a"], [["a"]])


def test_score_all_reports_missing_java_before_scoring(monkeypatch, tmp_path):
    import dialogpt.scoring as scoring

    def never(*a, **k):
        raise AssertionError("NIST/BLEU ran although METEOR could not")

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(scoring, "nist_bleu", never)
    with pytest.raises(MeteorError, match="--no-meteor"):
        score_all(["a b"], [["a b"]])


def test_library_doctests():
    import doctest

    import dialogpt.scoring
    import dialogpt.scoring.selection

    for mod in (dialogpt.scoring, dialogpt.scoring.selection):
        r = doctest.testmod(mod, raise_on_error=False)
        assert r.failed == 0 and r.attempted >= 2, mod.__name__
