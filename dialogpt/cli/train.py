"""``dialogpt-train`` / ``scripts/run_clm_dialog.py``: flags (or a YAML file plus flag overrides) -> ``train()``.

    accelerate launch --config_file accelerate_configs/multi_gpu_fp16.yaml scripts/run_clm_dialog.py \\
        --dataset ./reddit-dialog --model_config medium --tokenizer_name gpt2 --output_dir runs/medium

    python scripts/run_clm_dialog.py --config my_run.yaml --learning_rate 5e-5   # flags win over YAML
    dialogpt-train plot runs/medium      # (re)draw runs/medium/loss.png from its logs

Every flag is a :class:`dialogpt.train.config.TrainConfig` field; the seed's spellings
(``--train_input_file``, ``--eval_input_file``, ``--valid_step``, ``--fp16 true``) still work.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path

from dialogpt.cli.conversation_args import CHOICES as CONVERSATION_CHOICES
from dialogpt.cli.conversation_args import CONVERSATION_HELP
from dialogpt.errors import first_line
from dialogpt.train.attention import ATTN_IMPLEMENTATIONS
from dialogpt.train.config import MIXED_PRECISION, REPORT_TO, TrainConfig, TrainingError
from dialogpt.train.loop import train
from dialogpt.train.plot import PLOT_FILE, plot_run

HELP = {
    "output_dir": "where logs, checkpoints/step-NNNNNN/ and the final model go",
    "dataset": "dialogues in a directory or Hub id: a built Reddit dataset, or files of any layout below",
    "train_file": "a dialogue file instead of --dataset: .jsonl/.json/.csv/.parquet/.arrow in any layout (messages, "
                  "ShareGPT conversations, turns, string lists, prompt/completion, context/response, speaker "
                  "tables; detected, one line says what), or the seed's train.tsv (alias --train_input_file)",
    "eval_file": "validation file of the same kinds (alias --eval_input_file)",
    "train_split": "split of --dataset to train on",
    "eval_split": "split of --dataset to validate on ('' for none)",
    "validation_split_percentage": "with no eval file or split: hold out this percent of the dialogues (whole "
                                   "dialogues, never windows of a trained one) for validation",
    "train_on": "all (every turn after the first, DialoGPT), assistant, or a speaker name (only their turns)",
    "reverse": "train the MMI backward model (response -> source)",
    "max_seq_length": "tokens per example; a longer dialogue becomes several windows, each reply trained once",
    "preprocessing_num_workers": "num_proc of the tokenising datasets.map",
    "bucket_batches": "batches per length-sorted pool (the seed used 100)",
    "pad_to_multiple_of": "pad batches to a multiple of this (8 for fp16 GPUs)",
    "dataloader_num_workers": "DataLoader worker processes",
    "model_name_or_path": "hub id or folder to fine-tune (e.g. microsoft/DialoGPT-medium)",
    "model_config": "tiny|small|medium|large (117M/345M/762M) or a config.json: train from scratch",
    "tokenizer_name": "tokenizer hub id or folder (default: --model_name_or_path)",
    "init_checkpoint": "original DialoGPT .pkl to start from",
    "dropout": "override the model's dropout probabilities",
    "gradient_checkpointing": "trade compute for memory",
    "packing": "several whole sessions per row of max_seq_length tokens, attention kept inside each session; "
               "a micro-batch is then micro_batch_size rows (a fixed shape, no padding waste)",
    "attn_implementation": "attention kernel; flash_attention_2 needs the flash-attn package, CUDA and bf16/fp16",
    "torch_compile": "torch.compile the model (regional: one GPT2Block compiled for all layers); best with --packing",
    "torch_compile_backend": "dynamo backend for --torch_compile",
    "lora_r": "LoRA rank: freeze the model and train low-rank adapters only (needs peft: pip install -e "
              "'.[lora]'); the final folder holds the merged weights plus the adapter in adapter/",
    "lora_alpha": "LoRA scaling: the adapter update is multiplied by lora_alpha / lora_r",
    "lora_dropout": "dropout on the LoRA adapters' input",
    "lora_target_modules": "comma-separated module names (or suffixes such as attn.c_proj) that get adapters; "
                           "GPT-2's Conv1D layers: c_attn (qkv), c_proj (attention and MLP output), c_fc (MLP input)",
    "peak_tflops": "the device's dense peak for the MFU figure (default: from the GPU's name; unknown = no MFU)",
    "train_batch_size": "examples per device per optimizer step (the seed's meaning)",
    "gradient_accumulation_steps": "micro-batches per optimizer step",
    "eval_batch_size": "validation batch size per device",
    "learning_rate": "base learning rate",
    "weight_decay": "AdamW weight decay (not applied to biases and LayerNorms)",
    "adam_epsilon": "AdamW epsilon (the seed used 1e-6)",
    "max_grad_norm": "gradient clipping norm; 0 = off",
    "lr_schedule": "noam|noamwd|BERT|None (the seed's formulas)",
    "warmup_steps": "warm-up optimizer steps (noam, noamwd)",
    "warmup_proportion": "warm-up fraction of num_optim_steps (BERT)",
    "num_optim_steps": "optimizer steps to train for",
    "num_epochs": "optional cap on epochs",
    "mixed_precision": "no|fp16|bf16",
    "seed": "random seed (data order, init, dropout)",
    "cpu": "train on CPU even when a GPU is present",
    "logging_steps": "write a step line (stdout, trackers) every N optimizer steps",
    "eval_steps": "validate every N optimizer steps (alias --valid_step); 0 = at the end only",
    "max_eval_examples": "cap the validation set",
    "eval_on_start": "validate once before the first step: a fine-tune's starting perplexity (eval_log.txt step 0)",
    "save_steps": "checkpoint every N optimizer steps; 0 = none",
    "save_total_limit": "keep only the newest N checkpoints",
    "resume_from_checkpoint": "latest | auto | PATH to a checkpoints/step-NNNNNN folder",
    "continue_from": "the seed's --continue_from: start counters and lr schedule at step N",
    "overwrite_output_dir": "start over in an --output_dir that holds another run (deletes its logs and checkpoints)",
    "report_to": "none|tensorboard|wandb|all",
    "pbar": "progress bar on the main process",
    "push_to_hub": "upload the final folder to the Hub",
    "hub_model_id": "org/name to push to",
    "hub_private": "create the Hub repo private",
    "hub_token": "Hub token; visible to other users in the process list: prefer HF_TOKEN, "
                 "`huggingface-cli login` or --hub_token_file (never printed or saved)",
    "hub_token_file": "file whose first line is the Hub token (default: HF_TOKEN / the saved login)",
    "allow_inexact_resume": "resume from a checkpoint without RNG state (losses differ from an uninterrupted run)",
}
HELP.update({k: v for k, v in CONVERSATION_HELP.items() if k not in HELP})
TOKEN_WARNING = ("warning: --hub_token on the command line is visible to other users of this machine (ps, "
                 "/proc/<pid>/cmdline) for the whole run; use HF_TOKEN, `huggingface-cli login` or --hub_token_file")
CHOICES = {"mixed_precision": MIXED_PRECISION, "report_to": REPORT_TO, "attn_implementation": ATTN_IMPLEMENTATIONS,
           **CONVERSATION_CHOICES}
ALIASES = {"train_file": ["--train_input_file"], "eval_file": ["--eval_input_file"], "eval_steps": ["--valid_step"]}


def _base_type(tp):
    """``int | None`` -> int; ``str`` -> str."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_clm_dialog.py", description="Train DialoGPT (forward or reverse/MMI) with Accelerate.",
        argument_default=argparse.SUPPRESS, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="YAML file of TrainConfig fields; flags given here override it")
    p.add_argument("--fp16", metavar="true|false", help="the seed's flag: true = --mixed_precision fp16")
    hints = typing.get_type_hints(TrainConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name in TrainConfig.field_names():
        tp = _base_type(hints[name])
        flags = [f"--{name}"] + ALIASES.get(name, [])
        help_ = HELP.get(name, "") + f" (default: {defaults[name]!r})" if name != "hub_token" else HELP[name]
        if tp is bool:
            p.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, help=help_)
        else:
            p.add_argument(*flags, dest=name, type=tp, choices=CHOICES.get(name), help=help_,
                           metavar=name.upper() if name not in CHOICES else None)
    return p


