#!/usr/bin/env bash
# Newcomer figures (bench/RESULTS.md, issue 18): fresh clone -> ./run.sh -> endpoint serving,
# a second start, the README's push loop, and fresh clone -> reconciler init -> a PR plan.
# Usage: bench/newcomer_figures.sh [REPO [BRANCH]]   (default: this checkout, its branch)
# Writes under $OUT (default /tmp/newcomer-figures); stops every process it starts.
set -u
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
branch=${2:-$(git -C "$repo" rev-parse --abbrev-ref HEAD)}
out=${OUT:-/tmp/newcomer-figures}
mkdir -p "$out"
clone=$out/fresh
specs=$out/specs
rm -rf "$clone" "$specs" "$out/fresh2" "$out/newrepo" "$out/pip-cache" "$out"/run*.log "$out"/*.txt "$out"/*.md
export RECONCILER_LISTEN=${RECONCILER_LISTEN:-127.0.0.1:18481}
export PIP_CACHE_DIR=$out/pip-cache   # empty: a newcomer's cold pip cache
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
log() { echo "$*" >> "$out/events.txt"; }
wait_ready() {  # log pid deadline_s
    local start; start=$(now)
    while ! grep -q '^endpoint ready' "$1"; do
        kill -0 "$2" 2>/dev/null || { log "run.sh exited"; return 1; }
        if [ "$(echo "$(now) - $start > $3" | bc)" = 1 ]; then log "deadline"; return 1; fi
        sleep 0.5
    done
}
# --- A: fresh clone -> ./run.sh -> endpoint serving ---------------------------------
t0=$(now)
git clone -q --branch "$branch" "$repo" "$clone"
clone_s=$(since "$t0")
cd "$clone"
./run.sh --log-format text > "$out/run1.log" 2>&1 &
pid=$!
wait_ready "$out/run1.log" "$pid" 3600
first_ready_s=$(since "$t0")
url=$(sed -n 's/^endpoint ready: //p' "$out/run1.log" | head -1)
curl -s "$url/embeddings" -H "Content-Type: application/json" -d '{"input": ["hello world"], "model": "embeddings"}' | head -c 200 > "$out/curl1.txt"
kill -TERM "$pid"; wait "$pid"; log "run1 exit $?"
t2=$(now)
./run.sh --log-format text > "$out/run2.log" 2>&1 &
pid=$!
wait_ready "$out/run2.log" "$pid" 600
second_ready_s=$(since "$t2")
# --- B: the README's loop: clone the state repo, change, validate, plan, push, wait ----
export PATH="$clone/.venv/bin:$PATH"
t4=$(now)
git clone -q "$clone/var/state-repo.git" "$specs"
cd "$specs"
sed -i 's/round: 1/round: 2/' workflows/smoke.yaml
reconciler validate workflows/smoke.yaml > "$out/validate.txt" 2>&1; log "validate exit $?"
reconciler plan --base origin/main > "$out/plan.txt" 2>&1; log "plan exit $?"
git -c user.name=newcomer -c user.email=n@example.test commit -qam "run the smoke workflow again"
git push -q
reconciler status Workflow/smoke --wait --revision "$(git rev-parse HEAD)" --url "$RECONCILER_LISTEN" > "$out/wait.txt" 2>&1; log "wait exit $?"
push_to_ready_s=$(since "$t4")
cd "$clone"
# a second ./run.sh while one runs: refused, no ready line, no watcher left behind
./run.sh --log-format text > "$out/run3.log" 2>&1; log "run3 exit $?"
sleep 3
ps -eo pid,args | grep -F "$clone" | grep -v grep > "$out/procs-after-run3.txt"
kill -TERM "$pid"; wait "$pid"; log "run2 exit $?"
sleep 3
ps -eo pid,args | grep -F "$clone" | grep -v grep > "$out/procs-after-stop.txt"
# the endpoint server outlives the daemon by design: stop it by the pid the registry holds
server=$(python3 -c "import json; print(json.load(open('$clone/var/state/local/endpoints.json'))['endpoints']['embeddings']['pid'])")
kill -TERM "$server" && log "stopped endpoint server $server"
# --- C: fresh clone -> venv -> reconciler init -> a pull-request plan ----------------
t6=$(now)
git clone -q --branch "$branch" "$repo" "$out/fresh2"
cd "$out/fresh2"
scripts/bootstrap.sh 2> "$out/bootstrap2.txt"
.venv/bin/reconciler init "$out/newrepo" > "$out/init.txt"
cd "$out/newrepo"
git switch -q -c more-load
sed -i 's/concurrent_requests: 4/concurrent_requests: 8/' deployments/embeddings.yaml
git -c user.name=newcomer -c user.email=n@example.test commit -qam "more load"
"$out/fresh2/.venv/bin/reconciler" plan --base main --format markdown > "$out/pr-plan.md"; log "pr plan exit $?"
pr_plan_s=$(since "$t6")
{
  echo "clone_s $clone_s"
  echo "first_ready_s $first_ready_s"
  echo "second_ready_s $second_ready_s"
  echo "push_to_ready_s $push_to_ready_s"
  echo "clone_to_pr_plan_s $pr_plan_s"
} > "$out/figures.txt"
log done
