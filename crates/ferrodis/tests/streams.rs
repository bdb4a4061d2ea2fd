//! Integration tests for streams: the built `ferrodis` binary is started on a free port and driven over TCP
//! with the `redis` crate (and a raw socket for exact bytes): XREAD/XREADGROUP BLOCK woken by XADD from
//! another connection, 7.2/7.4 replies the differential test cannot check against Redis 7.0 (XREAD `+`,
//! XINFO CONSUMERS, XINFO STREAM [FULL]), and a job queue with several consumers in one group, one of which
//! is killed mid-work, its jobs recovered with XAUTOCLAIM, every job acknowledged exactly once.

use redis::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--threads",
                    "3",
                ])
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

    fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn q(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .unwrap_or_else(|e| Value::SimpleString(format!("ERR:{e}")))
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn arr(v: Vec<Value>) -> Value {
    Value::Array(v)
}

fn entry(id: &str, kv: &[&str]) -> Value {
    arr(vec![bulk(id), arr(kv.iter().map(|s| bulk(s)).collect())])
}

fn blocked_clients(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn wait_blocked(con: &mut redis::Connection, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(con) != n {
        assert!(Instant::now() < deadline, "expected {n} blocked clients");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Send a raw command line and read what arrives within `wait`.
fn raw_cmd(s: &mut TcpStream, line: &str, wait: Duration) -> String {
    s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    read_for(s, wait)
}

fn read_for(s: &mut TcpStream, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {
                if !got.is_empty() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn xread_block_is_woken_by_xadd() {
    let srv = Server::start();
    let mut con = srv.client();
    let port = srv.port;
    // `$` resolves when the reader blocks: it gets only what comes after.
    q(&mut con, &["XADD", "s", "1-1", "old", "x"]);
    let reader = thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        q(
            &mut c,
            &["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "$", "$"],
        )
    });
    wait_blocked(&mut con, 1);
    q(&mut con, &["XADD", "s", "2-1", "new", "y"]);
    let got = reader.join().unwrap();
    assert_eq!(
        got,
        arr(vec![arr(vec![
            bulk("s"),
            arr(vec![entry("2-1", &["new", "y"])])
        ])])
    );
    // Several readers on one key are all served by one XADD (nothing is consumed).
    let readers: Vec<_> = (0..3)
        .map(|_| {
            thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                q(
                    &mut c,
                    &[
                        "XREAD", "COUNT", "5", "BLOCK", "5000", "STREAMS", "s", "2-1",
                    ],
                )
            })
        })
        .collect();
    wait_blocked(&mut con, 3);
    q(&mut con, &["XADD", "s", "3-1", "f", "v"]);
    for r in readers {
        assert_eq!(
            r.join().unwrap(),
            arr(vec![arr(vec![
                bulk("s"),
                arr(vec![entry("3-1", &["f", "v"])])
            ])])
        );
    }
    // Timeout: a nil reply after about the time asked.
    let t = Instant::now();
    assert_eq!(
        q(&mut con, &["XREAD", "BLOCK", "150", "STREAMS", "s", "$"]),
        Value::Nil
    );
    assert!(t.elapsed() >= Duration::from_millis(140));
    // Inside MULTI a blocking read answers at once.
    let mut raw = srv.raw();
    let got = raw_cmd(
        &mut raw,
        "MULTI\r\nXREAD BLOCK 0 STREAMS s $\r\nEXEC",
        Duration::from_millis(500),
    );
    assert_eq!(got, "+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n");
    // RESP3: a map keyed by stream.
    let got = raw_cmd(&mut raw, "HELLO 3", Duration::from_millis(200));
    assert!(got.starts_with('%'));
    let got = raw_cmd(&mut raw, "XREAD STREAMS s 2-1", Duration::from_millis(300));
    assert_eq!(
        got,
        "%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    let got = raw_cmd(
        &mut raw,
        "XREAD BLOCK 10 STREAMS s $",
        Duration::from_millis(300),
    );
    assert_eq!(got, "_\r\n");
}

#[test]
fn xread_plus_returns_last_entry() {
    let srv = Server::start();
    let mut con = srv.client();
    assert_eq!(q(&mut con, &["XREAD", "STREAMS", "s", "+"]), Value::Nil);
    q(&mut con, &["XADD", "s", "1-1", "a", "1"]);
    q(&mut con, &["XADD", "s", "2-1", "a", "2"]);
    assert_eq!(
        q(&mut con, &["XREAD", "STREAMS", "s", "+"]),
        arr(vec![arr(vec![
            bulk("s"),
            arr(vec![entry("2-1", &["a", "2"])])
        ])])
    );
    // XREADGROUP does not take `+` as "last": it is an invalid ID there.
    q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);
    assert_eq!(
        q(&mut con, &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "+"]),
        Value::SimpleString(
            "ERR:An error was signalled by the server - ResponseError: Invalid stream ID specified as stream command argument".into()
        )
    );
}

#[test]
fn xreadgroup_block_updates_group_inside_the_writer_lock() {
    let srv = Server::start();
    let mut con = srv.client();
    let port = srv.port;
    q(
        &mut con,
        &["XGROUP", "CREATE", "jobs", "g", "$", "MKSTREAM"],
    );
    let readers: Vec<_> = ["c1", "c2"]
        .into_iter()
        .map(|name| {
            thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                (
                    name,
                    q(
                        &mut c,
                        &[
                            "XREADGROUP",
                            "GROUP",
                            "g",
                            name,
                            "COUNT",
                            "1",
                            "BLOCK",
                            "0",
                            "STREAMS",
                            "jobs",
                            ">",
                        ],
                    ),
                )
            })
        })
        .collect();
    wait_blocked(&mut con, 2);
    // One XADD: exactly one of the two readers gets it; the other stays blocked.
    q(&mut con, &["XADD", "jobs", "1-0", "job", "a"]);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(blocked_clients(&mut con), 1);
    q(&mut con, &["XADD", "jobs", "2-0", "job", "b"]);
    let mut got: Vec<(String, Value)> = readers
        .into_iter()
        .map(|r| {
            let (n, v) = r.join().unwrap();
            (n.to_string(), v)
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<String> = got
        .iter()
        .map(|(_, v)| match v {
            Value::Array(s) => match &s[0] {
                Value::Array(kv) => match &kv[1] {
                    Value::Array(es) => {
                        assert_eq!(es.len(), 1);
                        match &es[0] {
                            Value::Array(e) => match &e[0] {
                                Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                                x => panic!("{x:?}"),
                            },
                            x => panic!("{x:?}"),
                        }
                    }
                    x => panic!("{x:?}"),
                },
                x => panic!("{x:?}"),
            },
            x => panic!("{x:?}"),
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["1-0", "2-0"]);
    // The group advanced and the PEL holds both, owned by whoever got them.
    let pending = q(&mut con, &["XPENDING", "jobs", "g"]);
    match pending {
        Value::Array(p) => {
            assert_eq!(p[0], Value::Int(2));
            assert_eq!(p[1], bulk("1-0"));
            assert_eq!(p[2], bulk("2-0"));
        }
        x => panic!("{x:?}"),
    }
    let groups = q(&mut con, &["XINFO", "GROUPS", "jobs"]);
    let s = format!("{groups:?}");
    assert!(s.contains("last-delivered-id"), "{s}");
    assert!(s.contains("\"2-0\"") || s.contains("2-0"), "{s}");
    // Destroying the group wakes a blocked reader with an error.
    let waiter = thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c3",
                "BLOCK",
                "0",
                "STREAMS",
                "jobs",
                ">",
            ],
        )
    });
    wait_blocked(&mut con, 1);
    assert_eq!(
        q(&mut con, &["XGROUP", "DESTROY", "jobs", "g"]),
        Value::Int(1)
    );
    match waiter.join().unwrap() {
        Value::SimpleString(e) => assert!(e.contains("NOGROUP"), "{e}"),
        x => panic!("{x:?}"),
    }
    // Deleting the stream wakes one too.
    q(&mut con, &["XGROUP", "CREATE", "jobs", "g", "$"]);
    let waiter = thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        q(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c3",
                "BLOCK",
                "0",
                "STREAMS",
                "jobs",
                ">",
            ],
        )
    });
    wait_blocked(&mut con, 1);
    q(&mut con, &["DEL", "jobs"]);
    match waiter.join().unwrap() {
        Value::SimpleString(e) => assert!(e.contains("UNBLOCKED"), "{e}"),
        x => panic!("{x:?}"),
    }
}

