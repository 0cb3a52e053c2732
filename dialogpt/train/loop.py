"""The seed's ``LSP_train.py`` on Accelerate: config, model setup, the loop, logs, checkpoints, resume.

``train(TrainConfig(...))`` is the library entry point (the CLI in :mod:`dialogpt.cli.train` and
``make demo`` both call it). It runs unchanged under one CPU, ``accelerate launch`` with DDP,
FSDP or DeepSpeed, with ``--mixed_precision no|fp16|bf16``.

What is matched on purpose (see DESIGN.md):

* ``train_batch_size`` keeps the seed's meaning: examples per device per *optimizer step*; each
  micro-batch is ``train_batch_size // gradient_accumulation_steps`` (the seed asserted the
  division is exact and printed both numbers);
* the lr schedules (``noam``, ``noamwd``, ``BERT``, ``None``) use the seed's formulas, indexed by
  the number of optimizer steps taken (:mod:`dialogpt.train.schedules`);
* ``train_log.txt`` / ``eval_log.txt`` are CSV with the seed's columns (epoch, global_step, step,
  loss, ppl, token counts, epoch time) plus tokens/s, lr and padding efficiency;
* ``--continue_from N`` starts the counters and the schedule at optimizer step N, as the seed did
  (``global_step = N``, ``step = 2N - 1``); it restores no optimizer state or data position:
  ``--resume_from_checkpoint`` does that.

Where we differ: AdamW with bias correction and one global gradient-norm clip replace the seed's
per-parameter clip inside its bias-correction-free Adam; losses are HF's token mean per micro-batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dialogpt.errors import first_line
from dialogpt.train.schedules import SCHEDULES, lr_lambda

MODEL_SHAPES: dict[str, dict[str, int]] = {
    # name: GPT-2 shapes from DESIGN.md (117M / 345M / 762M) plus the 2-layer test model
    "tiny": dict(n_layer=2, n_embd=64, n_head=2, n_positions=256),  # = tests/conftest.py TINY_GPT2
    "small": dict(n_layer=12, n_embd=768, n_head=12),
    "medium": dict(n_layer=24, n_embd=1024, n_head=16),
    "large": dict(n_layer=36, n_embd=1280, n_head=20),
}
N_POSITIONS = 1024
MIXED_PRECISION = ("no", "fp16", "bf16")
REPORT_TO = ("none", "tensorboard", "wandb", "all")
CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
TRAIN_LOG_HEADER = ("epoch,global_step,step,loss,ppl,mean_loss,mean_ppl,n_token_real,n_token_total,"
                    "tokens_per_sec,lr,padding_efficiency,epoch_time")
EVAL_LOG_HEADER = "epoch,global_step,step,eval_loss,eval_ppl,eval_tokens"
_SECRET_FIELDS = ("hub_token",)


class TrainingError(ValueError):
    """A user mistake found before (or instead of) training: one line, naming the flag or file."""


@dataclass
class TrainConfig:
    """Every knob of a training run. Defaults are the seed's (``LSP_train.py``) where it had one."""

    output_dir: str = "runs/dialogpt"
    # --- data ---
    dataset: str | None = None
    """A built dialogue dataset: a directory or hub id read with ``datasets.load_dataset``."""
    train_file: str | None = None
    """The seed's ``train.tsv`` (``0.0 turn EOS 1.0 turn\\t1.0 response``), instead of --dataset."""
    eval_file: str | None = None
    """A ``train.tsv``-format validation file (else the dataset's --eval_split, if it has one)."""
    train_split: str = "train"
    eval_split: str | None = "validation"
    reverse: bool = False
    """Train the MMI backward model: response -> source (``chat_format.encode_reverse``)."""
    max_seq_length: int = 128
    preprocessing_num_workers: int | None = None
    """``num_proc`` of the tokenising ``datasets.map``."""
    bucket_batches: int = 100
    """Batches per length-sorting pool (the seed's BucketSampler used 100)."""
    pad_to_multiple_of: int | None = None
    """Pad each batch to a multiple of this (8 helps fp16 tensor cores on GPU)."""
    dataloader_num_workers: int = 0
    # --- model ---
    model_name_or_path: str | None = None
    """Hub id or folder to fine-tune, e.g. microsoft/DialoGPT-medium."""
    model_config: str | None = None
    """tiny|small|medium|large (or a config.json path): train from scratch."""
    tokenizer_name: str | None = None
    """Tokenizer (hub id or folder); defaults to --model_name_or_path."""
    init_checkpoint: str | None = None
    """An original DialoGPT .pkl to start from (converted per DESIGN.md)."""
    dropout: float | None = None
    """Override resid/embd/attn dropout (None keeps the model's)."""
    gradient_checkpointing: bool = False
    # --- optimisation ---
    train_batch_size: int = 4
    """Examples per device per optimizer step (the seed's meaning; split into micro-batches)."""
    gradient_accumulation_steps: int = 2
    eval_batch_size: int = 4
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    max_grad_norm: float = 1.0
    lr_schedule: str = "noam"
    warmup_steps: int = 16000
    warmup_proportion: float = 0.1
    num_optim_steps: int = 1_000_000
    num_epochs: int | None = None
    """Optional cap on epochs (training stops at whichever of this and num_optim_steps comes first)."""
    mixed_precision: str = "no"
    seed: int = 42
    cpu: bool = False
    # --- logging, evaluation, checkpoints ---
    logging_steps: int = 10
    eval_steps: int = 10000
    """Validation every N optimizer steps (the seed's --valid_step); 0 = only at the end."""
    max_eval_examples: int | None = None
    save_steps: int = 10000
    """Checkpoint every N optimizer steps; 0 = none."""
    save_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    """latest | auto | PATH. latest fails if there is none; auto starts fresh then."""
    continue_from: int = 0
    overwrite_output_dir: bool = False
    """A fresh run into a folder that holds another run's logs/checkpoints: delete those first."""
    report_to: str = "none"
    pbar: bool = True
    # --- hub ---
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_private: bool = False
    hub_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject clashing or impossible options, naming the flags (cheap checks, no I/O)."""
        def bad(msg: str) -> None:
            raise TrainingError(msg)

        if self.lr_schedule not in SCHEDULES:
            bad(f"--lr_schedule {self.lr_schedule!r} is not one of {', '.join(SCHEDULES)}")
        if (self.dataset is None) == (self.train_file is None):
            bad("give exactly one of --dataset and --train_file")
        if self.model_name_or_path and self.model_config:
            bad("--model_name_or_path and --model_config clash: fine-tune one or build one from scratch")
        if not self.model_name_or_path and not self.model_config:
            bad("give --model_name_or_path (fine-tune) or --model_config tiny|small|medium|large (from scratch)")
        if self.model_config and not self.tokenizer_name:
            bad("--model_config builds a model from scratch and needs --tokenizer_name (e.g. gpt2)")
        if self.mixed_precision not in MIXED_PRECISION:
            bad(f"--mixed_precision {self.mixed_precision!r} is not one of {', '.join(MIXED_PRECISION)}")
        if self.report_to not in REPORT_TO:
            bad(f"--report_to {self.report_to!r} is not one of {', '.join(REPORT_TO)}")
        for name in ("train_batch_size", "gradient_accumulation_steps", "eval_batch_size", "num_optim_steps",
                     "logging_steps"):
            if getattr(self, name) < 1:
                bad(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_epochs", "pad_to_multiple_of", "max_eval_examples", "preprocessing_num_workers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                bad(f"--{name} must be >= 1 when given, got {getattr(self, name)}")
        if self.bucket_batches < 1:
            bad(f"--bucket_batches must be >= 1, got {self.bucket_batches}")
        if self.dataloader_num_workers < 0:
            bad(f"--dataloader_num_workers must be >= 0, got {self.dataloader_num_workers}")
        if self.train_batch_size % self.gradient_accumulation_steps:
            bad(f"--train_batch_size {self.train_batch_size} is not divisible by --gradient_accumulation_steps "
                f"{self.gradient_accumulation_steps} (the seed's rule: the batch is split into micro-batches)")
        if self.max_seq_length < 2:
            bad(f"--max_seq_length must be >= 2, got {self.max_seq_length}")
        if self.learning_rate <= 0:
            bad(f"--learning_rate must be > 0, got {self.learning_rate}")
        if self.eval_steps < 0 or self.save_steps < 0:
            bad("--eval_steps and --save_steps must be >= 0")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            bad(f"--save_total_limit must be >= 1, got {self.save_total_limit}")
        if self.continue_from < 0:
            bad(f"--continue_from must be >= 0, got {self.continue_from}")
        if self.continue_from and self.resume_from_checkpoint:
            bad("--continue_from and --resume_from_checkpoint clash: resume restores the step itself")
        if self.continue_from >= self.num_optim_steps:
            if self.continue_from:
                bad(f"--continue_from {self.continue_from} >= --num_optim_steps {self.num_optim_steps}: nothing to do")
        if self.overwrite_output_dir and self.resume_from_checkpoint:
            bad("--overwrite_output_dir and --resume_from_checkpoint clash: one starts over, the other continues")
        if self.init_checkpoint and self.resume_from_checkpoint:
            bad("--init_checkpoint and --resume_from_checkpoint clash: a resumed run already has its weights")
        if self.push_to_hub and not self.hub_model_id:
            bad("--push_to_hub needs --hub_model_id org/name")
        if self.hub_model_id and self.hub_model_id.count("/") > 1:
            bad(f"--hub_model_id {self.hub_model_id!r} must look like org/name")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            bad(f"--dropout must be in [0, 1), got {self.dropout}")
        # the schedule's own parameter checks (warmup_steps >= 1, warmup_proportion in (0, 1))
        try:
            lr_lambda(self.lr_schedule, warmup_steps=self.warmup_steps, warmup_proportion=self.warmup_proportion,
                      n_embd=1, num_optim_steps=self.num_optim_steps)
        except ValueError as e:
            bad(str(e))

    @property
    def micro_batch_size(self) -> int:
        return self.train_batch_size // self.gradient_accumulation_steps

    def to_dict(self, redact: bool = True) -> dict:
        d = dataclasses.asdict(self)
        if redact:
            for k in _SECRET_FIELDS:
                if d.get(k):
                    d[k] = "***"
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclass
class TrainResult:
    """What a run produced, for callers (the demo, the benchmark, tests)."""

    output_dir: str
    global_step: int
    epoch: int
    train_loss: float | None
    eval_loss: float | None
    eval_ppl: float | None
    tokens_per_sec: float
    padding_efficiency: float
    train_runtime: float
    num_processes: int
    num_train_examples: int
    num_parameters: int
    loss_history: list[float] = field(default_factory=list)
    checkpoint_dir: str | None = None
    hub_url: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainState:
    """The loop's position; saved as ``trainer_state.json`` next to every ``save_state``."""

    global_step: int = 0
    micro_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    epoch_loss_sum: float = 0.0
    epoch_ppl_sum: float = 0.0
    epoch_steps: int = 0
    epoch_time: float = 0.0
    tokens_real: int = 0
    tokens_total: int = 0
    last_eval_loss: float | None = None
    last_eval_ppl: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        d = json.loads(text)
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


