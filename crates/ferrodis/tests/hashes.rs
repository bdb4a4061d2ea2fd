//! Integration tests for the hash commands: the built binary on a free port, driven with the `redis` crate
//! and raw RESP (RESP3 reply shapes).

mod common;

use common::{query as q, query_err as qerr, Server};
use std::thread;
use std::time::Duration;

#[test]
fn hash_basics_and_types() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2"]), 2);
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "3", "c", "4"]), 1);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HKEYS", "h"]),
        vec!["a", "b", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HGETALL", "h"]),
        vec!["a", "3", "b", "2", "c", "4"]
    );
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "zz"]), None);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "a", "b", "c", "d"]), 3);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "h"]), 0);
    q::<()>(&mut c, &["SET", "s", "x"]);
    assert!(qerr(&mut c, &["HSET", "s", "a", "1"]).contains("WRONGTYPE"));
    assert!(qerr(&mut c, &["HSET", "h", "a"]).contains("wrong number of arguments for 'hset'"));
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "n", "f", "5"]), 5);
    assert!(qerr(&mut c, &["HINCRBY", "n", "f", "9223372036854775807"]).contains("overflow"));
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "n", "g", "1000.1"]),
        "1000.09999999999999998"
    );
    assert!(qerr(&mut c, &["HINCRBYFLOAT", "n", "g", "inf"]).contains("NaN or Infinity"));
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "n"]),
        "listpack"
    );
}

#[test]
fn big_hash_converts_and_scans_everything() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    for i in 0..1000 {
        q::<i64>(&mut c, &["HSET", "big", &format!("f{i}"), &format!("v{i}")]);
    }
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "big"]),
        "hashtable"
    );
    assert_eq!(q::<i64>(&mut c, &["HLEN", "big"]), 1000);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["HSCAN", "big", &cursor, "COUNT", "20"]);
        calls += 1;
        for pair in items.chunks(2) {
            if !pair[0].starts_with("extra") {
                assert_eq!(pair[1], format!("v{}", &pair[0][1..]));
            }
            seen.insert(pair[0].clone());
        }
        // Grow the hash while scanning: the original fields must still all be returned.
        q::<i64>(&mut c, &["HSET", "big", &format!("extra{calls}"), "x"]);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(calls > 1);
    for i in 0..1000 {
        assert!(seen.contains(&format!("f{i}")), "missed f{i}");
    }
    let (_, items): (String, Vec<String>) =
        q(&mut c, &["HSCAN", "big", "0", "COUNT", "5000", "NOVALUES"]);
    assert!(items
        .iter()
        .all(|f| f.starts_with('f') || f.starts_with("extra")));
    let fields: Vec<String> = q(&mut c, &["HRANDFIELD", "big", "50"]);
    let distinct: std::collections::HashSet<_> = fields.iter().collect();
    assert_eq!(distinct.len(), 50);
    let fields: Vec<String> = q(&mut c, &["HRANDFIELD", "big", "-3000"]);
    assert_eq!(fields.len(), 3000);
}

