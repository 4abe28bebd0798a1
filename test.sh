#!/usr/bin/env bash
# The whole test suite: lint, types, layer contracts, then pytest.
# Creates or reuses .venv and installs what it needs. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
echo "== lock agrees with pyproject.toml"
.venv/bin/python scripts/check_lock.py
echo "== ruff"
.venv/bin/ruff check reconciler tests bench
echo "== mypy --strict"
.venv/bin/mypy --strict reconciler
echo "== import contracts"
.venv/bin/lint-imports
echo "== schemas up to date"
.venv/bin/python -m reconciler.specs.schema_export --check
echo "== pytest"
# Bytecode is kept (__pycache__, ignored by Git): every pytest worker and every daemon a
# test starts imports the same modules, and compiling them each time costs minutes.
unset PYTHONDONTWRITEBYTECODE
# Tests run on several workers (pytest-xdist): most of them wait on daemons, servers and
# subprocesses. RECONCILER_TEST_WORKERS=0 runs them in this one process.
workers=${RECONCILER_TEST_WORKERS:-4}
.venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist worksteal "$@"
