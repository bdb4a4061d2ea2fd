//! Process-wide shared state: the keyspace, configuration, the client registry and statistics.

use crate::client::ClientInfo;
use crate::config::Config;
use crate::keyspace::Keyspace;
use crate::types::EncodingLimits;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// The Redis version Ferrodis reports (INFO, HELLO, the scripts' REDIS_VERSION): the behaviour it matches.
pub const REDIS_VERSION: &str = "7.2.4";

/// A counter written by one thread only (its worker) and read by anyone: a plain load+store, no locked
/// read-modify-write and no cache line shared with other writers.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
}

#[derive(Default)]
pub struct CmdStat {
    pub calls: Counter,
    pub usec: Counter,
    pub rejected: Counter,
    pub failed: Counter,
}

/// Statistics of one worker thread (each worker writes only its own).
#[repr(align(128))]
pub struct WorkerStats {
    pub cmds: Box<[CmdStat]>,
    pub commands: Counter,
    pub net_in: Counter,
    pub net_out: Counter,
    pub hits: Counter,
    pub misses: Counter,
    pub expired: Counter,
    pub connections: Counter,
    pub rejected_connections: Counter,
    pub error_replies: Counter,
    /// Error replies counted on this worker since it started (never reset) and its value when the last
    /// command call ended: a call that saw it move failed (Redis's rule, nested calls included).
    pub error_seq: Counter,
    pub error_mark: Counter,
    /// Writes to the keyspace (rdb_changes_since_last_save once persistence exists).
    pub dirty: Counter,
}

impl WorkerStats {
    fn new(ncmds: usize) -> Self {
        WorkerStats {
            cmds: (0..ncmds).map(|_| CmdStat::default()).collect(),
            commands: Counter::default(),
            net_in: Counter::default(),
            net_out: Counter::default(),
            hits: Counter::default(),
            misses: Counter::default(),
            expired: Counter::default(),
            connections: Counter::default(),
            rejected_connections: Counter::default(),
            error_replies: Counter::default(),
            error_seq: Counter::default(),
            error_mark: Counter::default(),
            dirty: Counter::default(),
        }
    }

    pub fn reset(&self) {
        for c in self.cmds.iter() {
            c.calls.reset();
            c.usec.reset();
            c.rejected.reset();
            c.failed.reset();
        }
        for c in [
            &self.commands,
            &self.net_in,
            &self.net_out,
            &self.hits,
            &self.misses,
            &self.expired,
            &self.connections,
            &self.rejected_connections,
            &self.error_replies,
        ] {
            c.reset();
        }
    }
}

pub struct Server {
    pub keyspace: Keyspace,
    pub config: RwLock<Config>,
    /// Bumped by CONFIG SET so connections can refresh cached settings cheaply.
    pub config_epoch: AtomicU64,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    pub next_client_id: AtomicU64,
    pub connected: AtomicUsize,
    /// Clients waiting in a blocking command (INFO blocked_clients).
    pub blocked_clients: AtomicUsize,
    pub workers: Box<[WorkerStats]>,
    /// Error reply counts by error code (INFO errorstats); errors are off the hot path.
    pub errorstats: Mutex<HashMap<String, u64>>,
    pub active_expire: AtomicBool,
    pub start: Instant,
    pub start_unix_ms: u64,
    pub run_id: String,
    pub shutdown: tokio::sync::Notify,
    pub shutting_down: AtomicBool,
    pub peak_memory: AtomicU64,
    /// Bytes allocated, sampled from jemalloc by the background cycle (for the maxmemory check on the hot path).
    pub used_memory: AtomicU64,
    /// Whether any consumer of key events is enabled (keyspace notifications, client tracking): when
    /// false, writes record nothing.
    pub key_events: AtomicBool,
    /// Pub/Sub subscriptions (channels, patterns, shard channels).
    pub pubsub: crate::pubsub::PubSub,
    /// `notify-keyspace-events` flags (crate::events bits), readable without the config lock.
    pub notify_flags: std::sync::atomic::AtomicU32,
    /// Clients with CLIENT TRACKING on (their reads are recorded and writes invalidate them).
    pub tracking_clients: AtomicUsize,
    /// Copy of `maxmemory` readable without the config lock.
    pub maxmemory: AtomicU64,
    /// Compact-encoding thresholds, readable without any lock (CONFIG SET stores them).
    pub encoding: AtomicLimits,
    /// Scripting state shared by all workers (busy script, kill request, caches).
    pub scripting: crate::scripts::Scripting,
    /// RDB snapshots and the AOF.
    pub persist: crate::persist_state::Persist,
}

