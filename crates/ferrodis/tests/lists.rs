//! Integration tests for the list commands: the built `ferrodis` binary is started on a free port and driven
//! over TCP with the `redis` crate, plus a raw socket for exact RESP bytes (expected replies recorded from
//! redis-server). `LISTS_TEST_SERVER=redis-server` runs the same tests against the reference server (the
//! OBJECT ENCODING test expects Redis 7.2's listpack/quicklist rules and is skipped there).

mod common;

use common::Server;
use redis::Value;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

fn q(con: &mut redis::Connection, args: &[&[u8]]) -> Value {
    let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn qs(con: &mut redis::Connection, line: &str) -> Value {
    let parts: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    q(con, &parts)
}

fn int(con: &mut redis::Connection, line: &str) -> i64 {
    match qs(con, line) {
        Value::Int(i) => i,
        v => panic!("{line}: {v:?}"),
    }
}

fn bulks(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|x| match x {
                Value::BulkString(b) => b,
                x => panic!("not a bulk: {x:?}"),
            })
            .collect(),
        v => panic!("not an array: {v:?}"),
    }
}

fn lrange_all(con: &mut redis::Connection, key: &str) -> Vec<Vec<u8>> {
    bulks(qs(con, &format!("LRANGE {key} 0 -1")))
}

