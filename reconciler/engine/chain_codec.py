"""Chains to and from JSON, so an execution's exact plan is stored and can be resumed.

After a restart the executor must run the very chain it was given, not a re-plan of the
current specs: the stored JSON is the plan of record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from reconciler.core import chains

_ACTIONS = ("apply", "delete", "execute", "deprovision")


class ChainDecodeError(ValueError):
    """Stored chain JSON that this release cannot read."""


def chain_to_dict(chain: chains.Chain) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": chain.kind,
        "name": chain.name,
        "action": chain.action,
        "revision": chain.revision,
        "spec_hash": chain.spec_hash,
        "cluster": chain.cluster,
        "params": dict(chain.params),
        "steps": [step.as_dict() for step in chain.steps],
    }
    if chain.timeout is not None:
        data["timeout"] = chain.timeout
    return data


def chain_to_json(chain: chains.Chain) -> str:
    return json.dumps(chain_to_dict(chain), separators=(",", ":"), sort_keys=True)


def _step_from_dict(data: Mapping[str, Any]) -> chains.StepNode:
    timeout = data.get("timeout")
    return chains.StepNode(
        id=str(data["id"]),
        type=str(data["type"]),
        inputs=dict(data.get("inputs") or {}),
        after=tuple(str(item) for item in data.get("after") or ()),
        pass_outputs={str(k): str(v) for k, v in (data.get("pass_outputs") or {}).items()},
        retries=int(data.get("retries", 0)),
        retry_delay=float(data.get("retry_delay", 1.0)),
        timeout=None if timeout is None else float(timeout),
    )


def chain_from_dict(data: Mapping[str, Any]) -> chains.Chain:
    try:
        action = str(data["action"])
        if action not in _ACTIONS:
            raise ChainDecodeError(f"unknown chain action {action!r}")
        return chains.Chain(
            kind=str(data["kind"]),
            name=str(data["name"]),
            action=cast(chains.ChainAction, action),
            revision=str(data["revision"]),
            spec_hash=str(data["spec_hash"]),
            steps=tuple(_step_from_dict(step) for step in data["steps"]),
            cluster=None if data.get("cluster") is None else str(data["cluster"]),
            params=dict(data.get("params") or {}),
            timeout=None if data.get("timeout") is None else float(data["timeout"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ChainDecodeError):
            raise
        raise ChainDecodeError(f"stored chain is malformed: {e!r}") from e


def chain_from_json(text: str) -> chains.Chain:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ChainDecodeError(f"stored chain is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise ChainDecodeError("stored chain is not a JSON object")
    return chain_from_dict(data)
