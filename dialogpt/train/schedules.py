"""Learning-rate schedules of the original DialoGPT, as ``LambdaLR`` multipliers.

The seed (``gpt2_training/train_utils.py:set_lr`` with ``lsp_model/optim.py``) set the learning
rate by hand before every optimizer step from ``global_step`` (0-based, the number of optimizer
steps already taken):

* ``None``:   ``lr``
* ``noam``:   ``lr * 1e4 * noam_decay(step + 1, warmup_steps, n_embd)`` with
  ``noam_decay(s, w, d) = d**-0.5 * min(s**-0.5, s * w**-1.5)``
* ``noamwd``: ``noam`` times ``rate ** (max(s - start_step + decay_steps, 0) // decay_steps)``
  (rate 0.5, decay_steps 1000, start_step 500, the seed's defaults)
* ``BERT``:   ``lr * warmup_linear(step / num_optim_steps, warmup_proportion)``: linear warm-up
  over the first ``warmup_proportion`` of training, then linear decay to 0. That is exactly
  transformers' ``get_scheduler("linear", num_warmup_steps=warmup_proportion * num_optim_steps)``,
  so the library's schedule is used (:func:`build_scheduler`); :func:`warmup_linear` stays only as
  the seed's formula the tests compare it with. noam/noamwd have no library equivalent.

A ``LambdaLR`` multiplies the base lr by ``fn(k)`` where ``k`` is the number of ``scheduler.step()``
calls made so far, which is exactly the seed's ``global_step`` when the scheduler is stepped once per
optimizer step. We never multiply steps by the number of processes (the mistake in HF's example
scripts, transformers #18436/#24088): one optimizer step is one step however many ranks run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

SCHEDULES = ("noam", "noamwd", "BERT", "None")


def noam_decay(step: int, warmup_steps: int, model_size: int) -> float:
    """Transformer schedule (Vaswani et al.), ``step`` is 1-based as in the seed."""
    return model_size ** (-0.5) * min(step ** (-0.5), step * warmup_steps ** (-1.5))


def noamwd_decay(
    step: int, warmup_steps: int, model_size: int, rate: float = 0.5, decay_steps: int = 1000,
    start_step: int = 500,
) -> float:
    """``noam`` with a step-wise exponential decay (the seed's "for huge batches" variant)."""
    return noam_decay(step, warmup_steps, model_size) * rate ** (
        max(step - start_step + decay_steps, 0) // decay_steps
    )


def warmup_linear(x: float, warmup: float = 0.002) -> float:
    """Fraction of training ``x`` in [0, 1] -> multiplier; the seed's BERT schedule."""
    if x < warmup:
        return x / warmup
    return max((1.0 - x) / (1.0 - warmup), 0.0)


def _none(step: int) -> float:
    return 1.0


def _noam(step: int, warmup_steps: int, n_embd: int) -> float:
    return 1e4 * noam_decay(step + 1, warmup_steps, n_embd)


def _noamwd(step: int, warmup_steps: int, n_embd: int) -> float:
    return 1e4 * noamwd_decay(step + 1, warmup_steps, n_embd)


def lr_lambda(
    schedule: str, *, warmup_steps: int, warmup_proportion: float, n_embd: int, num_optim_steps: int,
) -> Callable[[int], float]:
    """The multiplier ``f(global_step)`` for ``schedule``; raises on an unknown name.

    Returned as a ``functools.partial`` of a module-level function (not a closure) so the scheduler
    can be pickled by ``accelerator.save_state`` on every backend.
    """
    if schedule == "None":
        return _none
    if schedule in ("noam", "noamwd"):
        if warmup_steps < 1:
            raise ValueError(f"--warmup_steps must be >= 1 for lr_schedule {schedule}, got {warmup_steps}")
        fn = _noam if schedule == "noam" else _noamwd
        return functools.partial(fn, warmup_steps=warmup_steps, n_embd=n_embd)
    if schedule == "BERT":
        # the library's multiplier, read off its scheduler over a one-parameter optimizer (callers that
        # set the lr by hand, e.g. --continue_from, and the config check use this function)
        import torch

        probe = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return _linear_scheduler(probe, warmup_proportion, num_optim_steps).lr_lambdas[0]
    raise ValueError(f"--lr_schedule {schedule!r} is not one of {', '.join(SCHEDULES)}")


def _linear_scheduler(optimizer, warmup_proportion: float, num_optim_steps: int):
    """The seed's BERT schedule as transformers' ``linear`` one.

    The warm-up is a fraction of training and need not be a whole number of steps: it is passed
    unrounded (the library's formula only compares and divides by it), so the multipliers equal
    the seed's ``warmup_linear(step / num_optim_steps, warmup_proportion)`` at every step.
    """
    from transformers import get_scheduler

    if not 0.0 < warmup_proportion < 1.0:
        raise ValueError(f"--warmup_proportion must be in (0, 1) for lr_schedule BERT, got {warmup_proportion}")
    return get_scheduler("linear", optimizer, num_warmup_steps=warmup_proportion * num_optim_steps,
                         num_training_steps=num_optim_steps)


def build_scheduler(optimizer, schedule: str, *, warmup_steps: int, warmup_proportion: float, n_embd: int,
                    num_optim_steps: int):
    """A ``LambdaLR`` over ``optimizer`` for one of :data:`SCHEDULES`: transformers' ``linear`` for
    BERT, the seed's formulas (:func:`lr_lambda`) for the rest."""
    if schedule == "BERT":
        return _linear_scheduler(optimizer, warmup_proportion, num_optim_steps)
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lr_lambda(schedule, warmup_steps=warmup_steps, warmup_proportion=warmup_proportion,
                                         n_embd=n_embd, num_optim_steps=num_optim_steps))