# ----------------------------------------------------------------------------------------------
# model and tokenizer
# ----------------------------------------------------------------------------------------------

def build_model_config(name_or_path: str, vocab_size: int, eos_token_id: int | None = None,
                       dropout: float | None = None):
    """tiny/small/medium/large (or a config.json) -> ``GPT2Config`` with n_ctx 1024."""
    from transformers import GPT2Config

    if name_or_path in MODEL_SHAPES:
        ids = {} if eos_token_id is None else dict(bos_token_id=eos_token_id, eos_token_id=eos_token_id,
                                                   pad_token_id=eos_token_id)
        shape = {"n_positions": N_POSITIONS, **MODEL_SHAPES[name_or_path]}
        cfg = GPT2Config(vocab_size=vocab_size, **ids, **shape)
    elif Path(name_or_path).is_file():
        cfg = GPT2Config.from_json_file(name_or_path)
        cfg.vocab_size = vocab_size
    else:
        raise TrainingError(f"--model_config {name_or_path!r} is not one of {', '.join(MODEL_SHAPES)} "
                            "nor a config.json file")
    if eos_token_id is not None:
        cfg.bos_token_id = cfg.eos_token_id = cfg.pad_token_id = eos_token_id
    if dropout is not None:
        cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = dropout
    return cfg


