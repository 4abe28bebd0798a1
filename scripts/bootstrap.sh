#!/usr/bin/env bash
# Create or reuse the virtualenv in .venv and install the project into it from the lock.
# Usage: scripts/bootstrap.sh [test]   ("test" installs the test tools too)
# Installs exact versions with hashes from requirements/{runtime,test}.lock (made by
# scripts/lock.sh), then the project itself with --no-deps. Re-installs only when the lock
# or pyproject.toml changed since the last install.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
set_name=${1:-runtime}
case "$set_name" in
    runtime|test) ;;
    *) echo "bootstrap: unknown set '$set_name' (runtime or test)" >&2; exit 2 ;;
esac
lock="requirements/$set_name.lock"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.installed-$set_name"
want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing $lock into .venv" >&2
    .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r "$lock"
    .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
    echo "$want" > "$stamp"
fi