/// [`EncodingLimits`] as relaxed atomics: read on every collection write, written only by CONFIG SET, so
/// readers on all cores share the cache line without contention.
#[derive(Default)]
pub struct AtomicLimits([AtomicU64; 8]);

impl AtomicLimits {
    pub fn new(l: EncodingLimits) -> Self {
        let a = AtomicLimits::default();
        a.set(l);
        a
    }

    pub fn get(&self) -> EncodingLimits {
        let v = |i: usize| self.0[i].load(Relaxed);
        EncodingLimits {
            hash_max_listpack_entries: v(0) as usize,
            hash_max_listpack_value: v(1) as usize,
            set_max_intset_entries: v(2) as usize,
            set_max_listpack_entries: v(3) as usize,
            set_max_listpack_value: v(4) as usize,
            zset_max_listpack_entries: v(5) as usize,
            zset_max_listpack_value: v(6) as usize,
            list_max_listpack_size: v(7) as i64,
        }
    }

    pub fn set(&self, l: EncodingLimits) {
        let vals = [
            l.hash_max_listpack_entries as u64,
            l.hash_max_listpack_value as u64,
            l.set_max_intset_entries as u64,
            l.set_max_listpack_entries as u64,
            l.set_max_listpack_value as u64,
            l.zset_max_listpack_entries as u64,
            l.zset_max_listpack_value as u64,
            l.list_max_listpack_size as u64,
        ];
        for (a, v) in self.0.iter().zip(vals) {
            a.store(v, Relaxed);
        }
    }
}

impl Server {
    /// `ncmds`: the size of the command table (`cmd::Registry::get().len()`), for the per-worker command
    /// statistics.
    pub fn new(config: Config, ncmds: usize) -> Server {
        let nworkers = config.threads.max(1);
        Server {
            keyspace: Keyspace::new(config.databases, nworkers),
            config_epoch: AtomicU64::new(0),
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            connected: AtomicUsize::new(0),
            blocked_clients: AtomicUsize::new(0),
            workers: (0..nworkers).map(|_| WorkerStats::new(ncmds)).collect(),
            errorstats: Mutex::new(HashMap::new()),
            active_expire: AtomicBool::new(config.active_expire),
            start: Instant::now(),
            start_unix_ms: unix_ms(),
            run_id: (0..40)
                .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
                .collect(),
            shutdown: tokio::sync::Notify::new(),
            shutting_down: AtomicBool::new(false),
            peak_memory: AtomicU64::new(0),
            used_memory: AtomicU64::new(0),
            maxmemory: AtomicU64::new(config.maxmemory),
            key_events: AtomicBool::new(crate::events::active(config.notify_keyspace_events)),
            pubsub: {
                let p = crate::pubsub::PubSub::new();
                p.set_limit(config.client_output_buffer_limit[2]);
                p
            },
            notify_flags: std::sync::atomic::AtomicU32::new(config.notify_keyspace_events),
            tracking_clients: AtomicUsize::new(0),
            encoding: AtomicLimits::new(config.encoding),
            scripting: {
                let s = crate::scripts::Scripting::new();
                s.busy_threshold_ms
                    .store(config.busy_reply_threshold, Relaxed);
                s
            },
            persist: crate::persist_state::Persist::new(&config),
            config: RwLock::new(config),
        }
    }

    pub fn request_shutdown(&self) {
        self.shutting_down.store(true, Relaxed);
        self.shutdown.notify_waiters();
        self.shutdown.notify_one();
    }

    /// An error reply was sent (or is part of a reply) to a client of `worker`: errorstats and
    /// total_error_replies count it, and the command running now fails (see [`Server::errors_since_mark`]).
    pub fn count_error_reply(&self, worker: usize, msg: &str) {
        self.record_error(msg);
        let w = &self.workers[worker];
        w.error_replies.add(1);
        w.error_seq.add(1);
    }

