"""redis-py features against the server under test: pipelines, MSET/MGET, SET options, INCRBYFLOAT, key
commands, RESP3 (protocol=3), decode_responses on and off."""

import time

import pytest
import redis


# ---------------------------------------------------------------------------------------------------------
# Pipelines (transaction=False: plain pipelining, no MULTI/EXEC)


def test_pipeline_mixed_commands(r):
    pipe = r.pipeline(transaction=False)
    pipe.set("p:a", "1")
    pipe.incr("p:a")
    pipe.incrby("p:a", 10)
    pipe.get("p:a")
    pipe.setex("p:b", 100, "x")
    pipe.ttl("p:b")
    pipe.get("p:missing")
    pipe.delete("p:a", "p:b", "p:missing")
    pipe.exists("p:a")
    assert pipe.execute() == [True, 2, 12, "12", True, 100, None, 2, 0]


def test_pipeline_errors_are_per_command(r):
    r.set("p:str", "abc")
    pipe = r.pipeline(transaction=False)
    pipe.incr("p:str")
    pipe.set("p:ok", "1")
    pipe.get("p:ok")
    results = pipe.execute(raise_on_error=False)
    assert isinstance(results[0], redis.ResponseError)
    assert str(results[0]) == "value is not an integer or out of range"
    assert results[1:] == [True, "1"]
    pipe = r.pipeline(transaction=False)
    pipe.incr("p:str")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        pipe.execute()


def test_pipeline_many_commands(r):
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"bulk:{i}", i)
    for i in range(1000):
        pipe.incr(f"bulk:{i}")
    results = pipe.execute()
    assert results[:1000] == [True] * 1000
    assert results[1000:] == [i + 1 for i in range(1000)]
    assert r.dbsize() == 1000
    assert r.get("bulk:999") == "1000"


def test_pipeline_cache_aside_batch(r):
    import json

    ids = [1, 2, 3]
    pipe = r.pipeline(transaction=False)
    for i in ids:
        pipe.get(f"user:{i}")
    assert pipe.execute() == [None, None, None]
    pipe = r.pipeline(transaction=False)
    for i in ids:
        pipe.setex(f"user:{i}", 300, json.dumps({"id": i}))
    assert pipe.execute() == [True] * 3
    assert [json.loads(v)["id"] for v in r.mget([f"user:{i}" for i in ids])] == ids


# ---------------------------------------------------------------------------------------------------------
# MSET / MGET / MSETNX


def test_mset_mget(r):
    assert r.mset({"m:a": "1", "m:b": "two", "m:c": ""}) is True
    assert r.mget("m:a", "m:b", "m:c", "m:none") == ["1", "two", "", None]
    assert r.mget(["m:a", "m:a"]) == ["1", "1"]
    assert r.msetnx({"m:a": "x", "m:new": "y"}) is False
    assert r.get("m:new") is None
    assert r.msetnx({"m:new": "y", "m:new2": "z"}) is True
    assert r.mget("m:new", "m:new2") == ["y", "z"]
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'mset' command"):
        r.execute_command("MSET", "a")


def test_mset_clears_ttl(r):
    r.set("m:t", "v", ex=100)
    r.mset({"m:t": "w"})
    assert r.ttl("m:t") == -1


# ---------------------------------------------------------------------------------------------------------
# SET options


def test_set_options(r):
    assert r.set("s", "v1") is True
    assert r.set("s", "v2", nx=True) is None
    assert r.set("s", "v2", xx=True) is True
    assert r.set("s:none", "v", xx=True) is None
    assert r.exists("s:none") == 0
    assert r.set("s", "v3", get=True) == "v2"
    assert r.set("s:new", "v", get=True) is None
    assert r.set("s", "v4", ex=100) is True
    assert r.ttl("s") == 100
    assert r.set("s", "v5", keepttl=True) is True
    assert r.ttl("s") == 100
    assert r.get("s") == "v5"
    assert r.set("s", "v6", px=50_000) is True
    assert r.ttl("s") == 50
    assert r.set("s", "v7", exat=4_000_000_000) is True
    assert r.expiretime("s") == 4_000_000_000
    assert r.set("s", "v8", pxat=4_000_000_000_123) is True
    assert r.pexpiretime("s") == 4_000_000_000_123
    assert r.set("s", "v9") is True
    assert r.ttl("s") == -1
    assert r.set("s", "v10", nx=True, get=True) == "v9"
    assert r.get("s") == "v9"