def load_tokenizer(config: TrainConfig):
    from transformers import AutoTokenizer

    from dialogpt.chat_format import install_chat_template

    name = config.tokenizer_name or config.model_name_or_path
    flag = "--tokenizer_name" if config.tokenizer_name else "--model_name_or_path"
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except Exception as e:
        raise TrainingError(f"{flag} {name}: cannot load a tokenizer ("
                            f"{first_line(e)})") from None
    install_chat_template(tok)
    return tok


def load_model(config: TrainConfig, tokenizer):
    """Build or load the GPT-2, apply --init_checkpoint, and check it against the options."""
    from transformers import AutoModelForCausalLM, GPT2LMHeadModel

    if config.model_name_or_path:
        kwargs = {}
        if config.dropout is not None:
            kwargs = dict(resid_pdrop=config.dropout, embd_pdrop=config.dropout, attn_pdrop=config.dropout)
        try:
            model = AutoModelForCausalLM.from_pretrained(config.model_name_or_path, **kwargs)
        except Exception as e:
            raise TrainingError(f"--model_name_or_path {config.model_name_or_path}: cannot load "
                                f"({first_line(e)})") from None
    else:
        cfg = build_model_config(config.model_config, vocab_size=len(tokenizer),
                                 eos_token_id=tokenizer.eos_token_id, dropout=config.dropout)
        model = GPT2LMHeadModel(cfg)
    n_pos = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if n_pos is not None and config.max_seq_length > n_pos:
        raise TrainingError(f"--max_seq_length {config.max_seq_length} > the model's n_positions {n_pos}")
    emb = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > emb:
        raise TrainingError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding has {emb} rows: "
                            "--tokenizer_name does not belong to this model")
    if config.init_checkpoint:
        from dialogpt.train.model import CheckpointError, load_into_model, load_legacy_checkpoint

        try:
            load_into_model(model, load_legacy_checkpoint(config.init_checkpoint), source=config.init_checkpoint)
        except CheckpointError as e:
            raise TrainingError(str(e)) from None
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False
    return model


def dialogue_generation_config(tokenizer, max_new_tokens: int = 64):
    """Decoding defaults saved with the model: stop at EOS (the end of a turn), pad with EOS.

    Greedy with a length cap, as the seed evaluated; chat front-ends may sample instead.
    """
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=max_new_tokens, do_sample=False,
    )


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------

def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``step-NNNNNN`` folders (complete ones only: a folder is renamed in when fully written)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def find_resume_path(output_dir: str | os.PathLike, resume: str | None) -> Path | None:
    """latest -> the highest step folder (error if none); auto -> the same or None; else a path."""
    if not resume:
        return None
    if resume in ("latest", "auto"):
        ckpts = list_checkpoints(output_dir)
        if not ckpts:
            if resume == "auto":
                return None
            raise TrainingError(f"--resume_from_checkpoint latest: no step-NNNNNN checkpoint in "
                                f"{checkpoint_root(output_dir)}")
        return ckpts[-1]
    p = Path(resume)
    if not (p / "trainer_state.json").is_file():
        raise TrainingError(f"--resume_from_checkpoint {p}: not a checkpoint folder (no trainer_state.json)")
    return p


