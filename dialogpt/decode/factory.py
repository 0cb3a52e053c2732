"""Build a ready :class:`Responder` from plain settings: what ``dialogpt-chat``, ``dialogpt-serve``
and the web pages share, so none of them imports another's command-line module.

:class:`ResponderSpec` is the argparse-free form of the model, reranking, safety and decoding flags;
:func:`build_responder` checks the references (a path that cannot be a hub id must exist), loads
the models and applies decoding overrides in the documented order: the model's
``generation_config.json``, then ``decoding_config`` (a YAML/JSON file), then ``overrides``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dialogpt.decode.options import GenerationOptions
from dialogpt.decode.rerank import parse_ranker_specs
from dialogpt.decode.responder import Responder
from dialogpt.decode.safety import SafetyFilter, load_blocklist, load_classifier


@dataclass
class ResponderSpec:
    """Everything needed to load a Responder (the CLI flags of the same names)."""

    model: str
    """model directory or hub id, e.g. microsoft/DialoGPT-medium."""
    reverse_model: str | None = None
    rankers: Sequence[str] = ()
    """``--ranker`` values: [prior:|cond:]PATH[@WEIGHT] or a DialogRPT ensemble .yml."""
    rerank: str = "auto"
    length_normalize: bool = False
    blocklist: str = "default"
    """a blocklist file, 'default' (the shipped list) or 'none'."""
    safety_classifier: str | None = None
    device: str | None = None
    dtype: str | None = None
    batch_size: int = 16
    threads: int | None = None
    decoding_config: str | None = None
    overrides: dict = field(default_factory=dict)
    """GenerationOptions fields that win over the model's defaults and ``decoding_config``."""


def check_model_ref(flag: str, ref: str | None) -> None:
    """A model reference that can only be a local path (absolute, ./ or ../, or more than one '/',
    so not an ``org/name`` hub id) must exist: say so, rather than the hub's "Repo id must be in the
    form ..." message."""
    if ref is None or Path(ref).expanduser().exists():
        return
    if os.path.isabs(ref) or ref.startswith((".", "~")) or ref.count("/") > 1 or "\\" in ref:
        raise FileNotFoundError(f"{flag} {ref}: no such directory (nor a hub id like org/name)")


def build_safety(blocklist: str = "default", classifier: str | None = None) -> SafetyFilter | None:
    """The safety filter for ``--blocklist`` / ``--safety-classifier`` (None when both are off)."""
    hook = load_classifier(classifier) if classifier else None
    if blocklist == "none" and hook is None:
        return None
    patterns = [] if blocklist == "none" else load_blocklist(None if blocklist == "default" else blocklist)
    return SafetyFilter(patterns=patterns, classifier=hook)


def build_responder(spec: ResponderSpec) -> Responder:
    """Load the model(s), safety filter and reranker of ``spec``; raises ValueError /
    FileNotFoundError / OSError naming the flag for a user mistake."""
    check_model_ref("MODEL", spec.model)
    check_model_ref("--reverse-model", spec.reverse_model)
    if spec.threads is not None:
        if spec.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {spec.threads}")
        import torch

        torch.set_num_threads(spec.threads)
    rankers = parse_ranker_specs(spec.rankers)
    for r in rankers:
        check_model_ref("--ranker", r.path)
    safety = build_safety(spec.blocklist, spec.safety_classifier)
    responder = Responder.from_pretrained(
        spec.model, reverse_model=spec.reverse_model, rankers=rankers, rerank=spec.rerank, safety=safety,
        device=spec.device, dtype=spec.dtype, length_normalize=spec.length_normalize,
        batch_size=spec.batch_size,
    )
    overrides = GenerationOptions.read_overrides(spec.decoding_config) if spec.decoding_config else {}
    overrides.update(spec.overrides)
    responder.options = responder.options.replace(**overrides)
    return responder


__all__ = ["ResponderSpec", "build_responder", "build_safety", "check_model_ref"]
