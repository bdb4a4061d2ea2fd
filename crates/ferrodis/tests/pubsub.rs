//! Pub/Sub over TCP: RESP2 and RESP3 frames byte for byte, patterns, shard channels, introspection,
//! delivery order across worker threads, keyspace notifications (including expiry by the active cycle),
//! and a slow subscriber disconnected by client-output-buffer-limit with bounded server memory.

mod common;

use common::{encode, Raw, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// RESP2 / RESP3 frame builders.
fn frame(resp3: bool, parts: &[&str]) -> String {
    let mut s = format!("{}{}\r\n", if resp3 { '>' } else { '*' }, parts.len());
    for p in parts {
        s.push_str(&format!("${}\r\n{}\r\n", p.len(), p));
    }
    s
}

fn confirm(resp3: bool, kind: &str, ch: &str, n: i64) -> String {
    format!(
        "{}3\r\n${}\r\n{kind}\r\n${}\r\n{ch}\r\n:{n}\r\n",
        if resp3 { '>' } else { '*' },
        kind.len(),
        ch.len()
    )
}

fn int(con: &mut redis::Connection, args: &[&str]) -> i64 {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap()
}

#[test]
fn resp2_frames() {
    let srv = Server::start(&["--threads", "3"]);
    let mut sub = srv.raw();
    let mut p = srv.client();
    // Unsubscribing from nothing.
    sub.exchange("UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    sub.exchange("PUNSUBSCRIBE", "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
    sub.exchange("SUNSUBSCRIBE", "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n");
    sub.send_line("SUBSCRIBE news sport news");
    sub.expect(&confirm(false, "subscribe", "news", 1));
    sub.expect(&confirm(false, "subscribe", "sport", 2));
    sub.expect(&confirm(false, "subscribe", "news", 2));
    sub.exchange("PSUBSCRIBE n*", &confirm(false, "psubscribe", "n*", 3));
    sub.exchange("PING", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    sub.exchange("PING hello", "*2\r\n$4\r\npong\r\n$5\r\nhello\r\n");
    sub.exchange(
        "GET k",
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    assert_eq!(int(&mut p, &["PUBLISH", "news", "hi there"]), 2);
    sub.expect(&frame(false, &["message", "news", "hi there"]));
    sub.expect(&frame(false, &["pmessage", "n*", "news", "hi there"]));
    assert_eq!(int(&mut p, &["PUBLISH", "nothing", "x"]), 1);
    sub.expect(&frame(false, &["pmessage", "n*", "nothing", "x"]));
    assert_eq!(int(&mut p, &["PUBLISH", "other", "x"]), 0);
    sub.quiet(100);
    // Unsubscribe with no arguments: every channel, in subscription order; patterns stay.
    sub.send_line("UNSUBSCRIBE");
    sub.expect(&confirm(false, "unsubscribe", "news", 2));
    sub.expect(&confirm(false, "unsubscribe", "sport", 1));
    sub.exchange("UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n");
    sub.exchange(
        "PUNSUBSCRIBE nope",
        &confirm(false, "punsubscribe", "nope", 1),
    );
    sub.exchange("PUNSUBSCRIBE", &confirm(false, "punsubscribe", "n*", 0));
    // Out of subscribed mode: normal commands work again.
    sub.exchange("PING", "+PONG\r\n");
    sub.exchange("GET k", "$-1\r\n");
    // RESET leaves subscribed mode.
    sub.exchange("SUBSCRIBE a", &confirm(false, "subscribe", "a", 1));
    sub.exchange("RESET", "+RESET\r\n");
    sub.exchange("GET k", "$-1\r\n");
    assert_eq!(int(&mut p, &["PUBLISH", "a", "x"]), 0);
}

#[test]
fn resp3_pushes_interleave_with_replies() {
    let srv = Server::start(&["--threads", "3"]);
    let mut sub = srv.raw();
    let mut p = srv.client();
    sub.send_line("HELLO 3");
    std::thread::sleep(Duration::from_millis(100));
    let mut tmp = [0u8; 4096];
    let _ = sub.read(&mut tmp).unwrap();
    sub.exchange("UNSUBSCRIBE", ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    sub.exchange("SUBSCRIBE c1", &confirm(true, "subscribe", "c1", 1));
    sub.exchange("PSUBSCRIBE c?", &confirm(true, "psubscribe", "c?", 2));
    sub.exchange("SET k v", "+OK\r\n");
    sub.exchange("GET k", "$1\r\nv\r\n");
    sub.exchange("PING", "+PONG\r\n");
    assert_eq!(int(&mut p, &["PUBLISH", "c1", "m"]), 2);
    sub.expect(&frame(true, &["message", "c1", "m"]));
    sub.expect(&frame(true, &["pmessage", "c?", "c1", "m"]));
    sub.exchange("SSUBSCRIBE s", &confirm(true, "ssubscribe", "s", 1));
    assert_eq!(int(&mut p, &["SPUBLISH", "s", "sm"]), 1);
    sub.expect(&frame(true, &["smessage", "s", "sm"]));
    sub.exchange("SUNSUBSCRIBE", &confirm(true, "sunsubscribe", "s", 0));
    sub.exchange("PUNSUBSCRIBE", &confirm(true, "punsubscribe", "c?", 1));
    sub.exchange("UNSUBSCRIBE c1", &confirm(true, "unsubscribe", "c1", 0));
    // A RESP2 and a RESP3 subscriber of the same channel each get their own encoding.
    let mut sub2 = srv.raw();
    sub.exchange("SUBSCRIBE both", &confirm(true, "subscribe", "both", 1));
    sub2.exchange("SUBSCRIBE both", &confirm(false, "subscribe", "both", 1));
    assert_eq!(int(&mut p, &["PUBLISH", "both", "x"]), 2);
    sub.expect(&frame(true, &["message", "both", "x"]));
    sub2.expect(&frame(false, &["message", "both", "x"]));
}

#[test]
fn sharded_channels_and_introspection() {
    let srv = Server::start(&["--threads", "3"]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    let mut p = srv.client();
    a.send_line("SSUBSCRIBE s1 s2");
    a.expect(&confirm(false, "ssubscribe", "s1", 1));
    a.expect(&confirm(false, "ssubscribe", "s2", 2));
    // Shard subscriptions count apart from channel ones.
    a.exchange("SUBSCRIBE c1", &confirm(false, "subscribe", "c1", 1));
    b.exchange("SUBSCRIBE c1", &confirm(false, "subscribe", "c1", 1));
    b.exchange("PSUBSCRIBE s*", &confirm(false, "psubscribe", "s*", 2));
    // SPUBLISH reaches shard subscribers only, PUBLISH channel and pattern subscribers only.
    assert_eq!(int(&mut p, &["SPUBLISH", "s1", "x"]), 1);
    a.expect(&frame(false, &["smessage", "s1", "x"]));
    assert_eq!(int(&mut p, &["PUBLISH", "s1", "y"]), 1);
    b.expect(&frame(false, &["pmessage", "s*", "s1", "y"]));
    a.quiet(50);
    let v: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("c1")
        .arg("s1")
        .query(&mut p)
        .unwrap();
    assert_eq!(
        v,
        vec![
            redis::Value::BulkString(b"c1".to_vec()),
            redis::Value::Int(2),
            redis::Value::BulkString(b"s1".to_vec()),
            redis::Value::Int(0),
        ]
    );
    let v: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg("s1")
        .query(&mut p)
        .unwrap();
    assert_eq!(
        v,
        vec![
            redis::Value::BulkString(b"s1".to_vec()),
            redis::Value::Int(1)
        ]
    );
    assert_eq!(int(&mut p, &["PUBSUB", "NUMPAT"]), 1);
    let mut chans: Vec<String> = redis::cmd("PUBSUB").arg("CHANNELS").query(&mut p).unwrap();
    chans.sort();
    assert_eq!(chans, vec!["c1"]);
    let mut sh: Vec<String> = redis::cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .arg("s[12]")
        .query(&mut p)
        .unwrap();
    sh.sort();
    assert_eq!(sh, vec!["s1", "s2"]);
    let none: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("zz*")
        .query(&mut p)
        .unwrap();
    assert!(none.is_empty());
    // CLIENT LIST TYPE pubsub shows the subscribers with their counts.
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut p)
        .unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("sub=1 psub=0 ssub=2"), "{list}");
    assert!(list.contains("sub=1 psub=1 ssub=0"), "{list}");
    let normal: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(&mut p)
        .unwrap();
    assert_eq!(normal.lines().count(), 1, "{normal}");
    // A disconnect removes every subscription.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while int(&mut p, &["SPUBLISH", "s1", "z"]) != 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(int(&mut p, &["PUBLISH", "c1", "z"]), 1);
    // CLIENT KILL TYPE pubsub.
    assert_eq!(int(&mut p, &["CLIENT", "KILL", "TYPE", "pubsub"]), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while int(&mut p, &["PUBSUB", "NUMPAT"]) != 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    // Errors.
    let e = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("a")
        .arg("b")
        .query::<redis::Value>(&mut p)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("unknown subcommand or wrong number of arguments for 'CHANNELS'"));
    let e = redis::cmd("SUBSCRIBE")
        .query::<redis::Value>(&mut p)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("wrong number of arguments for 'subscribe' command"));
}

/// Messages of one publisher arrive in publish order, to subscribers on every worker thread.
#[test]
fn order_across_threads() {
    let srv = Server::start(&["--threads", "3"]);
    let n = 2000;
    let mut subs: Vec<Raw> = (0..6).map(|_| srv.raw()).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        if i % 2 == 0 {
            s.exchange("SUBSCRIBE ord", &confirm(false, "subscribe", "ord", 1));
        } else {
            s.exchange("PSUBSCRIBE or?", &confirm(false, "psubscribe", "or?", 1));
        }
    }
    let port = srv.port;
    let publisher = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend(encode(&[b"PUBLISH", b"ord", i.to_string().as_bytes()]));
        }
        s.write_all(&batch).unwrap();
        let want = ":6\r\n".repeat(n);
        let mut got = Vec::new();
        let mut tmp = [0u8; 65536];
        while got.len() < want.len() {
            let k = s.read(&mut tmp).unwrap();
            assert!(k > 0);
            got.extend_from_slice(&tmp[..k]);
        }
        assert_eq!(String::from_utf8_lossy(&got), want);
    });
    for (i, s) in subs.iter_mut().enumerate() {
        for m in 0..n {
            let m = m.to_string();
            if i % 2 == 0 {
                s.expect(&frame(false, &["message", "ord", &m]));
            } else {
                s.expect(&frame(false, &["pmessage", "or?", "ord", &m]));
            }
        }
    }
    publisher.join().unwrap();
}

