"""Issue 23 point 7: ``dialogpt-data prepare`` inspects the user's dialogues and converts them.

Its figures are what training reports (a real run's ``data_coverage`` on the same file and flags); its folder
loads with ``datasets`` alone, trains with ``dialogpt-train --dataset DIR``, survives a Hub round trip; its
mistakes are one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from train_helpers import base_config

from dialogpt.chat_format import IGNORE_INDEX, encode_session, install_chat_template
from dialogpt.cli.data import main as data_main
from dialogpt.train.loop import train
from dialogpt.train.prepare_stats import NEEDS_TOKENIZER

WORDS = "hello there how are you today fine thanks what about the weather sunny rain again later".split()


def _line(i: int, j: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(3 + (i + j) % 5))


def _roles(n: int) -> list[str]:
    return ["user" if (n - 1 - k) % 2 else "assistant" for k in range(n)]


def _messages(turns: list[str]) -> dict:
    return {"messages": [{"role": r, "content": t} for r, t in zip(_roles(len(turns)), turns)]}


def _chats_file(tmp_path: Path, n: int = 12, long_turns: int = 0) -> Path:
    """``n`` four-turn chats, one ``long_turns``-turn chat (if any), one dialogue too short to keep."""
    rows = [_messages([_line(i, j) for j in range(4)]) for i in range(n)]
    if long_turns:
        rows.append(_messages([_line(k, k + 1) + f" number {k}" for k in range(long_turns)]))
    rows.append(_messages(["all alone"]))
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _prepare_json(argv: list[str], capsys) -> dict:
    assert data_main(["prepare", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _train(tmp_path: Path, model_dir: Path, **kw):
    """One optimizer step of the tiny model (and its tokenizer) on ``kw``'s data: enough for its data_coverage."""
    dataset = kw.pop("dataset", None)
    kw = {"max_seq_length": 48, "num_optim_steps": 1, "train_batch_size": 2, "gradient_accumulation_steps": 1,
          "model_config": None, "model_name_or_path": str(model_dir), **kw}
    return train(base_config(tmp_path, dataset, model_dir, **kw))


