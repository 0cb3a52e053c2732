"""One config of extraction rules: presets, named switches, flashtext-exact blocklists, the same plan from
the builder and the CLI, and the rule table on the CLI and the dataset card (dialogpt_dataset/rules.py)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogpt_dataset import normalize
from dialogpt_dataset.build import BuildConfig, make_builder
from dialogpt_dataset.builder import RedditDialog
from dialogpt_dataset.cli import main as cli_main
from dialogpt_dataset.records import Comment, Submission
from dialogpt_dataset.rules import SHIPPED, ExtractRules, RulesError, WordBlocklist, load_subreddits, load_words
from dialogpt_dataset.threads import ExtractConfig, build_sessions, explain_target


def test_blocklist_hand_cases_follow_flashtext():
    bl = WordBlocklist(["# comment", "Dick", "kill yourself", ""])
    assert len(bl) == 2 and bl and not WordBlocklist([])
    # flashtext's boundaries are "not [A-Za-z0-9_]": a name in a title is a whole word too
    assert bl.matches("we read it in Moby Dick") and bl.matches("that dick's car") and bl.matches("DICK-ish")
    assert not bl.matches("Charles Dickens") and not bl.matches("x_dick") and not bl.matches("1dick")
    assert bl.matches("just Kill yourself now") and not bl.matches("kill  yourself") and not bl.matches("kill yourselves")


_ALPHA = st.sampled_from(list("abdkAB1_ '-.é"))


@settings(max_examples=400, deadline=None)
@given(keywords=st.lists(st.from_regex(r"[abk1]{1,3}( [abk1]{1,3})?", fullmatch=True), min_size=1, max_size=4),
       text=st.text(_ALPHA, max_size=30))
def test_blocklist_says_yes_exactly_when_flashtext_finds_a_keyword(keywords, text):
    flashtext = pytest.importorskip("flashtext", reason="flashtext (dev extra) is the original's matcher")
    kp = flashtext.KeywordProcessor()
    for k in keywords:
        kp.add_keyword(k)
    assert WordBlocklist(keywords).matches(text) == bool(kp.extract_keywords(text)), (keywords, text)


def test_presets_and_switches():
    orig = ExtractRules.from_preset("original")
    assert (orig.enabled, orig.use_title, orig.words_blocklist, orig.subreddits_blocklist) == ([], False, None, None)
    assert (orig.min_score, orig.min_depth, orig.max_depth, orig.test_fraction, orig.validation_fraction) == (1, 2, 5, 0, 0)
    default = ExtractRules.from_preset("default")
    assert default.enabled == ["bot", "non_ascii", "removed"] and default.use_title
    assert default.words_blocklist == SHIPPED and (default.test_fraction, default.validation_fraction) == (0.05, 0.05)
    assert ExtractRules.from_preset("default", size="dummy").test_fraction == 0.2
    assert orig.with_switches("+bot,non_ascii").enabled == ["bot", "non_ascii"]
    assert default.with_switches("-bot").enabled == ["non_ascii", "removed"]
    assert default.with_switches("none,+removed").enabled == ["removed"]
    assert ExtractRules.from_preset("original", use_title=True, test_fraction=0.1).use_title
    for bad, msg in [(lambda: orig.with_switches("+nope"), "unknown rule 'nope'"),
                     (lambda: ExtractRules.from_preset("seed"), "--preset 'seed'"),
                     (lambda: ExtractRules.from_preset(test_fraction=1.5), "--test-fraction 1.5"),
                     (lambda: ExtractRules.from_preset(test_fraction=0.6, validation_fraction=0.5), "below 1")]:
        with pytest.raises(RulesError, match=msg):
            bad()
    assert ExtractRules.from_dict(json.loads(json.dumps(default.to_dict()))) == default  # plan.json round trip


def test_project_rules_switch_off_to_the_originals_behaviour():
    none = frozenset()
    assert normalize.comment_rule("[removed]", "u") == "removed"
    assert normalize.comment_rule("[removed]", "u", none) == "too_short"  # one word: the original's filter 2
    assert normalize.comment_rule("Reminder set for you, see you", "RemindMeBot", none) is None
    assert normalize.comment_rule("日本語 の コメント です よろしく", "u", none) is None
    # and through a thread: a bot's reply is the leaf only when the bot rule is off (on, its parent
    # becomes the leaf: the knock-on effect that made the project's selection differ from the original's)
    sub = Submission("t3_s", score=5, created=0, subreddit="x", title="t", selftext="", num_comments=3, author="op")
    coms = [Comment("t1_a", "t3_s", "t3_s", 3, 1, "x", "What a fine question here", "u"),
            Comment("t1_b", "t1_a", "t3_s", 3, 2, "x", "Beep boop I am a bot", "b0t")]
    on = build_sessions(sub, coms, ExtractConfig(ExtractRules.from_preset("default")), Counter())
    off = build_sessions(sub, coms, ExtractConfig(ExtractRules.from_preset("original")), Counter())
    assert [s.comment_id for s in on] == ["t1_a"] and [s.comment_id for s in off] == ["t1_b"]
    # and explain_target names the rule behind each decision
    default_cfg, original_cfg = (ExtractConfig(ExtractRules.from_preset(p)) for p in ("default", "original"))
    assert explain_target(sub, coms, default_cfg, "t1_b") == "bot"
    assert explain_target(sub, coms, default_cfg, "t1_a") == "kept"
    assert explain_target(sub, coms, original_cfg, "t1_a") == "not_a_leaf"
    low = [coms[0], msgspec.structs.replace(coms[1], score=0)]
    assert explain_target(sub, low, original_cfg, "t1_b") == "low_score"


def test_list_files_load_once_and_errors_name_the_file(tmp_path):
    assert load_words(SHIPPED).matches("what the FUCK") and "fatpeoplehate" in load_subreddits(SHIPPED)
    assert not load_words(None) and load_subreddits(None) == frozenset()
    f = tmp_path / "subs.txt"
    f.write_text("# mine\nAskReddit\n\n")
    assert load_subreddits(str(f)) == {"askreddit"}
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(RulesError, match="--words-blocklist .*bad.txt: not UTF-8"):
        load_words(str(bad))


@pytest.mark.parametrize("args, message", [
    (["--rules", "+nope"], "--rules: unknown rule 'nope'"),
    (["--words-blocklist", "missing.txt"], "--words-blocklist missing.txt: no such file"),
    (["--test-fraction", "1.5"], "--test-fraction 1.5: must be in [0, 1)"),
])
def test_cli_rule_errors_are_one_line(tmp_path, capsys, args, message):
    assert cli_main(["--size", "dummy", "--output", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_options_reach_the_rules(tmp_path):
    from dialogpt_dataset.cli import parse_args

    a = parse_args(["--size", "dummy", "--output", str(tmp_path), "--preset", "original", "--rules=-bot,+removed",
                    "--use-title", "--words-blocklist", "none", "--test-fraction", "0.1"])
    cfg = BuildConfig(output_dir=a.output, size=a.size, preset=a.preset, rules=a.rules, use_title=a.use_title,
                      words_blocklist=a.words_blocklist, test_fraction=a.test_fraction)
    r = cfg.extract_rules()
    assert (r.preset, r.enabled, r.use_title, r.words_blocklist, r.test_fraction) == ("original", ["removed"], True,
                                                                                     None, 0.1)
    assert parse_args(["--output", "x"]).use_title is None  # absent: the preset decides


def _plan_fields(plan) -> dict:
    d = asdict(plan)
    d.pop("work_dir")
    d["dumps_dir"] = str(Path(d["dumps_dir"]).resolve())
    return d


def _card_claims(out: Path, rules: ExtractRules, name: str) -> None:
    """Each fact on the card against the config it was built with."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md")
    stats = json.loads((out / "build_stats.json").read_text())
    assert card.data.pretty_name == name and card.text.splitlines()[1] == f"# {name}"
    assert card.data.license_link == "LICENSE.md" and (out / "LICENSE.md").is_file()
    assert "license_details" not in card.data.to_dict()
    info = card.data.dataset_info
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {k: v for k, v in stats["num_rows"].items() if v}
    assert [f["name"] for f in info["features"]][:4] == ["id", "subreddit", "created_utc", "turns"]
    assert card.data.extraction_preset == rules.preset and stats["rules"] == rules.to_dict()
    assert str(out.parent) not in (out / "README.md").read_text()  # no absolute local path
    assert f"| `use_title` | {'on' if rules.use_title else 'off'} | off |" in card.text
    for name_ in ("bot", "non_ascii", "removed"):
        ran = "yes (project)" if rules.is_on(name_) else "off"
        assert f"| `rule {name_}` | {'on' if rules.is_on(name_) else 'off'} |" in card.text
        assert f"| {ran} | {stats['counters'].get(name_, 0)} |" in card.text
    assert ("title : " in card.text) == rules.use_title  # the field doc states what this build did


