"""Loading on several processes gives exactly what a serial run gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reconciler.cli.spec_loading import _chunks, default_jobs
from reconciler.load.documents import SourceFile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for example in EXAMPLES.glob("*.yaml"):
        (repo / example.name).write_bytes(example.read_bytes())
    for i in range(60):
        (repo / f"projects-{i:02d}.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: Project\nmetadata: {{name: p{i}}}\n"
            f"spec: {{description: project {i}}}\n"
        )
    (repo / "broken.yaml").write_text("kind: Model\nmetadata: {name: Bad_Name}\nspec: [\n")
    (repo / "typo.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Project\nmetadata: {name: p3}\nspec: {descriptin: x}\n"
    )
    return repo


def _validate(repo: Path, jobs: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(repo), "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_two_jobs_report_exactly_what_one_job_reports(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    serial, parallel = _validate(repo, 1), _validate(repo, 2)
    assert serial.returncode == parallel.returncode == 1
    assert parallel.stdout == serial.stdout
    assert "broken.yaml:" in serial.stdout and "typo.yaml:4:" in serial.stdout
    assert parallel.stderr == serial.stderr


def test_chunks_keep_the_file_order_and_every_file() -> None:
    sources = [SourceFile(f"f{i:03d}.yaml", b"x" * (i % 7 + 1)) for i in range(101)]
    chunks = _chunks(sources, 3)
    assert len(chunks) == 3 and all(chunks)
    assert [s.path for chunk in chunks for s in chunk] == [s.path for s in sources]


def test_small_repos_stay_in_one_process() -> None:
    assert default_jobs(10) == 1
