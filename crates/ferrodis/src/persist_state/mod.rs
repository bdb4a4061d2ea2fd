//! The persistence state a [`Server`](crate::server::Server) holds (`Server.persist`): the AOF's buffers,
//! files and statistics ([`aof::Aof`]), the RDB statistics ([`RdbState`]). Data and constructors only, below
//! the server: the logic (feeding, saving, loading, rewriting, INFO persistence) is in crate::persist.

pub mod aof;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};

/// Persistence state of a server.
pub struct Persist {
    pub aof: aof::Aof,
    pub rdb: RdbState,
    /// SHUTDOWN already did (or declined) the final save.
    pub final_save_done: AtomicBool,
}

impl Persist {
    pub fn new(cfg: &crate::config::Config) -> Self {
        Persist {
            aof: aof::Aof::new(cfg),
            rdb: RdbState::new(),
            final_save_done: AtomicBool::new(false),
        }
    }
}

/// RDB statistics and flags (INFO persistence).
pub struct RdbState {
    pub bgsave_in_progress: AtomicBool,
    /// Unix seconds of the last successful save (or the start).
    pub last_save: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    pub last_bgsave_time_sec: AtomicI64,
    /// Unix ms when the running background save started.
    pub bgsave_started_ms: AtomicU64,
    /// Unix seconds of the last background save attempt (for the retry delay after a failure).
    pub last_bgsave_try: AtomicU64,
    pub saves: AtomicU64,
    /// The dirty counter (sum over workers) when the last successful save started.
    pub dirty_at_save: AtomicU64,
    /// Bytes serialized by writer threads during the last save (their copies before writing: our
    /// equivalent of the copy-on-write size).
    pub last_cow_size: AtomicU64,
    pub loading: AtomicBool,
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
    /// BGSAVE SCHEDULE asked for a save while another snapshot (AOF rewrite) ran.
    pub scheduled: AtomicBool,
}

impl RdbState {
    pub fn new() -> Self {
        RdbState {
            bgsave_in_progress: AtomicBool::new(false),
            last_save: AtomicU64::new(ferrodis_types::clock::unix_ms() / 1000),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_time_sec: AtomicI64::new(-1),
            bgsave_started_ms: AtomicU64::new(0),
            last_bgsave_try: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            dirty_at_save: AtomicU64::new(0),
            last_cow_size: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            last_load_keys_loaded: AtomicU64::new(0),
            last_load_keys_expired: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
        }
    }
}

impl Default for RdbState {
    fn default() -> Self {
        Self::new()
    }
}
