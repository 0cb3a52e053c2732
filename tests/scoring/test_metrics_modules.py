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


def _load_module(name: str):
    from evaluate.loading import evaluation_module_factory

    return importlib.import_module(evaluation_module_factory(f"metrics/{name}").module_path)


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


# ---------------------------------------------------------------- Hub-ready as they are

_CARD_SECTIONS = ("## How to Use", "### Inputs", "### Output Values", "#### Values from Popular Papers",
                  "### Examples", "## Limitations and Bias", "## Citation")


@pytest.mark.parametrize("name", MODULES)
def test_module_folder_is_a_complete_hub_space(name, in_repo):
    import yaml

    folder = REPO_ROOT / "metrics" / name
    card = (folder / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---")[1])
    kind = "measurement" if name == "dialog_diversity" else "metric"
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["tags"] == ["evaluate", kind]
    for section in _CARD_SECTIONS:
        assert section in card, section
    # DialoGPT's published numbers (its README's 6K multi-reference table), and the citation in full
    assert "| DialoGPT 345M |" in card and "| Human response |" in card
    citation = _load_module(name)._CITATION
    assert citation.strip() in card and "zhang2020dialogpt" in citation and "galley2019grounded" in citation
    assert "evaluate" in (folder / "requirements.txt").read_text()
    # every sibling .py is a link to the one implementation in dialogpt/scoring (no second copy)
    scoring = (REPO_ROOT / "dialogpt" / "scoring").resolve()
    siblings = [p for p in folder.glob("*.py") if p.name not in (f"{name}.py", "app.py")]
    assert {p.name for p in siblings} == {"evaluate_info.py", "mteval.py", "meteor.py", "meteor_paraphrase.py",
                                          "meteor_normalizer.py", "diversity.py", "selection.py", "dstc_clean.py"}
    for p in siblings:
        assert p.is_symlink() and p.resolve().parent == scoring and p.resolve().is_file(), p


_LOAD_WITHOUT_DIALOGPT = r"""
import json, runpy, sys
class NoDialogpt:
    def find_spec(self, name, path=None, target=None):
        if name == "dialogpt" or name.startswith("dialogpt."):
            raise ImportError("the module must not need the dialogpt package")
sys.meta_path.insert(0, NoDialogpt())
import evaluate, evaluate.utils
launched = []
evaluate.utils.launch_gradio_widget = launched.append
hyps, refs = json.loads(sys.argv[2]), json.loads(sys.argv[3])
out = {}
for name in sys.argv[1].split(","):
    runpy.run_path(f"{name}/app.py")  # the Space's entry point builds the widget over this folder
    module = launched[-1]
    if name == "dialog_diversity":
        out.update(module.compute(predictions=hyps))
    elif name != "meteor_multiref":  # (the JVM is exercised by the other METEOR tests)
        out.update(module.compute(predictions=hyps, references=refs))
    out[name] = type(module).__mro__[1].__name__
print(json.dumps(out))
"""


def test_modules_pushed_to_the_hub_load_and_score_without_the_dialogpt_package(tmp_path, mock_hub):
    import json
    import subprocess
    import sys

    from huggingface_hub import HfApi

    api = HfApi()
    for name in MODULES:
        repo = f"dstc-metrics/{name}"
        api.create_repo(repo, repo_type="space", space_sdk="gradio", exist_ok=True)
        api.upload_folder(repo_id=repo, repo_type="space", folder_path=str(REPO_ROOT / "metrics" / name))
        for path, content in mock_hub.repo_files("space", repo).items():  # what a Space clone holds
            dst = tmp_path / name / path
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(content)
        assert not any(p.is_symlink() for p in (tmp_path / name).iterdir())
        assert (tmp_path / name / "mteval.py").read_bytes() == (REPO_ROOT / "dialogpt/scoring/mteval.py").read_bytes()
    hyps, refs, exp = load_case("demo")
    proc = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_DIALOGPT, ",".join(MODULES), json.dumps(hyps),
                           json.dumps(refs)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["dialog_diversity"] == "Measurement" and got["nist_multiref"] == "Metric"
    assert got["meteor_multiref"] == "Metric"
    for k in ("nist2", "nist4", "bleu2", "bleu4", "entropy4", "dist1", "dist2", "avg_len"):
        assert got[k] == pytest.approx(exp[k], abs=TOL), k
    assert mock_hub.errors == []
