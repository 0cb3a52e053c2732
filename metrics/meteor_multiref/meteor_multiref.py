"""METEOR 1.5 with several references per hypothesis, exactly as DSTC7 / DialoGPT ran it.

A thin ``evaluate`` wrapper over :func:`dialogpt.scoring.meteor.meteor`, which drives the
``meteor-1.5.jar`` shipped in the ``pycocoevalcap`` wheel in one JVM call.
"""

import evaluate

from dialogpt.scoring import prepare
from dialogpt.scoring.evaluate_info import multiref_features
from dialogpt.scoring.meteor import meteor

_CITATION = """\
@inproceedings{denkowski2014meteor,
  title={Meteor Universal: Language Specific Translation Evaluation for Any Target Language},
  author={Denkowski, Michael and Lavie, Alon},
  booktitle={Proceedings of the Ninth Workshop on Statistical Machine Translation},
  pages={376--380},
  year={2014}
}
"""

_DESCRIPTION = """\
METEOR 1.5 (Denkowski and Lavie, 2014) aligns a response with its references through exact,
stem, synonym and paraphrase matches and scores the alignment's precision, recall and
fragmentation. This module runs the official `meteor-1.5.jar` exactly as DSTC7's `dstc.py` did:
`java -Xmx1g -jar meteor-1.5.jar hyp.txt refs.txt -r N -l en -norm` (task `rank`, English
paraphrase table), references interleaved, one JVM call for the whole corpus, and returns the
full-precision `Final score:`.

Needs Java (any JRE >= 8) on PATH and the `pycocoevalcap` package (the `meteor` extra), whose wheel
carries the jar and `data/paraphrase-en.gz`; a clear error says which is missing. `METEOR_JAR`
may point at another copy of the jar. Starting the JVM and loading the paraphrase table take
about 6 seconds, whatever the corpus size.
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
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            homepage="https://www.cs.cmu.edu/~alavie/METEOR/",
            inputs_description=_KWARGS_DESCRIPTION,
            features=multiref_features(),
            codebase_urls=["https://github.com/cmu-mtlab/meteor", "https://github.com/salaniz/pycocoevalcap"],
            reference_urls=["https://aclanthology.org/W14-3348/"],
        )

    def _compute(self, predictions, references, clean=False, n_refs=None, vshuman=-1, heap="1g"):
        hyps, rows = prepare(predictions, references, clean=clean, n_refs=n_refs, vshuman=vshuman)
        return {"meteor": meteor(hyps, rows, heap=heap)}
