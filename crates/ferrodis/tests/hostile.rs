//! Hostile input to persistence and to commands that allocate what the client asks for: crafted RDB size
//! hints, DUMP payloads claiming huge lengths, SETRANGE/APPEND past the machine's memory with
//! proto-max-bulk-len raised, DEBUG POPULATE with huge counts and sizes. The server must answer (or refuse
//! a file cleanly) with bounded memory, never abort.

mod common;

use common::{query, Server};
use ferrodis::persist::rdb::{self, put_len, put_string};
use std::path::Path;
use std::time::{Duration, Instant};

/// A 40-byte RDB: `SELECTDB 0`, `RESIZEDB hint hint`, then `foo` = `bar`.
fn resizedb_file(hint: u64) -> Vec<u8> {
    let mut b = b"REDIS0011".to_vec();
    b.extend_from_slice(&[0xFE, 0x00, 0xFB]);
    put_len(&mut b, hint);
    put_len(&mut b, 0);
    b.push(0); // string
    put_string(&mut b, b"foo", false);
    put_string(&mut b, b"bar", false);
    b.push(0xFF);
    let crc = rdb::crc64(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Resident memory of a process, in bytes (VmRSS).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

const RSS_LIMIT: u64 = 200 << 20;

fn start_in(dir: &Path) -> Server {
    Server::start(&[
        "--dir",
        dir.to_str().unwrap(),
        "--save",
        "",
        "--enable-debug-command",
        "yes",
    ])
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ferrodis-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The file's RESIZEDB is a hint: 2^34 (which once made startup touch gigabytes) and 2^64-1 (which once
/// aborted) load quickly with bounded memory, and so does DEBUG RELOAD of the same file.
#[test]
fn crafted_resizedb_hints_load_with_bounded_memory() {
    for hint in [1u64 << 34, u64::MAX] {
        let dir = temp_dir(&format!("resize-{hint}"));
        let file = resizedb_file(hint);
        assert_eq!(file.len(), 40);
        std::fs::write(dir.join("dump.rdb"), &file).unwrap();
        let start = Instant::now();
        let mut s = start_in(&dir);
        assert!(start.elapsed() < Duration::from_secs(10), "slow start");
        let mut con = s.client();
        let pong: String = query(&mut con, &["PING"]);
        assert_eq!(pong, "PONG");
        let v: String = query(&mut con, &["GET", "foo"]);
        assert_eq!(v, "bar");
        let pid = s.child().id();
        assert!(rss(pid) > 0 && rss(pid) < RSS_LIMIT, "RSS {}", rss(pid));
        // DEBUG RELOAD NOSAVE reads the same file through the same path.
        let _: () = query(&mut con, &["DEBUG", "RELOAD", "NOSAVE"]);
        let v: String = query(&mut con, &["GET", "foo"]);
        assert_eq!(v, "bar");
        assert!(rss(pid) < RSS_LIMIT, "RSS {} after DEBUG RELOAD", rss(pid));
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A file with a huge hint that is corrupt after it: the start is refused with Redis's message and a
/// non-zero exit (no abort, no huge allocation on the way).
#[test]
fn corrupt_file_with_huge_hint_refuses_to_start() {
    let dir = temp_dir("resize-corrupt");
    let mut file = resizedb_file(1 << 34);
    // Key `foo`'s value claims 2^40 bytes (the file ends long before).
    file.truncate(file.len() - 4 - 1 - 8);
    assert!(file.ends_with(b"\x03foo"));
    put_len(&mut file, 1 << 40);
    file.extend_from_slice(b"bar");
    std::fs::write(dir.join("dump.rdb"), &file).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args(["--port", "0", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Short read or OOM loading DB"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A DUMP payload of type `ty` with a valid version and CRC64 trailer (so RESTORE gets to decode it).
fn payload(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![ty];
    p.extend_from_slice(body);
    p.extend_from_slice(&11u16.to_le_bytes());
    let crc = rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// Payloads whose lengths claim far more than they hold get Redis 7.2.4's reply ("ERR Bad data format",
/// checked against it), quickly and without the memory for the claim.
#[test]
fn restore_payloads_with_huge_claims() {
    let mut s = Server::start(&[]);
    let mut raw = s.raw();
    let huge = 1u64 << 62;
    let len = |n: u64| {
        let mut b = Vec::new();
        put_len(&mut b, n);
        b
    };
    let counted = |n: u64| {
        let mut b = len(n);
        put_string(&mut b, b"1", false);
        b
    };
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("string", payload(0, &len(huge))),
        ("string 4G", payload(0, &len(u32::MAX as u64))),
    ];
    // LZF: 2 compressed bytes claiming 1 TB, and more than any 2 bytes can expand to.
    for ulen in [1u64 << 40, 20_000] {
        let mut b = vec![0xC3];
        put_len(&mut b, 2);
        put_len(&mut b, ulen);
        b.extend_from_slice(&[0x00, b'a']);
        cases.push(("lzf", payload(0, &b)));
    }
    // Lists, sets, zsets, hashes, quicklists, streams claiming 2^62 elements.
    for ty in [1u8, 2, 3, 4, 5, 14, 18, 21] {
        cases.push(("collection", payload(ty, &counted(huge))));
    }
    // An intset blob whose header claims 2^32-1 members.
    let mut intset = 2u32.to_le_bytes().to_vec();
    intset.extend_from_slice(&u32::MAX.to_le_bytes());
    intset.extend_from_slice(&[1, 0, 2, 0]);
    let mut b = Vec::new();
    put_string(&mut b, &intset, false);
    cases.push(("intset", payload(11, &b)));
    let start = Instant::now();
    for (what, p) in &cases {
        assert_eq!(
            raw.call_bytes(&[b"RESTORE", b"k", b"0", p]),
            "-ERR Bad data format\r\n",
            "{what}"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(raw.call(&["PING"]), "+PONG\r\n");
    let pid = s.child().id();
    assert!(rss(pid) < RSS_LIMIT, "RSS {}", rss(pid));
}

/// With proto-max-bulk-len raised as far as it goes, a string longer than the machine could hold is an
/// error reply, for a new key and for an existing one; the default limit keeps Redis's error.
#[test]
fn setrange_and_append_past_memory() {
    let mut s = Server::start(&[]);
    let mut raw = s.raw();
    // Redis 7.2.4's reply with the default limit.
    assert_eq!(
        raw.call(&["SETRANGE", "k", "4294967295", "x"]),
        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"
    );
    let max = i64::MAX.to_string();
    assert_eq!(
        raw.call(&["CONFIG", "SET", "proto-max-bulk-len", &max]),
        "+OK\r\n"
    );
    let far = (1u64 << 50).to_string();
    let long = "a value too long to be stored inline in the entry";
    for setup in [None, Some("short"), Some("12345"), Some(long)] {
        raw.call(&["DEL", "k"]);
        if let Some(v) = setup {
            assert_eq!(raw.call(&["SET", "k", v]), "+OK\r\n");
        }
        let e = raw.call(&["SETRANGE", "k", &far, "x"]);
        assert!(e.starts_with("-ERR not enough memory"), "{e}");
        let e = raw.call(&["SETRANGE", "k", "9223372036854775806", "xy"]);
        assert!(e.starts_with("-ERR"), "{e}");
        // The value is untouched.
        let want = match setup {
            Some(v) => format!("${}\r\n{v}\r\n", v.len()),
            None => "$-1\r\n".to_string(),
        };
        assert_eq!(raw.call(&["GET", "k"]), want);
    }
    // Ordinary growth still works.
    assert_eq!(raw.call(&["SETRANGE", "k", "60", "x"]), ":61\r\n");
    assert_eq!(raw.call(&["APPEND", "k", "yz"]), ":63\r\n");
    assert_eq!(raw.call(&["PING"]), "+PONG\r\n");
    let pid = s.child().id();
    assert!(rss(pid) < RSS_LIMIT, "RSS {}", rss(pid));
}

/// DEBUG POPULATE with a count whose table could never be allocated gets Redis 7.2.4's "OOM in
/// dictTryExpand"; a value size past the machine's memory (Redis aborts) is an error reply too.
#[test]
fn debug_populate_huge() {
    let mut s = Server::start(&["--enable-debug-command", "yes"]);
    let mut raw = s.raw();
    assert_eq!(
        raw.call(&["DEBUG", "POPULATE", "10000000000000"]),
        "-ERR OOM in dictTryExpand\r\n"
    );
    let e = raw.call(&["DEBUG", "POPULATE", "1", "x", "10000000000000"]);
    assert!(e.starts_with("-ERR not enough memory"), "{e}");
    let e = raw.call(&["DEBUG", "POPULATE", "1000000000", "x", "100000"]);
    assert!(e.starts_with("-ERR not enough memory"), "{e}");
    assert_eq!(raw.call(&["DBSIZE"]), ":0\r\n");
    // Small ones still work.
    assert_eq!(
        raw.call(&["DEBUG", "POPULATE", "10", "x", "100"]),
        "+OK\r\n"
    );
    assert_eq!(raw.call(&["STRLEN", "x:3"]), ":100\r\n");
    assert_eq!(raw.call(&["DBSIZE"]), ":10\r\n");
    let pid = s.child().id();
    assert!(rss(pid) < RSS_LIMIT, "RSS {}", rss(pid));
}
