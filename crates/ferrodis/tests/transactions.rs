//! Transactions across clients and threads: optimistic locking with WATCH never loses an update, EXEC is
//! isolated from readers on other threads, a WATCHed key touched by another client aborts EXEC.

mod common;

use common::{connect, Server};
use std::time::{Duration, Instant};

#[test]
fn watch_multi_counter_loses_no_update() {
    let srv = Server::start(&["--threads", "4"]);
    let port = srv.port;
    let (clients, increments) = (8, 150);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut con = connect(port);
                let mut retries = 0;
                for _ in 0..increments {
                    loop {
                        let _: () = redis::cmd("WATCH").arg("counter").query(&mut con).unwrap();
                        let v: Option<i64> =
                            redis::cmd("GET").arg("counter").query(&mut con).unwrap();
                        let next = v.unwrap_or(0) + 1;
                        let r: Option<(String,)> = redis::pipe()
                            .atomic()
                            .cmd("SET")
                            .arg("counter")
                            .arg(next)
                            .query(&mut con)
                            .unwrap();
                        if r.is_some() {
                            break;
                        }
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect();
    let retries: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut con = srv.client();
    let v: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(v, clients * increments, "lost updates");
    // With 8 clients racing, some EXECs must have been refused (otherwise WATCH did nothing).
    assert!(retries > 0, "no transaction was ever aborted");
}

#[test]
fn exec_is_isolated_across_shards_and_threads() {
    let srv = Server::start(&["--threads", "4"]);
    let port = srv.port;
    // Keys on different shards.
    let keys = ["alpha", "bravo", "charlie", "delta"];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            std::thread::spawn(move || {
                let mut con = connect(port);
                for i in 0..300 {
                    let v = format!("{w}-{i}");
                    let mut p = redis::pipe();
                    p.atomic();
                    for k in keys {
                        p.cmd("SET").arg(k).arg(&v).ignore();
                    }
                    let _: () = p.query(&mut con).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut con = connect(port);
                let mut checks = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let vals: Vec<Option<String>> =
                        redis::cmd("MGET").arg(&keys[..]).query(&mut con).unwrap();
                    assert!(
                        vals.windows(2).all(|w| w[0] == w[1]),
                        "torn transaction seen: {vals:?}"
                    );
                    // The same check inside a transaction of the reader's own.
                    let (vals,): (Vec<Option<String>>,) = redis::pipe()
                        .atomic()
                        .cmd("MGET")
                        .arg(&keys[..])
                        .query(&mut con)
                        .unwrap();
                    assert!(
                        vals.windows(2).all(|w| w[0] == w[1]),
                        "torn transaction seen: {vals:?}"
                    );
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn watched_key_touched_by_another_client_aborts() {
    let srv = Server::start(&["--threads", "4"]);
    let mut a = srv.client();
    let mut b = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("1").query(&mut a).unwrap();
    let _: () = redis::cmd("WATCH").arg("k").query(&mut a).unwrap();
    let _: () = redis::cmd("INCR").arg("k").query(&mut b).unwrap();
    let r: Option<(i64,)> = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("k")
        .query(&mut a)
        .unwrap();
    assert_eq!(r, None);
    // A key that expires between WATCH and EXEC aborts too.
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("1")
        .arg("PX")
        .arg(50)
        .query(&mut a)
        .unwrap();
    let _: () = redis::cmd("WATCH").arg("t").query(&mut a).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let r: Option<(String,)> = redis::pipe().atomic().cmd("PING").query(&mut a).unwrap();
    assert_eq!(r, None);
    // SWAPDB touches watched keys that exist in either database.
    let _: () = redis::cmd("SET").arg("s").arg("1").query(&mut a).unwrap();
    let _: () = redis::cmd("WATCH").arg("s").query(&mut a).unwrap();
    let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query(&mut b).unwrap();
    let r: Option<(String,)> = redis::pipe().atomic().cmd("PING").query(&mut a).unwrap();
    assert_eq!(r, None);
    // And an untouched watch lets EXEC run.
    let _: () = redis::cmd("WATCH").arg("quiet").query(&mut a).unwrap();
    let r: Option<(String,)> = redis::pipe().atomic().cmd("PING").query(&mut a).unwrap();
    assert_eq!(r, Some(("PONG".to_string(),)));
}

#[test]
fn push_inside_exec_serves_a_blocked_client() {
    let srv = Server::start(&["--threads", "4"]);
    let port = srv.port;
    let waiter = std::thread::spawn(move || {
        let mut con = connect(port);
        let r: Option<(String, String)> = redis::cmd("BLPOP")
            .arg("jobs")
            .arg(5)
            .query(&mut con)
            .unwrap();
        r
    });
    let mut con = srv.client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
        if info.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let _: () = redis::pipe()
        .atomic()
        .cmd("RPUSH")
        .arg("jobs")
        .arg("j1")
        .ignore()
        .cmd("SET")
        .arg("x")
        .arg("y")
        .ignore()
        .query(&mut con)
        .unwrap();
    assert_eq!(waiter.join().unwrap(), Some(("jobs".into(), "j1".into())));
}
