#!/usr/bin/env bash
# What CI runs on every pull request (.github/workflows/reconciler.yml) and merge request
# (.gitlab-ci.yml), from the top of this repo: validate the specs, plan the change against
# the base branch as markdown, and keep one plan comment on the request up to date.
# Usage: .reconciler/ci.sh BASE_REF      e.g. .reconciler/ci.sh origin/main
# Exit 0 when the specs validate and the plan was made (with or without changes), 1
# otherwise; the comment is posted either way, so a reviewer sees the findings.
set -uo pipefail
base=${1:?usage: .reconciler/ci.sh BASE_REF (e.g. origin/main)}
plan=$(mktemp)
trap 'rm -f "$plan"' EXIT
failed=0
echo "== reconciler validate"
reconciler validate . || failed=1
echo "== reconciler plan --base $base"
code=0
reconciler plan . --base "$base" --format markdown > "$plan" || code=$?
case $code in
    0) echo "no changes" ;;
    2) echo "changes present" ;;   # plan's "changes present", not a failure
    *) failed=1 ;;
esac
cat "$plan"
if [ -s "$plan" ]; then
    echo "== reconciler pr-comment"
    reconciler pr-comment "$plan" || failed=1
fi
exit "$failed"
