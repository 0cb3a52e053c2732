"""What the ``evaluate`` modules in ``metrics/`` declare about their inputs, defined once.

Every metric takes the seed's multi-reference layout (a list of references per prediction) or one
plain-string reference per prediction; diversity metrics need no references at all. Keeping the
feature sets here keeps the four modules' input checks identical.
"""

from __future__ import annotations

DSTC_EVALUATION_URL = "https://github.com/mgalley/DSTC7-End-to-End-Conversation-Modeling/tree/master/evaluation"


def multiref_features(references_optional: bool = False) -> list:
    """The accepted ``datasets.Features``: list-of-references, single reference, and (optionally) none."""
    import datasets

    text = datasets.Value("string", id="sequence")
    accepted = [
        datasets.Features({"predictions": text,
                           "references": datasets.Sequence(datasets.Value("string", id="sequence"), id="references")}),
        datasets.Features({"predictions": text, "references": datasets.Value("string", id="sequence")}),
    ]
    if references_optional:
        accepted.insert(0, datasets.Features({"predictions": text}))
    return accepted
