"""The model, reranking, safety, decoding and runtime flags shared by ``dialogpt-chat`` and
``dialogpt-serve``: argparse here, one :class:`~dialogpt.decode.ResponderSpec` out."""

from __future__ import annotations

import argparse
import contextlib

from dialogpt.decode import ResponderSpec

DECODING_FLAGS = ("strategy", "max_new_tokens", "min_new_tokens", "temperature", "top_k", "top_p", "num_beams",
                  "length_penalty", "no_repeat_ngram_size", "repetition_penalty", "frequency_penalty",
                  "presence_penalty", "num_candidates", "max_history_turns", "max_prompt_tokens")


def add_responder_args(p: argparse.ArgumentParser) -> None:
    """Add the flags :func:`spec_from_args` reads."""
    p.add_argument("model", help="model directory or hub id, e.g. microsoft/DialoGPT-medium")
    g = p.add_argument_group("reranking and safety")
    g.add_argument("--reverse-model", help="reverse (MMI) model dir or hub id; implies --rerank mmi")
    g.add_argument("--ranker", action="append", default=[],
                   help="DialogRPT ranker dir/hub id ([prior:|cond:]PATH[@WEIGHT]) or an ensemble .yml; "
                        "repeatable; implies --rerank dialogrpt")
    g.add_argument("--rerank", default="auto", choices=["auto", "none", "logprob", "mmi", "dialogrpt"],
                   help="how to pick among --num-candidates (default: mmi with --reverse-model, "
                        "dialogrpt with --ranker, else none)")
    g.add_argument("--length-normalize", action="store_true", help="divide logprob/MMI scores by token count")
    g.add_argument("--blocklist", default="default",
                   help="safety blocklist file, 'default' (shipped list) or 'none'")
    g.add_argument("--safety-classifier", help="extra safety hook 'module:function' (text -> bool or prob)")
    d = p.add_argument_group("decoding (defaults come from the model's generation_config.json, then "
                             "--decoding-config, then these flags)")
    d.add_argument("--decoding-config", help="YAML/JSON file of decoding options (GenerationOptions fields)")
    d.add_argument("--strategy", choices=["greedy", "sample", "beam"])
    d.add_argument("--max-new-tokens", type=int)
    d.add_argument("--min-new-tokens", type=int)
    d.add_argument("--temperature", type=float)
    d.add_argument("--top-k", type=int)
    d.add_argument("--top-p", type=float)
    d.add_argument("--num-beams", type=int)
    d.add_argument("--length-penalty", type=float)
    d.add_argument("--no-repeat-ngram-size", type=int)
    d.add_argument("--repetition-penalty", type=float, help="over the response only, not the history")
    d.add_argument("--frequency-penalty", type=float, help="OpenAI's, over the response only (-2..2)")
    d.add_argument("--presence-penalty", type=float, help="OpenAI's, over the response only (-2..2)")
    d.add_argument("--num-candidates", type=int, help="candidates per context for reranking")
    d.add_argument("--max-history-turns", type=int)
    d.add_argument("--max-prompt-tokens", type=int)
    d.add_argument("--seed", type=int, help="seed for sampling (reproducible runs)")
    r = p.add_argument_group("runtime")
    r.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    r.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])
    r.add_argument("--batch-size", type=int, default=16, help="contexts per generate call (batch mode)")
    r.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")


def spec_from_args(args: argparse.Namespace) -> ResponderSpec:
    """The parsed flags as a :class:`ResponderSpec` (decoding flags left out stay model defaults)."""
    return ResponderSpec(
        model=args.model, reverse_model=args.reverse_model, rankers=list(args.ranker), rerank=args.rerank,
        length_normalize=args.length_normalize, blocklist=args.blocklist,
        safety_classifier=args.safety_classifier, device=args.device, dtype=args.dtype,
        batch_size=args.batch_size, threads=args.threads, decoding_config=args.decoding_config,
        overrides={k: getattr(args, k) for k in DECODING_FLAGS if getattr(args, k) is not None},
    )


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' warnings and loading bars while a command runs (a chat's stdout and
    stderr are for the conversation), and put the previous settings back afterwards, so calling
    ``main()`` from Python leaves the caller's logging as it was."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
