"""The patterns of seed/redis-in-2026.txt, run for real with redis-py against the server under test.

Pattern 1: cache-aside with SETEX/GET/DEL and JSON payloads.
Pattern 3: rate limiting with INCR + EXPIRE.
The seed's Python `@cached(ttl_seconds=...)` decorator.
"""

import json
import time

import pytest


class FakeDB:
    """Stands in for the slow database of the seed: counts queries, returns fresh rows."""

    def __init__(self):
        self.queries = 0
        self.users = {
            1: {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com", "roles": ["admin"], "active": True},
            2: {"id": 2, "name": "Grace Hopper", "email": "grace@example.com", "roles": [], "active": False},
            3: {"id": 3, "name": "Zoë Ünïcødé 🚀", "email": None, "roles": ["a", "b"], "score": 12.5},
        }

    def query_user(self, user_id):
        self.queries += 1
        row = self.users.get(user_id)
        return None if row is None else json.loads(json.dumps(row))

    def update_user(self, user_id, data):
        self.queries += 1
        self.users[user_id].update(data)


# ---------------------------------------------------------------------------------------------------------
# Pattern 1: cache-aside


def get_cached_user(r, db, user_id, ttl=300):
    cache_key = f"user:{user_id}"
    cached = r.get(cache_key)
    if cached:
        return json.loads(cached)
    user = db.query_user(user_id)
    r.setex(cache_key, ttl, json.dumps(user))
    return user


def update_user(r, db, user_id, data):
    db.update_user(user_id, data)
    r.delete(f"user:{user_id}")


def test_cache_aside_miss_then_hit(r):
    db = FakeDB()
    first = get_cached_user(r, db, 1)
    assert first == db.users[1]
    assert db.queries == 1
    # The JSON payload is stored as is, with the TTL of SETEX.
    assert json.loads(r.get("user:1")) == db.users[1]
    assert 299 <= r.ttl("user:1") <= 300
    assert 299_000 <= r.pttl("user:1") <= 300_000
    assert r.type("user:1") == "string"
    for _ in range(5):
        assert get_cached_user(r, db, 1) == first
    assert db.queries == 1, "cache hits must not query the database"


def test_cache_aside_invalidation_on_update(r):
    db = FakeDB()
    assert get_cached_user(r, db, 2)["active"] is False
    update_user(r, db, 2, {"active": True, "name": "Rear Admiral Hopper"})
    assert r.exists("user:2") == 0
    assert r.get("user:2") is None
    fresh = get_cached_user(r, db, 2)
    assert fresh["active"] is True and fresh["name"] == "Rear Admiral Hopper"
    assert db.queries == 3  # query, update, query again
    assert get_cached_user(r, db, 2) == fresh
    assert db.queries == 3


def test_cache_aside_unicode_json_round_trip(r):
    db = FakeDB()
    user = get_cached_user(r, db, 3)
    raw = r.get("user:3")
    assert json.loads(raw) == user == db.users[3]
    assert r.strlen("user:3") == len(raw.encode("utf-8"))
    # ensure_ascii=False payload: raw UTF-8 bytes in the value
    r.setex("user:3:raw", 60, json.dumps(user, ensure_ascii=False))
    assert json.loads(r.get("user:3:raw"))["name"] == "Zoë Ünïcødé 🚀"


def test_cache_aside_entries_expire(r):
    db = FakeDB()
    get_cached_user(r, db, 1, ttl=1)
    assert r.ttl("user:1") == 1
    assert get_cached_user(r, db, 1, ttl=1) == db.users[1]
    assert db.queries == 1
    time.sleep(1.2)
    assert r.get("user:1") is None
    assert r.ttl("user:1") == -2
    get_cached_user(r, db, 1, ttl=1)
    assert db.queries == 2


def test_cache_aside_missing_row_cached_as_null(r):
    db = FakeDB()
    assert get_cached_user(r, db, 999) is None
    assert r.get("user:999") == "null"
    # "null" is truthy as a string: the next lookup is a hit returning None
    assert get_cached_user(r, db, 999) is None
    assert db.queries == 1


def test_setex_errors_and_overwrite(r):
    import redis as redis_mod

    r.setex("k", 100, "v1")
    r.setex("k", 200, "v2")
    assert r.get("k") == "v2"
    assert r.ttl("k") == 200
    with pytest.raises(redis_mod.ResponseError, match="invalid expire time in 'setex' command"):
        r.setex("k", 0, "v")
    with pytest.raises(redis_mod.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("SETEX", "k", "abc", "v")
    assert r.get("k") == "v2"
    assert r.delete("k", "nokey") == 1


# ---------------------------------------------------------------------------------------------------------
# Pattern 3: rate limiting


def check_rate_limit(r, ip, max_requests=100, window_seconds=60):
    key = f"rate_limit:{ip}"
    current = r.incr(key)
    if current == 1:
        r.expire(key, window_seconds)
    return {
        "allowed": current <= max_requests,
        "remaining": max(0, max_requests - current),
        "total": max_requests,
    }


def test_rate_limit_allows_then_blocks(r):
    results = [check_rate_limit(r, "10.0.0.1", max_requests=5) for _ in range(8)]
    assert [x["allowed"] for x in results] == [True] * 5 + [False] * 3
    assert [x["remaining"] for x in results] == [4, 3, 2, 1, 0, 0, 0, 0]
    assert all(x["total"] == 5 for x in results)
    assert r.get("rate_limit:10.0.0.1") == "8"
    assert 59 <= r.ttl("rate_limit:10.0.0.1") <= 60


def test_rate_limit_ips_are_independent(r):
    for _ in range(3):
        check_rate_limit(r, "1.1.1.1", max_requests=3)
    assert check_rate_limit(r, "1.1.1.1", max_requests=3)["allowed"] is False
    assert check_rate_limit(r, "2.2.2.2", max_requests=3) == {"allowed": True, "remaining": 2, "total": 3}
    assert sorted(r.keys("rate_limit:*")) == ["rate_limit:1.1.1.1", "rate_limit:2.2.2.2"]


def test_rate_limit_expire_only_on_first_request(r):
    check_rate_limit(r, "3.3.3.3", window_seconds=100)
    r.expire("rate_limit:3.3.3.3", 50)  # later INCRs must not reset the window
    for _ in range(10):
        check_rate_limit(r, "3.3.3.3", window_seconds=100)
    assert r.ttl("rate_limit:3.3.3.3") == 50
    # INCR keeps the TTL of the key
    assert r.incr("rate_limit:3.3.3.3") == 12
    assert r.ttl("rate_limit:3.3.3.3") == 50


def test_rate_limit_window_expires(r):
    for _ in range(3):
        check_rate_limit(r, "4.4.4.4", max_requests=2, window_seconds=1)
    assert check_rate_limit(r, "4.4.4.4", max_requests=2, window_seconds=1)["allowed"] is False
    assert r.ttl("rate_limit:4.4.4.4") in (0, 1)
    time.sleep(1.3)
    assert r.get("rate_limit:4.4.4.4") is None
    assert r.ttl("rate_limit:4.4.4.4") == -2
    fresh = check_rate_limit(r, "4.4.4.4", max_requests=2, window_seconds=1)
    assert fresh == {"allowed": True, "remaining": 1, "total": 2}
    assert r.ttl("rate_limit:4.4.4.4") == 1


def test_rate_limit_with_millisecond_window(r):
    # The same pattern with PEXPIRE for sub-second windows.
    key = "rate_limit:ms"
    assert r.incr(key) == 1
    assert r.pexpire(key, 500) is True
    assert 0 < r.pttl(key) <= 500
    assert r.incr(key) == 2
    time.sleep(0.7)
    assert r.exists(key) == 0
    assert r.incr(key) == 1
    assert r.ttl(key) == -1


def test_incr_errors(r):
    import redis as redis_mod

    r.set("notnum", "abc")
    with pytest.raises(redis_mod.ResponseError, match="^value is not an integer or out of range$"):
        r.incr("notnum")
    r.set("big", "9223372036854775807")
    with pytest.raises(redis_mod.ResponseError, match="increment or decrement would overflow"):
        r.incr("big")
    assert r.get("big") == "9223372036854775807"
    assert r.incrby("n", 10) == 10
    assert r.decr("n") == 9
    assert r.decrby("n", 20) == -11


# ---------------------------------------------------------------------------------------------------------
# The seed's @cached decorator, used as written (r is the module-global client of the seed).


def make_cached(r):
    def cached(ttl_seconds=300):
        def decorator(func):
            def wrapper(*args, **kwargs):
                cache_key = f"{func.__name__}:{args}:{kwargs}"
                cached_value = r.get(cache_key)
                if cached_value:
                    return json.loads(cached_value)
                result = func(*args, **kwargs)
                r.setex(cache_key, ttl_seconds, json.dumps(result))
                return result

            return wrapper

        return decorator

    return cached


def test_cached_decorator(r):
    cached = make_cached(r)
    db = FakeDB()

    @cached(ttl_seconds=60)
    def get_user(user_id):
        # This expensive call is only made once per minute
        return db.query_user(user_id)

    assert get_user(1) == db.users[1]
    assert get_user(1) == db.users[1]
    assert get_user(1) == db.users[1]
    assert db.queries == 1
    assert get_user(2) == db.users[2]
    assert db.queries == 2
    assert sorted(r.keys("get_user:*")) == ["get_user:(1,):{}", "get_user:(2,):{}"]
    assert r.ttl("get_user:(1,):{}") == 60
    assert json.loads(r.get("get_user:(2,):{}")) == db.users[2]

    @cached(ttl_seconds=60)
    def search(term, limit=10):
        db.queries += 1
        return [f"{term}-{i}" for i in range(limit)]

    assert search("ab", limit=3) == ["ab-0", "ab-1", "ab-2"]
    assert search("ab", limit=3) == ["ab-0", "ab-1", "ab-2"]
    assert search("ab", limit=2) == ["ab-0", "ab-1"]
    assert db.queries == 4
    assert r.exists("search:('ab',):{'limit': 3}") == 1


def test_cached_decorator_expiry_and_invalidation(r):
    cached = make_cached(r)
    calls = []

    @cached(ttl_seconds=1)
    def compute(x):
        calls.append(x)
        return {"x": x, "square": x * x, "nested": {"list": [x, x + 0.5]}}

    assert compute(3) == {"x": 3, "square": 9, "nested": {"list": [3, 3.5]}}
    assert compute(3)["square"] == 9
    assert calls == [3]
    time.sleep(1.2)
    assert compute(3)["square"] == 9
    assert calls == [3, 3]
    # manual invalidation
    assert r.delete("compute:(3,):{}") == 1
    compute(3)
    assert calls == [3, 3, 3]
    # FLUSHDB clears the cache
    r.flushdb()
    assert r.dbsize() == 0
    compute(3)
    assert calls == [3, 3, 3, 3]
