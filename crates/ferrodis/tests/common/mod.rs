//! Shared harness for the integration tests: start the built `ferrodis` binary (or a reference server) on a
//! free port, connect to it with the `redis` crate, and talk raw RESP to it for exact reply bytes.
//!
//! Every test binary that uses it declares `mod common;`; not every binary uses every helper, hence the
//! `dead_code` allowance.
//!
//! - [`Server::start`] / [`Server::start_with`] / [`Server::start_overridable`]: spawn a server on a free port
//!   and wait until it accepts connections. A free port can be taken by someone else between the probe and the
//!   server's bind; when the spawned process exits before accepting, startup retries on a new port. The server
//!   is killed when the [`Server`] is dropped.
//! - [`Server::client`] / [`connect`]: a sync `redis::Connection`; [`query`] / [`query_err`] run a command
//!   given as a slice of words.
//! - [`Server::raw`]: a [`Raw`] connection that encodes commands as RESP multibulk and reads replies as their
//!   exact bytes, either one parsed reply at a time ([`Raw::read_reply`]), an exact expected byte string
//!   ([`Raw::expect`]), or everything that arrives until the socket goes quiet ([`Raw::read_quiet`]).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Read timeout of raw connections (a reply that takes longer fails the test).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Read timeout of [`Server::stream`] connections.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nobody listens on right now (the OS picks it; it can be taken again before we use it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the server answering on `conn` is process `pid`, by `INFO server`'s process_id. A server that
/// answers INFO with an error (e.g. NOAUTH under --requirepass) cannot be checked and is taken as ours.
fn is_ours(mut conn: TcpStream, pid: u32) -> bool {
    if conn.set_read_timeout(Some(Duration::from_secs(5))).is_err()
        || conn
            .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            .is_err()
    {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if got.first() == Some(&b'-') {
            return true;
        }
        let text = String::from_utf8_lossy(&got);
        if let Some(rest) = text.split("process_id:").nth(1) {
            if let Some(end) = rest.find("\r\n") {
                return rest[..end].trim().parse::<u32>().ok() == Some(pid);
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Wait (up to 10 s) until something accepts connections on `port`; panics otherwise.
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sync `redis` crate connection to 127.0.0.1:`port`.
pub fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn build(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Run `args` (command name first) and convert the reply; panics on an error reply.
pub fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    build(args)
        .query(con)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Run `args` and return its error reply as the `redis` crate renders it; panics if it succeeds.
pub fn query_err(con: &mut redis::Connection, args: &[&str]) -> String {
    match build(args).query::<redis::Value>(con) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// Encode a command as a RESP multibulk request.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// [`encode`] for text arguments.
pub fn encode_strs(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode(&args)
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    /// The server's working directory (a fresh temporary directory: dump.rdb and the AOF land here).
    pub dir: std::path::PathBuf,
    /// True when the binary is a reference `redis-server` rather than ferrodis.
    pub reference: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Start ferrodis with `--port P --bind 127.0.0.1` followed by `extra`.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with(&[], extra)
    }

    /// Start ferrodis with `pre` (e.g. a config file path) before `--port P --bind 127.0.0.1`, then `extra`.
    pub fn start_with(pre: &[&str], extra: &[&str]) -> Server {
        Server::spawn(env!("CARGO_BIN_EXE_ferrodis"), pre, extra)
    }

    /// Start ferrodis, or the binary named by the environment variable `var` when it is set (e.g.
    /// `LISTS_TEST_SERVER=redis-server` runs a test file against the reference server, without persistence).
    pub fn start_overridable(var: &str, extra: &[&str]) -> Server {
        let bin = std::env::var(var).unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferrodis").to_string());
        if bin.contains("redis-server") {
            Server::spawn(&bin, &["--save", "", "--appendonly", "no"], extra)
        } else {
            Server::spawn(&bin, &[], extra)
        }
    }

    /// Start another server binary (e.g. the reference `redis-server` from PATH) with `extra` flags.
    pub fn spawn_binary(bin: &str, extra: &[&str]) -> Server {
        Server::spawn(bin, &[], extra)
    }

    /// Spawn `bin pre... --port P --bind 127.0.0.1 extra...` on a free port and wait until it accepts. If the
    /// process exits first (the port was taken in the meantime), retry on another port.
    pub fn spawn(bin: &str, pre: &[&str], extra: &[&str]) -> Server {
        for _ in 0..20 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("ferrodis-test-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the server's directory");
            let child = Command::new(bin)
                // Ferrodis checks that commands lock only the keys their key specs declare.
                .env("FERRODIS_CHECK_KEYS", "1")
                .current_dir(&dir)
                .args(pre)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
            let mut s = Server {
                child,
                port,
                dir,
                reference: bin.contains("redis-server"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(conn) = TcpStream::connect(("127.0.0.1", port)) {
                    // Make sure it is our process that answers, not another test's server that got the
                    // same "free" port first.
                    if is_ours(conn, s.child.id()) {
                        return s;
                    }
                    break;
                }
                if let Ok(Some(_)) = s.child.try_wait() {
                    break; // port taken in the meantime: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Drop kills and reaps the process.
        }
        panic!("{bin} did not start");
    }

    /// The server process, for tests that signal or wait on it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// A `redis` crate connection.
    pub fn client(&self) -> redis::Connection {
        connect(self.port)
    }

    /// A plain TCP connection with a [`STREAM_TIMEOUT`] read timeout.
    pub fn stream(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(STREAM_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// A raw RESP connection.
    pub fn raw(&self) -> Raw {
        let s = self.stream();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Raw {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    /// On a fresh connection (switched to RESP3 first when `resp3`), send each command and collect the bytes
    /// that arrive for it until the socket is quiet.
    pub fn raw_replies(&self, resp3: bool, cmds: &[&[&str]]) -> Vec<Vec<u8>> {
        let mut c = self.raw();
        let mut run = |args: &[&str]| {
            c.send_strs(args);
            std::thread::sleep(Duration::from_millis(30));
            c.read_quiet(Duration::from_millis(300), Duration::from_millis(50))
        };
        if resp3 {
            run(&["HELLO", "3"]);
        }
        cmds.iter().map(|args| run(args)).collect()
    }

    /// Send one command on a fresh connection; everything that arrives until the socket is quiet, as text.
    pub fn raw_once(&self, args: &[&str]) -> String {
        let mut c = self.raw();
        c.send_strs(args);
        let quiet = Duration::from_millis(300);
        String::from_utf8_lossy(&c.read_quiet(quiet, quiet)).into_owned()
    }
}

/// A raw RESP connection: commands go out as multibulk requests, replies come back as their exact bytes.
///
/// Commands given as one string (`send_line`, `cmd_bytes`, `check`, `int`, `exchange`) are split on single
/// spaces; [`Raw::cmd`] splits on any whitespace.
pub struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    /// Send one command.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.w.write_all(&encode(args)).unwrap();
    }

    pub fn send_strs(&mut self, args: &[&str]) {
        self.w.write_all(&encode_strs(args)).unwrap();
    }

    /// Send a command given as space-separated words.
    pub fn send_line(&mut self, line: &str) {
        let words: Vec<&str> = line.split(' ').collect();
        self.send_strs(&words);
    }

    /// Set the socket's read timeout (it is [`TIMEOUT`] otherwise).
    pub fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        self.w.set_read_timeout(d)
    }

    /// Read exactly one complete reply (aggregates included) and return its bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_one(&mut out);
        out
    }

    /// [`Raw::read_reply`] as (lossy) text.
    pub fn read_string(&mut self) -> String {
        String::from_utf8_lossy(&self.read_reply()).into_owned()
    }

    fn read_one(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        let n = self.r.read_until(b'\n', out).unwrap();
        assert!(
            n > 0,
            "connection closed, got so far: {:?}",
            String::from_utf8_lossy(out)
        );
        assert!(out.ends_with(b"\r\n"), "truncated reply {out:?}");
        let line = &out[start..out.len() - 2];
        let kind = line[0];
        let n: i64 = std::str::from_utf8(&line[1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match kind {
            b'$' | b'=' | b'!' if n >= 0 => {
                let mut data = vec![0; n as usize + 2];
                self.r.read_exact(&mut data).unwrap();
                out.extend_from_slice(&data);
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let items = if matches!(kind, b'%' | b'|') {
                    n * 2
                } else {
                    n
                };
                for _ in 0..items.max(0) {
                    self.read_one(out);
                }
            }
            _ => {}
        }
    }

    /// Send `args` and return the reply's bytes.
    pub fn args(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// Send `args` and return the reply as text.
    pub fn call(&mut self, args: &[&str]) -> String {
        self.send_strs(args);
        self.read_string()
    }

    /// Send binary `args` and return the reply as text.
    pub fn call_bytes(&mut self, args: &[&[u8]]) -> String {
        self.send(args);
        self.read_string()
    }

    /// Send a command given as whitespace-separated words; the reply as text.
    pub fn cmd(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        self.call(&words)
    }

    /// Send a command given as space-separated words; the reply's bytes.
    pub fn cmd_bytes(&mut self, line: &str) -> Vec<u8> {
        self.send_line(line);
        self.read_reply()
    }

    /// Assert a command's exact reply.
    #[track_caller]
    pub fn check(&mut self, line: &str, expect: &str) {
        let got = self.cmd_bytes(line);
        assert_eq!(String::from_utf8_lossy(&got), expect, "command: {line}");
    }

    /// The integer a command replies with.
    #[track_caller]
    pub fn int(&mut self, line: &str) -> i64 {
        let got = self.cmd_bytes(line);
        assert_eq!(got[0], b':', "command {line}: {got:?}");
        std::str::from_utf8(&got[1..got.len() - 2])
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Read exactly `want.len()` bytes and assert they are `want` (which may span several replies or pushes).
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        let mut got = vec![0; want.len()];
        if let Err(e) = self.r.read_exact(&mut got) {
            panic!(
                "{e} waiting for {want:?}, have {:?}",
                String::from_utf8_lossy(self.r.buffer())
            );
        }
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    /// Send a command given as space-separated words and [`Raw::expect`] `want`.
    #[track_caller]
    pub fn exchange(&mut self, line: &str, want: &str) {
        self.send_line(line);
        self.expect(want);
    }

    /// Assert that nothing is pending and nothing arrives within `ms`.
    #[track_caller]
    pub fn quiet(&mut self, ms: u64) {
        assert!(
            self.r.buffer().is_empty(),
            "{:?}",
            String::from_utf8_lossy(self.r.buffer())
        );
        self.w
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        let mut tmp = [0u8; 256];
        if let Ok(n) = self.r.read(&mut tmp) {
            assert!(
                n == 0,
                "unexpected bytes {:?}",
                String::from_utf8_lossy(&tmp[..n])
            );
        }
        self.w.set_read_timeout(Some(TIMEOUT)).unwrap();
    }

    /// Everything that arrives until the socket is quiet: wait up to `first` for the first bytes, then read
    /// until nothing more comes within `idle` (or the peer closes).
    pub fn read_quiet(&mut self, first: Duration, idle: Duration) -> Vec<u8> {
        let mut out = self.r.buffer().to_vec();
        self.r.consume(out.len());
        let mut buf = [0u8; 65536];
        self.w.set_read_timeout(Some(first)).unwrap();
        while let Ok(n) = self.r.get_mut().read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            self.w.set_read_timeout(Some(idle)).unwrap();
        }
        self.w.set_read_timeout(Some(TIMEOUT)).unwrap();
        out
    }

    /// Whether the server closes the connection (EOF or reset) within `within`.
    pub fn closed(&mut self, within: Duration) -> bool {
        self.w.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 64];
        match self.r.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    }
}

/// Raw bytes in, through the same buffer the reply readers use.
impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.r.read(buf)
    }
}

/// Raw bytes out, as they are.
impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}
