"""Decoding: options, the Responder (generate -> rerank -> safety filter), and building one from settings."""

from dialogpt.decode.factory import ResponderSpec, build_responder
from dialogpt.decode.options import GenerationOptions, save_generation_defaults
from dialogpt.decode.responder import Candidate, Reply, Responder
from dialogpt.decode.safety import SafetyFilter

__all__ = [
    "Candidate", "GenerationOptions", "Reply", "Responder", "ResponderSpec", "SafetyFilter", "build_responder",
    "save_generation_defaults",
]