@pytest.mark.slow
def test_builder_and_cli_build_the_same_plan_and_splits(tmp_path, capsys):
    """The importable builder's ``dummy`` config and ``--size dummy`` are one plan: same rules, shards, sizes."""
    builder = RedditDialog(config_name="dummy", work_dir=str(tmp_path / "b" / "work"), cache_dir=str(tmp_path / "b"))
    cfg = BuildConfig(output_dir=str(tmp_path / "reddit-dialog"), size="dummy", quiet=True)
    assert _plan_fields(builder.make_plan()) == _plan_fields(make_builder(cfg).make_plan())
    builder.download_and_prepare()
    assert cli_main(["--size", "dummy", "--output", str(tmp_path / "reddit-dialog"), "--quiet"]) == 0
    stats = json.loads((tmp_path / "reddit-dialog" / "build_stats.json").read_text())
    assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == stats["num_rows"]
    assert stats["num_rows"]["test"] > 0
    printed = capsys.readouterr().out
    assert "words_blocklist            shipped (" in printed and "rule bot                   on" in printed
    _card_claims(tmp_path / "reddit-dialog", ExtractRules.from_preset("default", size="dummy"), "reddit-dialog")


@pytest.mark.slow
def test_preset_original_on_the_shipped_sample_prints_its_rule_table(tmp_path, capsys):
    out = tmp_path / "rd-original"
    assert cli_main(["--size", "dummy", "--preset", "original", "--output", str(out), "--quiet", "--export-tsv"]) == 0
    printed = capsys.readouterr().out
    for line in ("preset                     original", "use_title                  off",
                 "words_blocklist            none", "test_fraction              0 ",
                 "rule non_ascii             off"):
        assert line in printed, line
    table = {x.split()[0]: x.split() for x in printed.splitlines() if x.strip()}
    assert table["bot"][2] == "off" and table["bot"][3] == "0" and int(table["not_a_leaf"][3]) > 0
    stats = json.loads((out / "build_stats.json").read_text())
    assert stats["num_rows"]["validation"] == stats["num_rows"]["test"] == 0
    assert len((out / "train.tsv").read_text().splitlines()) == stats["num_rows"]["train"]
    _card_claims(out, ExtractRules.from_preset("original"), "rd-original")