def test_set_option_errors(r):
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
        r.set("k", "v", ex=0)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "EX", "10", "PX", "100")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("SET", "k", "v", "EX", "ten")
    assert r.get("k") is None


def test_set_px_really_expires(r):
    r.set("short", "v", px=500)
    assert r.get("short") == "v"
    time.sleep(0.7)
    assert r.get("short") is None
    assert r.exists("short") == 0


def test_string_commands(r):
    assert r.append("str", "Hello") == 5
    assert r.append("str", " World") == 11
    assert r.strlen("str") == 11
    assert r.getrange("str", 0, 4) == "Hello"
    assert r.getrange("str", -5, -1) == "World"
    assert r.setrange("str", 6, "Redis") == 11
    assert r.get("str") == "Hello Redis"
    assert r.getset("str", "new") == "Hello Redis"
    assert r.getdel("str") == "new"
    assert r.getdel("str") is None
    r.set("gx", "v")
    assert r.getex("gx", ex=100) == "v"
    assert r.ttl("gx") == 100
    assert r.getex("gx", persist=True) == "v"
    assert r.ttl("gx") == -1
    assert r.setnx("nx", "1") is True
    assert r.setnx("nx", "2") is False
    assert r.psetex("ps", 100_000, "v") is True
    assert r.ttl("ps") == 100
    r.mset({"lcs1": "ohmytext", "lcs2": "mynewtext"})
    assert r.lcs("lcs1", "lcs2") == "mytext"
    assert r.lcs("lcs1", "lcs2", len=True) == 6


# ---------------------------------------------------------------------------------------------------------
# INCRBYFLOAT


def test_incrbyfloat(r):
    r.set("f", "10.50")
    assert r.incrbyfloat("f", 0.1) == pytest.approx(10.6)
    assert r.get("f") == "10.6"
    assert r.incrbyfloat("f", -5) == pytest.approx(5.6)
    assert r.get("f") == "5.6"
    r.set("f", "5.0e3")
    assert r.incrbyfloat("f", 2.0e2) == 5200.0
    assert r.get("f") == "5200"
    assert r.incrbyfloat("f:new", 1.5) == 1.5
    assert r.get("f:new") == "1.5"
    assert r.incrbyfloat("f:new", -1.5) == 0.0
    assert r.get("f:new") == "0"
    r.set("f:bad", "abc")
    with pytest.raises(redis.ResponseError, match="value is not a valid float"):
        r.incrbyfloat("f:bad", 1)
    with pytest.raises(redis.ResponseError, match="increment would produce NaN or Infinity"):
        r.execute_command("INCRBYFLOAT", "f", "inf")


# ---------------------------------------------------------------------------------------------------------
# Keys


def test_key_commands(r):
    r.mset({"k:1": "a", "k:2": "b", "other": "c"})
    assert sorted(r.keys("k:*")) == ["k:1", "k:2"]
    assert sorted(r.scan_iter(match="k:*", count=1)) == ["k:1", "k:2"]
    assert sorted(r.scan_iter()) == ["k:1", "k:2", "other"]
    assert sorted(r.scan_iter(_type="string")) == ["k:1", "k:2", "other"]
    assert list(r.scan_iter(_type="list")) == []
    assert r.exists("k:1", "k:2", "nope") == 2
    assert r.type("k:1") == "string"
    assert r.type("nope") == "none"
    assert r.expire("k:1", 100) is True
    assert r.expire("k:1", 200, nx=True) is False
    assert r.expire("k:1", 200, gt=True) is True
    assert r.ttl("k:1") == 200
    assert r.persist("k:1") is True
    assert r.ttl("k:1") == -1
    assert r.ttl("nope") == -2
    assert r.rename("k:1", "k:renamed") is True
    assert r.renamenx("k:2", "k:renamed") is False
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("nope", "x")
    assert r.copy("other", "other:copy") is True
    assert r.get("other:copy") == "c"
    assert r.touch("other", "nope") == 1
    assert r.unlink("other", "other:copy") == 2
    assert r.dbsize() == 2
    assert r.randomkey() in ("k:renamed", "k:2")
    assert r.object("encoding", "k:2") == "embstr"
    r.set("int", 42)
    assert r.object("encoding", "int") == "int"


def test_select_and_move(server):
    c0 = redis.Redis(port=server.port, db=0, decode_responses=True)
    c1 = redis.Redis(port=server.port, db=1, decode_responses=True)
    c0.flushall()
    c0.set("mv", "v")
    assert c0.move("mv", 1) is True
    assert c0.get("mv") is None
    assert c1.get("mv") == "v"
    assert c1.swapdb(0, 1) is True
    assert c0.get("mv") == "v"
    assert c1.dbsize() == 0
    c0.close()
    c1.close()