def test_figures_of_small_chats_and_of_a_long_chat(tmp_path, tokenizer_dir, tokenizer, capsys):
    path = _chats_file(tmp_path)
    assert data_main(["prepare", str(path)]) == 0                          # no tokenizer: no token figures
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: layout messages") and "too_few_turns 1" in out[0]   # the detection line
    assert any(ln.startswith("dialogues") and "12 (train 12)" in ln for ln in out)
    assert any(ln.startswith("target turns (train)") and " 36 under --train_on all" in ln for ln in out)
    assert NEEDS_TOKENIZER in out and not any(ln.startswith("tokens per turn") and "mean" in ln for ln in out)

    s = _prepare_json([str(path), "--tokenizer", str(tokenizer_dir), "--max_seq_length", "128"], capsys)
    assert (s["dialogues"], s["turns"]) == (12, 48) and s["turns_per_dialogue"] == {"mean": 4.0, "max": 4}
    texts = [_line(i, j) for i in range(12) for j in range(4)]
    lengths = sorted(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert s["tokens_per_turn"]["max"] == lengths[-1] and s["tokens_per_turn"]["median"] == (lengths[23] + lengths[24]) / 2
    assert s["words_per_turn"]["max"] == max(len(t.split()) for t in texts)
    cov = s["data_coverage"]
    assert cov["windows"] == 12 and cov["trained_turns"] == s["target_turns"] == 36   # short chats: one window each
    assert cov["skipped"] == {"too_few_turns": 1, "no_trained_turn": 0}

    (tmp_path / "long").mkdir()
    long_path = _chats_file(tmp_path / "long", n=0, long_turns=40)
    s = _prepare_json([str(long_path), "--tokenizer", str(tokenizer_dir), "--max_seq_length", "48"], capsys)
    cov = s["data_coverage"]
    assert s["dialogues"] == 1 and cov["windows"] > 5 and cov["trained_turns"] == 39   # windows > dialogues


def test_figures_equal_a_training_runs_data_coverage(tmp_path, tokenizer_dir, tiny_model_dir, capsys):
    path = _chats_file(tmp_path, long_turns=30)
    flags = dict(max_seq_length=48, train_on="assistant", validation_split_percentage=25, seed=5)
    s = _prepare_json([str(path), "--tokenizer", str(tokenizer_dir)]
                      + [x for k, v in flags.items() for x in (f"--{k}", str(v))], capsys)
    result = _train(tmp_path, tiny_model_dir, train_file=str(path), **flags)
    assert s["data_coverage"] == result.data_coverage                           # every figure, every skip
    assert result.data_coverage["validation_dialogues"] == 3 and result.data_coverage["dialogues"] == 10


def _load_without_project_code(folder: Path, cache: Path) -> dict:
    code = ("import sys, json; sys.modules['dialogpt'] = None; sys.modules['dialogpt_dataset'] = None\n"
            "import datasets\n"
            f"ds = datasets.load_dataset({str(folder)!r}, cache_dir={str(cache)!r})\n"
            "print(json.dumps({k: {'columns': v.column_names, 'rows': v.to_list()} for k, v in ds.items()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.slow
def test_the_folder_loads_with_datasets_alone_and_trains(tmp_path, tokenizer_dir, tiny_model_dir, capsys):
    path = _chats_file(tmp_path, long_turns=20)
    folder = tmp_path / "my-chats"
    s = _prepare_json([str(path), "--tokenizer", str(tokenizer_dir), "--max_seq_length", "48", "--train_on",
                       "assistant", "--validation_split_percentage", "20", "--output", str(folder)], capsys)
    fp = s["data_fingerprint"]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md", f"data/train-{fp}-00000-of-00001.parquet", f"data/validation-{fp}-00000-of-00001.parquet",
        "prepare_stats.json"]
    assert json.loads((folder / "prepare_stats.json").read_text())["data_coverage"] == s["data_coverage"]
    card = (folder / "README.md").read_text()
    assert "license: other" in card and "chats.jsonl" in card and str(tmp_path) not in card
    assert f"**{s['data_coverage']['trained_turns']} turns**" in card and "`too_few_turns` | a dialogue | 1" in card

    loaded = _load_without_project_code(folder, tmp_path / "cache")
    assert {k: len(v["rows"]) for k, v in loaded.items()} == {"train": 10, "validation": 3}
    assert loaded["train"]["columns"] == ["dialogue_id", "turns", "messages"]
    tok = _tokenizer_with_template(tokenizer_dir)
    for row in loaded["train"]["rows"] + loaded["validation"]["rows"]:
        turns, messages = row["turns"], row["messages"]
        assert [m["role"] for m in messages] == [t["role"] for t in turns] == _roles(len(turns))
        # only the assistant's turns are trained: weight 0 elsewhere, and `trainable` says so
        assert [t["weight"] for t in turns] == [float(r == "assistant") for r in _roles(len(turns))]
        assert [m["trainable"] for m in messages] == [i > 0 and t["weight"] != 0 for i, t in enumerate(turns)]
        if len(turns) == 4:  # stock chat tooling masks exactly what DialoGPT labels
            enc = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
            labels = encode_session(tok, turns, max_seq_length=None).labels
            assert enc["assistant_masks"] == [int(y != IGNORE_INDEX) for y in labels]

    result = _train(tmp_path, tiny_model_dir, dataset=str(folder))   # the default --train_on all
    cov, want = result.data_coverage, s["data_coverage"]
    assert cov["source_format"] == "turns" and cov["validation_dialogues"] == want["validation_dialogues"] == 3
    assert (cov["dialogues"], cov["turns"], cov["windows"], cov["trained_turns"]) == (
        want["dialogues"], want["turns"], want["windows"], want["trained_turns"])


def _tokenizer_with_template(tokenizer_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    install_chat_template(tok)
    return tok


def test_push_to_hub_round_trip_privately(tmp_path, mock_hub, monkeypatch, capsys):
    import datasets

    token = "hf_prepare_" + uuid.uuid4().hex
    org = "prep-" + uuid.uuid4().hex[:6]
    mock_hub.add_token(token, "pat", orgs=[org])
    monkeypatch.setenv("HF_TOKEN", token)
    path = _chats_file(tmp_path)
    assert data_main(["prepare", str(path), "--output", str(tmp_path / "out"), "--push-to-hub", f"{org}/chats",
                      "--private", "--license", "cc-by-4.0"]) == 0
    out, err = capsys.readouterr()
    assert "pushed: " in out and token not in out + err
    files = mock_hub.repo_files("dataset", f"{org}/chats")
    assert "prepare_stats.json" in files and "license: cc-by-4.0" in files["README.md"].decode()
    hub = datasets.load_dataset(f"{org}/chats", cache_dir=str(tmp_path / "hub_cache"))
    local = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "local_cache"))
    assert hub["train"].to_list() == local["train"].to_list() and hub["train"].num_rows == 12
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises((datasets.exceptions.DatasetNotFoundError, OSError)):
        datasets.load_dataset(f"{org}/chats", cache_dir=str(tmp_path / "anon"), token=False)
    assert mock_hub.errors == []


