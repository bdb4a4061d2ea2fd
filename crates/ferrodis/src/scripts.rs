//! The shared state of scripting that the server holds (one per server): the EVAL script cache, the function
//! libraries, the busy scripts and their kill flags. Plain data, below the server; what runs scripts and
//! the commands that manage them are in `scripting`.

use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc;

/// One cached EVAL script.
pub struct Script {
    pub sha: [u8; 40],
    /// The SHA as text (error replies name the script by it).
    pub name: Arc<str>,
    pub body: Arc<[u8]>,
    pub flags: u32,
    pub policy: AtomicU8,
}

/// What a busy script is doing (FUNCTION STATS running_script).
#[derive(Clone)]
pub struct RunningInfo {
    pub name: String,
    pub argv: Vec<Vec<u8>>,
    pub start: std::time::Instant,
}

/// The flags of one busy script, shared between its thread (which polls `kill` from its hook and sets
/// `wrote`) and the KILL commands of every other connection.
#[derive(Default)]
pub struct BusyFlags {
    /// SCRIPT KILL / FUNCTION KILL asked this script to stop.
    pub kill: AtomicBool,
    /// The script already wrote (it cannot be killed).
    pub wrote: AtomicBool,
}

/// A script that has run past `busy-reply-threshold`.
pub struct BusyScript {
    /// Unique per run (the order scripts became busy in).
    pub id: u64,
    /// [`BUSY_EVAL`] or [`BUSY_FUNCTION`].
    pub kind: u8,
    pub flags: Arc<BusyFlags>,
    /// What it is running, for FUNCTION STATS.
    pub running: RunningInfo,
}

/// Shared scripting state (one per server).
#[derive(Default)]
pub struct Scripting {
    /// Summary of `busy_list` for the hot path: 0 when no script is busy, else the kind ([`BUSY_EVAL`] or
    /// [`BUSY_FUNCTION`]) of the script that became busy first. While it is set, other clients' commands
    /// (except those flagged allow-busy) get a BUSY error.
    pub busy: AtomicU8,
    /// Every script now past the busy threshold, in the order they became busy (one per worker thread at
    /// most: a thread runs one script at a time).
    pub busy_list: Mutex<Vec<BusyScript>>,
    pub(crate) next_busy_id: AtomicU64,
    /// EVAL script cache by lower-case hex SHA1.
    pub scripts: RwLock<HashMap<[u8; 40], Arc<Script>, foldhash::fast::RandomState>>,
    /// `busy-reply-threshold` in ms (kept here so a script start reads no config lock).
    pub busy_threshold_ms: AtomicU64,
    /// Bumped by SCRIPT FLUSH: worker states drop their compiled scripts.
    pub scripts_epoch: AtomicU64,
    /// Total body bytes of cached scripts (INFO used_memory_scripts_eval).
    pub scripts_bytes: AtomicU64,
    /// Function libraries.
    pub libs: RwLock<Libraries>,
    /// Bumped on every change of the libraries: worker states reload them.
    pub libs_gen: AtomicU64,
    /// Lua memory of the worker states, summed (INFO used_memory_lua), updated after each run.
    pub lua_memory: AtomicU64,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: commands flagged noscript may run inside scripts (for tests).
    pub allow_noscript: AtomicBool,
}

/// A registered function's metadata.
pub struct FuncMeta {
    pub name: String,
    pub library: String,
    pub flags: u32,
    pub desc: Option<String>,
    pub policy: AtomicU8,
}

pub struct Library {
    pub name: String,
    pub code: Arc<[u8]>,
    pub functions: BTreeMap<String, Arc<FuncMeta>>,
}

#[derive(Default)]
pub struct Libraries {
    pub libs: BTreeMap<String, Library>,
    pub funcs: HashMap<String, Arc<FuncMeta>>,
}
