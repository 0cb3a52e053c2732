"""Thread -> sessions on hand-drawn trees (dialogpt_dataset/threads.py), and the multi-reference set."""

from collections import Counter

from dialogpt_dataset.multiref import multiref_rows, refs_file_rows
from dialogpt_dataset.records import Comment, Submission
from dialogpt_dataset.rules import ExtractRules, WordBlocklist
from dialogpt_dataset.threads import ExtractConfig, build_sessions


def sub(sid="s", title="How do you make good coffee", n=10, score=50):
    return Submission(f"t3_{sid}", score=score, created=100, subreddit="coffee", title=title, selftext="",
                      num_comments=n, author="op")


def com(cid, parent, body, score=2, link="s", author="u", t=200):
    return Comment(f"t1_{cid}", parent=parent, link=f"t3_{link}", score=score, created=t, subreddit="coffee",
                   body=body, author=author)


#  S  "How do you make good coffee"
#  |-- a "I use a french press every morning"            (has replies: not a leaf)
#  |   |-- b "French press coffee is the best honestly"    (has replies)
#  |   |   `-- c "I agree with you on that one"            leaf -> [S, a, b, c]
#  |   `-- d "[deleted]"                                   filtered
#  |       `-- e "Why was that comment deleted though"     leaf, parent gone -> 1 turn: min_depth
#  |-- f "Instant coffee works fine for me"  score 0     leaf, low_score
#  `-- g "Pour over is my favourite method"              leaf once its reply h is filtered -> [S, g]
#      `-- h "&gt; Pour over\nyes"                        filtered (quote)
TREE = [
    com("a", "t3_s", "I use a french press every morning", 5),
    com("b", "t1_a", "French press coffee is the best honestly", 3),
    com("c", "t1_b", "I agree with you on that one", 2),
    com("d", "t1_a", "[deleted]", 1),
    com("e", "t1_d", "Why was that comment deleted though", 4),
    com("f", "t3_s", "Instant coffee works fine for me", 0),
    com("g", "t3_s", "Pour over is my favourite method", 2),
    com("h", "t1_g", "&gt; Pour over\nyes", 1),
]


def texts(s):
    return [t.text for t in s.turns]


def test_hand_drawn_tree_gives_expected_sessions():
    counters = Counter()
    sessions = build_sessions(sub(), TREE, ExtractConfig(), counters)
    assert [s.id for s in sessions] == ["t3_s,t1_b,t1_c", "t3_s,t3_s,t1_g"]
    assert texts(sessions[0]) == ["title : How do you make good coffee", "I use a french press every morning",
                                  "French press coffee is the best honestly", "I agree with you on that one"]
    assert [t.score for t in sessions[0].turns] == [50, 5, 3, 2]
    assert [t.weight for t in sessions[0].turns] == [1.0] * 4
    assert texts(sessions[1]) == ["title : How do you make good coffee", "Pour over is my favourite method"]
    assert sessions[0].subreddit == "coffee" and sessions[0].created_utc == 200
    assert counters == Counter(deleted=1, quote=1, not_a_leaf=2, low_score=1, min_depth=1, sessions=2)
    # no author names leave threads: a row holds exactly these fields
    assert sessions[0].to_row().keys() == {"id", "subreddit", "created_utc", "turns", "references"}
    assert all(t.keys() == {"text", "weight", "score"} for t in sessions[0].to_row()["turns"])
    assert (sessions[0].link_id, sessions[0].parent_id, sessions[0].comment_id) == ("t3_s", "t1_b", "t1_c")


def test_title_turn_is_prefixed_and_minimally_normalised_like_get_convo():
    # the original: "title: " + the extract stage's minimal_norm(title), then gpt_norm with the turns
    s = sub(title="\\#espresso tips for a\nnew grinder?")
    (session,) = build_sessions(s, [com("a", "t3_s", "Buy a burr grinder first")], ExtractConfig(), Counter())
    assert texts(session)[0] == "title : tips for a new grinder ?"  # the de-escaped tag is dropped


