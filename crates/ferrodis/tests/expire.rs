//! Expiry: the active cycle removes expired keys nobody touches; lazy expiry on access; expired_keys stat.

mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn info_field(con: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from INFO"))
        .trim()
        .parse()
        .unwrap()
}

/// Load `n` keys with a short TTL through one raw pipeline.
fn load_volatile(port: u16, n: usize, prefix: &str, px: u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = Vec::new();
    for i in 0..n {
        let k = format!("{prefix}{i}");
        let ttl = px.to_string();
        req.extend_from_slice(
            format!(
                "*5\r\n$3\r\nSET\r\n${}\r\n{}\r\n$1\r\nv\r\n$2\r\nPX\r\n${}\r\n{}\r\n",
                k.len(),
                k,
                ttl.len(),
                ttl
            )
            .as_bytes(),
        );
    }
    let reader = {
        let mut r = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let want = 5 * n;
            let mut got = 0;
            let mut buf = vec![0u8; 1 << 16];
            while got < want {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got += k,
                }
            }
            got
        })
    };
    s.write_all(&req).unwrap();
    assert_eq!(reader.join().unwrap(), 5 * n);
}

#[test]
fn active_cycle_removes_untouched_keys() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    let n = 200_000;
    load_volatile(srv.port, n, "vol:", 300);
    let _: () = redis::cmd("SET")
        .arg("keep")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(dbsize > 1, "keys expired before the check? dbsize={dbsize}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dbsize: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        if dbsize == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "active expiry left {dbsize} keys after 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(info_field(&mut con, "expired_keys") >= n as u64);
    let v: String = redis::cmd("GET").arg("keep").query(&mut con).unwrap();
    assert_eq!(v, "1");
}

#[test]
fn lazy_expiry_and_disabled_active_cycle() {
    let srv = Server::start(&["--enable-debug-command", "yes"]);
    let mut con = srv.client();
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg("0")
        .query(&mut con)
        .unwrap();
    load_volatile(srv.port, 1000, "lazy:", 50);
    std::thread::sleep(Duration::from_millis(400));
    // Nothing removed them yet: the table still counts them...
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 1000);
    // ...but no read can see them, and each read deletes one.
    let v: Option<String> = redis::cmd("GET").arg("lazy:7").query(&mut con).unwrap();
    assert_eq!(v, None);
    let exists: u64 = redis::cmd("EXISTS").arg("lazy:8").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    assert!(info_field(&mut con, "expired_keys") >= 1);
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("DBSIZE").query::<u64>(&mut con).unwrap() != 0 {
        assert!(Instant::now() < deadline, "active cycle did not resume");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn active_cycle_reclaims_hash_fields() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let _: () = redis::cmd("HSET")
        .arg("h1")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("h2")
        .arg("f")
        .arg("v")
        .arg("keep")
        .arg("v")
        .query(&mut con)
        .unwrap();
    for k in ["h1", "h2"] {
        let r: Vec<i64> = redis::cmd("HPEXPIRE")
            .arg(k)
            .arg(100)
            .arg("FIELDS")
            .arg(1)
            .arg("f")
            .query(&mut con)
            .unwrap();
        assert_eq!(r, vec![1]);
    }
    // Nobody touches the hashes: h1 disappears (its only field expired), h2 keeps one field.
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("DBSIZE").query::<u64>(&mut con).unwrap() != 1 {
        assert!(
            Instant::now() < deadline,
            "hash field TTLs were not reclaimed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let n: u64 = redis::cmd("HLEN").arg("h2").query(&mut con).unwrap();
    assert_eq!(n, 1);
}