#[test]
fn resp3_shapes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["HSET", "h", "a", "1"]);
    let r = srv.raw_replies(
        true,
        &[
            &["HGETALL", "h"],
            &["HGETALL", "nokey"],
            &["HRANDFIELD", "h", "1", "WITHVALUES"],
            &["HRANDFIELD", "nokey"],
        ],
    );
    assert_eq!(r[0], b"%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(r[1], b"%0\r\n");
    assert_eq!(r[2], b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(r[3], b"_\r\n");
    let r = srv.raw_replies(false, &[&["HRANDFIELD", "h", "1", "WITHVALUES"]]);
    assert_eq!(r[0], b"*2\r\n$1\r\na\r\n$1\r\n1\r\n");
}

// ---------------------------------------------------------------------------------------------------------
// Hash field expiry (Redis 7.4)

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn hexpire_codes_conditions_and_queries() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HEXPIRE", "h", "100", "FIELDS", "2", "a", "zz"]),
        vec![1, -2]
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "h"]),
        "listpackex"
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HTTL", "h", "FIELDS", "3", "a", "b", "zz"]),
        vec![100, -1, -2]
    );
    let pttl = q::<Vec<i64>>(&mut c, &["HPTTL", "h", "FIELDS", "1", "a"])[0];
    assert!((95_000..=100_000).contains(&pttl), "{pttl}");
    let at = q::<Vec<i64>>(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "1", "a"])[0];
    assert!((at - (now_ms() + 100_000)).abs() < 5_000, "{at}");
    let at_s = q::<Vec<i64>>(&mut c, &["HEXPIRETIME", "h", "FIELDS", "2", "a", "b"]);
    assert_eq!(at_s, vec![(at + 999) / 1000, -1]);
    // Conditions (a field without TTL counts as an infinite TTL).
    let codes = |c: &mut redis::Connection, args: &[&str]| q::<Vec<i64>>(c, args);
    assert_eq!(
        codes(
            &mut c,
            &["HEXPIRE", "h", "50", "NX", "FIELDS", "2", "a", "b"]
        ),
        vec![0, 1]
    );
    assert_eq!(
        codes(
            &mut c,
            &["HEXPIRE", "h", "500", "XX", "FIELDS", "2", "a", "c"]
        ),
        vec![1, 0]
    );
    assert_eq!(
        codes(
            &mut c,
            &["HEXPIRE", "h", "400", "GT", "FIELDS", "2", "a", "c"]
        ),
        vec![0, 0]
    );
    assert_eq!(
        codes(&mut c, &["HEXPIRE", "h", "600", "gt", "FIELDS", "1", "a"]),
        vec![1]
    );
    assert_eq!(
        codes(
            &mut c,
            &["HEXPIRE", "h", "700", "LT", "FIELDS", "2", "a", "c"]
        ),
        vec![0, 1]
    );
    assert_eq!(
        codes(&mut c, &["HEXPIRE", "h", "300", "lt", "FIELDS", "1", "a"]),
        vec![1]
    );
    assert_eq!(
        codes(&mut c, &["HTTL", "h", "FIELDS", "3", "a", "b", "c"]),
        vec![300, 50, 700]
    );
    // HEXPIREAT / HPEXPIREAT with absolute times.
    let future = now_ms() / 1000 + 1000;
    assert_eq!(
        codes(
            &mut c,
            &["HEXPIREAT", "h", &future.to_string(), "FIELDS", "1", "b"]
        ),
        vec![1]
    );
    assert_eq!(
        codes(&mut c, &["HEXPIRETIME", "h", "FIELDS", "1", "b"]),
        vec![future]
    );
    assert_eq!(
        codes(
            &mut c,
            &[
                "HPEXPIREAT",
                "h",
                &(future * 1000 + 5).to_string(),
                "FIELDS",
                "1",
                "b"
            ]
        ),
        vec![1]
    );
    assert_eq!(
        codes(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "1", "b"]),
        vec![future * 1000 + 5]
    );
    // HPERSIST.
    assert_eq!(
        codes(&mut c, &["HPERSIST", "h", "FIELDS", "3", "a", "nope", "a"]),
        vec![1, -2, -1]
    );
    assert_eq!(codes(&mut c, &["HTTL", "h", "FIELDS", "1", "a"]), vec![-1]);
    // A time in the past (or 0) deletes the field: code 2; the last field going deletes the key.
    assert_eq!(
        codes(&mut c, &["HEXPIRE", "h", "0", "FIELDS", "1", "a"]),
        vec![2]
    );
    assert_eq!(
        codes(&mut c, &["HPEXPIREAT", "h", "1", "FIELDS", "2", "b", "b"]),
        vec![2, -2]
    );
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 1);
    assert_eq!(
        codes(&mut c, &["HEXPIREAT", "h", "1", "XX", "FIELDS", "1", "c"]),
        vec![2]
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "h"]), 0);
    // Missing keys: -2 for every field.
    assert_eq!(
        codes(&mut c, &["HEXPIRE", "nokey", "10", "FIELDS", "2", "a", "b"]),
        vec![-2, -2]
    );
    assert_eq!(
        codes(&mut c, &["HTTL", "nokey", "FIELDS", "1", "a"]),
        vec![-2]
    );
    assert_eq!(
        codes(&mut c, &["HPEXPIRETIME", "nokey", "FIELDS", "1", "a"]),
        vec![-2]
    );
    assert_eq!(
        codes(&mut c, &["HPERSIST", "nokey", "FIELDS", "2", "a", "b"]),
        vec![-2, -2]
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nokey"]), 0);
    // A plain listpack hash: TTL queries and HPERSIST leave the encoding alone.
    q::<i64>(&mut c, &["HSET", "p", "f", "v"]);
    assert_eq!(
        codes(&mut c, &["HTTL", "p", "FIELDS", "2", "f", "g"]),
        vec![-1, -2]
    );
    assert_eq!(
        codes(&mut c, &["HPERSIST", "p", "FIELDS", "1", "f"]),
        vec![-1]
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "p"]),
        "listpack"
    );
    // Even an HEXPIRE that sets nothing converts it (as Redis 7.4).
    assert_eq!(
        codes(&mut c, &["HEXPIRE", "p", "10", "XX", "FIELDS", "1", "f"]),
        vec![0]
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "p"]),
        "listpackex"
    );
}

