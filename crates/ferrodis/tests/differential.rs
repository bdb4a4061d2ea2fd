//! Differential test: the same command scripts against a real `redis-server` and Ferrodis, replies compared
//! byte for byte.
//!
//! The reference is Redis 7.2.x, found through `FERRODIS_REFERENCE_REDIS` (the path of its `redis-server`);
//! without it, `redis-server` from `PATH` (Debian's 7.0) or the command in `DIFF_REDIS_CMD`. It is started with
//! `--port P --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes`, and Ferrodis
//! (`CARGO_BIN_EXE_ferrodis`, or the command in `DIFF_FERRODIS_CMD`) with the same flags, both on
//! free ports, each in its own temporary working directory. If no reference can be found the test FAILS in CI
//! (`CI` set) and is skipped, saying so, elsewhere.
//! Every script `tests/diff/*.redis` (relative to the workspace root) is then run against both servers over raw
//! TCP, in lockstep: one command to the reference, its reply read; the same command to Ferrodis, its reply read;
//! the two replies compared as raw RESP bytes. Before each script both servers get a fresh connection and
//! `FLUSHALL` + `SELECT 0`. All mismatches of all scripts are collected, printed (script:line, command, both
//! replies escaped) and the test then fails.
//!
//! Environment:
//! - `DIFF_FERRODIS_CMD`: command line for the server under test (tokenized like a script line), e.g.
//!   `DIFF_FERRODIS_CMD=redis-server` to validate the scripts with Redis on both sides. `--port P --bind
//!   127.0.0.1` and the flags above are appended.
//! - `DIFF_REDIS_CMD`: command line for the reference (default `redis-server`); the flags above are appended.
//! - `DIFF_SCRIPTS`: comma-separated script names (without `.redis`) to run only those.
//! - `DIFF_VERBOSE=1`: print every command and the reference reply.
//!
//! # Script format
//! - One command per line, tokenized like `redis-cli` does (`sdssplitargs`): arguments separated by blanks;
//!   `"double quotes"` support `\n \r \t \b \a \\ \" \xHH`; `'single quotes'` support only `\'`; `""` is an empty
//!   argument. A closing quote must be followed by a blank or the end of the line.
//! - Blank lines and lines whose first non-blank character is `#` are ignored (no trailing comments).
//! - Directives (a line starting with `@`):
//!   - `@resp3` / `@resp2`: send `HELLO 3` / `HELLO 2` to both; the replies are only checked for being of the
//!     same RESP type (they carry server name, version and client id).
//!   - `@ignore`: the next command's reply is only checked for being of the same RESP type.
//!   - `@unordered`: the next command's reply is compared with every aggregate (array, set, map, push, at any
//!     depth) taken as a multiset (KEYS, SCAN, CONFIG GET with a glob...).
//!   - `@approx N`: the next reply must be an integer on both sides, at most N apart (PTTL...); other replies
//!     are compared exactly.
//!   - `@sleep MS`: sleep MS milliseconds.
//!   - `@scan [MATCH p] [COUNT n] [TYPE t]`: run a complete `SCAN` iteration (cursor 0 until 0 again) with
//!     these options on each side and compare the sets of keys returned (cursors and batching are
//!     implementation details); the replies must be well-formed SCAN replies.
//!   - `@reconnect`: close both connections and open new ones (protocol back to RESP2, database 0, no name).
//!   - `@raw "BYTES"`: send BYTES (one token, escapes as above) as they are, then read everything each server
//!     sends until it closes the connection or is quiet for a short while; compare all of it, and whether the
//!     connection was closed. A closed connection is reopened (RESP2, db 0) before the next line.
//!   - `@if-version >= 7.2` / `@if-version < 7.2`: run the next command line (or `@raw`) only when the
//!     reference's version satisfies the condition (for behaviour that changed between Redis versions: Ferrodis
//!     matches 7.2).
//!   - `@ignore` / `@unordered` / `@approx` / `@if-version` apply to the next command line only.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_IO_FAILURES: usize = 5;
const RAW_QUIET: Duration = Duration::from_millis(150);
const RAW_QUIET_LONG: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------------------
// Tokenizer (redis-cli / sdssplitargs compatible)

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return Err("unbalanced double quotes".into());
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2]).unwrap() * 16 + hex_val(line[i + 3]).unwrap());
                    i += 4;
                    continue;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if insq {
                if i >= n {
                    return Err("unbalanced single quotes".into());
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                let c = line[i];
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(cur);
    }
}

