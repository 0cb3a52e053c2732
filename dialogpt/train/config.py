"""What a training run is told (``TrainConfig``) and what it reports back (``TrainResult``).

``TrainConfig`` checks itself on construction: every clash or impossible value is one
``TrainingError`` line naming the flags, before any model or data is touched. The checks are small
named functions (:data:`_CHECKS`), each about one concern, run in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from dialogpt.conversations import ConversationError, ConversationOptions
from dialogpt.train.attention import check_attn_name
from dialogpt.train.schedules import SCHEDULES, lr_lambda

MIXED_PRECISION = ("no", "fp16", "bf16")
REPORT_TO = ("none", "tensorboard", "wandb", "all")
_SECRET_FIELDS = ("hub_token",)


class TrainingError(ValueError):
    """A user mistake found before (or instead of) training: one line, naming the flag or file."""


@dataclass
class TrainConfig:
    """Every knob of a training run. Defaults are the seed's (``LSP_train.py``) where it had one."""

    output_dir: str = "runs/dialogpt"
    # --- data ---
    dataset: str | None = None
    """Dialogues in a directory or Hub id: a built Reddit dataset, or files of any layout dialogpt.conversations reads."""
    train_file: str | None = None
    """A dialogue file instead of --dataset: .jsonl/.json/.csv/.parquet/.arrow in any layout dialogpt.conversations
    reads (messages, ShareGPT, turns, string lists, prompt/completion, context/response, speaker tables), or the
    seed's ``train.tsv`` (``0.0 turn EOS 1.0 turn\\t1.0 response``)."""
    eval_file: str | None = None
    """A validation file of the same kinds (else the dataset's --eval_split, or --validation_split_percentage)."""
    dataset_config: str | None = None
    """The --dataset's configuration name (``load_dataset(dataset, dataset_config)``), as run_clm.py's."""
    train_split: str = "train"
    eval_split: str | None = "validation"
    validation_split_percentage: float | None = None
    """With no eval file and no eval split: hold out this percent of the DIALOGUES (never windows of a
    dialogue that is also trained on) for validation, as run_clm.py's flag of the same name."""
    train_on: str = "all"
    """Which turns are trained: all (DialoGPT: every turn after the first), assistant, or one speaker's name
    (a character of a script: only their lines are trained, the rest is context)."""
    strict: bool = False
    """Any counted skip while reading the dialogues (empty turn, unknown role, ...) is an error instead."""
    # --- how to read the dialogues (dialogpt.conversations.ConversationOptions; None = detect) ---
    layout: str | None = None
    dialogue_column: str | None = None
    role_key: str | None = None
    content_key: str | None = None
    user_roles: str | None = None
    """Comma-separated role values of the user side (LLaMA-Factory's user_tag, axolotl's roles.user)."""
    assistant_roles: str | None = None
    system_roles: str | None = None
    system_messages: str | None = None
    """drop (counted; the default) or context (a context-only turn where it stood): DialoGPT has no system role."""
    id_column: str | None = None
    speaker_column: str | None = None
    text_column: str | None = None
    prompt_column: str | None = None
    completion_column: str | None = None
    context_column: str | None = None
    response_column: str | None = None
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
    packing: bool = False
    """Whole sessions side by side in rows of max_seq_length tokens, each attending only to itself
    (train/packing.py). A micro-batch is then micro_batch_size rows, a fixed shape: no padding waste, and
    the static shape --torch_compile wants. Validation batches stay padded."""
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
    attn_implementation: str = "sdpa"
    """eager | sdpa | flash_attention_2 (flash-attn package, CUDA, bf16/fp16) | flex_attention."""
    torch_compile: bool = False
    """torch.compile through Accelerate's regional compilation (one GPT2Block compiled, reused by every layer)."""
    torch_compile_backend: str = "inductor"
    # --- LoRA (peft, the optional [lora] extra: dialogpt/train/lora.py) ---
    lora_r: int | None = None
    """LoRA rank: train low-rank adapters on --lora_target_modules only (None: full fine-tuning)."""
    lora_alpha: float = 16.0
    """The adapter update is scaled by alpha / r; fixed while r varies, as the LoRA paper does."""
    lora_dropout: float = 0.05
    """Dropout on the adapters' input."""
    lora_target_modules: str = "c_attn,c_proj,c_fc"
    """Comma-separated module names (or name suffixes) that get adapters: GPT-2's attention qkv, both
    output projections (attn and MLP ``c_proj``) and the MLP input, all ``Conv1D``."""
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
    eval_on_start: bool = False
    """Validate once before the first step (transformers' ``eval_on_start``): a fine-tune's starting
    perplexity, at step 0 in eval_log.txt and as initial_eval_ppl in train_results.json and the card."""
    save_steps: int = 10000
    """Checkpoint every N optimizer steps; 0 = none."""
    save_total_limit: int | None = None
    resume_from_checkpoint: str | None = None
    """latest | auto | PATH. latest fails if none verifies; auto starts fresh if there is none."""
    allow_inexact_resume: bool = False
    """Resume from a checkpoint that lacks its RNG state (the losses then differ from an uninterrupted run)."""
    continue_from: int = 0
    overwrite_output_dir: bool = False
    """A fresh run into a folder that holds another run's logs/checkpoints: delete those first."""
    report_to: str = "none"
    pbar: bool = True
    peak_tflops: float | None = None
    """The device's dense peak for the MFU in the step lines (default: looked up from the GPU's name)."""
    # --- hub ---
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_private: bool = False
    hub_token: str | None = field(default=None, repr=False)
    """Prefer HF_TOKEN, the huggingface_hub login or --hub_token_file: a flag shows in the process list."""
    hub_token_file: str | None = None
    """A file holding the Hub token (first line)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject clashing or impossible options, naming the flags (cheap checks, no I/O)."""
        for check in _CHECKS:
            msg = check(self)
            if msg:
                raise TrainingError(msg)

    def conversation_options(self) -> ConversationOptions:
        """How to read the dialogues: the reading fields that are set (the others are detected)."""
        given = {n: getattr(self, n) for n in ConversationOptions.field_names()
                 if hasattr(self, n) and getattr(self, n) is not None}
        return ConversationOptions(**given)

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


