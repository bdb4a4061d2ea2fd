#!/usr/bin/env bash
# Multi-core scaling: Ferrodis at 1, 2, 4, 8 worker threads against redis-server (single-threaded, and with
# io-threads 8) on one machine with at least 16 cores. Servers are pinned to cores 0-7, redis-benchmark
# (--threads 8) to cores 8-15. GET and SET on 1M random keys, 3-byte values, pipelined (P16, 256 clients) and
# not (P1, 512 clients). Prints a markdown table of requests per second.
#
#   bench/scaling.sh                 # uses redis-server, redis-benchmark and target/release/ferrodis
#   BIN=dir bench/scaling.sh         # uses dir/{redis-server,redis-benchmark,ferrodis}; if dir/lib holds a
#                                    # dynamic loader and libraries, runs the binaries through them
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-}
if [ -n "$BIN" ]; then
    if [ -x "$BIN/lib/ld-linux-x86-64.so.2" ]; then
        L="$BIN/lib/ld-linux-x86-64.so.2 --library-path $BIN/lib"
    else
        L=""
    fi
    REDIS="$L $BIN/redis-server"
    BENCH="$L $BIN/redis-benchmark"
    FERRODIS="$L $BIN/ferrodis"
else
    REDIS=redis-server
    BENCH=redis-benchmark
    FERRODIS=target/release/ferrodis
fi
PORT=7400
SERVER_CPUS=${SERVER_CPUS:-0-7}
CLIENT_CPUS=${CLIENT_CPUS:-8-15}
N_P16=${N_P16:-20000000}
N_P1=${N_P1:-3000000}

wait_up() {
    for _ in $(seq 100); do
        $BENCH -p $PORT -t ping -n 1 -q >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start" >&2
    return 1
}

rps() { # test clients pipeline requests
    taskset -c $CLIENT_CPUS $BENCH -p $PORT -t "$1" -c "$2" -P "$3" -n "$4" -r 1000000 -d 3 --threads 8 --csv 2>/dev/null |
        awk -F'","' 'NR>1 {gsub(/"/,"",$2); print int($2)}' | tail -1
}

measure() { # label server-command...
    local label=$1
    shift
    PORT=$((PORT + 1))
    taskset -c $SERVER_CPUS "$@" --port $PORT >/dev/null 2>&1 &
    local pid=$!
    wait_up || { kill $pid; return; }
    # Load the keyspace once so GETs hit.
    taskset -c $CLIENT_CPUS $BENCH -p $PORT -t set -c 64 -P 64 -n 2000000 -r 1000000 -d 3 --threads 8 -q >/dev/null 2>&1
    local g16 s16 g1 s1
    g16=$(rps get 256 16 $N_P16)
    s16=$(rps set 256 16 $N_P16)
    g1=$(rps get 512 1 $N_P1)
    s1=$(rps set 512 1 $N_P1)
    kill $pid
    wait $pid 2>/dev/null
    echo "| $label | $g16 | $s16 | $g1 | $s1 |"
}

echo "# $(date -u +%Y-%m-%d) scaling on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| server | GET P16 rps | SET P16 rps | GET P1 rps | SET P1 rps |"
echo "|---|---|---|---|---|"
measure "redis-server (1 thread)" $REDIS --save "" --appendonly no
measure "redis-server (io-threads 8)" $REDIS --save "" --appendonly no --io-threads 8 --io-threads-do-reads yes
for t in 1 2 4 8; do
    measure "ferrodis ($t worker$([ $t -gt 1 ] && echo s))" $FERRODIS --threads $t --save "" --appendonly no
done
