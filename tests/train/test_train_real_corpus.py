"""A real chat corpus nobody here wrote (chitchat-dataset, MIT: human-human chats of ~36 utterances) fine-tunes
a model through ``--train_file``: held-out perplexity falls, and ``data_coverage.trained_turns`` equals the
corpus's own count of target turns (every non-empty utterance after a chat's first, in the training chats)."""

from __future__ import annotations

import json

import pytest

from dialogpt.cli.train import main as train_main
from dialogpt.conversations import load_conversations, split_dialogues
from dialogpt.scoring.perplexity import perplexity

N_CHATS = 24


@pytest.mark.slow
def test_chitchat_corpus_fine_tunes_lowers_held_out_perplexity_and_trains_every_reply(tmp_path, tiny_model_dir):
    pytest.importorskip("chitchat_dataset", reason="chitchat-dataset is not installed (pip install -e '.[dev]')")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt.conversations.corpora import chitchat_data, chitchat_rows, write_jsonl

    data = chitchat_data()
    path = tmp_path / "chitchat.jsonl"
    write_jsonl(chitchat_rows(data, limit=N_CHATS), path)
    # the corpus's own counts, from its JSON: utterances per chat, empty ones left out
    utterances = {cid: [u for burst in c["messages"] for u in burst if isinstance(u["text"], str) and u["text"].strip()]
                  for cid, c in list(data.items())[:N_CHATS]}
    ds, _ = load_conversations(files=[str(path)])
    train_part, held_out = split_dialogues(ds, 10, seed=7)   # what the run below holds out (same seed)
    want_trained = sum(len(utterances[cid]) - 1 for cid in train_part["dialogue_id"])
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))

    def held_out_ppl(model_dir) -> float:
        return perplexity(AutoModelForCausalLM.from_pretrained(str(model_dir)), tok, held_out["turns"],
                          max_seq_length=128).ppl

    before = held_out_ppl(tiny_model_dir)
    rc = train_main(["--train_file", str(path), "--model_name_or_path", str(tiny_model_dir), "--output_dir",
                     str(tmp_path / "run"), "--validation_split_percentage", "10", "--seed", "7",
                     "--max_seq_length", "128", "--num_optim_steps", "15", "--train_batch_size", "8",
                     "--gradient_accumulation_steps", "1", "--learning_rate", "2e-3", "--lr_schedule", "None",
                     "--eval_steps", "0", "--save_steps", "0", "--no-pbar"])
    assert rc == 0
    results = json.loads((tmp_path / "run" / "train_results.json").read_text())
    cov = results["data_coverage"]
    assert cov["source_format"] == "speaker_table" and cov["validation_dialogues"] == len(held_out) >= 2
    assert cov["trained_turns"] == want_trained and cov["windows"] > cov["dialogues"]   # long chats: windows
    after = held_out_ppl(tmp_path / "run")
    assert after < 0.5 * before
    assert results["eval_ppl"] == pytest.approx(after, rel=1e-3)   # the run's own validation agrees
