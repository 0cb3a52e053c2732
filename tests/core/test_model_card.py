"""Model cards: valid Hub metadata (pipeline_tag, library_name, datasets, model-index) holding the measured numbers."""

from __future__ import annotations

import pytest

from dialogpt.cards import ModelCardInfo, add_metrics, render_model_card


def _info(**kw):
    base = dict(model_name="org/dialogpt-tiny", n_layer=12, n_embd=768, n_head=12, n_positions=1024,
                vocab_size=50257, num_parameters=124_439_808, dataset="org/reddit-dialog",
                dataset_hub_id="org/reddit-dialog", data_months="2005-12 .. 2009-12", num_train_examples=1234,
                training={"from": "scratch (small)", "learning_rate": 1e-5, "lr_schedule": "noam"},
                figures={"optimizer steps": 300, "training tokens/s": 10847.5},
                metrics={"loss": 3.2104, "perplexity": 24.789})
    base.update(kw)
    return ModelCardInfo(**base)


def test_dialogue_card_metadata_and_tables_hold_the_measured_numbers(tmp_path):
    from huggingface_hub import ModelCard

    card = render_model_card(_info())
    card.save(str(tmp_path / "README.md"))
    loaded = ModelCard.load(str(tmp_path / "README.md"))
    d = loaded.data
    assert d.pipeline_tag == "text-generation" and d.library_name == "transformers"
    assert d.datasets == ["org/reddit-dialog"] and d.license == "mit"
    results = {r.metric_type: r.metric_value for r in d.eval_results}
    assert results == {"loss": 3.2104, "perplexity": 24.789}
    assert d.eval_results[0].task_type == "text-generation"
    text = loaded.text
    assert "| loss | validation | 3.2104 |" in text and "| perplexity | validation | 24.789 |" in text
    assert "small (117M)" in text and "124.44M" in text and "2005-12 .. 2009-12" in text
    assert "| optimizer steps | 300 |" in text and "10847.5" in text
    assert "toxic" in text and "apply_chat_template" in text and "Intended use" in text
    assert "{{" not in text and "{%" not in text


def test_reverse_card_and_added_metrics(tmp_path):
    from huggingface_hub import ModelCard

    card = render_model_card(_info(reverse=True, model_name="org/dialogpt-tiny-reverse"))
    card.save(str(tmp_path / "README.md"))
    text = (tmp_path / "README.md").read_text()
    assert "reverse / MMI model" in text and "log p(source | candidate response)" in text
    add_metrics(tmp_path, {"bleu-4": 0.0123, "nist-4": 1.234}, split="test")
    d = ModelCard.load(str(tmp_path / "README.md")).data
    assert {(r.metric_type, r.dataset_split, r.metric_value) for r in d.eval_results} >= {
        ("bleu-4", "test", 0.0123), ("nist-4", "test", 1.234), ("loss", "validation", 3.2104)}
    assert "| bleu-4 | test | 0.0123 |" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("reverse", [False, True])
def test_a_lora_run_says_so_in_either_card_and_a_full_run_does_not(reverse):
    lora = {"r": 8, "alpha": 16.0, "dropout": 0.05, "target_modules": "c_attn, c_proj, c_fc",
            "trained": "1,179,648 of 125,619,456 (0.939%)"}
    card = render_model_card(_info(reverse=reverse, lora=lora, training={"from": "microsoft/DialoGPT-small"}))
    text = card.text
    assert "## LoRA" in text and "rank 8, alpha 16, dropout 0.05, on `c_attn, c_proj, c_fc`" in text
    assert "1,179,648 of 125,619,456 (0.939%) parameters trained" in text and "**merged** weights" in text
    assert 'PeftModel.from_pretrained(base, "org/dialogpt-tiny", subfolder="adapter")' in text
    assert "(microsoft/DialoGPT-small)" in text and "lora" in card.data.tags
    full = render_model_card(_info(reverse=reverse))
    assert "LoRA" not in full.text and "lora" not in full.data.tags


def test_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model card template not found"):
        render_model_card(_info(), template_dir=tmp_path)


# ---------------------------------------------------------------- cards state only facts of the run


def _result(cfg, **kw):
    from dialogpt.train.config import TrainResult

    base = dict(output_dir=cfg.output_dir, global_step=cfg.num_optim_steps, epoch=1, train_loss=3.5, eval_loss=3.25,
                eval_ppl=25.79, tokens_per_sec=1234.5, padding_efficiency=0.97, train_runtime=12.0, num_processes=1,
                num_train_examples=100, num_parameters=124_439_808)
    base.update(kw)
    return TrainResult(**base)


def _stats(months, test_months, counters, preset, words, enabled):
    import json

    return json.dumps({"num_rows": {"train": 100, "validation": 5}, "counters": counters, "months": months,
                       "test_months": test_months, "months_without_rs": [],
                       "rules": {"preset": preset, "words_blocklist": words, "enabled": enabled}})


