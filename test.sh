#!/usr/bin/env bash
# The whole test suite: lint, layer contracts, schemas, then pytest with mypy beside it.
# Creates or reuses .venv and installs what it needs. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
echo "== lock agrees with pyproject.toml"
.venv/bin/python scripts/check_lock.py
echo "== ruff"
.venv/bin/ruff check reconciler tests bench
echo "== import contracts"
.venv/bin/lint-imports
echo "== schemas up to date"
.venv/bin/python -m reconciler.specs.schema_export --check
# Bytecode is kept (__pycache__, ignored by Git): every pytest worker and every daemon a
# test starts imports the same modules, and compiling them each time costs minutes.
unset PYTHONDONTWRITEBYTECODE
# mypy runs beside pytest: from a fresh clone (no .mypy_cache) it takes ~45 s on one core,
# which pytest's workers would otherwise wait for. Its output is printed at the end.
mypy_out=$(mktemp)
trap 'rm -f "$mypy_out"' EXIT
.venv/bin/mypy --strict reconciler > "$mypy_out" 2>&1 &
mypy_pid=$!
echo "== pytest (mypy --strict runs beside it)"
# Tests run on several workers (pytest-xdist): most of them wait on daemons, servers and
# subprocesses. RECONCILER_TEST_WORKERS=0 runs them in this one process.
workers=${RECONCILER_TEST_WORKERS:-4}
pytest_rc=0
.venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist worksteal "$@" || pytest_rc=$?
echo "== mypy --strict"
mypy_rc=0
wait "$mypy_pid" || mypy_rc=$?
cat "$mypy_out"
if [ "$pytest_rc" -ne 0 ] || [ "$mypy_rc" -ne 0 ]; then
    echo "test.sh: failed (pytest exit $pytest_rc, mypy exit $mypy_rc)" >&2
    exit $((pytest_rc != 0 ? pytest_rc : mypy_rc))
fi
