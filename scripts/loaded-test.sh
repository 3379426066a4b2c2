#!/usr/bin/env bash
# `npm test` N times in a row (default 10) while one busy loop per core (normal priority)
# keeps every core busy: the check that no test races the machine's speed (issue "One
# mechanism for each job"). Stops at the first failing run. Logs and a summary line per run go
# to $OUT (default target/loaded-test/). Needs the builds npm test uses already made
# (`node scripts/ensure-built.mjs`, `npm run build:wasm`): the runs skip the build.
#
#   scripts/loaded-test.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
out=${OUT:-target/loaded-test}
mkdir -p "$out"
hogs=()
for _ in $(seq "$(nproc)"); do
  bash -c 'while :; do :; done' &
  hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
for i in $(seq "$runs"); do
  start=$(date +%s)
  FORGE_REQUIRE_WASM=1 FORGE_SKIP_BUILD=1 npm test >"$out/run-$i.log" 2>&1
  rc=$?
  echo "run $i of $runs: exit $rc in $(($(date +%s) - start)) s, $(uptime)" | tee -a "$out/summary.txt"
  [ "$rc" -eq 0 ] || exit "$rc"
done
