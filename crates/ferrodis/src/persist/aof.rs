//! The append-only file, in Redis 7's multi-part layout: `<dir>/<appenddirname>/` holds a manifest
//! (`<appendfilename>.manifest`), one base file (`.base.rdb` with an RDB body, or `.base.aof` in command
//! form) and the incremental files (`.incr.aof`) written since that base.
//!
//! Feeding: `cmd::call` hands each command's propagated form to [`Aof::feed`], which appends its RESP
//! encoding to an in-memory buffer under a short mutex (never any file I/O there; commands run inside
//! EXEC are collected per thread and go out as one MULTI/EXEC block). Commands feed after releasing their
//! shard locks, so each takes a ticket inside its lock ([`Aof::note_write`], called by `Ctx::modified_in`
//! and the `propagate_*` helpers) and the buffer emits in ticket order: two writes of one key reach the
//! file in the order they ran.
//!
//! Durability: before a worker sends the replies of a batch, [`Aof::durable_target`] writes what it fed
//! to the file (every mode: a killed process loses nothing acknowledged); with `appendfsync always` the
//! connection then awaits [`Aof::durable`] while the fsync thread writes and fsyncs everything buffered by
//! every connection so far and releases all of them at once — group commit. `everysec` fsyncs once a
//! second from the background thread; `no` never fsyncs.
//!
//! Rewrites (BGREWRITEAOF) never fork: a new incr file is opened while every shard is locked (and the gate
//! closed, so every command that ran before has been fed), a point-in-time snapshot is opened in the same
//! exclusive section, and the new base is written from it while commands keep flowing into the new incr
//! file. The manifest is then replaced atomically and the old files deleted.

use crate::client::Client;
use crate::cmd::{Argv, Propagation};
use crate::keyspace::snapshot::ShardSink;
use crate::server::{unix_ms, Server};
use crate::types::Value;
use ferrodis_protocol::Args;
use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const FSYNC_NO: u8 = 0;
pub const FSYNC_ALWAYS: u8 = 1;
pub const FSYNC_EVERYSEC: u8 = 2;

fn fsync_mode(s: &str) -> u8 {
    match s {
        "always" => FSYNC_ALWAYS,
        "no" => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    }
}

/// A base-file writer fed by a snapshot.
pub trait BaseWriter: ShardSink {
    /// Complete the file (trailer, flush; no fsync). Returns its size in bytes.
    fn finish(&self) -> Result<u64, String>;
}

/// RDB-body base writer (`aof-use-rdb-preamble yes`): the RDB codec's header with `aof-base 1`, the
/// shards as the snapshot hands them over, EOF and checksum.
struct RdbBase {
    out: Mutex<Option<super::rdb::Writer<std::io::BufWriter<File>>>>,
    opts: super::rdb::SaveOptions,
    now_ms: u64,
    failed: Mutex<Option<String>>,
    size: AtomicU64,
}

impl RdbBase {
    fn create(srv: &Server, file: File) -> Result<RdbBase, String> {
        let opts = {
            let c = srv.config.read();
            super::rdb::SaveOptions {
                compression: c.persist.rdbcompression,
                checksum: c.persist.rdbchecksum,
                databases: c.databases,
            }
        };
        let mut w = super::rdb::Writer::new(
            std::io::BufWriter::with_capacity(1 << 16, file),
            opts.checksum,
        );
        let mut aux = super::rdb::Aux::now(srv);
        aux.aof_base = true;
        w.write_header(&aux).map_err(|e| e.to_string())?;
        Ok(RdbBase {
            out: Mutex::new(Some(w)),
            opts,
            now_ms: unix_ms(),
            failed: Mutex::new(None),
            size: AtomicU64::new(0),
        })
    }
}

impl ShardSink for RdbBase {
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
        super::rdb::put_select(buf, db);
    }

    fn encode(&self, buf: &mut Vec<u8>, e: &crate::keyspace::entry::Entry) {
        if !e.is_expired(self.now_ms) {
            super::rdb::encode_entry(buf, e, self.opts.compression);
        }
    }

    fn write(&self, buf: Vec<u8>) {
        if let Some(w) = self.out.lock().as_mut() {
            if let Err(e) = w.write_all(&buf) {
                self.failed.lock().get_or_insert(e.to_string());
            }
        }
    }
}

impl BaseWriter for RdbBase {
    fn finish(&self) -> Result<u64, String> {
        if let Some(e) = self.failed.lock().clone() {
            return Err(e);
        }
        let w = self.out.lock().take().ok_or("already finished")?;
        let n = w.written() + 9;
        w.finish().map_err(|e| e.to_string())?;
        self.size.store(n, Relaxed);
        Ok(n)
    }
}

/// Load an RDB file (an RDB base) into the keyspace: (keys loaded, keys expired).
fn load_rdb(srv: &Server, path: &Path) -> Result<(u64, u64), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let f = File::open(path).map_err(|e| format!("Can't open the AOF base {name}: {e}"))?;
    let len = f.metadata().ok().map(|m| m.len());
    super::rdb::load_into(srv, std::io::BufReader::with_capacity(1 << 20, f), len)
        .map_err(|e| format!("Bad file format reading the append only file {name}: {e}"))
}

// ---------------------------------------------------------------------------------------------------------
// Manifest

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Base,
    Incr,
    History,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileType,
}

/// The list of files that make up the AOF, as in `<appendfilename>.manifest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<ManifestFile>,
    pub incrs: Vec<ManifestFile>,
    pub history: Vec<ManifestFile>,
    pub cur_base_seq: u64,
    pub cur_incr_seq: u64,
}

impl Manifest {
    /// Parse a manifest the way Redis 7 does (`file <name> seq <n> type <b|i|h>` lines, `#` comments).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_words(line)
                .ok_or_else(|| format!("Invalid AOF manifest file format (line {})", no + 1))?;
            if words.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in words.chunks(2) {
                match kv[0].as_str() {
                    "file" => name = Some(kv[1].clone()),
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1].as_str() {
                            "b" => Some(FileType::Base),
                            "i" => Some(FileType::Incr),
                            "h" => Some(FileType::History),
                            _ => None,
                        }
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            let f = ManifestFile { name, seq, kind };
            match kind {
                FileType::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.cur_base_seq = seq;
                    m.base = Some(f);
                }
                FileType::Incr => {
                    if seq <= m.cur_incr_seq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.cur_incr_seq = seq;
                    m.incrs.push(f);
                }
                FileType::History => m.history.push(f),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() && m.history.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest text, exactly as Redis writes it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |f: &ManifestFile, t: char| {
            s.push_str(&format!(
                "file {} seq {} type {}\n",
                quote_name(&f.name),
                f.seq,
                t
            ));
        };
        if let Some(b) = &self.base {
            line(b, 'b');
        }
        for h in &self.history {
            line(h, 'h');
        }
        for i in &self.incrs {
            line(i, 'i');
        }
        s
    }
}

/// Split a manifest line into words (Redis's sdssplitargs: double quotes with escapes allowed).
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut w = Vec::new();
        if b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = *b.get(i + 1)?;
                        match c {
                            b'x' => {
                                let h = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                                w.push(u8::from_str_radix(h, 16).ok()?);
                                i += 4;
                                continue;
                            }
                            b'n' => w.push(b'\n'),
                            b'r' => w.push(b'\r'),
                            b't' => w.push(b'\t'),
                            b'a' => w.push(7),
                            b'b' => w.push(8),
                            c => w.push(c),
                        }
                        i += 2;
                    }
                    Some(&c) => {
                        w.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                w.push(b[i]);
                i += 1;
            }
        }
        out.push(String::from_utf8_lossy(&w).into_owned());
    }
    Some(out)
}

