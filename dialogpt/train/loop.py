"""The seed's ``LSP_train.py`` on Accelerate: setup, one optimizer step, eval, checkpoint, finish.

``train(TrainConfig(...))`` is the library entry point (the CLI in :mod:`dialogpt.cli.train` and
``make demo`` both call it). It runs unchanged under one CPU, ``accelerate launch`` with DDP,
FSDP or DeepSpeed, with ``--mixed_precision no|fp16|bf16``.

What is matched on purpose (see DESIGN.md):

* ``train_batch_size`` keeps the seed's meaning: examples per device per *optimizer step*; each
  micro-batch is ``train_batch_size // gradient_accumulation_steps`` (the seed asserted the
  division is exact and printed both numbers);
* the lr schedules (``noam``, ``noamwd``, ``BERT``, ``None``) use the seed's formulas, indexed by
  the number of optimizer steps taken (:mod:`dialogpt.train.schedules`);
* ``train_log.txt`` / ``eval_log.txt`` are CSV with the seed's columns (:mod:`dialogpt.train.logs`);
* ``--continue_from N`` starts the counters and the schedule at optimizer step N, as the seed did
  (``global_step = N``, ``step = 2N - 1``); it restores no optimizer state or data position:
  ``--resume_from_checkpoint`` does that (:mod:`dialogpt.train.checkpointing`).

Where we differ: AdamW with bias correction and one global gradient-norm clip replace the seed's
per-parameter clip inside its bias-correction-free Adam; losses are HF's token mean per micro-batch.

The other rooms: :mod:`~dialogpt.train.config` (the options), :mod:`~dialogpt.train.model` (model and
tokenizer), :mod:`~dialogpt.train.data` (tokenise and batch), :mod:`~dialogpt.train.hub` (final folder, push).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dialogpt.errors import first_line
from dialogpt.tensors import token_nll
from dialogpt.train.checkpointing import (
    ResumePoint,
    TrainState,
    check_checkpoint_fits,
    clean_leftovers,
    find_resume_path,
    prepare_fresh_output_dir,
    save_checkpoint,
    sync_accelerate_config,
    truncate_log,
)
from dialogpt.train.config import TrainConfig, TrainingError, TrainResult
from dialogpt.train.data import LengthBucketBatchSampler, build_loaders
from dialogpt.train.hub import push_folder, save_final
from dialogpt.train.launch import accelerator_kwargs, make_accelerator
from dialogpt.train.logs import RunLog, ppl, start_logs
from dialogpt.train.lora import check_lora_run, parameter_counts
from dialogpt.train.model import load_model, load_tokenizer
from dialogpt.train.optim import apply_continue_from, build_optimizer
from dialogpt.train.packing import model_inputs, real_token_count
from dialogpt.train.sources import DataCoverage, load_training_data

StepCallback = Callable[[TrainState], None]


@dataclass
class Run:
    """Everything setup built, handed from step to step."""

    config: TrainConfig
    accelerator: object
    tokenizer: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_dl: object
    eval_dl: object | None
    sampler: LengthBucketBatchSampler
    state: TrainState
    resume_path: Path | None
    n_params: int
    n_embd: int
    num_train: int
    num_eval: int
    coverage: DataCoverage
    last_ckpt: Path | None = None
    resume_exact: bool = True
    n_trainable: int = 0
    micro: list = field(default_factory=list)   # this step's micro-batch (loss, real tokens, all tokens)


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------

def train(config: TrainConfig, step_callback: StepCallback | None = None) -> TrainResult:
    """Train a DialoGPT model as ``config`` says; returns figures and where things were written.

    ``step_callback(state)`` is called on every process after each optimizer step (after any
    checkpoint of that step): the demo drives progress with it and the resume test "kills" the
    run from it by raising.
    """
    config.validate()
    _reset_accelerate_state()
    check_tracker_installed(config.report_to)
    accelerator = _make_accelerator(config)
    try:
        sync_accelerate_config(accelerator, config)
        run = setup(config, accelerator)
        log = start_logs(run)
        try:
            train_epochs(run, log, step_callback)
            return finish(run, log)
        finally:
            log.close()  # also when a step raised: no open log files left behind
    finally:
        with contextlib.suppress(Exception):
            accelerator.end_training()
        accelerator.free_memory()


def _make_accelerator(config: TrainConfig):
    from accelerate.utils import ProjectConfiguration

    out_dir = Path(config.output_dir)
    # the launch config's precision and CPU DDP made true, fp16 without CUDA refused (train/launch.py)
    return make_accelerator(
        **accelerator_kwargs(config), gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=None if config.report_to == "none" else config.report_to,
        project_config=ProjectConfiguration(project_dir=str(out_dir), logging_dir=str(out_dir / "runs")),
        # one scheduler step per optimizer step, never num_processes of them (transformers #18436)
        step_scheduler_with_optimizer=False,
    )


def _reset_accelerate_state() -> None:
    """Allow several ``train()`` calls in one process (tests, the demo) with different precisions."""
    try:
        import torch.distributed as dist
        from accelerate.state import AcceleratorState

        if not (dist.is_available() and dist.is_initialized()):
            AcceleratorState._reset_state(reset_partial_state=True)
    except Exception:  # pragma: no cover - best effort, older accelerate
        pass


def check_tracker_installed(report_to: str) -> None:
    """``--report_to wandb`` without wandb would be dropped by Accelerate with a warning: fail instead."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    need = {"wandb": (is_wandb_available, "wandb"), "tensorboard": (is_tensorboard_available, "tensorboard")}
    if report_to in need and not need[report_to][0]():
        raise TrainingError(f"--report_to {report_to}: the {need[report_to][1]} package is not installed "
                            f"(pip install {need[report_to][1]}), or pass --report_to none")


