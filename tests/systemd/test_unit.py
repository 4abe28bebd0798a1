"""The systemd unit: what it declares, that systemd accepts it, and how tight its sandbox is.

``systemd-analyze verify`` and ``security --offline=yes`` read unit files without a
running systemd; the tests that need them skip when the tool is absent. ``verify`` checks
that ExecStart's binary exists, so it runs on a copy of the unit whose ExecStart points at
a stand-in executable in a temporary folder; everything else is the shipped file.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "reconciler.service"
GPU_DROP_IN = ROOT / "systemd" / "local-gpu.conf"
SYSUSERS = ROOT / "systemd" / "reconciler.sysusers"
MAX_EXPOSURE = 3.0

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt install systemd)"
)


def directives(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value assigned, in order (keys may repeat in units)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def verifiable_copy(tmp_path: Path, *extra: Path) -> Path:
    """The unit (plus drop-ins appended) with ExecStart on an executable that exists."""
    stand_in = tmp_path / "reconciler"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    text = UNIT.read_text().replace("/usr/bin/reconciler", str(stand_in))
    for part in extra:
        text += "\n" + part.read_text()
    copy = tmp_path / "reconciler.service"
    copy.write_text(text)
    return copy


def exposure(unit: Path) -> float:
    done = analyze("security", "--offline=yes", str(unit))
    assert done.returncode == 0, done.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert match is not None, done.stdout
    return float(match.group(1))


def test_the_unit_declares_notify_watchdog_reload_and_restart() -> None:
    unit = directives(UNIT.read_text())
    assert unit["Service.Type"] == ["notify"]
    assert unit["Service.NotifyAccess"] == ["main"]
    assert unit["Service.ExecStart"] == [
        "/usr/bin/reconciler run --config /etc/reconciler/reconciler.yaml"
    ]
    assert unit["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Service.WatchdogSec"] == ["30s"]
    assert unit["Service.Restart"] == ["on-failure"]
    assert unit["Service.TimeoutStopSec"] == ["30s"]
    assert unit["Install.WantedBy"] == ["multi-user.target"]


def test_the_unit_runs_unprivileged_in_a_sandbox() -> None:
    unit = directives(UNIT.read_text())
    assert unit["Service.User"] == ["reconciler"]
    assert unit["Service.StateDirectory"] == ["reconciler"]
    assert unit["Service.ConfigurationDirectory"] == ["reconciler"]
    assert unit["Service.ReadWritePaths"] == ["/var/lib/reconciler"]
    assert unit["Service.CapabilityBoundingSet"] == [""]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "MemoryDenyWriteExecute"):
        assert unit[f"Service.{key}"] == ["yes"], key
    assert unit["Service.ProtectSystem"] == ["strict"]
    assert unit["Service.RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "Service.IPAddressDeny" not in unit  # it must reach Git remotes and clusters


def test_the_unit_documents_how_to_pass_secrets_as_credentials() -> None:
    text = UNIT.read_text()
    assert re.search(r"^#\s+LoadCredential=webhook-hmac:/etc/reconciler/credentials/", text, re.M)
    assert re.search(r"^#\s+LoadCredentialEncrypted=hf-token:", text, re.M)


@needs_analyze
def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    done = analyze("verify", "--man=no", str(verifiable_copy(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""


@needs_analyze
def test_verify_would_report_a_mistyped_directive(tmp_path: Path) -> None:
    copy = verifiable_copy(tmp_path)
    copy.write_text(copy.read_text().replace("WatchdogSec=", "WatchDogSec="))
    done = analyze("verify", "--man=no", str(copy))
    assert "Unknown key" in done.stderr and "WatchDogSec" in done.stderr


@needs_analyze
def test_security_exposure_is_at_most_three() -> None:
    assert exposure(UNIT) <= MAX_EXPOSURE


@needs_analyze
def test_the_local_gpu_drop_in_is_valid_and_keeps_the_sandbox_tight(tmp_path: Path) -> None:
    merged = verifiable_copy(tmp_path, GPU_DROP_IN)
    done = analyze("verify", "--man=no", str(merged))
    assert done.stdout + done.stderr == ""
    assert exposure(UNIT) < exposure(merged) <= MAX_EXPOSURE


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_the_sysusers_entry_creates_the_units_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", "--dry-run", str(SYSUSERS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Creating user 'reconciler'" in done.stdout + done.stderr


_MDWE_PROBE = """
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("W+X mapping was allowed: the probe does not test anything")
except OSError:
    pass
import aiohttp, git, pydantic, ruamel.yaml, sqlite3, ssl, yaml
import reconciler.daemon.config, reconciler.daemon.logs, reconciler.drivers.sd_notify
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda v: v + 1)
assert callback(1) == 2
yaml.load("a: 1", Loader=yaml.CSafeLoader)
print("ok")
"""


def test_python_and_our_dependencies_run_without_writable_executable_memory() -> None:
    """MemoryDenyWriteExecute=yes; the kernel's PR_SET_MDWE applies the same rule here."""
    if not hasattr(ctypes, "CDLL") or sys.platform != "linux":
        pytest.skip("needs Linux")
    done = subprocess.run(
        [sys.executable, "-c", _MDWE_PROBE],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    if done.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