// ---------------------------------------------------------------------------------------------------------
// RESP reply reader (RESP2 + RESP3), keeping the raw bytes

#[derive(Debug, Clone)]
enum Value {
    /// `+ - : , _ # (` : the type byte and the line without CRLF.
    Line(u8, Vec<u8>),
    /// `$ ! =` : the type byte and the payload (None for `$-1`).
    Bulk(u8, Option<Vec<u8>>),
    /// `* ~ > %` : the type byte and the elements (None for `*-1`); maps hold keys and values alternately.
    Agg(u8, Option<Vec<Value>>),
    /// `|` attribute (key/value list) followed by the value it is attached to.
    Attr(Vec<Value>, Box<Value>),
}

impl Value {
    fn type_byte(&self) -> u8 {
        match self {
            Value::Line(t, _) | Value::Bulk(t, _) | Value::Agg(t, _) => *t,
            Value::Attr(_, v) => v.type_byte(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Line(t, l) => {
                out.push(*t);
                out.extend_from_slice(l);
                out.extend_from_slice(b"\r\n");
            }
            Value::Bulk(t, None) => {
                out.push(*t);
                out.extend_from_slice(b"-1\r\n");
            }
            Value::Bulk(t, Some(d)) => {
                out.push(*t);
                out.extend_from_slice(d.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(d);
                out.extend_from_slice(b"\r\n");
            }
            Value::Agg(t, None) => {
                out.push(*t);
                out.extend_from_slice(b"-1\r\n");
            }
            Value::Agg(t, Some(items)) => {
                out.push(*t);
                let n = if *t == b'%' {
                    items.len() / 2
                } else {
                    items.len()
                };
                out.extend_from_slice(n.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for it in items {
                    it.encode(out);
                }
            }
            Value::Attr(attrs, v) => {
                out.push(b'|');
                out.extend_from_slice((attrs.len() / 2).to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for a in attrs {
                    a.encode(out);
                }
                v.encode(out);
            }
        }
    }

    /// Encoding with every aggregate's elements (map: key/value pairs) sorted: multiset comparison.
    fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Value::Agg(t, Some(items)) => {
                let mut parts: Vec<Vec<u8>> = if *t == b'%' {
                    items
                        .chunks(2)
                        .map(|kv| kv.iter().flat_map(|v| v.canonical()).collect())
                        .collect()
                } else {
                    items.iter().map(|v| v.canonical()).collect()
                };
                parts.sort();
                out.push(*t);
                out.extend_from_slice(parts.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for p in parts {
                    out.extend_from_slice(&p);
                }
            }
            Value::Attr(attrs, v) => {
                let mut a = Vec::new();
                Value::Attr(attrs.clone(), Box::new(Value::Line(b'+', vec![]))).encode(&mut a);
                out.extend_from_slice(&a);
                out.extend_from_slice(&v.canonical());
            }
            other => other.encode(&mut out),
        }
        out
    }
}

fn read_line<R: BufRead>(r: &mut R, raw: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    raw.extend_from_slice(&line);
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed reply line (no CRLF): {}", escape(&line)),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_len(line: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad length in reply: {}", escape(line)),
            )
        })
}

fn read_value<R: BufRead>(r: &mut R, raw: &mut Vec<u8>) -> io::Result<Value> {
    let line = read_line(r, raw)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty reply line",
        ));
    }
    let t = line[0];
    let rest = &line[1..];
    match t {
        b'+' | b'-' | b':' | b',' | b'_' | b'#' | b'(' => Ok(Value::Line(t, rest.to_vec())),
        b'$' | b'!' | b'=' => {
            let len = parse_len(rest)?;
            if len < 0 {
                return Ok(Value::Bulk(t, None));
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf)?;
            raw.extend_from_slice(&buf);
            if !buf.ends_with(b"\r\n") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bulk payload not followed by CRLF",
                ));
            }
            buf.truncate(len as usize);
            Ok(Value::Bulk(t, Some(buf)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = parse_len(rest)?;
            if len < 0 {
                return Ok(Value::Agg(t, None));
            }
            let count = if t == b'%' || t == b'|' { len * 2 } else { len };
            let mut items = Vec::with_capacity(count.min(1 << 16) as usize);
            for _ in 0..count {
                items.push(read_value(r, raw)?);
            }
            if t == b'|' {
                let v = read_value(r, raw)?;
                return Ok(Value::Attr(items, Box::new(v)));
            }
            Ok(Value::Agg(t, Some(items)))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown RESP type byte in reply: {}", escape(&line)),
        )),
    }
}

fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{:02x}", c);
            }
        }
    }
    const MAX: usize = 2000;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...(truncated)");
    }
    format!("\"{}\"", s)
}

fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Servers and connections

struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

fn log_tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn start_server(name: &'static str, cmdline: &[String], extra: &[&str]) -> Server {
    let mut last_err = String::new();
    for attempt in 0..5 {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "ferrodis-diff-{}-{}-{}",
            name,
            std::process::id(),
            port
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let log = dir.join("server.log");
        let logf = std::fs::File::create(&log).expect("create log");
        let mut cmd = Command::new(&cmdline[0]);
        cmd.env("FERRODIS_CHECK_KEYS", "1")
            .args(&cmdline[1..])
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(logf.try_clone().unwrap()))
            .stderr(Stdio::from(logf));
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!(
                "differential test: cannot start {} ({:?}): {}{}",
                name,
                cmdline,
                e,
                if name == "redis" {
                    "\n  The differential test needs a real redis-server (7.0) in PATH: \
                     `apt-get install redis-server` (or set DIFF_REDIS_CMD)."
                } else {
                    ""
                }
            ),
        };
        let mut server = Server {
            name,
            child,
            port,
            dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                last_err = format!(
                    "{} exited with {} during startup (attempt {}, port {}); log:\n{}",
                    name,
                    status,
                    attempt + 1,
                    port,
                    log_tail(&server.log)
                );
                break;
            }
            if let Ok(mut c) = Conn::connect(port) {
                if let Ok(v) = c.command(&[b"PING".to_vec()]) {
                    if v.1 == b"+PONG\r\n" {
                        return server;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "differential test: {} did not answer PING on port {} within 20 s; log:\n{}",
                    name,
                    port,
                    log_tail(&server.log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(server);
    }
    panic!("differential test: could not start {}: {}", name, last_err);
}

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn connect(port: u16) -> io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let reader = BufReader::new(s.try_clone()?);
        Ok(Conn { writer: s, reader })
    }

    /// Sends one command, returns the parsed reply and its raw bytes.
    fn command(&mut self, args: &[Vec<u8>]) -> io::Result<(Value, Vec<u8>)> {
        self.writer.write_all(&encode_command(args))?;
        let mut raw = Vec::new();
        match read_value(&mut self.reader, &mut raw) {
            Ok(v) => Ok((v, raw)),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("{} (bytes read: {})", e, escape(&raw)),
            )),
        }
    }

    /// Sends raw bytes; returns all bytes received until the peer closes or is quiet, and whether it closed.
    fn raw(&mut self, bytes: &[u8]) -> io::Result<(Vec<u8>, bool)> {
        self.writer.write_all(bytes)?;
        let mut out = Vec::new();
        // Whatever is already buffered in the reader first.
        out.extend_from_slice(self.reader.buffer());
        let n = self.reader.buffer().len();
        self.reader.consume(n);
        let s = self.reader.get_mut();
        let mut buf = [0u8; 65536];
        let mut closed = false;
        // Read until the peer is quiet for RAW_QUIET; when that leaves nothing or a partial line, wait once
        // more for RAW_QUIET_LONG (a slow machine), so a late reply is not taken for the next line's.
        'rounds: for quiet in [RAW_QUIET, RAW_QUIET_LONG] {
            s.set_read_timeout(Some(quiet))?;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break 'rounds;
                    }
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut =>
                    {
                        break
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                        closed = true;
                        break 'rounds;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !out.is_empty() && out.ends_with(b"\r\n") {
                break;
            }
        }
        s.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok((out, closed))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Script runner

#[derive(Default, Clone, Copy, PartialEq)]
enum Mode {
    #[default]
    Exact,
    TypeOnly,
    Unordered,
    Approx(i64),
}

struct Pair {
    redis_port: u16,
    ferro_port: u16,
    redis: Option<Conn>,
    ferro: Option<Conn>,
}

