"""BLEU-n with several references per hypothesis, exact to mteval-v14c as DSTC7 / DialoGPT ran it.

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
@inproceedings{papineni2002bleu,
  title={Bleu: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics},
  pages={311--318},
  year={2002}
}
@inproceedings{post-2018-call,
  title={A Call for Clarity in Reporting {BLEU} Scores},
  author={Post, Matt},
  booktitle={Proceedings of the Third Conference on Machine Translation: Research Papers},
  pages={186--191},
  year={2018}
}
"""
_CITATION += DSTC7_CITATION + DIALOGPT_CITATION

_DESCRIPTION = """\
Corpus BLEU-1..4 exactly as `mteval-v14c.pl` printed them for DSTC7 Task 2 and DialoGPT's tables
(equal to the official scorer to 1e-9 in this project's property test):

* the text goes through DSTC7's XML step (`&`/`<` removed, an empty line scored as `__empty__`) and
  mteval-v14c's own tokenisation (ASCII lowercase, punctuation split except the apostrophe);
* brevity penalty from the **closest** reference length, ties to the shorter (mteval's default);
* mteval's default smoothing, applied at corpus level too: walking n = 1..4, an order with no
  hypothesis n-gram contributes precision 1, an order with n-grams but no match contributes
  `1 / (smooth * total)` with `smooth` doubling at each such order;
* every prediction gets the same number of references: shorter rows are filled by cycling
  (DSTC7's reference slots).

Scores are fractions (0.1162 means 11.62 BLEU).
"""

_KWARGS_DESCRIPTION = """
Computes corpus-level cumulative BLEU-1..4 of predictions against one or more references each.

Args:
    predictions (`list` of `str`): the responses to score, one string per example.
    references (`list` of `list` of `str`, or `list` of `str`): the references of each prediction.
        Rows with fewer references than the widest row are filled by cycling (DSTC7's rule).
    clean (`bool`): apply DSTC7's `clean_str` to predictions and references first (`dstc.py -c`).
        Defaults to `False`.
    n_refs (`int`, optional): number of reference slots per prediction (DSTC7 uses 6). Defaults
        to the widest row.
    vshuman (`int`): reference index to skip when filling the slots (DSTC7's `--vshuman`).
        Defaults to -1 (skip none).

Returns:
    bleu1 (`float`), bleu2 (`float`), bleu3 (`float`), bleu4 (`float`): cumulative BLEU-n, as fractions.

Examples:

    >>> bleu = evaluate.load("metrics/bleu_multiref")
    >>> predictions = ["i do n't know .", "he is a rocket scientist .", "i love it !"]
    >>> references = [["ok that 's fine", "well it 's ok"], ["he is a trader", "he is an engineer"],
    ...               ["i love it !", "i 'm not a fan"]]
    >>> results = bleu.compute(predictions=predictions, references=references)
    >>> print(round(results["bleu2"], 4), round(results["bleu4"], 4))
    0.441 0.3224

    DSTC7's cleaning, one reference per prediction:

    >>> results = bleu.compute(predictions=["I don't know:)"], references=["i do n't know :)"], clean=True)
    >>> print(round(results["bleu4"], 4))
    1.0

    No matching 4-gram in the corpus: mteval's smoothing gives a small BLEU-4, not 0:

    >>> results = bleu.compute(predictions=["a b c d"], references=["a b c e"])
    >>> print(round(results["bleu3"], 4), round(results["bleu4"], 4))
    0.63 0.5946
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BleuMultiref(evaluate.Metric):
    def _info(self):
        return module_info("bleu", _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION,
                           codebase_urls=["https://github.com/mgalley/DSTC7-End-to-End-Conversation-Modeling"],
                           reference_urls=["https://aclanthology.org/P02-1040/"])

    def _compute(self, predictions, references, clean=False, n_refs=None, vshuman=-1):
        return compute("bleu", predictions, references, clean=clean, n_refs=n_refs, vshuman=vshuman)
