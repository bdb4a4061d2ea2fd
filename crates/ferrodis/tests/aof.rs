//! AOF (Redis 7 multi-part layout): every type survives a restart, rewrites, crash safety with
//! `appendfsync always`, torn tails and corruption, timestamps, and interop with Debian's redis-server.

mod common;

use common::{query, Server};
use redis::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A fresh directory for a server's files (kept across restarts, removed on drop).
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "ferrodis-aof-{tag}-{}-{}",
            std::process::id(),
            common::free_port()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn s(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn aofdir(&self) -> PathBuf {
        self.0.join("appendonlydir")
    }

    fn manifest(&self) -> String {
        std::fs::read_to_string(self.aofdir().join("appendonly.aof.manifest")).unwrap_or_default()
    }

    /// The last incr file named by the manifest.
    fn last_incr(&self) -> PathBuf {
        let m = self.manifest();
        let name = m
            .lines()
            .rfind(|l| l.ends_with("type i"))
            .and_then(|l| l.split(' ').nth(1))
            .expect("an incr file in the manifest")
            .to_string();
        self.aofdir().join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(dir: &Dir, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.s(), "--appendonly", "yes"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Run the binary on `dir` expecting it to refuse to start: returns (exit code, log output).
fn start_fails(dir: &Dir, extra: &[&str]) -> (i32, String) {
    let port = common::free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.s(),
            "--appendonly",
            "yes",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), log)
}

fn info(con: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from INFO"))
        .trim()
        .to_string()
}

fn wait_rewrite(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while info(con, "aof_rewrite_in_progress") != "0" || info(con, "aof_rewrite_scheduled") != "0" {
        assert!(Instant::now() < deadline, "rewrite did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn v(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Nil => "(nil)".into(),
        Value::Array(a) | Value::Set(a) => {
            format!("[{}]", a.iter().map(text).collect::<Vec<_>>().join(","))
        }
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}={}", text(k), text(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Everything in databases 0..4 as sorted text lines: key, type, TTL rounded to the second, value.
/// `idle_free`: leave out consumer idle times (they move with the clock).
fn dump(con: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in 0..4 {
        let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).unwrap();
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(con).unwrap();
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(con).unwrap();
            let val = match t.as_str() {
                "string" => text(&v(con, &["GET", &k])),
                "list" => text(&v(con, &["LRANGE", &k, "0", "-1"])),
                "set" => {
                    let mut m: Vec<String> = redis::cmd("SMEMBERS").arg(&k).query(con).unwrap();
                    m.sort();
                    m.join(",")
                }
                "zset" => text(&v(con, &["ZRANGE", &k, "0", "-1", "WITHSCORES"])),
                "hash" => {
                    let mut m: Vec<(String, String)> =
                        redis::cmd("HGETALL").arg(&k).query(con).unwrap();
                    m.sort();
                    format!("{m:?}")
                }
                "stream" => {
                    let mut s = text(&v(con, &["XRANGE", &k, "-", "+"]));
                    let groups: Vec<Value> = redis::cmd("XINFO")
                        .arg("GROUPS")
                        .arg(&k)
                        .query(con)
                        .unwrap();
                    for g in groups {
                        s.push_str(&text(&g));
                        let name = match &g {
                            Value::Array(a) => text(&a[1]),
                            Value::Map(m) => text(&m[0].1),
                            _ => String::new(),
                        };
                        s.push_str(
                            &text(&v(con, &["XPENDING", &k, &name, "-", "+", "100"]))
                                .split(',')
                                .enumerate()
                                // Drop the idle times (every 3rd item of each 4-tuple).
                                .filter(|(i, _)| i % 4 != 2)
                                .map(|(_, x)| x.to_string())
                                .collect::<Vec<_>>()
                                .join(","),
                        );
                    }
                    s
                }
                other => panic!("type {other}"),
            };
            let ttl = if at < 0 { at } else { at / 1000 };
            out.push(format!("db{db} {k} {t} ttl={ttl} {val}"));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(con).unwrap();
    out.sort();
    out
}

/// Writes of every type, with TTLs, rewrites of relative forms, transactions and served blocking pops.
fn write_everything(port: u16) {
    let mut c = common::connect(port);
    for cmd in [
        "SET s1 hello",
        "SET s2 v EX 1000",
        "SETEX s3 1000 v",
        "PSETEX s4 1000000 v",
        "SET gone v PX 1",
        "SET s5 v",
        "EXPIRE s5 2000",
        "SET s6 v",
        "PEXPIRE s6 -5",
        "SET s7 v",
        "GETEX s7 EX 3000",
        "SET s8 v EX 100",
        "GETEX s8 PERSIST",
        "SET s9 v",
        "GETDEL s9",
        "INCR n1",
        "INCRBY n1 41",
        "INCRBYFLOAT f1 0.1",
        "INCRBYFLOAT f1 0.2",
        "APPEND s1 world",
        "SETRANGE s1 0 J",
        "MSET m1 a m2 b",
        "RPUSH l1 a b c d e",
        "LPUSH l1 z",
        "LPOP l1",
        "LSET l1 0 A",
        "LINSERT l1 BEFORE c bc",
        "SADD set1 a b c d e f",
        "SPOP set1",
        "SPOP set1 2",
        "SADD set2 x y",
        "SPOP set2 5",
        "SADD iset 1 2 3",
        "ZADD z1 1 a 2 b 3 c 1.5 d",
        "ZINCRBY z1 0.25 a",
        "ZPOPMIN z1",
        "HSET h1 a 1 b 2 c x",
        "HINCRBY h1 a 10",
        "HINCRBYFLOAT h1 b 0.5",
        "HDEL h1 c",
        "XADD x1 * f v",
        "XADD x1 * g w",
        "XADD x3 5-* h u",
        "XADD x3 5-* h v",
        "XADD x2 MAXLEN 2 5-1 a 1",
        "XADD x2 MAXLEN 2 6-1 a 2",
        "XADD x2 MAXLEN 2 7-1 a 3",
        "XGROUP CREATE x1 g1 0",
        "XREADGROUP GROUP g1 alice COUNT 1 STREAMS x1 >",
        "XREADGROUP GROUP g1 bob NOACK COUNT 1 STREAMS x1 >",
        "XGROUP CREATE x1 g2 $",
        "XAUTOCLAIM x1 g1 carol 0 0-0 COUNT 1",
        "XGROUP CREATE x2 g3 0",
        "XREADGROUP GROUP g3 dave STREAMS x2 >",
        "XCLAIM x2 g3 erin 0 6-1 7-1 JUSTID",
        "XADD x4 MAXLEN ~ 2 * a 1",
        "XADD x4 MAXLEN ~ 2 * a 2",
        "XADD x4 MAXLEN ~ 2 * a 3",
        "XTRIM x4 MAXLEN ~ 1",
        "RENAME m2 m3",
        "SELECT 2",
        "SET other db2",
        "SELECT 0",
        "COPY s1 s1copy",
        "MOVE m1 3",
    ] {
        let words: Vec<&str> = cmd.split(' ').collect();
        let mut q = redis::cmd(words[0]);
        for w in &words[1..] {
            q.arg(*w);
        }
        let _: Value = q.query(&mut c).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
    // A transaction.
    let _: Value = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("t1")
        .arg("1")
        .cmd("INCR")
        .arg("t1")
        .cmd("EXPIRE")
        .arg("t1")
        .arg("5000")
        .query(&mut c)
        .unwrap();
    // Blocking pops served later by a writer, and served at once.
    for (cmd, key) in [("BLPOP", "bl"), ("BZPOPMIN", "bz")] {
        let port2 = port;
        let t = std::thread::spawn(move || {
            let mut c2 = common::connect(port2);
            let _: Value = redis::cmd(cmd).arg(key).arg(5).query(&mut c2).unwrap();
        });
        std::thread::sleep(Duration::from_millis(150));
        if key == "bl" {
            let _: Value = redis::cmd("RPUSH")
                .arg(key)
                .arg("p")
                .arg("q")
                .query(&mut c)
                .unwrap();
        } else {
            let _: Value = redis::cmd("ZADD")
                .arg(key)
                .arg(1)
                .arg("m")
                .arg(2)
                .arg("n")
                .query(&mut c)
                .unwrap();
        }
        t.join().unwrap();
    }
    let _: Value = redis::cmd("BLMOVE")
        .arg("l1")
        .arg("l2")
        .arg("LEFT")
        .arg("RIGHT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(10)); // "gone" has expired
    let _: Value = redis::cmd("GET").arg("gone").query(&mut c).unwrap();
}

#[test]
fn every_type_survives_restart_and_rewrite() {
    for preamble in ["no", "yes"] {
        let dir = Dir::new("types");
        let before;
        {
            let srv = start(&dir, &["--aof-use-rdb-preamble", preamble]);
            write_everything(srv.port);
            let mut c = srv.client();
            before = dump(&mut c);
            assert!(before.iter().any(|l| l.starts_with("db0 x1 stream")));
            let m = dir.manifest();
            let ext = if preamble == "yes" { "rdb" } else { "aof" };
            assert!(
                m.starts_with(&format!("file appendonly.aof.1.base.{ext} seq 1 type b\n")),
                "{m}"
            );
            assert!(
                m.contains("file appendonly.aof.1.incr.aof seq 1 type i\n"),
                "{m}"
            );
            // Killed without SHUTDOWN: what was acknowledged is in the file.
        }
        {
            let srv = start(&dir, &[]);
            let mut c = srv.client();
            assert_eq!(dump(&mut c), before, "after a restart from base + incr");
            // Rewrite, then more writes into the new incr file.
            assert_eq!(
                query::<String>(&mut c, &["BGREWRITEAOF"]),
                "Background append only file rewriting started"
            );
            wait_rewrite(&mut c);
            assert_eq!(info(&mut c, "aof_last_bgrewrite_status"), "ok");
            let _: () = query(&mut c, &["SET", "after-rewrite", "1"]);
            let m = dir.manifest();
            assert!(m.contains("seq 2 type b"), "{m}");
            assert!(m.contains("seq 2 type i"), "{m}");
            assert!(!m.contains("seq 1"), "{m}");
            let files: Vec<String> = std::fs::read_dir(dir.aofdir())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(files.len(), 3, "old files deleted: {files:?}");
        }
        let srv = start(&dir, &[]);
        let mut c = srv.client();
        let mut after = dump(&mut c);
        after.retain(|l| !l.contains("after-rewrite"));
        assert_eq!(after, before, "after a rewrite and a restart");
        assert_eq!(query::<String>(&mut c, &["GET", "after-rewrite"]), "1");
    }
}

#[test]
fn propagated_forms_are_absolute() {
    let dir = Dir::new("forms");
    let srv = start(&dir, &["--aof-use-rdb-preamble", "no"]);
    let mut c = srv.client();
    for cmd in [
        "SET a 1 EX 100",
        "EXPIRE a 200",
        "INCRBYFLOAT f 1.5",
        "GETDEL a",
        "SADD s x",
        "SPOP s",
        "XADD x * f v",
        "SET b 1",
        "EXPIRE b -1",
    ] {
        let words: Vec<&str> = cmd.split(' ').collect();
        let _: Value = redis::cmd(words[0]).arg(&words[1..]).query(&mut c).unwrap();
    }
    let _: Value = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("t")
        .arg("1")
        .cmd("SET")
        .arg("u")
        .arg("2")
        .query(&mut c)
        .unwrap();
    let incr = String::from_utf8_lossy(&std::fs::read(dir.last_incr()).unwrap()).into_owned();
    let flat = incr.replace("\r\n", " ");
    assert!(flat.starts_with("*2 $6 SELECT $1 0 "), "{flat}");
    assert!(flat.contains("$3 SET $1 a $1 1 $4 PXAT $13 "), "{flat}");
    assert!(flat.contains("$9 PEXPIREAT $1 a $13 "), "{flat}");
    assert!(flat.contains("$3 SET $1 f $3 1.5 $7 KEEPTTL"), "{flat}");
    assert!(flat.contains("*2 $3 DEL $1 a"), "{flat}");
    assert!(flat.contains("$4 SREM $1 s $1 x"), "{flat}");
    assert!(
        !flat.contains("$1 *"),
        "XADD's ID is the generated one: {flat}"
    );
    assert!(flat.contains("*2 $3 DEL $1 b"), "{flat}");
    assert!(
        flat.contains("*1 $5 MULTI *3 $3 SET $1 t $1 1 *3 $3 SET $1 u $1 2 *1 $4 EXEC"),
        "{flat}"
    );
}

#[test]
fn appendfsync_always_keeps_every_acknowledged_write() {
    for fsync in ["always", "everysec"] {
        let dir = Dir::new("crash");
        let acked: Vec<Arc<AtomicU64>> = (0..8).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let mut srv = start(&dir, &["--appendfsync", fsync]);
        let port = srv.port;
        let hs: Vec<_> = acked
            .iter()
            .enumerate()
            .map(|(t, n)| {
                let (n, stop) = (n.clone(), stop.clone());
                std::thread::spawn(move || {
                    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    else {
                        return;
                    };
                    let Ok(mut c) = client.get_connection() else {
                        return;
                    };
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let r: redis::RedisResult<()> = redis::cmd("SET")
                            .arg(format!("k{t}:{i}"))
                            .arg(i)
                            .query(&mut c);
                        if r.is_err() {
                            return;
                        }
                        n.store(i + 1, Ordering::SeqCst);
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        // SIGKILL in the middle of the load.
        srv.child().kill().unwrap();
        let _ = srv.child().wait();
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            h.join().unwrap();
        }
        drop(srv);
        let total: u64 = acked.iter().map(|n| n.load(Ordering::SeqCst)).sum();
        assert!(total > 0);
        let srv = start(&dir, &[]);
        let mut c = srv.client();
        for (t, n) in acked.iter().enumerate() {
            let n = n.load(Ordering::SeqCst);
            if n > 0 {
                let last: Option<String> = query(&mut c, &["GET", &format!("k{t}:{}", n - 1)]);
                assert_eq!(
                    last,
                    Some((n - 1).to_string()),
                    "{fsync}: thread {t} write {}",
                    n - 1
                );
            }
        }
        let dbsize: u64 = query(&mut c, &["DBSIZE"]);
        assert!(
            dbsize >= total,
            "{fsync}: {dbsize} keys < {total} acknowledged"
        );
    }
}

#[test]
fn truncated_tail_and_corruption() {
    let dir = Dir::new("trunc");
    {
        let srv = start(&dir, &[]);
        let mut c = srv.client();
        for i in 0..10 {
            let _: () = query(&mut c, &["SET", &format!("k{i}"), "v"]);
        }
    }
    let incr = dir.last_incr();
    let good = std::fs::read(&incr).unwrap();
    // A torn last command.
    let mut torn = good.clone();
    torn.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$2\r\nkx\r\n$5\r\nab");
    std::fs::write(&incr, &torn).unwrap();
    let (code, _) = start_fails(&dir, &["--aof-load-truncated", "no"]);
    assert_eq!(code, 1, "aof-load-truncated no refuses a torn tail");
    {
        let srv = start(&dir, &["--aof-load-truncated", "yes"]);
        let mut c = srv.client();
        let n: u64 = query(&mut c, &["DBSIZE"]);
        assert_eq!(n, 10);
        // The file was cut at the last complete command, and appending goes on after it.
        let _: () = query(&mut c, &["SET", "k10", "v"]);
    }
    let now = std::fs::read(&incr).unwrap();
    assert!(
        now.starts_with(&good) && !now[good.len()..].starts_with(b"*3\r\n$3\r\nSET\r\n$2\r\nkx")
    );
    {
        let srv = start(&dir, &[]);
        let n: u64 = query(&mut srv.client(), &["DBSIZE"]);
        assert_eq!(n, 11);
    }
    // Garbage in the middle refuses to start, whatever aof-load-truncated says.
    let mut bad = std::fs::read(&incr).unwrap();
    let at = bad.len() / 2;
    bad.splice(at..at, b"garbage!".iter().copied());
    std::fs::write(&incr, &bad).unwrap();
    let (code, log) = start_fails(&dir, &["--aof-load-truncated", "yes"]);
    assert_eq!(code, 1);
    assert!(
        log.contains("Bad file format reading the append only file"),
        "{log}"
    );
}

#[test]
fn timestamps_and_runtime_enable() {
    let dir = Dir::new("ts");
    {
        let srv = Server::start(&["--dir", dir.s(), "--appendonly", "no"]);
        let mut c = srv.client();
        let _: () = query(&mut c, &["SET", "before", "1"]);
        let _: () = query(&mut c, &["CONFIG", "SET", "aof-timestamp-enabled", "yes"]);
        let _: () = query(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
        wait_rewrite(&mut c);
        assert_eq!(info(&mut c, "aof_enabled"), "1");
        let _: () = query(&mut c, &["SET", "after", "2"]);
        let incr = std::fs::read_to_string(dir.last_incr()).unwrap();
        assert!(incr.starts_with("#TS:"), "{incr:?}");
    }
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(query::<String>(&mut c, &["GET", "before"]), "1");
    assert_eq!(query::<String>(&mut c, &["GET", "after"]), "2");
    // Turning it off stops appending.
    let _: () = query(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    assert_eq!(info(&mut c, "aof_enabled"), "0");
}

fn redis_server_available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run Debian's redis-server on `dir` with the AOF on (`preamble`: RDB or command-form base).
fn redis_server(dir: &Dir, preamble: &str) -> (std::process::Child, u16) {
    let port = common::free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            dir.s(),
            "--appendonly",
            "yes",
            "--aof-use-rdb-preamble",
            preamble,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_port(port);
    // Wait until loading is over.
    let mut c = common::connect(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("PING").query::<String>(&mut c).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

#[test]
fn interop_with_redis_server() {
    if !redis_server_available() {
        eprintln!("redis-server not installed: skipped");
        return;
    }
    for preamble in ["yes", "no"] {
        interop(preamble);
    }
}

fn interop(preamble: &str) {
    // Redis writes (all in its first incr file)...
    let dir = Dir::new("interop");
    let (mut child, port) = redis_server(&dir, preamble);
    write_everything(port);
    let mut rc = common::connect(port);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rc);
    let _ = child.wait();
    // ... reloads them, rewrites (a base with data) and appends again.
    let (mut child, port) = redis_server(&dir, preamble);
    let mut rc = common::connect(port);
    let _: String = query(&mut rc, &["BGREWRITEAOF"]);
    wait_rewrite(&mut rc);
    let _: () = query(&mut rc, &["SET", "redis-after-rewrite", "1"]);
    let from_redis = dump(&mut rc);
    assert!(from_redis.len() > 20);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rc);
    let _ = child.wait();
    let from_ferrodis;
    {
        let srv = start(&dir, &["--aof-use-rdb-preamble", preamble]);
        let mut c = srv.client();
        assert_eq!(
            dump(&mut c),
            from_redis,
            "Redis's AOF ({preamble}) loaded in Ferrodis"
        );
        // Ferrodis appends to Redis's incr file, rewrites, and appends to its own.
        let _: () = query(&mut c, &["SET", "from-ferrodis", "1"]);
        let _: String = query(&mut c, &["BGREWRITEAOF"]);
        wait_rewrite(&mut c);
        let _: () = query(&mut c, &["RPUSH", "later", "x"]);
        from_ferrodis = dump(&mut c);
    }
    // Ferrodis's files load in Redis.
    let (mut child, port) = redis_server(&dir, preamble);
    let mut rc = common::connect(port);
    assert_eq!(
        dump(&mut rc),
        from_ferrodis,
        "Ferrodis's AOF ({preamble}) loaded in Redis"
    );
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rc);
    let _ = child.wait();
}

#[test]
fn auto_rewrite_on_growth() {
    let dir = Dir::new("auto");
    let srv = start(
        &dir,
        &[
            "--auto-aof-rewrite-min-size",
            "4096",
            "--auto-aof-rewrite-percentage",
            "100",
        ],
    );
    let mut c = srv.client();
    assert_eq!(info(&mut c, "aof_rewrites"), "1", "the initial base");
    let big = "x".repeat(1000);
    for i in 0..20 {
        let _: () = query(&mut c, &["SET", "k", &format!("{big}{i}")]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(&mut c, "aof_rewrites") == "1" {
        assert!(Instant::now() < deadline, "no automatic rewrite");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_rewrite(&mut c);
    let size: u64 = info(&mut c, "aof_current_size").parse().unwrap();
    assert!(size < 8192, "rewritten down to one key: {size}");
    drop(c);
    drop(srv);
    let srv = start(&dir, &[]);
    let v: String = query(&mut srv.client(), &["GET", "k"]);
    assert_eq!(v, format!("{big}19"));
}

#[test]
fn concurrent_writes_to_one_key_replay_in_order() {
    let dir = Dir::new("order");
    let srv = start(&dir, &["--appendfsync", "no"]);
    let port = srv.port;
    let hs: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = common::connect(port);
                for i in 0..400 {
                    // APPEND's result depends on the order of the writes; SET's on the last one.
                    let _: i64 = query(&mut c, &["APPEND", "log", &format!("{t}.{i},")]);
                    let _: () = query(
                        &mut c,
                        &["SET", &format!("k{}", i % 3), &format!("{t}.{i}")],
                    );
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let mut c = srv.client();
    let before = dump(&mut c);
    drop(c);
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(dump(&mut srv.client()), before);
}

#[test]
fn old_style_single_file_aof_is_migrated() {
    if !redis_server_available() {
        eprintln!("redis-server not installed: skipped");
        return;
    }
    // Redis 7 files: an RDB base and a command incr file; together they are a Redis 6 style AOF (RDB
    // preamble followed by commands).
    let dir = Dir::new("old");
    let (mut child, port) = redis_server(&dir, "yes");
    let mut rc = common::connect(port);
    let _: () = query(&mut rc, &["RPUSH", "l", "a", "b"]);
    let _: () = query(&mut rc, &["SET", "s", "1"]);
    let _: String = query(&mut rc, &["BGREWRITEAOF"]);
    wait_rewrite(&mut rc);
    let _: () = query(&mut rc, &["INCR", "s"]);
    let _: () = query(&mut rc, &["HSET", "h", "f", "v"]);
    let want = dump(&mut rc);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut rc);
    let _ = child.wait();
    let m = dir.manifest();
    let file = |kind: &str| {
        let name = m
            .lines()
            .find(|l| l.ends_with(kind))
            .and_then(|l| l.split(' ').nth(1))
            .unwrap();
        std::fs::read(dir.aofdir().join(name)).unwrap()
    };
    let mut old = file("type b");
    assert!(old.starts_with(b"REDIS"));
    old.extend_from_slice(&file("type i"));
    let dir2 = Dir::new("old2");
    std::fs::write(dir2.0.join("appendonly.aof"), &old).unwrap();
    let srv = start(&dir2, &[]);
    let mut c = srv.client();
    assert_eq!(dump(&mut c), want);
    assert!(
        dir2.manifest()
            .starts_with("file appendonly.aof seq 1 type b\n"),
        "{}",
        dir2.manifest()
    );
    assert!(!dir2.0.join("appendonly.aof").exists());
}

/// Geo writes reach the AOF as Redis propagates them: GEOADD as the ZADD it runs (scores are the geohashes),
/// GEOSEARCHSTORE and GEORADIUS ... STORE/STOREDIST as themselves (deterministic); replaying gives the same sets.
#[test]
fn geo_writes_propagate_as_redis_does() {
    let dir = Dir::new("geo");
    let before;
    {
        let srv = start(&dir, &["--aof-use-rdb-preamble", "no"]);
        let mut c = srv.client();
        for cmd in [
            "GEOADD Sicily CH 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
            "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
            "GEORADIUS Sicily 15 37 200 km STORE dst2",
            "GEORADIUSBYMEMBER Sicily Palermo 100 km STOREDIST dst3",
        ] {
            let words: Vec<&str> = cmd.split(' ').collect();
            let _: Value = redis::cmd(words[0]).arg(&words[1..]).query(&mut c).unwrap();
        }
        let incr = String::from_utf8_lossy(&std::fs::read(dir.last_incr()).unwrap()).into_owned();
        let flat = incr.replace("\r\n", " ");
        assert!(
            flat.contains("*7 $4 zadd $6 Sicily $2 CH $16 3479099956230698 $7 Palermo $16 3479447370796909 $7 Catania"),
            "{flat}"
        );
        assert!(!flat.contains("GEOADD"), "{flat}");
        assert!(
            flat.contains("$14 GEOSEARCHSTORE $3 dst $6 Sicily"),
            "{flat}"
        );
        assert!(flat.contains("$9 GEORADIUS $6 Sicily"), "{flat}");
        assert!(flat.contains("$17 GEORADIUSBYMEMBER $6 Sicily"), "{flat}");
        before = dump(&mut c);
    }
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(dump(&mut c), before);
}
