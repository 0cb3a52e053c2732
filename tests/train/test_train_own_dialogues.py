"""Issue 23: fine-tune on the user's own dialogues, in the layouts and file types they already have.

Each layout trains a model from its own file type; a long chat is windowed so every reply is trained once,
and the run says so (log, train_results.json, card); --train_on picks a speaker or the assistant; --reverse
uses the same windows; bad input is one line or a counted skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogpt.chat_format import IGNORE_INDEX
from dialogpt.cli.train import main as train_main
from dialogpt.conversations import load_conversations
from dialogpt.train.data import tokenize_sessions
from dialogpt.train.loop import train

WORDS = "hello there how are you today fine thanks what about the weather sunny rain again later".split()


def _line(i: int, j: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(3 + (i + j) % 5))


def _chats(n: int = 12, turns: int = 4) -> list[list[str]]:
    return [[_line(i, j) for j in range(turns)] for i in range(n)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_table(path: Path, rows: list[dict]) -> Path:
    import datasets

    ds = datasets.Dataset.from_list(rows)
    if path.suffix == ".parquet":
        ds.to_parquet(str(path))
    elif path.suffix == ".csv":
        ds.to_csv(str(path), index=False)
    elif path.suffix == ".arrow":
        import pyarrow as pa

        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, ds.data.table.schema) as w:
            w.write_table(ds.data.table)
    return path


def _roles(n: int) -> list[str]:
    return ["user" if (n - 1 - k) % 2 else "assistant" for k in range(n)]


def _layout_file(layout: str, tmp_path: Path) -> Path:
    """One file of each layout, each in another of the accepted file types."""
    chats = _chats()
    if layout == "messages":
        return _write_jsonl(tmp_path / "chats.jsonl", [
            {"messages": [{"role": r, "content": t} for r, t in zip(_roles(len(c)), c)]} for c in chats])
    if layout == "sharegpt":
        side = {"user": "human", "assistant": "gpt"}
        rows = [{"conversations": [{"from": side[r], "value": t} for r, t in zip(_roles(len(c)), c)]} for c in chats]
        (tmp_path / "chats.json").write_text(json.dumps(rows), encoding="utf-8")   # a JSON array
        return tmp_path / "chats.json"
    if layout == "turns":   # the seed's train.tsv
        lines = [" EOS ".join(f"1.0 {t}" for t in c[:-1]) + f"\t1.0 {c[-1]}" for c in chats]
        (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return tmp_path / "train.tsv"
    if layout == "strings":
        return _write_table(tmp_path / "chats.arrow", [{"dialog": c} for c in chats])
    if layout == "prompt_completion":
        return _write_table(tmp_path / "chats.parquet", [{"prompt": " ".join(c[:-1]), "completion": c[-1]}
                                                          for c in chats])
    if layout == "context_response":
        return _write_table(tmp_path / "chats.csv", [{"context": " EOS ".join(c[:-1]), "response": c[-1]}
                                                      for c in chats])
    assert layout == "speaker_table"   # JSON lines in a .json file, one utterance a row
    rows = [{"dialogue_id": f"d{i}", "speaker": "ANN" if j % 2 else "BOB", "text": t}
            for i, c in enumerate(chats) for j, t in enumerate(c)]
    (tmp_path / "script.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path / "script.json"


#: target turns of _chats() in each layout: every turn after the first, or only the reply of a pair
EXPECTED_TRAINED = {"messages": 36, "sharegpt": 36, "turns": 36, "strings": 36, "prompt_completion": 12,
                    "context_response": 12, "speaker_table": 36}


def _config(tmp_path: Path, tiny_model_dir: Path, **kw):
    from dialogpt.train.config import TrainConfig

    base = dict(output_dir=str(tmp_path / "run"), model_name_or_path=str(tiny_model_dir), max_seq_length=64,
                train_batch_size=4, gradient_accumulation_steps=1, learning_rate=1e-3, lr_schedule="None",
                num_optim_steps=2, logging_steps=1, eval_steps=0, save_steps=0, pbar=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(EXPECTED_TRAINED))
def test_each_layout_and_file_type_trains_a_model(layout, tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    path = _layout_file(layout, tmp_path)
    result = train(_config(tmp_path, tiny_model_dir, train_file=str(path)))
    cov = result.data_coverage
    assert cov["source_format"] == layout and cov["dialogues"] == 12
    assert cov["trained_turns"] == EXPECTED_TRAINED[layout] and cov["truncated_turns"] == 0
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "run") is not None
    saved = json.loads((tmp_path / "run" / "train_results.json").read_text())["data_coverage"]
    assert saved == cov


def _long_chat(tmp_path: Path, n_turns: int = 40) -> Path:
    turns = [_line(k, k + 1) + f" number {k}" for k in range(n_turns)]
    return _write_jsonl(tmp_path / "long.jsonl", [
        {"messages": [{"role": r, "content": t} for r, t in zip(_roles(n_turns), turns)]}])


@pytest.mark.slow
def test_a_long_chat_is_windowed_every_reply_trained_once_and_the_run_says_so(tmp_path, tiny_model_dir, capsys):
    path = _long_chat(tmp_path)
    rc = train_main(["--train_file", str(path), "--model_name_or_path", str(tiny_model_dir), "--output_dir",
                     str(tmp_path / "run"), "--max_seq_length", "48", "--num_optim_steps", "1", "--train_batch_size",
                     "2", "--gradient_accumulation_steps", "1", "--eval_steps", "0", "--save_steps", "0", "--no-pbar"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "long.jsonl: layout messages" in out                                  # the detection line
    cov = json.loads((tmp_path / "run" / "train_results.json").read_text())["data_coverage"]
    assert cov["dialogues"] == 1 and cov["turns"] == 40
    assert cov["trained_turns"] == 39 and cov["windows"] > 5                   # left truncation trained ~5
    assert f"39 turns trained (--train_on all) in {cov['windows']} windows" in out   # said before training
    assert "**39 turns trained**" in (tmp_path / "run" / "README.md").read_text()


def test_train_on_a_script_character_labels_only_their_lines(tmp_path, tokenizer):
    lines = [("ALICE", "where is the rabbit"), ("HATTER", "no room no room"), ("ALICE", "there is plenty of room"),
             ("HARE", "have some wine"), ("ALICE", "i do not see any wine"), ("HARE", "there is none"),
             ("ALICE", "then it was not civil of you to offer it")] * 3
    path = _write_jsonl(tmp_path / "script.jsonl", [{"character": c, "line": t} for c, t in lines])
    ds, report = load_conversations(files=[str(path)])
    assert report.layout == "speaker_table" and report.dialogues == 1             # no id column: one dialogue
    tok, stats = tokenize_sessions(ds, tokenizer, max_seq_length=40, train_on="ALICE")
    assert stats.trained_turns == sum(c == "ALICE" for c, _ in lines) - 1         # the first line is context
    alice = {t for c, t in lines if c == "ALICE"}
    for row in tok:
        labelled = [x for x in row["labels"] if x != IGNORE_INDEX]
        text = tokenizer.decode(labelled).replace("<|endoftext|>", "\n")
        assert {seg.strip() for seg in text.split("\n") if seg.strip()} <= alice
    _, nobody = tokenize_sessions(ds, tokenizer, max_seq_length=40, train_on="CAT")
    assert nobody.kept == 0 and nobody.dropped_no_labels == 1


def test_train_on_assistant_and_reverse_use_the_same_windows(tmp_path, tokenizer, tiny_model_dir):
    ds, _ = load_conversations(files=[str(_long_chat(tmp_path))])
    fwd, f_stats = tokenize_sessions(ds, tokenizer, max_seq_length=48)
    rev, r_stats = tokenize_sessions(ds, tokenizer, max_seq_length=48, reverse=True)
    assert len(fwd) == len(rev) > 5 and sorted(fwd["length"]) == sorted(rev["length"])
    asst, a_stats = tokenize_sessions(ds, tokenizer, max_seq_length=48, train_on="assistant")
    assert a_stats.trained_turns == 20 and f_stats.trained_turns == 39            # 20 of 40 turns are replies
    result = train(_config(tmp_path, tiny_model_dir, train_file=str(tmp_path / "long.jsonl"), max_seq_length=48,
                           reverse=True, train_on="assistant", num_optim_steps=1))
    assert result.data_coverage["windows"] == a_stats.kept and result.data_coverage["train_on"] == "assistant"


def _cli_error(argv: list[str], capsys) -> tuple[int, list[str]]:
    """The run's exit code and its stderr lines other than datasets' progress bars (``... examples/s]``)."""
    rc = train_main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not ln.endswith("/s]")]


def test_bad_input_is_one_line_or_a_counted_skip(tmp_path, tiny_model_dir, capsys):
    common = ["--model_name_or_path", str(tiny_model_dir), "--num_optim_steps", "1", "--no-pbar",
              "--train_batch_size", "2", "--gradient_accumulation_steps", "1"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                   '{"messages": [oops\n', encoding="utf-8")
    rc, err = _cli_error(["--train_file", str(bad), "--output_dir", str(tmp_path / "a")] + common, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and f"{bad}:2" in err[0]
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())   # nothing written
    odd = _write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1, "bar": "x"}])
    rc, err = _cli_error(["--train_file", str(odd), "--output_dir", str(tmp_path / "b")] + common, capsys)
    assert rc == 2 and len(err) == 1 and "foo" in err[0] and "bar" in err[0] and "messages" in err[0]
    skips = _write_jsonl(tmp_path / "skips.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""},
                      {"role": "user", "content": "anyone"}, {"role": "assistant", "content": "yes"}]},
        {"messages": [{"role": "user", "content": "alone"}]},
        {"messages": [{"role": "tool", "content": "42"}, {"role": "assistant", "content": "ok"}]}])
    rc, err = _cli_error(["--train_file", str(skips), "--output_dir", str(tmp_path / "c"), "--strict"] + common, capsys)
    assert rc == 2 and len(err) == 1 and "skips.jsonl:1" in err[0] and "empty_turn" in err[0]
    rc = train_main(["--train_file", str(skips), "--output_dir", str(tmp_path / "d")] + common)
    assert rc == 0
    cov = json.loads((tmp_path / "d" / "train_results.json").read_text())["data_coverage"]
    assert cov["dialogues"] == 1 and cov["trained_turns"] == 2
    assert cov["skipped"]["empty_turn"] == 1 and cov["skipped"]["too_few_turns"] == 1
    assert cov["skipped"]["unknown_role"] == 1


def test_validation_split_percentage_holds_out_whole_dialogues(tmp_path, tiny_model_dir):
    path = _layout_file("messages", tmp_path)
    result = train(_config(tmp_path, tiny_model_dir, train_file=str(path), validation_split_percentage=25,
                           num_optim_steps=1))
    cov = result.data_coverage
    assert cov["validation_dialogues"] == 3 and cov["dialogues"] == 9 and cov["trained_turns"] == 27
    assert cov["turns"] == 36   # the train side's turns only (a held-out split is a select: not ds.data's rows)
    assert result.eval_loss is not None
