"""Which attention kernel a run may ask for, checked before any work so a wrong choice is one line.

transformers accepts ``attn_implementation`` at load time and fails late and long-windedly (an
ImportError about FlashAttention2, a ValueError listing every kernel name it knows) or, for flash on a
CPU, only at the first forward. These checks name the flag and the missing piece instead.
"""

from __future__ import annotations

ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flex_attention")

#: the model-class flag transformers sets for each kernel it supports
_SUPPORT_FLAG = {"sdpa": "_supports_sdpa", "flash_attention_2": "_supports_flash_attn",
                 "flex_attention": "_supports_flex_attn"}


def check_attn_name(name: str) -> None:
    """The config-time check: the name is one we know (``--attn_implementation``)."""
    if name not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"--attn_implementation {name!r} is not one of {', '.join(ATTN_IMPLEMENTATIONS)}")


def check_attn_implementation(name: str, *, model_class, on_cuda: bool, mixed_precision: str = "no") -> None:
    """The load-time check: this model class, this machine and this precision can run ``name``.

    ``on_cuda`` is whether training runs on a CUDA device (not ``--cpu``, a GPU present).
    """
    from transformers.utils import is_flash_attn_2_available, is_torch_flex_attn_available

    check_attn_name(name)
    flag = _SUPPORT_FLAG.get(name)
    if flag and not getattr(model_class, flag, False):
        import transformers

        raise ValueError(f"--attn_implementation {name}: {model_class.__name__} has no {name} support in "
                         f"transformers {transformers.__version__}; use sdpa (with --packing it gets the same "
                         "per-session block-diagonal mask)")
    if name == "flash_attention_2":
        if not is_flash_attn_2_available():
            raise ValueError("--attn_implementation flash_attention_2 needs the flash-attn package, which is not "
                             "installed (pip install flash-attn --no-build-isolation), or use sdpa")
        if not on_cuda:
            raise ValueError("--attn_implementation flash_attention_2 needs a CUDA GPU and this run is on the CPU; "
                             "use sdpa")
        if mixed_precision not in ("fp16", "bf16"):
            raise ValueError("--attn_implementation flash_attention_2 runs in half precision only: add "
                             "--mixed_precision bf16 (or fp16)")
    if name == "flex_attention" and not is_torch_flex_attn_available():
        import torch

        raise ValueError(f"--attn_implementation flex_attention needs torch >= 2.5 (this is {torch.__version__})")


def use_attn_implementation(model, name: str, *, on_cuda: bool, mixed_precision: str = "no") -> None:
    """Check ``name`` for this model, machine and precision, then switch the loaded model to it."""
    check_attn_implementation(name, model_class=type(model), on_cuda=on_cuda, mixed_precision=mixed_precision)
    if model.config._attn_implementation != name:
        model.set_attn_implementation(name)
