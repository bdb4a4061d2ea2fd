"""Streams with redis-py: the stream API (XADD/XREAD/XRANGE/XTRIM/XDEL/XINFO), consumer groups, the reliable
job-queue pattern (several consumers on their own connections, one crashes without acking, another takes its
pending entries over with XAUTOCLAIM; every job processed and acknowledged exactly once) and the event-log
pattern (XADD MAXLEN ~ with a reader blocked on `$` woken by XADD)."""

import threading
import time
from collections import Counter

import pytest
import redis


def _conn(server, **kw):
    return redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True, socket_timeout=10, **kw)


def test_xadd_xrange_xlen_xdel_xtrim(r):
    ids = [r.xadd("s", {"f1": "v1", "f2": str(i)}) for i in range(10)]
    assert len(set(ids)) == 10 and ids == sorted(ids, key=lambda x: tuple(map(int, x.split("-"))))
    assert r.xlen("s") == 10
    entries = r.xrange("s")
    assert [e[0] for e in entries] == ids
    assert entries[3][1] == {"f1": "v1", "f2": "3"}
    assert [e[0] for e in r.xrange("s", min=ids[2], max=ids[4])] == ids[2:5]
    assert [e[0] for e in r.xrange("s", min="(" + ids[2], count=2)] == ids[3:5]
    assert [e[0] for e in r.xrevrange("s", count=3)] == ids[::-1][:3]
    assert r.xdel("s", ids[0], ids[1], "0-1") == 2
    assert r.xlen("s") == 8
    assert r.xtrim("s", maxlen=5, approximate=False) == 3
    assert [e[0] for e in r.xrange("s")] == ids[5:]
    assert r.xtrim("s", minid=ids[7], approximate=False) == 2
    assert [e[0] for e in r.xrange("s")] == ids[7:]
    # explicit IDs, `<ms>-*`, NOMKSTREAM and the ordering error
    assert r.xadd("e", {"a": "1"}, id="5-1") == "5-1"
    assert r.xadd("e", {"a": "2"}, id="5-*") == "5-2"
    with pytest.raises(redis.ResponseError, match="equal or smaller than the target stream top item"):
        r.xadd("e", {"a": "3"}, id="5-2")
    assert r.xadd("nope", {"a": "1"}, nomkstream=True) is None
    assert r.exists("nope") == 0
    r.set("str", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.xadd("str", {"a": "1"})


def test_xread_block_woken_by_xadd(r, server):
    r.xadd("ev", {"x": "0"})
    got = {}

    def reader():
        c = _conn(server)
        got["res"] = c.xread({"ev": "$"}, block=5000)
        got["t"] = time.monotonic()
        c.close()

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    new_id = r.xadd("ev", {"x": "1"})
    t.join(10)
    assert not t.is_alive()
    assert got["res"] == [["ev", [(new_id, {"x": "1"})]]]
    assert got["t"] - t0 < 2.0
    # timeout -> nil (redis-py gives an empty list)
    assert r.xread({"ev": "$"}, block=100) == []
    # non-blocking read from an ID, with COUNT
    assert len(r.xread({"ev": "0"}, count=1)[0][1]) == 1


def test_consumer_group_api(r):
    r.xgroup_create("q", "g", id="$", mkstream=True)
    with pytest.raises(redis.ResponseError, match="BUSYGROUP"):
        r.xgroup_create("q", "g")
    ids = [r.xadd("q", {"job": str(i)}) for i in range(6)]
    msgs = r.xreadgroup("g", "alice", {"q": ">"}, count=4)
    assert [m[0] for m in msgs[0][1]] == ids[:4]
    msgs = r.xreadgroup("g", "bob", {"q": ">"})
    assert [m[0] for m in msgs[0][1]] == ids[4:]
    summary = r.xpending("q", "g")
    assert summary["pending"] == 6 and summary["min"] == ids[0] and summary["max"] == ids[5]
    assert sorted((c["name"], c["pending"]) for c in summary["consumers"]) == [("alice", 4), ("bob", 2)]
    rng = r.xpending_range("q", "g", min="-", max="+", count=10, consumername="alice")
    assert [p["message_id"] for p in rng] == ids[:4]
    assert all(p["consumer"] == "alice" and p["times_delivered"] == 1 for p in rng)
    assert r.xack("q", "g", ids[0], ids[1]) == 2
    assert r.xack("q", "g", ids[0]) == 0
    # history read of alice's own pending entries
    hist = r.xreadgroup("g", "alice", {"q": "0"})
    assert [m[0] for m in hist[0][1]] == ids[2:4]
    # XCLAIM to bob (min idle 0), with JUSTID
    claimed = r.xclaim("q", "g", "bob", 0, [ids[2]])
    assert claimed == [(ids[2], {"job": "2"})]
    assert r.xclaim("q", "g", "bob", 0, [ids[3]], justid=True) == [ids[3]]
    assert r.xpending("q", "g")["consumers"] == [{"name": "bob", "pending": 4}]
    # XAUTOCLAIM back to carol
    nxt, taken, deleted = r.xautoclaim("q", "g", "carol", 0, start_id="0-0", count=10)
    assert nxt == "0-0" and [m[0] for m in taken] == ids[2:] and deleted == []
    # a deleted pending entry shows up in the third element
    r.xdel("q", ids[5])
    nxt, taken, deleted = r.xautoclaim("q", "g", "dave", 0, start_id="0-0", count=10)
    assert deleted == [ids[5]] and [m[0] for m in taken] == ids[2:5]
    info = r.xinfo_stream("q")
    assert info["length"] == 5 and info["groups"] == 1 and info["last-generated-id"] == ids[5]
    assert info["first-entry"][0] == ids[0]
    groups = r.xinfo_groups("q")
    assert groups[0]["name"] == "g" and groups[0]["pending"] == 3 and groups[0]["last-delivered-id"] == ids[5]
    assert groups[0]["entries-read"] == 6
    consumers = {c["name"]: c for c in r.xinfo_consumers("q", "g")}
    assert set(consumers) == {"alice", "bob", "carol", "dave"}
    assert consumers["dave"]["pending"] == 3 and consumers["alice"]["pending"] == 0
    full = r.xinfo_stream("q", full=True)
    assert full["length"] == 5 and len(full["groups"]) == 1
    assert r.xgroup_createconsumer("q", "g", "erin") == 1
    assert r.xgroup_delconsumer("q", "g", "dave") == 3
    assert r.xgroup_setid("q", "g", "0") is True
    assert r.xgroup_destroy("q", "g") == 1
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        r.xreadgroup("g", "alice", {"q": ">"})


def test_resp3_stream_replies(r3):
    r3.xadd("s3", {"a": "1"}, id="1-1")
    assert r3.xrange("s3") == [("1-1", {"a": "1"})]
    res = r3.xread({"s3": "0"})
    assert res == {"s3": [[("1-1", {"a": "1"})]]} or res == {"s3": [("1-1", {"a": "1"})]}
    info = r3.xinfo_stream("s3")
    assert info["length"] == 1


def test_job_queue_crash_and_xautoclaim(r, server):
    """Several workers in one group, each on its own connection; worker 'crasher' reads jobs and dies without
    acking; after min-idle-time a surviving worker reclaims them with XAUTOCLAIM. Every job is processed and
    acknowledged exactly once."""
    n_jobs = 300
    r.xgroup_create("jobs", "workers", id="0", mkstream=True)

    # the crasher takes some jobs first, then its connection is closed without XACK
    for i in range(n_jobs):
        r.xadd("jobs", {"job": str(i), "payload": "x" * 8})
    crasher = _conn(server)
    stolen = crasher.xreadgroup("workers", "crasher", {"jobs": ">"}, count=25)
    stolen_ids = [m[0] for m in stolen[0][1]]
    assert len(stolen_ids) == 25
    crasher.connection_pool.disconnect()  # crash: socket closed, nothing acked

    processed = Counter()
    acked = Counter()
    lock = threading.Lock()
    min_idle = 200

    def worker(name, reclaim):
        c = _conn(server)
        last_reclaim = 0.0
        idle_rounds = 0
        while True:
            batch = []
            res = c.xreadgroup("workers", name, {"jobs": ">"}, count=10, block=100)
            if res:
                batch = res[0][1]
            if reclaim and time.monotonic() - last_reclaim > 0.05:
                last_reclaim = time.monotonic()
                _, claimed, _ = c.xautoclaim("jobs", "workers", name, min_idle, start_id="0-0", count=50)
                batch = batch + claimed
            if not batch:
                idle_rounds += 1
                if c.xpending("jobs", "workers")["pending"] == 0 and idle_rounds > 3:
                    break
                if idle_rounds > 200:
                    break
                continue
            idle_rounds = 0
            for msg_id, fields in batch:
                with lock:
                    processed[fields["job"]] += 1
                n = c.xack("jobs", "workers", msg_id)
                with lock:
                    acked[msg_id] += n
        c.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}", i == 0)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)

    assert len(processed) == n_jobs
    assert all(v == 1 for v in processed.values()), [k for k, v in processed.items() if v != 1]
    assert sum(acked.values()) == n_jobs and all(v == 1 for v in acked.values())
    assert set(stolen_ids) <= set(acked)
    assert r.xpending("jobs", "workers")["pending"] == 0
    consumers = {c["name"]: c for c in r.xinfo_consumers("jobs", "workers")}
    assert consumers["crasher"]["pending"] == 0
    assert r.xinfo_groups("jobs")[0]["lag"] == 0