impl Pair {
    fn reconnect(&mut self) -> Result<(), String> {
        self.redis = None;
        self.ferro = None;
        self.redis = Some(
            Conn::connect(self.redis_port).map_err(|e| format!("redis-server: connect: {}", e))?,
        );
        self.ferro =
            Some(Conn::connect(self.ferro_port).map_err(|e| format!("ferrodis: connect: {}", e))?);
        Ok(())
    }
}

struct Stats {
    /// I/O failures (timeouts, closed connections) in a row; the run stops at MAX_IO_FAILURES.
    io_failures: usize,
    scripts: usize,
    compared: usize,
    mismatches: Vec<String>,
}

fn integer_of(v: &Value) -> Option<i64> {
    match v {
        Value::Line(b':', l) => std::str::from_utf8(l).ok()?.parse().ok(),
        _ => None,
    }
}

fn compare(mode: Mode, a: &(Value, Vec<u8>), b: &(Value, Vec<u8>)) -> bool {
    match mode {
        Mode::Exact => a.1 == b.1,
        Mode::TypeOnly => a.0.type_byte() == b.0.type_byte(),
        Mode::Unordered => a.0.canonical() == b.0.canonical(),
        Mode::Approx(n) => match (integer_of(&a.0), integer_of(&b.0)) {
            (Some(x), Some(y)) => (x as i128 - y as i128).abs() <= n as i128,
            _ => a.1 == b.1,
        },
    }
}

fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Exact => "exact".into(),
        Mode::TypeOnly => "@ignore: same RESP type".into(),
        Mode::Unordered => "@unordered".into(),
        Mode::Approx(n) => format!("@approx {}", n),
    }
}