def config_from_args(argv: list[str] | None) -> TrainConfig:
    """Defaults <- YAML (``--config``) <- flags; unknown YAML keys are an error naming the file."""
    ns = vars(build_parser().parse_args(argv))
    values: dict = {}
    cfg_file = ns.pop("config", None)
    if cfg_file:
        import yaml

        path = Path(cfg_file)
        if not path.is_file():
            raise TrainingError(f"--config {path}: no such file")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise TrainingError(f"{path}: expected a mapping of TrainConfig fields")
        unknown = sorted(set(data) - set(TrainConfig.field_names()))
        if unknown:
            raise TrainingError(f"{path}: unknown keys {', '.join(unknown)}")
        values.update(data)
    fp16 = ns.pop("fp16", None)
    if fp16 is not None:
        if fp16.lower() not in ("true", "false"):
            raise TrainingError(f"--fp16 expects true or false, got {fp16!r}")
        if "mixed_precision" in ns:
            raise TrainingError("--fp16 and --mixed_precision clash: use --mixed_precision")
        values["mixed_precision"] = "fp16" if fp16.lower() == "true" else "no"
    values.update(ns)
    if values.get("eval_split") == "":
        values["eval_split"] = None
    return TrainConfig(**values)


def main_guard(fn: Callable[[], int]) -> int:
    """Run ``fn`` and turn user mistakes into one line on stderr (no traceback)."""
    try:
        return fn()
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def plot_main(argv: list[str]) -> int:
    """``dialogpt-train plot RUN``: the run's loss/perplexity PNG, also while it trains or after a crash."""
    p = argparse.ArgumentParser(prog="dialogpt-train plot", description="Draw a run folder's loss and perplexity "
                                "curves (from train_log.txt / eval_log.txt) as a PNG.")
    p.add_argument("run_dir", help="a dialogpt-train --output_dir")
    p.add_argument("--output", help=f"where to write the PNG (default: RUN/{PLOT_FILE})")
    args = p.parse_args(argv)
    try:
        print(plot_run(args.run_dir, args.output))
    except (OSError, ValueError) as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plot"]:
        return plot_main(argv[1:])

    def run() -> int:
        args = sys.argv[1:] if argv is None else argv
        if any(a == "--hub_token" or a.startswith("--hub_token=") for a in args) and os.environ.get("RANK", "0") == "0":
            print(TOKEN_WARNING, file=sys.stderr, flush=True)
        config = config_from_args(argv)
        result = train(config)
        if os.environ.get("RANK", "0") == "0":  # one summary line, not one per process
            print(f"done: {result.global_step} steps, train loss {result.train_loss}, eval loss {result.eval_loss}, "
                  f"{result.tokens_per_sec:,.0f} tok/s; model in {result.output_dir}")
        return 0

    return main_guard(run)


if __name__ == "__main__":
    sys.exit(main())
