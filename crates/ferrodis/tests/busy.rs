//! A busy script never freezes anyone: while a script runs past `busy-reply-threshold`, every other
//! connection, on every worker thread (the script's own included), gets Redis's BUSY error, and SCRIPT KILL,
//! FUNCTION KILL and SHUTDOWN NOSAVE work from any of them. Two busy scripts on different workers keep the
//! server busy until both are done.
//!
//! Every read is bounded (the raw connections time out), so a frozen worker fails a test instead of
//! hanging the suite.

mod common;

use common::{Raw, Server};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";
const BUSY_FUNCTION: &str =
    "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
const UNKILLABLE: &str = "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n";

/// The tests of this file run one at a time: each keeps cores spinning in scripts, and timings (the busy
/// threshold against the probes) must not depend on how many others run alongside.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A raw connection whose reads give up after 5 s (a frozen worker fails the test, never hangs it).
fn conn(srv: &Server) -> Raw {
    let mut c = srv.raw();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
    c
}

/// Whether `c` answers PING within `wait`; when it does not, the reply is left pending (read it later).
fn answers_within(c: &mut Raw, wait: Duration) -> bool {
    c.set_read_timeout(Some(wait)).unwrap();
    c.send_strs(&["PING"]);
    let mut b = [0u8; 7];
    let ok = c.read_exact(&mut b).is_ok();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if ok && &b != b"+PONG\r\n" {
        // BUSY: a script became busy meanwhile (this connection answers all the same).
        assert_eq!(&b, b"-BUSY R");
        let mut rest = [0u8; BUSY_EVAL.len() - 7];
        c.read_exact(&mut rest).unwrap();
    }
    ok
}

/// One body, three behaviours: `quick` (run once so the script is known to stay within its declared keys:
/// then it runs on its own worker without closing the keyspace), `spin` (forever) and `timed MS`.
const MODES: &str = "local m = ARGV[1] \
    local function ms() local t = redis.call('time') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end \
    if m == 'spin' then while true do end \
    elseif m == 'wspin' then redis.call('set', KEYS[1], 'y') while true do end \
    elseif m == 'timed' then local s = ms() while ms() - s < tonumber(ARGV[2]) do end end \
    return m";

/// Load [`MODES`] and run it once in `quick` mode with `keys`: the script is then known to stay within its
/// declared keys, and later runs hold only their shards (other workers go on serving meanwhile, which is
/// how the tests tell which connections share the script's worker).
fn known_script(c: &mut Raw, keys: &[&str]) -> String {
    let sha = c.call(&["SCRIPT", "LOAD", MODES]);
    let sha = sha.lines().nth(1).unwrap().to_string();
    let n = keys.len().to_string();
    let mut args = vec!["EVALSHA", &sha, &n];
    args.extend_from_slice(keys);
    args.push("quick");
    assert_eq!(c.call(&args), "$5\r\nquick\r\n");
    sha
}