def check_checkpoint_fits(model, checkpoint: Path, model_flag: str = "the model options") -> None:
    """Refuse (one line, before any data work) to resume a checkpoint saved from another model shape.

    Reads only the shapes in the checkpoint's ``model.safetensors`` header; FSDP/DeepSpeed shard
    folders have none and are left to ``load_state``.
    """
    f = Path(checkpoint) / "model.safetensors"
    if not f.is_file():
        return
    from safetensors import safe_open

    try:
        with safe_open(str(f), framework="pt") as st:
            theirs = {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}
    except Exception as e:
        raise TrainingError(f"--resume_from_checkpoint {checkpoint}: unreadable model.safetensors "
                            f"({first_line(e)})") from None
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    bad = [f"{k}: checkpoint {theirs[k]} vs model {own[k]}" for k in theirs if k in own and theirs[k] != own[k]]
    unexpected = [k for k in theirs if k not in own]
    if bad or unexpected:
        detail = "; ".join(bad[:2]) if bad else f"unexpected weights {unexpected[:3]}"
        raise TrainingError(f"--resume_from_checkpoint {checkpoint} was saved from another model shape than "
                            f"{model_flag} gives: {detail}")


RUN_FILES = ("train_log.txt", "eval_log.txt")
RUN_DIRS = ("checkpoints", "runs")


def existing_run(output_dir: str | os.PathLike) -> str | None:
    """What another run left in ``output_dir`` (checkpoints, or a log with step lines), else None."""
    out = Path(output_dir)
    ckpts = list_checkpoints(out)
    if ckpts:
        return f"checkpoints up to {ckpts[-1].name}"
    log = out / "train_log.txt"
    if log.is_file() and sum(1 for _ in log.open()) > 1:
        return "a train_log.txt with step lines"
    return None