#[test]
fn keyspace_notifications() {
    let srv = Server::start(&[
        "--threads",
        "3",
        "--notify-keyspace-events",
        "KEA",
        "--hz",
        "50",
    ]);
    let mut c = srv.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, vec!["notify-keyspace-events", "AKE"]);
    let mut sub = srv.raw();
    sub.exchange(
        "PSUBSCRIBE __key*@0__:*",
        &confirm(false, "psubscribe", "__key*@0__:*", 1),
    );
    let ev = |sub: &mut Raw, key: &str, event: &str| {
        sub.expect(&frame(
            false,
            &[
                "pmessage",
                "__key*@0__:*",
                &format!("__keyspace@0__:{key}"),
                event,
            ],
        ));
        sub.expect(&frame(
            false,
            &[
                "pmessage",
                "__key*@0__:*",
                &format!("__keyevent@0__:{event}"),
                key,
            ],
        ));
    };
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    ev(&mut sub, "k", "set");
    let _: i64 = redis::cmd("DEL").arg("k").query(&mut c).unwrap();
    ev(&mut sub, "k", "del");
    let _: i64 = redis::cmd("LPUSH").arg("l").arg("a").query(&mut c).unwrap();
    ev(&mut sub, "l", "lpush");
    let _: i64 = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    ev(&mut sub, "h", "hset");
    let _: i64 = redis::cmd("INCR").arg("n").query(&mut c).unwrap();
    ev(&mut sub, "n", "incrby");
    let _: () = redis::cmd("RENAME")
        .arg("n")
        .arg("m")
        .query(&mut c)
        .unwrap();
    ev(&mut sub, "n", "rename_from");
    ev(&mut sub, "m", "rename_to");
    // A read or a failed write notifies nothing.
    let _: Option<String> = redis::cmd("GET").arg("m").query(&mut c).unwrap();
    let _: i64 = redis::cmd("DEL").arg("absent").query(&mut c).unwrap();
    sub.quiet(100);
    // Expired by the active cycle, with nobody touching the key.
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("v")
        .arg("PX")
        .arg("50")
        .query(&mut c)
        .unwrap();
    ev(&mut sub, "t", "set");
    // As Redis, SET ... PX also notifies "expire".
    ev(&mut sub, "t", "expire");
    let mut tmp = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let want = frame(
        false,
        &["pmessage", "__key*@0__:*", "__keyevent@0__:expired", "t"],
    );
    while !String::from_utf8_lossy(&tmp).contains(&want) {
        assert!(Instant::now() < deadline, "no expired event");
        let mut b = [0u8; 4096];
        if let Ok(k) = sub.read(&mut b) {
            tmp.extend_from_slice(&b[..k]);
        }
    }
    assert!(String::from_utf8_lossy(&tmp).contains(&frame(
        false,
        &["pmessage", "__key*@0__:*", "__keyspace@0__:t", "expired"]
    )));
    // Class filtering: only generic events on the keyevent channel.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Eg")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET").arg("k2").arg("v").query(&mut c).unwrap();
    let _: i64 = redis::cmd("DEL").arg("k2").query(&mut c).unwrap();
    sub.expect(&frame(
        false,
        &["pmessage", "__key*@0__:*", "__keyevent@0__:del", "k2"],
    ));
    sub.quiet(100);
    // Off: nothing.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET").arg("k3").arg("v").query(&mut c).unwrap();
    let _: i64 = redis::cmd("DEL").arg("k3").query(&mut c).unwrap();
    sub.quiet(100);
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Kq")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."));
}