#[test]
fn hexpire_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["HSET", "h", "a", "1"]);
    q::<()>(&mut c, &["SET", "s", "x"]);
    let e = |c: &mut redis::Connection, args: &[&str]| qerr(c, args);
    // WRONGTYPE comes before argument errors.
    assert!(e(&mut c, &["HEXPIRE", "s", "x", "FIELDS", "1", "a"]).contains("WRONGTYPE"));
    assert!(e(&mut c, &["HTTL", "s", "FIELDX", "1", "a"]).contains("WRONGTYPE"));
    assert!(e(&mut c, &["HPERSIST", "s", "FIELDS", "1", "a"]).contains("WRONGTYPE"));
    assert!(e(&mut c, &["HEXPIRE", "h", "10", "FIELDS", "1"])
        .contains("wrong number of arguments for 'hexpire'"));
    assert!(
        e(&mut c, &["HTTL", "h", "FIELDS", "1"]).contains("wrong number of arguments for 'httl'")
    );
    assert!(e(&mut c, &["HEXPIRE", "h", "x", "FIELDS", "1", "a"])
        .contains("value is not an integer or out of range"));
    assert!(e(&mut c, &["HEXPIRE", "h", "-1", "FIELDS", "1", "a"])
        .contains("invalid expire time, must be >= 0"));
    assert!(
        e(&mut c, &["HEXPIRE", "h", "70368744178", "FIELDS", "1", "a"])
            .contains("invalid expire time in 'hexpire' command")
    );
    assert!(e(
        &mut c,
        &["HPEXPIREAT", "h", "70368744177664", "FIELDS", "1", "a"]
    )
    .contains("invalid expire time in 'hpexpireat' command"));
    assert!(e(
        &mut c,
        &["HPEXPIRE", "h", "70368744177663", "FIELDS", "1", "a"]
    )
    .contains("invalid expire time in 'hpexpire' command"));
    assert_eq!(
        q::<Vec<i64>>(
            &mut c,
            &["HPEXPIREAT", "h", "70368744177663", "FIELDS", "1", "a"]
        ),
        vec![1]
    );
    assert!(e(&mut c, &["HEXPIRE", "h", "10", "FIELD", "1", "a"])
        .contains("Mandatory argument FIELDS is missing or not at the right position"));
    assert!(e(
        &mut c,
        &["HEXPIRE", "h", "10", "NX", "XX", "FIELDS", "1", "a"]
    )
    .contains("Mandatory argument FIELDS is missing or not at the right position"));
    assert!(e(&mut c, &["HEXPIRE", "h", "10", "FIELDS", "0", "a"])
        .contains("Parameter `numFields` should be greater than 0"));
    assert!(e(&mut c, &["HEXPIRE", "h", "10", "FIELDS", "abc", "a"])
        .contains("Parameter `numFields` should be greater than 0"));
    assert!(e(&mut c, &["HEXPIRE", "h", "10", "FIELDS", "2", "a"])
        .contains("The `numfields` parameter must match the number of arguments"));
    assert!(e(&mut c, &["HEXPIRE", "h", "10", "FIELDS", "1", "a", "b"])
        .contains("The `numfields` parameter must match the number of arguments"));
    assert!(e(&mut c, &["HTTL", "h", "FIELDS", "0", "a"])
        .contains("Number of fields must be a positive integer"));
    assert!(e(&mut c, &["HPERSIST", "h", "FIELDS", "-1", "a"])
        .contains("Number of fields must be a positive integer"));
    assert!(e(&mut c, &["HPTTL", "h", "a", "1", "a"])
        .contains("Mandatory argument FIELDS is missing or not at the right position"));
    assert!(e(&mut c, &["HEXPIRETIME", "h", "FIELDS", "3", "a"])
        .contains("The `numfields` parameter must match the number of arguments"));
    // Exact bytes of one error and of a reply array.
    let r = srv.raw_replies(
        false,
        &[
            &["HEXPIRE", "h", "10", "FIELDS", "0", "a"],
            &["HTTL", "h", "FIELDS", "2", "a", "zz"],
        ],
    );
    assert_eq!(
        r[0],
        b"-ERR Parameter `numFields` should be greater than 0\r\n"
    );
    assert_eq!(r[1][..4], b"*2\r\n"[..]);
    assert!(r[1].ends_with(b":-2\r\n"));
}

