"""A checkpoint written the way training writes it (``save_final``: the model with our generation config,
then ``install_chat_template`` + ``save_tokenizer``) has what vLLM's GPT-2 support reads, checked the way
vLLM reads it (vLLM itself does not run here): ``vllm/model_executor/models/gpt2.py`` (registry key
``GPT2LMHeadModel``, its config asserts, weight names and Conv1D layout), the chat template through
transformers' compiler and ``tokenizer.get_chat_template`` (``vllm/entrypoints/chat_utils.py``), and the
sampling defaults ``ModelConfig.get_diff_sampling_param`` takes from ``generation_config.json``."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    from dialogpt.chat_format import install_chat_template
    from dialogpt.tokenization import save_tokenizer
    from dialogpt.train.hub import dialogue_generation_config

    out = tmp_path_factory.mktemp("vllm_ckpt")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model.generation_config = dialogue_generation_config(tokenizer)
    model.save_pretrained(str(out))
    install_chat_template(tokenizer)
    save_tokenizer(tokenizer, out)
    return out


def test_config_and_weights_are_what_vllms_gpt2_loads(checkpoint):
    from safetensors import safe_open

    cfg = json.loads((checkpoint / "config.json").read_text())
    assert cfg["architectures"] == ["GPT2LMHeadModel"] and cfg["model_type"] == "gpt2"
    # GPT2Model.__init__ in vLLM asserts these are off; it builds get_act_fn(activation_function)
    assert not cfg.get("add_cross_attention") and not cfg["scale_attn_by_inverse_layer_idx"]
    assert not cfg["reorder_and_upcast_attn"] and cfg["activation_function"] == "gelu_new"
    assert cfg["tie_word_embeddings"] is not False  # else vLLM needs an lm_head.weight to load
    with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
        names = set(f.keys())
        c_attn = f.get_tensor("transformer.h.0.attn.c_attn.weight")
    # load_weights: "transformer." names (others get the prefix), .attn.bias buffers skipped, Conv1D
    # weights (in, out), which it transposes
    assert all(n.startswith(("transformer.", "lm_head.")) for n in names)
    assert not any(n.endswith((".attn.bias", ".attn.masked_bias")) for n in names)
    assert tuple(c_attn.shape) == (cfg["n_embd"], 3 * cfg["n_embd"])


def test_chat_template_renders_our_prompt_ids_as_vllm_applies_it(checkpoint):
    from transformers import AutoTokenizer
    from transformers.utils.chat_template_utils import _compile_jinja_template

    from dialogpt.chat_format import build_prompt_ids

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    template = tok.get_chat_template()  # resolve_hf_chat_template's tokenizer step
    _compile_jinja_template(template).environment.parse(template)  # _try_extract_ast: content format
    messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "hello there"},
                {"role": "assistant", "content": "hi"}, {"role": "user", "content": "how are you?"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, add_special_tokens=False)["input_ids"]  # chat completions tokenize without specials
    assert ids == build_prompt_ids(tok, ["hello there", "hi", "how are you?"])
    assert ids[-1] == tok.eos_token_id


def test_generation_config_gives_vllm_our_reply_length_and_eos_but_not_greedy(checkpoint):
    from transformers import GenerationConfig

    diff = GenerationConfig.from_pretrained(str(checkpoint)).to_diff_dict()
    # get_diff_sampling_param reads repetition_penalty, temperature, top_k, top_p, min_p, max_new_tokens
    taken = {k: diff[k] for k in ("repetition_penalty", "temperature", "top_k", "top_p", "min_p", "max_new_tokens")
             if diff.get(k) is not None}
    assert taken.pop("max_new_tokens") == 40 and taken.pop("repetition_penalty", 1.0) == 1.0 and not taken
    # so vLLM's default max_tokens is ours and its repetition penalty neutral, but it samples
    # (temperature 1.0) unless a request sends temperature 0: it reads neither do_sample nor
    # min_new_tokens nor our dialogpt_* keys, which say greedy
    assert not diff.get("do_sample") and diff["dialogpt_strategy"] == "greedy" and diff["min_new_tokens"] == 1
    assert diff["eos_token_id"] == diff["pad_token_id"] == 0
