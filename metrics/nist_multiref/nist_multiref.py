"""NIST-n with several references per hypothesis, exact to mteval-v14c as DSTC7 / DialoGPT ran it.

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
@inproceedings{doddington2002nist,
  title={Automatic evaluation of machine translation quality using n-gram co-occurrence statistics},
  author={Doddington, George},
  booktitle={Proceedings of the Second International Conference on Human Language Technology Research},
  pages={138--145},
  year={2002}
}
"""
_CITATION += DSTC7_CITATION + DIALOGPT_CITATION

_DESCRIPTION = """\
NIST (Doddington, 2002) weights every matched n-gram by its information in the references, so
rare, informative matches count more than "i do n't". This module reproduces the numbers that
`mteval-v14c.pl` printed for DSTC7 Task 2 and for DialoGPT's tables (to 1e-10 on the shipped
reference cases):

* mteval's own tokenisation (ASCII lowercase, punctuation split except the apostrophe, so
  `__url__` is 5 tokens), after DSTC7's XML escaping (`&`, `<` removed, an empty line is `__empty__`);
* information weights counted over **all** references of the corpus, duplicates included;
* brevity penalty against the **average** reference length (all reference tokens / number of
  reference columns); cumulative NIST-1..4 at corpus level.

NLTK's `corpus_nist` does not weight multi-reference information this way and gives other numbers.
"""

_KWARGS_DESCRIPTION = """
Computes corpus-level cumulative NIST-1..4 of predictions against one or more references each.

Args:
    predictions (`list` of `str`): the responses to score, one string per example.
    references (`list` of `list` of `str`, or `list` of `str`): the references of each prediction.
        Rows with fewer references than the widest row are filled by cycling through their own
        references (DSTC7's rule), since mteval scores reference columns.
    clean (`bool`): apply DSTC7's `clean_str` (lowercase, `__url__`, ASCII, TweetTokenizer,
        contractions) to predictions and references first, like `dstc.py -c`. Defaults to `False`.
    n_refs (`int`, optional): number of reference slots per prediction (DSTC7 uses 6). Defaults
        to the widest row.
    vshuman (`int`): reference index to skip when filling the slots (DSTC7's `--vshuman`; its
        default 1 gives slots [0, 2, 2, 3, 4, 5] for six references). Defaults to -1 (skip none).

Returns:
    nist1 (`float`), nist2 (`float`), nist3 (`float`), nist4 (`float`): cumulative NIST-n.

Examples:

    >>> nist = evaluate.load("metrics/nist_multiref")
    >>> predictions = ["i do n't know .", "he is a rocket scientist .", "i love it !"]
    >>> references = [["ok that 's fine", "well it 's ok"], ["he is a trader", "he is an engineer"],
    ...               ["i love it !", "i 'm not a fan"]]
    >>> results = nist.compute(predictions=predictions, references=references)
    >>> print(round(results["nist2"], 4), round(results["nist4"], 4))
    2.0838 2.1949

    One reference per prediction as a plain string:

    >>> results = nist.compute(predictions=["i love it !"], references=["i love it !"])
    >>> print(round(results["nist1"], 4))
    2.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NistMultiref(evaluate.Metric):
    def _info(self):
        return module_info("nist", _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION,
                           codebase_urls=["https://github.com/mgalley/DSTC7-End-to-End-Conversation-Modeling"],
                           reference_urls=["https://aclanthology.org/www.mt-archive.info/HLT-2002-Doddington.pdf"])

    def _compute(self, predictions, references, clean=False, n_refs=None, vshuman=-1):
        return compute("nist", predictions, references, clean=clean, n_refs=n_refs, vshuman=vshuman)
