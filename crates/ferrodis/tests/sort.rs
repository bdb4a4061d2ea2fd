//! Integration tests for SORT / SORT_RO and for sorted-set operations over plain sets: the built binary on a
//! free port, driven with the `redis` crate and raw RESP (RESP3 reply shapes).

mod common;

use common::{query as q, query_err as qerr, Server};
use std::thread;

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sort_lists_numeric_alpha_limit() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["RPUSH", "l", "3", "1", "2", "10", "-5", "2.5"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l"]),
        sv(&["-5", "1", "2", "2.5", "3", "10"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "DESC", "LIMIT", "1", "2"]),
        sv(&["3", "2.5"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "ALPHA"]),
        sv(&["-5", "1", "10", "2", "2.5", "3"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT_RO", "l", "LIMIT", "-3", "2"]),
        sv(&["-5", "1"])
    );
    assert!(q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "6", "1"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "0", "0"]).is_empty());
    // Native order with BY nosort, reversed by DESC, ranged by LIMIT.
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"]
        ),
        sv(&["-5", "10"])
    );
    q::<i64>(&mut c, &["RPUSH", "bad", "1", "x"]);
    assert!(qerr(&mut c, &["SORT", "bad"])
        .contains("One or more scores can't be converted into double"));
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "bad", "ALPHA"]),
        sv(&["1", "x"])
    );
    assert!(qerr(&mut c, &["SORT", "l", "LIMIT", "x", "1"]).contains("not an integer"));
    assert!(qerr(&mut c, &["SORT", "l", "FOO"]).contains("syntax error"));
    assert!(qerr(&mut c, &["SORT_RO", "l", "STORE", "d"]).contains("syntax error"));
    q::<()>(&mut c, &["SET", "str", "1"]);
    assert!(qerr(&mut c, &["SORT", "str"]).contains("WRONGTYPE"));
    assert!(q::<Vec<String>>(&mut c, &["SORT", "nokey"]).is_empty());
}

#[test]
fn sort_by_and_get_across_shards() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    // 300 users: ids in a set, weights and names spread over many shards.
    for i in 0..300 {
        let id = i.to_string();
        q::<i64>(&mut c, &["SADD", "ids", &id]);
        q::<()>(
            &mut c,
            &[
                "SET",
                &format!("weight:{id}"),
                &((i * 7919) % 300).to_string(),
            ],
        );
        q::<i64>(
            &mut c,
            &[
                "HSET",
                &format!("user:{id}"),
                "name",
                &format!("n{id}"),
                "age",
                &(100 - i % 50).to_string(),
            ],
        );
    }
    let by_weight: Vec<String> = q(&mut c, &["SORT", "ids", "BY", "weight:*", "GET", "#"]);
    let mut expected: Vec<(i64, i64)> = (0..300).map(|i| ((i * 7919) % 300, i)).collect();
    expected.sort();
    assert_eq!(
        by_weight,
        expected
            .iter()
            .map(|(_, i)| i.to_string())
            .collect::<Vec<_>>()
    );
    // BY a hash field, GET a hash field and a missing key.
    let got: Vec<Option<String>> = q(
        &mut c,
        &[
            "SORT",
            "ids",
            "BY",
            "user:*->age",
            "DESC",
            "LIMIT",
            "0",
            "3",
            "GET",
            "user:*->name",
            "GET",
            "nope:*",
        ],
    );
    // age 100 for i in {0, 50, 100, ...}: ties ordered by element bytes, reversed with DESC.
    assert_eq!(
        got,
        vec![
            Some("n50".into()),
            None,
            Some("n250".into()),
            None,
            Some("n200".into()),
            None
        ]
    );
    // ALPHA BY: missing weights first.
    q::<i64>(&mut c, &["RPUSH", "names", "a", "b", "c"]);
    q::<()>(&mut c, &["MSET", "nm_a", "zed", "nm_c", "amy"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "names", "BY", "nm_*", "ALPHA"]),
        sv(&["b", "c", "a"])
    );
    // A GET pattern without a star yields nil; '#' yields the element.
    let v: Vec<Option<String>> = q(
        &mut c,
        &["SORT", "names", "BY", "x", "GET", "fixed", "GET", "#"],
    );
    assert_eq!(
        v,
        vec![
            None,
            Some("a".into()),
            None,
            Some("b".into()),
            None,
            Some("c".into())
        ]
    );
}

