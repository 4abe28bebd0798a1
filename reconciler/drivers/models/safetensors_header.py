"""Reading and checking the header of a safetensors file without touching its tensors.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the data. A loader trusts that header, so a
length past the end, invalid JSON or offsets outside the data are findings of their own.
The same header gives the parameter count and dtype the sizing estimate needs, which is
why nothing is ever loaded to learn them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import struct
from collections import Counter
from pathlib import Path
from typing import Any

MAX_HEADER_BYTES = 100 * 1024 * 1024
DTYPE_BYTES: dict[str, float] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "F4": 0.5,
    "F6_E2M3": 0.75,
    "F6_E3M2": 0.75,
}
SPEC_DTYPES: dict[str, str] = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "fp8",
    "F8_E5M2": "fp8",
    "I8": "int8",
    "F4": "int4",
}


class HeaderError(ValueError):
    """The header is not what a safetensors file must hold; the message says what."""


@dataclasses.dataclass(frozen=True)
class HeaderSummary:
    """What a valid header tells: element count per safetensors dtype."""

    parameters_by_dtype: dict[str, int]

    @property
    def parameters(self) -> int:
        return sum(self.parameters_by_dtype.values())


def _entry(name: str, value: Any, data_len: int) -> tuple[str, int, int, int]:
    if not isinstance(value, dict):
        raise HeaderError(f"tensor {name!r} is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise HeaderError(f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape
    ):
        raise HeaderError(f"tensor {name!r} has an invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise HeaderError(f"tensor {name!r} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise HeaderError(
            f"tensor {name!r} data_offsets [{begin}, {end}] lie outside the "
            f"{data_len} bytes of data"
        )
    count = math.prod(shape)
    expected = count * DTYPE_BYTES[str(dtype)]
    if end - begin != math.ceil(expected):
        raise HeaderError(
            f"tensor {name!r} spans {end - begin} bytes but {dtype} {shape} needs "
            f"{math.ceil(expected)}"
        )
    return str(dtype), count, begin, end


def parse_header(raw: bytes, *, data_len: int) -> HeaderSummary:
    """Check a decoded header against ``data_len`` bytes of data; raise HeaderError."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"header is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise HeaderError("__metadata__ must map strings to strings")
    spans: list[tuple[int, int, str]] = []
    counts: Counter[str] = Counter()
    for name, value in header.items():
        dtype, count, begin, end = _entry(name, value, data_len)
        counts[dtype] += count
        if end > begin:
            spans.append((begin, end, name))
    spans.sort()
    for (_, first_end, first), (second_begin, _, second) in itertools.pairwise(spans):
        if second_begin < first_end:
            raise HeaderError(f"tensors {first!r} and {second!r} overlap")
    return HeaderSummary(parameters_by_dtype=dict(counts))


def read_header(path: Path) -> HeaderSummary:
    """Read and check the header of the safetensors file at ``path``; raise HeaderError."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise HeaderError(f"file is {size} bytes, shorter than the 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise HeaderError(f"header length {length} exceeds the {MAX_HEADER_BYTES}-byte limit")
        if 8 + length > size:
            raise HeaderError(f"header length {length} runs past the end of the {size}-byte file")
        raw = handle.read(length)
    return parse_header(raw, data_len=size - 8 - length)


def dominant_dtype(parameters_by_dtype: dict[str, int]) -> str | None:
    """The spec dtype (``bfloat16``, ...) holding most parameters, if it has a spec name."""
    if not parameters_by_dtype:
        return None
    top = max(parameters_by_dtype.items(), key=lambda item: (item[1], item[0]))[0]
    return SPEC_DTYPES.get(top.upper())
