"""The security scan of a model's files: picklescan per file, chosen by content, plus our checks.

Evidence gathered for issue 8 decided the shape: picklescan catches hostile pickles, torch
zips and legacy checkpoints when it is called on each file, but picks files by extension
in folder mode. So every file is opened here and sniffed: pickle and zip magic count under
any name, a pickle or zip under a ``.safetensors`` or ``.gguf`` name is critical, a
safetensors header must be sane, GGUF must carry its magic, and archive members may not
point outside. Nothing is ever unpickled: picklescan only walks opcodes.

Verdicts are cached by content hash (with the rules' version), so a rescan of unchanged
files reads nothing but the cache.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import tarfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from picklescan import scanner as picklescan  # type: ignore[import-untyped]

from reconciler.drivers.models import safetensors_header
from reconciler.drivers.models.hashing import FileEntry, HashCache

Severity = Literal["low", "medium", "high", "critical"]
ScanResultName = Literal["clean", "findings", "skipped"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
BLOCKING_SEVERITIES = frozenset({"high", "critical"})
RULES_VERSION = f"reconciler-scan-1/picklescan-{metadata.version('picklescan')}"
OURS = "reconciler"
PICKLESCAN = "picklescan"
_SNIFF_BYTES = 512
_PICKLE_PROTOCOLS = frozenset(range(1, 6))
_CODE_SUFFIXES = frozenset({".py", ".sh", ".so", ".dll", ".dylib", ".exe"})


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing found: ``path`` relative to the model root (``file:member`` inside one)."""

    path: str
    severity: Severity
    reason: str
    scanner: str

    def as_status(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """The verdict on a whole model, in the shape of the ``scan`` status field (docs/status.md)."""

    result: ScanResultName
    findings: tuple[Finding, ...] = ()
    scanned_files: int = 0
    cached_files: int = 0

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity in BLOCKING_SEVERITIES)

    def as_status(self) -> dict[str, object]:
        return {"result": self.result, "findings": [f.as_status() for f in self.findings]}


def sniff(head: bytes) -> str:
    """The format the first bytes of a file show, whatever its name says."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and head[1] in _PICKLE_PROTOCOLS:
        return "pickle"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] > 1:
        return "safetensors"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a cut multi-byte character at the end is fine
                return "binary"
        return "text"
    return "binary"


def name_kind(relative: str) -> str:
    """What the file's name claims it is; part of the verdict cache key."""
    suffix = PurePosixPath(relative).suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".gguf":
        return "gguf"
    if suffix in _CODE_SUFFIXES:
        return "code"
    return "other"


def _escapes(name: str) -> bool:
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    return posix.startswith("/") or ".." in parts or (len(posix) > 1 and posix[1] == ":")


def _picklescan(
    handle: IO[bytes], where: str, *, file_ext: str | None, text_like: bool
) -> list[Finding]:
    try:
        result = picklescan.scan_bytes(handle, where, file_ext)
    except Exception as exc:  # picklescan raises bare exceptions on broken input
        return [
            Finding(
                where,
                "high",
                f"picklescan could not read it ({type(exc).__name__}: {exc}); "
                "a file that cannot be scanned is not trusted",
                PICKLESCAN,
            )
        ]
    found: list[Finding] = []
    for item in result.globals:
        label = f"{item.module}.{item.name}"
        if item.safety == picklescan.SafetyLevel.Dangerous:
            if "unknown" in (item.module, item.name):
                reason = (
                    f"pickle builds an import the scanner cannot name ({label}): a memo or "
                    "stack trick that hides what loading it would call"
                )
            else:
                reason = f"pickle imports {label}: loading it runs that code"
            found.append(Finding(where, "critical", reason, PICKLESCAN))
        elif item.safety == picklescan.SafetyLevel.Suspicious and not text_like:
            found.append(
                Finding(
                    where,
                    "medium",
                    f"pickle imports {label}, which is not on the scanner's safe list",
                    PICKLESCAN,
                )
            )
    return found


def _zip_member_findings(path: Path, relative: str) -> list[Finding]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        return [Finding(relative, "high", f"broken zip archive: {exc}", OURS)]
    return [
        Finding(
            f"{relative}:{name}",
            "high",
            f"zip member {name!r} points outside the archive's folder",
            OURS,
        )
        for name in names
        if _escapes(name)
    ]


