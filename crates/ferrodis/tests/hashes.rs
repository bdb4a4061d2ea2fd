//! Integration tests for the hash commands: the built binary on a free port, driven with the `redis` crate
//! and raw RESP (RESP3 reply shapes).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
        for _ in 0..20 {
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().unwrap().port()
            };
            let child = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn ferrodis");
            let mut s = Server { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return s;
                }
                if let Ok(Some(_)) = s.child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        panic!("ferrodis did not start");
    }

    fn con(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Send one command as RESP and return the raw reply bytes (read until the socket is quiet).
    fn raw(&self, resp3: bool, cmds: &[&[&str]]) -> Vec<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let send = |s: &mut TcpStream, args: &[&str]| -> Vec<u8> {
            let mut b = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                b.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
            }
            s.write_all(&b).unwrap();
            let mut out = Vec::new();
            let mut buf = [0u8; 65536];
            thread::sleep(Duration::from_millis(30));
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            }
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            out
        };
        if resp3 {
            send(&mut s, &["HELLO", "3"]);
        }
        cmds.iter().map(|c| send(&mut s, c)).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn q<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn qerr(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    match c.query::<redis::Value>(con) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn hash_basics_and_types() {
    let srv = Server::start();
    let mut c = srv.con();
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
    let srv = Server::start();
    let mut c = srv.con();
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
    let srv = Server::start();
    let mut c = srv.con();
    q::<i64>(&mut c, &["HSET", "h", "a", "1"]);
    let r = srv.raw(
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
    let r = srv.raw(false, &[&["HRANDFIELD", "h", "1", "WITHVALUES"]]);
    assert_eq!(r[0], b"*2\r\n$1\r\na\r\n$1\r\n1\r\n");
}