def test_without_title_matches_the_original_makefile_setting():
    sessions = build_sessions(sub(), TREE, ExtractConfig(ExtractRules(use_title=False)), Counter())
    assert [texts(s)[0] for s in sessions] == ["I use a french press every morning"]  # g alone is 1 turn


def test_test_months_use_every_comment_as_target():
    sessions = build_sessions(sub(), TREE, ExtractConfig(leaves_only=False), Counter())
    assert [s.id for s in sessions] == ["t3_s,t1_a,t1_b", "t3_s,t1_b,t1_c", "t3_s,t3_s,t1_a", "t3_s,t3_s,t1_g"]


def test_depth_limit_keeps_the_last_five_comments():
    chain = [com("c0", "t3_s", "comment number zero here")]
    for i in range(1, 8):
        chain.append(com(f"c{i}", f"t1_c{i - 1}", f"comment number {i} here"))
    (s,) = build_sessions(sub(), chain, ExtractConfig(), Counter())
    assert texts(s) == [f"comment number {i} here" for i in range(3, 8)]  # no title: the top is out of reach
    (s,) = build_sessions(sub(), chain[:5], ExtractConfig(), Counter())
    assert len(s.turns) == 6 and texts(s)[0] == "title : How do you make good coffee"  # 5 comments + title


def test_too_long_comment_cuts_the_context_above_it():
    long = " ".join(["word"] * 31)
    tree = [com("a", "t3_s", long), com("b", "t1_a", "short reply number one"), com("c", "t1_b", "short reply two")]
    (s,) = build_sessions(sub(), tree, ExtractConfig(), Counter())
    assert texts(s) == ["short reply number one", "short reply two"]
    counters = Counter()
    tree = [com("a", "t3_s", "short opening comment"), com("b", "t1_a", long)]
    assert build_sessions(sub(), tree, ExtractConfig(), counters) == []
    assert counters["target_too_long"] == 1


def test_missing_rs_file_roots_threads_at_top_level_comments():
    counters = Counter()
    sessions = build_sessions(None, TREE, ExtractConfig(), counters, has_rs=False)
    assert texts(sessions[0]) == ["I use a french press every morning", "French press coffee is the best honestly",
                                  "I agree with you on that one"]
    assert counters["rooted_at_comment"] == 1  # g alone is a single turn -> min_depth
    counters = Counter()
    assert build_sessions(None, TREE, ExtractConfig(), counters, has_rs=True) == []
    assert counters["no_submission_in_month"] == len(TREE)


def test_a_repeated_record_keeps_its_last_usable_copy_like_the_original():
    first = com("x", "t3_s", "Grind the beans right before brewing", score=0)
    again = com("x", "t3_s", "Grind the beans right before brewing", score=9)  # re-ingested: new score
    deleted = com("x", "t3_s", "[deleted]", score=3)  # deleted since: filtered, so the copy before it stays
    counters = Counter()
    (s,) = build_sessions(sub(), [first, again, deleted], ExtractConfig(), counters)
    assert s.turns[-1].score == 9 and counters["duplicate_record"] == 1 and counters["deleted"] == 1
    assert build_sessions(sub(), [again, first], ExtractConfig(), Counter()) == []  # last copy: score 0


def test_submission_with_few_comments_is_dropped():
    counters = Counter()
    assert build_sessions(sub(n=1), TREE, ExtractConfig(), counters) == []
    assert counters["submission_few_comments"] == 1