#[test]
fn xinfo_replies() {
    let srv = Server::start();
    let mut con = srv.client();
    for i in 1..=3 {
        q(
            &mut con,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);
    q(&mut con, &["XGROUP", "CREATECONSUMER", "s", "g", "idle"]);
    q(
        &mut con,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    q(&mut con, &["XDEL", "s", "3-0"]);
    let mut raw = srv.raw();
    let got = raw_cmd(&mut raw, "XINFO STREAM s", Duration::from_millis(300));
    assert!(got.starts_with("*20\r\n$6\r\nlength\r\n:2\r\n"), "{got}");
    assert!(
        got.contains("$20\r\nmax-deleted-entry-id\r\n$3\r\n3-0\r\n"),
        "{got}"
    );
    assert!(got.contains("$13\r\nentries-added\r\n:3\r\n"), "{got}");
    assert!(
        got.contains("$11\r\nfirst-entry\r\n*2\r\n$3\r\n1-0\r\n"),
        "{got}"
    );
    assert!(
        got.contains("$10\r\nlast-entry\r\n*2\r\n$3\r\n2-0\r\n"),
        "{got}"
    );
    let got = raw_cmd(&mut raw, "XINFO CONSUMERS s g", Duration::from_millis(300));
    assert!(
        got.starts_with(
            "*2\r\n*8\r\n$4\r\nname\r\n$1\r\nc\r\n$7\r\npending\r\n:2\r\n$4\r\nidle\r\n:"
        ),
        "{got}"
    );
    assert!(
        got.contains("$4\r\nidle\r\n$7\r\npending\r\n:0\r\n$4\r\nidle\r\n:"),
        "{got}"
    );
    assert!(got.ends_with("$8\r\ninactive\r\n:-1\r\n"), "{got}");
    let got = raw_cmd(
        &mut raw,
        "XINFO STREAM s FULL COUNT 1",
        Duration::from_millis(300),
    );
    assert!(got.starts_with("*18\r\n"), "{got}");
    assert!(
        got.contains("$7\r\nentries\r\n*1\r\n*2\r\n$3\r\n1-0\r\n"),
        "{got}"
    );
    assert!(got.contains("$9\r\npel-count\r\n:2\r\n"), "{got}");
    assert!(got.contains("$11\r\nactive-time\r\n:"), "{got}");
    // Redis 7.2.4: a subcommand syntax error, naming the subcommand as typed.
    let got = raw_cmd(&mut raw, "XINFO STREAM s FOO", Duration::from_millis(300));
    assert_eq!(
        got,
        "-ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.\r\n"
    );
    let got = raw_cmd(&mut raw, "XINFO STREAM nokey", Duration::from_millis(300));
    assert_eq!(got, "-ERR no such key\r\n");
    let got = raw_cmd(
        &mut raw,
        "XINFO CONSUMERS s nog",
        Duration::from_millis(300),
    );
    assert_eq!(
        got,
        "-NOGROUP No such consumer group 'nog' for key name 's'\r\n"
    );
    // RESP3 maps.
    raw_cmd(&mut raw, "HELLO 3", Duration::from_millis(200));
    let got = raw_cmd(&mut raw, "XINFO GROUPS s", Duration::from_millis(300));
    assert!(
        got.starts_with("*1\r\n%6\r\n$4\r\nname\r\n$1\r\ng\r\n"),
        "{got}"
    );
    assert!(
        got.contains("$12\r\nentries-read\r\n:2\r\n$3\r\nlag\r\n_\r\n"),
        "{got}"
    );
}

/// Several consumers in one group on their own connections; one dies holding jobs; XAUTOCLAIM hands them
/// to a survivor; every job is acknowledged exactly once.
#[test]
fn job_queue_with_crash_and_autoclaim() {
    let srv = Server::start();
    let port = srv.port;
    let mut con = srv.client();
    const JOBS: usize = 300;
    q(
        &mut con,
        &["XGROUP", "CREATE", "queue", "workers", "$", "MKSTREAM"],
    );
    let acked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();

    // The doomed worker takes a few jobs on a raw connection and dies without acknowledging them.
    for i in 0..5 {
        q(&mut con, &["XADD", "queue", "*", "job", &i.to_string()]);
    }
    let mut doomed = srv.raw();
    let got = raw_cmd(
        &mut doomed,
        "XREADGROUP GROUP workers doomed COUNT 5 STREAMS queue >",
        Duration::from_millis(500),
    );
    assert!(
        got.starts_with("*1\r\n*2\r\n$5\r\nqueue\r\n*5\r\n"),
        "{got}"
    );
    drop(doomed);

    let workers: Vec<_> = (0..3)
        .map(|w| {
            let acked = acked.clone();
            thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let name = format!("w{w}");
                let mut idle_rounds = 0;
                loop {
                    let v = q(
                        &mut c,
                        &[
                            "XREADGROUP",
                            "GROUP",
                            "workers",
                            &name,
                            "COUNT",
                            "7",
                            "BLOCK",
                            "100",
                            "STREAMS",
                            "queue",
                            ">",
                        ],
                    );
                    let ids: Vec<String> = match v {
                        Value::Nil => Vec::new(),
                        Value::Array(s) => match &s[0] {
                            Value::Array(kv) => match &kv[1] {
                                Value::Array(es) => es
                                    .iter()
                                    .map(|e| match e {
                                        Value::Array(e) => match &e[0] {
                                            Value::BulkString(b) => {
                                                String::from_utf8(b.clone()).unwrap()
                                            }
                                            x => panic!("{x:?}"),
                                        },
                                        x => panic!("{x:?}"),
                                    })
                                    .collect(),
                                x => panic!("{x:?}"),
                            },
                            x => panic!("{x:?}"),
                        },
                        x => panic!("{x:?}"),
                    };
                    if ids.is_empty() {
                        idle_rounds += 1;
                        if idle_rounds > 5 {
                            return;
                        }
                        continue;
                    }
                    idle_rounds = 0;
                    for id in ids {
                        let n = q(&mut c, &["XACK", "queue", "workers", &id]);
                        if n == Value::Int(1) {
                            *acked.lock().unwrap().entry(id).or_default() += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for i in 5..JOBS {
        q(&mut con, &["XADD", "queue", "*", "job", &i.to_string()]);
        if i % 50 == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    for w in workers {
        w.join().unwrap();
    }
    // The dead worker's jobs are still pending; a survivor claims them with XAUTOCLAIM and acks them.
    let pending = q(&mut con, &["XPENDING", "queue", "workers"]);
    match &pending {
        Value::Array(p) => assert_eq!(p[0], Value::Int(5), "{pending:?}"),
        x => panic!("{x:?}"),
    }
    thread::sleep(Duration::from_millis(20));
    let claimed = q(
        &mut con,
        &[
            "XAUTOCLAIM",
            "queue",
            "workers",
            "rescuer",
            "10",
            "0",
            "COUNT",
            "100",
        ],
    );
    let ids: Vec<String> = match claimed {
        Value::Array(v) => {
            assert_eq!(v[0], bulk("0-0"));
            assert_eq!(v[2], arr(vec![]));
            match &v[1] {
                Value::Array(es) => es
                    .iter()
                    .map(|e| match e {
                        Value::Array(e) => match &e[0] {
                            Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                            x => panic!("{x:?}"),
                        },
                        x => panic!("{x:?}"),
                    })
                    .collect(),
                x => panic!("{x:?}"),
            }
        }
        x => panic!("{x:?}"),
    };
    assert_eq!(ids.len(), 5);
    for id in ids {
        assert_eq!(
            q(&mut con, &["XACK", "queue", "workers", &id]),
            Value::Int(1)
        );
        *acked.lock().unwrap().entry(id).or_default() += 1;
    }
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), JOBS);
    assert!(acked.values().all(|&n| n == 1));
    match q(&mut con, &["XPENDING", "queue", "workers"]) {
        Value::Array(p) => assert_eq!(p[0], Value::Int(0)),
        x => panic!("{x:?}"),
    }
    assert_eq!(q(&mut con, &["XLEN", "queue"]), Value::Int(JOBS as i64));
}

#[test]
fn command_table_and_events() {
    let srv = Server::start();
    let mut con = srv.client();
    assert_eq!(
        q(
            &mut con,
            &["COMMAND", "GETKEYS", "XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"]
        ),
        arr(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(
        q(
            &mut con,
            &[
                "COMMAND",
                "GETKEYS",
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "STREAMS",
                "k",
                ">"
            ]
        ),
        arr(vec![bulk("k")])
    );
    // Keyspace notifications for stream events.
    q(
        &mut con,
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    );
    let mut sub = srv.raw();
    let got = raw_cmd(
        &mut sub,
        "SUBSCRIBE __keyspace@0__:ev",
        Duration::from_millis(300),
    );
    assert!(got.contains("subscribe"), "{got}");
    q(&mut con, &["XADD", "ev", "MAXLEN", "1", "1-0", "a", "1"]);
    q(&mut con, &["XADD", "ev", "MAXLEN", "1", "2-0", "a", "1"]);
    q(&mut con, &["XDEL", "ev", "2-0"]);
    q(&mut con, &["XGROUP", "CREATE", "ev", "g", "0"]);
    q(&mut con, &["XGROUP", "SETID", "ev", "g", "0"]);
    q(&mut con, &["XGROUP", "CREATECONSUMER", "ev", "g", "c"]);
    q(&mut con, &["XGROUP", "DELCONSUMER", "ev", "g", "c"]);
    q(&mut con, &["XGROUP", "DESTROY", "ev", "g"]);
    q(&mut con, &["XSETID", "ev", "5-0"]);
    let got = read_for(&mut sub, Duration::from_millis(500));
    let events: Vec<&str> = got.split("\r\n").filter(|l| l.starts_with('x')).collect();
    assert_eq!(
        events,
        vec![
            "xadd",
            "xadd",
            "xtrim",
            "xdel",
            "xgroup-create",
            "xgroup-setid",
            "xgroup-createconsumer",
            "xgroup-delconsumer",
            "xgroup-destroy",
            "xsetid"
        ],
        "{got}"
    );
}

/// Readers of two groups blocked on one stream: one XADD serves one consumer of EACH group, past the
/// second consumer of the first group, which finds nothing and stays blocked.
#[test]
fn one_xadd_serves_every_group() {
    let srv = Server::start();
    let mut con = srv.client();
    let port = srv.port;
    q(&mut con, &["XGROUP", "CREATE", "s", "ga", "$", "MKSTREAM"]);
    q(&mut con, &["XGROUP", "CREATE", "s", "gb", "$"]);
    let mut readers = Vec::new();
    for (i, (g, c)) in [("ga", "a1"), ("ga", "a2"), ("gb", "b1")]
        .into_iter()
        .enumerate()
    {
        readers.push(thread::spawn(move || {
            let mut k = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            q(
                &mut k,
                &[
                    "XREADGROUP",
                    "GROUP",
                    g,
                    c,
                    "BLOCK",
                    "2000",
                    "STREAMS",
                    "s",
                    ">",
                ],
            )
        }));
        wait_blocked(&mut con, i as u64 + 1);
    }
    q(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    let got: Vec<Value> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let want = arr(vec![arr(vec![
        bulk("s"),
        arr(vec![entry("1-0", &["f", "v"])]),
    ])]);
    assert_eq!(got[0], want);
    assert_eq!(got[1], Value::Nil);
    assert_eq!(got[2], want);
}

/// An XREAD waiter asking for IDs after a future one does not hold up the readers behind it.
#[test]
fn xread_waiter_after_a_future_id_does_not_block_the_queue() {
    let srv = Server::start();
    let mut con = srv.client();
    let port = srv.port;
    q(&mut con, &["XADD", "s", "1-0", "f", "v"]);
    let mut readers = Vec::new();
    for (i, id) in ["100-0", "$"].into_iter().enumerate() {
        readers.push(thread::spawn(move || {
            let mut k = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            q(&mut k, &["XREAD", "BLOCK", "1000", "STREAMS", "s", id])
        }));
        wait_blocked(&mut con, i as u64 + 1);
    }
    q(&mut con, &["XADD", "s", "2-0", "f", "w"]);
    let got: Vec<Value> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(got[0], Value::Nil);
    assert_eq!(
        got[1],
        arr(vec![arr(vec![
            bulk("s"),
            arr(vec![entry("2-0", &["f", "w"])])
        ])])
    );
}