def _one_line_error(argv: list[str], capsys) -> str:
    try:
        rc = data_main(["prepare", *argv])
    except SystemExit as e:  # argparse's own mistakes
        rc = e.code
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.replace("\r", "\n").splitlines() if ln.strip() and not ln.endswith("/s]")]
    assert rc == 2 and "Traceback" not in captured.err, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_mistakes_are_one_line_and_write_nothing(tmp_path, capsys):
    good = _chats_file(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_messages(["hi", "yo"])) + "\n" + '{"messages": [oops\n', encoding="utf-8")
    out = tmp_path / "out"
    assert f"{bad}:2" in _one_line_error([str(bad), "--output", str(out)], capsys)
    assert not out.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert "not empty" in _one_line_error([str(good), "--output", str(busy)], capsys)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert data_main(["prepare", str(good), "--output", str(busy), "--overwrite"]) == 0   # --overwrite writes
    assert (busy / "README.md").is_file() and (busy / "keep.txt").is_file()
    assert "one of the two" in _one_line_error([str(good), "--dataset", str(busy)], capsys)
    assert "between 0 and 100" in _one_line_error([str(good), "--validation_split_percentage", "100"], capsys)
    assert "--private needs --push-to-hub" in _one_line_error([str(good), "--private"], capsys)
    assert "no such file" in _one_line_error([str(tmp_path / "nope.jsonl")], capsys)
    assert "--tokenizer" in _one_line_error([str(good), "--tokenizer", str(tmp_path / "no-tokenizer")], capsys)
    assert "--bogus" in _one_line_error(["--bogus"], capsys)


def test_a_script_keeps_its_speakers_through_the_folder(tmp_path, capsys):
    from dialogpt.conversations import ConversationOptions, load_conversations

    lines = [("ALICE", "where is the rabbit"), ("HATTER", "no room"), ("ALICE", "there is plenty of room"),
             ("HARE", "have some wine"), ("ALICE", "i see no wine")]
    script = tmp_path / "script.jsonl"
    script.write_text("".join(json.dumps({"character": c, "line": t}) + "\n" for c, t in lines), encoding="utf-8")
    folder = tmp_path / "alice"
    s = _prepare_json([str(script), "--train_on", "ALICE", "--system_messages", "context", "--output", str(folder)],
                      capsys)
    assert s["source_format"] == "speaker_table" and s["target_turns"] == 2 and s["data_coverage"] is None
    assert "--train_on ALICE --system_messages context --output alice" in (folder / "README.md").read_text()
    back, report = load_conversations(dataset=str(folder), options=ConversationOptions())
    assert report.layout == "turns"
    turns = back[0]["turns"]
    assert [(t["speaker"], t["role"]) for t in turns] == [(c, "") for c, _ in lines]     # characters kept
    assert [t["weight"] for t in turns] == [float(c == "ALICE") for c, _ in lines]        # only ALICE trained
    import datasets

    row = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))[0]
    assert [(m["role"], m["trainable"]) for m in row["messages"]] == [
        ("assistant" if c == "ALICE" else "user", c == "ALICE" and i > 0) for i, (c, _) in enumerate(lines)]
