"""``reconciler steps``: the step types a Workflow node may use, with their inputs and outputs.

Text lists each type with its description, its inputs (required ones marked) and its
outputs; ``--format json`` prints an array of ``{name, description, inputs, outputs}``,
inputs and outputs as JSON Schema objects, for editors and for the flow framework's
"get workflow steps" clients. It reads only the built-in catalogue: no repo, no daemon.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from reconciler.core.step_types import catalogue_entries


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _type_text(schema: Mapping[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        text = " | ".join(str(t) for t in declared)
    elif declared is not None:
        text = str(declared)
    elif "anyOf" in schema:
        text = " | ".join(_type_text(option) for option in schema["anyOf"])
    else:
        text = "any"
    if "enum" in schema:
        text += " (" + ", ".join(str(v) for v in schema["enum"]) + ")"
    if schema.get("format") == "duration":
        text = "duration"
    return text


def _render_text(entries: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for entry in entries:
        lines.append(f"{entry['name']}: {entry['description']}")
        inputs = entry["inputs"]
        required = set(inputs["required"])
        for name, schema in inputs["properties"].items():
            mark = "required" if name in required else "optional"
            lines.append(f"    in   {name}: {_type_text(schema)}, {mark}")
        if inputs["additionalProperties"]:
            lines.append("    in   ...: any other field of the matching spec")
        for name, schema in entry["outputs"]["properties"].items():
            lines.append(f"    out  {name}: {_type_text(schema)}")
        lines.append("")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    entries = catalogue_entries()
    if args.format == "json":
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
    else:
        sys.stdout.write(_render_text(entries))
    return 0