# ----------------------------------------------------------------------------------------------
# the checks: each returns None (fine) or the one-line message
# ----------------------------------------------------------------------------------------------

def _check_choices(c: TrainConfig) -> str | None:
    for flag, value, allowed in (("lr_schedule", c.lr_schedule, SCHEDULES),
                                 ("mixed_precision", c.mixed_precision, MIXED_PRECISION),
                                 ("report_to", c.report_to, REPORT_TO)):
        if value not in allowed:
            return f"--{flag} {value!r} is not one of {', '.join(allowed)}"
    return None


def _check_sources(c: TrainConfig) -> str | None:
    """Exactly one data source and exactly one way to get a model (and its tokenizer)."""
    if (c.dataset is None) == (c.train_file is None):
        return "give exactly one of --dataset and --train_file"
    if c.model_name_or_path and c.model_config:
        return "--model_name_or_path and --model_config clash: fine-tune one or build one from scratch"
    if not c.model_name_or_path and not c.model_config:
        return "give --model_name_or_path (fine-tune) or --model_config tiny|small|medium|large (from scratch)"
    if c.model_config and not c.tokenizer_name:
        return "--model_config builds a model from scratch and needs --tokenizer_name (e.g. gpt2)"
    return None


def _check_counts(c: TrainConfig) -> str | None:
    for name in ("train_batch_size", "gradient_accumulation_steps", "eval_batch_size", "num_optim_steps",
                 "logging_steps", "bucket_batches"):
        if getattr(c, name) < 1:
            return f"--{name} must be >= 1, got {getattr(c, name)}"
    for name in ("num_epochs", "pad_to_multiple_of", "max_eval_examples", "preprocessing_num_workers",
                 "save_total_limit"):
        if getattr(c, name) is not None and getattr(c, name) < 1:
            return f"--{name} must be >= 1 when given, got {getattr(c, name)}"
    for name in ("dataloader_num_workers", "continue_from"):
        if getattr(c, name) < 0:
            return f"--{name} must be >= 0, got {getattr(c, name)}"
    if c.eval_steps < 0 or c.save_steps < 0:
        return "--eval_steps and --save_steps must be >= 0"
    return None


def _check_values(c: TrainConfig) -> str | None:
    if c.train_batch_size % c.gradient_accumulation_steps:
        return (f"--train_batch_size {c.train_batch_size} is not divisible by --gradient_accumulation_steps "
                f"{c.gradient_accumulation_steps} (the seed's rule: the batch is split into micro-batches)")
    if c.max_seq_length < 2:
        return f"--max_seq_length must be >= 2, got {c.max_seq_length}"
    if c.learning_rate <= 0:
        return f"--learning_rate must be > 0, got {c.learning_rate}"
    if c.dropout is not None and not 0.0 <= c.dropout < 1.0:
        return f"--dropout must be in [0, 1), got {c.dropout}"
    if c.validation_split_percentage is not None and not 0 < c.validation_split_percentage < 100:
        return f"--validation_split_percentage must be in (0, 100), got {c.validation_split_percentage}"
    if not c.train_on:
        return "--train_on needs a value: all, assistant, or a speaker's name"
    if c.continue_from and c.continue_from >= c.num_optim_steps:
        return f"--continue_from {c.continue_from} >= --num_optim_steps {c.num_optim_steps}: nothing to do"
    return None


