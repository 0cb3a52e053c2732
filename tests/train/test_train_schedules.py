"""The seed's lr schedules (noam, noamwd, BERT, None), checked against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from dialogpt.train.schedules import build_scheduler, lr_lambda


def _lrs(schedule, steps, lr=1e-5, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = build_scheduler(opt, schedule, **{"warmup_steps": 4, "warmup_proportion": 0.1, "n_embd": 768,
                                              "num_optim_steps": 100, **kw})
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])  # the lr the next optimizer step uses
        opt.step()
        sched.step()
    return out


def test_noam_matches_the_seed_formula_by_hand():
    # seed: lr * 1e4 * n_embd**-0.5 * min((s+1)**-0.5, (s+1) * warmup**-1.5), s = optimizer steps taken
    lrs = _lrs("noam", 10)
    d = 768 ** -0.5
    assert lrs[0] == pytest.approx(1e-5 * 1e4 * d * 1 * 4 ** -1.5)         # step 1: warm-up branch
    assert lrs[1] == pytest.approx(1e-5 * 1e4 * d * 2 / 8)                 # 2 * 4**-1.5 = 0.25
    assert lrs[3] == pytest.approx(1e-5 * 1e4 * d * 0.5)                   # step 4 = warmup: both 0.5
    assert lrs[8] == pytest.approx(1e-5 * 1e4 * d / 3)                     # step 9: 9**-0.5
    assert max(lrs) == lrs[3]                                              # peak at the end of warm-up


def test_noamwd_halves_every_1000_steps_after_500():
    f = lr_lambda("noamwd", warmup_steps=4, warmup_proportion=0.1, n_embd=64, num_optim_steps=10)
    noam = lr_lambda("noam", warmup_steps=4, warmup_proportion=0.1, n_embd=64, num_optim_steps=10)
    # rate ** ((s - 500 + 1000) // 1000) with s = step + 1
    assert f(0) == pytest.approx(noam(0))                # s=1: exponent 0
    assert f(498) == pytest.approx(noam(498))            # s=499: (999)//1000 = 0
    assert f(499) == pytest.approx(noam(499) * 0.5)      # s=500: exponent 1
    assert f(1499) == pytest.approx(noam(1499) * 0.25)   # s=1500: exponent 2
    assert f(99) == pytest.approx(1e4 * 64 ** -0.5 * 100 ** -0.5)


def test_bert_linear_warmup_then_linear_decay():
    lrs = _lrs("BERT", 100, lr=1.0, num_optim_steps=100, warmup_proportion=0.1)
    assert lrs[0] == 0.0                               # seed: warmup_linear(0/100) = 0
    assert lrs[5] == pytest.approx(0.5)                # 0.05 / 0.1
    assert lrs[10] == pytest.approx(1.0)               # end of warm-up: (1 - 0.1) / 0.9
    assert lrs[55] == pytest.approx((1 - 0.55) / 0.9)
    assert lrs[99] == pytest.approx(0.01 / 0.9)


def test_none_is_constant():
    assert _lrs("None", 5, lr=3e-4) == [3e-4] * 5


def test_unknown_schedule_and_bad_warmup_are_rejected():
    with pytest.raises(ValueError, match="lr_schedule 'cosine'"):
        lr_lambda("cosine", warmup_steps=1, warmup_proportion=0.1, n_embd=1, num_optim_steps=1)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_lambda("noam", warmup_steps=0, warmup_proportion=0.1, n_embd=1, num_optim_steps=1)


def test_scheduler_state_round_trips():
    """The scheduler is saved by accelerator.save_state: its lambdas must survive a state_dict trip."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    s1 = build_scheduler(opt, "noam", warmup_steps=4, warmup_proportion=0.1, n_embd=16, num_optim_steps=10)
    for _ in range(7):
        opt.step()
        s1.step()
    opt2 = torch.optim.SGD([p], lr=1.0)
    s2 = build_scheduler(opt2, "noam", warmup_steps=4, warmup_proportion=0.1, n_embd=16, num_optim_steps=10)
    s2.load_state_dict(s1.state_dict())
    opt2.step()
    s2.step()
    opt.step()
    s1.step()
    assert s2.get_last_lr() == s1.get_last_lr()
    assert math.isclose(s1.get_last_lr()[0], 1e4 * 16 ** -0.5 * 9 ** -0.5)


@pytest.mark.parametrize("num_optim_steps,warmup_proportion", [(100, 0.1), (37, 0.1), (1000, 0.002), (9, 0.25)])
def test_bert_is_the_library_linear_schedule_and_equals_the_seed_formula(num_optim_steps, warmup_proportion):
    """BERT runs on transformers' get_scheduler("linear"), unrounded warm-up included (37 x 0.1 = 3.7 steps)."""
    import transformers.optimization as tro

    from dialogpt.train.schedules import warmup_linear

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, "BERT", warmup_steps=4, warmup_proportion=warmup_proportion, n_embd=768,
                            num_optim_steps=num_optim_steps)
    assert sched.lr_lambdas[0].func is tro._get_linear_schedule_with_warmup_lr_lambda
    f = lr_lambda("BERT", warmup_steps=4, warmup_proportion=warmup_proportion, n_embd=768,
                  num_optim_steps=num_optim_steps)
    for step in range(num_optim_steps + 3):
        seed = warmup_linear(step / num_optim_steps, warmup_proportion)
        assert opt.param_groups[0]["lr"] == pytest.approx(seed, abs=1e-12), step
        assert f(step) == pytest.approx(seed, abs=1e-12), step
        opt.step()
        sched.step()


def test_bert_rejects_a_warmup_proportion_outside_0_1():
    with pytest.raises(ValueError, match="warmup_proportion"):
        lr_lambda("BERT", warmup_steps=1, warmup_proportion=1.0, n_embd=1, num_optim_steps=10)
