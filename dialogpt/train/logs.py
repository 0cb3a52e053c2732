"""What a run tells the user while it trains: ``train_log.txt`` / ``eval_log.txt``, step lines, trackers.

The two CSV logs keep the seed's columns (epoch, global_step, step, loss, ppl, token counts, epoch
time) plus tokens/s, lr and padding efficiency. Step figures are reduced across processes in one
go every ``logging_steps`` steps (:meth:`RunLog.flush`): a ``.item()`` per step would stall the GPU.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from dialogpt.train.checkpointing import TrainState, write_hyperparameters
from dialogpt.train.config import TrainConfig
from dialogpt.train.data import padding_efficiency
from dialogpt.train.lora import describe
from dialogpt.train.throughput import mfu_meter

TRAIN_LOG_HEADER = ("epoch,global_step,step,loss,ppl,mean_loss,mean_ppl,n_token_real,n_token_total,"
                    "tokens_per_sec,lr,padding_efficiency,epoch_time")
EVAL_LOG_HEADER = "epoch,global_step,step,eval_loss,eval_ppl,eval_tokens"


def ppl(loss: float) -> float:
    """exp(loss), inf instead of an OverflowError for a diverged run."""
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


def open_log(path: Path, header: str):
    """Append to a CSV log (a resumed run continues it), writing the header if the file is new."""
    new = not path.exists() or path.stat().st_size == 0
    f = open(path, "a", encoding="utf-8", buffering=1)
    if new:
        f.write(header + "\n")
    return f


class Printer:
    """stdout on the main process, routed through tqdm so the bar is not torn."""

    def __init__(self, accelerator, bar):
        self.main = accelerator.is_main_process
        self.bar = bar

    def __call__(self, msg: str) -> None:
        if not self.main:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(msg)
        else:
            print(msg, flush=True)


class RunLog:
    """Step and eval lines of one run: files on the main process, stdout, trackers, the loss history."""

    def __init__(self, accelerator, config: TrainConfig, bar, state: TrainState):
        self.accelerator = accelerator
        self.config = config
        self.bar = bar
        self.say = Printer(accelerator, bar)
        self.train_f = self.eval_f = None
        if accelerator.is_main_process:
            out = Path(config.output_dir)
            self.train_f = open_log(out / "train_log.txt", TRAIN_LOG_HEADER)
            self.eval_f = open_log(out / "eval_log.txt", EVAL_LOG_HEADER)
        self.pending: list[tuple] = []
        self.loss_history: list[float] = []
        self.run_tokens_real = 0
        self.mfu = None  # tokens/s -> MFU, set by start_logs when the device's peak is known
        self.start(state)

    def start(self, state: TrainState) -> None:
        """Start the clocks (tokens/s counts training time only, not setup); a resumed epoch keeps its time."""
        self.t_start = time.perf_counter()
        self.epoch_t0 = self.t_start - state.epoch_time

    def step(self, state: TrainState, loss: torch.Tensor, real: torch.Tensor, total: torch.Tensor,
             lr: float) -> None:
        """Remember one optimizer step's figures (still on the device) until the next flush."""
        self.pending.append((state.epoch, state.global_step, state.micro_step, loss, real, total, lr))

    def flush(self, state: TrainState) -> None:
        """Write the pending step lines (one sync for many steps: no per-step ``.item()`` stall)."""
        if not self.pending:
            return
        acc = self.accelerator
        losses = acc.reduce(torch.stack([p[3] for p in self.pending]).float(), reduction="mean").tolist()
        reals = acc.reduce(torch.stack([p[4] for p in self.pending]), reduction="sum").tolist()
        totals = acc.reduce(torch.stack([p[5] for p in self.pending]), reduction="sum").tolist()
        now = time.perf_counter()
        for (epoch, step, micro_step, _, _, _, lr), loss, real, total in zip(self.pending, losses, reals, totals):
            state.epoch_loss_sum += loss
            state.epoch_ppl_sum += ppl(loss)
            state.epoch_steps += 1
            state.tokens_real += int(real)
            state.tokens_total += int(total)
            self.run_tokens_real += int(real)
            self.loss_history.append(loss)
            tps = self.run_tokens_real / max(now - self.t_start, 1e-9)
            eff = state.tokens_real / max(state.tokens_total, 1)
            if self.train_f is not None:
                self.train_f.write(
                    f"{epoch + 1},{step},{micro_step},{loss:.6f},{ppl(loss):.4f},"
                    f"{state.epoch_loss_sum / state.epoch_steps:.6f},{state.epoch_ppl_sum / state.epoch_steps:.4f},"
                    f"{state.tokens_real},{state.tokens_total},{tps:.1f},{lr:.6e},{eff:.4f},"
                    f"{now - self.epoch_t0:.2f}\n")
        self._report_last(state, loss, lr, tps, eff, now)
        self.pending.clear()

    def _report_last(self, state: TrainState, loss: float, lr: float, tps: float, eff: float, now: float) -> None:
        if self.train_f is not None:
            self.train_f.flush()
        mfu = self.mfu(tps) if self.mfu else None
        self.say(f"step {state.global_step}: loss {loss:.4f}, ppl {ppl(loss):.2f}, lr {lr:.3e}, "
                 f"{tps:,.0f} tok/s{'' if mfu is None else f', MFU {mfu:.1%}'}, padding eff {eff:.3f}, "
                 f"epoch {self.pending[-1][0] + 1}, "
                 f"{now - self.t_start:.1f}s")
        self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:,.0f}")
        if self.config.report_to != "none":
            self.accelerator.log({"train/loss": loss, "train/ppl": ppl(loss), "train/lr": lr,
                                  "train/tokens_per_sec": tps, "train/padding_efficiency": eff,
                                  **({} if mfu is None else {"train/mfu": mfu})}, step=state.global_step)

    def eval_line(self, state: TrainState, loss: float, eval_ppl: float, n_tokens: int) -> None:
        if self.eval_f is not None:
            self.eval_f.write(f"{state.epoch + 1},{state.global_step},{state.micro_step},{loss:.6f},"
                              f"{eval_ppl:.4f},{n_tokens}\n")
            self.eval_f.flush()
        self.say(f"eval at step {state.global_step}: loss {loss:.4f}, ppl {eval_ppl:.2f} ({n_tokens} tokens)")
        if self.config.report_to != "none":
            self.accelerator.log({"eval/loss": loss, "eval/ppl": eval_ppl}, step=state.global_step)

    def tokens_per_sec(self, runtime: float) -> float:
        return self.run_tokens_real / max(runtime, 1e-9)

    def close(self) -> None:
        for f in (self.train_f, self.eval_f):
            if f is not None:
                f.close()
        self.train_f = self.eval_f = None


