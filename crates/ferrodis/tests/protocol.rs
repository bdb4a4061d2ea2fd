//! Protocol edge cases over raw TCP: inline commands, deep pipelines, split requests, protocol errors (reply
//! then close), limits, garbage input, big values, and that the server survives all of it.

mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Send bytes and read until `expect` bytes arrived (or the peer closed / timeout); returns what was read.
fn roundtrip(s: &mut TcpStream, send: &[u8], expect: usize) -> Vec<u8> {
    s.write_all(send).unwrap();
    read_n(s, expect)
}

fn read_n(s: &mut TcpStream, expect: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < expect {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// True if the server closed the connection (read returns 0 after any pending bytes).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn inline_and_multibulk() {
    let srv = Server::start(&[]);
    let mut c = srv.stream();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 7), b"+PONG\r\n");
    assert_eq!(roundtrip(&mut c, b"ping\n", 7), b"+PONG\r\n");
    assert_eq!(
        roundtrip(&mut c, b"set k \"a b\"\r\nget k\r\n", 14),
        b"+OK\r\n$3\r\na b\r\n"
    );
    // Blank lines and empty multibulks are skipped silently.
    assert_eq!(
        roundtrip(&mut c, b"\r\n*0\r\n*-1\r\nPING\r\n", 7),
        b"+PONG\r\n"
    );
    assert_eq!(
        roundtrip(
            &mut c,
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n",
            11
        ),
        b"+OK\r\n$0\r\n\r\n"
    );
}

#[test]
fn requests_split_at_every_byte() {
    let srv = Server::start(&[]);
    let mut c = srv.stream();
    c.set_nodelay(true).unwrap();
    let req =
        b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\n";
    for b in req.iter() {
        c.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(read_n(&mut c, 16), b"+OK\r\n$5\r\nvalue\r\n");
}

#[test]
fn deep_pipeline_in_order() {
    let srv = Server::start(&[]);
    let mut c = srv.stream();
    let n = 20_000;
    let mut req = Vec::new();
    for i in 0..n {
        let k = format!("key:{i}");
        req.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
                k.len(),
                k,
                k.len(),
                k
            )
            .as_bytes(),
        );
    }
    for i in 0..n {
        let k = format!("key:{i}");
        req.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", k.len(), k).as_bytes());
    }
    let mut expect = Vec::new();
    for _ in 0..n {
        expect.extend_from_slice(b"+OK\r\n");
    }
    for i in 0..n {
        let k = format!("key:{i}");
        expect.extend_from_slice(format!("${}\r\n{}\r\n", k.len(), k).as_bytes());
    }
    let writer = {
        let mut w = c.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&req).unwrap())
    };
    let got = read_n(&mut c, expect.len());
    writer.join().unwrap();
    assert!(got == expect, "pipeline replies differ");
}

#[test]
fn big_values_round_trip() {
    let srv = Server::start(&[]);
    let mut c = srv.stream();
    let v: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut req = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", v.len()).into_bytes();
    req.extend_from_slice(&v);
    req.extend_from_slice(b"\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    let header = format!("${}\r\n", v.len());
    let got = roundtrip(&mut c, &req, 5 + header.len() + v.len() + 2);
    assert_eq!(&got[..5], b"+OK\r\n");
    assert_eq!(&got[5..5 + header.len()], header.as_bytes());
    assert!(got[5 + header.len()..5 + header.len() + v.len()] == v[..]);
}

#[test]
fn protocol_errors_reply_then_close() {
    let srv = Server::start(&[]);
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*1\r\n$x\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$999999999999\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n+foo\r\n",
            b"-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"set \"a\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (send, want) in cases {
        let mut c = srv.stream();
        let got = roundtrip(&mut c, send, want.len());
        assert_eq!(&got[..], *want, "for {:?}", String::from_utf8_lossy(send));
        assert!(
            closed(&mut c),
            "connection not closed after {:?}",
            String::from_utf8_lossy(send)
        );
    }
    // Requests before the bad one are still answered, in order.
    let mut c = srv.stream();
    let got = roundtrip(&mut c, b"PING\r\n*1\r\n$x\r\n", 7 + 42);
    assert_eq!(
        &got[..],
        b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
    // The server is fine afterwards.
    let mut c = srv.stream();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn too_big_inline_and_count_strings() {
    let srv = Server::start(&[]);
    let mut c = srv.stream();
    let junk = vec![b'a'; 70 * 1024];
    let want = b"-ERR Protocol error: too big inline request\r\n";
    assert_eq!(&roundtrip(&mut c, &junk, want.len())[..], want);
    assert!(closed(&mut c));
    let mut c = srv.stream();
    let mut junk = b"*".to_vec();
    junk.extend(vec![b'1'; 70 * 1024]);
    let want = b"-ERR Protocol error: too big mbulk count string\r\n";
    assert_eq!(&roundtrip(&mut c, &junk, want.len())[..], want);
}

#[test]
fn query_buffer_limit_closes_client() {
    let srv = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut c = srv.stream();
    // Announce a 4 MB bulk and send 2 MB of it: the buffered query passes the 1 MB limit.
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n".to_vec();
    req.extend(vec![b'x'; 2 * 1024 * 1024]);
    let _ = c.write_all(&req);
    assert!(closed(&mut c));
    let mut c = srv.stream();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn garbage_never_kills_the_server() {
    let srv = Server::start(&["--threads", "2"]);
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let mut c = srv.stream();
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let len = (rnd() % 600) as usize;
        let prefix: &[u8] = match rnd() % 4 {
            0 => b"*",
            1 => b"*3\r\n$",
            2 => b"*2\r\n$3\r\nGET\r\n$",
            _ => b"",
        };
        let mut bytes = prefix.to_vec();
        bytes.extend((0..len).map(|_| rnd() as u8));
        let _ = c.write_all(&bytes);
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
    }
    let mut c = srv.stream();
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn unknown_command_and_arity_errors() {
    let srv = Server::start(&[]);
    let mut c = srv.stream();
    let want = b"-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n";
    assert_eq!(
        &roundtrip(&mut c, b"foo bar baz\r\n", want.len())[..],
        &want[..]
    );
    let want = b"-ERR wrong number of arguments for 'get' command\r\n";
    assert_eq!(&roundtrip(&mut c, b"GET\r\n", want.len())[..], &want[..]);
    // The connection stays usable after command errors.
    assert_eq!(roundtrip(&mut c, b"PING\r\n", 7), b"+PONG\r\n");
}

#[test]
fn many_connections_on_several_workers() {
    let srv = Server::start(&["--threads", "4"]);
    let port = srv.port;
    let handles: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for i in 0..200 {
                    let k = format!("t{t}:{i}");
                    let req = format!(
                        "*3\r\n$3\r\nSET\r\n${}\r\n{}\r\n${}\r\n{}\r\n*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n",
                        k.len(),
                        k,
                        k.len(),
                        k,
                        k.len(),
                        k
                    );
                    let want = format!("+OK\r\n${}\r\n{}\r\n", k.len(), k);
                    assert_eq!(roundtrip(&mut c, req.as_bytes(), want.len()), want.as_bytes());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
