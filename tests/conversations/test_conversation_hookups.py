"""One loader everywhere: dialogpt-eval's perplexity, dialogpt-chat's batch mode and the human-eval inputs read
a messages JSONL (and the other layouts) through load_conversations, with the shared flags."""

from __future__ import annotations

import argparse
import json

import pytest
from conversation_helpers import DIALOGUES, layout_rows, write_rows

from dialogpt.cli.conversation_args import add_conversation_args, options_from_args
from dialogpt.conversations import ConversationError

CHAT_FLAGS = ["--max-new-tokens", "4", "--device", "cpu"]


def test_shared_flags_parse_to_options_with_both_spellings():
    p = argparse.ArgumentParser()
    add_conversation_args(p)
    args = p.parse_args(["--layout", "sharegpt", "--dialogue-column", "chat", "--user_roles", "Q,asker",
                         "--assistant-roles", "A", "--system_messages", "context", "--strict", "--dataset_config",
                         "en"])
    opts = options_from_args(args)
    assert (opts.layout, opts.dialogue_column, opts.user_roles, opts.assistant_roles, opts.system_messages,
            opts.strict, args.dataset_config) == ("sharegpt", "chat", ("q", "asker"), ("a",), "context", True, "en")
    assert options_from_args(p.parse_args([])) == options_from_args(argparse.Namespace())  # defaults
    with pytest.raises(SystemExit):
        p.parse_args(["--layout", "alpaca"])
    with pytest.raises(ConversationError, match="given to both"):
        options_from_args(p.parse_args(["--user_roles", "x", "--assistant_roles", "X"]))
    # a parser built with argument_default=SUPPRESS (dialogpt-train's) leaves absent flags out
    q = argparse.ArgumentParser(argument_default=argparse.SUPPRESS)
    add_conversation_args(q, dataset_config=False)
    assert vars(q.parse_args(["--role_key", "from"])) == {"role_key": "from"}


def test_eval_perplexity_on_a_messages_jsonl_equals_the_scorer_on_its_turns(tmp_path, capsys, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt.chat_format import install_chat_template
    from dialogpt.cli.eval import main
    from dialogpt.scoring.perplexity import perplexity

    path = write_rows(layout_rows("messages"), tmp_path / "chats.jsonl")
    js = tmp_path / "ppl.json"
    rc = main(["--model", str(tiny_model_dir), "--dataset", str(path), "--output-json", str(js)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"dialogpt-eval: {path}: layout messages (column 'messages', role 'role', text 'content'" in err
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    install_chat_template(tok)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    want = perplexity(model, tok, [[{"text": t, "weight": 1.0} for _, t in turns] for _, turns in DIALOGUES])
    got = json.loads(js.read_text())
    assert got["eval_tokens"] == want.tokens and got["perplexity"] == pytest.approx(want.ppl, rel=1e-5)
    # the layout flags reach the reader: a speaker table with odd column names
    rows = [{"conv": i, "who": r, "said": t} for i, turns in DIALOGUES for r, t in turns]
    csv_path = write_rows(rows, tmp_path / "log.csv")
    rc = main(["--model", str(tiny_model_dir), "--dataset", str(csv_path), "--layout", "speaker_table",
               "--id_column", "conv", "--speaker_column", "who", "--text_column", "said", "--output-json", str(js)])
    assert rc == 0 and json.loads(js.read_text())["eval_tokens"] == want.tokens
    # reader errors are one line naming the input
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n{oops\n')
    capsys.readouterr()
    assert main(["--model", str(tiny_model_dir), "--dataset", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"error: {bad}:2: malformed JSON line" in err


def test_chat_reads_contexts_from_dialogue_files(tmp_path):
    from dialogpt.cli.chat import read_contexts

    msgs = write_rows(layout_rows("messages"), tmp_path / "chats.jsonl")
    assert read_contexts(str(msgs)) == [[t for _, t in turns] for _, turns in DIALOGUES]
    pairs = write_rows(layout_rows("context_response"), tmp_path / "pairs.parquet")
    assert read_contexts(str(pairs)) == [[t for _, t in turns[:-1]] for _, turns in DIALOGUES]  # no reference
    single = write_rows([{"dialog": ["just one turn"]}, {"dialog": ["a", "b"]}], tmp_path / "single.json")
    assert read_contexts(str(single)) == [["just one turn"], ["a", "b"]]  # one turn is a context
    # strict: a skipped context would shift every later hypothesis line
    gap = write_rows([{"dialog": ["a", "b"]}, {"dialog": ["c", "  "]}], tmp_path / "gap.jsonl")
    with pytest.raises(ConversationError, match=r"gap.jsonl:2: turn 2: the text is empty \(empty_turn; --strict"):
        read_contexts(str(gap))


def test_chat_batch_mode_on_a_messages_jsonl(tmp_path, capsys, tiny_model_dir):
    from dialogpt.cli.chat import main

    path = write_rows(layout_rows("sharegpt"), tmp_path / "chats.json")
    out = tmp_path / "hyp.txt"
    assert main([str(tiny_model_dir), *CHAT_FLAGS, "--input", str(path), "--output", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(DIALOGUES)
    err = capsys.readouterr().err
    assert "layout sharegpt" in err and "wrote 2 hypotheses" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"messages": [{"role": "tool", "content": "x"}]}\n')
    assert main([str(tiny_model_dir), *CHAT_FLAGS, "--input", str(empty), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "unknown_role; --strict" in err and "Traceback" not in err


def test_human_eval_contexts_from_a_messages_jsonl(tmp_path):
    from dialogpt.cli.human_eval import build_parser
    from dialogpt.serve.human_eval_inputs import HumanEvalInputError, load_inputs

    ctx = write_rows(layout_rows("messages"), tmp_path / "ctx.jsonl")
    (tmp_path / "a.txt").write_text("reply a1\nreply a2\n")
    (tmp_path / "b.txt").write_text("reply b1\nreply b2\n")
    inputs = load_inputs(ctx, tmp_path / "a.txt", tmp_path / "b.txt")
    assert inputs.contexts == [[t for _, t in turns] for _, turns in DIALOGUES]
    assert inputs.contexts_note.startswith(f"{ctx}: layout messages") and len(inputs) == 2
    (tmp_path / "b.txt").write_text("only one\n")
    with pytest.raises(HumanEvalInputError, match=r"--b .*b.txt has 1 lines but --contexts .*ctx.jsonl has 2"):
        load_inputs(ctx, tmp_path / "a.txt", tmp_path / "b.txt")
    with pytest.raises(HumanEvalInputError, match=r"--contexts .*nope.jsonl: no such file"):
        load_inputs(tmp_path / "nope.jsonl", tmp_path / "a.txt", tmp_path / "b.txt")
    # the serve subcommand carries the shared flags
    args = build_parser().parse_args(["serve", "--contexts", str(ctx), "--a", "a", "--b", "b", "--store", "s",
                                      "--role_key", "from"])
    assert options_from_args(args).role_key == "from"
