//! Integration tests for the bitmap commands beyond what the differential script against Redis 7.2.4 covers:
//! Redis 8.2's BITOP DIFF, DIFF1, ANDOR and ONE (7.2.4 has none of them), and bitmaps surviving DEBUG
//! RELOAD and an AOF restart.

mod common;

use common::{query, query_err, Server};
use std::path::PathBuf;

fn set_bytes(con: &mut redis::Connection, key: &str, v: &[u8]) {
    let _: () = redis::cmd("SET").arg(key).arg(v).query(con).unwrap();
}

fn get_bytes(con: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(con).unwrap()
}

/// Each source zero-padded to the longest, combined byte by byte with `f` (given the first source's byte
/// and the others').
fn expected(srcs: &[&[u8]], f: impl Fn(u8, &[u8]) -> u8) -> Vec<u8> {
    let n = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            let b: Vec<u8> = srcs
                .iter()
                .map(|s| s.get(i).copied().unwrap_or(0))
                .collect();
            f(b[0], &b[1..])
        })
        .collect()
}

#[test]
fn bitop_redis_8_2_operations() {
    let s = Server::start(&[]);
    let mut con = s.client();
    // Lengths around the 8-byte words: 19, 8, 3 and 0 (missing) bytes.
    let x: Vec<u8> = (0..19u32).map(|i| (i * 37 + 11) as u8).collect();
    let y: Vec<u8> = (0..8u32).map(|i| (i * 91 + 5) as u8).collect();
    let z: Vec<u8> = vec![0xf0, 0x0f, 0xaa];
    set_bytes(&mut con, "x", &x);
    set_bytes(&mut con, "y", &y);
    set_bytes(&mut con, "z", &z);
    type Rule = fn(u8, &[u8]) -> u8;
    let cases: [(&str, Rule); 4] = [
        ("DIFF", |x, o| x & !o.iter().fold(0, |a, b| a | b)),
        ("DIFF1", |x, o| !x & o.iter().fold(0, |a, b| a | b)),
        ("ANDOR", |x, o| x & o.iter().fold(0, |a, b| a | b)),
        ("ONE", |x, o| {
            let all: Vec<u8> = std::iter::once(x).chain(o.iter().copied()).collect();
            let (mut once, mut more) = (0u8, 0u8);
            for b in all {
                more |= once & b;
                once |= b;
            }
            once & !more
        }),
    ];
    for (op, rule) in cases {
        for keys in [
            &["x", "y"][..],
            &["x", "y", "z"],
            &["z", "x", "y"],
            &["y", "missing"],
            &["missing", "y", "z"],
            &["x", "x"],
        ] {
            let srcs: Vec<&[u8]> = keys
                .iter()
                .map(|k| match *k {
                    "x" => &x[..],
                    "y" => &y[..],
                    "z" => &z[..],
                    _ => &[][..],
                })
                .collect();
            let want = expected(&srcs, rule);
            let mut args = vec!["BITOP", op, "dest"];
            args.extend_from_slice(keys);
            let n: i64 = query(&mut con, &args);
            assert_eq!(n as usize, want.len(), "{op} {keys:?}");
            assert_eq!(get_bytes(&mut con, "dest"), Some(want), "{op} {keys:?}");
            let enc: String = query(&mut con, &["OBJECT", "ENCODING", "dest"]);
            assert_eq!(enc, "raw");
        }
    }
    // Lower case works; ONE takes a single source (a copy), the others need two.
    let n: i64 = query(&mut con, &["BITOP", "one", "dest", "z"]);
    assert_eq!(n, 3);
    assert_eq!(get_bytes(&mut con, "dest"), Some(z.clone()));
    for op in ["DIFF", "diff1", "AndOr"] {
        let e = query_err(&mut con, &["BITOP", op, "dest", "x"]);
        assert!(
            e.contains(&format!(
                "BITOP {} must be called with at least two source keys.",
                op.to_ascii_uppercase()
            )),
            "{e}"
        );
    }
    // Missing sources only: the destination is deleted, 0 returned.
    let n: i64 = query(&mut con, &["BITOP", "DIFF", "dest", "m1", "m2"]);
    assert_eq!(n, 0);
    let ex: i64 = query(&mut con, &["EXISTS", "dest"]);
    assert_eq!(ex, 0);
    // A source of another type fails, the destination is untouched.
    let _: i64 = query(&mut con, &["LPUSH", "l", "a"]);
    let e = query_err(&mut con, &["BITOP", "ANDOR", "dest", "x", "l"]);
    assert!(e.contains("WRONGTYPE"), "{e}");
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrodis-bitmaps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bitmaps_survive_reload_and_aof_restart() {
    let dir = temp_dir("persist");
    let args = [
        "--dir",
        dir.to_str().unwrap(),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--enable-debug-command",
        "yes",
    ];
    let check = |con: &mut redis::Connection| {
        let b: i64 = query(con, &["GETBIT", "bm", "100000"]);
        assert_eq!(b, 1);
        let c: i64 = query(con, &["BITCOUNT", "bm"]);
        assert_eq!(c, 3);
        let f: Vec<i64> = query(
            con,
            &["BITFIELD_RO", "bf", "GET", "i16", "#1", "GET", "u8", "0"],
        );
        assert_eq!(f, vec![-300, 7]);
        let n: i64 = query(con, &["BITCOUNT", "op"]);
        assert_eq!(n, 2);
        let p: i64 = query(con, &["BITPOS", "bm", "1", "1"]);
        assert_eq!(p, 100000);
    };
    {
        let s = Server::start(&args);
        let mut con = s.client();
        for off in ["3", "5", "100000"] {
            let _: i64 = query(&mut con, &["SETBIT", "bm", off, "1"]);
        }
        let _: Vec<i64> = query(
            &mut con,
            &[
                "BITFIELD", "bf", "SET", "u8", "0", "7", "SET", "i16", "#1", "-300",
            ],
        );
        let _: i64 = query(&mut con, &["BITOP", "AND", "op", "bm", "bm"]);
        let _: i64 = query(&mut con, &["SETBIT", "op", "100000", "0"]);
        check(&mut con);
        let _: () = query(&mut con, &["DEBUG", "RELOAD"]);
        check(&mut con);
    }
    // The server above is gone: a new one replays the AOF.
    let s = Server::start(&args);
    let mut con = s.client();
    check(&mut con);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
