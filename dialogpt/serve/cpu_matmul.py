"""oneDNN matmuls for a model's linear layers when it serves on CPU in float32.

Why: the linear layers are ~80% of a GPT-2 forward pass, and PyTorch's CPU ``addmm`` goes to MKL's
sgemm, which on AMD cores runs far below their AVX-512 peak. One core of the bench machine (AMD EPYC,
fp32), ``(rows x 768) @ (768 x 3072)``: 16 rows 1.19 ms with MKL, 0.40 ms with oneDNN and a prepacked
weight; 64 rows 3.19 vs 1.36 ms; 256 rows 11.3 vs 5.2 ms. oneDNN is PyTorch's own (``torch.ops.mkldnn``,
the ops ``torch.compile``'s CPU backend emits for frozen linear layers), so nothing new is installed.

:func:`use_onednn` gives each ``nn.Linear`` and GPT-2 ``Conv1D`` of the model a oneDNN forward over a
prepacked copy of its weight (the parameters stay, so ``state_dict`` and saving are unchanged; the
copy costs the weights' size in memory once more). Results differ from MKL's in rounding only (a few
units in the last place); every decoding path of the server (rows, rerank mode, the web chat) shares
the model, so they all use the same kernels. A forward pass that needs gradients falls back to the
stock layer. ``--cpu-matmul stock`` keeps MKL (and ``bench/serve.py`` measures both).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

logger = logging.getLogger("dialogpt.serve.cpu_matmul")

CHOICES = ("auto", "onednn", "stock")


def _conv1d_class():
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - every supported transformers has it
        return None
    return Conv1D


class _OneDNNForward:
    """The replacement forward of one layer (a callable object, so the module stays picklable-ish)."""

    def __init__(self, module: nn.Module, weight: torch.Tensor):
        self.module, self.stock = module, module.forward
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.module.weight.requires_grad):
            return self.stock(x)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.module.bias, "none", [], "")


def _linear_weight(module: nn.Module, conv1d) -> torch.Tensor | None:
    """The layer's weight as ``(out, in)``, when it is one this module can serve."""
    if conv1d is not None and isinstance(module, conv1d):
        weight = module.weight.t()
    elif isinstance(module, nn.Linear):
        weight = module.weight
    else:
        return None
    ok = weight.device.type == "cpu" and weight.dtype == torch.float32 and not isinstance(module.forward, _OneDNNForward)
    return weight if ok else None


def check_mode(mode: str) -> None:
    """A ValueError naming ``--cpu-matmul`` for a mode this machine cannot honour."""
    if mode not in CHOICES:
        raise ValueError(f"--cpu-matmul must be one of {CHOICES}, got {mode!r}")
    if mode == "onednn" and not _available():
        raise ValueError(f"--cpu-matmul onednn: this torch ({torch.__version__}) has no oneDNN linear op")


def _available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def use_onednn(model: nn.Module, mode: str = "auto") -> int:
    """Switch ``model``'s CPU float32 linear layers to oneDNN (see the module docstring); returns how
    many were switched (0 when ``mode`` is ``stock``, the model is elsewhere, or oneDNN is missing)."""
    check_mode(mode)
    if mode == "stock" or not _available():
        return 0
    conv1d = _conv1d_class()
    layers = [(m, w) for m in model.modules() if (w := _linear_weight(m, conv1d)) is not None]
    switched = 0
    for module, weight in layers:
        fwd = _OneDNNForward(module, weight)
        probe = torch.randn(2, weight.shape[1], dtype=weight.dtype)
        with torch.no_grad():
            if not torch.allclose(fwd(probe), fwd.stock(probe), rtol=1e-4, atol=1e-4):
                logger.warning("oneDNN disagrees with the stock layer %s; keeping the stock one", type(module).__name__)
                continue
        module.forward = fwd
        switched += 1
    return switched
