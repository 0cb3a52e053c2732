"""What ``accelerate launch --config_file accelerate_configs/X.yaml`` asks for, made true or refused.

Three gaps between a launch config and what Accelerate 1.x does with it, each found by launching
every shipped config (tests/train/test_train_accelerate_configs.py):

* **CPU DDP.** A ``MULTI_CPU`` config without an mpirun hostfile goes to the single-process launcher,
  and a ``MULTI_GPU`` config with ``use_cpu: true`` starts N torchrun processes but does not pass
  ``use_cpu`` on, so on a machine without a GPU each process trains alone (world size 1, N copies
  writing one folder). A process started by a multi-process launcher on a machine with no
  accelerator therefore asks Accelerate for ``cpu=True``, which gives gloo DDP over all N.
* **Precision.** The launcher exports the config's ``mixed_precision`` as ``ACCELERATE_MIXED_PRECISION``,
  but an explicit ``Accelerator(mixed_precision="no")`` (our flag's default) overrides it: the config's
  fp16 is used unless ``--mixed_precision`` names another one, which is then a clash.
* **Devices.** fp16 without CUDA is no autocast at all (Accelerate silently trains fp32), and FSDP
  without a GPU stops in Accelerate's device check with a traceback: both are one-line errors.
"""

from __future__ import annotations

import os

from dialogpt.errors import first_line
from dialogpt.train.config import TrainConfig, TrainingError

PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"


def _has_accelerator_device() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    try:
        from accelerate.utils import is_npu_available, is_xpu_available

        return bool(is_xpu_available() or is_npu_available())
    except ImportError:  # pragma: no cover - older accelerate
        return False


def launched_without_device() -> bool:
    """Started by torchrun / ``accelerate launch`` as one of several processes, on a machine with no GPU."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    # DeepSpeed has its own (CPU) accelerator: asking for cpu=True would silently turn it into plain DDP
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    return "LOCAL_RANK" in os.environ and world > 1 and not deepspeed and not _has_accelerator_device()


def resolve_mixed_precision(flag: str) -> str:
    """``--mixed_precision`` against the launch config's (see the module docstring)."""
    launched = (os.environ.get(PRECISION_ENV) or "no").lower()
    if flag == "no" or launched in ("no", flag):
        return launched if flag == "no" else flag
    raise TrainingError(f"the accelerate launch config sets mixed_precision {launched} but --mixed_precision is "
                        f"{flag}: drop one (or pass accelerate launch --mixed_precision {flag})")


def accelerator_kwargs(config: TrainConfig) -> dict:
    """``cpu`` and ``mixed_precision`` for ``Accelerator(...)``; also records the precision in ``config``."""
    config.mixed_precision = resolve_mixed_precision(config.mixed_precision)
    return {"cpu": config.cpu or launched_without_device(), "mixed_precision": config.mixed_precision}


def make_accelerator(**kwargs):
    """``Accelerator(**kwargs)``; a launch config this machine cannot run is a one-line error."""
    from accelerate import Accelerator

    try:
        accelerator = Accelerator(**kwargs)
    except RuntimeError as e:  # e.g. FSDP: "There are currently no available devices found, must be one of ..."
        raise TrainingError(f"accelerate cannot start this launch config here: {first_line(e)}") from None
    check_device_precision(accelerator)
    return accelerator


def check_device_precision(accelerator) -> None:
    """fp16 needs CUDA autocast; Accelerate would otherwise train fp32 without a word."""
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        raise TrainingError("mixed precision fp16 needs a CUDA GPU and this process runs on CPU: use "
                            "accelerate_configs/cpu_ddp.yaml, or accelerate launch --mixed_precision no (or bf16)")