def prepare_fresh_output_dir(accelerator, output_dir: str | os.PathLike, overwrite: bool) -> None:
    """A fresh run must not append to another run's logs, nor let its old checkpoints be taken for
    ``latest`` or survive ``--save_total_limit`` instead of the new ones: refuse, or with
    ``overwrite`` delete just what a run writes here (logs, ``checkpoints/``, ``runs/``)."""
    found = existing_run(output_dir)
    if found is None:
        return
    out = Path(output_dir)
    if not overwrite:
        raise TrainingError(f"--output_dir {out} already holds a run ({found}): pass --resume_from_checkpoint "
                            "latest to continue it, --overwrite_output_dir to start over, or another --output_dir")
    accelerator.wait_for_everyone()  # every rank has looked before the main one deletes
    if accelerator.is_main_process:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator, output_dir: str, state: TrainState, config: TrainConfig,
                    save_total_limit: int | None) -> Path:
    """``accelerator.save_state`` into a temporary folder, then an atomic rename to ``step-NNNNNN``.

    A run killed mid-save leaves only a ``.tmp-`` folder, which ``latest`` never picks.
    """
    root = checkpoint_root(output_dir)
    final = root / f"step-{state.global_step:06d}"
    tmp = root / f".tmp-step-{state.global_step:06d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # every rank writes its RNG state; main writes the rest
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "trainer_state.json").write_text(state.to_json())
        write_hyperparameters(tmp / "hyperparameters.yaml", config)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if save_total_limit:
            for old in list_checkpoints(output_dir)[:-save_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def write_hyperparameters(path: Path, config: TrainConfig, extra: dict | None = None) -> None:
    """The run's config (token redacted) so any run can be repeated from its folder."""
    import yaml

    d = config.to_dict(redact=True)
    if extra:
        d.update(extra)
    path.write_text(yaml.safe_dump(d, sort_keys=False))


def _truncate_log(path: Path, max_step: int) -> None:
    """Drop lines a killed run wrote after the checkpoint we resume from (steps > max_step)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    keep = [ln for ln in lines if not ln[:1].isdigit() or int(ln.split(",")[1]) <= max_step]
    path.write_text("".join(x + "\n" for x in keep))


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------

def _reset_accelerate_state() -> None:
    """Allow several ``train()`` calls in one process (tests, the demo) with different precisions."""
    try:
        import torch.distributed as dist
        from accelerate.state import AcceleratorState

        if not (dist.is_available() and dist.is_initialized()):
            AcceleratorState._reset_state(reset_partial_state=True)
    except Exception:  # pragma: no cover - best effort, older accelerate
        pass


def _param_groups(model, weight_decay: float):
    # the seed: no decay for biases and LayerNorm ("bias", "ln" in the name)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if any(nd in n for nd in ("bias", "ln")) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _ppl(loss: float) -> float:
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


class _Printer:
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


def evaluate_loss(accelerator, model, dataloader, pbar: bool = False) -> tuple[float, float, int]:
    """Token-weighted validation loss and perplexity over all processes (``pbar``: a transient bar)."""
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    n_tok = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    with torch.no_grad():
        for batch in tqdm(dataloader, desc="validation", unit="batch", leave=False, dynamic_ncols=True,
                          disable=not (pbar and accelerator.is_local_main_process)):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            tok = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels, ignore_index=-100,
                                  reduction="none")
            per_ex = torch.stack([tok.sum(1).double(), (labels != -100).sum(1).double()], dim=1)
            per_ex = accelerator.gather_for_metrics(per_ex)
            loss_sum += per_ex[:, 0].sum()
            n_tok += per_ex[:, 1].sum()
    model.train()
    n = int(n_tok.item())
    loss = float(loss_sum.item() / max(n, 1))
    return loss, _ppl(loss), n


def train(config: TrainConfig, step_callback: Callable[[TrainState], None] | None = None) -> TrainResult:
    """Train a DialoGPT model as ``config`` says; returns figures and where things were written.

    ``step_callback(state)`` is called on every process after each optimizer step (after any
    checkpoint of that step): the demo drives progress with it and the resume test "kills" the
    run from it by raising.
    """
    config.validate()
    _reset_accelerate_state()
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    out_dir = Path(config.output_dir)
    check_tracker_installed(config.report_to)
    log_with = None if config.report_to == "none" else config.report_to
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.gradient_accumulation_steps,
        cpu=config.cpu, log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(out_dir), logging_dir=str(out_dir / "runs")),
        # one scheduler step per optimizer step, never num_processes of them (transformers #18436)
        step_scheduler_with_optimizer=False,
    )
    try:
        sync_accelerate_config(accelerator, config)
        return _train(config, accelerator, step_callback)
    finally:
        with contextlib.suppress(Exception):
            accelerator.end_training()
        accelerator.free_memory()


def check_tracker_installed(report_to: str) -> None:
    """``--report_to wandb`` without wandb would be dropped by Accelerate with a warning: fail instead."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    need = {"wandb": (is_wandb_available, "wandb"), "tensorboard": (is_tensorboard_available, "tensorboard")}
    if report_to in need and not need[report_to][0]():
        raise TrainingError(f"--report_to {report_to}: the {need[report_to][1]} package is not installed "
                            f"(pip install {need[report_to][1]}), or pass --report_to none")


def sync_accelerate_config(accelerator, config: TrainConfig) -> None:
    """Make the launcher's settings and the script's flags agree, or stop with one line.

    ``accelerate launch`` exports ``ACCELERATE_GRADIENT_ACCUMULATION_STEPS`` (a DeepSpeed config's
    ``gradient_accumulation_steps``, or the user's environment), which silently overrides the value
    passed to ``Accelerator``; the micro-batch size (``train_batch_size / accumulation``) would then
    no longer mean what the flags say. Under DeepSpeed, clipping is done by the engine: its
    ``gradient_clipping`` is taken from ``--max_grad_norm`` and ``train_micro_batch_size_per_gpu``
    from the micro-batch size when the config leaves them ``auto``.
    """
    got = accelerator.gradient_accumulation_steps
    if got != config.gradient_accumulation_steps:
        raise TrainingError(
            f"the accelerate launch config / ACCELERATE_GRADIENT_ACCUMULATION_STEPS sets gradient accumulation "
            f"to {got} but --gradient_accumulation_steps is {config.gradient_accumulation_steps}: make them equal "
            "(or drop gradient_accumulation_steps from the accelerate config)")
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    for key in ("gradient_accumulation_steps",):
        if ds.get(key, "auto") not in ("auto", config.gradient_accumulation_steps):
            raise TrainingError(f"the DeepSpeed config's {key} {ds[key]} differs from --gradient_accumulation_steps "
                                f"{config.gradient_accumulation_steps}: make them equal or set it to auto")
    # our loaders use a batch_sampler (batch_size None), from which Accelerate cannot fill DeepSpeed's "auto"
    micro = ds.get("train_micro_batch_size_per_gpu", "auto")
    if micro == "auto":
        ds["train_micro_batch_size_per_gpu"] = config.micro_batch_size
    elif int(micro) != config.micro_batch_size:
        raise TrainingError(f"the DeepSpeed config's train_micro_batch_size_per_gpu {micro} differs from "
                            f"--train_batch_size / --gradient_accumulation_steps = {config.micro_batch_size}: "
                            "make them equal or set it to auto")
    clip = ds.get("gradient_clipping", "auto")
    if clip == "auto":
        ds["gradient_clipping"] = config.max_grad_norm
    elif float(clip) != config.max_grad_norm:
        raise TrainingError(f"the DeepSpeed config's gradient_clipping {clip} differs from --max_grad_norm "
                            f"{config.max_grad_norm}: make them equal or set it to auto")


def _train(config: TrainConfig, accelerator, step_callback) -> TrainResult:
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from dialogpt.train.data import (
        DialogCollator,
        LengthBucketBatchSampler,
        load_session_splits,
        padding_efficiency,
        tokenize_sessions,
    )

    out_dir = Path(config.output_dir)
    set_seed(config.seed)
    resume_path = find_resume_path(out_dir, config.resume_from_checkpoint)
    if resume_path is None:
        # ``auto`` that found no checkpoint restarts its own killed job: its old logs go
        prepare_fresh_output_dir(accelerator, out_dir,
                                 config.overwrite_output_dir or config.resume_from_checkpoint == "auto")

    # ---- everything that can fail on user input happens before any training work ----
    tokenizer = load_tokenizer(config)
    model = load_model(config, tokenizer)
    if resume_path is not None:
        check_checkpoint_fits(model, resume_path, f"--model_name_or_path {config.model_name_or_path}"
                              if config.model_name_or_path else f"--model_config {config.model_config}")
    try:
        train_raw, eval_raw = load_session_splits(config.dataset, config.train_file, config.eval_file,
                                                  config.train_split, config.eval_split)
    except (OSError, ValueError) as e:
        raise TrainingError((str(e).strip().splitlines() or [first_line(e)])[0]) from None
    if len(train_raw) == 0:
        raise TrainingError(f"the training data ({config.dataset or config.train_file}) is empty")
    if config.max_eval_examples and eval_raw is not None:
        eval_raw = eval_raw.select(range(min(len(eval_raw), config.max_eval_examples)))
    with accelerator.main_process_first():
        train_tok, train_stats = tokenize_sessions(train_raw, tokenizer, config.max_seq_length, config.reverse,
                                                   config.preprocessing_num_workers, "tokenising train")
        eval_tok = None
        if eval_raw is not None and len(eval_raw):
            eval_tok, _ = tokenize_sessions(eval_raw, tokenizer, config.max_seq_length, config.reverse,
                                            config.preprocessing_num_workers, "tokenising eval")
    if len(train_tok) == 0:
        raise TrainingError("no training session has a trained turn after tokenising "
                            f"({train_stats.dropped_no_labels} dropped): check the weights in the data")

    lengths = train_tok["length"]
    micro = config.micro_batch_size
    sampler = LengthBucketBatchSampler(lengths, micro, config.bucket_batches, seed=config.seed)
    collator = DialogCollator(tokenizer.pad_token_id, config.pad_to_multiple_of)
    loader_kwargs = dict(collate_fn=collator, num_workers=config.dataloader_num_workers,
                         pin_memory=torch.cuda.is_available())
    # a private generator: iterating the loader must not draw from the global RNG (dropout's),
    # or a resumed run would see other dropout masks than an uninterrupted one
    train_dl = DataLoader(train_tok.select_columns(["input_ids", "labels"]), batch_sampler=sampler,
                          generator=torch.Generator().manual_seed(config.seed), **loader_kwargs)
    eval_dl = None
    if eval_tok is not None and len(eval_tok):
        ev_sampler = LengthBucketBatchSampler(eval_tok["length"], config.eval_batch_size,
                                              bucket_batches=len(eval_tok), shuffle=False)
        eval_dl = DataLoader(eval_tok.select_columns(["input_ids", "labels"]), batch_sampler=ev_sampler,
                             **loader_kwargs)

    n_embd = getattr(model.config, "n_embd", None) or getattr(model.config, "hidden_size", 768)
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate,
                                  eps=config.adam_epsilon, **({"fused": True} if torch.cuda.is_available()
                                                              and not config.cpu else {}))
    from torch.optim.lr_scheduler import LambdaLR

    scheduler = LambdaLR(optimizer, lr_lambda(config.lr_schedule, warmup_steps=config.warmup_steps,
                                              warmup_proportion=config.warmup_proportion, n_embd=n_embd,
                                              num_optim_steps=config.num_optim_steps))
    state = TrainState()
    if config.continue_from:
        # the seed's --continue_from: counters and schedule start at N, nothing else is restored
        state.global_step = config.continue_from
        state.micro_step = 2 * config.continue_from - 1
        scheduler.last_epoch = config.continue_from
        for g, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            g["lr"] = base * fn(config.continue_from)
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]

    n_params = sum(p.numel() for p in model.parameters())
    model, optimizer, train_dl, scheduler = accelerator.prepare(model, optimizer, train_dl, scheduler)
    if eval_dl is not None:
        eval_dl = accelerator.prepare(eval_dl)

    if resume_path is not None:
        accelerator.load_state(str(resume_path))
        state = TrainState.from_json((resume_path / "trainer_state.json").read_text())
        if accelerator.is_main_process:
            for name in ("train_log.txt", "eval_log.txt"):
                _truncate_log(out_dir / name, state.global_step)

    # ---- logs and summary ----
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_hyperparameters(out_dir / "hyperparameters.yaml", config,
                              {"num_processes": accelerator.num_processes, "num_parameters": n_params})
    train_log = eval_log = None
    if accelerator.is_main_process:
        train_log = _open_log(out_dir / "train_log.txt", TRAIN_LOG_HEADER)
        eval_log = _open_log(out_dir / "eval_log.txt", EVAL_LOG_HEADER)
    if config.report_to != "none":
        accelerator.init_trackers("dialogpt", config={k: v for k, v in config.to_dict().items()
                                                       if isinstance(v, (int, float, str, bool))})

    steps_per_epoch = math.ceil(len(train_dl) / config.gradient_accumulation_steps)
    bar = tqdm(total=config.num_optim_steps, initial=state.global_step, desc="training", unit="step",
               disable=not (accelerator.is_local_main_process and config.pbar), dynamic_ncols=True)
    say = _Printer(accelerator, bar)
    plan_eff = padding_efficiency(lengths, sampler.batches())
    total_batch = config.train_batch_size * accelerator.num_processes
    say("***** Running training *****\n"
        f"  processes (world size)       = {accelerator.num_processes} ({accelerator.distributed_type}, "
        f"device {accelerator.device}, mixed precision {accelerator.mixed_precision})\n"
        f"  model                        = {config.model_name_or_path or config.model_config}, "
        f"{n_params / 1e6:.2f}M parameters, n_embd {n_embd}\n"
        f"  training sessions            = {len(train_tok)} ({train_stats.dropped_no_labels} dropped: no trained turn)"
        f"{' [reverse / MMI]' if config.reverse else ''}\n"
        f"  validation sessions          = {len(eval_tok) if eval_tok is not None else 0}\n"
        f"  micro-batch per device       = {micro} (train_batch_size {config.train_batch_size} / "
        f"accumulation {config.gradient_accumulation_steps})\n"
        f"  total batch per optim step   = {total_batch} examples\n"
        f"  optimizer steps              = {config.num_optim_steps} ({steps_per_epoch} per epoch), "
        f"starting at {state.global_step}\n"
        f"  lr schedule                  = {config.lr_schedule}, lr {config.learning_rate:g}, "
        f"warmup {config.warmup_steps} steps / {config.warmup_proportion} of training\n"
        f"  max_seq_length               = {config.max_seq_length}; padding efficiency of the batch plan "
        f"{plan_eff:.3f} (real/padded tokens)"
        + (f"\n  resumed from                 = {resume_path}" if resume_path else ""))

    # ---- loop ----
    model.train()
    t_start = time.perf_counter()
    run_tokens_real = 0
    pending: list[tuple[int, int, int, torch.Tensor, torch.Tensor, torch.Tensor, float]] = []
    micro_losses: list[torch.Tensor] = []
    micro_real = torch.zeros((), dtype=torch.long, device=accelerator.device)
    micro_total = 0
    loss_history: list[float] = []
    last_ckpt: Path | None = resume_path
    epoch_t0 = time.perf_counter() - state.epoch_time
    done = state.global_step >= config.num_optim_steps

    def flush() -> None:
        """Write the pending step lines (one sync for many steps: no per-step ``.item()`` stall)."""
        nonlocal run_tokens_real
        if not pending:
            return
        losses = accelerator.reduce(torch.stack([p[3] for p in pending]).float(), reduction="mean")
        reals = accelerator.reduce(torch.stack([p[4] for p in pending]), reduction="sum")
        totals = accelerator.reduce(torch.stack([p[5] for p in pending]), reduction="sum")
        now = time.perf_counter()
        for (epoch, step, micro_step, _, _, _, lr), loss, real, total in zip(pending, losses.tolist(), reals.tolist(),
                                                                 totals.tolist()):
            state.epoch_loss_sum += loss
            state.epoch_ppl_sum += _ppl(loss)
            state.epoch_steps += 1
            state.tokens_real += int(real)
            state.tokens_total += int(total)
            run_tokens_real += int(real)
            loss_history.append(loss)
            elapsed = max(now - t_start, 1e-9)
            tps = run_tokens_real / elapsed
            eff = state.tokens_real / max(state.tokens_total, 1)
            mean_loss = state.epoch_loss_sum / state.epoch_steps
            if train_log is not None:
                train_log.write(f"{epoch + 1},{step},{micro_step},{loss:.6f},{_ppl(loss):.4f},{mean_loss:.6f},"
                                f"{state.epoch_ppl_sum / state.epoch_steps:.4f},{state.tokens_real},"
                                f"{state.tokens_total},{tps:.1f},{lr:.6e},{eff:.4f},{now - epoch_t0:.2f}\n")
        train_log is not None and train_log.flush()
        say(f"step {state.global_step}: loss {loss:.4f}, ppl {_ppl(loss):.2f}, lr {pending[-1][6]:.3e}, "
            f"{tps:,.0f} tok/s, padding eff {eff:.3f}, epoch {pending[-1][0] + 1}, "
            f"{elapsed:.1f}s")
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:,.0f}")
        if config.report_to != "none":
            accelerator.log({"train/loss": loss, "train/ppl": _ppl(loss), "train/lr": pending[-1][6],
                             "train/tokens_per_sec": tps, "train/padding_efficiency": eff}, step=state.global_step)
        pending.clear()

    while not done:
        if config.num_epochs is not None and state.epoch >= config.num_epochs:
            break
        # Accelerate's loader re-seeds the batch sampler with its own iteration counter on every
        # __iter__; set both so a resumed run (fresh counter) sees the same epoch order.
        train_dl.set_epoch(state.epoch)
        sampler.set_epoch(state.epoch)
        skip = state.batches_in_epoch
        loader = accelerator.skip_first_batches(train_dl, skip) if skip else train_dl
        for batch in loader:
            state.batches_in_epoch += 1
            state.micro_step += 1
            with accelerator.accumulate(model):
                out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"], use_cache=False)
                loss = out.loss
                accelerator.backward(loss)
                micro_losses.append(loss.detach())
                micro_real += batch["attention_mask"].sum()
                micro_total += batch["input_ids"].numel()
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            # ---- one optimizer step happened ----
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            state.global_step += 1
            pending.append((state.epoch, state.global_step, state.micro_step, torch.stack(micro_losses).mean(),
                            micro_real.clone(),
                            torch.tensor(micro_total, device=accelerator.device), lr))
            micro_losses.clear()
            micro_real.zero_()
            micro_total = 0
            bar.update(1)
            done = state.global_step >= config.num_optim_steps
            if state.global_step % config.logging_steps == 0 or done:
                flush()
            if eval_dl is not None and config.eval_steps and state.global_step % config.eval_steps == 0:
                flush()
                _run_eval(accelerator, model, eval_dl, state, eval_log, say, config)
            if config.save_steps and state.global_step % config.save_steps == 0:
                flush()
                state.epoch_time = time.perf_counter() - epoch_t0
                last_ckpt = save_checkpoint(accelerator, str(out_dir), state, config, config.save_total_limit)
                say(f"saved checkpoint {last_ckpt}")
            if step_callback is not None:
                step_callback(state)
            if done:
                break
        else:
            # the epoch ran out (the seed printed epoch-level means and reset them)
            state.epoch += 1
            state.batches_in_epoch = 0
            state.epoch_loss_sum = state.epoch_ppl_sum = 0.0
            state.epoch_steps = 0
            epoch_t0 = time.perf_counter()
    flush()
    runtime = time.perf_counter() - t_start
    bar.close()

    if eval_dl is not None and (not config.eval_steps or state.global_step % config.eval_steps != 0
                                or state.last_eval_loss is None):
        _run_eval(accelerator, model, eval_dl, state, eval_log, say, config)
    for f in (train_log, eval_log):
        if f is not None:
            f.close()

    tps = run_tokens_real / max(runtime, 1e-9)
    result = TrainResult(
        output_dir=str(out_dir), global_step=state.global_step, epoch=state.epoch,
        train_loss=loss_history[-1] if loss_history else None, eval_loss=state.last_eval_loss,
        eval_ppl=state.last_eval_ppl, tokens_per_sec=tps,
        padding_efficiency=state.tokens_real / max(state.tokens_total, 1), train_runtime=runtime,
        num_processes=accelerator.num_processes, num_train_examples=len(train_tok), num_parameters=n_params,
        loss_history=loss_history, checkpoint_dir=str(last_ckpt) if last_ckpt else None,
    )
    save_final(accelerator, model, tokenizer, config, result)
    if config.push_to_hub:
        result.hub_url = push_folder(accelerator, out_dir, config)
        say(f"pushed {out_dir} to {config.hub_model_id}")
    accelerator.wait_for_everyone()
    return result


