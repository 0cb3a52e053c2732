"""dialogpt-chat: stdin -> stdout over a real pipe, commands, self-play, seeds, and batch mode over
the three input kinds (refs file, plain contexts, dataset split)."""

from __future__ import annotations

import io
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from dialogpt.cli.chat import main, read_contexts
from dialogpt.decode import GenerationOptions, Responder
from dialogpt.decode.safety import SafetyFilter

REPO = Path(__file__).resolve().parents[2]
FLAGS = ["--max-new-tokens", "6", "--device", "cpu"]


@pytest.fixture(scope="module")
def responder(tiny_model_dir):
    """What the CLI should be doing, built in-process: greedy, 6 new tokens, shipped blocklist."""
    r = Responder.from_pretrained(str(tiny_model_dir), device="cpu", safety=SafetyFilter.from_blocklist())
    r.options = r.options.replace(max_new_tokens=6)
    return r


def test_pipe_stdin_lines_to_reply_lines_with_history_and_commands(tiny_model_dir, responder):
    stdin = "hello there\nhow are you?\n/history\n\n/reset\n/quit\nstill read\n"
    out = subprocess.run(
        [sys.executable, "-m", "dialogpt.cli.chat", str(tiny_model_dir), *FLAGS],
        input=stdin, capture_output=True, text=True, timeout=180, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == 8  # 7 lines in, 7 lines out
    # Piped: "/history", "/reset", "/quit" are turns like any other; the empty line answers ""
    # and does not enter the history.
    h = ["hello there"]
    expected = []
    for text in ["hello there", "how are you?", "/history", "", "/reset", "/quit", "still read"]:
        if not text:
            expected.append("")
            continue
        h = (h + [text]) if expected else h
        expected.append(responder.respond(h).text)
        h.append(expected[-1])
    assert lines[:-1] == expected
    assert "Traceback" not in out.stderr


class _Echo:
    """A responder stand-in that answers with what it was given (the CLI's line logic, at speed)."""

    def __init__(self):
        self.histories = []

    def respond(self, history):
        from dialogpt.decode import Candidate, Reply

        self.histories.append([t.text for t in history])
        text = f"re {history[-1].text}"
        return Reply(text, [Candidate(text, [1], True)], 0, 1)


def test_a_thousand_piped_lines_give_a_thousand_lines_in_order(capsys):
    """1,000 lines with "/commands", blanks and Reddit-style "/r/..." text: exactly one output line
    each, in order, nothing else on stdout (the issue's 1,000 -> 1,173 lines). The real model over a
    real pipe is the test above; this one is the CLI's line logic at 1,000 lines."""
    from argparse import Namespace

    from dialogpt.cli.chat import run_chat

    words = ["/r/AskReddit is great", "/quit", "/help", "", "/history", "hello there", "what?", "  ", "/reset"]
    inputs = [words[i % 9] if i % 9 in (3, 7) else f"{words[i % 9]} {i}" for i in range(1000)]
    out, echo = io.StringIO(), _Echo()
    assert run_chat(echo, Namespace(model="x", show_candidates=False), io.StringIO("\n".join(inputs) + "\n"), out) == 0
    lines = out.getvalue().split("\n")
    assert len(lines) == 1001 and lines[-1] == ""
    assert lines[:-1] == [f"re {x}" if x.strip() else "" for x in inputs]
    assert len(echo.histories) == sum(1 for x in inputs if x.strip()) == 778  # blanks are not turns
    assert echo.histories[1][-3:] == [inputs[0], f"re {inputs[0]}", inputs[1]]  # the history carries over
    assert capsys.readouterr().out == ""  # nothing printed past the given stdout


def _run_chat(monkeypatch, capsys, argv, stdin: str):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = main(argv)
    return rc, capsys.readouterr()


def test_seeded_sampling_repeats_and_reset_forgets(monkeypatch, capsys, tiny_model_dir):
    argv = [str(tiny_model_dir), *FLAGS, "--strategy", "sample", "--temperature", "1.5", "--seed", "11"]
    rc, a = _run_chat(monkeypatch, capsys, argv, "hi\nwhat now\n")
    rc2, b = _run_chat(monkeypatch, capsys, argv, "hi\nwhat now\n")
    assert rc == rc2 == 0 and a.out == b.out and len(a.out.splitlines()) == 2
    rc3, c = _run_chat(monkeypatch, capsys, [*argv[:-1], "12"], "hi\nwhat now\n")
    assert c.out != a.out
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    _run_chat(monkeypatch, capsys, argv, "hi\n")
    assert hf_logging.get_verbosity() == before  # main() puts the caller's logging back


def test_self_play(monkeypatch, capsys, tiny_model_dir, responder):
    rc, cap = _run_chat(monkeypatch, capsys, [str(tiny_model_dir), *FLAGS, "--self-play", "3", "--prompt", "hey"], "")
    assert rc == 0
    lines = cap.out.splitlines()
    assert len(lines) == 4 and lines[0] == "A: hey"
    t1 = responder.respond(["hey"]).text
    t2 = responder.respond(["hey", t1]).text
    assert lines[1] == f"B: {t1}" and lines[2] == f"A: {t2}" and lines[3].startswith("B: ")


def _refs_file(tmp_path) -> Path:
    from dialogpt.legacy_tsv import write_refs

    p = tmp_path / "test.refs.txt"
    write_refs(p, [("hello there EOS hi , how are you ?", [(1.0, "fine"), (0.5, "good")]),
                   ("what is up", [(1.0, "nothing much")]),
                   ("tell me a joke EOS no EOS please ?", [(1.0, "ok")])])
    return p


CONTEXTS = [["hello there", "hi , how are you ?"], ["what is up"], ["tell me a joke", "no", "please ?"]]


def test_read_contexts_from_refs_text_and_dataset(tmp_path):
    assert read_contexts(str(_refs_file(tmp_path))) == CONTEXTS
    txt = tmp_path / "contexts.txt"
    txt.write_text("hello there\thi , how are you ?\n\nwhat is up\ntell me a joke EOS no EOS please ?\n")
    assert read_contexts(str(txt)) == CONTEXTS

    import datasets

    d = tmp_path / "built"
    (d / "data").mkdir(parents=True)
    ds = datasets.Dataset.from_dict({
        "turns": [[{"text": t, "weight": 0.0, "score": 1} for t in c] for c in CONTEXTS],
        "references": [["fine"], ["nothing much"], ["ok"]],
    })
    ds.to_parquet(str(d / "data" / "test-00000-of-00001.parquet"))
    ds.select([0]).to_parquet(str(d / "data" / "train-00000-of-00001.parquet"))
    assert read_contexts(str(d), "test") == CONTEXTS
    saved = tmp_path / "saved"
    datasets.DatasetDict({"test": ds}).save_to_disk(str(saved))
    assert read_contexts(str(saved), "test") == CONTEXTS
    with pytest.raises(ValueError, match=r"no split 'validation' \(has test\)"):
        read_contexts(str(saved), "validation")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_contexts(str(empty))


def test_batch_mode_writes_one_hypothesis_per_context(tmp_path, capsys, tiny_model_dir, responder):
    out = tmp_path / "hyp" / "test.hyp.txt"
    rc = main([str(tiny_model_dir), *FLAGS, "--input", str(_refs_file(tmp_path)), "--output", str(out),
               "--batch-size", "2"])
    assert rc == 0
    hyps = out.read_text(encoding="utf-8").split("\n")
    assert hyps[-1] == "" and len(hyps) == 4
    assert hyps[:3] == [r.text for r in responder.respond_batch(CONTEXTS)]
    err = capsys.readouterr().err
    assert "wrote 3 hypotheses" in err
    assert "generating" in err and "3/3" in err  # the progress bar
    # scripts/generate.py is the same thing.
    out2 = tmp_path / "hyp2.txt"
    argv = ["generate.py", str(tiny_model_dir), *FLAGS, "--input", str(_refs_file(tmp_path)), "--output", str(out2)]
    old = sys.argv
    sys.argv = argv
    try:
        with pytest.raises(SystemExit) as e:
            runpy.run_path(str(REPO / "scripts" / "generate.py"), run_name="__main__")
    finally:
        sys.argv = old
    assert e.value.code == 0 and out2.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_decoding_config_file_then_flags(tmp_path, monkeypatch, capsys, tiny_model_dir):
    from dialogpt.cli.chat import build_parser, make_responder

    cfg = tmp_path / "decoding.yaml"
    cfg.write_text("strategy: beam\nnum_beams: 3\nnum_candidates: 2\nmax_new_tokens: 9\n")
    args = build_parser().parse_args([str(tiny_model_dir), "--device", "cpu", "--decoding-config", str(cfg),
                                      "--max-new-tokens", "4"])
    opts = make_responder(args).options
    assert (opts.strategy, opts.num_beams, opts.num_candidates, opts.max_new_tokens) == ("beam", 3, 2, 4)
    cfg.write_text("beams: 3\n")
    assert main([str(tiny_model_dir), "--decoding-config", str(cfg), "--self-play", "1"]) == 1
    assert "unknown decoding option(s) ['beams']" in capsys.readouterr().err


def test_user_mistakes_are_one_line_errors(tmp_path, capsys, tiny_model_dir):
    assert main([str(tiny_model_dir), "--input", "x.txt"]) == 2
    assert "both --input and --output" in capsys.readouterr().err
    assert main([str(tiny_model_dir), "--input", str(tmp_path / "missing.txt"), "--output", "o.txt"]) == 1
    err = capsys.readouterr().err
    assert "missing.txt" in err and "Traceback" not in err
    assert main([str(tiny_model_dir), "--num-candidates", "3", "--self-play", "1"]) == 1
    assert "greedy" in capsys.readouterr().err
    assert main([str(tmp_path / "no_model"), "--self-play", "1"]) == 1
    assert "error:" in capsys.readouterr().err
    assert GenerationOptions().strategy == "greedy"


def test_interactive_terminal_session_over_a_pty(tiny_model_dir, responder):
    import os
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "dialogpt.cli.chat", str(tiny_model_dir), *FLAGS],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        os.write(master, b"hello there\n/history\n/reset\n/history\n/quit\n")
        out, err = proc.communicate(timeout=180)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err[-2000:]
    r1 = responder.respond(["hello there"]).text
    assert "/reset" in out and "/quit" in out  # the banner lists the commands
    assert f">> You: Bot: {r1}" in out
    assert f"You: hello there\nBot: {r1}" in out and "(history cleared)" in out
    assert out.count(">> You: ") == 5  # one prompt per line read, the last one answered by /quit


