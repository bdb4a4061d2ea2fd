"""The seed's pattern 4 (real-time notifications over pub/sub) with redis-py: a publisher and a subscriber
connection, JSON payloads, pattern subscriptions, RESP3 pushes, the threaded listener, and keyspace
notifications."""

import json
import threading
import time

import pytest
import redis


def _get(ps, timeout=5.0):
    """Next message (subscribe confirmations skipped), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if m is not None:
            return m
    pytest.fail("no message received")


def notify_user(publisher, user_id, message):
    return publisher.publish(
        f"user:{user_id}:notifications",
        json.dumps({"type": "notification", "message": message, "timestamp": int(time.time() * 1000)}),
    )


def test_seed_pattern_json_notifications(r, server):
    sub = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    ps = sub.pubsub()
    ps.subscribe("user:123:notifications")
    first = ps.get_message(timeout=5)
    assert first == {"type": "subscribe", "pattern": None, "channel": "user:123:notifications", "data": 1}
    assert notify_user(r, 123, "hello") == 1
    assert notify_user(r, 456, "not for you") == 0
    m = _get(ps)
    assert m["type"] == "message" and m["channel"] == "user:123:notifications"
    data = json.loads(m["data"])
    assert data["type"] == "notification" and data["message"] == "hello"
    assert isinstance(data["timestamp"], int)
    assert r.pubsub_numsub("user:123:notifications") == [("user:123:notifications", 1)]
    assert "user:123:notifications" in r.pubsub_channels("user:*")
    ps.unsubscribe()
    assert ps.get_message(timeout=5)["type"] == "unsubscribe"
    ps.close()
    sub.close()


def test_pattern_subscription_and_order(r, server):
    sub = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    ps = sub.pubsub(ignore_subscribe_messages=True)
    ps.psubscribe("user:*:notifications")
    ps.get_message(timeout=5)  # confirmation
    for i in range(200):
        assert notify_user(r, i, f"m{i}") == 1
    got = [json.loads(_get(ps)["data"])["message"] for _ in range(200)]
    assert got == [f"m{i}" for i in range(200)]
    assert r.pubsub_numpat() == 1
    ps.close()
    sub.close()


def test_handler_thread(r, server):
    sub = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    ps = sub.pubsub(ignore_subscribe_messages=True)
    received = []
    done = threading.Event()

    def handler(msg):
        received.append(json.loads(msg["data"]))
        if len(received) == 3:
            done.set()

    ps.subscribe(**{"chat:room1": handler})
    t = ps.run_in_thread(sleep_time=0.05, daemon=True)
    deadline = time.monotonic() + 5
    while r.pubsub_numsub("chat:room1")[0][1] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for i in range(3):
        r.publish("chat:room1", json.dumps({"from": "ann", "n": i}))
    assert done.wait(5)
    assert [m["n"] for m in received] == [0, 1, 2]
    t.stop()
    t.join(5)
    ps.close()
    sub.close()


def test_resp3_pubsub(server):
    pub = redis.Redis(host="127.0.0.1", port=server.port, protocol=3, decode_responses=True)
    sub = redis.Redis(host="127.0.0.1", port=server.port, protocol=3, decode_responses=True)
    ps = sub.pubsub()
    ps.subscribe("r3")
    assert ps.get_message(timeout=5)["type"] == "subscribe"
    assert pub.publish("r3", json.dumps({"a": 1})) == 1
    m = _get(ps)
    assert m["channel"] == "r3" and json.loads(m["data"]) == {"a": 1}
    ps.close()
    sub.close()
    pub.close()


def test_sharded_pubsub(r, server):
    sub = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
    ps = sub.pubsub()
    ps.ssubscribe("orders:{eu}")
    assert ps.get_sharded_message(timeout=5)["type"] == "ssubscribe"
    assert r.spublish("orders:{eu}", json.dumps({"id": 7})) == 1
    deadline = time.monotonic() + 5
    m = None
    while m is None and time.monotonic() < deadline:
        m = ps.get_sharded_message(ignore_subscribe_messages=True, timeout=0.2)
    assert m is not None and m["type"] == "smessage" and json.loads(m["data"]) == {"id": 7}
    assert r.pubsub_shardnumsub("orders:{eu}") == [("orders:{eu}", 1)]
    ps.close()
    sub.close()


def test_keyspace_notifications(r, server):
    r.config_set("notify-keyspace-events", "KEA")
    try:
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
        sub = redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True)
        ps = sub.pubsub(ignore_subscribe_messages=True)
        ps.psubscribe("__keyevent@0__:*")
        ps.get_message(timeout=5)
        r.set("session:1", json.dumps({"user": 1}), px=100)
        m = _get(ps)
        assert (m["channel"], m["data"]) == ("__keyevent@0__:set", "session:1")
        # Expiry by the server itself.
        while True:
            m = _get(ps)
            if m["channel"] == "__keyevent@0__:expired":
                break
        assert m["data"] == "session:1"
        ps.close()
        sub.close()
    finally:
        r.config_set("notify-keyspace-events", "")