def _tar_findings(path: Path, relative: str) -> list[Finding]:
    found: list[Finding] = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                where = f"{relative}:{member.name}"
                if _escapes(member.name):
                    found.append(
                        Finding(where, "high", f"tar member {member.name!r} escapes", OURS)
                    )
                elif member.issym() or member.islnk():
                    target = member.linkname
                    base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
                    if _escapes(target) or _escapes(str(base / target)):
                        found.append(
                            Finding(
                                where,
                                "high",
                                f"tar link {member.name!r} -> {target!r} points outside",
                                OURS,
                            )
                        )
                elif member.isfile():
                    extracted = archive.extractfile(member)
                    if extracted is None:
                        continue
                    with extracted:
                        kind = sniff(extracted.read(_SNIFF_BYTES))
                        extracted.seek(0)
                        if kind in ("pickle", "zip"):
                            ext = ".pt" if kind == "pickle" else None
                            found += _picklescan(extracted, where, file_ext=ext, text_like=False)
                elif not member.isdir():
                    found.append(Finding(where, "medium", "tar member is a device or fifo", OURS))
    except (tarfile.TarError, OSError, EOFError) as exc:
        found.append(Finding(relative, "high", f"broken tar archive: {exc}", OURS))
    return found


def _wrong_content(relative: str, claimed: str, kind: str) -> Finding:
    if kind in ("pickle", "zip"):
        return Finding(
            relative,
            "critical",
            f"{kind} data under a .{claimed} name: a loader that trusts the content would "
            "unpickle it",
            OURS,
        )
    return Finding(relative, "high", f"not a {claimed} file (content looks like {kind})", OURS)


def _format_findings(path: Path, relative: str, claimed: str, kind: str) -> list[Finding]:
    if claimed in ("safetensors", "gguf") and kind != claimed:
        return [_wrong_content(relative, claimed, kind)]
    if kind == "safetensors":
        try:
            safetensors_header.read_header(path)
        except safetensors_header.HeaderError as exc:
            return [Finding(relative, "high", f"bad safetensors header: {exc}", OURS)]
    if kind == "gguf":
        with path.open("rb") as handle:
            head = handle.read(8)
        version = struct.unpack("<I", head[4:8])[0] if len(head) == 8 else None
        if version not in (1, 2, 3):
            return [Finding(relative, "high", f"GGUF file with unknown version {version}", OURS)]
    if claimed == "code":
        return [
            Finding(
                relative,
                "low",
                "executable code among the model's files: a server runs it only when told "
                "to trust remote code",
                OURS,
            )
        ]
    return []


def scan_file(path: Path, relative: str) -> list[Finding]:
    """Every finding on one file; reads it, never loads or unpickles it."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    kind = sniff(head)
    claimed = name_kind(relative)
    found = _format_findings(path, relative, claimed, kind)
    if kind in ("safetensors", "gguf") and claimed in ("safetensors", "gguf", "other"):
        return found
    if kind == "tar":
        return found + _tar_findings(path, relative)
    if kind == "gzip":
        if tarfile.is_tarfile(path):
            return found + _tar_findings(path, relative)
        return [*found, Finding(relative, "medium", "gzip file: its content is not scanned", OURS)]
    if kind == "zip":
        found += _zip_member_findings(path, relative)
    ext = None if kind == "zip" else ".pt"
    with path.open("rb") as handle:
        found += _picklescan(handle, relative, file_ext=ext, text_like=kind == "text")
    return found


def _encode(findings: Sequence[Finding], relative: str) -> str:
    return json.dumps(
        [[f.path[len(relative) :], f.severity, f.reason, f.scanner] for f in findings]
    )


def _decode(text: str, relative: str) -> list[Finding]:
    return [
        Finding(relative + suffix, severity, reason, scanner)
        for suffix, severity, reason, scanner in json.loads(text)
    ]


def scan_files(*, root: Path, files: Sequence[FileEntry], cache: HashCache | None) -> ScanReport:
    """Scan every listed file under ``root``; a verdict cached for its hash is reused."""
    found: list[Finding] = []
    scanned = cached = 0
    for entry in files:
        kind = name_kind(entry.path)
        remembered = (
            cache.lookup_verdict(sha256=entry.sha256, name_kind=kind, rules=RULES_VERSION)
            if cache
            else None
        )
        if remembered is not None:
            found += _decode(remembered, entry.path)
            cached += 1
            continue
        one = scan_file(root / entry.path if root.is_dir() else root, entry.path)
        scanned += 1
        if cache is not None:
            cache.store_verdict(
                sha256=entry.sha256,
                name_kind=kind,
                rules=RULES_VERSION,
                findings=_encode(one, entry.path),
            )
        found += one
    found.sort(key=lambda f: (f.path, -SEVERITIES.index(f.severity), f.reason))
    return ScanReport(
        result="findings" if found else "clean",
        findings=tuple(found),
        scanned_files=scanned,
        cached_files=cached,
    )


def skipped() -> ScanReport:
    """The report of ``security_scan: skip``: files hashed, nothing scanned."""
    return ScanReport(result="skipped")
