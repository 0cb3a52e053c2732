"""Entropy-1..4, Distinct-1/2 and average length of generated responses, as DSTC7's ``metrics.py``.

A thin ``evaluate`` wrapper over :func:`dialogpt.scoring.diversity.diversity`.
"""

import evaluate

from dialogpt.scoring import clean_str
from dialogpt.scoring.diversity import diversity
from dialogpt.scoring.evaluate_info import DSTC_EVALUATION_URL, multiref_features

_CITATION = """\
@inproceedings{li2016diversity,
  title={A Diversity-Promoting Objective Function for Neural Conversation Models},
  author={Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill},
  booktitle={Proceedings of NAACL-HLT},
  pages={110--119},
  year={2016}
}
@inproceedings{zhang2018generating,
  title={Generating Informative and Diverse Conversational Responses via Adversarial Information Maximization},
  author={Zhang, Yizhe and Galley, Michel and Gao, Jianfeng and Gan, Zhe and Li, Xiujun and Brockett, Chris and Dolan, Bill},
  booktitle={Advances in Neural Information Processing Systems},
  year={2018}
}
"""

_DESCRIPTION = """\
Diversity of a system's responses, computed exactly as DSTC7's `dstc.py` (and so DialoGPT's
tables) did, from the predictions alone:

* **Entropy-n** (n = 1..4): entropy in nats of the corpus n-gram distribution,
  `-sum(c/T * (ln c - ln T))`; n-grams never cross responses.
* **Distinct-n** (n = 1, 2): distinct n-grams / all n-grams of the whole corpus (pooled, not a
  per-response average).
* **avg_len**: mean number of whitespace tokens per response (an empty response counts 0).

Tokens are whitespace tokens, so `__url__` is one token here (it is five for NIST/BLEU).
References are accepted and ignored, so one `compute(predictions=..., references=...)` call can
feed this module and the reference-based ones (e.g. through `evaluate.combine`).
"""

_KWARGS_DESCRIPTION = """
Computes Entropy-1..4, Distinct-1/2 and average length of the predictions.

Args:
    predictions (`list` of `str`): the responses, one string per example (tokens separated by spaces).
    references (`list` of `list` of `str`, or `list` of `str`, optional): ignored; allowed so the
        same inputs serve all the DSTC7 metrics.
    clean (`bool`): apply DSTC7's `clean_str` to the predictions first (`dstc.py -c`). Defaults to `False`.

Returns:
    entropy1 (`float`), entropy2 (`float`), entropy3 (`float`), entropy4 (`float`): Entropy-n in nats.
    dist1 (`float`), dist2 (`float`): Distinct-n as fractions.
    avg_len (`float`): average number of tokens per prediction.

Examples:

    >>> div = evaluate.load("metrics/dialog_diversity")
    >>> predictions = ["i do n't know .", "he is a rocket scientist .", "i love it !"]
    >>> results = div.compute(predictions=predictions)
    >>> print(round(results["entropy4"], 4), round(results["dist1"], 4), results["dist2"], results["avg_len"])
    1.7918 0.8667 1.0 5.0

    Two identical responses: no second distinct unigram, entropy of a uniform pair of tokens:

    >>> results = div.compute(predictions=["ok ok", "ok ok"], references=[["fine"], ["sure"]])
    >>> print(results["dist1"], results["dist2"], results["entropy1"])
    0.25 0.5 0.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DialogDiversity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            homepage=DSTC_EVALUATION_URL,
            inputs_description=_KWARGS_DESCRIPTION,
            features=multiref_features(references_optional=True),
            codebase_urls=["https://github.com/mgalley/DSTC7-End-to-End-Conversation-Modeling"],
            reference_urls=["https://aclanthology.org/N16-1014/"],
        )

    def _compute(self, predictions, references=None, clean=False):
        hyps = [clean_str(p) for p in predictions] if clean else list(predictions)
        return diversity(hyps)
