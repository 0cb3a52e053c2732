"""The seed's human-evaluation table from a vote store, with agreement and significance.

Per question it gives what the DialoGPT paper's table gives (A wins / ties / B wins, counts and
% of judgments), plus two things the paper reports only in prose:

* a **two-sided sign test**: ties are dropped and the A/B split is tested against 50/50 with the
  exact binomial distribution (integer arithmetic, no normal approximation), over judgments;
* **who voted**: judgments and items per judge, and which judges came by a link (``invite``) and
  which typed a name (``serve --open``), so a name voting far more than the others stands out;
* **inter-judge agreement**, two ways: Fleiss' kappa over the three answers (A, tie, B) on items
  with at least two judges (Fleiss 1971; with a varying number of judges per item each item's
  agreement is averaged, which is Fleiss' formula when every item has the same number), and raw
  pairwise percent agreement (of all pairs of judges on the same item, the share that agree).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction

from dialogpt.serve.human_eval_inputs import CHOICES, QUESTIONS
from dialogpt.serve.human_eval_store import Vote


@dataclass(frozen=True)
class QuestionSummary:
    question: str
    a_wins: int
    ties: int
    b_wins: int
    #: two-sided exact sign test p-value (ties excluded); None without any non-tie judgment
    p_value: float | None
    #: Fleiss' kappa over A / tie / B on items with >= 2 judges; None when undefined
    kappa: float | None
    #: share of same-item judge pairs giving the same answer; None without such pairs
    agreement: float | None

    @property
    def judgments(self) -> int:
        return self.a_wins + self.ties + self.b_wins


def sign_test(a_wins: int, b_wins: int) -> float | None:
    """Two-sided exact binomial test of ``a_wins`` vs ``b_wins`` under p = 1/2."""
    n = a_wins + b_wins
    if n == 0:
        return None
    k = min(a_wins, b_wins)
    term, total = 1, 1  # C(n, 0); each next binomial coefficient from the last (math.comb each time is O(k^2))
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    return float(min(Fraction(1), Fraction(2 * total, 2 ** n)))


def fleiss_kappa(per_item: Iterable[Counter]) -> float | None:
    """Fleiss' kappa from each item's answer counts (items with fewer than 2 judges are skipped)."""
    items = [c for c in per_item if sum(c.values()) >= 2]
    if not items:
        return None
    p_items = []
    totals: Counter = Counter()
    for c in items:
        n = sum(c.values())
        p_items.append((sum(v * v for v in c.values()) - n) / (n * (n - 1)))
        totals.update(c)
    all_n = sum(totals.values())
    p_e = sum((v / all_n) ** 2 for v in totals.values())
    if p_e == 1.0:
        return None  # every judge always gave the same answer: chance agreement is already perfect
    return (sum(p_items) / len(p_items) - p_e) / (1 - p_e)


def pairwise_agreement(per_item: Iterable[Counter]) -> float | None:
    """Of all pairs of judges who answered the same item, the share that gave the same answer."""
    agree = pairs = 0
    for c in per_item:
        agree += sum(math.comb(v, 2) for v in c.values())
        pairs += math.comb(sum(c.values()), 2)
    return agree / pairs if pairs else None


def summarize(votes: Sequence[Vote], questions: Iterable[str] = QUESTIONS) -> list[QuestionSummary]:
    """One summary per question, from the stored (already unblinded) votes."""
    out = []
    for q in questions:
        mine = [v for v in votes if v.question == q]
        counts = Counter(v.choice for v in mine)
        per_item: dict[int, Counter] = defaultdict(Counter)
        for v in mine:
            per_item[v.item][v.choice] += 1
        out.append(QuestionSummary(
            question=q, a_wins=counts["A"], ties=counts["tie"], b_wins=counts["B"],
            p_value=sign_test(counts["A"], counts["B"]),
            kappa=fleiss_kappa(per_item.values()), agreement=pairwise_agreement(per_item.values()),
        ))
    return out


@dataclass(frozen=True)
class JudgeSummary:
    judge: str
    link: bool
    """invited by link (a token); False: a typed name (``--open``)."""
    items: int
    judgments: int


def per_judge(votes: Sequence[Vote], linked: Iterable[str] = ()) -> list[JudgeSummary]:
    """Every judge with a link or a vote: link judges first (in order), then typed names."""
    linked = list(linked)
    judgments = Counter(v.judge for v in votes)
    items = Counter(j for j, _ in {(v.judge, v.item) for v in votes})
    names = linked + sorted(set(judgments) - set(linked))
    return [JudgeSummary(j, j in set(linked), items[j], judgments[j]) for j in names]


def _pct(k: int, n: int) -> str:
    return f"{k} ({100 * k / n:.1f}%)" if n else "0"


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def format_report(meta: dict[str, str], votes: Sequence[Vote], linked: Sequence[str] = ()) -> str:
    """The markdown table (one row per question) with a header line and a note on the statistics,
    then one row per judge (``linked``: the judges invited by link)."""
    summaries = summarize(votes)
    judges = {v.judge for v in votes}
    items = {v.item for v in votes}
    lines = [
        f"Blind pairwise human evaluation: A = {meta.get('a_name')}, B = {meta.get('b_name')}",
        f"{len(items)} of {meta.get('n_items')} items judged, {len(judges)} judge(s), "
        f"{len(votes)} judgments",
        "",
        "| Question | A wins | Ties | B wins | Sign test p | Fleiss' kappa | Pairwise agreement |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        n = s.judgments
        agreement = "n/a" if s.agreement is None else f"{100 * s.agreement:.1f}%"
        lines.append(f"| {s.question} | {_pct(s.a_wins, n)} | {_pct(s.ties, n)} | {_pct(s.b_wins, n)} | "
                     f"{_num(s.p_value, '.4g')} | {_num(s.kappa, '.3f')} | {agreement} |")
    lines += [
        "",
        "Sign test: two-sided, exact binomial, over judgments, ties excluded. Agreement: Fleiss' kappa over "
        "A / tie / B on items with >= 2 judges, and the share of same-item judge pairs that agree.",
    ]
    return "\n".join(lines + _judge_lines(votes, linked))


def _judge_lines(votes: Sequence[Vote], linked: Sequence[str]) -> list[str]:
    judges = per_judge(votes, linked)
    used = sum(1 for j in judges if j.link and j.judgments)
    lines = ["", f"{len(linked)} judge link(s) issued, {used} used; "
                 f"{sum(1 for j in judges if not j.link)} typed name(s) (--open)", "",
             "| Judge | By link | Items | Judgments |", "|---|---|---|---|"]
    return lines + [f"| {j.judge} | {'yes' if j.link else 'no'} | {j.items} | {j.judgments} |" for j in judges]


def report_dict(meta: dict[str, str], votes: Sequence[Vote], linked: Sequence[str] = ()) -> dict:
    """The same numbers as JSON-ready data (``dialogpt-human-eval report --json``)."""
    return {
        "a": meta.get("a_name"), "b": meta.get("b_name"), "items": int(meta.get("n_items", 0)),
        "judged_items": len({v.item for v in votes}), "judges": sorted({v.judge for v in votes}),
        "judgments": len(votes), "choices": list(CHOICES), "judge_links": len(linked),
        "per_judge": {j.judge: {"link": j.link, "items": j.items, "judgments": j.judgments}
                      for j in per_judge(votes, linked)},
        "questions": {s.question: {k: v for k, v in asdict(s).items() if k != "question"} for s in summarize(votes)},
    }