def _open_log(path: Path, header: str):
    new = not path.exists() or path.stat().st_size == 0
    f = open(path, "a", encoding="utf-8", buffering=1)
    if new:
        f.write(header + "\n")
    return f


def _run_eval(accelerator, model, eval_dl, state: TrainState, eval_log, say, config) -> None:
    loss, ppl, n = evaluate_loss(accelerator, model, eval_dl, pbar=config.pbar)
    state.last_eval_loss, state.last_eval_ppl = loss, ppl
    if eval_log is not None:
        eval_log.write(f"{state.epoch + 1},{state.global_step},{state.micro_step},{loss:.6f},{ppl:.4f},{n}\n")
        eval_log.flush()
    say(f"eval at step {state.global_step}: loss {loss:.4f}, ppl {ppl:.2f} ({n} tokens)")
    if config.report_to != "none":
        accelerator.log({"eval/loss": loss, "eval/ppl": ppl}, step=state.global_step)


def save_final(accelerator, model, tokenizer, config: TrainConfig, result: TrainResult) -> None:
    """``save_pretrained`` of model + tokenizer (chat template) + generation config + card + config."""
    from dialogpt.cards import card_info_from_run, render_model_card
    from dialogpt.chat_format import install_chat_template

    out = Path(config.output_dir)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)  # gathers FSDP/DeepSpeed shards
    if accelerator.is_main_process:
        unwrapped.config.use_cache = True
        unwrapped.generation_config = dialogue_generation_config(tokenizer)
        unwrapped.save_pretrained(str(out), state_dict=state_dict, save_function=accelerator.save)
        install_chat_template(tokenizer)
        tokenizer.save_pretrained(str(out))
        write_hyperparameters(out / "hyperparameters.yaml", config,
                              {"num_processes": result.num_processes, "num_parameters": result.num_parameters})
        (out / "train_results.json").write_text(json.dumps(
            {k: v for k, v in result.to_dict().items() if k != "loss_history"}, indent=1))
        card = render_model_card(card_info_from_run(config, result, unwrapped.config))
        card.save(str(out / "README.md"))
    accelerator.wait_for_everyone()


