"""A trained run folder used with stock transformers only: ``pipeline("text-generation")`` with chat messages
replies exactly as the project's Responder does under the model's saved defaults (generation_config.json),
on 100/100 contexts, including those where the first token would have been EOS (min_new_tokens)."""

from __future__ import annotations

import json

import pytest
from train_helpers import base_config, make_sessions, write_parquet_dataset

from dialogpt.chat_format import turns_to_messages


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tokenizer_dir):
    from dialogpt.train.loop import train

    tmp = tmp_path_factory.mktemp("parity")
    ds = write_parquet_dataset(tmp / "ds", n_train=32, n_valid=8)
    train(base_config(tmp, ds, tokenizer_dir, num_optim_steps=3))
    return tmp / "run"


def test_saved_generation_config_is_the_responders_defaults(run_dir):
    from transformers import GenerationConfig

    from dialogpt.decode.options import GenerationOptions

    saved = GenerationConfig.from_pretrained(str(run_dir))
    assert GenerationOptions.from_generation_config(saved) == GenerationOptions()
    want = GenerationOptions().to_saved_config(eos_token_id=saved.eos_token_id).to_dict()
    for key in ("max_new_tokens", "min_new_tokens", "do_sample", "num_beams", "repetition_penalty",
                "no_repeat_ngram_size", "eos_token_id", "pad_token_id", "dialogpt_strategy",
                "dialogpt_response_repetition_penalty"):
        assert saved.to_dict()[key] == want[key], key
    assert saved.min_new_tokens == 1 and saved.bos_token_id == saved.eos_token_id
    tok_cfg = json.loads((run_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "GPT2TokenizerFast" and "generation" in tok_cfg["chat_template"]


@pytest.mark.slow
def test_pipeline_with_messages_equals_responder_on_100_contexts(run_dir):
    from transformers import pipeline

    from dialogpt.decode.responder import Responder

    contexts = [[t["text"] for t in s["turns"][:-1]] for s in make_sessions(100, seed=11, min_turns=2, max_turns=5)]
    responder = Responder.from_pretrained(str(run_dir), device="cpu")
    replies = responder.respond_batch(contexts)
    pipe = pipeline("text-generation", model=str(run_dir), device="cpu")
    tok, eos = pipe.tokenizer, pipe.tokenizer.eos_token_id
    chats = [turns_to_messages(ctx, last_role="user") for ctx in contexts]
    same = empty = 0
    for chat, reply, out in zip(chats, replies, pipe(chats, return_tensors=True)):
        prompt = tok.apply_chat_template(chat, tokenize=True, add_generation_prompt=True)
        prompt = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
        new = list(out[0]["generated_token_ids"][len(prompt):])
        new = new[: new.index(eos)] if eos in new else new
        same += new == reply.candidates[0].token_ids
        empty += not new
    assert same == 100 and empty == 0  # min_new_tokens=1 reached the pipeline: no empty replies
    # the check has teeth: without the saved min_new_tokens some of these contexts get EOS first (empty)
    first = pipe(chats, return_tensors=True, min_new_tokens=0, max_new_tokens=1)
    eos_first = sum(out[0]["generated_token_ids"][-1] == eos for out in first)
    assert eos_first > 0
    # and the text a pipeline user reads is the Responder's (which also collapses whitespace)
    for chat, reply in zip(chats[:5], replies[:5]):
        assert " ".join(pipe(chat)[0]["generated_text"][-1]["content"].split()) == reply.text