#[test]
fn expired_fields_are_invisible_and_reclaimed() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HPEXPIRE", "h", "100", "FIELDS", "2", "a", "b"]),
        vec![1, 1]
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["HGET", "h", "a"]).as_deref(),
        Some("1")
    );
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 3);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "a"]), None);
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "b"]), 0);
    assert_eq!(q::<Vec<String>>(&mut c, &["HGETALL", "h"]), vec!["c", "3"]);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HTTL", "h", "FIELDS", "2", "a", "c"]),
        vec![-2, -1]
    );
    // The last field expiring deletes the key on the next access.
    q::<Vec<i64>>(&mut c, &["HPEXPIRE", "h", "100", "FIELDS", "1", "c"]);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HKEYS", "h"]),
        Vec::<String>::new()
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "h"]), 0);
    // A write to a hash whose fields all expired starts a fresh hash.
    q::<i64>(&mut c, &["HSET", "w", "x", "1"]);
    q::<Vec<i64>>(&mut c, &["HPEXPIRE", "w", "100", "FIELDS", "1", "x"]);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "w", "x", "2"]), 1);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "w"]),
        "listpack"
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["HGET", "w", "x"]).as_deref(),
        Some("2")
    );
    // HDEL / HINCRBY on an expired field see it as missing.
    q::<Vec<i64>>(&mut c, &["HPEXPIRE", "w", "100", "FIELDS", "1", "x"]);
    q::<i64>(&mut c, &["HSET", "w", "y", "5"]);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(q::<i64>(&mut c, &["HDEL", "w", "x"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "w", "x", "3"]), 3);
}

