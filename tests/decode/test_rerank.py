"""Reranking: MMI (reverse model) and DialogRPT scores computed independently here, and the order
the Responder picks from them."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPT2Config, GPT2ForSequenceClassification

from dialogpt.chat_format import IGNORE_INDEX, Turn
from dialogpt.decode import GenerationOptions, Responder
from dialogpt.decode.rerank import (
    DialogRPTReranker,
    MMIReranker,
    RankerSpec,
    parse_ranker_specs,
    sequence_logprobs,
)

HISTORY = [Turn("what do you think about cats"), Turn("they are fine"), Turn("only fine?")]
CANDIDATES = ["yes", "they are the best animals in the world", "no idea what you mean", "cats cats"]


def _ids(tokenizer) -> dict:
    """Special ids inside the tiny vocabulary (GPT2Config's default 50256 is outside it and warns)."""
    return dict(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.eos_token_id)


def _sum_logprob(model, ids: list[int], first_label: int) -> tuple[float, int]:
    """log p(ids[first_label:] | ids[:first_label]) on one unpadded sequence."""
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    total = sum(lp[i - 1, ids[i]].item() for i in range(first_label, len(ids)))
    return total, len(ids) - first_label


def _expected_mmi(model, tokenizer, history, candidate, normalize=False) -> float:
    """Independent MMI score: input = candidate EOS, then the source turns newest first, each + EOS;
    only the source part is scored (log p(source | candidate))."""
    eos = tokenizer.eos_token_id
    enc = lambda t: tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    head = enc(candidate) + [eos]
    source = [i for t in reversed(history) for i in enc(t.text) + [eos]]
    total, n = _sum_logprob(model, head + source, len(head))
    return total / n if normalize else total


def test_sequence_logprobs_matches_unbatched_computation(tiny_model):
    examples = [([5, 6, 7, 8, 9], [IGNORE_INDEX, IGNORE_INDEX, 7, 8, 9]), ([3, 4], [IGNORE_INDEX, 4]),
                ([10, 11, 12], [IGNORE_INDEX, 11, IGNORE_INDEX])]
    got = sequence_logprobs(tiny_model, examples, batch_size=2)
    assert got[0] == pytest.approx((_sum_logprob(tiny_model, [5, 6, 7, 8, 9], 2)[0], 3), abs=1e-4)
    assert got[1] == pytest.approx((_sum_logprob(tiny_model, [3, 4], 1)[0], 1), abs=1e-4)
    assert got[2] == pytest.approx((_sum_logprob(tiny_model, [10, 11], 1)[0], 1), abs=1e-4)


@pytest.mark.parametrize("normalize", [False, True])
def test_mmi_scores_are_log_p_source_given_candidate(tiny_model, tokenizer, normalize):
    rr = MMIReranker(tiny_model, tokenizer, length_normalize=normalize, batch_size=3)
    got = rr.score([HISTORY, HISTORY[:1]], [CANDIDATES, CANDIDATES[:2]])
    for hist, cands, scores in zip([HISTORY, HISTORY[:1]], [CANDIDATES, CANDIDATES[:2]], got):
        assert len(scores) == len(cands)
        for c, s in zip(cands, scores):
            assert s == pytest.approx(_expected_mmi(tiny_model, tokenizer, hist, c, normalize), abs=1e-4)


def test_responder_ranks_candidates_by_mmi_and_picks_the_best(tiny_model, tokenizer):
    torch.manual_seed(0)
    rr = MMIReranker(tiny_model, tokenizer)
    r = Responder(tiny_model, tokenizer, reranker=rr)
    opts = GenerationOptions(strategy="sample", num_candidates=5, max_new_tokens=6, temperature=2.0)
    reply = r.respond(HISTORY, opts)
    assert len(reply.candidates) == 5 and reply.chosen == 0
    expected = [_expected_mmi(tiny_model, tokenizer, HISTORY, c.text) for c in reply.candidates]
    assert [c.score for c in reply.candidates] == pytest.approx(expected, abs=1e-4)
    assert expected == sorted(expected, reverse=True)
    assert reply.text == reply.candidates[0].text
    assert len({c.text for c in reply.candidates}) > 1


def _tiny_ranker(tokenizer, seed: int, tmp_path, name: str):
    torch.manual_seed(seed)
    # DialogRPT's released configs have no pad id (the tests check we cope): bos/eos only
    cfg = GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=32, n_positions=128, num_labels=1,
                     bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2ForSequenceClassification(cfg).eval()
    with torch.no_grad():  # a visible spread of scores rather than sigmoid(~0) for everything
        model.score.weight.mul_(20)
    d = tmp_path / name
    model.save_pretrained(str(d))
    tokenizer.save_pretrained(str(d))
    return model, d


def _expected_rpt(model, tokenizer, history, response) -> float:
    """DialogRPT as its model card uses it: one unpadded sequence 'c1<|endoftext|>c2<|endoftext|>resp',
    sigmoid of the classification logit (pad_token_id unset -> the last token)."""
    text = "".join(t.text + tokenizer.eos_token for t in history) + response
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert model.config.pad_token_id is None
    with torch.no_grad():
        return torch.sigmoid(model(torch.tensor([ids])).logits[0, 0]).item()


def test_dialogrpt_single_ranker_and_prior_times_cond_ensemble(tokenizer, tmp_path):
    (m1, d1), (m2, d2), (m3, d3) = (_tiny_ranker(tokenizer, s, tmp_path, f"r{s}") for s in (1, 2, 3))
    single = DialogRPTReranker.from_specs(parse_ranker_specs([str(d2)]), batch_size=3)
    got = single.score([HISTORY], [CANDIDATES])[0]
    exp2 = [_expected_rpt(m2, tokenizer, HISTORY, c) for c in CANDIDATES]
    assert got == pytest.approx(exp2, abs=1e-5)
    assert len({round(x, 3) for x in exp2}) > 1

    specs = parse_ranker_specs([f"prior:{d1}@0.5", f"cond:{d2}@1", f"cond:{d3}@-0.5"])
    assert [(s.kind, s.weight) for s in specs] == [("prior", 0.5), ("cond", 1.0), ("cond", -0.5)]
    ens = DialogRPTReranker.from_specs(specs, batch_size=2)
    got = ens.score([HISTORY], [CANDIDATES])[0]
    for c, s in zip(CANDIDATES, got):
        p1, p2, p3 = (_expected_rpt(m, tokenizer, HISTORY, c) for m in (m1, m2, m3))
        # JointScorer.core: prior = weighted mean of priors, cond = weighted mean of conds.
        assert s == pytest.approx(p1 * (p2 * 1.0 + p3 * -0.5) / 0.5, abs=1e-5)

    # The Responder shows the candidates in DialogRPT order.
    r = Responder(_causal(tokenizer), tokenizer, reranker=single)
    reply = r.respond(HISTORY, GenerationOptions(strategy="sample", num_candidates=4, max_new_tokens=5,
                                                temperature=2.0))
    scores = [c.score for c in reply.candidates]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(_expected_rpt(m2, tokenizer, HISTORY, reply.text), abs=1e-5)


def _causal(tokenizer):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(4)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_head=2, n_embd=32,
                                      n_positions=128, **_ids(tokenizer))).eval()