def _render(cfg, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import GPT2Config

    from dialogpt.cards import card_info_from_run

    card = render_model_card(card_info_from_run(cfg, _result(cfg), GPT2Config(n_layer=2, n_embd=64, n_head=2)))
    card.save(str(tmp_path / "README.md"))
    return ModelCard.load(str(tmp_path / "README.md"))


def test_cards_of_two_differently_configured_runs_state_each_runs_facts(tmp_path, mock_hub):
    from huggingface_hub import HfApi

    from dialogpt.train.config import TrainConfig

    # run A: a local dataset folder built with the default preset (shipped word list), noam with warmup_steps,
    # an absolute init checkpoint path
    data_a = tmp_path / "reddit-small"
    data_a.mkdir()
    months_a = ["2005-12", "2006-01", "2006-02"]
    (data_a / "build_stats.json").write_text(_stats(months_a, [], {"offensive_turn": 12, "url": 30, "deleted": 0},
                                                    "default", "shipped", ["bot", "non_ascii", "removed"]))
    cfg_a = TrainConfig(output_dir=str(tmp_path / "runs" / "run-a"), dataset=str(data_a), model_config="small", tokenizer_name="gpt2",
                        init_checkpoint=str(tmp_path / "models" / "medium_ft.pkl"), lr_schedule="noam",
                        warmup_steps=16000, num_optim_steps=300)
    # run B: a Hub dataset built with the original preset (no word list), BERT with warmup_proportion
    api = HfApi()
    api.create_repo("card-org/reddit-orig", repo_type="dataset", exist_ok=True)
    api.upload_file(path_or_fileobj=_stats(["2006-01"], ["2018-03", "2018-04"], {"url": 7}, "original", None,
                                           []).encode(), path_in_repo="build_stats.json",
                    repo_id="card-org/reddit-orig", repo_type="dataset")
    cfg_b = TrainConfig(output_dir=str(tmp_path / "runs" / "run-b"), dataset="card-org/reddit-orig",
                        model_config="small", tokenizer_name="gpt2", lr_schedule="BERT", warmup_proportion=0.2, num_optim_steps=50,
                        hub_model_id="card-org/dialogpt-b")

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _render(cfg_a, tmp_path / "a"), _render(cfg_b, tmp_path / "b")
    for card in (a, b):
        text = card.text
        assert str(tmp_path) not in str(card) and "/tmp" not in str(card)  # no local paths, text or metadata
        assert "TweetTokenizer(preserve_case=True)" in text and "case is kept" in text
        assert "text lower-cased" not in text and "sessions with offensive language" not in text
    # A: its folder name, its months, its schedule and warm-up, its word list and weighting rule, its counts
    assert "`reddit-small`" in a.text and a.data.datasets is None
    assert "2005-12 .. 2006-02 (3 months)" in a.text and "multi-reference test months" not in a.text
    assert "noam: warm-up over warmup_steps 16000" in a.text and "warmup_proportion" not in a.text
    assert "offensive-word list `shipped`" in a.text and "**weight 0**" in a.text
    assert "preset `default`" in a.text and "`bot`, `non_ascii`, `removed`" in a.text
    assert "| offensive_turn | 12 |" in a.text and "| url | 30 |" in a.text and "| deleted |" not in a.text
    assert "medium_ft.pkl" in a.text and "| num_optim_steps | 300 |" in a.text
    # B: the Hub id, its months and test months, BERT's real warm-up (0.2 x 50 = 10 steps), no word list
    assert "`card-org/reddit-orig`" in b.text and b.data.datasets == ["card-org/reddit-orig"]
    assert "2006-01 .. 2006-01 (1 month)" in b.text and "test months: 2018-03 .. 2018-04" in b.text
    assert "warmup_proportion 0.2 of 50 steps (10 steps)" in b.text and "warmup_steps" not in b.text
    assert "no offensive-word list was applied" in b.text and "weight 0**" not in b.text
    assert "| url | 7 |" in b.text and "| offensive_turn |" not in b.text and "preset `original`" in b.text
    assert mock_hub.errors == []


def test_card_of_a_legacy_tsv_run_claims_nothing_about_the_data(tmp_path):
    from dialogpt.train.config import TrainConfig

    tsv = tmp_path / "train.tsv"
    tsv.write_text("0.0 hi\t1.0 hello\n")
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), train_file=str(tsv), model_config="small", tokenizer_name="gpt2",
                      lr_schedule="None", num_optim_steps=10)
    card = _render(cfg, tmp_path)
    assert "`train.tsv`" in card.text and "no build_stats.json" in card.text
    assert "preserve_case" not in card.text and "Reddit months" not in card.text
    assert "constant learning rate, no warm-up" in card.text and str(tmp_path) not in str(card)
