"""noop and fail, and the registry that picks implementations by step type."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from reconciler.core import step_types
from reconciler.engine import outcomes
from reconciler.engine.context import StepContext
from reconciler.engine.step_runner import run_step
from reconciler.steps import basic
from reconciler.steps.registry import StepRegistry, UnknownStepTypeError, default_registry

ContextFactory = Callable[..., StepContext]


async def test_noop_waits_its_delay(make_context: ContextFactory) -> None:
    began = time.monotonic()
    assert await basic.noop(make_context("noop", {"delay": "30ms"})) == outcomes.Done()
    assert time.monotonic() - began >= 0.03
    assert await basic.noop(make_context("noop", {})) == outcomes.Done()


async def test_noop_with_a_bad_delay_stalls(make_context: ContextFactory) -> None:
    outcome = await run_step(basic.noop, make_context("noop", {"delay": "soon"}), timeout_s=None)
    assert isinstance(outcome, outcomes.Stalled)
    assert "input 'delay'" in outcome.reason


@pytest.mark.parametrize(("attempt", "succeeds"), [(1, False), (2, False), (3, True), (4, True)])
async def test_fail_succeeds_from_until_attempt(
    make_context: ContextFactory, attempt: int, succeeds: bool
) -> None:
    ctx = make_context("fail", {"message": "not yet", "until_attempt": 3}, attempt=attempt)
    outcome = await basic.fail(ctx)
    assert outcome == (outcomes.Done() if succeeds else outcomes.Retry("not yet"))


async def test_fail_without_until_attempt_always_fails(make_context: ContextFactory) -> None:
    ctx = make_context("fail", {"message": "always"}, attempt=50)
    assert await basic.fail(ctx) == outcomes.Retry("always")


def test_default_registry_holds_the_builtins_with_catalogue_signatures() -> None:
    registry = default_registry()
    assert sorted(registry) == ["fail", "http_request", "noop", "wait_ready"]
    for step_type in registry:
        assert registry.registered(step_type)
        assert registry.signature(step_type) == step_types.CATALOGUE[step_type]
    assert not registry.registered("deploy_model")
    assert registry.missing(("noop", "deploy_model", "k8s_job")) == ["deploy_model", "k8s_job"]


def test_registry_refuses_uncatalogued_types_and_duplicates() -> None:
    registry = StepRegistry()
    with pytest.raises(
        UnknownStepTypeError, match=r"not in reconciler\.core\.step_types\.CATALOGUE"
    ):
        registry.register("teleport", basic.noop)
    registry.register("noop", basic.noop)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("noop", basic.fail)
    registry.register("noop", basic.fail, replace=True)
    assert registry["noop"] is basic.fail
