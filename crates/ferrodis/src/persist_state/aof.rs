//! The AOF state a server holds (`Server.persist.aof`): the feed buffer, the files, the statistics. Data and
//! its constructor only: feeding, writing, loading and rewriting are in crate::persist::aof.

use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

pub const FSYNC_NO: u8 = 0;
pub const FSYNC_ALWAYS: u8 = 1;
pub const FSYNC_EVERYSEC: u8 = 2;

pub(crate) fn fsync_mode(s: &str) -> u8 {
    match s {
        "always" => FSYNC_ALWAYS,
        "no" => FSYNC_NO,
        _ => FSYNC_EVERYSEC,
    }
}

// ---------------------------------------------------------------------------------------------------------
// The AOF state

/// What was fed and not written yet.
pub(crate) struct FeedBuf {
    pub(crate) data: Vec<u8>,
    /// Total bytes ever fed (the offset just after `data`).
    pub(crate) end: u64,
    /// The database the last command in the stream ran in (None: emit SELECT before the next command).
    pub(crate) last_db: Option<usize>,
    /// Unix seconds of the last `#TS:` annotation.
    pub(crate) last_ts: u64,
    /// Ordering (see [`Aof::note_write`]): the next ticket to emit, and those fed ahead of it.
    pub(crate) next_emit: u64,
    pub(crate) held: std::collections::BTreeMap<u64, Held>,
    /// Since when the buffer waits for ticket `next_emit` (a ticket never fed is skipped after
    /// [`STALL_LIMIT`]).
    pub(crate) stalled_since: Option<Instant>,
}

/// Commands fed ahead of their turn (an empty `cmds`: a ticket consumed by a transaction fed earlier).
pub(crate) struct Held {
    pub(crate) cmds: Vec<(usize, Vec<u8>)>,
    pub(crate) wrap: bool,
}

/// How long the stream waits for a ticket that was taken and never fed (a command that failed in an
/// unexpected way) before it moves on.
pub(crate) const STALL_LIMIT: Duration = Duration::from_secs(1);

/// The files (guarded by the I/O lock).
pub(crate) struct Io {
    pub(crate) dir: PathBuf,
    pub(crate) filename: String,
    pub(crate) manifest: Manifest,
    /// The incr file being appended to.
    pub(crate) file: Option<File>,
    /// Bytes written to the current incr file.
    pub(crate) incr_size: u64,
}

/// Statistics and flags for INFO persistence.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) rewrite_in_progress: AtomicBool,
    pub(crate) rewrite_scheduled: AtomicBool,
    /// CONFIG SET appendonly yes: the initial rewrite is about to start.
    pub(crate) initial_pending: AtomicBool,
    pub(crate) last_rewrite_time_sec: AtomicI64,
    pub(crate) rewrite_started_ms: AtomicU64,
    pub(crate) last_rewrite_ok: AtomicBool,
    pub(crate) last_write_ok: AtomicBool,
    pub(crate) base_size: AtomicU64,
    /// Total AOF size (base + incr files).
    pub(crate) current_size: AtomicU64,
    /// Total size right after the last rewrite or the load (auto-aof-rewrite's reference).
    pub(crate) size_at_rewrite: AtomicU64,
    pub(crate) rewrites: AtomicU64,
    pub(crate) delayed_fsync: AtomicU64,
    pub(crate) last_fsync_ms: AtomicU64,
    pub(crate) loading: AtomicBool,
}

pub struct Aof {
    /// Feeding is on (appendonly yes and loading done).
    pub(crate) on: AtomicBool,
    pub(crate) mode: AtomicU8,
    pub(crate) timestamps: AtomicBool,
    pub(crate) buf: Mutex<FeedBuf>,
    pub(crate) io: Mutex<Io>,
    /// Bytes of the fed stream written to the file (and, with `always`, fsynced).
    pub(crate) written: AtomicU64,
    /// Bytes of the fed stream known fsynced.
    pub(crate) synced: AtomicU64,
    /// The highest offset a waiter asked to have fsynced (the fsync thread sleeps on `req_cv`).
    pub(crate) req: Mutex<u64>,
    pub(crate) req_cv: Condvar,
    /// Blocking waiters ([`Aof::wait_durable`]) sleep on this.
    pub(crate) done_cv: Condvar,
    /// `synced` for async waiters.
    pub(crate) synced_tx: tokio::sync::watch::Sender<u64>,
    pub(crate) stats: Stats,
    pub(crate) bg_started: AtomicBool,
    /// The next propagation ticket ([`Aof::note_write`]).
    pub(crate) next_ticket: AtomicU64,
}

/// Commands fed inside an EXEC: (client id, [(db, encoded command)], their tickets).
pub(crate) type ExecBuf = (u64, Vec<(usize, Vec<u8>)>, Vec<u64>);

thread_local! {
    /// The end offset of the last thing this thread fed (what `wait_durable` waits for).
    pub(crate) static FED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Commands fed by this thread inside the EXEC it is running: (client id, [(db, encoded)]).
    pub(crate) static EXEC: RefCell<Option<ExecBuf>> = const { RefCell::new(None) };
    /// The ticket of the command running on this thread (0: none yet).
    pub(crate) static TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The highest ticket this thread fed.
    pub(crate) static WAIT_TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
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
}
