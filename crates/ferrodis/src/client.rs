//! Per-connection state. [`Client`] is owned by the connection's task; [`ClientInfo`] is the part other
//! connections can see (CLIENT LIST, CLIENT KILL), shared through the server's registry.

pub use crate::config::OutputLimit;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    /// Skipping this command's reply (was SkipNext when it started).
    Skipping,
}

pub struct Client {
    pub id: u64,
    pub worker: usize,
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub resp3: bool,
    pub authenticated: bool,
    pub reply_mode: ReplyMode,
    /// Close the connection once pending replies are written (QUIT, protocol errors, CLIENT KILL of self).
    pub close_after_reply: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    /// Set by a blocking command that found nothing to pop: the connection waits on it before running the
    /// rest of its pipeline.
    pub blocked: Option<Blocked>,
    /// Inside MULTI: the queued commands.
    pub multi: Option<MultiState>,
    /// Keys WATCHed for the next EXEC.
    pub watch: Option<WatchSet>,
    /// Running the commands of an EXEC or a script: blocking commands must not block, and keys made ready
    /// for blocked clients wait in `ready_keys` until the outermost one ends.
    pub in_exec: bool,
    /// (db, key) made ready inside the running transaction or script, in order (see
    /// `cmd::serve_ready_keys`).
    pub ready_keys: Vec<(usize, Vec<u8>)>,
    /// CLIENT TRACKING state while tracking is on (see crate::tracking).
    pub tracking: Option<Box<Tracking>>,
}

/// A tracking client as writers see it (crate::tracking keeps them by id). Replaced as a whole when CLIENT TRACKING ON changes options.
pub struct TrackingTarget {
    pub info: Arc<ClientInfo>,
    /// Client id invalidations are redirected to (0: none).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// BCAST prefixes, sorted.
    pub prefixes: Vec<Vec<u8>>,
    /// The redirect client was found gone (flag R, `broken_redirect`).
    pub broken: Arc<AtomicBool>,
}

/// A client's tracking settings (kept in `Client.tracking` while tracking is on; see crate::tracking).
pub struct Tracking {
    pub target: Arc<TrackingTarget>,
    /// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) given for the next command.
    pub caching: AtomicBool,
    /// A lower bound of the time the current command started, ns since the registry's base (see the
    /// comment of crate::tracking).
    pub floor: AtomicU64,
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking")
            .field("client", &self.target.info.id)
            .field("caching", &self.caching)
            .finish()
    }
}

#[derive(Default)]
pub struct MultiState {
    pub queued: Vec<Queued>,
    /// A command failed to queue (unknown, wrong arity, ...): EXEC will answer EXECABORT.
    pub errored: bool,
    /// The flags of the queued commands, together (EXEC is refused as a write, or on OOM, when they are).
    pub flags: u32,
}

/// A queued command: registry id and its arguments (flattened, with spans).
pub struct Queued {
    pub id: usize,
    pub argv: Vec<u8>,
    pub spans: Vec<(usize, usize)>,
}

pub struct WatchSet {
    /// Set by any writer of a watched key (inside its shard lock).
    pub flag: Arc<AtomicBool>,
    pub keys: Vec<WatchedKey>,
}

pub struct WatchedKey {
    pub db: usize,
    pub key: Vec<u8>,
    /// Whether the key existed (unexpired) at WATCH time: if it is gone at EXEC without a write (expired
    /// or flushed), the transaction fails too.
    pub existed: bool,
}

/// A command waiting for keys (see keyspace::blocking).
pub struct Blocked {
    pub waiter: Arc<crate::keyspace::blocking::Waiter>,
    /// None = block forever.
    pub deadline: Option<std::time::Instant>,
    /// The reply to send on timeout (null array / null bulk as the command wants).
    pub timeout_reply: Vec<u8>,
    /// The command line, to re-run it when the waiter asks for a retry.
    pub argv: Vec<Vec<u8>>,
}

impl Client {
    /// A fresh client in database 0, RESP2, replies on.
    pub fn new(id: u64, worker: usize, info: Arc<ClientInfo>, authenticated: bool) -> Client {
        Client {
            id,
            worker,
            info,
            db: 0,
            resp3: false,
            authenticated,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            no_evict: false,
            no_touch: false,
            blocked: None,
            multi: None,
            watch: None,
            in_exec: false,
            ready_keys: Vec::new(),
            tracking: None,
        }
    }

    /// Connected over the unix socket or from a loopback address: what the `local` value of
    /// `enable-debug-command` / `enable-protected-configs` / `enable-module-command` lets in.
    pub fn is_local(&self) -> bool {
        self.info.unix
            || self
                .info
                .addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
    }

    /// Subscribed to any channel, pattern or shard channel (RESP2 subscribed mode).
    #[inline]
    pub fn subscribed(&self) -> bool {
        self.info.subs.iter().any(|s| s.load(Relaxed) > 0)
    }
}

