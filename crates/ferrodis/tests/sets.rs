//! Integration tests for the set commands: the built binary on a free port, driven with the `redis` crate
//! and raw RESP (RESP3 reply shapes).

mod common;

use common::{query as q, query_err as qerr, Server};

#[test]
fn set_basics_and_encodings() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(q::<i64>(&mut c, &["SADD", "i", "3", "1", "2"]), 3);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SMEMBERS", "i"]),
        vec!["1", "2", "3"]
    );
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "i"]), "intset");
    assert_eq!(q::<i64>(&mut c, &["SADD", "i", "x"]), 1);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "i"]),
        "listpack"
    );
    let many: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", "i"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(q::<i64>(&mut c, &args), 200);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "i"]),
        "hashtable"
    );
    assert_eq!(q::<i64>(&mut c, &["SCARD", "i"]), 204);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["SMISMEMBER", "i", "1", "m5", "zz"]),
        vec![1, 1, 0]
    );
    q::<()>(&mut c, &["SET", "s", "x"]);
    assert!(qerr(&mut c, &["SADD", "s", "a"]).contains("WRONGTYPE"));
    // SPOP everything: the key goes away.
    let popped: Vec<String> = q(&mut c, &["SPOP", "i", "1000"]);
    assert_eq!(popped.len(), 204);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "i"]), 0);
}

#[test]
fn algebra_and_store() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["SADD", "{t}a", "1", "2", "3", "4"]);
    q::<i64>(&mut c, &["SADD", "{t}b", "3", "4", "5"]);
    q::<i64>(&mut c, &["SADD", "other", "4", "9"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SINTER", "{t}a", "{t}b", "other"]),
        vec!["4"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SUNION", "{t}a", "{t}b"]),
        vec!["1", "2", "3", "4", "5"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SDIFF", "{t}a", "{t}b"]),
        vec!["1", "2"]
    );
    assert_eq!(
        q::<i64>(&mut c, &["SINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1"]),
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["SUNIONSTORE", "dst", "{t}a", "other"]),
        5
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SMEMBERS", "dst"]),
        vec!["1", "2", "3", "4", "9"]
    );
    assert_eq!(
        q::<i64>(&mut c, &["SINTERSTORE", "dst", "{t}a", "missing"]),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{t}a", "other", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "other", "1"]), 1);
}

#[test]
fn sscan_guarantee_while_growing() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let members: Vec<String> = (0..2000).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", "big"];
    args.extend(members.iter().map(String::as_str));
    q::<i64>(&mut c, &args);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["SSCAN", "big", &cursor, "COUNT", "50"]);
        seen.extend(items);
        round += 1;
        for k in 0..30 {
            q::<i64>(&mut c, &["SADD", "big", &format!("new{round}-{k}")]);
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    for m in &members {
        assert!(seen.contains(m), "missed {m}");
    }
    let r: Vec<String> = q(&mut c, &["SRANDMEMBER", "big", "100"]);
    assert_eq!(
        r.iter().collect::<std::collections::HashSet<_>>().len(),
        100
    );
}

#[test]
fn resp3_shapes() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q::<i64>(&mut c, &["SADD", "s", "1", "2"]);
    let r = srv.raw_replies(
        true,
        &[
            &["SMEMBERS", "s"],
            &["SPOP", "nokey", "2"],
            &["SRANDMEMBER", "nokey", "2"],
            &["SINTER", "s", "nokey"],
        ],
    );
    assert_eq!(r[0], b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(r[1], b"~0\r\n");
    assert_eq!(r[2], b"*0\r\n");
    assert_eq!(r[3], b"~0\r\n");
}