#[test]
fn sort_store() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["RPUSH", "l", "3", "1", "2"]);
    q::<()>(&mut c, &["SET", "dst", "x", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["SORT", "l", "STORE", "dst"]), 3);
    assert_eq!(q::<String>(&mut c, &["TYPE", "dst"]), "list");
    assert_eq!(q::<i64>(&mut c, &["TTL", "dst"]), -1);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]),
        sv(&["1", "2", "3"])
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "dst"]),
        "listpack"
    );
    // GET with a missing key stores an empty string.
    q::<()>(&mut c, &["SET", "o_1", "one"]);
    assert_eq!(
        q::<i64>(&mut c, &["SORT", "l", "GET", "o_*", "STORE", "dst"]),
        3
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]),
        sv(&["one", "", ""])
    );
    // An empty result deletes the destination.
    assert_eq!(q::<i64>(&mut c, &["SORT", "nokey", "STORE", "dst"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
    // Sorting a set with BY nosort and STORE sorts ALPHA.
    q::<i64>(&mut c, &["SADD", "s", "b", "c", "a"]);
    assert_eq!(
        q::<i64>(&mut c, &["SORT", "s", "BY", "nosort", "STORE", "dst"]),
        3
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]),
        sv(&["a", "b", "c"])
    );
    // A destination on another shard, a big list becomes a quicklist.
    let many: Vec<String> = (0..200).map(|i| format!("{i:0>60}")).collect();
    let mut args = vec!["RPUSH", "big"];
    args.extend(many.iter().map(String::as_str));
    q::<i64>(&mut c, &args);
    assert_eq!(
        q::<i64>(&mut c, &["SORT", "big", "DESC", "STORE", "other{x}"]),
        200
    );
    assert_eq!(q::<String>(&mut c, &["LINDEX", "other{x}", "0"]), many[199]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "other{x}"]),
        "quicklist"
    );
}

#[test]
fn sort_sorted_sets_nosort_in_score_order() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    // Big enough to be a skiplist.
    for i in 0..500 {
        q::<i64>(
            &mut c,
            &["ZADD", "z", &(1000 - i).to_string(), &format!("m{i}")],
        );
    }
    let all: Vec<String> = q(&mut c, &["ZRANGE", "z", "0", "-1"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "z", "BY", "nosort"]),
        all
    );
    let rev: Vec<String> = q(&mut c, &["ZRANGE", "z", "10", "19", "REV"]);
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "10", "10"]
        ),
        rev
    );
    let mut alpha = all.clone();
    alpha.sort();
    assert_eq!(q::<Vec<String>>(&mut c, &["SORT", "z", "ALPHA"]), alpha);
}

#[test]
fn zset_ops_accept_plain_sets() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["SADD", "s1", "a", "b", "c"]);
    q::<i64>(&mut c, &["SADD", "s2", "b", "c", "d"]);
    q::<i64>(&mut c, &["ZADD", "z", "10", "a", "20", "b"]);
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["ZUNION", "2", "s1", "z", "WEIGHTS", "3", "1", "WITHSCORES"]
        ),
        sv(&["c", "3", "a", "13", "b", "23"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZINTER", "2", "s1", "s2", "WITHSCORES"]),
        sv(&["b", "2", "c", "2"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZDIFF", "2", "s1", "z"]),
        sv(&["c"])
    );
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "s1", "s2"]), 2);
    assert_eq!(
        q::<i64>(
            &mut c,
            &["ZINTERSTORE", "d{s}", "2", "s1", "z", "AGGREGATE", "MAX"]
        ),
        2
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "d{s}", "0", "-1", "WITHSCORES"]),
        sv(&["a", "10", "b", "20"])
    );
    q::<()>(&mut c, &["SET", "str", "x"]);
    assert!(qerr(&mut c, &["ZUNION", "2", "s1", "str"]).contains("WRONGTYPE"));
}

#[test]
fn sort_command_info_and_resp3() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let info: redis::Value = q(&mut c, &["COMMAND", "INFO", "sort", "sort_ro"]);
    let text = format!("{info:?}");
    for f in [
        "write",
        "denyoom",
        "movablekeys",
        "readonly",
        "@dangerous",
        "@sortedset",
    ] {
        assert!(text.contains(f), "{f} missing in {text}");
    }
    let out = srv.raw_replies(
        true,
        &[
            &["RPUSH", "l", "b", "a"],
            &["SORT", "l", "ALPHA", "GET", "#", "GET", "k_*"],
            &["SORT", "l", "ALPHA", "STORE", "d"],
        ],
    );
    assert_eq!(out[0], b":2\r\n");
    assert_eq!(out[1], b"*4\r\n$1\r\na\r\n_\r\n$1\r\nb\r\n_\r\n");
    assert_eq!(out[2], b":2\r\n");
    let out = srv.raw_replies(false, &[&["SORT", "l", "ALPHA", "GET", "k_*"]]);
    assert_eq!(out[0], b"*2\r\n$-1\r\n$-1\r\n");
}

#[test]
fn sort_with_patterns_concurrent_with_writers() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    for i in 0..50 {
        q::<i64>(&mut c, &["RPUSH", "l", &i.to_string()]);
        q::<()>(&mut c, &["SET", &format!("w_{i}"), &i.to_string()]);
    }
    let port = srv.port;
    let writers: Vec<_> = (0..3)
        .map(|t| {
            thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for i in 0..300 {
                    let k = format!("w_{}", (i * 7 + t) % 50);
                    redis::cmd("INCRBY")
                        .arg(&k)
                        .arg(100)
                        .query::<i64>(&mut c)
                        .unwrap();
                    redis::cmd("MSET")
                        .arg(format!("a{i}"))
                        .arg(1)
                        .arg(format!("b{t}"))
                        .arg(2)
                        .query::<()>(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    for _ in 0..50 {
        let v: Vec<String> = q(&mut c, &["SORT", "l", "BY", "w_*", "GET", "w_*"]);
        assert_eq!(v.len(), 50);
        let nums: Vec<i64> = v.iter().map(|s| s.parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[0] <= w[1]), "{nums:?}");
    }
    for w in writers {
        w.join().unwrap();
    }
}
