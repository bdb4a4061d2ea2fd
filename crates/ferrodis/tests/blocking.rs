//! Blocking pops over TCP: immediate data, wake-up by a writer, timeouts, FIFO order, exactly-once delivery
//! under concurrency, multi-key waits, BLMOVE across shards, sorted sets, CLIENT UNBLOCK, disconnects,
//! pipelines behind a blocked command.

mod common;

use common::Server;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn wait_blocked(con: &mut redis::Connection, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
        let b: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if b == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} blocked clients, have {b}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn blpop_immediate_wake_and_timeout() {
    let srv = Server::start(&["--threads", "3"]);
    let mut a = srv.raw();
    let mut b = srv.raw();
    b.exchange("RPUSH l x y", ":2\r\n");
    a.exchange("BLPOP l 0", "*2\r\n$1\r\nl\r\n$1\r\nx\r\n");
    a.exchange("BRPOP l 0", "*2\r\n$1\r\nl\r\n$1\r\ny\r\n");
    // Now empty: block, then get woken by a push.
    a.send_line("BLPOP l 0");
    a.quiet(200);
    b.exchange("LPUSH l z", ":1\r\n");
    a.expect("*2\r\n$1\r\nl\r\n$1\r\nz\r\n");
    b.exchange("EXISTS l", ":0\r\n");
    // Timeout: nil array after about the time asked.
    let t = Instant::now();
    a.exchange("BLPOP l 0.2", "*-1\r\n");
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    // RESP3 null.
    a.send_line("HELLO 3");
    let mut tmp = [0u8; 4096];
    std::thread::sleep(Duration::from_millis(100));
    let _ = a.read(&mut tmp);
    a.exchange("BLPOP l 0.05", "_\r\n");
    // Errors.
    a.exchange("BLPOP l -1", "-ERR timeout is negative\r\n");
    a.exchange(
        "BLPOP l abc",
        "-ERR timeout is not a float or out of range\r\n",
    );
    b.exchange("SET s v", "+OK\r\n");
    a.exchange(
        "BLPOP s 0",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
}

#[test]
fn fifo_order_and_multiple_keys() {
    let srv = Server::start(&["--threads", "3"]);
    let mut con = srv.client();
    let mut c1 = srv.raw();
    let mut c2 = srv.raw();
    let mut c3 = srv.raw();
    c1.send_line("BLPOP q 0");
    wait_blocked(&mut con, 1);
    c2.send_line("BLPOP other q 0");
    wait_blocked(&mut con, 2);
    c3.send_line("BLPOP q 0");
    wait_blocked(&mut con, 3);
    let _: () = redis::cmd("RPUSH")
        .arg("q")
        .arg("1")
        .arg("2")
        .arg("3")
        .query(&mut con)
        .unwrap();
    c1.expect("*2\r\n$1\r\nq\r\n$1\r\n1\r\n");
    c2.expect("*2\r\n$1\r\nq\r\n$1\r\n2\r\n");
    c3.expect("*2\r\n$1\r\nq\r\n$1\r\n3\r\n");
    // A waiter on several keys gets whichever becomes ready first.
    c1.send_line("BLPOP k1 k2 k3 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("RPUSH")
        .arg("k3")
        .arg("v3")
        .query(&mut con)
        .unwrap();
    c1.expect("*2\r\n$2\r\nk3\r\n$2\r\nv3\r\n");
    wait_blocked(&mut con, 0);
    // Its registrations on k1, k2 are gone: a later push stays in the list.
    let _: () = redis::cmd("RPUSH")
        .arg("k1")
        .arg("v1")
        .query(&mut con)
        .unwrap();
    let n: u64 = redis::cmd("LLEN").arg("k1").query(&mut con).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn every_element_delivered_exactly_once() {
    let srv = Server::start(&["--threads", "3"]);
    let port = srv.port;
    let consumers = 12;
    let per_producer = 300;
    let producers = 4;
    let total = per_producer * producers;
    let handles: Vec<_> = (0..consumers)
        .map(|_| {
            std::thread::spawn(move || {
                let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let mut got = Vec::new();
                loop {
                    let r: Option<(String, String)> = redis::cmd("BLPOP")
                        .arg("jobs")
                        .arg("1")
                        .query(&mut con)
                        .unwrap();
                    match r {
                        Some((_, v)) if v == "stop" => return got,
                        Some((_, v)) => got.push(v),
                        None => {}
                    }
                }
            })
        })
        .collect();
    let prods: Vec<_> = (0..producers)
        .map(|p| {
            std::thread::spawn(move || {
                let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for i in 0..per_producer {
                    let _: () = redis::cmd("RPUSH")
                        .arg("jobs")
                        .arg(format!("{p}:{i}"))
                        .query(&mut con)
                        .unwrap();
                }
            })
        })
        .collect();
    for p in prods {
        p.join().unwrap();
    }
    let mut con = srv.client();
    for _ in 0..consumers {
        let _: () = redis::cmd("RPUSH")
            .arg("jobs")
            .arg("stop")
            .query(&mut con)
            .unwrap();
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    assert_eq!(all.len(), total, "lost or duplicated elements");
    let set: HashSet<_> = all.iter().collect();
    assert_eq!(set.len(), total, "duplicates delivered");
}

#[test]
fn blmove_same_and_cross_shard() {
    let srv = Server::start(&["--threads", "3"]);
    let mut con = srv.client();
    let mut a = srv.raw();
    // Same shard (shared hash tag): served inside the writer's lock.
    a.send_line("BLMOVE {t}src {t}dst RIGHT LEFT 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("RPUSH")
        .arg("{t}src")
        .arg("e1")
        .query(&mut con)
        .unwrap();
    a.expect("$2\r\ne1\r\n");
    let v: Vec<String> = redis::cmd("LRANGE")
        .arg("{t}dst")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(v, vec!["e1"]);
    // Different shards: the client re-runs the move itself.
    a.send_line("BRPOPLPUSH src9 dst9 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("RPUSH")
        .arg("src9")
        .arg("e2")
        .query(&mut con)
        .unwrap();
    a.expect("$2\r\ne2\r\n");
    let v: Vec<String> = redis::cmd("LRANGE")
        .arg("dst9")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(v, vec!["e2"]);
    let n: u64 = redis::cmd("EXISTS").arg("src9").query(&mut con).unwrap();
    assert_eq!(n, 0);
    // Timed out: a null array, as Redis 7.2 (a BLMOVE inside MULTI gets a null bulk string).
    a.exchange("BLMOVE nothing x LEFT LEFT 0.05", "*-1\r\n");
}

#[test]
fn blmpop_and_sorted_sets() {
    let srv = Server::start(&["--threads", "3"]);
    let mut con = srv.client();
    let mut a = srv.raw();
    a.send_line("BLMPOP 0 2 l1 l2 RIGHT COUNT 2");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("RPUSH")
        .arg("l2")
        .arg("a")
        .arg("b")
        .arg("c")
        .query(&mut con)
        .unwrap();
    a.expect("*2\r\n$2\r\nl2\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    a.send_line("BZPOPMIN z1 z2 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("ZADD")
        .arg("z2")
        .arg(5)
        .arg("m5")
        .arg(2)
        .arg("m2")
        .query(&mut con)
        .unwrap();
    a.expect("*3\r\n$2\r\nz2\r\n$2\r\nm2\r\n$1\r\n2\r\n");
    a.send_line("BZMPOP 0 1 z3 MAX COUNT 5");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("ZADD")
        .arg("z3")
        .arg(1)
        .arg("x")
        .arg(2)
        .arg("y")
        .query(&mut con)
        .unwrap();
    a.expect("*2\r\n$2\r\nz3\r\n*2\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n*2\r\n$1\r\nx\r\n$1\r\n1\r\n");
    a.exchange("BZPOPMAX z3 0.05", "*-1\r\n");
}

#[test]
fn client_unblock_and_disconnect() {
    let srv = Server::start(&["--threads", "3"]);
    let mut con = srv.client();
    let mut a = srv.raw();
    let id: i64 = {
        a.send_line("CLIENT ID");
        let mut tmp = [0u8; 64];
        let n = a.read(&mut tmp).unwrap();
        String::from_utf8_lossy(&tmp[1..n - 2]).parse().unwrap()
    };
    a.send_line("BLPOP u 0");
    wait_blocked(&mut con, 1);
    let r: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 1);
    a.expect("*-1\r\n");
    a.send_line("BLPOP u 0");
    wait_blocked(&mut con, 1);
    let r: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .arg("ERROR")
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 1);
    a.expect("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    let r: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 0);
    // A client that disconnects while blocked takes nothing with it.
    a.send_line("BLPOP gone 0");
    wait_blocked(&mut con, 1);
    drop(a);
    wait_blocked(&mut con, 0);
    let _: () = redis::cmd("RPUSH")
        .arg("gone")
        .arg("kept")
        .query(&mut con)
        .unwrap();
    let n: u64 = redis::cmd("LLEN").arg("gone").query(&mut con).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn pipeline_behind_a_blocked_command_runs_after_it() {
    let srv = Server::start(&["--threads", "3"]);
    let mut con = srv.client();
    let mut a = srv.raw();
    let req = "*3\r\n$5\r\nBLPOP\r\n$1\r\np\r\n$1\r\n0\r\n*2\r\n$3\r\nGET\r\n$1\r\ng\r\n";
    a.write_all(req.as_bytes()).unwrap();
    wait_blocked(&mut con, 1);
    a.quiet(100);
    let _: () = redis::cmd("SET")
        .arg("g")
        .arg("after")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("p")
        .arg("v")
        .query(&mut con)
        .unwrap();
    a.expect("*2\r\n$1\r\np\r\n$1\r\nv\r\n$5\r\nafter\r\n");
}

#[test]
fn keys_arriving_by_rename_move_and_swapdb_wake_waiters() {
    let srv = Server::start(&["--threads", "3"]);
    let mut con = srv.client();
    let mut a = srv.raw();
    a.send_line("BLPOP target 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("RPUSH")
        .arg("source")
        .arg("r")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("RENAME")
        .arg("source")
        .arg("target")
        .query(&mut con)
        .unwrap();
    a.expect("*2\r\n$6\r\ntarget\r\n$1\r\nr\r\n");
    // A key overwritten with another type keeps its waiter blocked.
    a.send_line("BLPOP t2 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("SET")
        .arg("t2")
        .arg("string")
        .query(&mut con)
        .unwrap();
    a.quiet(150);
    let _: () = redis::cmd("DEL").arg("t2").query(&mut con).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("t2")
        .arg("ok")
        .query(&mut con)
        .unwrap();
    a.expect("*2\r\n$2\r\nt2\r\n$2\r\nok\r\n");
    // SWAPDB brings a list into the waiter's database.
    a.send_line("BLPOP swapped 0");
    wait_blocked(&mut con, 1);
    let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("swapped")
        .arg("s")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
    a.expect("*2\r\n$7\r\nswapped\r\n$1\r\ns\r\n");
}
