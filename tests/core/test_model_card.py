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


def test_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model card template not found"):
        render_model_card(_info(), template_dir=tmp_path)
