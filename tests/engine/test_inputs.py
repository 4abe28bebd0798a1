"""Inputs: ${{ }} from params and upstream outputs, and outputs passed by pass_outputs."""

from __future__ import annotations

from executor_kit import ExecutorFactory, Probe, chain, node

from reconciler.core.chains import StepNode
from reconciler.engine.store import Store


async def test_params_and_upstream_outputs_are_substituted(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(
            node("a", inputs={"value": "${{ greeting }}"}),
            node("b", "probe", "a", inputs={"value": "${{ a.value }} and ${{ a.node }}"}),
            node("c", "probe", "a", inputs={"value": "${{ count }}"}),
            params={"greeting": "hello", "count": 3},
        )
    )
    record = await executor.wait(execution_id)
    assert record.status == "succeeded"
    assert probe.inputs["b"]["value"] == "hello and a"
    assert probe.inputs["c"]["value"] == 3  # a lone placeholder keeps its type
    stored = {s.node_id: s for s in store.get_steps(execution_id)}
    assert stored["b"].inputs == {"value": "hello and a"}
    assert stored["b"].outputs == {"node": "b", "value": "hello and a"}


async def test_pass_outputs_hand_over_declared_inputs_only(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(
            StepNode(id="a", type="probe", inputs={"value": 42}),
            # "value" is declared by probe: handed over; "node" is not: ignored.
            StepNode(id="b", type="probe", pass_outputs={"a": "value"}),
            StepNode(id="c", type="probe", after=("a",), pass_outputs={"b": "node"}),
        )
    )
    record = await executor.wait(execution_id)
    assert record.status == "succeeded"
    assert probe.inputs["b"] == {"value": 42}
    assert probe.inputs["c"] == {}


async def test_explicit_input_wins_over_passed_output(
    make_executor: ExecutorFactory, probe: Probe
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(
            StepNode(id="a", type="probe", inputs={"value": "from-a"}),
            StepNode(id="b", type="probe", inputs={"value": "mine"}, pass_outputs={"a": "value"}),
        )
    )
    assert (await executor.wait(execution_id)).status == "succeeded"
    assert probe.inputs["b"] == {"value": "mine"}


async def test_unknown_parameter_stalls_the_chain(
    make_executor: ExecutorFactory, probe: Probe, store: Store
) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(
        chain(
            node("a", inputs={"value": "${{ missing }}"}),
            node("b", "probe", "a"),
        )
    )
    record = await executor.wait(execution_id)
    assert record.status == "stalled"
    assert "unknown parameter 'missing'" in (record.error or "")
    steps = {s.node_id: s.status for s in store.get_steps(execution_id)}
    assert steps == {"a": "stalled", "b": "skipped"}
    assert probe.started == []


async def test_missing_required_input_stalls(make_executor: ExecutorFactory, store: Store) -> None:
    executor = make_executor()
    await executor.start()
    execution_id = executor.submit(chain(StepNode(id="call", type="http_request")))
    record = await executor.wait(execution_id)
    assert record.status == "stalled"
    assert "requires input(s) method, url" in (record.error or "")