#[test]
fn writes_and_ttls() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(
        &mut c,
        &["HSET", "h", "a", "1", "b", "2", "n", "10", "fl", "1.5"],
    );
    q::<Vec<i64>>(
        &mut c,
        &["HEXPIRE", "h", "100", "FIELDS", "4", "a", "b", "n", "fl"],
    );
    // HSET / HMSET overwrite the value and drop the TTL.
    q::<i64>(&mut c, &["HSET", "h", "a", "x"]);
    q::<()>(&mut c, &["HMSET", "h", "b", "y"]);
    // HINCRBY / HINCRBYFLOAT change the value in place and keep it (Redis 7.4).
    q::<i64>(&mut c, &["HINCRBY", "h", "n", "1"]);
    q::<String>(&mut c, &["HINCRBYFLOAT", "h", "fl", "1"]);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HTTL", "h", "FIELDS", "4", "a", "b", "n", "fl"]),
        vec![-1, -1, 100, 100]
    );
    // HDEL then HSET: a new field without TTL.
    q::<i64>(&mut c, &["HDEL", "h", "n"]);
    q::<i64>(&mut c, &["HSET", "h", "n", "1"]);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HTTL", "h", "FIELDS", "1", "n"]),
        vec![-1]
    );
    // Listpackex order: fields with TTL first (soonest first), persistent fields after.
    q::<i64>(&mut c, &["HSET", "o", "p", "1", "q", "2", "r", "3"]);
    q::<Vec<i64>>(&mut c, &["HEXPIRE", "o", "200", "FIELDS", "1", "r"]);
    q::<Vec<i64>>(&mut c, &["HEXPIRE", "o", "100", "FIELDS", "1", "q"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HKEYS", "o"]),
        vec!["q", "r", "p"]
    );
    // Growing past the listpack limits keeps the TTLs in the hashtable encoding.
    q::<i64>(&mut c, &["HSET", "o", "long", &"x".repeat(100)]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "o"]),
        "hashtable"
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HTTL", "o", "FIELDS", "3", "p", "q", "r"]),
        vec![-1, 100, 200]
    );
    // COPY keeps field TTLs.
    q::<i64>(&mut c, &["COPY", "o", "o2"]);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HTTL", "o2", "FIELDS", "1", "r"]),
        vec![200]
    );
}

#[test]
fn hashtable_field_expiry_with_scan_and_random() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let mut args: Vec<String> = vec!["HSET".into(), "big".into()];
    for i in 0..300 {
        args.push(format!("f{i}"));
        args.push(format!("v{i}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(q::<i64>(&mut c, &refs), 300);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "big"]),
        "hashtable"
    );
    let mut ex: Vec<String> = vec![
        "HPEXPIRE".into(),
        "big".into(),
        "100".into(),
        "FIELDS".into(),
        "150".into(),
    ];
    for i in 0..150 {
        ex.push(format!("f{i}"));
    }
    let refs: Vec<&str> = ex.iter().map(String::as_str).collect();
    let codes: Vec<i64> = q(&mut c, &refs);
    assert!(codes.iter().all(|&x| x == 1));
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "big"]),
        "hashtable"
    );
    thread::sleep(Duration::from_millis(150));
    assert_eq!(q::<i64>(&mut c, &["HLEN", "big"]), 150);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["HSCAN", "big", &cursor, "NOVALUES"]);
        seen.extend(items);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 150);
    assert!(seen.iter().all(|f| f[1..].parse::<usize>().unwrap() >= 150));
    let r: Vec<String> = q(&mut c, &["HRANDFIELD", "big", "-500"]);
    assert!(r.iter().all(|f| f[1..].parse::<usize>().unwrap() >= 150));
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["HPTTL", "big", "FIELDS", "2", "f0", "f299"]),
        vec![-2, -1]
    );
}

#[test]
fn field_expiry_command_info() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let v: redis::Value = q(&mut c, &["COMMAND", "INFO", "hexpire", "httl", "hpersist"]);
    let s = format!("{v:?}");
    assert!(
        s.contains("hexpire") && s.contains("httl") && s.contains("hpersist"),
        "{s}"
    );
    let r = srv.raw_replies(false, &[&["COMMAND", "INFO", "hexpire"]]);
    let text = String::from_utf8_lossy(&r[0]);
    assert!(text.contains(":-6\r\n"), "{text}");
    assert!(text.contains("denyoom"), "{text}");
    let r = srv.raw_replies(false, &[&["COMMAND", "INFO", "hpttl"]]);
    let text = String::from_utf8_lossy(&r[0]);
    assert!(
        text.contains(":-5\r\n") && text.contains("readonly") && text.contains("fast"),
        "{text}"
    );
}
