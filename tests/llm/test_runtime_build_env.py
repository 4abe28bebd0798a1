"""A runtime's ``.build-env`` file reaches pip's build environment and names the folder.

A real (tiny) runtime: a lock holding one local source package whose build fails unless
a variable of the build env is set, built by RuntimeManager from that lock; the folder
moves when the build env changes, so a changed build is never mistaken for the old one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from reconciler.drivers import runtimes
from reconciler.drivers.runtimes import RuntimeBuildError, RuntimeManager

BACKEND = """\
import base64, hashlib, os, zipfile

DIST = "tinybuilt-1.0.dist-info"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if os.environ.get("TINY_BUILD_FLAG") != "on":
        raise SystemExit("TINY_BUILD_FLAG is not set to on")
    files = {
        "tinybuilt.py": open("tinybuilt.py", "rb").read(),
        DIST + "/METADATA": b"Metadata-Version: 2.1\\nName: tinybuilt\\nVersion: 1.0\\n",
        DIST + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\n"
        b"Tag: py3-none-any\\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append("%s,sha256=%s,%d" % (name, digest.decode(), len(data)))
    files[DIST + "/RECORD"] = ("\\n".join(record + [DIST + "/RECORD,,"]) + "\\n").encode()
    wheel = "tinybuilt-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
"""
"""An in-tree PEP 517 backend with no requirements: pip builds the package in its isolated
build environment, as it would any sdist, without first installing setuptools into it."""

PYPROJECT = """\
[build-system]
requires = []
build-backend = "tinybackend"
backend-path = ["."]
"""


def _sdist(tmp_path: Path) -> Path:
    out = tmp_path / "dist"
    out.mkdir()
    archive = out / "tinybuilt-1.0.tar.gz"
    members = {
        "PKG-INFO": "Metadata-Version: 2.1\nName: tinybuilt\nVersion: 1.0\n",
        "pyproject.toml": PYPROJECT,
        "tinybackend.py": BACKEND,
        "tinybuilt.py": "VALUE = 1\n",
    }
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"tinybuilt-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


async def test_build_env_is_set_while_building_and_moves_the_folder(tmp_path: Path) -> None:
    archive = _sdist(tmp_path)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "tiny.lock").write_text(f"tinybuilt @ file://{archive} --hash=sha256:{digest}\n")
    manager = RuntimeManager(root=tmp_path / "runtimes", locks_dir=locks)
    without = manager.location("tiny")
    with pytest.raises(RuntimeBuildError, match="TINY_BUILD_FLAG is not set"):
        await manager.ensure("tiny")

    (locks / "tiny.build-env").write_text("# comment\nTINY_BUILD_FLAG=on\n")
    assert manager.build_env("tiny") == {"TINY_BUILD_FLAG": "on"}
    assert manager.location("tiny") != without
    built = await manager.ensure("tiny")
    assert built.parent == manager.location("tiny")
    ran = subprocess.run(
        [str(built / "python"), "-c", "import tinybuilt; print(tinybuilt.VALUE)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == "1"
    # The daemon's pip installed it: the runtime holds the package and no pip of its own.
    assert not list(built.parent.glob("lib/python*/site-packages/pip"))
    assert list(built.parent.glob("lib/python*/site-packages/tinybuilt.py"))


@pytest.mark.parametrize(
    ("version", "expected"), [("22.2.2", False), ("22.3", True), ("23.2.1", True), (None, False)]
)
def test_the_daemons_pip_installs_runtimes_only_when_it_takes_python(
    monkeypatch: pytest.MonkeyPatch, version: str | None, expected: bool
) -> None:
    def pip_version(name: str) -> str:
        assert name == "pip"
        if version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(importlib.metadata, "version", pip_version)
    assert runtimes._pip_installs_into_others() is expected


def test_a_malformed_build_env_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.lock").write_text("")
    (tmp_path / "x.build-env").write_text("GOOD=1\nno equals sign\n")
    manager = RuntimeManager(root=tmp_path / "runtimes", locks_dir=tmp_path)
    with pytest.raises(RuntimeBuildError, match=r"x\.build-env:2: expected KEY=VALUE"):
        manager.build_env("x")