/// A file name as the manifest writes it: plain, or quoted (sdscatrepr) when it has odd characters.
fn quote_name(name: &str) -> String {
    if name
        .bytes()
        .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
    {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for c in name.bytes() {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

// ---------------------------------------------------------------------------------------------------------
// RESP encoding of commands

/// Append `argv` as a RESP multibulk.
pub fn encode_argv<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn encode_args(out: &mut Vec<u8>, args: &Args<'_>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args.iter() {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn encode_select(out: &mut Vec<u8>, db: usize) {
    encode_argv(out, &[b"SELECT".as_slice(), db.to_string().as_bytes()]);
}

// ---------------------------------------------------------------------------------------------------------
// The AOF state

/// What was fed and not written yet.
struct FeedBuf {
    data: Vec<u8>,
    /// Total bytes ever fed (the offset just after `data`).
    end: u64,
    /// The database the last command in the stream ran in (None: emit SELECT before the next command).
    last_db: Option<usize>,
    /// Unix seconds of the last `#TS:` annotation.
    last_ts: u64,
    /// Ordering (see [`Aof::note_write`]): the next ticket to emit, and those fed ahead of it.
    next_emit: u64,
    held: std::collections::BTreeMap<u64, Held>,
    /// Since when the buffer waits for ticket `next_emit` (a ticket never fed is skipped after
    /// [`STALL_LIMIT`]).
    stalled_since: Option<Instant>,
}

/// Commands fed ahead of their turn (an empty `cmds`: a ticket consumed by a transaction fed earlier).
struct Held {
    cmds: Vec<(usize, Vec<u8>)>,
    wrap: bool,
}

/// How long the stream waits for a ticket that was taken and never fed (a command that failed in an
/// unexpected way) before it moves on.
const STALL_LIMIT: Duration = Duration::from_secs(1);

/// The files (guarded by the I/O lock).
struct Io {
    dir: PathBuf,
    filename: String,
    manifest: Manifest,
    /// The incr file being appended to.
    file: Option<File>,
    /// Bytes written to the current incr file.
    incr_size: u64,
}

/// Statistics and flags for INFO persistence.
#[derive(Default)]
struct Stats {
    rewrite_in_progress: AtomicBool,
    rewrite_scheduled: AtomicBool,
    /// CONFIG SET appendonly yes: the initial rewrite is about to start.
    initial_pending: AtomicBool,
    last_rewrite_time_sec: AtomicI64,
    rewrite_started_ms: AtomicU64,
    last_rewrite_ok: AtomicBool,
    last_write_ok: AtomicBool,
    base_size: AtomicU64,
    /// Total AOF size (base + incr files).
    current_size: AtomicU64,
    /// Total size right after the last rewrite or the load (auto-aof-rewrite's reference).
    size_at_rewrite: AtomicU64,
    rewrites: AtomicU64,
    delayed_fsync: AtomicU64,
    last_fsync_ms: AtomicU64,
    loading: AtomicBool,
}

pub struct Aof {
    /// Feeding is on (appendonly yes and loading done).
    on: AtomicBool,
    mode: AtomicU8,
    timestamps: AtomicBool,
    buf: Mutex<FeedBuf>,
    io: Mutex<Io>,
    /// Bytes of the fed stream written to the file (and, with `always`, fsynced).
    written: AtomicU64,
    /// Bytes of the fed stream known fsynced.
    synced: AtomicU64,
    /// The highest offset a waiter asked to have fsynced (the fsync thread sleeps on `req_cv`).
    req: Mutex<u64>,
    req_cv: Condvar,
    /// Blocking waiters ([`Aof::wait_durable`]) sleep on this.
    done_cv: Condvar,
    /// `synced` for async waiters.
    synced_tx: tokio::sync::watch::Sender<u64>,
    stats: Stats,
    bg_started: AtomicBool,
    /// The next propagation ticket ([`Aof::note_write`]).
    next_ticket: AtomicU64,
}

/// Commands fed inside an EXEC: (client id, [(db, encoded command)], their tickets).
type ExecBuf = (u64, Vec<(usize, Vec<u8>)>, Vec<u64>);

thread_local! {
    /// The end offset of the last thing this thread fed (what `wait_durable` waits for).
    static FED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Commands fed by this thread inside the EXEC it is running: (client id, [(db, encoded)]).
    static EXEC: RefCell<Option<ExecBuf>> = const { RefCell::new(None) };
    /// The ticket of the command running on this thread (0: none yet).
    static TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The highest ticket this thread fed.
    static WAIT_TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Aof {
    pub fn new(cfg: &crate::config::Config) -> Self {
        let p = &cfg.persist;
        let stats = Stats::default();
        stats.last_rewrite_ok.store(true, Relaxed);
        stats.last_write_ok.store(true, Relaxed);
        stats.last_rewrite_time_sec.store(-1, Relaxed);
        Aof {
            on: AtomicBool::new(false),
            mode: AtomicU8::new(fsync_mode(&p.appendfsync)),
            timestamps: AtomicBool::new(p.aof_timestamp_enabled),
            buf: Mutex::new(FeedBuf {
                data: Vec::new(),
                end: 0,
                last_db: None,
                last_ts: 0,
                next_emit: 1,
                held: Default::default(),
                stalled_since: None,
            }),
            io: Mutex::new(Io {
                dir: Path::new(&cfg.dir).join(&p.appenddirname),
                filename: p.appendfilename.clone(),
                manifest: Manifest::default(),
                file: None,
                incr_size: 0,
            }),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            req: Mutex::new(0),
            req_cv: Condvar::new(),
            done_cv: Condvar::new(),
            synced_tx: tokio::sync::watch::Sender::new(0),
            stats,
            bg_started: AtomicBool::new(false),
            next_ticket: AtomicU64::new(1),
        }
    }

    /// Whether commands are being fed (appendonly yes, loading done).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Pick up `appendfsync` and `aof-timestamp-enabled` after CONFIG SET.
    pub fn apply_config(&self, cfg: &crate::config::Config) {
        self.mode
            .store(fsync_mode(&cfg.persist.appendfsync), Relaxed);
        self.timestamps
            .store(cfg.persist.aof_timestamp_enabled, Relaxed);
    }

    /// Take this command's place in the AOF order. Call it INSIDE the shard lock of a write, before the
    /// lock is released (`Ctx::modified_in`, `propagate_before`/`after` do): commands on the same key are
    /// then written in the order they ran, although each feeds after releasing its locks. Cheap when the
    /// AOF is off; takes one ticket per command.
    #[inline]
    pub fn note_write(&self) {
        if self.enabled() {
            TICKET.with(|t| {
                if t.get() == 0 {
                    t.set(self.next_ticket.fetch_add(1, Relaxed));
                }
            });
        }
    }

    /// Append a command's propagated form (see [`Propagation`]).
    pub fn feed(&self, client: &Client, db: usize, args: &Args<'_>, prop: Propagation) {
        let mut enc: Vec<Vec<u8>> = Vec::with_capacity(1 + prop.before.len() + prop.after.len());
        let one = |argv: &Argv| {
            let mut v = Vec::new();
            encode_argv(&mut v, argv);
            v
        };
        enc.extend(prop.before.iter().map(one));
        if prop.changes > 0 {
            match &prop.replace {
                Some(cmds) => enc.extend(cmds.iter().map(one)),
                None => {
                    let mut v = Vec::with_capacity(args.buffer().len() + 16);
                    encode_args(&mut v, args);
                    enc.push(v);
                }
            }
        }
        enc.extend(prop.after.iter().map(one));
        let ticket = TICKET.with(|t| t.replace(0));
        if enc.is_empty() {
            if ticket != 0 {
                self.append(Vec::new(), false, &[ticket]);
            }
            return;
        }
        if client.in_exec {
            EXEC.with(|e| {
                let mut e = e.borrow_mut();
                if e.as_ref().is_some_and(|x| x.0 != client.id) {
                    let (_, cmds, tickets) = e.take().unwrap_or_default();
                    self.append(cmds, true, &tickets);
                }
                let slot = e.get_or_insert_with(|| (client.id, Vec::new(), Vec::new()));
                slot.1.extend(enc.into_iter().map(|v| (db, v)));
                if ticket != 0 {
                    slot.2.push(ticket);
                }
            });
            return;
        }
        self.flush_exec();
        // A command that propagates several effects is wrapped in MULTI/EXEC, so a torn tail never
        // replays half of it.
        let wrap = enc.len() > 1;
        let tickets: &[u64] = if ticket != 0 { &[ticket] } else { &[] };
        self.append(enc.into_iter().map(|v| (db, v)).collect(), wrap, tickets);
    }

    /// Append effects that no client command caused (keys removed by the active expiry cycle), as one
    /// unit in the order of the ticket taken with [`Aof::note_write`] (if any).
    pub fn feed_effects(&self, cmds: &[(usize, Vec<&[u8]>)]) {
        let ticket = TICKET.with(|t| t.replace(0));
        if !self.enabled() {
            return;
        }
        let enc = cmds
            .iter()
            .map(|(db, argv)| {
                let mut v = Vec::new();
                encode_argv(&mut v, argv);
                (*db, v)
            })
            .collect();
        let tickets: &[u64] = if ticket != 0 { &[ticket] } else { &[] };
        self.append(enc, false, tickets);
    }

    /// The order restarts at the current ticket (feeding switched on or off).
    fn reset_order(&self) {
        let mut b = self.buf.lock();
        b.held.clear();
        b.stalled_since = None;
        b.next_emit = self.next_ticket.load(Relaxed);
    }

    /// Hand on what the EXEC this thread ran fed (MULTI ... EXEC around it when there is more than one
    /// command). Called on the next feed or wait of this thread; the lead may call it at the end of EXEC.
    pub fn flush_exec(&self) {
        if let Some((_, cmds, tickets)) = EXEC.with(|e| e.borrow_mut().take()) {
            let wrap = cmds.len() > 1;
            self.append(cmds, wrap, &tickets);
        }
    }

    /// Append encoded commands to the shared buffer (SELECT and timestamps as needed), in ticket order:
    /// `tickets` are those the commands took (a transaction: several; the block goes out at the first).
    /// Without tickets they go out at once.
    fn append(&self, cmds: Vec<(usize, Vec<u8>)>, wrap: bool, tickets: &[u64]) {
        if !self.enabled() {
            return;
        }
        let mut b = self.buf.lock();
        let first = tickets.iter().copied().min().unwrap_or(0);
        if first == 0 || first < b.next_emit {
            // Unordered (or late: its turn was skipped): now.
            self.emit(&mut b, &cmds, wrap);
        } else {
            b.held.insert(first, Held { cmds, wrap });
            for &t in tickets {
                if t != first && t >= b.next_emit {
                    b.held.insert(
                        t,
                        Held {
                            cmds: Vec::new(),
                            wrap: false,
                        },
                    );
                }
            }
            self.drain(&mut b);
        }
        let end = b.end;
        let max = tickets.iter().copied().max().unwrap_or(0);
        drop(b);
        FED.with(|f| f.set(f.get().max(end)));
        if max != 0 {
            WAIT_TICKET.with(|w| w.set(w.get().max(max)));
        }
    }

    /// Emit the held commands whose turn has come.
    fn drain(&self, b: &mut FeedBuf) {
        loop {
            let next = b.next_emit;
            match b.held.remove(&next) {
                Some(h) => {
                    b.next_emit += 1;
                    self.emit(b, &h.cmds, h.wrap);
                    b.stalled_since = None;
                }
                None => match b.held.keys().next().copied() {
                    None => {
                        b.stalled_since = None;
                        return;
                    }
                    Some(k) => {
                        let since = *b.stalled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < STALL_LIMIT {
                            return;
                        }
                        crate::log::warning(&format!(
                            "AOF: propagation ticket {next} never arrived, going on with {k}"
                        ));
                        b.next_emit = k;
                    }
                },
            }
        }
    }

    /// Check for a stalled ticket (background thread).
    fn drain_stalled(&self) {
        let mut b = self.buf.lock();
        if !b.held.is_empty() {
            self.drain(&mut b);
        }
    }

    fn emit(&self, b: &mut FeedBuf, cmds: &[(usize, Vec<u8>)], wrap: bool) {
        if cmds.is_empty() {
            return;
        }
        let start = b.data.len();
        if self.timestamps.load(Relaxed) {
            let now = unix_ms() / 1000;
            if now != b.last_ts {
                b.last_ts = now;
                b.data
                    .extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        let mut first = true;
        for (db, cmd) in cmds {
            if b.last_db != Some(*db) {
                encode_select(&mut b.data, *db);
                b.last_db = Some(*db);
            }
            if wrap && first {
                encode_argv(&mut b.data, &[b"MULTI"]);
            }
            first = false;
            b.data.extend_from_slice(cmd);
        }
        if wrap {
            encode_argv(&mut b.data, &[b"EXEC"]);
        }
        b.end += (b.data.len() - start) as u64;
    }

    /// The offset to wait for: everything this thread fed, once every ticket up to its own is out.
    fn fed_target(&self) -> u64 {
        let wt = WAIT_TICKET.with(|w| w.get());
        if wt == 0 {
            return FED.with(|f| f.get());
        }
        let mut spins = 0u32;
        loop {
            let b = self.buf.lock();
            if wt < b.next_emit {
                let end = b.end;
                drop(b);
                WAIT_TICKET.with(|w| w.set(0));
                FED.with(|f| f.set(f.get().max(end)));
                return FED.with(|f| f.get());
            }
            drop(b);
            // Another thread is between its write and its feed (microseconds).
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
                if spins.is_multiple_of(200) {
                    self.drain_stalled();
                }
            }
        }
    }

    /// Called by a worker before it sends the replies of a batch, blocking: see [`Aof::durable_target`]
    /// and [`Aof::durable`] (the async form, which lets the worker serve other connections meanwhile).
    #[inline]
    pub fn wait_durable(&self) {
        if let Some(target) = self.durable_target() {
            let mut r = self.req.lock();
            while self.synced.load(Acquire) < target {
                self.done_cv.wait_for(&mut r, Duration::from_millis(50));
            }
        }
    }

    /// Before a worker sends the replies of a batch. Everything this thread fed reaches the file now in
    /// every mode (a killed process loses nothing acknowledged). With `appendfsync always` the replies
    /// must also wait until it is on disk: this returns the offset to wait for with [`Aof::durable`] (the
    /// fsync thread has been asked for it). One fsync covers everything buffered by every thread and
    /// connection when it starts (group commit).
    #[inline]
    pub fn durable_target(&self) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        self.flush_exec();
        let target = self.fed_target();
        if self.mode.load(Relaxed) == FSYNC_ALWAYS {
            if target <= self.synced.load(Acquire) {
                return None;
            }
            let mut r = self.req.lock();
            if *r < target {
                *r = target;
                self.req_cv.notify_one();
            }
            return Some(target);
        }
        if target > self.written.load(Acquire) {
            self.write_pending(target);
        }
        None
    }

    /// Wait until the AOF is fsynced up to `target` (from [`Aof::durable_target`]).
    pub async fn durable(&self, target: u64) {
        let mut rx = self.synced_tx.subscribe();
        let _ = rx.wait_for(|v| *v >= target).await;
    }

    #[cold]
    fn write_pending(&self, target: u64) {
        let mut io = self.io.lock();
        if target <= self.written.load(Acquire) {
            return;
        }
        self.write_locked(&mut io, false);
    }

    /// The fsync thread (`appendfsync always`): serves the offsets waiters asked for, each fsync covering
    /// everything buffered when it starts.
    fn fsync_loop(weak: std::sync::Weak<Server>) {
        loop {
            let Some(srv) = weak.upgrade() else { return };
            let aof = &srv.persist.aof;
            {
                let mut r = aof.req.lock();
                if *r <= aof.synced.load(Acquire) {
                    aof.req_cv.wait_for(&mut r, Duration::from_millis(100));
                    if *r <= aof.synced.load(Acquire) {
                        if srv.shutting_down.load(Relaxed) {
                            return;
                        }
                        continue;
                    }
                }
            }
            let mut io = aof.io.lock();
            aof.write_locked(&mut io, true);
        }
    }

    /// With the I/O lock held: write everything buffered, fsync when `sync`.
    fn write_locked(&self, io: &mut Io, sync: bool) {
        let (data, end) = {
            let mut b = self.buf.lock();
            (std::mem::take(&mut b.data), b.end)
        };
        if !data.is_empty() {
            let r = match io.file.as_mut() {
                Some(f) => f.write_all(&data),
                None => Ok(()),
            };
            match r {
                Ok(()) => {
                    if !self.stats.last_write_ok.swap(true, Relaxed) {
                        crate::log::warning("AOF write error looks solved, Redis can write again.");
                    }
                    io.incr_size += data.len() as u64;
                    self.stats
                        .current_size
                        .fetch_add(data.len() as u64, Relaxed);
                }
                Err(e) => {
                    if self.stats.last_write_ok.swap(false, Relaxed) {
                        crate::log::warning(&format!("Error writing to the AOF file: {e}"));
                    }
                }
            }
        }
        if sync {
            if let Some(f) = io.file.as_ref() {
                if let Err(e) = f.sync_data() {
                    crate::log::warning(&format!("Can't persist the AOF fsync error: {e}"));
                    self.stats.last_write_ok.store(false, Relaxed);
                }
            }
        }
        self.written.fetch_max(end, Release);
        if sync {
            self.stats.last_fsync_ms.store(unix_ms(), Relaxed);
            self.publish_synced(end);
        }
    }

    /// Write and fsync everything buffered now (shutdown, everysec tick).
    pub fn flush_and_sync(&self) {
        if !self.enabled() {
            return;
        }
        let mut io = self.io.lock();
        self.write_locked(&mut io, true);
    }

    /// The everysec / no tick: write what is buffered; fsync once a second in everysec mode. The fsync
    /// runs on a cloned handle outside the I/O lock, so writers are not held up by it.
    fn tick(&self) {
        let mode = self.mode.load(Relaxed);
        let file = {
            let mut io = self.io.lock();
            self.write_locked(&mut io, false);
            if mode != FSYNC_EVERYSEC {
                return;
            }
            if self.synced.load(Relaxed) >= self.written.load(Relaxed) {
                return;
            }
            io.file.as_ref().and_then(|f| f.try_clone().ok())
        };
        let upto = self.written.load(Relaxed);
        if let Some(f) = file {
            if f.sync_data().is_ok() {
                self.stats.last_fsync_ms.store(unix_ms(), Relaxed);
                self.publish_synced(upto);
            } else {
                self.stats.delayed_fsync.fetch_add(1, Relaxed);
            }
        }
    }

    /// The stream is on disk up to `upto`: release the waiters.
    fn publish_synced(&self, upto: u64) {
        if self.synced.fetch_max(upto, Release) >= upto {
            return;
        }
        self.synced_tx.send_if_modified(|v| {
            if *v < upto {
                *v = upto;
                true
            } else {
                false
            }
        });
        let _r = self.req.lock();
        self.done_cv.notify_all();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Files

fn base_name(filename: &str, seq: u64, rdb: bool) -> String {
    format!("{filename}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

fn incr_name(filename: &str, seq: u64) -> String {
    format!("{filename}.{seq}.incr.aof")
}

fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

/// Write the manifest atomically (temp file, fsync, rename, fsync the directory).
fn persist_manifest(dir: &Path, filename: &str, m: &Manifest) -> Result<(), String> {
    let tmp = dir.join(format!("temp-{}", manifest_name(filename)));
    let fin = dir.join(manifest_name(filename));
    (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(m.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &fin)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })()
    .map_err(|e| format!("Can't persist the AOF manifest file {}: {e}", fin.display()))
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Open a new incr file (seq = current + 1) in `io`, switching the writes over to it. The buffer must
/// have been written to the previous file first.
fn open_new_incr(io: &mut Io) -> Result<(), String> {
    std::fs::create_dir_all(&io.dir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", io.dir.display()))?;
    let seq = io.manifest.cur_incr_seq + 1;
    let name = incr_name(&io.filename, seq);
    let path = io.dir.join(&name);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
    let mut m = io.manifest.clone();
    m.cur_incr_seq = seq;
    m.incrs.push(ManifestFile {
        name,
        seq,
        kind: FileType::Incr,
    });
    persist_manifest(&io.dir, &io.filename, &m)?;
    io.manifest = m;
    io.file = Some(f);
    io.incr_size = 0;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Loading

/// What loading found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// An AOF existed (manifest found).
    pub existed: bool,
    pub commands: u64,
    pub keys_loaded: u64,
}

/// How a command stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// Everything parsed.
    Complete,
    /// The last command is incomplete from this offset (a torn tail).
    Truncated(usize),
    /// Not a command at this offset.
    Bad(usize),
}

/// Split a command stream into commands (skipping `#` annotation lines), calling `f` for each with its
/// arguments (as an `Args` over `data`) and its end offset.
fn parse_stream(
    data: &[u8],
    mut f: impl FnMut(Args<'_>, usize) -> Result<(), String>,
) -> Result<Parsed, String> {
    let mut pos = 0;
    let mut argv: Vec<(usize, usize)> = Vec::new();
    while pos < data.len() {
        let start = pos;
        match data[pos] {
            b'#' => match memchr::memchr(b'\n', &data[pos..]) {
                Some(n) => {
                    pos += n + 1;
                    continue;
                }
                None => return Ok(Parsed::Truncated(start)),
            },
            b'*' => {}
            _ => return Ok(Parsed::Bad(start)),
        }
        let line = |p: usize| -> Option<Result<(i64, usize), ()>> {
            let n = memchr::memchr(b'\n', &data[p..])?;
            if n < 2 || data[p + n - 1] != b'\r' {
                return Some(Err(()));
            }
            let v = ferrodis_protocol::num::parse_i64(&data[p + 1..p + n - 1]);
            Some(v.map(|v| (v, p + n + 1)).ok_or(()))
        };
        let (count, mut p) = match line(pos) {
            None => return Ok(Parsed::Truncated(start)),
            Some(Err(())) => return Ok(Parsed::Bad(start)),
            Some(Ok(v)) => v,
        };
        if count < 1 {
            return Ok(Parsed::Bad(start));
        }
        argv.clear();
        for _ in 0..count {
            if p >= data.len() {
                return Ok(Parsed::Truncated(start));
            }
            if data[p] != b'$' {
                return Ok(Parsed::Bad(start));
            }
            let (len, q) = match line(p) {
                None => return Ok(Parsed::Truncated(start)),
                Some(Err(())) => return Ok(Parsed::Bad(start)),
                Some(Ok(v)) => v,
            };
            if len < 0 {
                return Ok(Parsed::Bad(start));
            }
            let len = len as usize;
            if q + len + 2 > data.len() {
                return Ok(Parsed::Truncated(start));
            }
            if &data[q + len..q + len + 2] != b"\r\n" {
                return Ok(Parsed::Bad(start));
            }
            argv.push((q, q + len));
            p = q + len + 2;
        }
        pos = p;
        f(Args::from_parts(data, &argv), pos)?;
    }
    Ok(Parsed::Complete)
}

/// Counts the bytes read through it (where an RDB preamble ends).
struct Counting<R> {
    inner: R,
    n: usize,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n;
        Ok(n)
    }
}

/// A client for replaying commands (no connection).
fn loader_client() -> Client {
    let info = crate::client::ClientInfo::new(u64::MAX, String::new(), String::new(), -1, false);
    Client::new(u64::MAX, 0, Arc::new(info), true)
}

/// Replay one command file through the normal command path. `last` says whether a torn tail may be cut
/// (aof-load-truncated) instead of refusing. Returns the number of commands.
fn replay_file(
    srv: &Arc<Server>,
    client: &mut Client,
    path: &Path,
    last: bool,
    load_truncated: bool,
) -> Result<(u64, u64), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data = std::fs::read(path).map_err(|e| {
        format!("Fatal error: can't open the append log file {name} for reading: {e}")
    })?;
    if data.is_empty() {
        return Ok((0, 0));
    }
    // An old-style AOF (before Redis 7) may start with an RDB body, commands following it.
    let mut skip = 0usize;
    let mut keys = 0u64;
    if data.starts_with(b"REDIS") {
        let mut r = Counting {
            inner: &data[..],
            n: 0,
        };
        let (loaded, _) = super::rdb::load_into(srv, &mut r, Some(data.len() as u64))
            .map_err(|e| format!("Bad file format reading the append only file {name}: {e}"))?;
        keys = loaded;
        skip = r.n;
    }
    let data = &data[skip..];
    let mut out = Vec::new();
    let mut clock = crate::cmd::BatchClock::new();
    let mut commands = 0u64;
    // Offset just before an open MULTI (its transaction is dropped if the file ends inside it).
    let mut multi_start: Option<usize> = None;
    let mut valid_upto = 0usize;
    let parsed = parse_stream(data, |args, end| {
        let name0 = args.get(0).to_ascii_lowercase();
        if name0 == b"multi" {
            multi_start = Some(valid_upto);
        } else if name0 == b"exec" {
            multi_start = None;
        }
        out.clear();
        crate::cmd::execute(srv, client, &mut out, args, &mut clock);
        if out.starts_with(b"-ERR unknown command") {
            return Err(format!(
                "Unknown command '{}' reading the append only file {name}",
                String::from_utf8_lossy(args.get(0))
            ));
        }
        commands += 1;
        if multi_start.is_none() {
            valid_upto = end;
        }
        Ok(())
    })?;
    match parsed {
        Parsed::Complete if multi_start.is_none() => Ok((commands, keys)),
        Parsed::Bad(_) => Err(format!(
            "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
        )),
        Parsed::Complete | Parsed::Truncated(_) => {
            if !last || !load_truncated {
                return Err(format!(
                    "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
                ));
            }
            // Drop a transaction left open at the end (its commands ran on the loader client: discard).
            if client.multi.is_some() {
                out.clear();
                let discard = Args::from_parts(b"DISCARD", &[(0, 7)]);
                crate::cmd::execute(srv, client, &mut out, discard, &mut clock);
            }
            crate::log::warning(&format!(
                "!!! Warning: short read while loading the AOF file {name}!!!"
            ));
            let valid_upto = skip + valid_upto;
            crate::log::warning(&format!(
                "!!! Truncating the AOF {name} at offset {valid_upto} !!!"
            ));
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(valid_upto as u64).and_then(|_| f.sync_all()));
            if let Err(e) = f {
                return Err(format!(
                    "Error truncating the AOF file {name}: {e}"
                ));
            }
            crate::log::warning(&format!(
                "AOF {name} loaded anyway because aof-load-truncated is enabled"
            ));
            Ok((commands, keys))
        }
    }
}

/// An AOF from before Redis 7 (`<dir>/<appendfilename>`, one file) and no manifest: move it into the AOF
/// directory as the base of a new manifest, as Redis 7 does on its first start.
fn upgrade_old_aof(srv: &Server, aofdir: &Path, filename: &str) -> Result<(), String> {
    let old = Path::new(&srv.config.read().dir).join(filename);
    if !old.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(aofdir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", aofdir.display()))?;
    let m = Manifest {
        base: Some(ManifestFile {
            name: filename.to_string(),
            seq: 1,
            kind: FileType::Base,
        }),
        cur_base_seq: 1,
        ..Default::default()
    };
    std::fs::rename(&old, aofdir.join(filename)).map_err(|e| {
        format!(
            "Error moving the old AOF {} into {}: {e}",
            old.display(),
            aofdir.display()
        )
    })?;
    persist_manifest(aofdir, filename, &m)?;
    crate::log::notice("Successfully migrated an old-style AOF into the AOF directory");
    Ok(())
}

/// Load the AOF at startup (appendonly yes): read the manifest, load the base and replay the incr files
/// in order. Returns `existed: false` when there is no AOF yet (the caller may then load dump.rdb, as
/// Redis does not — see [`start`]). Err: the server must refuse to start with this message.
pub fn load(srv: &Arc<Server>) -> Result<LoadStats, String> {
    let aof = &srv.persist.aof;
    let (dir, filename, load_truncated) = {
        let c = srv.config.read();
        (
            Path::new(&c.dir).join(&c.persist.appenddirname),
            c.persist.appendfilename.clone(),
            c.persist.aof_load_truncated,
        )
    };
    let mpath = dir.join(manifest_name(&filename));
    if !mpath.exists() {
        upgrade_old_aof(srv, &dir, &filename)?;
    }
    let text = match std::fs::read(&mpath) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            aof.io.lock().dir = dir;
            return Ok(LoadStats::default());
        }
        Err(e) => {
            return Err(format!(
                "Can't open the AOF manifest {}: {e}",
                mpath.display()
            ))
        }
    };
    let manifest = Manifest::parse(&text)?;
    aof.stats.loading.store(true, Relaxed);
    let start = Instant::now();
    let mut st = LoadStats {
        existed: true,
        ..Default::default()
    };
    let mut client = loader_client();
    let files: Vec<&ManifestFile> = manifest.base.iter().chain(manifest.incrs.iter()).collect();
    let mut total = 0u64;
    let r = (|| -> Result<(), String> {
        for (i, f) in files.iter().enumerate() {
            let path = dir.join(&f.name);
            let last = i + 1 == files.len();
            if !path.exists() {
                return Err(format!("The AOF file {} doesn't exist", f.name));
            }
            if f.kind == FileType::Base && f.name.ends_with(".rdb") {
                let (loaded, _expired) = load_rdb(srv, &path)?;
                st.keys_loaded += loaded;
            } else {
                // Commands, possibly after an RDB body (an old-style AOF made the base).
                let (n, keys) = replay_file(srv, &mut client, &path, last, load_truncated)?;
                st.commands += n;
                st.keys_loaded += keys;
            }
            total += file_size(&path);
            crate::log::notice(&format!(
                "DB loaded from {} file {}: {:.3} seconds",
                if f.kind == FileType::Base {
                    "base"
                } else {
                    "incr"
                },
                f.name,
                start.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    })();
    aof.stats.loading.store(false, Relaxed);
    r?;
    let base_size = manifest
        .base
        .as_ref()
        .map(|b| file_size(&dir.join(&b.name)))
        .unwrap_or(0);
    aof.stats.base_size.store(base_size, Relaxed);
    aof.stats.current_size.store(total, Relaxed);
    aof.stats.size_at_rewrite.store(total, Relaxed);
    {
        let mut io = aof.io.lock();
        io.dir = dir;
        io.filename = filename;
        io.manifest = manifest;
    }
    crate::log::notice(&format!(
        "DB loaded from append only file: {:.3} seconds",
        start.elapsed().as_secs_f64()
    ));
    Ok(st)
}

/// Start appending (after [`load`], before accepting clients, when `appendonly yes`): open the last
/// incr file of the manifest for appending (or a new one), start the background thread, and when there
/// is no base yet write one from the current dataset (as Redis does on a first start with AOF on).
pub fn start(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.persist.aof;
    aof.apply_config(&srv.config.read());
    let need_base;
    {
        let mut io = aof.io.lock();
        std::fs::create_dir_all(&io.dir)
            .map_err(|e| format!("Can't create the AOF directory {}: {e}", io.dir.display()))?;
        need_base = io.manifest.base.is_none();
        // Redis opens a fresh incr file when it starts from a manifest without one, and appends to the
        // last one otherwise.
        match io.manifest.incrs.last().cloned() {
            // A fresh AOF: the initial rewrite below opens incr file 1 along with base 1.
            _ if need_base => {}
            Some(last) => {
                let path = io.dir.join(&last.name);
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
                io.incr_size = file_size(&path);
                io.file = Some(f);
            }
            None => open_new_incr(&mut io)?,
        }
        // History files left behind by an interrupted rewrite.
        let hist = std::mem::take(&mut io.manifest.history);
        if !hist.is_empty() {
            let m = io.manifest.clone();
            persist_manifest(&io.dir, &io.filename, &m)?;
            for h in hist {
                let _ = std::fs::remove_file(io.dir.join(&h.name));
            }
        }
    }
    {
        let mut b = aof.buf.lock();
        b.last_db = None;
        b.data.clear();
    }
    aof.on.store(true, Relaxed);
    start_background(srv);
    if need_base {
        let (f, seq) = {
            let io = aof.io.lock();
            (io.filename.clone(), io.manifest.cur_base_seq + 1)
        };
        crate::log::notice(&format!(
            "Creating AOF base file {} on server start",
            base_name(&f, seq, aof_rdb_base(srv))
        ));
        rewrite_now(srv, true)?;
    }
    Ok(())
}

/// Whether new base files get an RDB body.
fn aof_rdb_base(srv: &Server) -> bool {
    srv.config.read().persist.aof_use_rdb_preamble
}

fn start_background(srv: &Arc<Server>) {
    if srv.persist.aof.bg_started.swap(true, Relaxed) {
        return;
    }
    let weak = Arc::downgrade(srv);
    let weak2 = weak.clone();
    let _ = std::thread::Builder::new()
        .name("ferrodis-aof-fsync".into())
        .spawn(move || Aof::fsync_loop(weak2));
    let _ = std::thread::Builder::new()
        .name("ferrodis-aof".into())
        .spawn(move || {
            let mut last_sync = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let Some(srv) = weak.upgrade() else { return };
                let aof = &srv.persist.aof;
                if srv.shutting_down.load(Relaxed) {
                    aof.flush_and_sync();
                    return;
                }
                cron(&srv);
                if !aof.enabled() {
                    continue;
                }
                aof.drain_stalled();
                // Write what idle threads left in the buffer; fsync once a second (everysec).
                if last_sync.elapsed() >= Duration::from_secs(1) {
                    last_sync = Instant::now();
                    aof.tick();
                } else {
                    let mut io = aof.io.lock();
                    aof.write_locked(&mut io, false);
                }
            }
        });
}

/// auto-aof-rewrite and scheduled rewrites.
fn cron(srv: &Arc<Server>) {
    let aof = &srv.persist.aof;
    if aof.stats.rewrite_in_progress.load(Relaxed) || srv.keyspace.snapshot_running() {
        return;
    }
    if aof.stats.rewrite_scheduled.load(Relaxed) {
        let _ = bgrewrite(srv);
        return;
    }
    if !aof.enabled() {
        return;
    }
    let (pct, min) = {
        let c = srv.config.read();
        (
            c.persist.auto_aof_rewrite_percentage,
            c.persist.auto_aof_rewrite_min_size,
        )
    };
    if pct == 0 {
        return;
    }
    let cur = aof.stats.current_size.load(Relaxed);
    let base = aof.stats.size_at_rewrite.load(Relaxed).max(1);
    if cur > min && cur.saturating_sub(base) * 100 / base >= pct {
        crate::log::notice(&format!(
            "Starting automatic rewriting of AOF on {}% growth",
            cur.saturating_sub(base) * 100 / base
        ));
        let _ = bgrewrite(srv);
    }
}

/// Turn the AOF on at run time (CONFIG SET appendonly yes): like Redis, write a base of the current
/// dataset first (in the background); commands are fed from the switch point on.
pub fn enable(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.persist.aof;
    if aof.enabled() {
        return Ok(());
    }
    let (dir, filename) = {
        let c = srv.config.read();
        (
            Path::new(&c.dir).join(&c.persist.appenddirname),
            c.persist.appendfilename.clone(),
        )
    };
    // As in Redis, turning the AOF on fails at once (and CONFIG SET rolls back) when its directory can't
    // be made; the rewrite thread would only find out later.
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    {
        let mut io = aof.io.lock();
        io.dir = dir.clone();
        io.filename = filename.clone();
        io.manifest = std::fs::read(dir.join(manifest_name(&filename)))
            .ok()
            .and_then(|t| Manifest::parse(&String::from_utf8_lossy(&t)).ok())
            .unwrap_or_default();
        // A new base replaces whatever was there: the old files become history.
        let m = &mut io.manifest;
        let old: Vec<ManifestFile> = m.base.take().into_iter().chain(m.incrs.drain(..)).collect();
        m.history.extend(old.into_iter().map(|mut f| {
            f.kind = FileType::History;
            f
        }));
        io.file = None;
    }
    aof.apply_config(&srv.config.read());
    // Shown as scheduled until the rewrite thread takes over.
    aof.stats.initial_pending.store(true, Relaxed);
    aof.reset_order();
    aof.on.store(true, Relaxed);
    start_background(srv);
    let srv2 = srv.clone();
    std::thread::Builder::new()
        .name("ferrodis-aofrw".into())
        .spawn(move || {
            super::background_priority();
            if let Err(e) = rewrite_now(&srv2, true) {
                crate::log::warning(&e);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Turn the AOF off at run time (CONFIG SET appendonly no): flush, fsync, stop feeding.
pub fn disable(srv: &Server) {
    let aof = &srv.persist.aof;
    if !aof.enabled() {
        return;
    }
    aof.flush_and_sync();
    aof.on.store(false, Relaxed);
    aof.reset_order();
    let mut io = aof.io.lock();
    io.file = None;
    // Offsets stay monotonic (waiters compare against them); nothing is pending after the flush.
    let end = {
        let mut b = aof.buf.lock();
        b.data.clear();
        b.last_db = None;
        b.end
    };
    aof.written.fetch_max(end, Release);
    aof.publish_synced(end);
}

/// Flush and fsync at shutdown.
pub fn shutdown(srv: &Server) {
    srv.persist.aof.flush_and_sync();
}

// ---------------------------------------------------------------------------------------------------------
// Rewrite

/// BGREWRITEAOF: start a rewrite in the background. Err(message) when one is running already; Ok(false)
/// when it was scheduled (another snapshot is running).
pub fn bgrewrite(srv: &Arc<Server>) -> Result<bool, &'static str> {
    let aof = &srv.persist.aof;
    if aof.stats.rewrite_in_progress.load(Relaxed) {
        return Err("ERR Background append only file rewriting already in progress");
    }
    if srv.keyspace.snapshot_running() {
        aof.stats.rewrite_scheduled.store(true, Relaxed);
        // The background thread starts it once the other snapshot is over.
        start_background(srv);
        return Ok(false);
    }
    if aof
        .stats
        .rewrite_in_progress
        .compare_exchange(false, true, Relaxed, Relaxed)
        .is_err()
    {
        return Err("ERR Background append only file rewriting already in progress");
    }
    aof.stats.rewrite_scheduled.store(false, Relaxed);
    let srv2 = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("ferrodis-aofrw".into())
        .spawn(move || {
            super::background_priority();
            if let Err(e) = rewrite_now(&srv2, false) {
                crate::log::warning(&format!("Background AOF rewrite failed: {e}"));
            }
        });
    if spawned.is_err() {
        aof.stats.rewrite_in_progress.store(false, Relaxed);
        return Err("ERR Can't start the background AOF rewrite");
    }
    Ok(true)
}

/// Whether a rewrite is running (BGSAVE refuses to start meanwhile, as in Redis).
pub fn rewrite_in_progress(srv: &Server) -> bool {
    srv.persist.aof.stats.rewrite_in_progress.load(Relaxed)
}

/// Command-form base writer: every key as the commands that rebuild it.
struct CmdBase {
    out: Mutex<(std::io::BufWriter<File>, u64)>,
    now_ms: u64,
    failed: Mutex<Option<String>>,
}

impl ShardSink for CmdBase {
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
        encode_select(buf, db);
    }

    fn encode(&self, buf: &mut Vec<u8>, e: &crate::keyspace::entry::Entry) {
        if !e.is_expired(self.now_ms) {
            rewrite_entry(buf, e, self.now_ms);
        }
    }

    fn write(&self, buf: Vec<u8>) {
        let mut o = self.out.lock();
        o.1 += buf.len() as u64;
        if let Err(e) = o.0.write_all(&buf) {
            self.failed.lock().get_or_insert(e.to_string());
        }
    }
}

impl BaseWriter for CmdBase {
    fn finish(&self) -> Result<u64, String> {
        if let Some(e) = self.failed.lock().clone() {
            return Err(e);
        }
        let mut o = self.out.lock();
        o.0.flush().map_err(|e| e.to_string())?;
        Ok(o.1)
    }
}

const BATCH: usize = 64;

/// The commands that rebuild one key (Redis's rewriteAppendOnlyFileRio forms).
pub fn rewrite_entry(out: &mut Vec<u8>, e: &crate::keyspace::entry::Entry, _now_ms: u64) {
    use crate::keyspace::entry::ValueRef;
    let key = e.key();
    let mut batched = |cmd: &[u8], items: &mut dyn Iterator<Item = Vec<Vec<u8>>>| {
        let mut argv: Vec<Vec<u8>> = vec![cmd.to_vec(), key.to_vec()];
        let mut n = 0;
        for it in items {
            argv.extend(it);
            n += 1;
            if n == BATCH {
                encode_argv(out, &argv);
                argv.truncate(2);
                n = 0;
            }
        }
        if n > 0 {
            encode_argv(out, &argv);
        }
    };
    match e.value() {
        ValueRef::Str(s) => encode_argv(out, &[b"SET".as_slice(), key, s]),
        ValueRef::Other(v) => match v {
            Value::Str(s) => encode_argv(out, &[b"SET".as_slice(), key, s]),
            Value::List(l) => batched(b"RPUSH", &mut l.iter().map(|x| vec![x.to_vec()])),
            Value::Set(s) => batched(b"SADD", &mut s.iter().map(|x| vec![x.to_vec()])),
            Value::ZSet(z) => batched(
                b"ZADD",
                &mut z.to_vec().into_iter().map(|(m, s)| {
                    let mut f = Vec::new();
                    ferrodis_protocol::num::format_double(s, &mut f);
                    vec![f, m]
                }),
            ),
            Value::Hash(h) => {
                batched(
                    b"HSET",
                    &mut h.iter().map(|(f, v)| vec![f.to_vec(), v.to_vec()]),
                );
                for (f, at) in h.field_ttls() {
                    encode_argv(
                        out,
                        &[
                            b"HPEXPIREAT".as_slice(),
                            key,
                            at.to_string().as_bytes(),
                            b"FIELDS",
                            b"1",
                            f,
                        ],
                    );
                }
            }
            Value::Stream(s) => rewrite_stream(out, key, s),
        },
    }
    if let Some(at) = e.expire_at() {
        encode_argv(
            out,
            &[b"PEXPIREAT".as_slice(), key, at.to_string().as_bytes()],
        );
    }
}

fn rewrite_stream(out: &mut Vec<u8>, key: &[u8], s: &crate::types::stream::Stream) {
    use crate::types::stream::StreamId;
    let id = |i: StreamId| i.to_string().into_bytes();
    let entries = s.range(StreamId::MIN, StreamId::MAX, usize::MAX);
    if entries.is_empty() {
        // An empty stream: create it with a placeholder entry and delete that (Redis's trick).
        encode_argv(
            out,
            &[
                b"XADD".as_slice(),
                key,
                b"MAXLEN",
                b"0",
                &id(s.last_id),
                b"x",
                b"y",
            ],
        );
    } else {
        for e in &entries {
            let mut argv: Vec<&[u8]> = vec![b"XADD", key];
            let eid = id(e.id);
            argv.push(&eid);
            for (f, v) in &e.fields {
                argv.push(f);
                argv.push(v);
            }
            encode_argv(out, &argv);
        }
    }
    encode_argv(
        out,
        &[
            b"XSETID".as_slice(),
            key,
            &id(s.last_id),
            b"ENTRIESADDED",
            s.entries_added.to_string().as_bytes(),
            b"MAXDELETEDID",
            &id(s.max_deleted_id),
        ],
    );
    for (gname, g) in &s.groups {
        let read = match g.entries_read {
            Some(n) => n.to_string(),
            None => "-1".into(),
        };
        encode_argv(
            out,
            &[
                b"XGROUP".as_slice(),
                b"CREATE",
                key,
                gname,
                &id(g.last_id),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
        for (cname, c) in &g.consumers {
            if c.pending.is_empty() {
                encode_argv(
                    out,
                    &[b"XGROUP".as_slice(), b"CREATECONSUMER", key, gname, cname],
                );
            }
        }
        for (pid, p) in &g.pel {
            encode_argv(
                out,
                &[
                    b"XCLAIM".as_slice(),
                    key,
                    gname,
                    &p.consumer,
                    b"0",
                    &id(*pid),
                    b"TIME",
                    p.delivery_time.to_string().as_bytes(),
                    b"RETRYCOUNT",
                    p.delivery_count.to_string().as_bytes(),
                    b"JUSTID",
                    b"FORCE",
                ],
            );
        }
    }
}

/// Run a rewrite on this thread. `initial`: the base for a fresh AOF (startup or CONFIG SET appendonly
/// yes), where the in-progress flag was not taken by `bgrewrite`.
fn rewrite_now(srv: &Arc<Server>, initial: bool) -> Result<(), String> {
    let aof = &srv.persist.aof;
    if initial {
        // Wait for another snapshot to finish (a BGSAVE), then take the flag.
        loop {
            if !srv.keyspace.snapshot_running()
                && aof
                    .stats
                    .rewrite_in_progress
                    .compare_exchange(false, true, Relaxed, Relaxed)
                    .is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let started = Instant::now();
    aof.stats.rewrite_started_ms.store(unix_ms(), Relaxed);
    let r = rewrite_inner(srv);
    let secs = started.elapsed().as_secs() as i64;
    aof.stats.last_rewrite_time_sec.store(secs, Relaxed);
    aof.stats.last_rewrite_ok.store(r.is_ok(), Relaxed);
    aof.stats.rewrite_in_progress.store(false, Relaxed);
    if initial {
        aof.stats.initial_pending.store(false, Relaxed);
    }
    if r.is_ok() {
        aof.stats.rewrites.fetch_add(1, Relaxed);
        crate::log::notice("Background AOF rewrite finished successfully");
    }
    r
}

fn rewrite_inner(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.persist.aof;
    let rdb = srv.config.read().persist.aof_use_rdb_preamble;
    if !aof.enabled() {
        let c = srv.config.read();
        let mut io = aof.io.lock();
        io.dir = Path::new(&c.dir).join(&c.persist.appenddirname);
        io.filename = c.persist.appendfilename.clone();
        io.manifest = std::fs::read(io.dir.join(manifest_name(&io.filename)))
            .ok()
            .and_then(|t| Manifest::parse(&String::from_utf8_lossy(&t)).ok())
            .unwrap_or_default();
    }
    let (dir, filename, base_seq) = {
        let io = aof.io.lock();
        (
            io.dir.clone(),
            io.filename.clone(),
            io.manifest.cur_base_seq + 1,
        )
    };
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let file = File::create(&tmp).map_err(|e| format!("Can't create the temp AOF file: {e}"))?;
    let writer: Arc<dyn BaseWriter> = if rdb {
        Arc::new(RdbBase::create(srv, file)?)
    } else {
        Arc::new(CmdBase {
            out: Mutex::new((std::io::BufWriter::with_capacity(1 << 16, file), 0)),
            now_ms: unix_ms(),
            failed: Mutex::new(None),
        })
    };
    // The switch point: every shard locked and the gate closed (so every command that ran before has
    // been fed), the new incr file opened, and the snapshot begun — in one exclusive section. Holding
    // the locks makes `begin_snapshot`'s own `lock_all` reuse them.
    let ks = &srv.keyspace;
    let snap;
    let switched_incrs;
    {
        let all = ks.lock_all();
        let held = ks.hold(all);
        {
            let mut io = aof.io.lock();
            aof.write_locked(&mut io, aof.mode.load(Relaxed) == FSYNC_ALWAYS);
            if let Some(f) = io.file.as_ref() {
                let _ = f.sync_data();
            }
            if aof.enabled() {
                open_new_incr(&mut io)?;
                switched_incrs = io.manifest.cur_incr_seq;
            } else {
                // AOF off (a BGREWRITEAOF anyway): the new base alone replaces whatever is there.
                switched_incrs = u64::MAX;
            }
            aof.buf.lock().last_db = None;
        }
        snap = ks.begin_snapshot(writer.clone() as Arc<dyn ShardSink>);
        drop(held);
    }
    let Some(snap) = snap else {
        aof.stats.rewrite_scheduled.store(true, Relaxed);
        let _ = std::fs::remove_file(&tmp);
        return Err("another snapshot is running; rewrite scheduled".into());
    };
    crate::log::notice("Background append only file rewriting started");
    snap.walk();
    let finished = writer.finish();
    drop(writer);
    let size = match finished {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    let bname = base_name(&filename, base_seq, rdb);
    std::fs::rename(&tmp, dir.join(&bname)).map_err(|e| e.to_string())?;
    // New manifest: the new base, the incr files from the switch point on; the rest is history.
    let removed;
    {
        let mut io = aof.io.lock();
        let mut m = io.manifest.clone();
        let mut old: Vec<ManifestFile> = m.base.take().into_iter().collect();
        let (keep, drop_): (Vec<_>, Vec<_>) =
            m.incrs.drain(..).partition(|f| f.seq >= switched_incrs);
        old.extend(drop_);
        old.append(&mut m.history);
        m.incrs = keep;
        m.base = Some(ManifestFile {
            name: bname.clone(),
            seq: base_seq,
            kind: FileType::Base,
        });
        m.cur_base_seq = base_seq;
        persist_manifest(&io.dir, &io.filename, &m)?;
        io.manifest = m;
        removed = old;
        let incr_total: u64 = io
            .manifest
            .incrs
            .iter()
            .map(|f| file_size(&io.dir.join(&f.name)))
            .sum();
        aof.stats.base_size.store(size, Relaxed);
        aof.stats.current_size.store(size + incr_total, Relaxed);
        aof.stats.size_at_rewrite.store(size + incr_total, Relaxed);
    }
    for f in removed {
        if f.name != bname {
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// INFO

/// INFO persistence lines for the AOF (after the RDB ones), as Redis 7.0 prints them.
pub fn info(srv: &Server, o: &mut String) {
    use std::fmt::Write as _;
    let aof = &srv.persist.aof;
    let st = &aof.stats;
    let on = aof.enabled();
    let running = st.rewrite_in_progress.load(Relaxed);
    let _ = write!(
        o,
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\n\
         aof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\n\
         aof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:0\r\n\
         aof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\n\
         module_fork_last_cow_size:0\r\n",
        on as u8,
        running as u8,
        (st.rewrite_scheduled.load(Relaxed) || st.initial_pending.load(Relaxed)) as u8,
        st.last_rewrite_time_sec.load(Relaxed),
        if running {
            (unix_ms().saturating_sub(st.rewrite_started_ms.load(Relaxed)) / 1000) as i64
        } else {
            -1
        },
        if st.last_rewrite_ok.load(Relaxed) {
            "ok"
        } else {
            "err"
        },
        st.rewrites.load(Relaxed),
        if st.last_write_ok.load(Relaxed) {
            "ok"
        } else {
            "err"
        },
    );
    if on {
        let pending = aof.buf.lock().data.len();
        let _ = write!(
            o,
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\n\
             aof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
            st.current_size.load(Relaxed),
            st.base_size.load(Relaxed),
            pending,
            st.delayed_fsync.load(Relaxed),
        );
    }
}

/// Whether the AOF is loading (INFO loading).
pub fn loading(srv: &Server) -> bool {
    srv.persist.aof.stats.loading.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.cur_incr_seq, 1);
        assert_eq!(m.render(), text);
        let q = Manifest::parse("file \"a b.aof\" seq 2 type i\n").unwrap();
        assert_eq!(q.incrs[0].name, "a b.aof");
        assert_eq!(q.render(), "file \"a b.aof\" seq 2 type i\n");
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("file x seq 2 type i\nfile y seq 1 type i\n").is_err());
        assert!(Manifest::parse("file x seq 1\n").is_err());
    }

    #[test]
    fn stream_parsing() {
        let mut data = Vec::new();
        encode_argv(&mut data, &[b"SET".as_slice(), b"k", b"v"]);
        data.extend_from_slice(b"#TS:123\r\n");
        encode_argv(&mut data, &[b"DEL".as_slice(), b"k"]);
        let mut seen = Vec::new();
        let r = parse_stream(&data, |a, end| {
            seen.push((a.iter().map(|x| x.to_vec()).collect::<Vec<_>>(), end));
            Ok(())
        })
        .unwrap();
        assert_eq!(r, Parsed::Complete);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].0, vec![b"DEL".to_vec(), b"k".to_vec()]);
        assert_eq!(seen[1].1, data.len());
        // Torn tail.
        let cut = &data[..data.len() - 3];
        let r = parse_stream(cut, |_, _| Ok(())).unwrap();
        assert!(matches!(r, Parsed::Truncated(_)));
        // Garbage in the middle.
        let mut bad = data.clone();
        bad.splice(0..0, b"xx\r\n".iter().copied());
        assert_eq!(parse_stream(&bad, |_, _| Ok(())).unwrap(), Parsed::Bad(0));
    }

    #[test]
    fn encode_is_resp() {
        let mut v = Vec::new();
        encode_argv(&mut v, &[b"SELECT".as_slice(), b"0"]);
        assert_eq!(v, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
    }
}
