"""A roofline estimate of serving one model under one load on one GPU type.

Peak figures only (no efficiency factors), so predictions are the best the hardware
allows; a shape that misses its targets here misses them in practice too. The model:

- memory per worker: weights (parameters x bytes per parameter) plus the KV cache of
  every session the worker carries at full length (context + generated tokens), within
  ``MEMORY_UTILIZATION`` of the GPUs' memory;
- time to first token: the prefill of the prompt, compute-bound (2 x parameters FLOPs
  per token) or, for short prompts, one read of the weights, whichever is longer;
- tokens/s per session: one decode step reads the weights and every session's KV cache
  (at half the generated length on average) and does 2 x parameters FLOPs per session;
  the step takes the longer of the two;
- end-to-end latency: first token, then the generated tokens at that rate.

GPUs per worker are powers of two up to one node (tensor parallelism); workers share
``concurrent_requests`` evenly. The cheapest shape (fewest GPUs in all, then fewest per
worker) that fits and meets every target wins; ``workers`` pins the worker count.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from reconciler.core.sizing.gpus import GpuType

MEMORY_UTILIZATION = 0.9
GPU_COUNTS: tuple[int, ...] = (1, 2, 4, 8)

BYTES_PER_PARAMETER: dict[str, float] = {
    "float32": 4.0,
    "float16": 2.0,
    "bfloat16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}
_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_PARAMETERS = re.compile(r"(\d+(?:\.\d+)?)\s*([KMBT]?)")


class SizingError(ValueError):
    """The inputs cannot be estimated (unknown dtype, unreadable parameter count)."""


def parse_parameters(value: int | str) -> int:
    """A parameter count from ``3800000000`` or ``'3.8B'`` (K, M, B, T)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise SizingError(f"parameters {value} must be positive")
        return value
    match = _PARAMETERS.fullmatch(str(value).strip().upper())
    if match is None:
        raise SizingError(
            f"parameters {value!r} is not a parameter count: write an integer or a number "
            "with K, M, B or T, e.g. '3.8B'"
        )
    count = round(float(match.group(1)) * _SUFFIXES[match.group(2)])
    if count <= 0:
        raise SizingError(f"parameters {value!r} must be positive")
    return count


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """What sizing needs of a model; the attention fields size its KV cache."""

    parameters: int
    dtype: str
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None

    @property
    def weight_bytes(self) -> float:
        try:
            per_parameter = BYTES_PER_PARAMETER[self.dtype]
        except KeyError:
            known = ", ".join(BYTES_PER_PARAMETER)
            raise SizingError(f"dtype {self.dtype!r} is not one sizing knows ({known})") from None
        return self.parameters * per_parameter

    @property
    def kv_bytes_per_token(self) -> float | None:
        """Keys and values of every layer for one token; None when the config is unknown."""
        if self.layers is None or self.kv_heads is None or self.head_dim is None:
            return None
        element = 4.0 if self.dtype == "float32" else 2.0
        return 2.0 * self.layers * self.kv_heads * self.head_dim * element


Range = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Load:
    """The expected load and the SLO ranges (units of docs/spec.md)."""

    concurrent_requests: int
    avg_context_length: int
    avg_sequence_length: int
    ttft_ms: Range | None = None
    tokens_per_sec: Range | None = None
    e2e_latency_s: Range | None = None

    @classmethod
    def from_deploy_config(
        cls, config: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None
    ) -> Load:
        """From a Deployment's ``deploy_config``; ``defaults`` (a template's) fill SLOs."""
        fallback = defaults or {}

        def slo(key: str) -> Range | None:
            value = config.get(key) or fallback.get(key)
            if value is None:
                return None
            low, high = value
            return (float(low), float(high))

        return cls(
            concurrent_requests=int(config["concurrent_requests"]),
            avg_context_length=int(config["avg_context_length"]),
            avg_sequence_length=int(config["avg_sequence_length"]),
            ttft_ms=slo("ttft"),
            tokens_per_sec=slo("per_session_tokens_per_sec"),
            e2e_latency_s=slo("e2e_latency"),
        )


@dataclasses.dataclass(frozen=True)
class Prediction:
    ttft_ms: float
    tokens_per_sec: float
    e2e_latency_s: float


@dataclasses.dataclass(frozen=True)
class SizingResult:
    """The chosen shape, its predictions, and what is missing when it is infeasible."""

    gpu_type: str | None
    gpus_per_worker: int
    workers: int
    feasible: bool
    predicted: Prediction | None
    gap: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def as_status(self) -> dict[str, Any]:
        """The ``sizing`` field of a Deployment's status."""
        predicted = None
        if self.predicted is not None:
            predicted = {
                "ttft_ms": round(self.predicted.ttft_ms, 3),
                "tokens_per_sec": round(self.predicted.tokens_per_sec, 3),
                "e2e_latency_s": round(self.predicted.e2e_latency_s, 4),
            }
        status: dict[str, Any] = {
            "gpu_type": self.gpu_type,
            "gpus_per_worker": self.gpus_per_worker,
            "workers": self.workers,
            "feasible": self.feasible,
            "predicted": predicted,
        }
        if self.gap:
            status["gap"] = list(self.gap)
        if self.notes:
            status["notes"] = list(self.notes)
        return status


def memory_per_worker(model: ModelShape, load: Load, *, sessions: int) -> float:
    """Bytes one worker needs for the weights and ``sessions`` full-length KV caches."""
    kv = model.kv_bytes_per_token or 0.0
    tokens = load.avg_context_length + load.avg_sequence_length
    return model.weight_bytes + sessions * kv * tokens


