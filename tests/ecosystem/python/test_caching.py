"""Client-side caching with redis-py 5.2: RESP3 invalidation pushes after CLIENT TRACKING."""

import time

import redis


def test_invalidation_pushes_with_redis_py_parser(server, r):
    """redis-py 5.2's own cache (cache_config=CacheConfig()) refuses servers below 7.4 (it checks
    redis_version in HELLO), and Ferrodis reports 7.2.x; so this drives a RESP3 redis-py connection by hand
    and reads the invalidation pushes through redis-py's RESP3 parser."""
    pool = redis.ConnectionPool(host="127.0.0.1", port=server.port, protocol=3)
    conn = pool.get_connection("_")
    got = []
    conn._parser.invalidation_push_handler_func = got.append
    try:
        conn.send_command("CLIENT", "TRACKING", "ON")
        assert conn.read_response() == b"OK"
        r.set("csc:a", "1")
        time.sleep(0.01)
        conn.send_command("PING")
        conn.read_response()
        conn.send_command("GET", "csc:a")
        assert conn.read_response() == b"1"
        r.set("csc:a", "2")
        assert conn.can_read(timeout=2)
        conn.read_response(push_request=True)
        assert got.pop() == [b"invalidate", [b"csc:a"]]
        r.flushall()
        assert conn.can_read(timeout=2)
        conn.read_response(push_request=True)
        assert got.pop() == [b"invalidate", None]
    finally:
        pool.release(conn)
        pool.disconnect()


def test_tracking_push_via_raw_commands(server, r3, r):
    r3.execute_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "bc:")
    info = r3.execute_command("CLIENT", "TRACKINGINFO")
    assert "bcast" in info["flags"] and info["prefixes"] == ["bc:"]
    assert r3.execute_command("CLIENT", "GETREDIR") == 0
    r3.execute_command("CLIENT", "TRACKING", "OFF")
    assert r3.execute_command("CLIENT", "GETREDIR") == -1
