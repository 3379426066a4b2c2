#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time (not part of CI; issues 8, 14:
# detect_package_json, detect_files, log_demux, glob_match, download_multipart).
#   bench/fuzz/run.sh                 # 60 s per target
#   FUZZ_SECONDS=300 bench/fuzz/run.sh log_demux
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). Crashes land in fuzz/artifacts/<target>/; keep each one as a
# regression test in the crate's normal tests once fixed. Corpora grow in fuzz/corpus/;
# fuzz/seeds/<target>/ (checked in: real package.json files) start them.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds}s"
  log="$(mktemp)"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  cargo +nightly fuzz run "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1 || true
  grep -E '^Done [0-9]+ runs' "$log" | tail -1 || true
  if grep -q 'Test unit written\|panicked\|SUMMARY: ' "$log"; then
    grep -E 'panicked|SUMMARY|Test unit written' "$log" | head -5
    echo "!! $t found a crash (see fuzz/artifacts/$t/)"
    status=1
  fi
  rm -f "$log"
done
exit $status
