//! Integration tests for the set commands: the built binary on a free port, driven with the `redis` crate
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
fn set_basics_and_encodings() {
    let srv = Server::start();
    let mut c = srv.con();
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
    let srv = Server::start();
    let mut c = srv.con();
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
    let srv = Server::start();
    let mut c = srv.con();
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
    let srv = Server::start();
    let mut c = srv.con();
    q::<i64>(&mut c, &["SADD", "s", "1", "2"]);
    let r = srv.raw(
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