/// Runs one script; returns Err only when the servers cannot be reached any more (the run must stop).
fn run_script(
    pair: &mut Pair,
    path: &Path,
    label: &str,
    stats: &mut Stats,
    verbose: bool,
    version: (u32, u32),
) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {}", path.display(), e))?;
    pair.reconnect()?;
    for cmd in [
        &[b"FLUSHALL".to_vec()][..],
        &[b"SELECT".to_vec(), b"0".to_vec()][..],
    ] {
        for (name, c) in [
            ("redis-server", &mut pair.redis),
            ("ferrodis", &mut pair.ferro),
        ] {
            let r = c
                .as_mut()
                .unwrap()
                .command(cmd)
                .map_err(|e| format!("{}: setup: {}", name, e))?;
            if r.1 != b"+OK\r\n" {
                stats.mismatches.push(format!(
                    "{}: setup {} on {} replied {}",
                    label,
                    String::from_utf8_lossy(&cmd[0]),
                    name,
                    escape(&r.1)
                ));
            }
        }
    }
    let mut mode = Mode::Exact;
    let mut skip_next = false;
    let mut queue: VecDeque<(usize, &[u8])> = text.split(|&c| c == b'\n').enumerate().collect();
    while let Some((idx, line)) = queue.pop_front() {
        let lineno = idx + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed: &[u8] = {
            let s = line
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(line.len());
            &line[s..]
        };
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        let args = match split_args(trimmed) {
            Ok(a) => a,
            Err(e) => {
                stats
                    .mismatches
                    .push(format!("{}:{}: script syntax error: {}", label, lineno, e));
                continue;
            }
        };
        let where_ = format!("{}:{}", label, lineno);
        let shown = String::from_utf8_lossy(trimmed).into_owned();
        let is_directive = trimmed[0] == b'@' && !trimmed.starts_with(b"@raw");
        if skip_next && !is_directive {
            skip_next = false;
            mode = Mode::Exact;
            continue;
        }
        if trimmed[0] == b'@' {
            let d = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let arg1 = args.get(1).map(|a| String::from_utf8_lossy(a).into_owned());
            match d.as_str() {
                "@if-version" => {
                    let want = args.get(2).and_then(|v| {
                        let v = String::from_utf8_lossy(v).into_owned();
                        let (a, b) = v.split_once('.')?;
                        Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
                    });
                    match (arg1.as_deref(), want) {
                        (Some(">="), Some(w)) => skip_next = version < w,
                        (Some("<"), Some(w)) => skip_next = version >= w,
                        _ => stats.mismatches.push(format!(
                            "{}: script error: @if-version needs `>= X.Y` or `< X.Y`",
                            where_
                        )),
                    }
                }
                "@ignore" => mode = Mode::TypeOnly,
                "@unordered" => mode = Mode::Unordered,
                "@approx" => match arg1.as_deref().and_then(|s| s.parse().ok()) {
                    Some(n) => mode = Mode::Approx(n),
                    None => stats
                        .mismatches
                        .push(format!("{}: script error: @approx needs a number", where_)),
                },
                "@sleep" => match arg1.as_deref().and_then(|s| s.parse().ok()) {
                    Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
                    None => stats
                        .mismatches
                        .push(format!("{}: script error: @sleep needs a number", where_)),
                },
                "@reconnect" => pair.reconnect()?,
                "@scan" => {
                    let extra = &args[1..];
                    let r = full_scan(pair.redis.as_mut().unwrap(), extra);
                    let f = full_scan(pair.ferro.as_mut().unwrap(), extra);
                    stats.compared += 1;
                    if verbose {
                        println!(
                            "{}: {}\n    -> {}",
                            where_,
                            shown,
                            r.as_ref().unwrap_or_else(|e| e)
                        );
                    }
                    if r != f || r.is_err() {
                        let show = |x: &Result<String, String>| match x {
                            Ok(s) => s.clone(),
                            Err(e) => format!("error: {}", e),
                        };
                        stats.mismatches.push(format!(
                            "{}: {}   (complete SCAN iteration, keys compared as a set)\n    redis-server: {}\n    ferrodis:     {}",
                            where_,
                            shown,
                            show(&r),
                            show(&f)
                        ));
                    }
                    if r.is_err() || f.is_err() {
                        pair.reconnect()?;
                    }
                }
                "@resp2" | "@resp3" => {
                    let ver = if d == "@resp3" {
                        b"3".to_vec()
                    } else {
                        b"2".to_vec()
                    };
                    let cmd = vec![b"HELLO".to_vec(), ver];
                    compare_command(pair, &cmd, Mode::TypeOnly, &where_, &shown, stats, verbose)?;
                }
                "@raw" => {
                    if args.len() != 2 {
                        stats.mismatches.push(format!(
                            "{}: script error: @raw takes exactly one token",
                            where_
                        ));
                        continue;
                    }
                    // Both sides at once: each waits for the connection to go quiet.
                    let (rc, fc) = (pair.redis.as_mut().unwrap(), pair.ferro.as_mut().unwrap());
                    let bytes = &args[1];
                    let (r, f) = std::thread::scope(|sc| {
                        let h = sc.spawn(|| rc.raw(bytes));
                        let f = fc.raw(bytes);
                        (h.join().expect("raw reader thread"), f)
                    });
                    stats.compared += 1;
                    let show = |r: &io::Result<(Vec<u8>, bool)>| match r {
                        Ok((b, c)) => format!(
                            "{}{}",
                            escape(b),
                            if *c { " [connection closed]" } else { "" }
                        ),
                        Err(e) => format!("I/O error: {}", e),
                    };
                    if verbose {
                        println!("{}: {}\n    -> {}", where_, shown, show(&r));
                    }
                    let same = match (&r, &f) {
                        (Ok(a), Ok(b)) => a == b,
                        _ => false,
                    };
                    if !same {
                        stats.mismatches.push(format!(
                            "{}: {}\n    redis-server: {}\n    ferrodis:     {}",
                            where_,
                            shown,
                            show(&r),
                            show(&f)
                        ));
                    }
                    let closed = |x: &io::Result<(Vec<u8>, bool)>| !matches!(x, Ok((_, false)));
                    if closed(&r) || closed(&f) {
                        pair.reconnect()?;
                    }
                }
                _ => stats
                    .mismatches
                    .push(format!("{}: script error: unknown directive {}", where_, d)),
            }
            continue;
        }
        let m = std::mem::take(&mut mode);
        compare_command(pair, &args, m, &where_, &shown, stats, verbose)?;
    }
    Ok(())
}

