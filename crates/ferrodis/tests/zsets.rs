//! Integration tests for the sorted-set commands: the built `ferrodis` binary is started on a free port and
//! driven over TCP with the `redis` crate and a raw socket for exact RESP2/RESP3 bytes (7.2 shapes: ZRANK
//! WITHSCORE, shortest double formatting, RESP3 pairs). The seed's leaderboard pattern runs as a client would.

mod common;

use common::Server;
use redis::Value;

fn q(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .unwrap_or_else(|e| Value::SimpleString(format!("ERR:{e}")))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn leaderboard_pattern() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    // Scores for 50 players, some updated, as a game backend would.
    for i in 0..50 {
        let n: i64 = redis::cmd("ZADD")
            .arg("lb")
            .arg(i * 10)
            .arg(format!("player:{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(n, 1);
    }
    let _: f64 = redis::cmd("ZINCRBY")
        .arg("lb")
        .arg(1000)
        .arg("player:3")
        .query(&mut con)
        .unwrap();
    let top: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
        .arg("lb")
        .arg("+inf")
        .arg("-inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(0)
        .arg(10)
        .query(&mut con)
        .unwrap();
    assert_eq!(top.len(), 10);
    assert_eq!(top[0], ("player:3".to_string(), 1030.0));
    assert_eq!(top[1], ("player:49".to_string(), 490.0));
    assert_eq!(top[9], ("player:41".to_string(), 410.0));
    let rank: Option<i64> = redis::cmd("ZREVRANK")
        .arg("lb")
        .arg("player:3")
        .query(&mut con)
        .unwrap();
    assert_eq!(rank, Some(0));
    let rank: Option<i64> = redis::cmd("ZREVRANK")
        .arg("lb")
        .arg("player:0")
        .query(&mut con)
        .unwrap();
    assert_eq!(rank, Some(49));
    let rank: Option<i64> = redis::cmd("ZREVRANK")
        .arg("lb")
        .arg("nobody")
        .query(&mut con)
        .unwrap();
    assert_eq!(rank, None);
    // Grow past the listpack limit: same answers from the skiplist encoding.
    for i in 50..500 {
        let _: i64 = redis::cmd("ZADD")
            .arg("lb")
            .arg(i * 10)
            .arg(format!("player:{i}"))
            .query(&mut con)
            .unwrap();
    }
    assert_eq!(q(&mut con, &["OBJECT", "ENCODING", "lb"]), bulk("skiplist"));
    let rank: i64 = redis::cmd("ZREVRANK")
        .arg("lb")
        .arg("player:3")
        .query(&mut con)
        .unwrap();
    assert_eq!(rank, 396); // players 104..=499 have more than 1030 points
    let top: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
        .arg("lb")
        .arg("+inf")
        .arg("-inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(0)
        .arg(3)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        top,
        vec![
            ("player:499".to_string(), 4990.0),
            ("player:498".to_string(), 4980.0),
            ("player:497".to_string(), 4970.0)
        ]
    );
}

#[test]
fn exact_replies_resp2_and_resp3() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    assert_eq!(
        r.call(&["ZADD", "z", "1", "a", "2.5", "b", "0.1", "c"]),
        ":3\r\n"
    );
    // 7.2 shortest round-trip doubles.
    assert_eq!(r.call(&["ZSCORE", "z", "c"]), "$3\r\n0.1\r\n");
    assert_eq!(
        r.call(&["ZRANK", "z", "b", "WITHSCORE"]),
        "*2\r\n:2\r\n$3\r\n2.5\r\n"
    );
    assert_eq!(
        r.call(&["ZREVRANK", "z", "b", "withscore"]),
        "*2\r\n:0\r\n$3\r\n2.5\r\n"
    );
    assert_eq!(r.call(&["ZRANK", "z", "nope", "WITHSCORE"]), "*-1\r\n");
    assert_eq!(r.call(&["ZRANK", "z", "nope"]), "$-1\r\n");
    assert_eq!(
        r.call(&["ZRANK", "z", "b", "BOGUS"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.call(&["ZRANK", "z", "b", "WITHSCORE", "x"]),
        "-ERR wrong number of arguments for 'zrank' command\r\n"
    );
    assert_eq!(r.call(&["ZADD", "z", "INCR", "inf", "a"]), "$3\r\ninf\r\n");
    assert_eq!(
        r.call(&["ZINCRBY", "z", "-inf", "a"]),
        "-ERR resulting score is not a number (NaN)\r\n"
    );
    assert_eq!(
        r.call(&["ZADD", "z", "NX", "XX", "1", "a"]),
        "-ERR XX and NX options at the same time are not compatible\r\n"
    );
    assert_eq!(
        r.call(&["ZADD", "z", "GT", "LT", "1", "a"]),
        "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"
    );
    assert_eq!(
        r.call(&["ZADD", "z", "INCR", "1", "a", "2", "b"]),
        "-ERR INCR option supports a single increment-element pair\r\n"
    );
    assert_eq!(
        r.call(&["ZADD", "z", "x", "a"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        r.call(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "*6\r\n$1\r\nc\r\n$3\r\n0.1\r\n$1\r\nb\r\n$3\r\n2.5\r\n$1\r\na\r\n$3\r\ninf\r\n"
    );
    assert_eq!(
        r.call(&["ZRANGE", "z", "x", "y", "BYLEX"]),
        "-ERR min or max not valid string range item\r\n"
    );
    assert_eq!(
        r.call(&["ZCOUNT", "z", "x", "1"]),
        "-ERR min or max is not a float\r\n"
    );
    assert_eq!(
        r.call(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"
    );
    assert_eq!(
        r.call(&["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"]),
        "-ERR syntax error, WITHSCORES not supported in combination with BYLEX\r\n"
    );
    assert_eq!(r.call(&["SET", "s", "v"]), "+OK\r\n");
    assert_eq!(
        r.call(&["ZADD", "s", "1", "a"]),
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    assert_eq!(r.call(&["ZPOPMIN", "z"]), "*2\r\n$1\r\nc\r\n$3\r\n0.1\r\n");

    // RESP3: doubles, [member, score] pairs where Redis 7.2 nests them.
    assert!(r.call(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(r.call(&["ZSCORE", "z", "b"]), ",2.5\r\n");
    assert_eq!(r.call(&["ZSCORE", "z", "nope"]), "_\r\n");
    assert_eq!(
        r.call(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "*2\r\n*2\r\n$1\r\nb\r\n,2.5\r\n*2\r\n$1\r\na\r\n,inf\r\n"
    );
    assert_eq!(
        r.call(&["ZRANK", "z", "a", "WITHSCORE"]),
        "*2\r\n:1\r\n,inf\r\n"
    );
    assert_eq!(r.call(&["ZMSCORE", "z", "b", "x"]), "*2\r\n,2.5\r\n_\r\n");
    assert_eq!(r.call(&["ZPOPMAX", "z"]), "*2\r\n$1\r\na\r\n,inf\r\n");
    assert_eq!(
        r.call(&["ZPOPMAX", "z", "1"]),
        "*1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    );
    assert_eq!(r.call(&["EXISTS", "z"]), ":0\r\n");
    assert_eq!(r.call(&["ZADD", "m", "1", "a", "2", "b"]), ":2\r\n");
    assert_eq!(
        r.call(&["ZMPOP", "1", "m", "MAX", "COUNT", "5"]),
        "*2\r\n$1\r\nm\r\n*2\r\n*2\r\n$1\r\nb\r\n,2\r\n*2\r\n$1\r\na\r\n,1\r\n"
    );
    assert_eq!(r.call(&["ZMPOP", "1", "m", "MAX"]), "_\r\n");
    assert_eq!(r.call(&["ZADD", "m", "NX", "INCR", "1", "a"]), ",1\r\n");
    assert_eq!(r.call(&["ZADD", "m", "NX", "INCR", "1", "a"]), "_\r\n");
    assert_eq!(
        r.call(&["ZSCAN", "m", "0"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
}

#[test]
fn big_zset_scan_and_ranges() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut c = redis::cmd("ZADD");
    c.arg("big");
    for i in 0..1000 {
        c.arg(i).arg(format!("m{i}"));
    }
    let n: i64 = c.query(&mut con).unwrap();
    assert_eq!(n, 1000);
    assert_eq!(
        q(&mut con, &["OBJECT", "ENCODING", "big"]),
        bulk("skiplist")
    );
    // A full ZSCAN returns every member at least once, with its score.
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("ZSCAN")
            .arg("big")
            .arg(&cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut con)
            .unwrap();
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone(), pair[1].clone());
        }
        // Remove some elements during the scan: the others must still be returned.
        let _: i64 = redis::cmd("ZREM")
            .arg("big")
            .arg(format!("m{}", 999 - seen.len() / 10))
            .query(&mut con)
            .unwrap();
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    for i in 0..800 {
        assert_eq!(seen.get(&format!("m{i}")), Some(&i.to_string()), "m{i}");
    }
    let r: Vec<String> = redis::cmd("ZRANGE")
        .arg("big")
        .arg(500)
        .arg(502)
        .query(&mut con)
        .unwrap();
    assert_eq!(r, vec!["m500", "m501", "m502"]);
    let r: i64 = redis::cmd("ZREMRANGEBYSCORE")
        .arg("big")
        .arg("-inf")
        .arg("(100")
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 100);
    let r: Option<i64> = redis::cmd("ZRANK")
        .arg("big")
        .arg("m100")
        .query(&mut con)
        .unwrap();
    assert_eq!(r, Some(0));
    let store: i64 = redis::cmd("ZUNIONSTORE")
        .arg("u")
        .arg(2)
        .arg("big")
        .arg("nokey")
        .arg("WEIGHTS")
        .arg(2)
        .arg(1)
        .query(&mut con)
        .unwrap();
    let card: i64 = redis::cmd("ZCARD").arg("big").query(&mut con).unwrap();
    assert_eq!(store, card);
    let s: f64 = redis::cmd("ZSCORE")
        .arg("u")
        .arg("m200")
        .query(&mut con)
        .unwrap();
    assert_eq!(s, 400.0);
}

#[test]
fn randmember_shapes() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let _: i64 = redis::cmd("ZADD")
        .arg("r")
        .arg("1")
        .arg("a")
        .arg("2")
        .arg("b")
        .arg("3")
        .arg("c")
        .query(&mut con)
        .unwrap();
    let v: Vec<String> = redis::cmd("ZRANDMEMBER")
        .arg("r")
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert_eq!(v.len(), 2);
    assert_ne!(v[0], v[1]);
    let v: Vec<String> = redis::cmd("ZRANDMEMBER")
        .arg("r")
        .arg(-10)
        .query(&mut con)
        .unwrap();
    assert_eq!(v.len(), 10);
    let v: Vec<String> = redis::cmd("ZRANDMEMBER")
        .arg("r")
        .arg(10)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, vec!["a", "1", "b", "2", "c", "3"]);
}

/// Random ZADD / ZINCRBY / ZREM / ZPOPMIN / ZPOPMAX / ZREMRANGEBYRANK on a big (skiplist-encoded) sorted set
/// against a sorted-Vec model: enough elements for a multi-level tree, with score ties (member order).
#[test]
fn big_zset_random_ops_match_model() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let mut model: Vec<(f64, String)> = Vec::new();
    let sort = |m: &mut Vec<(f64, String)>| {
        m.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)))
    };
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..60 {
        let mut pipe = redis::pipe();
        for _ in 0..200 {
            let r = next();
            let m = format!("m{}", r % 6000);
            let s = ((r >> 20) % 500) as f64 / 4.0;
            match (r >> 40) % 20 {
                0..=12 => {
                    pipe.cmd("ZADD").arg("z").arg(s).arg(&m).ignore();
                    match model.iter().position(|x| x.1 == m) {
                        Some(p) => model[p].0 = s,
                        None => model.push((s, m)),
                    }
                }
                13 | 14 => {
                    pipe.cmd("ZINCRBY").arg("z").arg(1.5).arg(&m).ignore();
                    match model.iter().position(|x| x.1 == m) {
                        Some(p) => model[p].0 += 1.5,
                        None => model.push((1.5, m)),
                    }
                }
                15..=17 => {
                    pipe.cmd("ZREM").arg("z").arg(&m).ignore();
                    model.retain(|x| x.1 != m);
                }
                18 => {
                    let n = (r >> 8) as usize % 4;
                    let max = r & 1 == 1;
                    pipe.cmd(if max { "ZPOPMAX" } else { "ZPOPMIN" })
                        .arg("z")
                        .arg(n)
                        .ignore();
                    sort(&mut model);
                    let n = n.min(model.len());
                    if max {
                        model.truncate(model.len() - n);
                    } else {
                        model.drain(..n);
                    }
                }
                _ => {
                    sort(&mut model);
                    let lo = (r >> 8) as usize % (model.len() + 1);
                    let hi = lo + (r >> 24) as usize % 5;
                    pipe.cmd("ZREMRANGEBYRANK")
                        .arg("z")
                        .arg(lo)
                        .arg(hi)
                        .ignore();
                    let hi = (hi + 1).min(model.len());
                    if lo < hi {
                        model.drain(lo..hi);
                    }
                }
            }
        }
        let () = pipe.query(&mut con).unwrap();
        sort(&mut model);
        let got: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg("z")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(&mut con)
            .unwrap();
        let want: Vec<(String, f64)> = model.iter().map(|(s, m)| (m.clone(), *s)).collect();
        assert_eq!(got, want, "round {round}");
        for k in (0..model.len()).step_by(97) {
            let (s, m) = &model[k];
            let r: Option<i64> = redis::cmd("ZRANK").arg("z").arg(m).query(&mut con).unwrap();
            assert_eq!(r, Some(k as i64));
            let rr: Option<i64> = redis::cmd("ZREVRANK")
                .arg("z")
                .arg(m)
                .query(&mut con)
                .unwrap();
            assert_eq!(rr, Some((model.len() - 1 - k) as i64));
            let lim: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg("z")
                .arg(*s)
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(3)
                .query(&mut con)
                .unwrap();
            let first = model.iter().position(|x| x.0 >= *s).unwrap();
            let want: Vec<String> = model[first..].iter().take(3).map(|x| x.1.clone()).collect();
            assert_eq!(lim, want);
        }
    }
    assert!(model.len() > 1000, "model too small: {}", model.len());
    assert_eq!(q(&mut con, &["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
}