def test_more_user_mistakes_name_the_input_without_a_traceback(tmp_path, capsys, tiny_model_dir):
    m = str(tiny_model_dir)
    cases = [
        ([str(tmp_path / "no_model"), "--self-play", "1"], "MODEL", "no such directory"),
        ([m, "--reverse-model", str(tmp_path / "rev"), "--self-play", "1"], "--reverse-model", "no such directory"),
        ([m, "--ranker", f"prior:{tmp_path / 'rpt'}@0.5", "--self-play", "1"], "--ranker", "no such directory"),
        ([m, "--safety-classifier", "no_such_module_x:fn", "--self-play", "1"], "--safety-classifier",
         "no_such_module_x"),
    ]
    cases += [([m, "--threads", "0", "--self-play", "1"], "--threads", ">= 1"),
              ([m, "--device", "gpu", "--self-play", "1"], "--device", "not a device name")]
    import torch

    if not torch.cuda.is_available():
        cases.append(([m, "--device", "cuda", "--self-play", "1"], "--device", "CUDA is not available"))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9\n")
    cases += [([m, "--blocklist", str(latin1), "--self-play", "1"], "--blocklist", "not UTF-8"),
              ([m, "--input", str(latin1), "--output", str(tmp_path / "h.txt")], "--input", "not UTF-8")]
    bad_yaml = tmp_path / "decoding.yaml"
    bad_yaml.write_text("strategy: [beam\n")
    cases.append(([m, "--decoding-config", str(bad_yaml), "--self-play", "1"], "--decoding-config",
                  "decoding.yaml:"))
    not_data = tmp_path / "folder"
    not_data.mkdir()
    (not_data / "notes.bin").write_bytes(b"\x00\x01")
    cases.append(([m, "--input", str(not_data), "--output", str(tmp_path / "h.txt")], "--input", "folder"))
    for argv, flag, needle in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"error: {flag}" in err and needle in err and "Traceback" not in err, (argv, err)
    assert main([m, "--input", "x.txt", "--output", "o.txt", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_stdin_bytes_that_are_not_utf8_cost_a_character_not_the_session(capsys, responder):
    from argparse import Namespace

    from dialogpt.cli.chat import run_chat

    out = io.StringIO()
    # What sys.stdin yields for b"caf\xe9" under surrogateescape (see chat_cli._lenient_stdin).
    rc = run_chat(responder, Namespace(model="tiny", show_candidates=False),
                  stdin=io.StringIO("hello there\ncaf\udce9\nbye\n"), stdout=out)
    assert rc == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0] == responder.respond(["hello there"]).text  # one reply per line
    assert "stdin line 2" in capsys.readouterr().err


def test_save_decoding_defaults_writes_them_into_the_model_dir(tmp_path, capsys, tiny_model_dir):
    import json
    import shutil

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    before = json.loads((d / "generation_config.json").read_text())
    cfg = tmp_path / "decoding.yaml"
    cfg.write_text("strategy: sample\nnum_candidates: 3\n")
    assert main([str(d), "--decoding-config", str(cfg), "--top-p", "0.8", "--max-new-tokens", "7",
                 "--repetition-penalty", "1.2", "--max-history-turns", "4", "--save-decoding-defaults"]) == 0
    assert "wrote decoding defaults" in capsys.readouterr().err
    opts = Responder.from_pretrained(str(d), device="cpu").options
    assert opts == GenerationOptions(strategy="sample", num_candidates=3, top_p=0.8, max_new_tokens=7,
                                     repetition_penalty=1.2, max_history_turns=4)
    after = json.loads((d / "generation_config.json").read_text())
    assert all(after[k] == before[k] for k in ("bos_token_id", "pad_token_id", "eos_token_id") if k in before)
    assert main(["org/some-hub-model", "--save-decoding-defaults"]) == 2
    assert "local directory" in capsys.readouterr().err


def test_batch_mode_resumes_after_the_lines_already_written(tmp_path, capsys, tiny_model_dir, responder):
    expected = [r.text for r in responder.respond_batch(CONTEXTS)]
    refs = str(_refs_file(tmp_path))
    out = tmp_path / "hyp.txt"
    # A run killed after the first hypothesis and in the middle of writing the second.
    out.write_text(expected[0] + "\n" + "torn li", encoding="utf-8")
    argv = [str(tiny_model_dir), *FLAGS, "--input", refs, "--output", str(out), "--batch-size", "1", "--resume"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "already has 1 of 3" in err and "wrote 2 hypotheses" in err and "contexts=2 " in err
    assert out.read_text(encoding="utf-8") == "".join(t + "\n" for t in expected)
    assert main(argv) == 0  # nothing left to do
    assert "contexts=0 " in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "".join(t + "\n" for t in expected)
    out.write_text("a\nb\nc\nd\n")  # not this input's output: left alone
    assert main(argv) == 1
    assert "has 4 lines" in capsys.readouterr().err and out.read_text() == "a\nb\nc\nd\n"
    assert main([str(tiny_model_dir), "--resume"]) == 2