# ----------------------------------------------------------------------------------------------
# setup: everything that can fail on user input happens before any training work
# ----------------------------------------------------------------------------------------------

def setup(config: TrainConfig, accelerator) -> Run:
    """Output folder, model, data, loaders, optimizer; then ``prepare`` and (if resuming) ``load_state``."""
    from accelerate.utils import set_seed

    set_seed(config.seed)
    resume = find_resume_path(config.output_dir, config.resume_from_checkpoint, config.allow_inexact_resume)
    _report_checkpoint_state(accelerator, config, resume)
    resume_path = resume.path if resume else None
    check_lora_run(config, accelerator, resume_path)
    if resume_path is None:
        # ``auto`` that found no checkpoint restarts its own killed job: its old logs go
        prepare_fresh_output_dir(accelerator, config.output_dir,
                                 config.overwrite_output_dir or config.resume_from_checkpoint == "auto")
    tokenizer = load_tokenizer(config)
    model = load_model(config, tokenizer)
    if resume_path is not None:
        check_checkpoint_fits(model, resume_path, f"--model_name_or_path {config.model_name_or_path}"
                              if config.model_name_or_path else f"--model_config {config.model_config}")
    data = load_training_data(config, accelerator, tokenizer)
    train_tok, eval_tok = data.train, data.eval
    train_dl, eval_dl, sampler = build_loaders(config, tokenizer, train_tok, eval_tok)
    n_embd = getattr(model.config, "n_embd", None) or getattr(model.config, "hidden_size", 768)
    optimizer, scheduler = build_optimizer(config, model, n_embd)
    state = TrainState()
    if config.continue_from:
        apply_continue_from(config.continue_from, state, optimizer, scheduler)
    n_trainable, n_params = parameter_counts(model)  # LoRA: adapters trained, base saved (merged)
    model, optimizer, train_dl, scheduler = accelerator.prepare(model, optimizer, train_dl, scheduler)
    if eval_dl is not None:
        eval_dl = accelerator.prepare(eval_dl)
    if resume_path is not None:
        state = restore(accelerator, resume_path, Path(config.output_dir))
    return Run(config=config, accelerator=accelerator, tokenizer=tokenizer, model=model, optimizer=optimizer,
               scheduler=scheduler, train_dl=train_dl, eval_dl=eval_dl, sampler=sampler, state=state,
               resume_path=resume_path, n_params=n_params, n_embd=n_embd, num_train=len(train_tok),
               num_eval=len(eval_tok) if eval_tok is not None else 0, coverage=data.coverage,
               last_ckpt=resume_path,
               resume_exact=resume.exact if resume else True, n_trainable=n_trainable)