/// Wait until `c` gets BUSY for PING (the script passed the threshold).
fn wait_busy(c: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.call(&["PING"]);
        if r.starts_with("-BUSY") {
            return;
        }
        assert_eq!(r, "+PONG\r\n");
        assert!(Instant::now() < deadline, "the script never became busy");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_not_busy(c: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.call(&["PING"]);
        if r == "+PONG\r\n" {
            return;
        }
        assert!(r.starts_with("-BUSY"), "{r}");
        assert!(Instant::now() < deadline, "still busy");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Start `args` on `script` and split `others` into those served by another worker (they answer PING while
/// the script runs below the threshold) and those on the script's own worker (they wait; their pending PING
/// reply is read by the caller once the script is busy: it must be BUSY).
fn start_and_split(
    script: &mut Raw,
    args: &[&str],
    others: Vec<Raw>,
    probe: Duration,
) -> (Vec<Raw>, Vec<Raw>) {
    script.send_strs(args);
    std::thread::sleep(Duration::from_millis(20));
    let mut others = others;
    for c in &mut others {
        c.send_strs(&["PING"]);
    }
    std::thread::sleep(probe);
    let (mut other_worker, mut same_worker) = (Vec::new(), Vec::new());
    for mut c in others {
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut b = [0u8; 7];
        let ok = c.read_exact(&mut b).is_ok();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if ok {
            assert_eq!(&b, b"+PONG\r\n");
            other_worker.push(c);
        } else {
            same_worker.push(c);
        }
    }
    (other_worker, same_worker)
}

#[test]
fn every_connection_gets_busy_and_any_can_kill() {
    let _serial = serial();
    let srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "400"]);
    let mut script = conn(&srv);
    let sha = known_script(&mut script, &[]);
    let others: Vec<Raw> = (0..32).map(|_| conn(&srv)).collect();
    // While below the threshold the script's worker serves nobody else: that tells which connections
    // share it.
    let (mut other_worker, mut same_worker) = start_and_split(
        &mut script,
        &["EVALSHA", &sha, "0", "spin"],
        others,
        Duration::from_millis(50),
    );
    assert!(
        !same_worker.is_empty() && !other_worker.is_empty(),
        "32 connections over 4 workers: {} on the script's worker",
        same_worker.len()
    );
    // The pending PINGs of the script's worker are answered once the script is busy, by its hook.
    for c in &mut same_worker {
        assert_eq!(c.read_string(), BUSY_EVAL);
    }
    wait_busy(&mut other_worker[0]);
    for c in same_worker.iter_mut().chain(other_worker.iter_mut()) {
        assert_eq!(c.call(&["GET", "x"]), BUSY_EVAL);
        assert_eq!(c.call(&["FUNCTION", "KILL"]), BUSY_EVAL);
        // Allowed while busy.
        assert_eq!(c.call(&["UNWATCH"]), "+OK\r\n");
    }
    // Transactions during busy, on the script's worker as Redis answers them.
    let c = &mut same_worker[0];
    assert_eq!(c.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.call(&["INCR", "x"]), BUSY_EVAL);
    assert_eq!(
        c.call(&["EXEC"]),
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY_EVAL[1..]
        )
    );
    assert_eq!(c.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.call(&["DISCARD"]), "+OK\r\n");
    // Several requests in one write: each answered, in order.
    c.send_strs(&["PING"]);
    c.send_strs(&["WATCH", "k"]);
    c.send_strs(&["PING"]);
    assert_eq!(c.read_string(), BUSY_EVAL);
    assert_eq!(c.read_string(), "+OK\r\n");
    assert_eq!(c.read_string(), BUSY_EVAL);
    // Killed from a connection of the script's own worker.
    assert_eq!(same_worker[0].call(&["SCRIPT", "KILL"]), "+OK\r\n");
    let r = script.read_string();
    assert!(
        r.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
        "{r}"
    );
    for c in same_worker.iter_mut().chain(other_worker.iter_mut()) {
        assert_eq!(c.call(&["PING"]), "+PONG\r\n");
    }
    assert_eq!(script.call(&["PING"]), "+PONG\r\n");
    assert_eq!(
        other_worker[0].call(&["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn script_kill_from_every_connection() {
    let _serial = serial();
    let srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "20"]);
    let mut script = conn(&srv);
    let mut others: Vec<Raw> = (0..16).map(|_| conn(&srv)).collect();
    for i in 0..others.len() {
        script.send_strs(&["EVAL", "while true do end", "0"]);
        wait_busy(&mut others[i]);
        assert_eq!(
            others[i].call(&["SCRIPT", "KILL"]),
            "+OK\r\n",
            "connection {i}"
        );
        let r = script.read_string();
        assert!(r.starts_with("-ERR Script killed by user"), "{r}");
        wait_not_busy(&mut others[(i + 1) % 16]);
    }
}

#[test]
fn function_kill_from_the_scripts_worker() {
    let _serial = serial();
    let srv = Server::start(&["--threads", "2", "--busy-reply-threshold", "400"]);
    let mut script = conn(&srv);
    assert_eq!(
        script.call(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=spin\nredis.register_function('spin', function(k, a) if a[1] == 'spin' then while true do end end return 1 end)"
        ]),
        "$4\r\nspin\r\n"
    );
    assert_eq!(script.call(&["FCALL", "spin", "0", "quick"]), ":1\r\n");
    let others: Vec<Raw> = (0..16).map(|_| conn(&srv)).collect();
    let (mut other_worker, mut same_worker) = start_and_split(
        &mut script,
        &["FCALL", "spin", "0", "spin"],
        others,
        Duration::from_millis(50),
    );
    assert!(!same_worker.is_empty() && !other_worker.is_empty());
    for c in &mut same_worker {
        assert_eq!(c.read_string(), BUSY_FUNCTION);
    }
    wait_busy(&mut other_worker[0]);
    let c = &mut same_worker[0];
    assert_eq!(c.call(&["SCRIPT", "KILL"]), BUSY_FUNCTION);
    let stats = c.call(&["FUNCTION", "STATS"]);
    assert!(stats.contains("spin"), "{stats}");
    assert_eq!(c.call(&["FUNCTION", "KILL"]), "+OK\r\n");
    let r = script.read_string();
    assert!(r.starts_with("-ERR Script killed by user"), "{r}");
    wait_not_busy(&mut other_worker[0]);
    assert_eq!(same_worker[0].call(&["PING"]), "+PONG\r\n");
}