def test_server_commands(r):
    assert r.ping() is True
    assert r.echo("hello") == "hello"
    assert r.dbsize() == 0
    r.set("a", "1")
    assert r.dbsize() == 1
    assert r.flushdb() is True
    assert r.dbsize() == 0
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000
    assert r.config_get("databases") == {"databases": "16"}
    assert r.client_setname("py-client") is True
    assert r.client_getname() == "py-client"
    assert isinstance(r.client_id(), int)
    info = r.info("server")
    assert "redis_version" in info
    with pytest.raises(redis.ResponseError, match="unknown command 'NOSUCHCMD', with args beginning with: 'x'"):
        r.execute_command("NOSUCHCMD", "x")


# ---------------------------------------------------------------------------------------------------------
# RESP3 (protocol=3)


def test_resp3_basic(r3):
    assert r3.connection_pool.connection_kwargs.get("protocol") == 3
    assert r3.ping() is True
    assert r3.set("k", "v", ex=100) is True
    assert r3.get("k") == "v"
    assert r3.get("missing") is None
    assert r3.ttl("k") == 100
    assert r3.mget("k", "missing") == ["v", None]
    assert r3.incr("n") == 1
    assert r3.incrbyfloat("fl", 2.5) == 2.5
    assert r3.set("k", "w", get=True) == "v"
    assert r3.exists("k", "missing") == 1
    assert r3.config_get("timeout") == {"timeout": "0"}
    assert sorted(r3.keys("*")) == ["fl", "k", "n"]
    assert sorted(r3.scan_iter(match="*")) == ["fl", "k", "n"]


def test_resp3_hello_and_pipeline(r3):
    hello = r3.execute_command("HELLO", "3")
    assert hello["proto"] == 3
    assert hello["role"] == "master"
    assert "server" in hello and "version" in hello and "id" in hello
    pipe = r3.pipeline(transaction=False)
    pipe.set("a", "1")
    pipe.get("a")
    pipe.get("none")
    pipe.incrby("a", 5)
    pipe.ttl("none")
    assert pipe.execute() == [True, "1", None, 6, -2]


def test_resp3_lcs_idx_is_a_map(r3):
    r3.mset({"key1": "ohmytext", "key2": "mynewtext"})
    res = r3.lcs("key1", "key2", idx=True, minmatchlen=4, withmatchlen=True)
    assert res == {"matches": [[[4, 7], [5, 8], 4]], "len": 6}


def test_resp3_errors(r3):
    r3.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r3.incr("s")
    with pytest.raises(redis.ResponseError, match="NOPROTO"):
        r3.execute_command("HELLO", "4")
    assert r3.get("s") == "abc"


def test_resp3_bytes(r3b):
    r3b.set(b"bin", b"\x00\xff\r\n")
    assert r3b.get(b"bin") == b"\x00\xff\r\n"
    assert r3b.get(b"none") is None
    assert r3b.mget(b"bin", b"none") == [b"\x00\xff\r\n", None]


# ---------------------------------------------------------------------------------------------------------
# decode_responses both ways


def test_decode_responses_false_returns_bytes(rb):
    assert rb.set("k", "välue") is True
    assert rb.get("k") == "välue".encode("utf-8")
    assert rb.mget("k", "none") == ["välue".encode("utf-8"), None]
    assert rb.keys("*") == [b"k"]
    assert rb.type("k") == b"string"
    assert rb.incr("n") == 1
    assert rb.get("n") == b"1"
    assert rb.incrbyfloat("f", 0.5) == 0.5
    # redis-py decodes CONFIG GET replies itself
    assert rb.config_get("databases") == {"databases": "16"}


def test_binary_safe_values_and_keys(rb):
    payload = bytes(range(256)) * 4
    key = b"bin\x00key\xff"
    assert rb.set(key, payload) is True
    assert rb.get(key) == payload
    assert rb.strlen(key) == 1024
    assert rb.getrange(key, 0, 3) == b"\x00\x01\x02\x03"
    assert rb.exists(key) == 1
    assert rb.keys(b"bin*") == [key]
    big = b"x" * (1024 * 1024)
    assert rb.set(b"big", big) is True
    assert rb.get(b"big") == big


def test_decode_responses_true_returns_str(r):
    r.set("k", "välue")
    assert r.get("k") == "välue"
    assert isinstance(r.get("k"), str)
    assert r.keys("*") == ["k"]
    assert r.type("k") == "string"