def _report_checkpoint_state(accelerator, config: TrainConfig, resume: ResumePoint | None) -> None:
    """Say which checkpoints were skipped and why, and remove what a killed run left half-written/deleted."""
    if not accelerator.is_main_process:
        return
    for note in resume.notes if resume else []:
        print(f"checkpoints: {note}", flush=True)
    for name in clean_leftovers(config.output_dir):
        print(f"checkpoints: removed {name}, left half-written or half-deleted by a killed run", flush=True)


def restore(accelerator, resume_path: Path, out_dir: Path) -> TrainState:
    """Model/optimizer/scheduler/RNG from the checkpoint; logs cut back to its step."""
    try:
        accelerator.load_state(str(resume_path))
    except Exception as e:  # damage the manifest cannot see (a same-size corrupted weight file)
        raise TrainingError(f"--resume_from_checkpoint {resume_path}: cannot load it ({first_line(e)})") from None
    state = TrainState.from_json((resume_path / "trainer_state.json").read_text())
    if accelerator.is_main_process:
        for name in ("train_log.txt", "eval_log.txt"):
            truncate_log(out_dir / name, state.global_step)
    return state


# ----------------------------------------------------------------------------------------------
# the loop: epochs -> micro-batches -> optimizer steps
# ----------------------------------------------------------------------------------------------

def train_epochs(run: Run, log: RunLog, step_callback: StepCallback | None) -> None:
    """Epochs until ``num_optim_steps`` (or ``num_epochs``); a resumed epoch skips the batches it trained."""
    config, state = run.config, run.state
    if config.eval_on_start and run.eval_dl is not None and state.global_step == 0:
        run_eval(run, log)
        state.initial_eval_loss, state.initial_eval_ppl = state.last_eval_loss, state.last_eval_ppl
    run.model.train()
    done = state.global_step >= config.num_optim_steps
    while not done:
        if config.num_epochs is not None and state.epoch >= config.num_epochs:
            break
        # Accelerate's loader re-seeds the batch sampler with its own iteration counter on every
        # __iter__; set both so a resumed run (fresh counter) sees the same epoch order.
        run.train_dl.set_epoch(state.epoch)
        run.sampler.set_epoch(state.epoch)
        skip = state.batches_in_epoch
        loader = run.accelerator.skip_first_batches(run.train_dl, skip) if skip else run.train_dl
        for batch in loader:
            if micro_step(run, batch):
                done = after_optimizer_step(run, log, step_callback)
                if done:
                    break
        else:
            # the epoch ran out (the seed printed epoch-level means and reset them)
            state.epoch += 1
            state.batches_in_epoch = 0
            state.epoch_loss_sum = state.epoch_ppl_sum = 0.0
            state.epoch_steps = 0
            log.epoch_t0 = time.perf_counter()
    log.flush(state)


def micro_step(run: Run, batch) -> bool:
    """Forward/backward one micro-batch; True when this one completed an optimizer step."""
    acc, model, config = run.accelerator, run.model, run.config
    run.state.batches_in_epoch += 1
    run.state.micro_step += 1
    with acc.accumulate(model):
        # padded: ids, attention_mask, labels; packed: ids, position_ids, labels (no 2D mask: train/packing.py)
        out = model(**model_inputs(batch), use_cache=False)
        acc.backward(out.loss)
        run.micro.append((out.loss.detach(), real_token_count(batch), batch["input_ids"].numel()))
        if acc.sync_gradients and config.max_grad_norm > 0:
            acc.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    return acc.sync_gradients


