"""The GPU types sizing knows: memory, memory bandwidth and dense bf16 compute, as data.

Figures are the vendors' datasheet peaks (SXM parts for A100/H100/H200, dense tensor-core
bf16, no sparsity). Clusters name GPUs in their own way (``nvidia-a100-80gb``, the
``nvidia.com/gpu.product`` label ``NVIDIA-A100-SXM4-80GB``), so ``find_gpu`` matches on a
normalised form of the name.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class GpuType:
    """One GPU model's peak figures."""

    name: str
    memory_gb: float
    bandwidth_gb_s: float
    bf16_tflops: float

    @property
    def memory_bytes(self) -> float:
        return self.memory_gb * 1e9

    @property
    def bandwidth_bytes_s(self) -> float:
        return self.bandwidth_gb_s * 1e9

    @property
    def flops(self) -> float:
        return self.bf16_tflops * 1e12


CATALOGUE: dict[str, GpuType] = {
    gpu.name: gpu
    for gpu in (
        GpuType(name="A10G", memory_gb=24, bandwidth_gb_s=600, bf16_tflops=125),
        GpuType(name="L4", memory_gb=24, bandwidth_gb_s=300, bf16_tflops=121),
        GpuType(name="L40S", memory_gb=48, bandwidth_gb_s=864, bf16_tflops=362),
        GpuType(name="A100-40GB", memory_gb=40, bandwidth_gb_s=1555, bf16_tflops=312),
        GpuType(name="A100-80GB", memory_gb=80, bandwidth_gb_s=2039, bf16_tflops=312),
        GpuType(name="H100", memory_gb=80, bandwidth_gb_s=3350, bf16_tflops=989),
        GpuType(name="H200", memory_gb=141, bandwidth_gb_s=4800, bf16_tflops=989),
    )
}

_NOISE = re.compile(r"^(nvidia)|(sxm\d?|pcie|nvl|hbm\d?e?|tensor ?core|gpu)", re.IGNORECASE)


def _normalise(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", name.lower())
    words = [w for w in text.split() if not _NOISE.fullmatch(w)]
    return "".join(words)


_MEMORY_SUFFIX = re.compile(r"\d+gb?")
_BY_KEY: dict[str, GpuType] = {_normalise(gpu.name): gpu for gpu in CATALOGUE.values()}


def find_gpu(name: str) -> GpuType | None:
    """The catalogue entry a cluster's GPU name stands for, or None when unknown.

    ``A100`` alone is ambiguous (40 or 80 GB) and is taken as the 40 GB part, the smaller,
    so that an estimate never promises memory that may not be there.
    """
    key = _normalise(name)
    if key in _BY_KEY:
        return _BY_KEY[key]
    if key == "a100":
        return CATALOGUE["A100-40GB"]
    for known, gpu in _BY_KEY.items():
        if key.startswith(known) and _MEMORY_SUFFIX.fullmatch(key[len(known) :]):
            return gpu
    return None
