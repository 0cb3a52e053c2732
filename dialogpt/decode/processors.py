"""Logits processors that look at the response being written, never at the history.

A DialoGPT prompt is the user's own words; penalising them (as transformers' default repetition
penalty does over the whole ``input_ids``) makes replies avoid exactly the words the user just said.
Every processor here therefore skips the first ``prompt_length`` columns: prompts are left-padded
to one width in ``Responder`` (so one int serves the batch), while the server's step scheduler
passes one length per row (a tensor).

* repetition penalty: transformers' own ``RepetitionPenaltyLogitsProcessor(prompt_ignore_length=)``;
* OpenAI's ``frequency_penalty`` / ``presence_penalty``: :class:`FrequencyPresencePenalty`
  (transformers has no count-based penalty).

:func:`process_rows` applies them, and the sampling warpers, to many rows that each carry their own
options (the server's running batch): rows with the same values go through one processor call
together, so a batch sharing the server's defaults is one tensor op per processor, and each row gets
exactly what its own processors would give it alone.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Sequence

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from dialogpt.decode.options import GenerationOptions

#: ``prompt_ignore_length`` is newer than transformers 4.45, the oldest setup.cfg allows.
_HAS_PROMPT_IGNORE = "prompt_ignore_length" in inspect.signature(RepetitionPenaltyLogitsProcessor.__init__).parameters


def _generated(input_ids: torch.Tensor, prompt_length: int | torch.Tensor, fill: int) -> torch.Tensor:
    """``input_ids`` with every prompt column replaced by ``fill`` (an id outside the vocabulary)."""
    if isinstance(prompt_length, int):
        return input_ids[:, prompt_length:]
    cols = torch.arange(input_ids.shape[1], device=input_ids.device)
    return input_ids.masked_fill(cols[None, :] < prompt_length.to(input_ids.device)[:, None], fill)


class _ResponseOnlyRepetitionPenalty(RepetitionPenaltyLogitsProcessor):
    """Fallback for a transformers without ``prompt_ignore_length`` only: the library's penalty over the response columns."""

    def __init__(self, penalty: float, prompt_ignore_length: int | torch.Tensor):
        super().__init__(penalty)
        self.prompt_length = prompt_ignore_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        gen = _generated(input_ids, self.prompt_length, scores.shape[-1])
        if gen.shape[1] == 0:
            return scores
        padded = torch.nn.functional.pad(scores, (0, 1))
        return super().__call__(gen, padded)[:, : scores.shape[-1]]


def response_repetition_penalty(penalty: float, prompt_length: int | torch.Tensor) -> LogitsProcessor:
    """CTRL's repetition penalty over the generated tokens only (transformers' processor)."""
    if penalty <= 0:
        raise ValueError(f"repetition penalty must be > 0, got {penalty}")
    if _HAS_PROMPT_IGNORE:
        return RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=prompt_length)
    return _ResponseOnlyRepetitionPenalty(penalty, prompt_length)


class FrequencyPresencePenalty(LogitsProcessor):
    """OpenAI's penalties: ``logit[j] -= frequency * count_j + presence * (count_j > 0)``, with
    ``count_j`` the occurrences of token ``j`` in the response so far (as OpenAI's API defines them)."""

    def __init__(self, frequency: float, presence: float, prompt_length: int | torch.Tensor):
        self.frequency, self.presence, self.prompt_length = float(frequency), float(presence), prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        vocab = scores.shape[-1]
        gen = _generated(input_ids, self.prompt_length, vocab)
        if gen.shape[1] == 0:
            return scores
        counts = torch.zeros((scores.shape[0], vocab + 1), dtype=scores.dtype, device=scores.device)
        counts.scatter_add_(1, gen.clamp(max=vocab), torch.ones_like(gen, dtype=scores.dtype))
        counts = counts[:, :vocab]
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def response_processors(options: GenerationOptions, prompt_length: int | torch.Tensor) -> LogitsProcessorList:
    """The response-only processors ``options`` asks for (none when every penalty is neutral)."""
    out = LogitsProcessorList()
    if options.repetition_penalty != 1.0:
        out.append(response_repetition_penalty(options.repetition_penalty, prompt_length))
    if options.frequency_penalty or options.presence_penalty:
        out.append(FrequencyPresencePenalty(options.frequency_penalty, options.presence_penalty, prompt_length))
    return out


def sampling_warpers(options: GenerationOptions) -> LogitsProcessorList:
    """Temperature, top-k and top-p, in ``generate``'s order (none for greedy decoding)."""
    out = LogitsProcessorList()
    if options.strategy != "sample":
        return out
    if options.temperature != 1.0:
        out.append(TemperatureLogitsWarper(options.temperature))
    if options.top_k > 0:
        out.append(TopKLogitsWarper(options.top_k))
    if options.top_p < 1.0:
        out.append(TopPLogitsWarper(options.top_p))
    return out


def _groups(keys: Sequence[tuple]) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        out[k].append(i)
    return out


def process_rows(scores: torch.Tensor, generated: Sequence[Sequence[int]],
                 options: Sequence[GenerationOptions]) -> torch.Tensor:
    """``scores`` (one line per row) after each row's response-only penalties (over ``generated[i]``,
    the tokens its response has so far) and, for sampling rows, its temperature / top-k / top-p.
    Rows with equal values share one call of transformers' processors (``prompt_ignore_length`` masks
    the left padding of the shorter responses); rows that need nothing are not touched."""
    pen = [(o.repetition_penalty, o.frequency_penalty, o.presence_penalty) for o in options]
    for key, rows in _groups(pen).items():
        if key == (1.0, 0.0, 0.0) or not any(generated[i] for i in rows):
            continue
        width = max(len(generated[i]) for i in rows)
        pad = torch.tensor([width - len(generated[i]) for i in rows], device=scores.device)
        ids = torch.tensor([[0] * (width - len(generated[i])) + list(generated[i]) for i in rows],
                           device=scores.device)
        idx = torch.tensor(rows, device=scores.device)
        scores[idx] = response_processors(options[rows[0]], pad)(ids, scores[idx])
    warp = [(o.temperature, o.top_k, o.top_p) if o.strategy == "sample" else None for o in options]
    for key, rows in _groups(warp).items():
        if key is not None:
            idx = torch.tensor(rows, device=scores.device)
            scores[idx] = sampling_warpers(options[rows[0]])(None, scores[idx])
    return scores


__all__ = ["FrequencyPresencePenalty", "process_rows", "response_processors", "response_repetition_penalty",
           "sampling_warpers"]
