"""Two judges vote through the blind A/B page by their judge links in a real headless chromium (a third, typing a
name on an --open server, finds nothing left; a made-up link is refused); the report matches their votes."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

import pytest
from browser_helpers import chromium, live_server, screenshot, wait_for

from dialogpt.cli.human_eval import main
from dialogpt.serve.human_eval_app import HumanEvalConfig, create_human_eval_app
from dialogpt.serve.human_eval_inputs import QUESTIONS, load_inputs
from dialogpt.serve.human_eval_store import VoteStore

ANN, BOB = "judge-001", "judge-002"  # the first two links `invite` makes

# Made-up conversations (the screenshot in docs/ shows the first one ann sees).
CONTEXTS = [
    "Does money buy happiness? EOS Depends how much money you spend on it.",
    "What is the best way to learn a new language?",
    "I just adopted a cat from the shelter! EOS Congrats! What's its name?",
    "Anyone else think the new season was way too short?",
]
A_HYP = ["I think it's more about what you spend it on.", "Move to a country that speaks it.",
         "Her name is Pepper, she's 3 years old.", "Yeah, only six episodes this time."]
B_HYP = ["I don't know.", "I'm not sure, I'm not sure.", "I don't know what you mean.", "I think so."]
N_ITEMS = len(CONTEXTS)


def write_inputs(d):
    files = d / "contexts.txt", d / "dialogpt-medium.hyp.txt", d / "baseline.hyp.txt"
    for path, rows in zip(files, (CONTEXTS, A_HYP, B_HYP)):
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return files


def plan(judge: str, item: int) -> dict[str, str]:
    """What each simulated judge thinks, in unblinded terms (A / tie / B)."""
    if judge == ANN:
        return {"relevance": "A", "informativeness": "B" if item % 2 else "A", "humanlike": "tie"}
    return {"relevance": "A" if item < 3 else "B", "informativeness": "B", "humanlike": "tie"}


def open_page(driver, base: str, judge: str, token: str | None) -> None:
    """A judge link (``/#token=...``), or the page with a typed name when there is no token."""
    from selenium.webdriver.common.by import By

    if token is not None:
        driver.get(f"{base}/#token={token}")
        wait_for(driver, lambda d: d.find_element(By.ID, "judge-name").text == judge)
        assert "token" not in driver.current_url  # off the address bar once read
        return
    driver.get(base + "/")
    name = wait_for(driver, lambda d: next((e for e in d.find_elements(By.ID, "judge") if e.is_displayed()), None))
    name.clear()
    name.send_keys(judge)
    driver.find_element(By.ID, "start").click()


def judge_in_browser(driver, base: str, judge: str, inputs, tmp_path, token: str | None = None) -> list[int]:
    from selenium.webdriver.common.by import By

    open_page(driver, base, judge, token)
    seen = []
    while True:
        wait_for(driver, lambda d: d.find_element(By.ID, "done").is_displayed()
                 or (d.find_element(By.ID, "task").is_displayed()
                     and d.find_element(By.ID, "task").get_attribute("data-item") not in (None, *map(str, seen))))
        assert driver.find_element(By.ID, "error").text == ""
        if driver.find_element(By.ID, "done").is_displayed():
            return seen
        item = int(driver.find_element(By.ID, "task").get_attribute("data-item"))
        first = driver.find_element(By.ID, "resp1").text
        assert {first, driver.find_element(By.ID, "resp2").text} == {inputs.a[item], inputs.b[item]}
        assert driver.find_element(By.ID, "context").text.split("\n") == inputs.contexts[item]
        submit = driver.find_element(By.ID, "submit")
        answers = {}
        for q, choice in plan(judge, item).items():
            assert not submit.is_enabled()  # every question must be answered first
            answers[q] = "tie" if choice == "tie" else ("first" if (choice == "A") == (first == inputs.a[item])
                                                         else "second")
            driver.find_element(By.ID, f"q-{q}-{answers[q]}").click()
        wait_for(driver, lambda d: d.find_element(By.ID, "submit").is_enabled())
        if judge == ANN and not seen:
            screenshot(driver, tmp_path, "human_eval.png")
            # The same judge answers this item in another tab first: this tab's submit is refused (409)
            # and the page moves on without an error; the vote is counted once.
            other_tab = urllib.request.Request(base + "/api/vote", json.dumps({"item": item, "answers": answers}).encode(),
                                               {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            urllib.request.urlopen(other_tab, timeout=30).close()
        seen.append(item)
        submit.click()


@pytest.mark.slow
def test_two_judges_vote_in_a_browser_and_the_report_matches(tmp_path, capsys):
    inputs = load_inputs(*write_inputs(tmp_path))
    path = tmp_path / "votes.sqlite"
    store = VoteStore.create_or_open(path, inputs, judges_per_item=2)
    links = dict(store.invite(2))
    app = create_human_eval_app(store, HumanEvalConfig(title="Which response is better?", open=True))
    with live_server(app) as base, chromium() as driver:
        from selenium.webdriver.common.by import By

        driver.get(base + "/#token=made-up")
        wait_for(driver, lambda d: "judge link is not valid" in d.find_element(By.ID, "error").text)
        assert not driver.find_element(By.ID, "task").is_displayed()
        for judge in (ANN, BOB):  # bob's link opened in the same tab after ann's: the page switches judge
            seen = judge_in_browser(driver, base, judge, inputs, tmp_path, links[judge])
            assert sorted(seen) == list(range(N_ITEMS))  # every item once, none twice
        # a third judge (a fresh tab: no link kept) types a name and finds nothing left: every item has its 2 judges
        driver.switch_to.new_window("tab")
        assert judge_in_browser(driver, base, "cy", inputs, tmp_path) == []
    assert main(["report", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["judges"] == [ANN, BOB] and report["judgments"] == 2 * N_ITEMS * len(QUESTIONS)
    assert report["judge_links"] == 2 and report["per_judge"][BOB] == {"link": True, "items": N_ITEMS,
                                                                      "judgments": N_ITEMS * len(QUESTIONS)}
    for q in QUESTIONS:
        expected = Counter(plan(j, i)[q] for j in (ANN, BOB) for i in range(N_ITEMS))
        got = report["questions"][q]
        assert (got["a_wins"], got["ties"], got["b_wins"]) == (expected["A"], expected["tie"], expected["B"]), q
    # relevance: the judges agree on items 0-2 and differ on item 3 -> 3 of 4 pairs agree
    assert report["questions"]["relevance"]["agreement"] == 0.75
    assert report["questions"]["humanlike"]["agreement"] == 1.0
