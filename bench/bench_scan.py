"""Benchmark: hash and scan a generated 1 GB model folder, first run and cached rerun.

Compares the first run (sha256 of every file, then the security scan) with ``sha256sum``
over the same files, and times the rerun that the hash and verdict cache should answer.
Goal (issue 8): first run within 1.5x of sha256sum, rerun under 1 s.

    .venv/bin/python bench/bench_scan.py [--size-mb 1024] [--files 4]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from reconciler.drivers.models import hashing, scanners


def _safetensors(path: Path, data_bytes: int) -> None:
    count = data_bytes // 2
    header = json.dumps({"w": {"dtype": "BF16", "shape": [count], "data_offsets": [0, count * 2]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    chunk = os.urandom(1 << 20)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        written = 0
        while written < count * 2:
            piece = chunk[: min(len(chunk), count * 2 - written)]
            out.write(piece)
            written += len(piece)


def generate(root: Path, *, size_mb: int, files: int) -> None:
    per_file = size_mb * 1024 * 1024 // files
    for index in range(files):
        _safetensors(root / f"model-{index + 1:05d}-of-{files:05d}.safetensors", per_file)
    (root / "config.json").write_text('{"hidden_size": 4096, "num_hidden_layers": 32}')
    (root / "tokenizer.json").write_text(json.dumps({"vocab": {str(i): i for i in range(50000)}}))


def _scan(root: Path, cache: hashing.HashCache) -> tuple[float, scanners.ScanReport]:
    start = time.perf_counter()
    files = hashing.hash_files(root=root, cache=cache)
    report = scanners.scan_files(root=root, files=files, cache=cache)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as temp:
        root = Path(temp) / "model"
        root.mkdir()
        generate(root, size_mb=args.size_mb, files=args.files)
        names = sorted(str(p) for p in root.iterdir())
        old = time.time() - 60  # outside the racy window, as a model on disk would be
        for name in names:
            os.utime(name, (old, old))
        subprocess.run(["cat", *names], stdout=subprocess.DEVNULL, check=True)  # warm page cache
        start = time.perf_counter()
        subprocess.run(["sha256sum", *names], stdout=subprocess.DEVNULL, check=True)
        sha256sum_s = time.perf_counter() - start
        cache = hashing.HashCache(db_path=Path(temp) / "cache" / "models.sqlite")
        first_s, first = _scan(root, cache)
        rerun_s, again = _scan(root, cache)
        cache.close()
        assert first.result == again.result == "clean", first.findings
        total = sum(p.stat().st_size for p in root.iterdir())
        print(f"model folder: {len(names)} files, {total / 2**20:.0f} MiB, cpus={os.cpu_count()}")
        print(f"sha256sum (warm cache):   {sha256sum_s:7.2f} s")
        print(
            f"first hash+scan:          {first_s:7.2f} s  ({first_s / sha256sum_s:.2f}x sha256sum)"
        )
        print(
            f"cached rerun:             {rerun_s:7.3f} s  (scanned {again.scanned_files}, "
            f"cached {again.cached_files})"
        )


if __name__ == "__main__":
    main()