def _check_speed(c: TrainConfig) -> str | None:
    """The throughput options (the device- and package-dependent attention checks run at model load)."""
    try:
        check_attn_name(c.attn_implementation)
    except ValueError as e:
        return str(e)
    if c.peak_tflops is not None and c.peak_tflops <= 0:
        return f"--peak_tflops must be > 0, got {c.peak_tflops}"
    if c.torch_compile and not c.torch_compile_backend:
        return "--torch_compile needs a --torch_compile_backend (inductor, aot_eager, ...)"
    return None


def _check_start_clashes(c: TrainConfig) -> str | None:
    """Resuming restores weights, step and optimizer: no other way of starting may be combined with it."""
    if not c.resume_from_checkpoint:
        return None
    if c.continue_from:
        return "--continue_from and --resume_from_checkpoint clash: resume restores the step itself"
    if c.overwrite_output_dir:
        return "--overwrite_output_dir and --resume_from_checkpoint clash: one starts over, the other continues"
    if c.init_checkpoint:
        return "--init_checkpoint and --resume_from_checkpoint clash: a resumed run already has its weights"
    return None


def _check_lora(c: TrainConfig) -> str | None:
    """LoRA values, and a pretrained base to adapt (whether peft is installed is checked at train())."""
    if c.lora_r is None:
        return None
    if c.lora_r < 1:
        return f"--lora_r must be >= 1, got {c.lora_r}"
    if c.lora_alpha <= 0:
        return f"--lora_alpha must be > 0, got {c.lora_alpha}"
    if not 0.0 <= c.lora_dropout < 1.0:
        return f"--lora_dropout must be in [0, 1), got {c.lora_dropout}"
    names = c.lora_target_modules.split(",")
    if not all(n.strip() for n in names):
        return f"--lora_target_modules {c.lora_target_modules!r}: give comma-separated module names, e.g. c_attn,c_fc"
    if c.model_config and not c.init_checkpoint:
        return ("--lora_r adapts pretrained weights: give --model_name_or_path (or --init_checkpoint); "
                "with --model_config alone the base is random and the adapter is useless without it")
    return None


def _check_hub(c: TrainConfig) -> str | None:
    if c.push_to_hub and not c.hub_model_id:
        return "--push_to_hub needs --hub_model_id org/name"
    if c.hub_token and c.hub_token_file:
        return "--hub_token and --hub_token_file clash: give the token one way"
    if c.hub_model_id and c.hub_model_id.count("/") > 1:
        return f"--hub_model_id {c.hub_model_id!r} must look like org/name"
    return None


def _check_conversation(c: TrainConfig) -> str | None:
    """The dialogue-reading options (a bad --layout, a role value given to two sides, ...)."""
    try:
        c.conversation_options()
    except ConversationError as e:
        return str(e)
    return None


def _check_schedule(c: TrainConfig) -> str | None:
    """The schedule's own parameter checks (warmup_steps >= 1, warmup_proportion in (0, 1))."""
    try:
        lr_lambda(c.lr_schedule, warmup_steps=c.warmup_steps, warmup_proportion=c.warmup_proportion,
                  n_embd=1, num_optim_steps=c.num_optim_steps)
    except ValueError as e:
        return str(e)
    return None


_CHECKS: tuple[Callable[[TrainConfig], str | None], ...] = (
    _check_choices, _check_sources, _check_counts, _check_values, _check_start_clashes, _check_hub,
    _check_schedule, _check_speed, _check_conversation, _check_lora,
)


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
    """Parameters of the saved model (LoRA adapters are merged into it, so not counted)."""
    trainable_parameters: int | None = None
    """Parameters the optimizer updated: all of them, or only the LoRA adapters'."""
    loss_history: list[float] = field(default_factory=list)
    checkpoint_dir: str | None = None
    hub_url: str | None = None
    initial_eval_loss: float | None = None
    initial_eval_ppl: float | None = None
    #: how much of the data was trained (dialogpt.train.sources.DataCoverage.as_dict())
    data_coverage: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