def push_folder(accelerator, out_dir: Path, config: TrainConfig) -> str | None:
    """Create (or reuse) the Hub repo and upload the final folder; checkpoints stay local."""
    url = None
    if accelerator.is_main_process:
        from huggingface_hub import HfApi

        api = HfApi(token=config.hub_token)
        try:
            api.create_repo(config.hub_model_id, private=config.hub_private, exist_ok=True, repo_type="model")
            info = api.upload_folder(folder_path=str(out_dir), repo_id=config.hub_model_id, repo_type="model",
                                     commit_message=f"dialogpt-hf: step {_final_step(out_dir)}",
                                     ignore_patterns=["checkpoints/*", "checkpoints/**", "runs/*", "runs/**",
                                                      "*.tmp*"])
        except Exception as e:
            msg = first_line(e, 300)
            if config.hub_token:
                msg = msg.replace(config.hub_token, "***")
            raise TrainingError(f"--push_to_hub {config.hub_model_id}: {msg}") from None
        url = str(getattr(info, "commit_url", None) or info)
    accelerator.wait_for_everyone()
    return url


def _final_step(out_dir: Path) -> str:
    try:
        return str(json.loads((out_dir / "train_results.json").read_text())["global_step"])
    except Exception:
        return "?"


def main_guard(fn: Callable[[], int]) -> int:
    """Run ``fn`` and turn user mistakes into one line on stderr (no traceback)."""
    try:
        return fn()
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
