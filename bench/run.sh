#!/usr/bin/env bash
# Build release and run the side-by-side benchmark against redis-server. Extra arguments go to bench.py
# (e.g. --quick, --rounds 5, --threads 2, --tests set,get).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)"; exit 1; }
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build --release -p ferrodis
exec python3 bench/bench.py "$@"
