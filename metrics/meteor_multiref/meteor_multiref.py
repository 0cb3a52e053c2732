"""METEOR 1.5 with several references per hypothesis, exactly as DSTC7 / DialoGPT ran it.

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
@inproceedings{denkowski2014meteor,
  title={Meteor Universal: Language Specific Translation Evaluation for Any Target Language},
  author={Denkowski, Michael and Lavie, Alon},
  booktitle={Proceedings of the Ninth Workshop on Statistical Machine Translation},
  pages={376--380},
  year={2014}
}
"""
_CITATION += DSTC7_CITATION + DIALOGPT_CITATION

_DESCRIPTION = """\
METEOR 1.5 (Denkowski and Lavie, 2014) aligns a response with its references through exact,
stem, synonym and paraphrase matches and scores the alignment's precision, recall and
fragmentation. This module runs the official `meteor-1.5.jar` exactly as DSTC7's `dstc.py` did:
`java -Xmx1g -jar meteor-1.5.jar hyp.txt refs.txt -r N -l en -norm` (task `rank`, English
paraphrase table), references interleaved, and returns the full-precision `Final score:` (a large
corpus is split over a few JVMs whose per-segment statistics are added up as the jar does).

Needs Java (any JRE >= 8) on PATH and the `pycocoevalcap` package (the `meteor` extra), whose wheel
carries the jar and `data/paraphrase-en.gz`; a clear error says which is missing. `METEOR_JAR`
may point at another copy of the jar. The jar gets the paraphrase table cut to the corpus (same
statistics as the full table, bit for bit), cached under ``~/.cache/dialogpt/meteor-paraphrase``.
"""

_KWARGS_DESCRIPTION = """
Computes corpus-level METEOR 1.5 of predictions against one or more references each.

Args:
    predictions (`list` of `str`): the responses to score, one string per example.
    references (`list` of `list` of `str`, or `list` of `str`): the references of each prediction.
        Rows with fewer references than the widest row are filled by cycling (DSTC7's rule;
        duplicated references do not change METEOR).
    clean (`bool`): apply DSTC7's `clean_str` to predictions and references first (`dstc.py -c`).
        Defaults to `False`.
    n_refs (`int`, optional): number of reference slots per prediction (DSTC7 uses 6). Defaults
        to the widest row.
    vshuman (`int`): reference index to skip when filling the slots (DSTC7's `--vshuman`).
        Defaults to -1 (skip none).
    heap (`str`): the JVM's maximum heap (`-Xmx`). Defaults to `"1g"`, as DSTC7.

Returns:
    meteor (`float`): corpus METEOR, a fraction.

Examples:

    >>> meteor = evaluate.load("metrics/meteor_multiref")
    >>> predictions = ["i do n't know .", "he is a rocket scientist .", "i love it !"]
    >>> references = [["ok that 's fine", "well it 's ok"], ["he is a trader", "he is an engineer"],
    ...               ["i love it !", "i 'm not a fan"]]
    >>> results = meteor.compute(predictions=predictions, references=references)
    >>> print(round(results["meteor"], 4))
    0.2714
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MeteorMultiref(evaluate.Metric):
    def _info(self):
        return module_info("meteor", _DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION,
                           codebase_urls=["https://github.com/cmu-mtlab/meteor", "https://github.com/salaniz/pycocoevalcap"],
                           reference_urls=["https://aclanthology.org/W14-3348/"], homepage="https://www.cs.cmu.edu/~alavie/METEOR/")

    def _compute(self, predictions, references, clean=False, n_refs=None, vshuman=-1, heap="1g"):
        return compute("meteor", predictions, references, clean=clean, n_refs=n_refs, vshuman=vshuman, heap=heap)