#[test]
fn two_busy_scripts_do_not_clear_each_other() {
    let _serial = serial();
    let srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "300"]);
    let mut a = conn(&srv);
    let sha = known_script(&mut a, &[]);
    let others: Vec<Raw> = (0..16).map(|_| conn(&srv)).collect();
    let (mut other_worker, mut same_worker) = start_and_split(
        &mut a,
        &["EVALSHA", &sha, "0", "spin"],
        others,
        Duration::from_millis(30),
    );
    // A second script on another worker, before the first one is busy; it ends by itself.
    let mut b = other_worker.remove(0);
    b.send_strs(&["EVALSHA", &sha, "0", "timed", "1500"]);
    std::thread::sleep(Duration::from_millis(50));
    // Whatever is left on b's worker waits for b's script too: keep connections of a third worker.
    let mut watcher = None;
    for mut c in other_worker {
        if answers_within(&mut c, Duration::from_millis(30)) {
            watcher = Some(c);
            break;
        }
    }
    let mut watcher = watcher.unwrap_or_else(|| same_worker.pop().unwrap());
    for c in &mut same_worker {
        let _ = c.read_string();
    }
    wait_busy(&mut watcher);
    // b ends by itself; a is still busy.
    assert_eq!(b.read_string(), "$5\r\ntimed\r\n");
    assert_eq!(watcher.call(&["PING"]), BUSY_EVAL);
    assert_eq!(b.call(&["GET", "x"]), BUSY_EVAL);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(watcher.call(&["PING"]), BUSY_EVAL);
    assert_eq!(b.call(&["SCRIPT", "KILL"]), "+OK\r\n");
    let r = a.read_string();
    assert!(r.starts_with("-ERR Script killed by user"), "{r}");
    wait_not_busy(&mut watcher);
}

#[test]
fn two_busy_scripts_are_both_killed() {
    let _serial = serial();
    let srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "300"]);
    let mut a = conn(&srv);
    // Declared keys: the script stays within them, so it runs holding only their shards.
    let sha = known_script(&mut a, &["{a}k"]);
    let others: Vec<Raw> = (0..16).map(|_| conn(&srv)).collect();
    let (mut other_worker, _same) = start_and_split(
        &mut a,
        &["EVALSHA", &sha, "1", "{a}k", "spin"],
        others,
        Duration::from_millis(30),
    );
    let mut b = other_worker.remove(0);
    b.send_strs(&["EVALSHA", &sha, "1", "{b}k", "spin"]);
    std::thread::sleep(Duration::from_millis(50));
    let mut watcher = other_worker
        .into_iter()
        .find_map(|mut c| answers_within(&mut c, Duration::from_millis(30)).then_some(c))
        .expect("a connection on a third worker");
    wait_busy(&mut watcher);
    // b started 50 ms after a: let it pass the threshold too (a KILL only reaches busy scripts).
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(watcher.call(&["SCRIPT", "KILL"]), "+OK\r\n");
    for s in [&mut a, &mut b] {
        let r = s.read_string();
        assert!(r.starts_with("-ERR Script killed by user"), "{r}");
    }
    wait_not_busy(&mut watcher);
}

#[test]
fn shutdown_nosave_stops_a_busy_script_that_wrote() {
    let _serial = serial();
    let mut srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "400"]);
    let mut script = conn(&srv);
    let sha = known_script(&mut script, &["x"]);
    let others: Vec<Raw> = (0..16).map(|_| conn(&srv)).collect();
    let (mut other_worker, mut same_worker) = start_and_split(
        &mut script,
        &["EVALSHA", &sha, "1", "x", "wspin"],
        others,
        Duration::from_millis(50),
    );
    assert!(!same_worker.is_empty());
    for c in &mut same_worker {
        assert_eq!(c.read_string(), BUSY_EVAL);
    }
    wait_busy(&mut other_worker[0]);
    let c = &mut same_worker[0];
    assert_eq!(c.call(&["SCRIPT", "KILL"]), UNKILLABLE);
    assert_eq!(other_worker[0].call(&["SCRIPT", "KILL"]), UNKILLABLE);
    assert_eq!(c.call(&["SHUTDOWN"]), BUSY_EVAL);
    assert_eq!(c.call(&["SHUTDOWN", "SAVE"]), BUSY_EVAL);
    c.send_strs(&["SHUTDOWN", "NOSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Some(_)) = srv.child().try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "the server is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn busy_hook_reads_partial_and_pipelined_input() {
    let _serial = serial();
    let srv = Server::start(&["--threads", "1", "--busy-reply-threshold", "50"]);
    let mut script = conn(&srv);
    let mut c = conn(&srv);
    script.send_strs(&["EVAL", "while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    // One worker: the hook serves everything. A request split over two writes, then a pipeline.
    let req = common::encode_strs(&["PING", "hello"]);
    c.write_all(&req[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    c.write_all(&req[5..]).unwrap();
    assert_eq!(c.read_string(), BUSY_EVAL);
    let mut pipe = Vec::new();
    for _ in 0..100 {
        pipe.extend_from_slice(&common::encode_strs(&["PING"]));
    }
    c.write_all(&pipe).unwrap();
    for _ in 0..100 {
        assert_eq!(c.read_string(), BUSY_EVAL);
    }
    assert_eq!(c.call(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(script.read_string().starts_with("-ERR Script killed"));
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
    let mut e = conn(&srv);
    // QUIT during busy closes the connection.
    script.send_strs(&["EVAL", "while true do end", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.call(&["QUIT"]), "+OK\r\n");
    assert!(c.closed(Duration::from_secs(2)));
    assert_eq!(e.call(&["PING"]), BUSY_EVAL);
    assert_eq!(e.call(&["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(script.read_string().starts_with("-ERR Script killed"));
    assert_eq!(e.call(&["PING"]), "+PONG\r\n");
}