def after_optimizer_step(run: Run, log: RunLog, step_callback: StepCallback | None) -> bool:
    """Schedule, step line, eval and checkpoint when due, then the callback; True when training is done."""
    config, state, acc = run.config, run.state, run.accelerator
    lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    state.global_step += 1
    losses, reals, totals = zip(*run.micro)
    log.step(state, torch.stack(losses).mean(), torch.stack(reals).sum(),
             torch.tensor(sum(totals), device=acc.device), lr)
    run.micro.clear()
    log.bar.update(1)
    done = state.global_step >= config.num_optim_steps
    if state.global_step % config.logging_steps == 0 or done:
        log.flush(state)
    if run.eval_dl is not None and config.eval_steps and state.global_step % config.eval_steps == 0:
        log.flush(state)
        run_eval(run, log)
    if config.save_steps and state.global_step % config.save_steps == 0:
        log.flush(state)
        state.epoch_time = time.perf_counter() - log.epoch_t0
        run.last_ckpt = save_checkpoint(acc, config.output_dir, state, config, config.save_total_limit)
        log.say(f"saved checkpoint {run.last_ckpt}")
    if step_callback is not None:
        step_callback(state)
    return done


# ----------------------------------------------------------------------------------------------
# evaluation and the end of the run
# ----------------------------------------------------------------------------------------------

def evaluate_loss(accelerator, model, dataloader, pbar: bool = False) -> tuple[float, float, int]:
    """Token-weighted validation loss and perplexity over all processes (``pbar``: a transient bar)."""
    from tqdm.auto import tqdm

    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    n_tok = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    with torch.no_grad():
        for batch in tqdm(dataloader, desc="validation", unit="batch", leave=False, dynamic_ncols=True,
                          disable=not (pbar and accelerator.is_local_main_process)):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            nll, count = token_nll(logits, batch["labels"])
            per_ex = accelerator.gather_for_metrics(torch.stack([nll.double(), count.double()], dim=1))
            loss_sum += per_ex[:, 0].sum()
            n_tok += per_ex[:, 1].sum()
    model.train()
    n = int(n_tok.item())
    loss = float(loss_sum.item() / max(n, 1))
    return loss, ppl(loss), n


def run_eval(run: Run, log: RunLog) -> None:
    loss, eval_ppl, n = evaluate_loss(run.accelerator, run.model, run.eval_dl, pbar=run.config.pbar)
    run.state.last_eval_loss, run.state.last_eval_ppl = loss, eval_ppl
    log.eval_line(run.state, loss, eval_ppl, n)


def finish(run: Run, log: RunLog) -> TrainResult:
    """A last eval unless the final step had one, the final folder, and the optional push."""
    config, state = run.config, run.state
    runtime = time.perf_counter() - log.t_start
    log.bar.close()
    if run.eval_dl is not None and (not config.eval_steps or state.global_step % config.eval_steps != 0
                                    or state.last_eval_loss is None):
        run_eval(run, log)
    log.close()
    result = TrainResult(
        output_dir=str(Path(config.output_dir)), global_step=state.global_step, epoch=state.epoch,
        train_loss=log.loss_history[-1] if log.loss_history else None, eval_loss=state.last_eval_loss,
        eval_ppl=state.last_eval_ppl, tokens_per_sec=log.tokens_per_sec(runtime),
        padding_efficiency=state.tokens_real / max(state.tokens_total, 1), train_runtime=runtime,
        num_processes=run.accelerator.num_processes, num_train_examples=run.num_train,
        num_parameters=run.n_params, trainable_parameters=run.n_trainable, loss_history=log.loss_history,
        checkpoint_dir=str(run.last_ckpt) if run.last_ckpt else None, data_coverage=run.coverage.as_dict(),
        initial_eval_loss=state.initial_eval_loss, initial_eval_ppl=state.initial_eval_ppl,
    )
    save_final(run.accelerator, run.model, run.tokenizer, config, result)
    if config.push_to_hub:
        result.hub_url = push_folder(run.accelerator, Path(config.output_dir), config)
        log.say(f"pushed {config.output_dir} to {config.hub_model_id}")
    run.accelerator.wait_for_everyone()
    return result