/// Runs `SCAN cursor <extra>` from cursor 0 until the cursor is 0 again; returns the set of keys seen
/// (escaped, sorted, deduplicated) or a description of what went wrong (error reply, malformed reply...).
fn full_scan(conn: &mut Conn, extra: &[Vec<u8>]) -> Result<String, String> {
    let mut cursor = b"0".to_vec();
    let mut keys = std::collections::BTreeSet::new();
    for _ in 0..100_000 {
        let mut cmd = vec![b"SCAN".to_vec(), cursor.clone()];
        cmd.extend_from_slice(extra);
        let (v, raw) = conn
            .command(&cmd)
            .map_err(|e| format!("I/O error: {}", e))?;
        match v {
            Value::Agg(b'*', Some(items)) if items.len() == 2 => match (&items[0], &items[1]) {
                (Value::Bulk(b'$', Some(c)), Value::Agg(b'*', Some(ks))) => {
                    for k in ks {
                        match k {
                            Value::Bulk(b'$', Some(k)) => {
                                keys.insert(k.clone());
                            }
                            _ => return Err(format!("unexpected SCAN reply {}", escape(&raw))),
                        }
                    }
                    cursor = c.clone();
                }
                _ => return Err(format!("unexpected SCAN reply {}", escape(&raw))),
            },
            _ => return Err(format!("SCAN replied {}", escape(&raw))),
        }
        if cursor == b"0" {
            let list: Vec<String> = keys.iter().map(|k| escape(k)).collect();
            return Ok(format!("{} keys: [{}]", list.len(), list.join(", ")));
        }
    }
    Err("SCAN did not finish within 100000 calls".into())
}

fn compare_command(
    pair: &mut Pair,
    args: &[Vec<u8>],
    mode: Mode,
    where_: &str,
    shown: &str,
    stats: &mut Stats,
    verbose: bool,
) -> Result<(), String> {
    let r = pair.redis.as_mut().unwrap().command(args);
    let f = pair.ferro.as_mut().unwrap().command(args);
    stats.compared += 1;
    let show = |x: &io::Result<(Value, Vec<u8>)>| match x {
        Ok((_, raw)) => escape(raw),
        Err(e) => format!("I/O error: {}", e),
    };
    if verbose {
        println!("{}: {}\n    -> {}", where_, shown, show(&r));
    }
    let same = match (&r, &f) {
        (Ok(a), Ok(b)) => compare(mode, a, b),
        _ => false,
    };
    if !same {
        stats.mismatches.push(format!(
            "{}: {}{}\n    redis-server: {}\n    ferrodis:     {}",
            where_,
            shown,
            if mode == Mode::Exact {
                String::new()
            } else {
                format!("   ({})", mode_name(mode))
            },
            show(&r),
            show(&f)
        ));
    }
    if r.is_err() || f.is_err() {
        // The connections are out of step (or gone): start over with fresh ones.
        stats.io_failures += 1;
        if stats.io_failures >= MAX_IO_FAILURES {
            return Err(format!(
                "{} I/O failures in a row, giving up",
                stats.io_failures
            ));
        }
        pair.reconnect()?;
    } else {
        stats.io_failures = 0;
    }
    Ok(())
}

/// Whether `cmd` names an executable (a path, or a name found in PATH).
fn runnable(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let ok = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if cmd.contains('/') {
        return ok(Path::new(cmd));
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| ok(&d.join(cmd))))
        .unwrap_or(false)
}

