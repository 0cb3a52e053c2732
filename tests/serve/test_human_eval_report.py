"""The human-evaluation report: sign test, agreement and the seed's table, through the CLI too."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from test_human_eval_store import write_inputs

from dialogpt.cli.human_eval import main
from dialogpt.serve.human_eval_inputs import QUESTIONS, load_inputs
from dialogpt.serve.human_eval_report import fleiss_kappa, pairwise_agreement, sign_test, summarize
from dialogpt.serve.human_eval_store import Vote, VoteStore


def test_sign_test_is_the_exact_two_sided_binomial():
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024)  # 0.0215
    assert sign_test(1, 9) == sign_test(9, 1)
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 6) == pytest.approx(2 / 64)
    assert sign_test(0, 0) is None
    # large n stays exact and finite: 2,816 vs 2,671 (the seed's relevance row, ties dropped)
    assert 0.05 < sign_test(2671, 2816) < 0.06


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [Counter({j: n for j, n in enumerate(row) if n}) for row in table]
    assert fleiss_kappa(items) == pytest.approx(0.2099, abs=1e-4)
    assert fleiss_kappa([Counter(A=2), Counter(A=2)]) is None  # chance agreement already perfect
    assert fleiss_kappa([Counter(A=1), Counter(B=1)]) is None  # nobody shares an item
    assert fleiss_kappa([Counter(A=2), Counter(B=2)]) == pytest.approx(1.0)
    assert fleiss_kappa([Counter(A=1, B=1), Counter(A=1, B=1)]) == pytest.approx(-1.0)


def test_pairwise_agreement_counts_judge_pairs():
    # item 1: 3 judges A, A, B -> 1 of 3 pairs agree; item 2: 2 judges tie, tie -> 1 of 1
    assert pairwise_agreement([Counter(A=2, B=1), Counter(tie=2)]) == pytest.approx(2 / 4)
    assert pairwise_agreement([Counter(A=1)]) is None


def test_summary_counts_every_judgment_per_question():
    votes = [Vote("ann", 0, "relevance", "A"), Vote("bob", 0, "relevance", "A"), Vote("ann", 1, "relevance", "B"),
             Vote("bob", 1, "relevance", "tie"), Vote("ann", 0, "humanlike", "B")]
    rel, inf, hum = summarize(votes)
    assert (rel.a_wins, rel.ties, rel.b_wins, rel.judgments) == (2, 1, 1, 4)
    assert rel.p_value == pytest.approx(sign_test(2, 1)) and rel.agreement == pytest.approx(1 / 2)
    assert inf.judgments == 0 and inf.p_value is None
    assert (hum.b_wins, hum.agreement) == (1, None)


def vote_all(store: VoteStore, inputs, judge: str, prefer_a: dict[str, bool]) -> None:
    """A judge who, per question, always prefers A (True), B (False) or says tie (None)."""
    while (s := store.next_item(judge)) is not None:
        first_is_a = s.first == inputs.a[s.item]
        answers = {}
        for q, a in prefer_a.items():
            answers[q] = "tie" if a is None else ("first" if a == first_is_a else "second")
        store.record(judge, s.item, answers)


def test_report_cli_prints_the_seed_table(tmp_path, capsys):
    inputs = load_inputs(*write_inputs(tmp_path, n=8))
    path = tmp_path / "votes.sqlite"
    store = VoteStore.create_or_open(path, inputs)
    vote_all(store, inputs, "ann", {"relevance": True, "informativeness": None, "humanlike": False})
    vote_all(store, inputs, "bob", {"relevance": True, "informativeness": True, "humanlike": False})
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "A = a.hyp.txt, B = b.hyp.txt" in out and "8 of 8 items judged, 2 judge(s), 48 judgments" in out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| ") and "Question" not in line}
    assert rows["relevance"][:4] == ["16 (100.0%)", "0 (0.0%)", "0 (0.0%)", f"{sign_test(16, 0):.4g}"]
    assert rows["informativeness"][:3] == ["8 (50.0%)", "8 (50.0%)", "0 (0.0%)"]
    assert rows["informativeness"][5] == "0.0%"  # ann said tie, bob said A on every item
    assert rows["humanlike"][2] == "16 (100.0%)" and rows["humanlike"][5] == "100.0%"
    assert main(["report", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["judges"] == ["ann", "bob"] and data["judgments"] == 8 * 2 * len(QUESTIONS)
    assert data["questions"]["humanlike"]["b_wins"] == 16
    assert data["questions"]["informativeness"]["p_value"] == pytest.approx(sign_test(8, 0))


def test_cli_errors_are_one_line(tmp_path, capsys):
    ctx, a, b = write_inputs(tmp_path, n=3)
    b.write_text("only one line\n", encoding="utf-8")
    assert main(["serve", "--contexts", str(ctx), "--a", str(a), "--b", str(b), "--store",
                 str(tmp_path / "v.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dialogpt-human-eval: error: --b") and "\n" not in err
    assert not (tmp_path / "v.sqlite").exists()
    assert main(["report", str(tmp_path / "nothing.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such vote store" in err and "\n" not in err
    ctx, a, b = write_inputs(tmp_path, n=3)
    assert main(["serve", "--contexts", str(ctx), "--a", str(a), "--b", str(b), "--store",
                 str(tmp_path / "no" / "dir" / "v.sqlite")]) == 2
    assert "does not exist" in capsys.readouterr().err