def test_ensemble_yaml_in_dialogrpt_layout(tmp_path):
    (tmp_path / "ens.yml").write_text(
        "prior:\n  - name: human_vs_rand\n    wt: 0.5\n    path: a\n"
        "cond:\n  - name: updown\n    wt: 1\n    path: b\n  - name: width\n    wt: -0.5\n    path: c\n"
    )
    (tmp_path / "b").mkdir()
    specs = parse_ranker_specs([str(tmp_path / "ens.yml")])
    assert [(s.name, s.kind, s.weight) for s in specs] == [
        ("human_vs_rand", "prior", 0.5), ("updown", "cond", 1.0), ("width", "cond", -0.5)]
    assert specs[1].path == str(tmp_path / "b")  # relative paths resolve next to the YAML when present
    assert specs[0].path == "a"  # else they stay as given (hub ids)
    with pytest.raises(ValueError, match="prior"):
        RankerSpec("x", kind="posterior")
    with pytest.raises(ValueError, match="weight"):
        parse_ranker_specs(["x@heavy"])


def test_rerank_flag_checks(tiny_model_dir):
    with pytest.raises(ValueError, match="--reverse-model"):
        Responder.from_pretrained(str(tiny_model_dir), rerank="mmi", device="cpu")
    with pytest.raises(ValueError, match="--ranker"):
        Responder.from_pretrained(str(tiny_model_dir), rerank="dialogrpt", device="cpu")
    r = Responder.from_pretrained(str(tiny_model_dir), reverse_model=str(tiny_model_dir), device="cpu")
    assert isinstance(r.reranker, MMIReranker)
    assert math.isfinite(r.reranker.score([HISTORY], [["hi"]])[0][0])