def start_logs(run) -> RunLog:
    """hyperparameters.yaml, the CSV logs, trackers, the progress bar and the startup summary.

    ``run`` is the loop's :class:`dialogpt.train.loop.Run` (everything setup built).
    """
    from tqdm.auto import tqdm

    config, acc = run.config, run.accelerator
    out_dir = Path(config.output_dir)
    if acc.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_hyperparameters(out_dir / "hyperparameters.yaml", config,
                              {"num_processes": acc.num_processes, "num_parameters": run.n_params})
    if config.report_to != "none":
        acc.init_trackers("dialogpt", config={k: v for k, v in config.to_dict().items()
                                               if isinstance(v, (int, float, str, bool))})
    bar = tqdm(total=config.num_optim_steps, initial=run.state.global_step, desc="training", unit="step",
               disable=not (acc.is_local_main_process and config.pbar), dynamic_ncols=True)
    log = RunLog(acc, config, bar, run.state)
    peak, meter = mfu_meter(acc.unwrap_model(run.model).config, config.max_seq_length, acc.device,
                            acc.num_processes, config.peak_tflops)
    log.mfu = meter if peak else None
    log.say(summary(run) + f"\n  attention / batches / compile = {config.attn_implementation} / "
            f"{'packed rows' if config.packing else 'length buckets'} / "
            f"{config.torch_compile_backend if config.torch_compile else 'off'}; MFU "
            + (f"against {peak:g} TFLOPS per device" if peak else "not shown (no known peak: --peak_tflops)"))
    log.start(run.state)
    return log


def summary(run) -> str:
    """run_clm_no_trainer's "Running training" block with the seed's figures (STYLE.md #12)."""
    config, acc = run.config, run.accelerator
    steps_per_epoch = math.ceil(len(run.train_dl) / config.gradient_accumulation_steps)
    packed_plan = getattr(run.sampler, "real_token_fraction", None)  # packed: rows x width, empty rows counted
    plan_eff = packed_plan() if packed_plan else padding_efficiency(run.sampler.lengths, run.sampler.batches())
    return ("***** Running training *****\n"
            f"  processes (world size)       = {acc.num_processes} ({acc.distributed_type}, "
            f"device {acc.device}, mixed precision {acc.mixed_precision})\n"
            f"  model                        = {config.model_name_or_path or config.model_config}, "
            f"{run.n_params / 1e6:.2f}M parameters, n_embd {run.n_embd}\n"
            f"  trained parameters           = {describe(config, run.n_trainable, run.n_params)}\n"
            f"  training examples (windows)  = {run.num_train}{' [reverse / MMI]' if config.reverse else ''}\n"
            f"  validation examples          = {run.num_eval}\n"
            f"  {run.coverage.describe()}\n"
            f"  micro-batch per device       = {config.micro_batch_size} (train_batch_size "
            f"{config.train_batch_size} / accumulation {config.gradient_accumulation_steps})\n"
            f"  total batch per optim step   = {config.train_batch_size * acc.num_processes} examples\n"
            f"  optimizer steps              = {config.num_optim_steps} ({steps_per_epoch} per epoch), "
            f"starting at {run.state.global_step}\n"
            f"  lr schedule                  = {config.lr_schedule}, lr {config.learning_rate:g}, "
            f"warmup {config.warmup_steps} steps / {config.warmup_proportion} of training\n"
            f"  max_seq_length               = {config.max_seq_length}; padding efficiency of the batch plan "
            f"{plan_eff:.3f} (real/padded tokens)"
            + (f"\n  resumed from                 = {run.resume_path}"
               f"{'' if run.resume_exact else ' (NOT exact: no RNG state, --allow_inexact_resume)'}"
               if run.resume_path else ""))