    /// Whether error replies were counted on `worker` since the previous call of this function (Redis
    /// decides so whether a command call failed, so the errors of commands a transaction or script ran
    /// belong to those commands, not to EXEC or EVAL).
    #[inline]
    pub fn errors_since_mark(&self, worker: usize) -> bool {
        let w = &self.workers[worker];
        let seq = w.error_seq.get();
        if seq == w.error_mark.get() {
            return false;
        }
        w.error_mark.set(seq);
        true
    }

    fn record_error(&self, msg: &str) {
        let code = msg.split(' ').next().unwrap_or("ERR");
        let mut m = self.errorstats.lock();
        if let Some(n) = m.get_mut(code) {
            *n += 1;
        } else if m.len() < 128 {
            m.insert(code.to_string(), 1);
        } else {
            *m.entry("ERRORSTATS_OVERFLOW".into()).or_default() += 1;
        }
    }

    /// Push the settings that the hot path reads without the config lock (atomics) from the config.
    pub fn apply_config(&self) {
        let c = self.config.read();
        self.maxmemory.store(c.maxmemory, Relaxed);
        self.encoding.set(c.encoding);
        crate::log::set_level(&c.loglevel);
        self.pubsub.set_limit(c.client_output_buffer_limit[2]);
        self.scripting
            .busy_threshold_ms
            .store(c.busy_reply_threshold, Relaxed);
        let nf = c.notify_keyspace_events;
        self.notify_flags.store(nf, Relaxed);
        // Key events are recorded while keyspace notifications are on (client tracking will OR its own
        // consumer in here).
        self.key_events.store(crate::events::active(nf), Relaxed);
        drop(c);
        self.config_epoch.fetch_add(1, Relaxed);
    }

    /// Read jemalloc's allocated/resident byte counts now (advancing its stats epoch), update the sampled
    /// `used_memory` and the peak. Returns (allocated, active, resident).
    pub fn refresh_memory(&self) -> (u64, u64, u64) {
        use tikv_jemalloc_ctl::{epoch, stats};
        let _ = epoch::advance();
        let allocated = stats::allocated::read().unwrap_or(0) as u64;
        let active = stats::active::read().unwrap_or(0) as u64;
        let resident = stats::resident::read().unwrap_or(0) as u64;
        self.used_memory.store(allocated, Relaxed);
        self.peak_memory.fetch_max(allocated, Relaxed);
        (allocated, active, resident)
    }

    /// Over `maxmemory`? (Eviction policies are not implemented yet: every policy refuses writes that need
    /// memory once the limit is reached, as `noeviction` does.)
    #[inline]
    pub fn over_maxmemory(&self) -> bool {
        let max = self.maxmemory.load(Relaxed);
        max != 0 && self.used_memory.load(Relaxed) > max
    }

    /// Sum a per-worker counter over all workers.
    pub fn sum(&self, f: impl Fn(&WorkerStats) -> u64) -> u64 {
        self.workers.iter().map(f).sum()
    }
}

pub use ferrodis_types::clock::{mono_ns, unix_ms, unix_us};

/// Time for a batch of commands with one clock read per command: "now" for a command is the batch's wall
/// clock plus the monotonic time elapsed since, and each command's duration is the lap since the previous.
pub struct BatchClock {
    unix_ms: u64,
    /// Monotonic nanoseconds at the start of the batch.
    start_ns: u64,
    /// Monotonic nanoseconds at the start of the current command.
    lap_ns: u64,
}

impl BatchClock {
    pub fn new() -> Self {
        let start_ns = mono_ns();
        BatchClock {
            unix_ms: unix_ms(),
            start_ns,
            lap_ns: start_ns,
        }
    }

    /// Wall-clock unix milliseconds at the start of the current command.
    pub fn now_ms(&self) -> u64 {
        self.unix_ms + (self.lap_ns - self.start_ns) / 1_000_000
    }

    /// Microseconds since the previous lap (the command just run); starts the next lap.
    pub fn lap_us(&mut self) -> u64 {
        let now = mono_ns().max(self.lap_ns);
        let us = (now - self.lap_ns) / 1000;
        self.lap_ns = now;
        us
    }

    /// The monotonic time ([`mono_ns`]) of the last lap (the end of the last command run).
    pub fn mono_ns(&self) -> u64 {
        self.lap_ns
    }
}

impl Default for BatchClock {
    fn default() -> Self {
        Self::new()
    }
}
