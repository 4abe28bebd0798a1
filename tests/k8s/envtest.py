"""A real kube-apiserver and etcd from ``KUBEBUILDER_ASSETS`` (the envtest convention).

When the folder holds both binaries, the kubernetes driver tests also run against the
real server: etcd on loopback ports, kube-apiserver with a static token and no
controllers (the fake kubelet plays them). ``start_envtest`` returns None when absent.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

TOKEN = "envtest-token-7c2a91"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class EnvTest:
    url: str
    token: str
    processes: list[subprocess.Popen[bytes]]

    def kubeconfig(self, *, context: str = "envtest", extra_contexts: tuple[str, ...] = ()) -> str:
        names = (context, *extra_contexts)
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "envtest",
                        "cluster": {"server": self.url, "insecure-skip-tls-verify": True},
                    }
                ],
                "users": [{"name": "tester", "user": {"token": self.token}}],
                "contexts": [
                    {"name": n, "context": {"cluster": "envtest", "user": "tester"}} for n in names
                ],
                "current-context": context,
            }
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            process.wait(timeout=30)


def assets() -> Path | None:
    folder = os.environ.get("KUBEBUILDER_ASSETS")
    if not folder:
        return None
    path = Path(folder)
    if (path / "kube-apiserver").is_file() and (path / "etcd").is_file():
        return path
    return None


def start_envtest(workdir: Path) -> EnvTest | None:
    folder = assets()
    if folder is None:
        return None
    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    etcd = subprocess.Popen(
        [
            str(folder / "etcd"),
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (workdir / "tokens.csv").write_text(f"{TOKEN},tester,1,system:masters\n")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=envtest",
            "-keyout",
            str(workdir / "sa.key"),
            "-out",
            str(workdir / "sa.crt"),
        ],
        check=True,
        capture_output=True,
    )
    apiserver = subprocess.Popen(
        [
            str(folder / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={workdir / 'certs'}",
            f"--token-auth-file={workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={workdir / 'sa.crt'}",
            f"--service-account-signing-key-file={workdir / 'sa.key'}",
            "--service-account-issuer=https://envtest.local",
            "--disable-admission-plugins=ServiceAccount",
            "--service-cluster-ip-range=10.96.0.0/16",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = EnvTest(url=f"https://127.0.0.1:{api_port}", token=TOKEN, processes=[etcd, apiserver])
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"{env.url}/readyz", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(request, context=context, timeout=2) as response:
                if response.status == 200:
                    return env
        except OSError:
            time.sleep(0.2)
    env.stop()
    raise RuntimeError("kube-apiserver from KUBEBUILDER_ASSETS did not become ready in 60 s")
