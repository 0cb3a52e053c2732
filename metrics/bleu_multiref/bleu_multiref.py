"""BLEU-n with several references per hypothesis, exact to mteval-v14c as DSTC7 / DialoGPT ran it.

A thin ``evaluate`` wrapper over :func:`dialogpt.scoring.mteval.corpus_bleu` (sacrebleu underneath).
"""

import evaluate

from dialogpt.scoring import prepare
from dialogpt.scoring.evaluate_info import DSTC_EVALUATION_URL, multiref_features
from dialogpt.scoring.mteval import corpus_bleu, tokenize_for_mteval

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

_DESCRIPTION = """\
Corpus BLEU-1..4 as `mteval-v14c.pl` printed them for DSTC7 Task 2 and DialoGPT's tables (to 1e-10
on the shipped reference cases), computed by `sacrebleu` with these settings:

* the text is first tokenised by mteval-v14c's rules (our `tokenize_for_mteval`): sacrebleu's own
  `13a` tokenizer is mteval-**v13a**'s and does not see DSTC7's XML step (`&`/`<` removed, an empty
  line scored as `__empty__`), so sacrebleu runs with `tokenize="none"` on the pre-tokenised text;
* `lowercase=False` (mteval lowercases ASCII only, already done), `smooth_method="none"`,
  `effective_order=False`: the plain corpus geometric mean, 0 when an order has no match;
* brevity penalty from the **closest** reference length, ties to the shorter (sacrebleu's rule and
  mteval's default `--brevity-penalty closest`);
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
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BleuMultiref(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            homepage=DSTC_EVALUATION_URL,
            inputs_description=_KWARGS_DESCRIPTION,
            features=multiref_features(),
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/P02-1040/"],
        )

    def _compute(self, predictions, references, clean=False, n_refs=None, vshuman=-1):
        hyps, rows = prepare(predictions, references, clean=clean, n_refs=n_refs, vshuman=vshuman)
        scores = corpus_bleu([tokenize_for_mteval(h) for h in hyps],
                             [[tokenize_for_mteval(r) for r in row] for row in rows], max_n=4)
        return {f"bleu{n}": s for n, s in enumerate(scores, start=1)}
