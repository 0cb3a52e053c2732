"""Responder: each decoding strategy, history truncation, batched == sequential greedy, defaults.

Two tiny models: the fixture's random GPT-2, and a "constant" GPT-2 whose logits do not depend on
the input (ln_f weight 0, so every position sees the same hidden vector). With it, what a
strategy does is visible in the tokens: greedy repeats one token forever, a repetition penalty
must break that, ``min_new_tokens`` must hold back an EOS the model wants at once, and so on.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from dialogpt.chat_format import Turn, build_prompt_ids
from dialogpt.decode import GenerationOptions, Responder, save_generation_defaults
from dialogpt.decode.processors import FrequencyPresencePenalty, _ResponseOnlyRepetitionPenalty, response_processors
from dialogpt.decode.responder import left_pad

HISTORIES = [
    ["hello there"],
    ["how are you doing today my friend?", "fine thanks", "and what about you"],
    ["a"],
    ["I like turtles", "me too, they are great", "do you have one?", "no, but I want one"],
    ["what is the best subreddit for programming questions in your opinion"],
    ["ok"],
]


def _manual_greedy(model, prompt: list[int], steps: int, eos: int, min_new: int = 1) -> list[int]:
    """Greedy decoding written out by hand: full forward each step, argmax, stop at EOS (which is
    forbidden for the first ``min_new`` steps)."""
    ids = list(prompt)
    out = []
    with torch.no_grad():
        for step in range(steps):
            logits = model(torch.tensor([ids])).logits[0, -1]
            if step < min_new:
                logits[eos] = -float("inf")
            nxt = int(logits.argmax())
            if nxt == eos:
                break
            out.append(nxt)
            ids.append(nxt)
    return out


def _constant_model(tokenizer, eos_logit: float | None = None, favourite_gap: float = 0.0) -> GPT2LMHeadModel:
    """A GPT-2 whose next-token logits are the same at every step: W @ v."""
    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=32, n_positions=128,
                     eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(torch.ones(32))
        model.lm_head.weight.normal_(0, 1)
        logits = model.lm_head.weight @ torch.ones(32)
        if eos_logit is not None:  # make EOS the favourite by a margin
            model.lm_head.weight[tokenizer.eos_token_id] *= 0
            model.lm_head.weight[tokenizer.eos_token_id] += (logits.max() + eos_logit) / 32
        else:  # keep EOS out of reach so replies run to max_new_tokens
            model.lm_head.weight[tokenizer.eos_token_id] = -torch.ones(32) * 10
    return model


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([[1, 2, 3]])).logits[0, -1]


def test_batched_greedy_equals_one_at_a_time_and_a_hand_written_loop(tiny_model, tokenizer):
    opts = GenerationOptions(max_new_tokens=12)
    r = Responder(tiny_model, tokenizer, opts, batch_size=4)  # 6 contexts -> a padded batch of 4 + one of 2
    batched = r.respond_batch(HISTORIES)
    prompts = [build_prompt_ids(tokenizer, h) for h in HISTORIES]
    assert len({len(p) for p in prompts}) > 3, "the contexts must need padding for this test to mean anything"
    for k, (h, p, b) in enumerate(zip(HISTORIES, prompts, batched)):
        single = r.respond(h)
        assert b.candidates[0].token_ids == single.candidates[0].token_ids
        assert b.text == single.text
        assert b.prompt_tokens == len(p)
        if k in (1, 2):  # the longest-but-one and the shortest prompt, checked against the hand loop
            assert b.candidates[0].token_ids == _manual_greedy(tiny_model, p, 12, tokenizer.eos_token_id)
    assert r.stats["contexts"] == 2 * len(HISTORIES)


def test_left_pad_masks_and_aligns_right():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_sampling_is_seeded_varied_and_top_k_1_is_greedy(tiny_model, tokenizer):
    r = Responder(tiny_model, tokenizer, GenerationOptions(max_new_tokens=8))
    greedy = r.respond(HISTORIES[1]).candidates[0].token_ids
    opts = GenerationOptions(strategy="sample", max_new_tokens=8, num_candidates=4, temperature=1.5)
    torch.manual_seed(7)
    a = [c.token_ids for c in r.respond(HISTORIES[1], opts).candidates]
    torch.manual_seed(7)
    b = [c.token_ids for c in r.respond(HISTORIES[1], opts).candidates]
    assert a == b and len(a) == 4
    assert len({tuple(x) for x in a}) > 1, "four hot samples should not all be equal"
    for narrow in (opts.replace(top_k=1), opts.replace(top_p=1e-6), opts.replace(temperature=1e-4)):
        cands = r.respond(HISTORIES[1], narrow).candidates
        assert all(c.token_ids == greedy for c in cands), narrow


def test_beam_search_returns_distinct_ranked_candidates(tiny_model, tokenizer):
    r = Responder(tiny_model, tokenizer)
    opts = GenerationOptions(strategy="beam", num_beams=4, num_candidates=3, max_new_tokens=6, length_penalty=0.0)
    reply = r.respond(HISTORIES[0], opts)
    assert len(reply.candidates) == 3
    assert len({tuple(c.token_ids) for c in reply.candidates}) == 3
    # With length_penalty 0 beam scores are plain sums of log-probs: the best beam is at least as
    # likely as the greedy reply.
    prompt = build_prompt_ids(tokenizer, HISTORIES[0])

    def logprob(toks):
        ids = torch.tensor([prompt + toks])
        with torch.no_grad():
            lp = torch.log_softmax(tiny_model(ids).logits[0, :-1], -1)
        return sum(lp[len(prompt) - 1 + i, t].item() for i, t in enumerate(toks))

    greedy = r.respond(HISTORIES[0], GenerationOptions(max_new_tokens=6)).candidates[0].token_ids
    assert len(greedy) == 6 and all(len(c.token_ids) == 6 for c in reply.candidates)
    assert logprob(reply.candidates[0].token_ids) >= logprob(greedy) - 1e-4


def test_min_new_tokens_holds_back_eos_and_replies_stop_at_eos(tokenizer):
    model = _constant_model(tokenizer, eos_logit=5.0)
    r = Responder(model, tokenizer)
    empty = r.respond(["hi"], GenerationOptions(max_new_tokens=10, min_new_tokens=0)).candidates[0]
    assert empty.token_ids == [] and empty.finished and empty.text == ""
    three = r.respond(["hi"], GenerationOptions(max_new_tokens=10, min_new_tokens=3)).candidates[0]
    assert len(three.token_ids) == 3 and three.finished
    assert tokenizer.eos_token not in three.text


def test_repetition_penalty_covers_the_response_only(tokenizer):
    model = _constant_model(tokenizer)
    fav = int(_logits(model).argmax())
    r = Responder(model, tokenizer)
    plain = r.respond(["hi"], GenerationOptions(max_new_tokens=6)).candidates[0].token_ids
    assert plain == [fav] * 6  # the constant model repeats its favourite token forever
    penalised = r.respond(["hi"], GenerationOptions(max_new_tokens=6, repetition_penalty=1e4)).candidates[0]
    assert len(set(penalised.token_ids)) == 6 and penalised.token_ids[0] == fav
    # The favourite token in the *history* is not penalised: the reply still starts with it.
    history = [tokenizer.decode([fav]) * 3]
    assert fav in build_prompt_ids(tokenizer, history)
    again = r.respond(history, GenerationOptions(max_new_tokens=3, repetition_penalty=1e4)).candidates[0]
    assert again.token_ids[0] == fav


def test_response_repetition_penalty_processor_math():
    ids = torch.tensor([[1, 2, 2], [3, 1, 0]])  # rows' responses: [2] and [0]
    scores = torch.tensor([[1.0, 1.0, 4.0, 1.0], [-2.0, 1.0, 1.0, 1.0]])
    expected = [[1.0, 1.0, 2.0, 1.0], [-4.0, 1.0, 1.0, 1.0]]
    (proc,) = response_processors(GenerationOptions(repetition_penalty=2.0), 2)  # transformers' own
    assert type(proc).__module__.startswith("transformers.")
    # the fallback kept for a transformers without prompt_ignore_length agrees, per row lengths too
    for p in (proc, _ResponseOnlyRepetitionPenalty(2.0, 2), _ResponseOnlyRepetitionPenalty(2.0, torch.tensor([2, 2]))):
        assert p(ids, scores.clone()).tolist() == expected
        assert p(ids[:, :2], scores.clone()).tolist() == scores.tolist()  # nothing generated yet
    # per-row prompt lengths (the server's scheduler): row 1's prompt is 1 token, its response [1, 0]
    rows = _ResponseOnlyRepetitionPenalty(2.0, torch.tensor([2, 1]))(ids, scores.clone())
    assert rows.tolist() == [[1.0, 1.0, 2.0, 1.0], [-4.0, 0.5, 1.0, 1.0]]


def test_frequency_and_presence_penalties_count_response_tokens_only():
    ids = torch.tensor([[3, 2, 2, 1], [3, 3, 0, 3]])  # prompt = 1 column; responses [2, 2, 1] and [3, 0, 3]
    scores = torch.zeros(2, 4)
    out = FrequencyPresencePenalty(0.5, 1.0, 1)(ids, scores)
    assert out.tolist() == [[0.0, -1.5, -2.0, 0.0], [-1.5, 0.0, 0.0, -2.0]]
    per_row = FrequencyPresencePenalty(1.0, 0.0, torch.tensor([1, 3]))(ids, scores)  # row 1 response: [3]
    assert per_row.tolist() == [[0.0, -1.0, -2.0, 0.0], [0.0, 0.0, 0.0, -1.0]]
    with pytest.raises(ValueError, match="--presence-penalty"):
        GenerationOptions(presence_penalty=2.5)


def test_presence_penalty_breaks_the_constant_models_loop(tokenizer):
    model = _constant_model(tokenizer)
    r = Responder(model, tokenizer)
    plain = r.respond(["hi"], GenerationOptions(max_new_tokens=4)).candidates[0].token_ids
    assert len(set(plain)) == 1
    varied = r.respond(["hi"], GenerationOptions(max_new_tokens=4, presence_penalty=2.0,
                                                 frequency_penalty=2.0)).candidates[0].token_ids
    assert varied[0] == plain[0] and len(set(varied)) > 1


def test_no_repeat_ngram_size(tokenizer):
    model = _constant_model(tokenizer)
    r = Responder(model, tokenizer)
    toks = r.respond(["hi"], GenerationOptions(max_new_tokens=8, no_repeat_ngram_size=1)).candidates[0].token_ids
    assert len(toks) == 8 and len(set(toks)) == 8
    toks2 = r.respond(["hi"], GenerationOptions(max_new_tokens=8, no_repeat_ngram_size=2)).candidates[0].token_ids
    bigrams = list(zip(toks2, toks2[1:]))
    assert len(bigrams) == len(set(bigrams)) and len(set(toks2)) < 8


def test_history_truncation_by_turns_and_by_tokens(tiny_model, tokenizer):
    long_history = [f"turn number {i} says something fairly long about nothing" for i in range(30)]
    r = Responder(tiny_model, tokenizer, GenerationOptions(max_new_tokens=4, max_history_turns=2))
    assert r.prompt_ids(long_history) == build_prompt_ids(tokenizer, long_history[-2:])
    # By tokens: a 256-position model asked for 240 new tokens leaves 16 for the prompt, whole turns first.
    opts = GenerationOptions(max_new_tokens=240)
    budget = r.prompt_budget(opts)
    assert budget == tiny_model.config.n_positions - 240
    ids = r.prompt_ids(long_history, opts)
    assert ids == build_prompt_ids(tokenizer, long_history, budget) and len(ids) <= budget
    # max_prompt_tokens tightens it further, and decoding a too-long history works and is counted.
    opts = GenerationOptions(max_new_tokens=5, max_prompt_tokens=20)
    reply = r.respond(long_history, opts)
    assert reply.prompt_tokens <= 20 and len(reply.candidates[0].token_ids) == 5
    assert r.stats["truncated_prompts"] == 1
    with pytest.raises(ValueError, match="max-new-tokens"):
        r.prompt_budget(GenerationOptions(max_new_tokens=256))


@pytest.mark.parametrize("kwargs, flag", [
    (dict(strategy="nucleus"), "--strategy"),
    (dict(max_new_tokens=0), "--max-new-tokens"),
    (dict(temperature=0.0), "--temperature"),
    (dict(top_p=1.5), "--top-p"),
    (dict(num_candidates=3), "greedy"),
    (dict(strategy="beam", num_beams=2, num_candidates=3), "--num-beams"),
    (dict(min_new_tokens=50, max_new_tokens=10), "--min-new-tokens"),
])
def test_options_reject_bad_values_naming_the_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        GenerationOptions(**kwargs)


def test_defaults_saved_with_the_model_are_used(tiny_model_dir, tmp_path, tokenizer):
    import shutil

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    opts = GenerationOptions(strategy="sample", top_p=0.8, top_k=20, temperature=0.7, max_new_tokens=9,
                             repetition_penalty=1.3, num_candidates=2, max_history_turns=5,
                             frequency_penalty=0.5, presence_penalty=-0.25)
    save_generation_defaults(d, opts, tokenizer.eos_token_id)
    r = Responder.from_pretrained(str(d), device="cpu")
    assert r.options == opts
    reply = r.respond(["hello"])
    assert len(reply.candidates) == 2 and all(len(c.token_ids) <= 9 for c in reply.candidates)
    # A plain HF config (no dialogpt_* keys) maps onto the options too.
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    model.generation_config.num_beams = 3
    model.generation_config.max_new_tokens = 7
    assert GenerationOptions.from_generation_config(model.generation_config) == GenerationOptions(
        strategy="beam", num_beams=3, max_new_tokens=7)


def test_logprob_of_chosen_reply_uses_only_response_labels(tiny_model, tokenizer):
    # The forward-logprob reranker's scores equal a hand computation on the unpadded sequence.
    from dialogpt.decode.rerank import LogprobReranker

    rr = LogprobReranker(tiny_model, tokenizer)
    hist = [Turn("hello there"), Turn("hi")]
    cands = ["how are you", "ok", "what a day it has been"]
    got = rr.score([hist], [cands])[0]
    prompt = build_prompt_ids(tokenizer, hist)
    for c, s in zip(cands, got):
        resp = tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = torch.tensor([prompt + resp])
        with torch.no_grad():
            lp = torch.log_softmax(tiny_model(ids).logits[0], -1)
        expected = sum(lp[len(prompt) - 1 + i, t].item() for i, t in enumerate(resp))
        assert s == pytest.approx(expected, abs=1e-4)
    # Per-token scores divide by the response's tokens + EOS only: prompt positions are no labels.
    per_token = LogprobReranker(tiny_model, tokenizer, length_normalize=True).score([hist], [cands])[0]
    for c, s, n in zip(cands, got, per_token):
        assert n == pytest.approx(s / (len(tokenizer(c, add_special_tokens=False)["input_ids"]) + 1), abs=1e-5)


def test_hub_ids_load_like_dirs(mock_hub, tiny_model_dir):
    """``Responder.from_pretrained("org/name")`` goes through AutoModelForCausalLM / the Hub (here the
    loopback mock), the way microsoft/DialoGPT-medium does in real use."""
    import uuid

    from huggingface_hub import HfApi

    repo = f"org/tiny-dialogpt-{uuid.uuid4().hex[:8]}"
    api = HfApi(endpoint=mock_hub.url)
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(repo_id=repo, folder_path=str(tiny_model_dir))
    opts = GenerationOptions(max_new_tokens=5)
    remote = Responder.from_pretrained(repo, device="cpu", options=opts).respond(HISTORIES[1])
    local = Responder.from_pretrained(str(tiny_model_dir), device="cpu", options=opts).respond(HISTORIES[1])
    assert remote.candidates[0].token_ids == local.candidates[0].token_ids and remote.text == local.text


def test_explicit_options_are_not_overridden_by_the_models_saved_defaults(tiny_model, tokenizer):
    """generate() fills *unset* fields from model.generation_config; ours must all be set, so a model
    saved with sampling, a whole-sequence repetition penalty, etc. still decodes greedily when asked."""
    from transformers import GenerationConfig

    prompt = build_prompt_ids(tokenizer, HISTORIES[3])
    expected = _manual_greedy(tiny_model, prompt, 8, tokenizer.eos_token_id)
    tiny_model.generation_config = GenerationConfig(
        do_sample=True, top_k=5, temperature=3.0, repetition_penalty=1.5, no_repeat_ngram_size=1, num_beams=3,
        min_new_tokens=8, num_return_sequences=2, eos_token_id=tokenizer.eos_token_id)
    r = Responder(tiny_model, tokenizer, GenerationOptions(max_new_tokens=8))
    torch.manual_seed(0)
    got = r.respond(HISTORIES[3])
    assert len(got.candidates) == 1 and got.candidates[0].token_ids == expected


def test_n_candidates_for_many_contexts_in_one_batch_equal_one_context_at_a_time(tiny_model, tokenizer):
    """Beam search with 3 returned beams per context over 6 left-padded contexts in one generate call:
    every context gets its own 3 candidates, the same as decoding that context alone."""
    opts = GenerationOptions(strategy="beam", num_beams=4, num_candidates=3, max_new_tokens=6)
    batched = Responder(tiny_model, tokenizer, opts, batch_size=len(HISTORIES)).respond_batch(HISTORIES)
    alone = Responder(tiny_model, tokenizer, opts, batch_size=1)
    for h, b in zip(HISTORIES, batched):
        single = alone.respond(h)
        assert len(b.candidates) == 3
        assert [c.token_ids for c in b.candidates] == [c.token_ids for c in single.candidates]
    # Different contexts get different candidates (rows are not mixed up between contexts).
    assert len({tuple(r.candidates[0].token_ids) for r in batched}) > 1


def test_response_repetition_penalty_acts_before_sampling_filters(tokenizer):
    """The penalty must reshape the distribution *before* top-k / temperature (as transformers' own
    penalty does): with top_k=1 sampling is greedy over the penalised logits, so the constant model
    stops repeating its favourite token. Applied after top-k it could not change anything."""
    model = _constant_model(tokenizer)
    r = Responder(model, tokenizer)
    opts = GenerationOptions(strategy="sample", top_k=1, temperature=0.5, max_new_tokens=6)
    torch.manual_seed(0)
    plain = r.respond(["hi"], opts).candidates[0].token_ids
    assert len(set(plain)) == 1
    torch.manual_seed(0)
    penalised = r.respond(["hi"], opts.replace(repetition_penalty=1e4)).candidates[0].token_ids
    assert len(set(penalised)) == 6 and penalised[0] == plain[0]
