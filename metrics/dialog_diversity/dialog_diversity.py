"""Entropy-1..4, Distinct-1/2 and average length of generated responses, as DSTC7's ``metrics.py``.

The scoring code is the sibling files (links to ``dialogpt/scoring``); ``_info`` and ``_compute``
are the shared :mod:`evaluate_info` body.
"""

import evaluate

# evaluate.load copies the files a module imports relatively from its own folder (and the Hub serves
# them from the module's repo). Here they are links to dialogpt/scoring, the one implementation that
# dialogpt-eval also runs, so this folder is a complete module as it stands: no dialogpt package needed.
from .diversity import diversity
from .dstc_clean import clean_str
from .evaluate_info import DIALOGPT_CITATION, DSTC7_CITATION, compute, module_info
from .meteor import meteor
from .meteor_normalizer import normalize_lines
from .meteor_paraphrase import filtered_table
from .mteval import nist_bleu
from .selection import prepare

# (no comment may follow those import lines: evaluate would read it as a download URL)
_SIBLINGS = (clean_str, diversity, filtered_table, meteor, nist_bleu, normalize_lines, prepare)

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
_CITATION += DSTC7_CITATION + DIALOGPT_CITATION

_DESCRIPTION = """\
Diversity of a system's responses, computed exactly as DSTC7's `dstc.py` (and so DialoGPT's
tables) did, from the predictions alone:

* **Entropy-n** (n = 1..4): entropy in nats of the corpus n-gram distribution,
  `-sum(c/T * (ln c - ln T))`; n-grams never cross responses.
* **Distinct-n** (n = 1, 2): distinct n-grams / all n-grams of the whole corpus (pooled, not a
  per-response average).
* **avg_len**: mean number of whitespace tokens per response (an empty response counts 0).

Tokens are whitespace tokens, so `__url__` is one token here (it is five for NIST/BLEU).
It is an `evaluate` Measurement: it needs no references. `evaluate.combine` with the
reference-based modules passes it the predictions only.
"""

_KWARGS_DESCRIPTION = """
Computes Entropy-1..4, Distinct-1/2 and average length of the predictions.

Args:
    predictions (`list` of `str`): the responses, one string per example (tokens separated by spaces).
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

    >>> results = div.compute(predictions=["ok ok", "ok ok"])
    >>> print(results["dist1"], results["dist2"], results["entropy1"])
    0.25 0.5 0.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DialogDiversity(evaluate.Measurement):
    def _info(self):
        return module_info("diversity", _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION,
                           codebase_urls=["https://github.com/mgalley/DSTC7-End-to-End-Conversation-Modeling"],
                           reference_urls=["https://aclanthology.org/N16-1014/"])

    def _compute(self, predictions, clean=False):
        return compute("diversity", predictions, clean=clean)
