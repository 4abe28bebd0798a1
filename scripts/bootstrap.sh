#!/usr/bin/env bash
# Create or reuse the virtualenv in .venv and install the project into it.
# Usage: scripts/bootstrap.sh [extra]   (extra: "test" installs the test tools too)
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
extra=${1:-}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.installed-${extra:-base}"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    if [ -n "$extra" ]; then
        .venv/bin/python -m pip install --quiet -e ".[$extra]"
    else
        .venv/bin/python -m pip install --quiet -e .
    fi
    echo "$want" > "$stamp"
fi
