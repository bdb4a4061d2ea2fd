#!/usr/bin/env python3
"""Side-by-side benchmark: Ferrodis vs redis-server on the same machine, same loads, run alternately.

Each server is pinned to one core (SERVER_CPU), the load generator (redis-benchmark, or bench/loadgen for
--suite realtime) to another (CLIENT_CPU). Every load runs
ROUNDS times per server, alternating servers, and the median is reported with the Ferrodis/Redis ratio.
Memory per key is used_memory delta / DBSIZE after loading 1M keys through a pipeline.
--suite geo: GEOADD, and GEOSEARCH BYRADIUS over 100k points returning about 50 (issue 16).
--suite streams: XADD `*` with 5 fields, XRANGE of 100 entries, XREADGROUP COUNT 10 + XACK consumer loops
(bench/loadgen xqueue) and memory per entry of a 1M-entry stream.

Usage: bench/run.sh [--quick]   (builds release first; see bench/README.md)
Only the Python standard library is used.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "bench/loadgen/target/release/loadgen")



# The load generator: redis-benchmark from PATH, or the one built with the reference server (see main).
BENCHMARK = "redis-benchmark"

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


class Server:
    def __init__(self, name, argv, cpu):
        self.name = name
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        cmd = ["taskset", "-c", str(cpu)] + argv + ["--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port)
        except RuntimeError:
            self.proc.kill()
            self.proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port)] + list(args),
                              capture_output=True, text=True, check=True).stdout.strip()

    def info_field(self, field):
        for line in self.cli("INFO", "memory").splitlines():
            if line.startswith(field + ":"):
                return int(line.split(":", 1)[1])
        raise KeyError(field)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_benchmark(port, test, clients, pipeline, requests, keyspace, size, cpu):
    """`test` is a redis-benchmark -t name, or a list: a custom command line."""
    what = ["-t", test] if isinstance(test, str) else []
    cmd = ["taskset", "-c", str(cpu), BENCHMARK, "-p", str(port)] + what + ["-c", str(clients),
           "-P", str(pipeline), "-n", str(requests), "-r", str(keyspace), "-d", str(size), "--csv"]
    if not isinstance(test, str):
        cmd += test
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        cols = [c.strip('"') for c in line.split(",")]
        if len(cols) >= 8 and cols[0] != "test":
            rows.append({"rps": float(cols[1]), "p50": float(cols[4]), "p99": float(cols[6])})
    if rows:
        # lrange_N runs a LPUSH fill first: the row that matters is the last one.
        return rows[-1]
    raise RuntimeError("unexpected redis-benchmark output:\n" + out)


def pipe_load(srv, commands):
    """Send RESP commands (lists of bytes) through redis-cli --pipe."""
    def enc(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)
    data = b"".join(enc(c) for c in commands)
    subprocess.run(["redis-cli", "-p", str(srv.port), "--pipe"], input=data, capture_output=True, check=True)


def collection_memory(srv, kind, n):
    """Bytes per element: used_memory delta / elements, for one big collection or many small hashes."""
    srv.cli("FLUSHALL")
    time.sleep(0.3)
    before = srv.info_field("used_memory")
    batch = 5000
    if kind == "small-hashes":
        elements = n * 5
        cmds = ([b"HSET", b"user:%08d" % i] + sum(([b"field%d" % f, b"value%d" % f] for f in range(5)), [])
                for i in range(n))
    else:
        elements = n
        def gen():
            for start in range(0, n, batch):
                ids = range(start, min(n, start + batch))
                if kind == "hash":
                    yield [b"HSET", b"bighash"] + sum(([b"f:%08d" % i, b"v:%08d" % i] for i in ids), [])
                elif kind == "set":
                    yield [b"SADD", b"bigset"] + [b"m:%08d" % i for i in ids]
                elif kind == "zset":
                    yield [b"ZADD", b"bigzset"] + sum(([b"%d" % i, b"m:%08d" % i] for i in ids), [])
                elif kind == "list":
                    yield [b"RPUSH", b"biglist"] + [b"m:%08d" % i for i in ids]
        cmds = gen()
    pipe_load(srv, cmds)
    time.sleep(0.3)
    after = srv.info_field("used_memory")
    srv.cli("FLUSHALL")
    return (after - before) / elements


def load_keys(srv, n, size, ttl):
    """Load n keys key:<i> with `size`-byte values through redis-cli --pipe; returns bytes per key."""
    srv.cli("FLUSHALL")
    time.sleep(0.3)
    before = srv.info_field("used_memory")
    value = ("v" * size).encode()
    chunks = []
    for i in range(n):
        k = b"key:%012d" % i
        if ttl:
            chunks.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nEX\r\n$6\r\n100000\r\n"
                          % (len(k), k, len(value), value))
        else:
            chunks.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(value), value))
    subprocess.run(["redis-cli", "-p", str(srv.port), "--pipe"], input=b"".join(chunks),
                   capture_output=True, check=True)
    dbsize = int(srv.cli("DBSIZE"))
    assert dbsize == n, f"{srv.name}: expected {n} keys, DBSIZE says {dbsize}"
    time.sleep(0.3)
    after = srv.info_field("used_memory")
    rss = srv.info_field("used_memory_rss")
    srv.cli("FLUSHALL")
    return (after - before) / n, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferrodis", default=os.path.join(ROOT, "target/release/ferrodis"))
    ap.add_argument("--redis", default=os.environ.get("FERRODIS_REFERENCE_REDIS") or shutil.which("redis-server")
                    or "redis-server",
                    help="the reference redis-server (default: $FERRODIS_REFERENCE_REDIS, a Redis 7.2.x build, else "
                         "redis-server in PATH); the redis-benchmark next to it is used when there is one")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--memkeys", type=int, default=1_000_000)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="Ferrodis worker threads")
    ap.add_argument("--quick", action="store_true", help="fewer requests and rounds (smoke run)")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-pubsub", action="store_true", help="--suite realtime: only the MULTI/EXEC loads")
    ap.add_argument("--tests", default="set,get,incr,mset")
    ap.add_argument("--suite", default="core", choices=["core", "collections", "realtime", "streams", "scripting", "persistence",
                                                       "bitmaps", "hyperloglog", "geo"],
                    help="core: strings (issue 2); collections: lists, sets, hashes, sorted sets; "
                         "realtime: pub/sub fan-out and MULTI/EXEC (issue 4, uses bench/loadgen); "
                         "streams: XADD, XRANGE, XREADGROUP+XACK, memory per entry (issue 5, uses bench/loadgen); "
                         "scripting: EVALSHA of a read script, an INCR+EXPIRE limiter, and a script that "
                         "touches keys it did not declare (issue 6); persistence: BGSAVE duration, peak memory (PSS of "
                         "the server and its children) and writers' latency with and without a write load, "
                         "RDB load time (issue 7); bitmaps: SETBIT/GETBIT at random offsets of a 1 MB bitmap "
                         "(bench/loadgen randint), BITCOUNT of 1 MB, BITOP AND of 4 x 1 MB (issue 16); "
                         "hyperloglog: PFADD of 10 elements, PFCOUNT of 1 key and of 10 dense keys (issue 16); "
                         "geo: GEOADD and GEOSEARCH BYRADIUS over 100k points returning about 50 (issue 16)")
    ap.add_argument("--loadgen", default=LOADGEN, help="loadgen binary for --suite realtime")
    a = ap.parse_args()
    global BENCHMARK
    sibling = os.path.join(os.path.dirname(os.path.abspath(a.redis)), "redis-benchmark")
    if os.path.dirname(a.redis) and os.access(sibling, os.X_OK):
        BENCHMARK = sibling
    if a.quick:
        a.rounds, a.requests, a.memkeys = 1, 100_000, 100_000
    if a.suite in ("realtime", "streams", "bitmaps"):
        ensure_loadgen(a.loadgen)

    servers = {}
    try:
        servers["redis"] = Server("redis", [a.redis, "--save", "", "--appendonly", "no", "--enable-debug-command",
                                            "yes"], a.server_cpu)
        servers["ferrodis"] = Server("ferrodis", [a.ferrodis, "--threads", str(a.threads), "--save", "",
                                                  "--appendonly", "no", "--enable-debug-command", "yes"],
                                     a.server_cpu)
    except RuntimeError:
        # One did not start: stop the one that did, so a failed run leaves no server behind.
        for srv in servers.values():
            srv.stop()
        raise
    version = servers["redis"].cli("INFO", "server").split("redis_version:")[1].split()[0]
    print(f"# {time.strftime('%Y-%m-%d')} | redis-server {version} vs ferrodis ({a.threads} worker) | "
          f"server cpu {a.server_cpu}, load generator cpu {a.client_cpu} | {a.rounds} rounds, median\n")
    try:
        if a.suite == "collections":
            return collections_suite(a, servers)
        if a.suite == "realtime":
            return realtime_suite(a, servers)
        if a.suite == "streams":
            return streams_suite(a, servers)
        if a.suite == "scripting":
            return scripting_suite(a, servers)
        if a.suite == "persistence":
            return persistence_suite(a, servers)
        if a.suite == "geo":
            return geo_suite(a, servers)
        if a.suite == "hyperloglog":
            return hyperloglog_suite(a, servers)
        if a.suite == "bitmaps":
            return bitmaps_suite(a, servers)
        rows = []
        print("| test | P | value | redis rps | ferrodis rps | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for test in a.tests.split(","):
            for pipeline in (1, 16):
                for size in (3, 100):
                    if test == "incr" and size != 3:
                        continue
                    res = {name: [] for name in servers}
                    for _ in range(a.rounds):
                        for name, srv in servers.items():
                            res[name].append(run_benchmark(srv.port, test, 50, pipeline, a.requests,
                                                           1_000_000, size, a.client_cpu))
                    med = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
                           for n, rs in res.items()}
                    r, f = med["redis"], med["ferrodis"]
                    rows.append((test, pipeline, size, r, f))
                    print(f"| {test.upper()} | {pipeline} | {size} B | {r['rps']:.0f} | {f['rps']:.0f} | "
                          f"{f['rps'] / r['rps']:.2f} | {r['p50']:.3f}/{r['p99']:.3f} | "
                          f"{f['p50']:.3f}/{f['p99']:.3f} |", flush=True)
        if not a.skip_memory:
            print("\n| memory per key (1 key = key:%012d) | redis B/key | ferrodis B/key | ratio |")
            print("|---|---|---|---|")
            for size in (3, 16):
                for ttl in (False, True):
                    vals = {name: load_keys(srv, a.memkeys, size, ttl)[0] for name, srv in servers.items()}
                    label = f"{a.memkeys} keys, {size}-byte values" + (", with TTL" if ttl else "")
                    print(f"| {label} | {vals['redis']:.1f} | {vals['ferrodis']:.1f} | "
                          f"{vals['ferrodis'] / vals['redis']:.2f} |", flush=True)
    finally:
        for s in servers.values():
            s.stop()


def collections_suite(a, servers):
    # A 1000-member sorted set for the ZRANGEBYSCORE / ZRANK loads.
    for srv in servers.values():
        pipe_load(srv, [[b"ZADD", b"bz"] + sum(([b"%d" % i, b"m:%d" % i] for i in range(1000)), [])])
    loads = [
        ("LPUSH", "lpush"), ("RPOP", "rpop"), ("LRANGE_100", "lrange_100"), ("SADD", "sadd"),
        ("SPOP", "spop"), ("HSET", "hset"), ("ZADD", "zadd"),
        ("ZRANGEBYSCORE 0 100 LIMIT 0 10", ["ZRANGEBYSCORE", "bz", "0", "100", "LIMIT", "0", "10"]),
        ("ZRANK", ["ZRANK", "bz", "m:__rand_int__"]),
    ]
    print("| test | P | redis rps | ferrodis rps | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, test in loads:
        for pipeline in (1, 16):
            res = {name: [] for name in servers}
            for _ in range(a.rounds):
                for name, srv in servers.items():
                    keyspace = 1000 if label == "ZRANK" else 100_000
                    res[name].append(run_benchmark(srv.port, test, 50, pipeline, a.requests // 2,
                                                   keyspace, 3, a.client_cpu))
            med = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
                   for n, rs in res.items()}
            r, f = med["redis"], med["ferrodis"]
            print(f"| {label} | {pipeline} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
                  f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} |", flush=True)
    if a.skip_memory:
        return
    print("\n| memory per element | redis B/elem | ferrodis B/elem | ratio |")
    print("|---|---|---|---|")
    for kind, n, label in [("hash", a.memkeys, f"{a.memkeys}-field hash"),
                           ("set", a.memkeys, f"{a.memkeys}-member set"),
                           ("zset", a.memkeys, f"{a.memkeys}-member sorted set"),
                           ("list", a.memkeys, f"{a.memkeys}-element list"),
                           ("small-hashes", a.memkeys // 10, f"{a.memkeys // 10} hashes of 5 fields")]:
        vals = {name: collection_memory(srv, kind, n) for name, srv in servers.items()}
        print(f"| {label} | {vals['redis']:.1f} | {vals['ferrodis']:.1f} | "
              f"{vals['ferrodis'] / vals['redis']:.2f} |", flush=True)


GEO_CENTER = (13.4, 52.5)


def geo_suite(a, servers):
    """GEOADD of random members at one place; GEOSEARCH BYRADIUS (sorted, as GEOSEARCH sorts by default only
    with COUNT: here unsorted, the plain command) around a fixed center of 100k points spread uniformly over a
    0.1 x 0.1 degree square, with the radius giving about 50 results."""
    import random
    rnd = random.Random(16)
    pts = [(GEO_CENTER[0] - 0.05 + rnd.random() * 0.1, GEO_CENTER[1] - 0.05 + rnd.random() * 0.1)
           for _ in range(100_000)]
    radius = "110"
    for srv in servers.values():
        srv.cli("FLUSHALL")
        pipe_load(srv, ([b"GEOADD", b"geo:pts"] + sum(([b"%.6f" % x, b"%.6f" % y, b"p:%d" % (i + j)]
                                                      for j, (x, y) in enumerate(pts[i:i + 1000])), [])
                        for i in range(0, len(pts), 1000)))
    search = ["GEOSEARCH", "geo:pts", "FROMLONLAT", str(GEO_CENTER[0]), str(GEO_CENTER[1]), "BYRADIUS", radius, "m"]
    found = {name: srv.cli(*search).split() for name, srv in servers.items()}
    print(f"GEOSEARCH returns {len(found['redis'])} (redis) / {len(found['ferrodis'])} (ferrodis) members, "
          f"same: {found['redis'] == found['ferrodis']}\n")
    loads = [
        ("GEOADD", ["GEOADD", "geo:add", "13.361389", "38.115556", "m:__rand_int__"]),
        ("GEOSEARCH BYRADIUS (~50 of 100k)", search),
        ("GEOSEARCH BYRADIUS ASC WITHDIST (~50 of 100k)", search + ["ASC", "WITHDIST"]),
    ]
    print("| test | P | redis rps | ferrodis rps | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, test in loads:
        for pipeline in (1, 16):
            res = {name: [] for name in servers}
            requests = a.requests // (2 if label == "GEOADD" else 10)
            for _ in range(a.rounds):
                for name, srv in servers.items():
                    res[name].append(run_benchmark(srv.port, test, 50, pipeline, requests, 100_000, 3,
                                                   a.client_cpu))
            med = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
                   for n, rs in res.items()}
            r, f = med["redis"], med["ferrodis"]
            print(f"| {label} | {pipeline} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
                  f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} |", flush=True)


def ensure_loadgen(path):
    """Build bench/loadgen (a standalone crate) when the default binary is missing or older than its sources."""
    if path != LOADGEN:
        if not os.path.exists(path):
            raise SystemExit(f"loadgen binary {path} not found")
        return
    src = os.path.join(ROOT, "bench/loadgen")
    inputs = [os.path.join(src, "Cargo.toml"), os.path.join(src, "Cargo.lock")]
    inputs += [os.path.join(src, "src", f) for f in os.listdir(os.path.join(src, "src"))]
    newest = max(os.path.getmtime(f) for f in inputs if os.path.exists(f))
    if not os.path.exists(path) or os.path.getmtime(path) < newest:
        subprocess.run(["cargo", "build", "--release", "--manifest-path", os.path.join(src, "Cargo.toml")],
                       check=True)


def run_loadgen(a, port, argv):
    """Run the loadgen pinned to the client CPU; returns its RESULT lines as dicts (numbers as floats)."""
    cmd = ["taskset", "-c", str(a.client_cpu), a.loadgen, argv[0], "--port", str(port)] + argv[1:]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    results = []
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            row = {}
            for kv in line.split()[1:]:
                k, v = kv.split("=", 1)
                try:
                    row[k] = float(v)
                except ValueError:
                    row[k] = v
            results.append(row)
    if not results:
        raise RuntimeError(f"no RESULT from {' '.join(cmd)}:\n{p.stdout}{p.stderr}")
    errors = sum(r.get("errors", 0) for r in results)
    if errors:
        notes = [l.strip() for l in p.stdout.splitlines() if "error" in l and not l.startswith("RESULT")]
        results[0]["note"] = f"{int(errors)} errors: " + "; ".join(notes[:3])
    return results


def alternate(a, servers, fn):
    """Run fn(srv) a.rounds times per server, alternating; returns {name: [results]} and prints notes."""
    res = {name: [] for name in servers}
    for _ in range(a.rounds):
        for name, srv in servers.items():
            r = fn(srv)
            res[name].append(r)
            note = r.get("note") if isinstance(r, dict) else None
            if note:
                print(f"<!-- {name}: {note} -->", flush=True)
    return res


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def realtime_suite(a, servers):
    # Pub/sub fan-out: about `deliveries` messages delivered per pipelined run, the publisher's message
    # count scaled down as subscribers grow; latency comes from a separate unpipelined run (one PUBLISH in
    # flight), so it is delivery time, not publisher queueing.
    deliveries = a.requests * 4
    cap = a.requests // 5
    print("PUBLISH (32-byte payload; pipelined in batches of 16 for rates; p50/p99 = publish-to-subscriber "
          "delivery latency with one PUBLISH in flight)\n")
    print("| load | redis PUBLISH/s | ferrodis PUBLISH/s | ratio | redis delivered/s | ferrodis delivered/s | "
          "ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for subs, pattern in () if a.skip_pubsub else ((1, False), (100, False), (1000, False), (100, True)):
        messages = min(cap, max(200, deliveries // subs))
        lat_messages = min(messages, max(100, min(10_000, messages // 4)))
        argv = ["pubsub", "--subscribers", str(subs), "--messages", str(messages), "--latency-messages",
                str(lat_messages), "--size", "32"] + (["--pattern"] if pattern else [])

        def one(srv):
            pipelined, unpipelined = run_loadgen(a, srv.port, argv)[:2]
            row = {"pub": pipelined["publish_rate"], "del": pipelined["delivery_rate"],
                   "p50": unpipelined["p50_ms"], "p99": unpipelined["p99_ms"]}
            if "note" in pipelined:
                row["note"] = pipelined["note"]
            return row
        res = alternate(a, servers, one)
        r = {k: med(res["redis"], k) for k in ("pub", "del", "p50", "p99")}
        f = {k: med(res["ferrodis"], k) for k in ("pub", "del", "p50", "p99")}
        label = f"{subs} {'pattern (PSUBSCRIBE ch*)' if pattern else 'channel'} subscriber{'s' if subs > 1 else ''}"
        print(f"| {label} | {r['pub']:.0f} | {f['pub']:.0f} | {f['pub'] / r['pub']:.2f} | {r['del']:.0f} | "
              f"{f['del']:.0f} | {f['del'] / r['del']:.2f} | {r['p50']:.3f}/{r['p99']:.3f} | "
              f"{f['p50']:.3f}/{f['p99']:.3f} |", flush=True)

    print("\nMULTI/EXEC (MULTI, 5 x INCR on one client's hash-tagged keys, EXEC; 50 clients; "
          "p50/p99 per transaction)\n")
    print("| load | P | redis tx/s | ferrodis tx/s | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for pipeline in (1, 16):
        argv = ["multi", "--clients", "50", "--pipeline", str(pipeline), "--transactions",
                str(a.requests // 2 if pipeline == 1 else a.requests)]
        res = alternate(a, servers, lambda srv: run_loadgen(a, srv.port, argv)[0])
        r = {k: med(res["redis"], k) for k in ("tps", "p50_ms", "p99_ms")}
        f = {k: med(res["ferrodis"], k) for k in ("tps", "p50_ms", "p99_ms")}
        print(f"| MULTI + 5 INCR + EXEC | {pipeline} | {r['tps']:.0f} | {f['tps']:.0f} | "
              f"{f['tps'] / r['tps']:.2f} | {r['p50_ms']:.3f}/{r['p99_ms']:.3f} | "
              f"{f['p50_ms']:.3f}/{f['p99_ms']:.3f} |", flush=True)


def stream_memory(srv, n):
    """Bytes per entry: used_memory delta / entries after XADD `*` of n entries with 5 short fields."""
    srv.cli("FLUSHALL")
    time.sleep(0.3)
    before = srv.info_field("used_memory")

    def gen():
        for i in range(n):
            yield [b"XADD", b"bigstream", b"*", b"f1", b"%d" % i, b"f2", b"v2", b"f3", b"v3", b"f4", b"v4",
                   b"f5", b"v5"]
    pipe_load(srv, gen())
    length = int(srv.cli("XLEN", "bigstream"))
    assert length == n, f"{srv.name}: expected {n} entries, XLEN says {length}"
    time.sleep(0.3)
    after = srv.info_field("used_memory")
    srv.cli("FLUSHALL")
    return (after - before) / n


def cpu_seconds(srv):
    """utime + stime of the server process (taskset execs the server, so the pid is the server's)."""
    with open(f"/proc/{srv.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def streams_suite(a, servers):
    fields = ["f1", "v1", "f2", "v2", "f3", "v3", "f4", "v4", "f5", "v5"]
    # XRANGE: a 1000-entry stream with IDs 1-1 .. 1000-1; each request reads 100 entries from a random start.
    for srv in servers.values():
        srv.cli("FLUSHALL")
        pipe_load(srv, ([b"XADD", b"bx", b"%d-1" % (i + 1)] + [f.encode() for f in fields] for i in range(1000)))
    loads = [
        ("XADD * (5 fields, one stream)", ["XADD", "bench:stream", "*"] + fields, a.requests, 1, True),
        ("XRANGE 100 entries (random start, 1000-entry stream)",
         ["XRANGE", "bx", "__rand_int__", "+", "COUNT", "100"], a.requests // 5, 900, False),
    ]
    print("| load | P | redis rps | ferrodis rps | ratio | redis p50/p99 ms | ferrodis p50/p99 ms | "
          "redis / ferrodis server CPU µs per request |")
    print("|---|---|---|---|---|---|---|---|")
    for label, test, requests, keyspace, fresh in loads:
        for pipeline in (1, 16):
            res = {name: [] for name in servers}
            for _ in range(a.rounds):
                for name, srv in servers.items():
                    if fresh:
                        srv.cli("DEL", "bench:stream")
                    c0 = cpu_seconds(srv)
                    row = run_benchmark(srv.port, test, 50, pipeline, requests, keyspace, 3, a.client_cpu)
                    row["cpu_us"] = (cpu_seconds(srv) - c0) * 1e6 / requests
                    res[name].append(row)
            m = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu_us")}
                 for n, rs in res.items()}
            r, f = m["redis"], m["ferrodis"]
            print(f"| {label} | {pipeline} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
                  f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} | "
                  f"{r['cpu_us']:.2f} / {f['cpu_us']:.2f} |", flush=True)

    entries = a.requests // 4
    argv = ["xqueue", "--clients", "50", "--messages", str(entries), "--batch", "10"]
    print(f"\nXREADGROUP + XACK ({entries} entries of 5 fields pre-loaded; 50 consumers of one group, each "
          "looping XREADGROUP COUNT 10 > then XACK of the 10 IDs; p50/p99 per read+ack loop)\n")
    print("| load | redis entries/s | ferrodis entries/s | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|")
    res = alternate(a, servers, lambda srv: run_loadgen(a, srv.port, argv)[0])
    r = {k: med(res["redis"], k) for k in ("eps", "p50_ms", "p99_ms")}
    f = {k: med(res["ferrodis"], k) for k in ("eps", "p50_ms", "p99_ms")}
    print(f"| XREADGROUP COUNT 10 + XACK, 50 consumers | {r['eps']:.0f} | {f['eps']:.0f} | "
          f"{f['eps'] / r['eps']:.2f} | {r['p50_ms']:.3f}/{r['p99_ms']:.3f} | "
          f"{f['p50_ms']:.3f}/{f['p99_ms']:.3f} |", flush=True)
    if a.skip_memory:
        return
    print("\n| memory per entry | redis B/entry | ferrodis B/entry | ratio |")
    print("|---|---|---|---|")
    vals = {name: stream_memory(srv, a.memkeys) for name, srv in servers.items()}
    print(f"| {a.memkeys}-entry stream, XADD * f1 <i> f2 v2 f3 v3 f4 v4 f5 v5 | {vals['redis']:.1f} | "
          f"{vals['ferrodis']:.1f} | {vals['ferrodis'] / vals['redis']:.2f} |", flush=True)


SCRIPTS = [
    ("EVALSHA read (GET KEYS[1])", "return redis.call('GET', KEYS[1])", True),
    ("EVALSHA limiter (INCR + EXPIRE on KEYS[1])",
     "local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('EXPIRE', KEYS[1], 60) end return c",
     True),
    ("EVALSHA undeclared key (INCR ARGV[1], 0 keys)", "return redis.call('INCR', ARGV[1])", False),
]


def hyperloglog_suite(a, servers):
    """PFADD of 10 random elements into 1000 (sparse) HLLs; PFCOUNT of one dense key (cached cardinality) and
    PFCOUNT of 10 dense keys (a merge and the estimator on every call)."""
    for srv in servers.values():
        srv.cli("FLUSHALL")
        pipe_load(srv, [[b"PFADD", b"pfd:%d" % k] + [b"e:%d:%d" % (k, i) for i in range(j, j + 1000)]
                        for k in range(10) for j in range(0, 20_000, 1000)])
        assert srv.cli("PFDEBUG", "ENCODING", "pfd:0").strip() == "dense"
    loads = [
        ("PFADD 10 elements", ["PFADD", "pf:__rand_int__"] + ["el:__rand_int__"] * 10, 1000, 1),
        ("PFCOUNT 1 key", ["PFCOUNT", "pfd:0"], 1000, 1),
        ("PFCOUNT 10 keys", ["PFCOUNT"] + ["pfd:%d" % k for k in range(10)], 1000, 20),
    ]
    print("| test | P | redis rps | ferrodis rps | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, test, keyspace, div in loads:
        for pipeline in (1, 16):
            res = {name: [] for name in servers}
            for _ in range(a.rounds):
                for name, srv in servers.items():
                    res[name].append(run_benchmark(srv.port, test, 50, pipeline, max(a.requests // div, 1000),
                                                   keyspace, 3, a.client_cpu))
            m = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
                 for n, rs in res.items()}
            r, f = m["redis"], m["ferrodis"]
            print(f"| {label} | {pipeline} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
                  f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} |", flush=True)


def scripting_suite(a, servers):
    for srv in servers.values():
        srv.cli("FLUSHALL")
        srv.cli("DEBUG", "POPULATE", "100000", "key")
    print("| script | P | redis rps | ferrodis rps | ratio | redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, body, declared in SCRIPTS:
        shas = {name: srv.cli("SCRIPT", "LOAD", body) for name, srv in servers.items()}
        assert len(set(shas.values())) == 1, shas
        sha = shas["redis"]
        test = ["EVALSHA", sha, "1", "key:__rand_int__"] if declared else ["EVALSHA", sha, "0", "key:__rand_int__"]
        for pipeline in (1, 16):
            res = {name: [] for name in servers}
            for _ in range(a.rounds):
                for name, srv in servers.items():
                    res[name].append(run_benchmark(srv.port, test, 50, pipeline, a.requests, 100_000, 3,
                                                   a.client_cpu))
            m = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
                 for n, rs in res.items()}
            r, f = m["redis"], m["ferrodis"]
            print(f"| {label} | {pipeline} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
                  f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} |", flush=True)


def bitmaps_suite(a, servers):
    """Issue 16: bitmaps of 1 MB (8388608 bits) filled with random bytes, the same on both servers."""
    bits = 8 * 1024 * 1024
    rnd = [os.urandom(1024 * 1024) for _ in range(5)]
    for srv in servers.values():
        srv.cli("FLUSHALL")
        pipe_load(srv, [[b"SET", b"bm", rnd[0]]] + [[b"SET", b"src%d" % i, rnd[i]] for i in range(1, 5)])
        assert srv.cli("STRLEN", "bm") == str(1024 * 1024)
    print("| load (1 MB bitmaps, 50 clients) | P | redis rps | ferrodis rps | ratio | redis p50/p99 ms | "
          "ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    loads = [
        ("SETBIT bm <random offset> 1", "SETBIT bm %d 1", a.requests),
        ("GETBIT bm <random offset>", "GETBIT bm %d", a.requests),
        ("BITCOUNT bm (1 MB)", ["BITCOUNT", "bm"], max(a.requests // 100, 2000)),
        ("BITOP AND dest src1..src4 (4 x 1 MB)", ["BITOP", "AND", "dest", "src1", "src2", "src3", "src4"],
         max(a.requests // 500, 1000)),
    ]
    for label, test, requests in loads:
        for pipeline in (1, 16):
            def one(srv):
                if isinstance(test, str):
                    r = run_loadgen(a, srv.port, ["randint", "--clients", "50", "--pipeline", str(pipeline),
                                                  "--requests", str(requests), "--range", str(bits),
                                                  "--command", test])[0]
                    return {"rps": r["rps"], "p50": r["p50_ms"], "p99": r["p99_ms"], **(
                        {"note": r["note"]} if "note" in r else {})}
                return run_benchmark(srv.port, test, 50, pipeline, requests, 1, 3, a.client_cpu)
            res = alternate(a, servers, one)
            r = {k: med(res["redis"], k) for k in ("rps", "p50", "p99")}
            f = {k: med(res["ferrodis"], k) for k in ("rps", "p50", "p99")}
            print(f"| {label} | {pipeline} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
                  f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} |", flush=True)


def pss_kb(pid):
    """Proportional set size of a process (shared pages split between parent and fork child)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(pid):
    """PSS of a process plus its children (Redis's fork child during BGSAVE)."""
    total = pss_kb(pid)
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                total += sum(pss_kb(int(c)) for c in f.read().split())
    except OSError:
        pass
    return total


def persistence_field(srv, field):
    for line in srv.cli("INFO", "persistence").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def persistence_suite(a, servers):
    n = a.memkeys * 10
    print(f"Dataset: DEBUG POPULATE {n} keys with 100-byte values. Memory is the PSS of the server plus its "
          "children (Redis's fork), sampled every 20 ms during BGSAVE. The write load is redis-benchmark SET "
          "(50 clients, P1, random keys key:%012d, so it also adds keys) on the load generator's core, running "
          "across the save; its max latency is the longest any write waited. The save's own overhead is the "
          "peak above the larger of the PSS before and right after the save (the dataset grows with the new "
          "keys meanwhile).\n")
    for srv in servers.values():
        srv.cli("FLUSHALL")
        srv.cli("DEBUG", "POPULATE", str(n), "key", "100")
    print("| server | write load | used_memory MB | BGSAVE s | PSS before MB | PSS peak MB | PSS after MB | "
          "save overhead MB (peak - max(before, after)) | writes/s | write p99 / max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for load in (False, True):
        for name, srv in servers.items():
            used = int(srv.cli("INFO", "memory").split("used_memory:")[1].split()[0])
            writer = None
            if load:
                cmd = ["taskset", "-c", str(a.client_cpu), BENCHMARK, "-p", str(srv.port), "-t", "set",
                       "-c", "50", "-n", str(a.requests * 2), "-r", str(n), "-d", "100", "--csv"]
                writer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                time.sleep(1)
            before = tree_pss_kb(srv.proc.pid)
            peak = before
            t0 = time.time()
            srv.cli("BGSAVE")
            while True:
                peak = max(peak, tree_pss_kb(srv.proc.pid))
                if persistence_field(srv, "rdb_bgsave_in_progress") == "0" and time.time() - t0 > 0.05:
                    break
                time.sleep(0.02)
            secs = time.time() - t0
            time.sleep(0.3)
            after = tree_pss_kb(srv.proc.pid)
            ok = persistence_field(srv, "rdb_last_bgsave_status")
            wl = "-"
            if writer:
                out = writer.communicate()[0]
                rows = [[c.strip('"') for c in l.split(",")] for l in out.splitlines() if l.startswith('"SET"')]
                if rows:
                    r = rows[-1]
                    wl = f"{float(r[1]):.0f} | {float(r[6]):.2f} / {float(r[7]):.2f}"
            else:
                wl = "- | -"
            print(f"| {name} | {'SET load' if load else 'idle'} | {used / 1e6:.0f} | {secs:.2f} ({ok}) | "
                  f"{before / 1024:.0f} | {peak / 1024:.0f} | {after / 1024:.0f} | "
                  f"{(peak - max(before, after)) / 1024:.0f} "
                  f"({(peak - max(before, after)) / max(before, after, 1) * 100:.0f}%) | {wl} |", flush=True)
    # Load time: both servers load the same file (Redis's dump.rdb, which both read).
    rdir = servers["redis"].dir
    servers["redis"].cli("SAVE")
    n = int(servers["redis"].cli("DBSIZE"))
    src = os.path.join(rdir, "dump.rdb")
    size = os.path.getsize(src)
    print(f"\n| RDB load ({size / 1e6:.0f} MB file written by Redis) | redis s | ferrodis s | ratio |")
    print("|---|---|---|---|")
    times = {}
    for name, argv in (("redis", [a.redis, "--save", "", "--appendonly", "no"]),
                       ("ferrodis", [a.ferrodis, "--threads", str(a.threads), "--save", "", "--appendonly", "no"])):
        d = tempfile.mkdtemp(prefix=f"bench-load-{name}-")
        shutil.copy(src, os.path.join(d, "dump.rdb"))
        port = free_port()
        t0 = time.time()
        p = subprocess.Popen(["taskset", "-c", str(a.server_cpu)] + argv + ["--port", str(port), "--dir", d],
                             cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            r = subprocess.run(["redis-cli", "-p", str(port), "DBSIZE"], capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip().isdigit() and int(r.stdout) >= n:
                break
            if p.poll() is not None or time.time() - t0 > 600:
                raise RuntimeError(f"{name} did not load the file")
            time.sleep(0.01)
        times[name] = time.time() - t0
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)
    print(f"| {n} keys | {times['redis']:.2f} | {times['ferrodis']:.2f} | "
          f"{times['ferrodis'] / times['redis']:.2f} |", flush=True)
    aof_suite(a)


def aof_suite(a):
    """SET throughput with the AOF on, per appendfsync policy (fresh servers, each in its own directory)."""
    print("\n| SET with AOF (50 clients, P1, 100-byte values) | appendfsync | redis rps | ferrodis rps | ratio | "
          "redis p50/p99 ms | ferrodis p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    requests = max(a.requests // 5, 20_000)
    for policy in ("always", "everysec"):
        res = {"redis": [], "ferrodis": []}
        for _ in range(a.rounds):
            for name, argv in (("redis", [a.redis, "--save", ""]),
                               ("ferrodis", [a.ferrodis, "--threads", str(a.threads), "--save", ""])):
                srv = Server(name, argv + ["--appendonly", "yes", "--appendfsync", policy], a.server_cpu)
                try:
                    res[name].append(run_benchmark(srv.port, "set", 50, 1, requests, 1_000_000, 100,
                                                   a.client_cpu))
                finally:
                    srv.stop()
        m = {n: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")} for n, rs in res.items()}
        r, f = m["redis"], m["ferrodis"]
        print(f"| SET | {policy} | {r['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / r['rps']:.2f} | "
              f"{r['p50']:.3f}/{r['p99']:.3f} | {f['p50']:.3f}/{f['p99']:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