def test_event_log_maxlen_and_blocking_tail(r, server):
    """Producers append with MAXLEN ~ 1000; a follower on its own connection tails the log with XREAD BLOCK from
    `$` and sees every event appended after it started, in order."""
    for i in range(5000):
        r.xadd("log", {"type": "click", "n": str(i)}, maxlen=1000, approximate=True)
    length = r.xlen("log")
    assert 1000 <= length < 5000
    exact = r.xadd("log2", {"a": "1"}, maxlen=3, approximate=False)
    assert exact and r.xlen("log2") == 1

    seen = []
    ready = threading.Event()

    def follower():
        c = _conn(server)
        last = "$"
        ready.set()
        while len(seen) < 50:
            res = c.xread({"log": last}, block=5000, count=100)
            if not res:
                break
            for msg_id, fields in res[0][1]:
                seen.append(int(fields["n"]))
                last = msg_id
        c.close()

    t = threading.Thread(target=follower)
    t.start()
    ready.wait(5)
    time.sleep(0.3)
    for i in range(5000, 5050):
        r.xadd("log", {"type": "click", "n": str(i)}, maxlen=1000, approximate=True)
        if i % 10 == 0:
            time.sleep(0.01)
    t.join(15)
    assert not t.is_alive()
    assert seen == list(range(5000, 5050))
    assert r.xlen("log") >= 1000


def test_xreadgroup_block_woken_by_xadd_and_full_info(r, server):
    r.xgroup_create("bq", "g", id="$", mkstream=True)
    got = {}

    def consumer():
        c = _conn(server)
        got["res"] = c.xreadgroup("g", "waiter", {"bq": ">"}, count=5, block=5000)
        c.close()

    t = threading.Thread(target=consumer)
    t.start()
    time.sleep(0.3)
    new_id = r.xadd("bq", {"job": "1"})
    t.join(10)
    assert not t.is_alive()
    assert got["res"] == [["bq", [(new_id, {"job": "1"})]]]
    # NOACK: delivered but not pending
    r.xadd("bq", {"job": "2"})
    assert len(r.xreadgroup("g", "other", {"bq": ">"}, noack=True)[0][1]) == 1
    assert r.xpending("bq", "g")["pending"] == 1
    full = r.xinfo_stream("bq", full=True)
    assert full["length"] == 2 and full["entries-added"] == 2
    group = full["groups"][0]
    assert group["name"] == "g" and group["pel-count"] == 1
    assert sorted(c["name"] for c in group["consumers"]) == ["other", "waiter"]
