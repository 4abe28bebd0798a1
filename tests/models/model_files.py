"""Model files the tests write byte by byte: hostile pickles, torch checkpoints, safetensors, GGUF.

Pickles are assembled from opcodes (no ``pickle.dumps`` of a live object, no torch), so the
fixtures are exactly what an attacker would ship. Each hostile payload writes a marker file
when unpickled; tests prove the payloads are live by unpickling one in a child process,
and prove the scanner never unpickles by checking the marker never appears.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def _str(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def _global(module: str, name: str) -> bytes:
    return _str(module) + _str(name) + b"\x93"  # STACK_GLOBAL


def _write_marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


def os_system_protocol0(marker: Path) -> bytes:
    """os.system('touch MARKER') in protocol 0: plain text, the oldest trick."""
    command = f"touch {marker}"
    return b"cos\nsystem\n(S" + repr(command).encode() + b"\ntR."


def getattr_eval(marker: Path) -> bytes:
    """getattr(__import__('builtins'), 'eval')(code), protocol 4."""
    return (
        b"\x80\x04"
        + _global("builtins", "getattr")
        + b"("
        + _global("builtins", "__import__")
        + b"("
        + _str("builtins")
        + b"tR"
        + _str("eval")
        + b"tR("
        + _str(_write_marker_code(marker))
        + b"tR."
    )


def methodcaller_eval(marker: Path) -> bytes:
    """operator.methodcaller('__call__', code)(builtins.eval), protocol 4."""
    return (
        b"\x80\x04"
        + _global("operator", "methodcaller")
        + b"("
        + _str("__call__")
        + _str(_write_marker_code(marker))
        + b"tR("
        + _global("builtins", "eval")
        + b"tR."
    )


def memo_trick(marker: Path) -> bytes:
    """os.system named through the memo: strings memoized, popped, fetched back by index."""
    return (
        b"\x80\x04"
        + _str("os")
        + b"\x94"  # MEMOIZE -> 0
        + b"0"  # POP
        + _str("system")
        + b"\x94"  # MEMOIZE -> 1
        + b"0"
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + b"("
        + _str(f"touch {marker}")
        + b"tR."
    )


def clean_state_pickle() -> bytes:
    """A torch-like state dict: OrderedDict of one tensor rebuilt from storage '0'."""
    storage = b"(" + _str("storage") + _global("torch", "FloatStorage") + _str("0")
    storage += _str("cpu") + b"K\x04tQ"  # persistent id tuple, BINPERSID
    tensor = (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + b"K\x00"  # storage offset
        + b"K\x02K\x02\x86"  # size (2, 2)
        + b"K\x02K\x01\x86"  # stride (2, 1)
        + b"\x89"  # requires_grad False
        + _global("collections", "OrderedDict")
        + b")R"
        + b"tR"
    )
    return (
        b"\x80\x02"
        + _global("collections", "OrderedDict")
        + b")R"
        + _str("weight")
        + tensor
        + b"s."
    )


def torch_zip(state_pickle: bytes) -> bytes:
    """The torch >= 1.6 zip layout: archive/data.pkl, archive/data/0, archive/version."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", state_pickle)
        archive.writestr("archive/data/0", b"\x00" * 16)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _long1(value: int) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def torch_legacy(main_pickle: bytes) -> bytes:
    """The legacy torch layout: magic number, protocol, sys info, the object, storage keys."""
    magic = b"\x80\x02" + _long1(TORCH_MAGIC) + b"."
    protocol = b"\x80\x02M\xe9\x03."  # 1001
    sys_info = b"\x80\x02}" + _str("little_endian") + b"\x88s."
    keys = b"\x80\x02]" + _str("0") + b"a."
    return magic + protocol + sys_info + main_pickle + keys + struct.pack("<q", 4) + b"\x00" * 16


def safetensors(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file: dtype and shape per tensor, zero data."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        length = count * sizes[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + length]}
        offset += length
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"\x00" * offset


def safetensors_bad_offsets() -> bytes:
    """A header whose tensor claims bytes beyond the end of the file."""
    raw = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4096]}}).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\x00" * 16


def safetensors_header_past_end() -> bytes:
    return struct.pack("<Q", 1 << 20) + b'{"w": {}}'


def gguf() -> bytes:
    """A GGUF v3 file with no tensors and no metadata."""
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 0)


def tar_with_escape(member_name: str = "../escaped.txt") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("model/config.json", b"{}"), (member_name, b"outside")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_with_link_out() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("model/weights.bin")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        archive.addfile(info)
    return buffer.getvalue()


def plain_tar(files: dict[str, bytes], *, gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_with_escape() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../../evil.txt", "outside")
    return buffer.getvalue()