def test_rerank_choices_through_the_command_line(tiny_model_dir, tokenizer, tmp_path, monkeypatch, capsys):
    """``--rerank logprob`` builds a LogprobReranker; ``--ranker DIR`` reranks the CLI's candidates by
    DialogRPT (scores shown with --show-candidates, best first, the chosen one marked)."""
    import io
    import re
    import sys

    from dialogpt.cli.chat import main
    from dialogpt.decode.rerank import LogprobReranker

    r = Responder.from_pretrained(str(tiny_model_dir), rerank="logprob", length_normalize=True, device="cpu")
    assert isinstance(r.reranker, LogprobReranker) and r.reranker.length_normalize
    m, d = _tiny_ranker(tokenizer, 5, tmp_path, "rpt")
    monkeypatch.setattr(sys, "stdin", io.StringIO("what do you think about cats\n"))
    rc = main([str(tiny_model_dir), "--ranker", str(d), "--strategy", "sample", "--num-candidates", "3",
               "--temperature", "2", "--max-new-tokens", "5", "--seed", "1", "--show-candidates", "--device", "cpu"])
    assert rc == 0
    cap = capsys.readouterr()
    shown = [re.match(r"  ([* x]) (\S+) (.*)$", ln) for ln in cap.err.splitlines() if ln.startswith("  ")]
    assert len(shown) == 3 and all(shown) and shown[0].group(1) == "*"
    scores = [float(s.group(2)) for s in shown]
    assert scores == sorted(scores, reverse=True)
    reply = cap.out.strip()
    assert reply == shown[0].group(3)
    assert scores[0] == pytest.approx(_expected_rpt(m, tokenizer, [Turn("what do you think about cats")], reply),
                                      abs=1e-4)


def test_logprob_reranker_scores_given_the_generation_prompt_and_fits_the_window(tiny_model, tokenizer):
    """log p(candidate | prompt) uses exactly the prompt the candidates were generated from
    (max_history_turns, token budget), and a history longer than the model's positions no longer
    overflows them (it used to raise IndexError in the position embedding)."""
    from dialogpt.chat_format import build_prompt_ids
    from dialogpt.decode.rerank import LogprobReranker

    eos = tokenizer.eos_token_id
    window = tiny_model.config.n_positions
    long_history = [Turn(f"turn {i} " + "blah " * 30) for i in range(12)]
    assert len(build_prompt_ids(tokenizer, long_history)) > window

    def expected(prompt, cand):
        resp = tokenizer(cand, add_special_tokens=False)["input_ids"] + [eos]
        return _sum_logprob(tiny_model, prompt + resp, len(prompt))[0]

    rr = LogprobReranker(tiny_model, tokenizer)
    got = rr.score([long_history], [["ok", "sure thing"]])[0]
    for c, s in zip(["ok", "sure thing"], got):
        resp_len = len(tokenizer(c, add_special_tokens=False)["input_ids"]) + 1
        assert s == pytest.approx(expected(build_prompt_ids(tokenizer, long_history, window - resp_len), c), abs=1e-3)

    r = Responder(tiny_model, tokenizer, reranker=rr)
    for opts in (GenerationOptions(strategy="sample", num_candidates=3, max_new_tokens=5, temperature=2.0,
                                   max_history_turns=3),
                 GenerationOptions(strategy="sample", num_candidates=3, max_new_tokens=5, temperature=2.0,
                                   max_prompt_tokens=40)):
        torch.manual_seed(2)
        reply = r.respond(long_history, opts)
        prompt = r.prompt_ids(long_history, opts)
        assert reply.prompt_tokens == len(prompt)
        assert [c.score for c in reply.candidates] == pytest.approx(
            [expected(prompt, c.text) for c in reply.candidates], abs=1e-3)


def test_mmi_reranks_against_the_turns_the_reply_was_generated_for(tiny_model, tokenizer):
    r = Responder(tiny_model, tokenizer, reranker=MMIReranker(tiny_model, tokenizer))
    opts = GenerationOptions(strategy="sample", num_candidates=3, max_new_tokens=5, temperature=2.0,
                             max_history_turns=1)
    torch.manual_seed(3)
    reply = r.respond(HISTORY, opts)
    assert [c.score for c in reply.candidates] == pytest.approx(
        [_expected_mmi(tiny_model, tokenizer, HISTORY[-1:], c.text) for c in reply.candidates], abs=1e-4)