def predict(model: ModelShape, gpu: GpuType, load: Load, *, gpus: int, sessions: int) -> Prediction:
    """The roofline figures of one worker of ``gpus`` GPUs carrying ``sessions`` sessions."""
    bandwidth = gpus * gpu.bandwidth_bytes_s
    flops = gpus * gpu.flops
    weights = model.weight_bytes
    prefill_s = max(2.0 * model.parameters * load.avg_context_length / flops, weights / bandwidth)
    kv = model.kv_bytes_per_token or 0.0
    mean_tokens = load.avg_context_length + load.avg_sequence_length / 2.0
    step_bytes = weights + sessions * kv * mean_tokens
    step_s = max(step_bytes / bandwidth, 2.0 * model.parameters * sessions / flops)
    tokens_per_sec = 1.0 / step_s
    return Prediction(
        ttft_ms=prefill_s * 1000.0,
        tokens_per_sec=tokens_per_sec,
        e2e_latency_s=prefill_s + load.avg_sequence_length / tokens_per_sec,
    )


def _shortfalls(
    model: ModelShape, gpu: GpuType, load: Load, *, gpus: int, workers: int
) -> tuple[Prediction, list[str]]:
    sessions = math.ceil(load.concurrent_requests / workers)
    need = memory_per_worker(model, load, sessions=sessions)
    have = gpus * gpu.memory_bytes * MEMORY_UTILIZATION
    found = predict(model, gpu, load, gpus=gpus, sessions=sessions)
    gaps: list[str] = []
    if need > have:
        gaps.append(
            f"memory: {need / 1e9:.1f} GB per worker ({sessions} sessions) > "
            f"{have / 1e9:.1f} GB usable on {gpus} x {gpu.name}"
        )
    if load.ttft_ms is not None and found.ttft_ms > load.ttft_ms[1]:
        gaps.append(f"ttft: {found.ttft_ms:.1f} ms > {load.ttft_ms[1]:g} ms max")
    if load.tokens_per_sec is not None and found.tokens_per_sec < load.tokens_per_sec[0]:
        gaps.append(
            f"tokens/s per session: {found.tokens_per_sec:.1f} < {load.tokens_per_sec[0]:g} min"
        )
    if load.e2e_latency_s is not None and found.e2e_latency_s > load.e2e_latency_s[1]:
        gaps.append(f"e2e latency: {found.e2e_latency_s:.2f} s > {load.e2e_latency_s[1]:g} s max")
    return found, gaps


def _fewest_workers(model: ModelShape, gpu: GpuType, load: Load, *, gpus: int) -> int | None:
    """The fewest workers of ``gpus`` GPUs that meet everything (more never hurts)."""
    low, high = 1, load.concurrent_requests
    if _shortfalls(model, gpu, load, gpus=gpus, workers=high)[1]:
        return None
    while low < high:
        middle = (low + high) // 2
        if _shortfalls(model, gpu, load, gpus=gpus, workers=middle)[1]:
            low = middle + 1
        else:
            high = middle
    return low


def size(
    *,
    model: ModelShape,
    gpu: GpuType | None,
    load: Load,
    workers: int | None = None,
    gpus_per_worker: int | None = None,
    max_gpus: int | None = None,
) -> SizingResult:
    """The cheapest shape serving ``load``; ``workers``/``gpus_per_worker`` pin either.

    ``max_gpus`` (the Cluster's ``gpu.count``) bounds the GPUs of all workers together:
    a shape over it is not chosen, and when every shape that meets the targets is over
    it the result is infeasible, its gap naming both numbers. Without a GPU (a host
    running CPU servers) nothing is estimated: one worker, or the pinned count, and a
    note saying so.
    """
    if gpu is None:
        return SizingResult(
            gpu_type=None,
            gpus_per_worker=0,
            workers=workers or 1,
            feasible=True,
            predicted=None,
            notes=("no GPU on the cluster: served on CPU, latency not estimated",),
        )
    notes: list[str] = []
    if model.kv_bytes_per_token is None:
        notes.append("KV cache not counted: the model's layers, kv heads or head dim are unknown")
    counts = (gpus_per_worker,) if gpus_per_worker else GPU_COUNTS
    candidates: list[tuple[int, int]] = []
    for count in counts:
        if workers is not None:
            if not _shortfalls(model, gpu, load, gpus=count, workers=workers)[1]:
                candidates.append((count, workers))
            continue
        fewest = _fewest_workers(model, gpu, load, gpus=count)
        if fewest is not None:
            candidates.append((count, fewest))
    cheapest = sorted(candidates, key=lambda shape: (shape[0] * shape[1], shape[0]))
    fitting = [shape for shape in cheapest if max_gpus is None or shape[0] * shape[1] <= max_gpus]
    if fitting:
        count, chosen = fitting[0]
        found, _ = _shortfalls(model, gpu, load, gpus=count, workers=chosen)
        return SizingResult(gpu.name, count, chosen, True, found, (), tuple(notes))
    if cheapest:
        count, chosen = cheapest[0]
        found, _ = _shortfalls(model, gpu, load, gpus=count, workers=chosen)
        gap = (
            f"GPUs: {chosen} worker(s) x {count} GPU(s) = {chosen * count} needed to meet the "
            f"targets; the Cluster has {max_gpus} (spec.gpu.count)"
        )
        return SizingResult(gpu.name, count, chosen, False, found, (gap,), tuple(notes))
    best_count = counts[-1]
    best_workers = workers if workers is not None else load.concurrent_requests
    found, gaps = _shortfalls(model, gpu, load, gpus=best_count, workers=best_workers)
    return SizingResult(gpu.name, best_count, best_workers, False, found, tuple(gaps), tuple(notes))
