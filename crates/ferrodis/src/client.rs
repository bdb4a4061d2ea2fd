//! Per-connection state. [`Client`] is owned by the connection's task; [`ClientInfo`] is the part other
//! connections can see (CLIENT LIST, CLIENT KILL), shared through the server's registry.

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

/// What CLIENT LIST / CLIENT INFO / CLIENT KILL need to see of a connection.
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub unix: bool,
    pub created: Instant,
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
}

impl ClientInfo {
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, unix: bool) -> Self {
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            unix,
            created: Instant::now(),
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
        }
    }

    pub fn request_kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill.notify_one();
    }

    pub fn age_secs(&self) -> u64 {
        self.created.elapsed().as_secs()
    }

    pub fn idle_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_active_ms.load(Relaxed)) / 1000
    }

    /// One CLIENT LIST line (without the trailing newline), fields as Redis 7.2 prints them.
    pub fn describe(&self, multi: i64, cmd_name: &str) -> String {
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
        if self.unix {
            flags.push('U');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let qbuf = self.qbuf.load(Relaxed);
        let omem = self.omem.load(Relaxed);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            self.age_secs(),
            self.idle_secs(),
            flags,
            self.db.load(Relaxed),
            multi,
            qbuf,
            16384u64.saturating_sub(qbuf),
            16384,
            omem,
            16384 + qbuf + omem,
            cmd_name,
            self.resp.load(Relaxed),
            self.lib_name.lock(),
            self.lib_ver.lock(),
        )
    }
}
