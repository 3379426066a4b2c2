#!/bin/sh
# Transfer benchmark: a 1 GiB file uploaded and downloaded through forge-daytona and through
# curl, in one run, against the embedded backend (a child process of the same release binary)
# or against DAYTONA_API_URL / DAYTONA_API_KEY when both are set.
# Usage: bench/transfer/run.sh [--mib N] [--dir TMPDIR]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cd "$root"
cargo build --release --example transfer -p forge-daytona
exec "$target/release/examples/transfer" "$@"
