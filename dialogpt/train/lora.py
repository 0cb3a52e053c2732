"""LoRA fine-tuning with peft (the optional ``[lora]`` extra): check, wrap, count, merge and save.

``--lora_r R`` freezes the model and trains low-rank adapters (``B A``, scaled by ``lora_alpha / r``) on
``--lora_target_modules``; the optimizer then holds state for the adapters only. GPT-2's projections are
``transformers`` ``Conv1D`` layers, whose weight is stored (in, out), the transpose of ``nn.Linear``: peft
needs ``fan_in_fan_out=True`` for them, so it is set from the layers the names select (and a mix of
``Conv1D`` and ``Linear`` targets, which one flag cannot describe, is refused).

What a LoRA run leaves behind (:func:`save_adapter_and_merge`): the final folder holds the **merged**
weights, a plain ``GPT2LMHeadModel`` that ``from_pretrained``, ``pipeline()`` and ``dialogpt-serve`` load
without peft, and the adapter alone in ``adapter/`` (``PeftModel.from_pretrained(base, folder/adapter)``).
The adapter sits in a subfolder on purpose: an ``adapter_config.json`` at the top would make transformers
load the folder as an adapter, which needs peft. Checkpoints keep the whole wrapped model
(``accelerator.save_state``), so ``--resume_from_checkpoint`` works as for full fine-tuning.

Only this module imports peft, and only inside functions: without the extra, everything else runs and
``--lora_r`` is one line saying how to install it.
"""

from __future__ import annotations

from pathlib import Path

from dialogpt.cards import trained_share
from dialogpt.train.config import TrainConfig, TrainingError

INSTALL_HINT = "pip install -e '.[lora]'"
ADAPTER_DIR = "adapter"
#: what a launch may not combine with --lora_r: the merge at the end needs whole, unsharded weights
_SHARDED = ("FSDP", "DEEPSPEED", "MEGATRON_LM")


def peft_available() -> bool:
    try:
        import peft  # noqa: F401
    except ImportError:
        return False
    return True


def check_lora_run(config: TrainConfig, accelerator, resume_path: Path | None) -> None:
    """Before any work: peft installed, a launch whose weights the final merge can read, and a resume
    from a checkpoint trained with the same LoRA flags (its weights have other names and shapes)."""
    if resume_path is not None:
        _check_resume_flags(config, resume_path)
    if config.lora_r is None:
        return
    if not peft_available():
        raise TrainingError(f"--lora_r needs peft: {INSTALL_HINT}")
    kind = str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type)).upper()
    if kind in _SHARDED:
        raise TrainingError(f"--lora_r does not run under {kind} here (untested, and the final merge needs whole "
                            "weights): launch with DDP, e.g. accelerate_configs/multi_gpu_fp16.yaml; the adapters' "
                            "optimizer state is small enough to need no sharding")


def _check_resume_flags(config: TrainConfig, resume_path: Path) -> None:
    import yaml

    try:
        saved = yaml.safe_load((resume_path / "hyperparameters.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        saved = None
    if not isinstance(saved, dict):
        return  # the manifest check has already said what is wrong with the folder
    keys = ("lora_r", "lora_target_modules") if config.lora_r or saved.get("lora_r") else ()
    for key in keys:
        if saved.get(key) != getattr(config, key):
            raise TrainingError(f"--resume_from_checkpoint {resume_path} was trained with --{key} "
                                f"{saved.get(key)}, this run has {getattr(config, key)}: give the same LoRA flags")


def target_names(config: TrainConfig) -> list[str]:
    return [n.strip() for n in config.lora_target_modules.split(",")]


def _targets(model, names: list[str]) -> dict[str, type]:
    """Module path -> type of every module a name selects (peft's rule: the whole path or its suffix)."""
    found: dict[str, type] = {}
    for name in names:
        hits = {path: type(m) for path, m in model.named_modules() if path == name or path.endswith("." + name)}
        if not hits:
            raise TrainingError(f"--lora_target_modules {name}: no module of {type(model).__name__} is called that "
                                "(GPT-2: c_attn, c_proj, c_fc, or a suffix such as attn.c_proj)")
        found.update(hits)
    return found


def _fan_in_fan_out(targets: dict[str, type]) -> bool:
    """True for transformers' Conv1D targets (GPT-2), False for nn.Linear; a mix cannot be one flag."""
    import torch
    from transformers.pytorch_utils import Conv1D

    conv = {p for p, t in targets.items() if issubclass(t, Conv1D)}
    linear = {p for p, t in targets.items() if issubclass(t, torch.nn.Linear)}
    other = sorted(set(targets) - conv - linear)
    if other:
        raise TrainingError(f"--lora_target_modules selects {other[0]} ({targets[other[0]].__name__}): "
                            "adapters go on Conv1D or Linear layers only")
    if conv and linear:
        raise TrainingError(f"--lora_target_modules mixes Conv1D ({sorted(conv)[0]}) and Linear ({sorted(linear)[0]}) "
                            "layers: their weights are stored transposed to each other; pick one kind")
    return bool(conv)


def wrap_model(model, config: TrainConfig):
    """Freeze ``model`` and add LoRA adapters as the config says; returns the peft model."""
    from peft import LoraConfig, get_peft_model

    names = target_names(config)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=names, fan_in_fan_out=_fan_in_fan_out(_targets(model, names)),
                      bias="none", task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as e:  # anything the checks above did not foresee, still one line
        raise TrainingError(f"--lora_target_modules {config.lora_target_modules}: {str(e).splitlines()[0]}") from None


def parameter_counts(model) -> tuple[int, int]:
    """(parameters the optimizer updates, parameters of the saved model).

    LoRA adapters are trained but merged away at the end, so they count in the first figure only;
    in full fine-tuning both figures are the model's size. Tied weights count once.
    """
    trained = adapters = total = 0
    for name, p in model.named_parameters():
        total += p.numel()
        trained += p.numel() if p.requires_grad else 0
        adapters += p.numel() if "lora_" in name else 0
    return trained, total - adapters


def describe(config: TrainConfig, trained: int, saved: int) -> str:
    """The startup summary's line on what trains."""
    if config.lora_r is None:
        return f"all {trained:,} (full fine-tuning)"
    return (f"{trained_share(trained, trained + saved)}: LoRA adapters "
            f"r {config.lora_r}, alpha {config.lora_alpha:g}, dropout {config.lora_dropout:g} on "
            f"{', '.join(target_names(config))}")


def save_adapter_and_merge(peft_model, out_dir: Path, base_name: str | None, is_main: bool):
    """Write the adapter to ``out_dir/adapter`` (main process), then fold it into the base weights.

    Returns the merged plain transformers model for ``save_pretrained``. ``base_name`` (a Hub id, or
    only the folder name of a local path: no machine paths in what is pushed) is recorded as the
    adapter's base.
    """
    if is_main:
        adapter_dir = Path(out_dir) / ADAPTER_DIR
        for cfg in peft_model.peft_config.values():
            cfg.base_model_name_or_path = base_name
        # no embedding is ever adapted (only Conv1D/Linear targets) nor resized: False also skips peft's
        # Hub lookup of the base's config.json, a network call at the end of a run
        peft_model.save_pretrained(str(adapter_dir), save_embedding_layers=False)
        # peft writes a template card full of "[More Information Needed]": the folder's README says it all
        (adapter_dir / "README.md").write_text(
            "# LoRA adapter\n\nThe adapter this model was trained with; the folder above holds the same model "
            "with the adapter merged in. See its README.md.\n")
    return peft_model.merge_and_unload()