#[test]
fn lazy_expiry_notification() {
    let srv = Server::start(&[
        "--threads",
        "3",
        "--notify-keyspace-events",
        "Ex",
        "--hz",
        "1",
        "--enable-debug-command",
        "yes",
    ]);
    let mut c = srv.client();
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg("0")
        .query(&mut c)
        .unwrap();
    let mut sub = srv.raw();
    sub.exchange(
        "SUBSCRIBE __keyevent@0__:expired",
        &confirm(false, "subscribe", "__keyevent@0__:expired", 1),
    );
    let _: () = redis::cmd("SET")
        .arg("lz")
        .arg("v")
        .arg("PX")
        .arg("20")
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    sub.quiet(50);
    let v: Option<String> = redis::cmd("GET").arg("lz").query(&mut c).unwrap();
    assert_eq!(v, None);
    sub.expect(&frame(false, &["message", "__keyevent@0__:expired", "lz"]));
}

fn used_memory(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A subscriber that never reads is disconnected once past the pubsub class's hard limit (32mb by
/// default) while a publisher sends 64 MB, and the server's memory stays bounded.
#[test]
fn slow_subscriber_is_disconnected() {
    let srv = Server::start(&["--threads", "3"]);
    let mut c = srv.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        got[1],
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    let mut slow = srv.raw();
    slow.exchange(
        "SUBSCRIBE firehose",
        &confirm(false, "subscribe", "firehose", 1),
    );
    std::thread::sleep(Duration::from_millis(300));
    let base = used_memory(&mut c);
    // 64 MB in 64 KB messages, pipelined in batches.
    let payload = vec![b'x'; 64 * 1024];
    let mut p = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut delivered = 0;
    let mut max_mem = 0;
    for _ in 0..64 {
        let mut batch = Vec::new();
        for _ in 0..16 {
            batch.extend(encode(&[b"PUBLISH", b"firehose", &payload]));
        }
        p.write_all(&batch).unwrap();
        let mut got = Vec::new();
        let mut tmp = [0u8; 1024];
        while got.iter().filter(|&&b| b == b'\n').count() < 16 {
            let k = p.read(&mut tmp).unwrap();
            assert!(k > 0);
            got.extend_from_slice(&tmp[..k]);
        }
        delivered += String::from_utf8_lossy(&got).matches(":1\r\n").count();
        max_mem = max_mem.max(used_memory(&mut c));
    }
    // The subscriber was dropped before everything was delivered.
    assert!(delivered < 1024, "delivered {delivered}");
    assert_eq!(int(&mut c, &["PUBLISH", "firehose", "x"]), 0);
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut c)
        .unwrap();
    assert!(list.is_empty(), "{list}");
    // Bounded: well under the 64 MB published (the limit plus what one connection holds in flight).
    assert!(
        max_mem < base + 56 * 1024 * 1024,
        "used_memory grew from {base} to {max_mem}"
    );
    // The subscriber's socket ends (after the bytes already in flight).
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tmp = vec![0u8; 1 << 20];
    let mut total = 0usize;
    loop {
        match slow.read(&mut tmp) {
            Ok(0) => break,
            Ok(k) => total += k,
            Err(e) => panic!("subscriber connection not closed: {e} after {total} bytes"),
        }
    }
    assert!(total < 64 * 1024 * 1024);
}

/// The connection of a subscriber dropped for its output buffer is closed even though it never reads
/// (the connection task must stop waiting on its blocked write when the client is killed).
#[test]
fn slow_subscriber_closed_without_reading() {
    let srv = Server::start(&["--threads", "3"]);
    let mut c = srv.client();
    let mut slow = srv.raw();
    slow.send_line("CLIENT ID");
    let reply = slow.read_reply();
    let id = String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned();
    slow.exchange(
        "SUBSCRIBE firehose",
        &confirm(false, "subscribe", "firehose", 1),
    );
    let payload = vec![b'x'; 64 * 1024];
    for _ in 0..1024 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("firehose")
            .arg(&payload[..])
            .query(&mut c)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
        if !list.contains(&format!("id={id} ")) {
            break;
        }
        assert!(Instant::now() < deadline, "still connected: {list}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
