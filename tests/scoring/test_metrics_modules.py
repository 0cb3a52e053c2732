"""The evaluate modules in metrics/: loadable offline by path, their doctests pass (as evaluate's
test_metric_common runs them), explicit kwargs, both feature variants, and the reference values."""

from __future__ import annotations

import doctest
import importlib
import inspect
import math

import pytest
from metrics_helpers import REPO_ROOT, TOL, load_case

MODULES = ["nist_multiref", "bleu_multiref", "meteor_multiref", "dialog_diversity"]


@pytest.fixture()
def in_repo(monkeypatch):
    # the examples load "metrics/<name>", a local path, as users do from a checkout
    monkeypatch.chdir(REPO_ROOT)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_and_signature(name, in_repo):
    import evaluate
    from evaluate.loading import evaluation_module_factory, import_main_class

    module = importlib.import_module(evaluation_module_factory(f"metrics/{name}").module_path)
    cls = import_main_class(module.__name__)
    params = inspect.signature(cls._compute).parameters
    assert all(p.kind != p.VAR_KEYWORD for p in params.values()), "_compute must not take **kwargs"
    assert "predictions" in params and "clean" in params
    for attr in ("_CITATION", "_DESCRIPTION", "_KWARGS_DESCRIPTION"):
        assert getattr(module, attr).strip()
    assert "Examples:" in module._KWARGS_DESCRIPTION and "Returns:" in module._KWARGS_DESCRIPTION
    assert (REPO_ROOT / "metrics" / name / "README.md").is_file()
    try:
        results = doctest.testmod(module, verbose=False, raise_on_error=True, extraglobs={"evaluate": evaluate})
    except doctest.UnexpectedException as e:
        raise e.exc_info[1] from None
    assert results.failed == 0
    assert results.attempted > 1


@pytest.mark.parametrize("name, key", [("nist_multiref", "nist"), ("bleu_multiref", "bleu")])
@pytest.mark.parametrize("case", ["demo", "he_teama"])
def test_modules_reproduce_the_official_numbers(name, key, case, in_repo):
    import evaluate

    hyps, refs, exp = load_case(case)
    got = evaluate.load(f"metrics/{name}").compute(predictions=hyps, references=refs)
    for n in range(1, 5):
        assert got[f"{key}{n}"] == pytest.approx(exp[f"{key}{n}"], abs=TOL)


def test_diversity_module_reproduces_dstc_py(in_repo):
    import evaluate

    hyps, _, exp = load_case("he_baseline")
    got = evaluate.load("metrics/dialog_diversity").compute(predictions=hyps)
    assert got == pytest.approx({k: exp[k] for k in got}, abs=TOL)


def test_single_string_and_ragged_references(in_repo):
    import evaluate

    nist = evaluate.load("metrics/nist_multiref")
    single = nist.compute(predictions=["he is a trader"], references=["he is a trader ."])
    as_list = nist.compute(predictions=["he is a trader"], references=[["he is a trader ."]])
    assert single == as_list
    # a row with fewer references is filled by cycling its own: [r] == [r, r] for BLEU
    bleu = evaluate.load("metrics/bleu_multiref")
    ragged = bleu.compute(predictions=["a b c", "d e f"], references=[["a b c", "x y"], ["d e"]])
    padded = bleu.compute(predictions=["a b c", "d e f"], references=[["a b c", "x y"], ["d e", "d e"]])
    assert ragged == padded


def test_combine_feeds_all_reference_free_and_reference_based_modules(in_repo):
    import evaluate

    combo = evaluate.combine(["metrics/nist_multiref", "metrics/bleu_multiref", "metrics/dialog_diversity"])
    hyps, refs, exp = load_case("demo")
    got = combo.compute(predictions=hyps, references=refs)
    for k in ("nist4", "bleu4", "entropy4", "dist2", "avg_len"):
        assert got[k] == pytest.approx(exp[k], abs=TOL)
    # one reference per prediction as a plain string works for all three as well
    single = combo.compute(predictions=hyps, references=[r[0] for r in refs])
    assert single["avg_len"] == exp["avg_len"] and 0 < single["bleu1"] <= 1


def test_clean_kwarg(in_repo):
    import evaluate

    bleu = evaluate.load("metrics/bleu_multiref")
    raw = bleu.compute(predictions=["I don't know:)"], references=["i do n't know :)"])
    cleaned = bleu.compute(predictions=["I don't know:)"], references=["i do n't know :)"], clean=True)
    # raw: mteval splits "don't" nowhere, so i/know/:/) match (4/5), 2/4 bigrams, 1/3 trigrams, no
    # 4-gram (smoothed to 1/(2*2)), brevity penalty exp(1 - 6/5)
    assert raw["bleu4"] == pytest.approx((4 / 5 * 1 / 2 * 1 / 3 * 1 / 4) ** (1 / 4) * math.exp(1 - 6 / 5), abs=1e-12)
    assert cleaned["bleu4"] == pytest.approx(1.0)