/// (major, minor) of the server on `port`, from INFO server.
fn server_version(port: u16) -> (u32, u32) {
    let mut c = Conn::connect(port).expect("connect to the reference");
    let (_, raw) = c
        .command(&[b"INFO".to_vec(), b"server".to_vec()])
        .expect("INFO server");
    let text = String::from_utf8_lossy(&raw);
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .expect("redis_version in INFO");
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

fn cmdline_from_env(var: &str, default: &str) -> Vec<String> {
    let s = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let toks = split_args(s.as_bytes()).unwrap_or_else(|e| panic!("{}: {}", var, e));
    assert!(!toks.is_empty(), "{} is empty", var);
    toks.into_iter()
        .map(|t| String::from_utf8(t).expect("utf-8 command line"))
        .collect()
}

#[test]
fn tokenizer_matches_redis_cli() {
    let t = |s: &str| split_args(s.as_bytes()).unwrap();
    assert_eq!(
        t("SET k v"),
        vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]
    );
    assert_eq!(
        t("  a   \"b c\" ''  "),
        vec![b"a".to_vec(), b"b c".to_vec(), b"".to_vec()]
    );
    assert_eq!(
        t(r#""\x00\xff\r\n\"" 'it\'s'"#),
        vec![b"\x00\xff\r\n\"".to_vec(), b"it's".to_vec()]
    );
    assert!(split_args(b"\"abc").is_err());
    assert!(split_args(b"\"abc\"def").is_err());
    let mut raw = Vec::new();
    let v = read_value(&mut &b"*2\r\n$1\r\na\r\n%1\r\n+k\r\n_\r\n"[..], &mut raw).unwrap();
    assert_eq!(raw, b"*2\r\n$1\r\na\r\n%1\r\n+k\r\n_\r\n");
    let mut raw2 = Vec::new();
    let w = read_value(&mut &b"*2\r\n%1\r\n+k\r\n_\r\n$1\r\na\r\n"[..], &mut raw2).unwrap();
    assert_eq!(v.canonical(), w.canonical());
}

#[test]
fn differential_against_redis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("tests/diff");
    let only: Option<Vec<String>> = std::env::var("DIFF_SCRIPTS")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let verbose = std::env::var("DIFF_VERBOSE")
        .map(|v| v == "1")
        .unwrap_or(false);
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {}", dir.display(), e))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().map(|e| e == "redis").unwrap_or(false))
        .filter(|p| {
            only.as_ref()
                .map(|o| {
                    o.iter()
                        .any(|n| p.file_stem().map(|s| s == n.as_str()).unwrap_or(false))
                })
                .unwrap_or(true)
        })
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no scripts found in {}", dir.display());

    let redis_cmd = match std::env::var("FERRODIS_REFERENCE_REDIS") {
        Ok(path) if !path.is_empty() => vec![path],
        _ => cmdline_from_env("DIFF_REDIS_CMD", "redis-server"),
    };
    if !runnable(&redis_cmd[0]) {
        let msg = format!(
            "differential test: no reference server ({:?} not found). Set FERRODIS_REFERENCE_REDIS to a Redis \
             7.2.x redis-server, or install one in PATH (apt-get install redis-server).",
            redis_cmd[0]
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let ferro_cmd = match std::env::var("DIFF_FERRODIS_CMD") {
        Ok(_) => cmdline_from_env("DIFF_FERRODIS_CMD", ""),
        Err(_) => vec![env!("CARGO_BIN_EXE_ferrodis").to_string()],
    };
    // The same flags on both sides (the rest are each server's defaults): no persistence, DEBUG allowed.
    let flags = [
        "--save",
        "",
        "--appendonly",
        "no",
        "--enable-debug-command",
        "yes",
    ];
    let redis = start_server("redis", &redis_cmd, &flags);
    let ferro = start_server("ferrodis", &ferro_cmd, &flags);
    let version = server_version(redis.port);
    eprintln!(
        "differential: reference {:?} (version {}.{}) on port {}, under test {:?} on port {}",
        redis_cmd, version.0, version.1, redis.port, ferro_cmd, ferro.port
    );

    let mut pair = Pair {
        redis_port: redis.port,
        ferro_port: ferro.port,
        redis: None,
        ferro: None,
    };
    let mut stats = Stats {
        io_failures: 0,
        scripts: 0,
        compared: 0,
        mismatches: Vec::new(),
    };
    let mut aborted = None;
    for s in &scripts {
        let label = format!("tests/diff/{}", s.file_name().unwrap().to_string_lossy());
        stats.scripts += 1;
        if let Err(e) = run_script(&mut pair, s, &label, &mut stats, verbose, version) {
            aborted = Some(format!("{}: run aborted: {}", label, e));
            break;
        }
    }
    drop(pair);
    for srv in [&redis, &ferro] {
        if TcpStream::connect(("127.0.0.1", srv.port)).is_err() {
            stats.mismatches.push(format!(
                "{} is not reachable after the run; log:\n{}",
                srv.name,
                log_tail(&srv.log)
            ));
        }
    }
    if let Some(a) = &aborted {
        stats.mismatches.push(a.clone());
    }
    eprintln!(
        "differential: {} scripts, {} replies compared, {} mismatches",
        stats.scripts,
        stats.compared,
        stats.mismatches.len()
    );
    if !stats.mismatches.is_empty() {
        let mut report = String::new();
        for m in &stats.mismatches {
            report.push_str(m);
            report.push_str("\n\n");
        }
        eprintln!("{}", report);
        let mut per_script: std::collections::BTreeMap<String, usize> = Default::default();
        for m in &stats.mismatches {
            let script = m.split(':').next().unwrap_or("?").to_string();
            *per_script.entry(script).or_default() += 1;
        }
        for (script, n) in &per_script {
            eprintln!("differential: {:>5} mismatch(es) in {}", n, script);
        }
        panic!(
            "differential test: {} mismatch(es) between redis-server and ferrodis (listed above)",
            stats.mismatches.len()
        );
    }
}
