"""`make demo` at a smaller scale: every stage runs through the real CLIs and leaves its artefacts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_every_stage_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--output", str(out), "--steps", "30",
         "--reverse-steps", "10", "--batch-size", "8", "--max-seq-length", "64", "--limit", "6", "--num-proc", "1",
         "--own-steps", "20"],
        capture_output=True, text=True, timeout=900,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    for n in range(1, 9):
        assert f"=== [{n}/8]" in log
    assert log.count("--- done in") == 8
    # stage artefacts
    assert (out / "reddit-dialog" / "README.md").is_file() and (out / "reddit-dialog" / "test.refs.txt").is_file()
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    for model in ("model", "reverse"):
        assert (out / model / "config.json").is_file()
        assert (out / model / "generation_config.json").is_file()
        assert (out / model / "train_log.txt").read_text().strip()
    hyps = (out / "test.hyp.txt").read_text().splitlines()
    assert len(hyps) == 6
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores) >= {"nist2", "nist4", "bleu2", "bleu4", "meteor", "entropy4", "dist1", "dist2", "avg_len"}
    assert all(isinstance(v, float) for v in scores.values())
    # the metric table row and the chats were printed
    assert "| Experiment | NIST2 | NIST4 | BLEU2 | BLEU4 | METEOR |" in log
    assert log.count("  Bot:  ") == 8 + 3 and "(no reply)" not in log
    # stage 8: the shipped chat sample fine-tunes the demo model; whole dialogues held out, perplexity falls
    own = json.loads((out / "own-dialogues" / "train_results.json").read_text())
    cov = own["data_coverage"]
    assert cov["source_format"] == "messages" and cov["dialogues"] + cov["validation_dialogues"] == 791
    assert own["eval_ppl"] < own["initial_eval_ppl"]
    assert f"{cov['trained_turns']:,} of {cov['turns']:,} turns trained" in log
    # the card carries the measured metrics, not placeholders
    card = (out / "model" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    results = meta["model-index"][0]["results"]
    values = {m["type"]: m["value"] for r in results for m in r["metrics"]}
    assert values["bleu4"] == scores["bleu4"] and values["nist4"] == scores["nist4"]
    assert meta["pipeline_tag"] == "text-generation" and meta["library_name"] == "transformers"


def test_demo_fine_tunes_a_hub_model_by_id(tmp_path, tiny_model_dir, mock_hub):
    """The `--model microsoft/DialoGPT-medium` path of the README, against the loopback Hub."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("demo-org/tiny-dialogpt", exist_ok=True)
    api.upload_folder(folder_path=str(tiny_model_dir), repo_id="demo-org/tiny-dialogpt")
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--output", str(out), "--model", "demo-org/tiny-dialogpt",
         "--reverse-model", "demo-org/tiny-dialogpt", "--steps", "4", "--batch-size", "4", "--max-seq-length", "64",
         "--limit", "3", "--num-proc", "1", "--no-meteor", "--own-steps", "2"],
        capture_output=True, text=True, timeout=900,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "using the tokenizer of demo-org/tiny-dialogpt" in log and "using demo-org/tiny-dialogpt" in log
    assert not (out / "tokenizer").exists() and not (out / "reverse").exists()
    hp = yaml.safe_load((out / "model" / "hyperparameters.yaml").read_text())
    assert hp["model_name_or_path"] == "demo-org/tiny-dialogpt"
    assert len((out / "test.hyp.txt").read_text().splitlines()) == 3
    assert mock_hub.errors == []
