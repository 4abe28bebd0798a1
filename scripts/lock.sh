#!/usr/bin/env bash
# Refresh the locks of exact versions (with hashes) from pyproject.toml:
#   requirements/runtime.lock  what ./run.sh installs
#   requirements/test.lock     what ./test.sh installs (runtime + the test extra)
# Tool: pip-tools' pip-compile, run from its own virtualenv (.venv-lock). It resolves with
# pip itself and the machine's pip configuration, so a lock and the install that reads it
# agree. Pass --upgrade to move every pin to the newest release the ranges allow;
# without it, existing pins are kept where they still satisfy pyproject.toml.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
python=${PYTHON:-python3}
if [ ! -x .venv-lock/bin/pip-compile ]; then
    "$python" -m venv .venv-lock
    .venv-lock/bin/python -m pip install --quiet pip-tools==7.6.2
fi
common=(--quiet --generate-hashes --allow-unsafe --strip-extras --build-deps-for editable
        --no-emit-index-url --no-emit-find-links "$@")
mkdir -p requirements
.venv-lock/bin/pip-compile "${common[@]}" --extra test -o requirements/test.lock pyproject.toml
# The runtime lock starts from the test lock's pins, so both install the same versions
# into the one .venv that ./run.sh and ./test.sh share (scripts/check_lock.py checks it).
seed=$(mktemp)
trap 'rm -f "$seed"' EXIT
cp requirements/test.lock "$seed"
.venv-lock/bin/pip-compile "${common[@]}" -o "$seed" pyproject.toml
sed "s#--output-file=$seed#--output-file=requirements/runtime.lock#" "$seed" > requirements/runtime.lock
echo "locks refreshed: requirements/runtime.lock requirements/test.lock"