def test_keys_subreddit_blocklist_and_offensive_weights():
    counters = Counter()
    cfg = ExtractConfig(keys=frozenset({("t3_s", "t1_c")}))
    assert [s.id for s in build_sessions(sub(), TREE, cfg, counters)] == ["t3_s,t1_b,t1_c"]
    assert counters["not_in_keys"] == 3  # the other leaves e, f, g: keys are checked first, as in the original
    cfg = ExtractConfig(subreddit_blocklist=frozenset({"coffee"}))
    assert build_sessions(sub(), TREE, cfg, Counter()) == []
    cfg = ExtractConfig(word_blocklist=WordBlocklist(["french"]))
    s = build_sessions(sub(), TREE, cfg, Counter())[0]
    assert [t.weight for t in s.turns] == [1.0, 0.0, 0.0, 1.0]
    counters = Counter()
    cfg = ExtractConfig(word_blocklist=WordBlocklist(["agree"]), leaves_only=False)
    ids = [s.id for s in build_sessions(sub(), TREE, cfg, counters)]
    assert "t3_s,t1_b,t1_c" not in ids and counters["offensive"] == 1


def test_discard_hashes_zero_the_weight_like_discard_tgt_keys(tmp_path):
    import gzip
    import hashlib

    from dialogpt_dataset.pipeline import load_discard_hashes

    h = hashlib.sha224(b"French press coffee is the best honestly").hexdigest()
    f = tmp_path / "2006-01-o.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(f"{h}\n{'0' * 56}\tdep\n")
    hashes = load_discard_hashes(f)
    assert hashes == {h}
    counters = Counter()
    s = build_sessions(sub(), TREE, ExtractConfig(discard_hashes=hashes), counters)[0]
    assert [t.weight for t in s.turns] == [1.0, 1.0, 0.0, 1.0] and counters["discarded_turn"] == 1


def popular_thread():
    replies = ["I would go with the first option", "Second option sounds better to me",
               "Neither of them is any good", "I would go with the first option", "Why not try both of them"]
    tree = [com("p", "t3_s", "Which grinder should I buy for espresso", 10)]
    tree += [com(f"r{i}", "t1_p", body, score) for i, (body, score) in enumerate(zip(replies, [3, 9, 1, 7, 1]))]
    return tree


def test_multiref_groups_distinct_replies_by_context():
    counters = Counter()
    sessions = build_sessions(sub(), popular_thread(), ExtractConfig(leaves_only=False), counters)
    rows = multiref_rows(sessions, counters, min_refs=3)
    (row,) = [r for r in rows if r["id"] == "t3_s,t1_p"]
    assert [t["text"] for t in row["turns"]] == ["title : How do you make good coffee", "Which grinder should I buy for espresso"]
    # the duplicate reply keeps its best score (7); order: score desc, then comment id
    assert row["references"] == ["Second option sounds better to me", "I would go with the first option",
                                 "Neither of them is any good", "Why not try both of them"]
    assert row["reference_scores"] == [9, 7, 1, 1]
    assert row["reference_ids"][0] == "t3_s,t1_p,t1_r1"
    assert multiref_rows(sessions, Counter(), min_refs=3, max_refs=2)[-1]["references"] == row["references"][:2]
    few = Counter()
    assert [r["id"] for r in multiref_rows(sessions, few, min_refs=5)] == []
    assert few["multiref_too_few_refs"] == 2  # the grinder context (4 refs) and the title context (1)
    ((src, refs),) = refs_file_rows([row])
    assert src == "title : How do you make good coffee EOS Which grinder should I buy for espresso"
    assert refs[0] == (9.0, "Second option sounds better to me")


def test_multiref_straightens_curly_quotes_like_create_multiref():
    tree = [com("p", "t3_s", "What did the sign say again")]
    tree += [com(f"r{i}", "t1_p", f"It said “open” at hour {i}", 2) for i in range(3)]
    sessions = build_sessions(sub(), tree, ExtractConfig(leaves_only=False), Counter())
    row = [r for r in multiref_rows(sessions, Counter(), min_refs=3) if r["id"] == "t3_s,t1_p"][0]
    assert row["references"][0] == 'It said " open " at hour 0'  # tokenised, then straightened
