"""Training throughput in the units that say how close a run is to the hardware: tokens/s and MFU.

MFU (model FLOPs utilisation, PaLM appendix B; nanoGPT's ``estimate_mfu``) = achieved model FLOPs per
second / the device's dense peak. Model FLOPs per token for a decoder are ``6 * N`` (forward 2N,
backward 4N, N = parameters doing matmuls: every weight but the position-embedding lookup; the tied
LM head counts, it is a matmul) plus ``12 * n_layer * n_embd * T`` for the attention scores and
weighted sum over a context of ``T``. Recomputation under gradient checkpointing is not model work, so
it does not count (that is what makes MFU comparable across settings). For 345M at T=128 this is
2.17 GFLOP/token, the figure the issue quotes. Only real tokens are counted: padding is waste.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

#: Dense (no sparsity) bf16/fp16 tensor-core peaks from the vendors' data sheets, in TFLOPS. Matched on
#: ``torch.cuda.get_device_name()`` in order: the first entry whose words all occur wins, so the more
#: specific names come first. Anything else needs ``--peak_tflops``.
PEAK_BF16_TFLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIE"), 756.0),
    (("H100", "NVL"), 835.0),
    (("H100",), 989.0),       # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    (("H200",), 989.0),       # also GH200
    (("B200",), 2250.0),
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L4",), 121.0),
    (("V100", "PCIE"), 112.0),
    (("V100",), 125.0),       # the seed's card (SXM2)
    (("T4",), 65.0),
)


def peak_tflops_for(device_name: str | None, override: float | None = None) -> float | None:
    """The dense half-precision peak of a device, ``override`` (``--peak_tflops``) first; ``None`` if unknown."""
    if override is not None:
        if override <= 0:
            raise ValueError(f"--peak_tflops must be > 0, got {override}")
        return float(override)
    if not device_name:
        return None
    name = device_name.upper()
    for words, tflops in PEAK_BF16_TFLOPS:
        if all(w in name for w in words):
            return tflops
    return None


def _get(config, key: str, *alts: str):
    for k in (key, *alts):
        value = config.get(k) if isinstance(config, Mapping) else getattr(config, k, None)
        if value is not None:
            return int(value)
    raise ValueError(f"the model config has no {key!r}: cannot count FLOPs per token")


def matmul_parameters(config) -> int:
    """Parameters of a GPT-2 style config that take part in matmuls (all but the position embeddings)."""
    d = _get(config, "n_embd", "hidden_size")
    layers = _get(config, "n_layer", "num_hidden_layers")
    vocab = _get(config, "vocab_size")
    inner = (config.get("n_inner") if isinstance(config, Mapping) else getattr(config, "n_inner", None)) or 4 * d
    per_layer = 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d  # attn qkv+proj, mlp, two layer norms
    return vocab * d + layers * per_layer + 2 * d


def flops_per_token(config, seq_len: int) -> float:
    """Training model FLOPs per token (forward + backward) for a context of ``seq_len``."""
    d = _get(config, "n_embd", "hidden_size")
    layers = _get(config, "n_layer", "num_hidden_layers")
    return 6.0 * matmul_parameters(config) + 12.0 * layers * d * seq_len


@dataclass(frozen=True)
class Throughput:
    """What a run achieved: real tokens per second and, when the peak is known, MFU (0..1)."""

    tokens_per_sec: float
    flops_per_token: float
    peak_tflops: float | None
    num_devices: int = 1

    @property
    def achieved_tflops(self) -> float:
        """Model TFLOPS per device."""
        return self.tokens_per_sec * self.flops_per_token / self.num_devices / 1e12

    @property
    def mfu(self) -> float | None:
        return self.achieved_tflops / self.peak_tflops if self.peak_tflops else None

    def as_dict(self) -> dict:
        return {"tokens_per_sec": round(self.tokens_per_sec, 1), "flops_per_token": round(self.flops_per_token),
                "achieved_tflops_per_device": round(self.achieved_tflops, 3), "peak_tflops": self.peak_tflops,
                "mfu": None if self.mfu is None else round(self.mfu, 4)}


def measure(tokens: float, seconds: float, config, seq_len: int, peak_tflops: float | None,
            num_devices: int = 1) -> Throughput:
    """``tokens`` real tokens (all devices together) in ``seconds`` of wall time -> :class:`Throughput`."""
    return Throughput(tokens / max(seconds, 1e-9), flops_per_token(config, seq_len), peak_tflops, num_devices)


def mfu_meter(model_config, seq_len: int, device, num_devices: int = 1,
              peak_override: float | None = None) -> tuple[float | None, Callable[[float], float | None]]:
    """``(peak TFLOPS or None, tokens/s of all devices -> MFU)`` for a run's step lines.

    The peak comes from ``peak_override`` (``--peak_tflops``) or the CUDA device's name; on a CPU or an
    unknown GPU without an override the meter returns ``None``: no made-up MFU.
    """
    import torch

    name = torch.cuda.get_device_name(device) if getattr(device, "type", None) == "cuda" else None
    peak = peak_tflops_for(name, peak_override)
    fpt = flops_per_token(model_config, seq_len)
    return peak, lambda tps: Throughput(tps, fpt, peak, num_devices).mfu
