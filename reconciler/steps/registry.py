"""The step registry: which implementation runs each step type.

A dict from step type to an async callable taking a StepContext. Built-in types are
registered by :func:`default_registry`; later step families (models, deployments,
clusters) register theirs the same way, and the daemon asks :meth:`registered` to tell
which chains it can run. Every registered type must match its signature in
reconciler.core.step_types, so validation and execution agree on inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from reconciler.core import step_types
from reconciler.engine.context import (
    ReadinessSource,
    StepContext,
    StepImpl,
    StepLog,
    StepServices,
)
from reconciler.steps import basic, http_request, wait_ready

__all__ = [
    "ReadinessSource",
    "StepContext",
    "StepImpl",
    "StepLog",
    "StepRegistry",
    "StepServices",
    "UnknownStepTypeError",
    "default_registry",
]


class UnknownStepTypeError(KeyError):
    """A step type that is neither in the catalogue nor given a signature."""


class StepRegistry(Mapping[str, StepImpl]):
    """Step type -> implementation, with each type's signature beside it."""

    def __init__(self) -> None:
        self._impls: dict[str, StepImpl] = {}
        self._signatures: dict[str, step_types.StepSignature] = {}

    def register(
        self,
        step_type: str,
        impl: StepImpl,
        *,
        signature: step_types.StepSignature | None = None,
        replace: bool = False,
    ) -> None:
        """Add ``impl`` for ``step_type``.

        ``signature`` defaults to the catalogue's; a type outside the catalogue (a test or
        plug-in type) must bring its own.
        """
        sig = signature or step_types.CATALOGUE.get(step_type)
        if sig is None:
            raise UnknownStepTypeError(
                f"step type '{step_type}' is not in reconciler.core.step_types.CATALOGUE; "
                "add it there or pass its signature"
            )
        if step_type in self._impls and not replace:
            raise ValueError(f"step type '{step_type}' is already registered")
        self._impls[step_type] = impl
        self._signatures[step_type] = sig

    def registered(self, step_type: str) -> bool:
        return step_type in self._impls

    def implementation(self, step_type: str) -> StepImpl | None:
        return self._impls.get(step_type)

    def signature(self, step_type: str) -> step_types.StepSignature | None:
        return self._signatures.get(step_type)

    def missing(self, types: Iterator[str] | tuple[str, ...]) -> list[str]:
        """The types among ``types`` that have no implementation (e.g. a chain's)."""
        return sorted({step_type for step_type in types if step_type not in self._impls})

    def __getitem__(self, step_type: str) -> StepImpl:
        return self._impls[step_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._impls)

    def __len__(self) -> int:
        return len(self._impls)


def default_registry() -> StepRegistry:
    """A fresh registry holding the built-in steps: noop, fail, http_request, wait_ready."""
    registry = StepRegistry()
    registry.register("noop", basic.noop)
    registry.register("fail", basic.fail)
    registry.register("http_request", http_request.http_request)
    registry.register("wait_ready", wait_ready.wait_ready)
    return registry