#[test]
fn exact_replies() {
    let s = Server::start_overridable("LISTS_TEST_SERVER", &[]);
    assert_eq!(s.raw_once(&["LPOP", "nokey", "1"]), "*-1\r\n");
    assert_eq!(s.raw_once(&["LPOP", "nokey"]), "$-1\r\n");
    assert_eq!(s.raw_once(&["LMPOP", "1", "nokey", "LEFT"]), "*-1\r\n");
    assert_eq!(s.raw_once(&["RPUSH", "l", "a", "12"]), ":2\r\n");
    assert_eq!(s.raw_once(&["LPOP", "l", "0"]), "*0\r\n");
    assert_eq!(
        s.raw_once(&["LRANGE", "l", "0", "-1"]),
        "*2\r\n$1\r\na\r\n$2\r\n12\r\n"
    );
    assert_eq!(
        s.raw_once(&["LMPOP", "2", "x", "l", "RIGHT", "COUNT", "5"]),
        "*2\r\n$1\r\nl\r\n*2\r\n$2\r\n12\r\n$1\r\na\r\n"
    );
    assert_eq!(s.raw_once(&["EXISTS", "l"]), ":0\r\n");
    assert_eq!(
        s.raw_once(&["LPOS", "l", "a", "RANK", "0"]),
        "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n"
    );
    assert_eq!(s.raw_once(&["LSET", "l", "0", "x"]), "-ERR no such key\r\n");
    assert_eq!(s.raw_once(&["RPUSH", "l", "a"]), ":1\r\n");
    assert_eq!(
        s.raw_once(&["LSET", "l", "1", "x"]),
        "-ERR index out of range\r\n"
    );
    assert_eq!(
        s.raw_once(&["LMPOP", "0", "l", "LEFT"]),
        "-ERR numkeys should be greater than 0\r\n"
    );
    assert_eq!(
        s.raw_once(&["LMPOP", "1", "l", "LEFT", "COUNT", "0"]),
        "-ERR count should be greater than 0\r\n"
    );
    assert_eq!(
        s.raw_once(&["LMPOP", "3", "l", "LEFT"]),
        "-ERR syntax error\r\n"
    );
    // RESP3 nulls.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let _ = c.read(&mut buf);
    thread::sleep(Duration::from_millis(50));
    let _ = c.read(&mut buf);
    c.write_all(b"*3\r\n$4\r\nLPOP\r\n$2\r\nnk\r\n$1\r\n1\r\n*2\r\n$4\r\nLPOP\r\n$2\r\nnk\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    let n = c.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"_\r\n_\r\n");
}

#[test]
fn encodings_follow_redis_7_2() {
    let s = Server::start_overridable("LISTS_TEST_SERVER", &[]);
    if s.reference {
        eprintln!("skipped against the reference server (7.0 reports quicklist always)");
        return;
    }
    let mut con = s.client();
    let enc = |con: &mut redis::Connection, k: &str| match qs(con, &format!("OBJECT ENCODING {k}"))
    {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::SimpleString(s) => s,
        v => panic!("{v:?}"),
    };
    for i in 0..10 {
        qs(&mut con, &format!("RPUSH l e{i}"));
    }
    assert_eq!(enc(&mut con, "l"), "listpack");
    let big = "x".repeat(9000);
    q(&mut con, &[b"RPUSH", b"l", big.as_bytes()]);
    assert_eq!(enc(&mut con, "l"), "quicklist");
    qs(&mut con, "RPOP l");
    assert_eq!(enc(&mut con, "l"), "listpack");
    assert_eq!(int(&mut con, "LLEN l"), 10);
    // Growing past 8 KB with small elements converts too; trimming back converts back.
    let elem = "y".repeat(100);
    for _ in 0..100 {
        q(&mut con, &[b"LPUSH", b"l", elem.as_bytes()]);
    }
    assert_eq!(enc(&mut con, "l"), "quicklist");
    qs(&mut con, "LTRIM l 0 4");
    assert_eq!(enc(&mut con, "l"), "listpack");
    assert_eq!(lrange_all(&mut con, "l").len(), 5);
}

/// Random operations on a long list (many chunks), checked against a client-side model.
#[test]
fn random_ops_against_model() {
    let s = Server::start_overridable("LISTS_TEST_SERVER", &[]);
    let mut con = s.client();
    let mut m: VecDeque<Vec<u8>> = VecDeque::new();
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Bulk load through a pipeline.
    let mut p = redis::pipe();
    for i in 0..20_000u32 {
        let v = match i % 3 {
            0 => i.to_string(),
            1 => format!("v{i}"),
            _ => "z".repeat((i % 300) as usize),
        };
        if i % 2 == 0 {
            p.cmd("RPUSH").arg("L").arg(&v).ignore();
            m.push_back(v.into_bytes());
        } else {
            p.cmd("LPUSH").arg("L").arg(&v).ignore();
            m.push_front(v.into_bytes());
        }
    }
    p.query::<()>(&mut con).unwrap();
    for step in 0..1500 {
        let len = m.len() as u64;
        let val = match rnd() % 4 {
            0 => (rnd() % 50).to_string(),
            1 => format!("w{}", rnd() % 50),
            2 => "q".repeat((rnd() % 5000) as usize),
            _ => (rnd() as i64).to_string(),
        };
        match rnd() % 10 {
            0 => {
                let i = (rnd() % len.max(1)) as usize;
                let got = q(&mut con, &[b"LINDEX", b"L", i.to_string().as_bytes()]);
                assert_eq!(got, Value::BulkString(m[i].clone()), "step {step}");
            }
            1 => {
                let i = (rnd() % len.max(1)) as usize;
                q(
                    &mut con,
                    &[b"LSET", b"L", i.to_string().as_bytes(), val.as_bytes()],
                );
                m[i] = val.into_bytes();
            }
            2 => {
                let i = (rnd() % len.max(1)) as usize;
                let pivot = m[i].clone();
                let r = q(
                    &mut con,
                    &[b"LINSERT", b"L", b"AFTER", &pivot, val.as_bytes()],
                );
                let at = m.iter().position(|x| *x == pivot).unwrap();
                m.insert(at + 1, val.into_bytes());
                assert_eq!(r, Value::Int(m.len() as i64));
            }
            3 => {
                let target = format!("{}", rnd() % 50).into_bytes();
                let n = (rnd() % 5) as i64 - 2;
                let r = q(
                    &mut con,
                    &[b"LREM", b"L", n.to_string().as_bytes(), &target],
                );
                let limit = if n == 0 {
                    usize::MAX
                } else {
                    n.unsigned_abs() as usize
                };
                let mut removed = 0;
                let mut idx: Vec<usize> = (0..m.len()).collect();
                if n < 0 {
                    idx.reverse();
                }
                let mut gone = Vec::new();
                for i in idx {
                    if removed < limit && m[i] == target {
                        gone.push(i);
                        removed += 1;
                    }
                }
                gone.sort_unstable();
                for i in gone.into_iter().rev() {
                    m.remove(i);
                }
                assert_eq!(r, Value::Int(removed as i64), "step {step}");
            }
            4 => {
                let a = (rnd() % len.max(1)) as i64;
                let n = (rnd() % 200) as i64;
                let got = bulks(q(
                    &mut con,
                    &[
                        b"LRANGE",
                        b"L",
                        a.to_string().as_bytes(),
                        (a + n).to_string().as_bytes(),
                    ],
                ));
                let want: Vec<Vec<u8>> = m
                    .iter()
                    .skip(a as usize)
                    .take(n as usize + 1)
                    .cloned()
                    .collect();
                assert_eq!(got, want, "step {step}");
            }
            5 => {
                let n = rnd() % 4 + 1;
                let got = bulks(q(&mut con, &[b"LPOP", b"L", n.to_string().as_bytes()]));
                let want: Vec<Vec<u8>> = (0..n).filter_map(|_| m.pop_front()).collect();
                assert_eq!(got, want);
            }
            6 => {
                let got = q(&mut con, &[b"RPOP", b"L"]);
                assert_eq!(got, Value::BulkString(m.pop_back().unwrap()));
            }
            7 => {
                q(&mut con, &[b"LPUSH", b"L", val.as_bytes()]);
                m.push_front(val.into_bytes());
            }
            8 => {
                let target = format!("{}", rnd() % 50).into_bytes();
                let got = q(&mut con, &[b"LPOS", b"L", &target, b"RANK", b"-1"]);
                let want = m.iter().rposition(|x| *x == target);
                assert_eq!(got, want.map_or(Value::Nil, |p| Value::Int(p as i64)));
            }
            _ => {
                q(&mut con, &[b"RPUSH", b"L", val.as_bytes()]);
                m.push_back(val.into_bytes());
            }
        }
    }
    assert_eq!(int(&mut con, "LLEN L"), m.len() as i64);
    let all = lrange_all(&mut con, "L");
    assert_eq!(all, m.iter().cloned().collect::<Vec<_>>());
    let keep = m.len() / 3;
    qs(&mut con, &format!("LTRIM L {} {}", keep, 2 * keep));
    let all = lrange_all(&mut con, "L");
    assert_eq!(all, m.range(keep..=2 * keep).cloned().collect::<Vec<_>>());
}

/// LMOVE/RPOPLPUSH/LMPOP between lists on different shards from many clients at once: no element is lost
/// or duplicated and nothing deadlocks.
#[test]
fn concurrent_moves_keep_every_element() {
    let s = Server::start_overridable("LISTS_TEST_SERVER", &[]);
    let mut con = s.client();
    let keys = ["la", "lb", "lc", "ld"];
    let total = 400;
    for i in 0..total {
        q(
            &mut con,
            &[b"RPUSH", keys[i % 4].as_bytes(), i.to_string().as_bytes()],
        );
    }
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let mut c = s.client();
            thread::spawn(move || {
                for i in 0..300usize {
                    let a = keys[(t + i) % 4];
                    let b = keys[(t * 3 + i * 7 + 1) % 4];
                    match i % 3 {
                        0 => {
                            let _: Value = redis::cmd("LMOVE")
                                .arg(a)
                                .arg(b)
                                .arg(if t % 2 == 0 { "LEFT" } else { "RIGHT" })
                                .arg("RIGHT")
                                .query(&mut c)
                                .unwrap();
                        }
                        1 => {
                            let _: Value =
                                redis::cmd("RPOPLPUSH").arg(a).arg(b).query(&mut c).unwrap();
                        }
                        _ => {
                            let v: Value = redis::cmd("LMPOP")
                                .arg(2)
                                .arg(a)
                                .arg(b)
                                .arg("LEFT")
                                .arg("COUNT")
                                .arg(2)
                                .query(&mut c)
                                .unwrap();
                            // Put what was popped back onto a third list.
                            if let Value::Array(kv) = v {
                                if let Value::Array(items) = &kv[1] {
                                    let mut cmd = redis::cmd("RPUSH");
                                    cmd.arg(keys[(t + 2) % 4]);
                                    for it in items {
                                        if let Value::BulkString(b) = it {
                                            cmd.arg(b.as_slice());
                                        }
                                    }
                                    let _: Value = cmd.query(&mut c).unwrap();
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut all: Vec<u32> = Vec::new();
    for k in keys {
        for v in lrange_all(&mut con, k) {
            all.push(String::from_utf8(v).unwrap().parse().unwrap());
        }
    }
    all.sort_unstable();
    assert_eq!(all, (0..total as u32).collect::<Vec<_>>());
}

#[test]
fn wrong_type_and_same_key_moves() {
    let s = Server::start_overridable("LISTS_TEST_SERVER", &[]);
    let mut con = s.client();
    qs(&mut con, "SET str x");
    for line in [
        "LPUSH str a",
        "LPOP str",
        "LRANGE str 0 1",
        "LMOVE str l LEFT LEFT",
        "LMPOP 1 str LEFT",
    ] {
        let parts: Vec<&str> = line.split(' ').collect();
        let mut c = redis::cmd(parts[0]);
        for p in &parts[1..] {
            c.arg(*p);
        }
        let e = c.query::<Value>(&mut con).unwrap_err();
        assert_eq!(e.code(), Some("WRONGTYPE"), "{line}");
    }
    qs(&mut con, "RPUSH r a b c");
    assert_eq!(
        qs(&mut con, "LMOVE r r LEFT RIGHT"),
        Value::BulkString(b"a".to_vec())
    );
    assert_eq!(
        lrange_all(&mut con, "r"),
        vec![b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]
    );
    assert_eq!(
        qs(&mut con, "RPOPLPUSH r r"),
        Value::BulkString(b"a".to_vec())
    );
    assert_eq!(
        lrange_all(&mut con, "r"),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    // The destination's type is checked before the source is popped.
    let e = redis::cmd("LMOVE")
        .arg("r")
        .arg("str")
        .arg("LEFT")
        .arg("LEFT")
        .query::<Value>(&mut con)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    assert_eq!(int(&mut con, "LLEN r"), 3);
}
