"""The seed's pattern 5 (leaderboards with sorted sets) and the cheat sheet's collection uses (list job queue,
set of tags, user-profile hash), written as redis-py users write them, against the server under test."""

import json
import random

import pytest

N_PLAYERS = 300


def update_score(r, user_id, score):
    r.zadd("leaderboard", {user_id: score})


def get_top_players(r, count=10):
    results = r.zrevrangebyscore("leaderboard", "+inf", "-inf", withscores=True, start=0, num=count)
    return [
        {"userId": user, "score": int(score), "rank": i + 1}
        for i, (user, score) in enumerate(results)
    ]


def get_user_rank(r, user_id):
    rank = r.zrevrank("leaderboard", user_id)
    return rank + 1 if rank is not None else None


@pytest.fixture
def board(r):
    """A leaderboard of a few hundred players, plus the model (user -> score) it should hold."""
    rng = random.Random(2026)
    model = {}
    for i in range(N_PLAYERS):
        user = f"user:{i}"
        score = rng.randrange(0, 10_000)
        update_score(r, user, score)
        model[user] = score
    return model


def expected_order(model):
    # Highest score first; equal scores: reverse lexicographic member order (as ZREVRANGE).
    return sorted(model.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


def test_top_players_and_ranks(r, board):
    assert r.zcard("leaderboard") == N_PLAYERS
    exp = expected_order(board)
    top = get_top_players(r, 10)
    assert top == [{"userId": u, "score": s, "rank": i + 1} for i, (u, s) in enumerate(exp[:10])]
    assert len(get_top_players(r, 1000)) == N_PLAYERS
    for rank, (user, score) in enumerate(exp, start=1):
        assert get_user_rank(r, user) == rank
    assert get_user_rank(r, "user:unknown") is None
    assert r.zscore("leaderboard", "user:5") == float(board["user:5"])
    assert r.zscore("leaderboard", "user:unknown") is None


def test_score_updates_move_players(r, board):
    # ZINCRBY as games finish: the last player jumps to the top, another drops to the bottom.
    exp = expected_order(board)
    last_user, last_score = exp[-1]
    best = exp[0][1]
    new = r.zincrby("leaderboard", best - last_score + 1, last_user)
    assert new == float(best + 1)
    assert get_user_rank(r, last_user) == 1
    assert get_top_players(r, 1)[0] == {"userId": last_user, "score": best + 1, "rank": 1}
    top_user = exp[0][0]
    r.zincrby("leaderboard", -100_000, top_user)
    assert get_user_rank(r, top_user) == N_PLAYERS
    # Re-adding with ZADD overwrites the score.
    update_score(r, top_user, 5000.5)
    assert r.zscore("leaderboard", top_user) == 5000.5
    # Many concurrent-style increments through a pipeline.
    pipe = r.pipeline(transaction=False)
    for _ in range(50):
        pipe.zincrby("leaderboard", 2, "user:7")
    results = pipe.execute()
    assert results[-1] == float(board["user:7"] + 100)
    board["user:7"] += 100
    board[last_user] = best + 1
    board[top_user] = 5000.5
    ranked = [u for u, _ in sorted(board.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]
    assert r.zrevrange("leaderboard", 0, -1) == ranked


def test_top_players_resp3_and_bytes(r3, rb):
    for i in range(20):
        r3.zadd("leaderboard", {f"p{i}": i * 10})
    top = r3.zrevrangebyscore("leaderboard", "+inf", "-inf", withscores=True, start=0, num=3)
    assert [(m, s) for m, s in top] == [("p19", 190.0), ("p18", 180.0), ("p17", 170.0)]
    assert r3.zrevrank("leaderboard", "p19") == 0
    assert rb.zrevrangebyscore(b"leaderboard", b"+inf", b"-inf", start=0, num=2) == [b"p19", b"p18"]


def test_list_job_queue(r):
    jobs = [{"id": i, "task": "email", "to": f"u{i}@example.com"} for i in range(100)]
    for job in jobs:
        r.lpush("queue:jobs", json.dumps(job))
    assert r.llen("queue:jobs") == 100
    # Peek at the newest entries.
    recent = [json.loads(j) for j in r.lrange("queue:jobs", 0, 4)]
    assert [j["id"] for j in recent] == [99, 98, 97, 96, 95]
    done = []
    while True:
        raw = r.rpop("queue:jobs")
        if raw is None:
            break
        done.append(json.loads(raw))
    assert done == jobs  # FIFO: LPUSH + RPOP
    assert r.exists("queue:jobs") == 0
    assert r.rpop("queue:jobs") is None
    # Batch pop with a count.
    r.lpush("queue:jobs", *[f"j{i}" for i in range(10)])
    assert r.rpop("queue:jobs", 3) == ["j0", "j1", "j2"]
    assert r.lrange("queue:jobs", 0, -1) == [f"j{i}" for i in range(9, 2, -1)]


def test_tags_with_sets(r):
    r.sadd("post:1:tags", "redis", "database", "nosql", "cache")
    r.sadd("post:2:tags", "redis", "rust", "performance")
    r.sadd("post:3:tags", "python", "redis", "cache")
    assert r.smembers("post:1:tags") == {"redis", "database", "nosql", "cache"}
    assert r.sinter("post:1:tags", "post:3:tags") == {"redis", "cache"}
    assert r.sinter("post:1:tags", "post:2:tags", "post:3:tags") == {"redis"}
    assert r.sunion("post:2:tags", "post:3:tags") == {"redis", "rust", "performance", "python", "cache"}
    assert r.sismember("post:2:tags", "rust")
    assert not r.sismember("post:2:tags", "java")
    assert r.sadd("post:2:tags", "rust") == 0
    assert r.srem("post:2:tags", "rust", "nope") == 1
    assert r.scard("post:2:tags") == 2
    assert r.smembers("post:none:tags") == set()
    # Unique visitors: many adds, each counted once.
    for i in range(500):
        r.sadd("visitors:today", f"v{i % 200}")
    assert r.scard("visitors:today") == 200
    # Sort tags alphabetically for display.
    assert r.sort("post:1:tags", alpha=True) == ["cache", "database", "nosql", "redis"]


def test_user_profile_hash(r):
    profile = {"name": "Ada Lovelace", "email": "ada@example.com", "visits": "0", "city": "Zoë 🚀"}
    assert r.hset("user:123:profile", mapping=profile) == 4
    assert r.hgetall("user:123:profile") == profile
    assert r.hget("user:123:profile", "name") == "Ada Lovelace"
    assert r.hmget("user:123:profile", ["email", "nope"]) == ["ada@example.com", None]
    assert r.hincrby("user:123:profile", "visits", 5) == 5
    assert r.hset("user:123:profile", "email", "ada@new.example") == 0
    assert r.hgetall("user:123:profile")["email"] == "ada@new.example"
    assert r.hdel("user:123:profile", "city") == 1
    assert r.hgetall("user:none") == {}
    # Profiles fetched by a leaderboard via SORT ... GET hash fields.
    for i, name in enumerate(["carol", "alice", "bob"]):
        r.hset(f"user:{i}", mapping={"name": name, "score": str(10 * (3 - i))})
        r.rpush("users", i)
    assert r.sort("users", by="user:*->score", get="user:*->name") == ["bob", "alice", "carol"]
    assert r.sort("users", by="user:*->name", alpha=True, desc=True, get=["#", "user:*->name"]) == [
        "0", "carol", "2", "bob", "1", "alice",
    ]
    assert r.sort("users", by="user:*->score", get="user:*->name", store="ranked") == 3
    assert r.lrange("ranked", 0, -1) == ["bob", "alice", "carol"]
