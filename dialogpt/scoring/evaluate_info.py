"""The one body behind the four ``evaluate`` modules in ``metrics/``: their ``_info`` and ``_compute``.

Each module folder holds its script, its card and links to this file and to the scoring files it
imports (``mteval.py``; ``meteor.py`` with ``meteor_paraphrase.py`` and ``meteor_normalizer.py``;
``diversity.py``, ``selection.py``, ``dstc_clean.py``): ``evaluate.load`` copies the files a module
imports relatively from its own folder, and a push to the Hub uploads a link's content. So each
folder is a complete, self-contained module (no ``dialogpt`` package needed), while this repository
keeps one implementation. This file and those it imports must
therefore stay leaves: the standard library, third-party packages and each other only.
"""

from __future__ import annotations

from collections.abc import Sequence

from .diversity import diversity
from .dstc_clean import clean_str
from .meteor import meteor
from .mteval import nist_bleu
from .selection import prepare

DSTC_EVALUATION_URL = "https://github.com/mgalley/DSTC7-End-to-End-Conversation-Modeling/tree/master/evaluation"
#: cited by every module: the challenge whose scorer they reproduce, and the paper whose tables used it
DSTC7_CITATION = """\
@inproceedings{galley2019grounded,
  title={Grounded Response Generation Task at {DSTC7}},
  author={Galley, Michel and Brockett, Chris and Gao, Xiang and Gao, Jianfeng and Dolan, Bill},
  booktitle={AAAI Dialog System Technology Challenges Workshop},
  year={2019}
}
"""
DIALOGPT_CITATION = """\
@inproceedings{zhang2020dialogpt,
  title={{DIALOGPT}: Large-Scale Generative Pre-training for Conversational Response Generation},
  author={Zhang, Yizhe and Sun, Siqi and Galley, Michel and Chen, Yen-Chun and Brockett, Chris and Gao, Xiang and Gao, Jianfeng and Liu, Jingjing and Dolan, Bill},
  booktitle={Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics: System Demonstrations},
  pages={270--278},
  year={2020}
}
"""
#: what each module computes; "diversity" needs no references (an evaluate Measurement)
KINDS = ("nist", "bleu", "meteor", "diversity")


def multiref_features(references: bool = True) -> list:
    """The accepted ``datasets.Features``: list-of-references and single reference (or predictions only)."""
    import datasets

    text = datasets.Value("string", id="sequence")
    if not references:
        return [datasets.Features({"predictions": text})]
    return [
        datasets.Features({"predictions": text,
                           "references": datasets.Sequence(datasets.Value("string", id="sequence"), id="references")}),
        datasets.Features({"predictions": text, "references": datasets.Value("string", id="sequence")}),
    ]


def module_info(kind: str, description: str, citation: str, inputs_description: str, *,
                codebase_urls: Sequence[str], reference_urls: Sequence[str], homepage: str = DSTC_EVALUATION_URL):
    """``MetricInfo`` (``MeasurementInfo`` for ``"diversity"``) of one module."""
    import evaluate

    info_cls = evaluate.MeasurementInfo if kind == "diversity" else evaluate.MetricInfo
    return info_cls(description=description, citation=citation, homepage=homepage,
                    inputs_description=inputs_description, features=multiref_features(kind != "diversity"),
                    codebase_urls=list(codebase_urls), reference_urls=list(reference_urls))


def compute(kind: str, predictions: Sequence[str], references: Sequence | None = None, *, clean: bool = False,
            n_refs: int | None = None, vshuman: int = -1, heap: str = "1g") -> dict[str, float]:
    """Scores of one module, as DSTC7's ``dstc.py`` computes them (see each module's card)."""
    if kind == "diversity":
        return diversity([clean_str(p) for p in predictions] if clean else list(predictions))
    hyps, rows = prepare(predictions, references, clean=clean, n_refs=n_refs, vshuman=vshuman)
    if kind == "meteor":
        return {"meteor": meteor(hyps, rows, heap=heap)}
    if kind not in KINDS:
        raise ValueError(f"unknown metric {kind!r}, expected one of {KINDS}")
    nist, bleu = nist_bleu(hyps, rows)
    return {f"{kind}{n}": v for n, v in enumerate(nist if kind == "nist" else bleu, start=1)}