/// What CLIENT LIST / CLIENT INFO / CLIENT KILL need to see of a connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub unix: bool,
    /// When the connection was accepted ([`ferrodis_types::clock::mono_ns`]).
    pub created_ns: u64,
    pub name: Mutex<Option<Vec<u8>>>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub db: AtomicU64,
    pub resp: AtomicU8,
    /// Registry index of the last command run.
    pub last_cmd: AtomicU32,
    pub qbuf: AtomicU64,
    pub omem: AtomicU64,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    pub killed: AtomicBool,
    pub kill: tokio::sync::Notify,
    /// The waiter of a blocked command in progress (CLIENT UNBLOCK, CLIENT LIST flags).
    pub waiter: Mutex<Option<Arc<crate::keyspace::blocking::Waiter>>>,
    /// Messages pushed to this client by others (pub/sub messages, keyspace notifications, invalidations),
    /// already encoded in its protocol; its connection task writes them out.
    pub outbox: Mutex<Outbox>,
    pub outbox_notify: tokio::sync::Notify,
    /// Subscription counts (channels, patterns, shard channels), kept by the pub/sub commands.
    pub subs: [AtomicU64; 3],
}

/// Pending pushed messages of a client, with output-buffer-limit bookkeeping.
#[derive(Default)]
pub struct Outbox {
    pub buf: Vec<u8>,
    /// Messages in `buf` (CLIENT LIST oll).
    pub msgs: u64,
    /// Since when the buffer has been over the soft limit.
    soft_since: Option<Instant>,
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, unix: bool) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            unix,
            created_ns: ferrodis_types::clock::mono_ns(),
            name: Mutex::new(None),
            lib_name: Mutex::new(String::new()),
            lib_ver: Mutex::new(String::new()),
            last_active_ms: AtomicU64::new(0),
            db: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            last_cmd: AtomicU32::new(u32::MAX),
            qbuf: AtomicU64::new(0),
            omem: AtomicU64::new(0),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
            waiter: Mutex::new(None),
            outbox: Mutex::new(Outbox::default()),
            outbox_notify: tokio::sync::Notify::new(),
            subs: Default::default(),
        }
    }

    /// Queue a pushed message for this client. Past its class's output buffer limit (hard, or soft for
    /// longer than allowed) the client is disconnected instead, as Redis does, so a subscriber that stops
    /// reading cannot grow the server's memory without bound. Returns false if the client was dropped.
    pub fn push(&self, msg: &[u8], limit: OutputLimit) -> bool {
        let mut o = self.outbox.lock();
        if self.killed.load(Relaxed) {
            return false;
        }
        o.buf.extend_from_slice(msg);
        o.msgs += 1;
        let len = o.buf.len() as u64;
        let over = if limit.hard > 0 && len > limit.hard {
            true
        } else if limit.soft > 0 && len > limit.soft {
            let since = *o.soft_since.get_or_insert_with(Instant::now);
            since.elapsed().as_secs() >= limit.soft_secs
        } else {
            o.soft_since = None;
            false
        };
        self.omem.store(len, Relaxed);
        if over {
            o.buf = Vec::new();
            o.msgs = 0;
            self.omem.store(0, Relaxed);
            drop(o);
            crate::log::warning(&format!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                self.id, self.addr
            ));
            self.request_kill();
            return false;
        }
        drop(o);
        self.outbox_notify.notify_one();
        true
    }

    /// Move pushed messages into `out` (the connection's reply buffer). Returns whether there were any.
    pub fn drain_outbox(&self, out: &mut Vec<u8>) -> bool {
        let mut o = self.outbox.lock();
        if o.buf.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut o.buf);
        } else {
            out.extend_from_slice(&o.buf);
            o.buf.clear();
        }
        o.msgs = 0;
        o.soft_since = None;
        self.omem.store(0, Relaxed);
        true
    }

    pub fn request_kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
        // Wakes the connection task while it waits for input (it waits on the outbox only).
        self.outbox_notify.notify_one();
    }

    /// Milliseconds since the connection was accepted.
    pub fn age_ms(&self) -> u64 {
        ferrodis_types::clock::mono_ns().saturating_sub(self.created_ns) / 1_000_000
    }

    pub fn age_secs(&self) -> u64 {
        self.age_ms() / 1000
    }

    pub fn idle_secs(&self) -> u64 {
        let now = self.age_ms();
        now.saturating_sub(self.last_active_ms.load(Relaxed)) / 1000
    }

    /// One CLIENT LIST line (without the trailing newline), fields as Redis 7.2 prints them.
    pub fn describe(&self, multi: i64, cmd_name: &str, tracking: (&str, i64)) -> String {
        let name = self
            .name
            .lock()
            .as_deref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let mut flags = String::new();
        if self.killed.load(Relaxed) {
            flags.push('A');
        }
        if self.no_evict.load(Relaxed) {
            flags.push('e');
        }
        if self.no_touch.load(Relaxed) {
            flags.push('T');
        }
        if self.waiter.lock().is_some() {
            flags.push('b');
        }
        if multi >= 0 {
            flags.push('x');
        }
        let (tracking_flags, redir) = tracking;
        flags.push_str(tracking_flags);
        if self.unix {
            flags.push('U');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let qbuf = self.qbuf.load(Relaxed);
        let omem = self.omem.load(Relaxed);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll={} omem={} tot-mem={} events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            self.age_secs(),
            self.idle_secs(),
            flags,
            self.db.load(Relaxed),
            self.subs[0].load(Relaxed),
            self.subs[1].load(Relaxed),
            self.subs[2].load(Relaxed),
            multi,
            qbuf,
            16384u64.saturating_sub(qbuf),
            16384,
            self.outbox.lock().msgs,
            omem,
            16384 + qbuf + omem,
            cmd_name,
            redir,
            self.resp.load(Relaxed),
            self.lib_name.lock(),
            self.lib_ver.lock(),
        )
    }
}
