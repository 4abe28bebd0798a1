#!/usr/bin/env bash
# Run the daemon on the embedded default: a local state repo, the local cluster, state in var/.
# Creates or reuses .venv; on first run seeds var/state-repo.git from state-repo-template/.
# Push specs to it from a clone (git clone var/state-repo.git specs) and watch status land
# on its reconciler/status branch. Ctrl-C stops the daemon.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
var="$PWD/var"
repo="$var/state-repo.git"
mkdir -p "$var/secrets" "$var/state"
if [ ! -d "$repo" ]; then
    git init --quiet --bare --initial-branch=main "$repo"
    seed=$(mktemp -d)
    cp -R state-repo-template/. "$seed/"
    git -C "$seed" init --quiet --initial-branch=main
    git -C "$seed" add -A
    git -C "$seed" -c user.name=reconciler -c user.email=reconciler@localhost \
        commit --quiet -m "Seed from state-repo-template"
    git -C "$seed" push --quiet "$repo" main
    rm -rf "$seed"
    echo "seeded $repo from state-repo-template/"
fi
config="$var/reconciler.yaml"
if [ ! -f "$config" ]; then
    cat > "$config" <<YAML
repo:
  url: $repo
  branch: main
  poll_interval: 10s
state_dir: $var/state
secrets_dir: $var/secrets
YAML
fi
.venv/bin/reconciler validate state-repo-template >/dev/null
echo "state repo: $repo (clone it, push specs); status branch: reconciler/status"
exec .venv/bin/reconciler run --config "$config" "$@"
