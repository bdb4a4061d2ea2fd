#!/usr/bin/env bash
# Build release and run the side-by-side benchmark against redis-server. Extra arguments go to bench.py
# (e.g. --quick, --rounds 5, --threads 2, --tests set,get, --suite collections|realtime).
set -euo pipefail
cd "$(dirname "$0")/.."
# The reference: $FERRODIS_REFERENCE_REDIS (a Redis 7.2.x redis-server, with its redis-benchmark beside it), else
# Debian's redis-server / redis-benchmark from PATH.
if [ -z "${FERRODIS_REFERENCE_REDIS:-}" ]; then
  command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)"; exit 1; }
  command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
fi
cargo build --release -p ferrodis
# --suite realtime drives the servers with bench/loadgen (a standalone crate, not in the workspace).
for arg in "$@"; do
  case "$arg" in
    realtime|--suite=realtime|streams|--suite=streams) cargo build --release --manifest-path bench/loadgen/Cargo.toml ;;
  esac
done
exec python3 bench/bench.py "$@"
