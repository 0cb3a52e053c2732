"""The optimizer and lr schedule of a run, built the seed's way.

AdamW with no decay on biases and LayerNorms (the seed's ``no_decay = ["bias", "ln"]``), and the
seed's schedule (:mod:`dialogpt.train.schedules`) as a ``LambdaLR`` indexed by optimizer steps.
"""

from __future__ import annotations

import torch

from dialogpt.train.checkpointing import TrainState
from dialogpt.train.config import TrainConfig
from dialogpt.train.schedules import build_scheduler


def param_groups(model, weight_decay: float) -> list[dict]:
    """The seed's two groups: no decay for biases and LayerNorm ("bias", "ln" in the name)."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if any(nd in n for nd in ("bias", "ln")) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(config: TrainConfig, model, n_embd: int):
    """AdamW (fused on CUDA) and the seed's lr schedule as a ``LambdaLR`` over optimizer steps
    (BERT is transformers' ``linear`` schedule, see :mod:`dialogpt.train.schedules`)."""
    fused = {"fused": True} if torch.cuda.is_available() and not config.cpu else {}
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.learning_rate,
                                  eps=config.adam_epsilon, **fused)
    scheduler = build_scheduler(optimizer, config.lr_schedule, warmup_steps=config.warmup_steps,
                                warmup_proportion=config.warmup_proportion, n_embd=n_embd,
                                num_optim_steps=config.num_optim_steps)
    return optimizer, scheduler


def apply_continue_from(n: int, state: TrainState, optimizer, scheduler) -> None:
    """The seed's --continue_from: counters and schedule start at N, nothing else is restored."""
    state.global_step = n
    state.micro_step = 2 * n - 1
    scheduler.last_epoch = n
    for g, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        g["lr"] = base * fn(n)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
