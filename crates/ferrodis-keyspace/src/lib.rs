//! The shared keyspace, lock-striped by hash slot (docs/design/execution-model.md).
//!
//! slot = CRC16(key or its {hashtag}) mod 16384, exactly as Redis Cluster computes it. Slots map to
//! `NUM_SHARDS` shards in contiguous runs (shard = slot / SLOTS_PER_SHARD), so a hash tag always lands in one
//! shard and cluster mode can later hand whole slot ranges to other nodes. Each shard is one mutex around the
//! tables of all logical databases for its slots.
//!
//! Lock order: shards are always locked in ascending index order (see [`Keyspace::lock_many`] and
//! [`Keyspace::lock_all`]); nothing else is locked while a shard lock is held, except further shards in that
//! order. Shard locks are never held across an `.await`.
//!
//! This crate knows nothing of commands: the command layer reaches it through [`blocking::Writer`] (the
//! writer that makes a key ready, for serving blocked clients) and [`snapshot::ShardSink`] (where a
//! snapshot's entries go).

pub mod blocking;
pub mod entry;
pub mod gate;
pub mod snapshot;
pub mod table;

use entry::Entry;
// The layer below, under the paths this crate used when it was a module of the server crate.
use ferrodis_types as types;
use ferrodis_types::log;

/// A check that keeps the key specs honest: while it is on, a command whose keys its key specs fully
/// declare may lock only those keys' shards (by key); locking another key's shard panics, which fails the
/// test that ran the command (a panic stays inside its connection). Debug builds check always; release
/// builds when started with `FERRODIS_CHECK_KEYS=1` (the integration tests do). Shards locked by index
/// (SCAN, KEYS, FLUSHALL) and the dispatcher's own work (serving blocked clients) are not checked.
pub mod declared {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    static ON: AtomicBool = AtomicBool::new(cfg!(debug_assertions));

    thread_local! {
        /// The running command's name and the shards its keys are in; None: not checked.
        static CURRENT: RefCell<Option<(&'static str, Vec<usize>)>> = const { RefCell::new(None) };
    }

    /// Switch the check on (at startup).
    pub fn enable() {
        ON.store(true, Relaxed);
    }

    #[inline]
    pub fn checking() -> bool {
        ON.load(Relaxed)
    }

    /// Set the running command's declared shards (None: not checked); returns what was set before, for
    /// nested commands (a script's `redis.call`) to restore.
    pub fn set(current: Option<(&'static str, Vec<usize>)>) -> Option<(&'static str, Vec<usize>)> {
        CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), current))
    }

    #[cold]
    pub fn check(idx: usize, key: &[u8]) {
        CURRENT.with(|c| {
            if let Some((name, shards)) = &*c.borrow() {
                assert!(
                    shards.contains(&idx),
                    "command '{name}' locked key {:?}, which its key specs do not declare",
                    String::from_utf8_lossy(key)
                );
            }
        });
    }
}
use parking_lot::{Mutex, MutexGuard};
use table::Table;

pub const NUM_SLOTS: usize = 16384;
pub const NUM_SHARDS: usize = 1024;
const SLOTS_PER_SHARD: usize = NUM_SLOTS / NUM_SHARDS;
/// The most keys [`Keyspace::reserve`] sizes a database for in one go (a size hint from a file or a
/// command never pre-allocates more than this).
pub const MAX_RESERVE: usize = 1 << 24;
/// Bits of a SCAN cursor that hold the shard index.
pub const SHARD_BITS: u32 = NUM_SHARDS.trailing_zeros();

/// Slice-by-16 tables: a key's slot costs about a quarter of the byte-at-a-time instructions.
const CRC16: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);

/// The hash slot of a key, honouring `{hashtag}` as Redis Cluster does.
pub fn key_slot(key: &[u8]) -> usize {
    let tagged = match memchr::memchr(b'{', key) {
        Some(open) => match memchr::memchr(b'}', &key[open + 1..]) {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    (CRC16.checksum(tagged) as usize) & (NUM_SLOTS - 1)
}

#[inline]
pub fn shard_of(key: &[u8]) -> usize {
    key_slot(key) / SLOTS_PER_SHARD
}

/// One stripe of the keyspace: every database's table for this shard's slots.
pub struct Shard {
    dbs: Box<[Table]>,
    /// Clients blocked on keys of this shard (allocated while any exist).
    waiters: Option<Box<blocking::Waiters>>,
    /// Hashes of this shard that have fields with TTLs (for the active expiry cycle; like Redis's
    /// db->hexpires). Entries may be stale (key deleted, TTLs gone): the cycle drops those.
    hexpires: Option<Box<KeySet>>,
    /// WATCHed keys of this shard and the flags of the clients watching them.
    watchers: Option<Box<WatchMap>>,
}

type KeySet = std::collections::HashSet<(usize, Box<[u8]>)>;
type WatchMap = std::collections::HashMap<
    (usize, Box<[u8]>),
    Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>,
>;

impl Shard {
    fn new(databases: usize) -> Self {
        Shard {
            dbs: (0..databases).map(|_| Table::new()).collect(),
            waiters: None,
            hexpires: None,
            watchers: None,
        }
    }

    pub fn add_watch(
        &mut self,
        db: usize,
        key: &[u8],
        flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let list = self
            .watchers
            .get_or_insert_with(Default::default)
            .entry((db, key.into()))
            .or_default();
        if !list.iter().any(|f| std::sync::Arc::ptr_eq(f, flag)) {
            list.push(flag.clone());
        }
    }

    pub fn remove_watch(
        &mut self,
        db: usize,
        key: &[u8],
        flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        if let Some(w) = self.watchers.as_mut() {
            let k = (db, Box::<[u8]>::from(key));
            if let Some(list) = w.get_mut(&k) {
                list.retain(|f| !std::sync::Arc::ptr_eq(f, flag));
                if list.is_empty() {
                    w.remove(&k);
                }
            }
            if w.is_empty() {
                self.watchers = None;
            }
        }
    }

    /// A key was written: fail the transactions watching it.
    #[inline]
    pub fn touch_watched(&mut self, db: usize, key: &[u8]) {
        if let Some(w) = self.watchers.as_ref() {
            if let Some(list) = w.get(&(db, Box::<[u8]>::from(key))) {
                for f in list {
                    f.store(true, std::sync::atomic::Ordering::Release);
                }
            }
        }
    }

    /// SWAPDB a b: a watched key of either database is touched if it exists in either (as Redis does).
    pub fn touch_watched_swap(&mut self, a: usize, b: usize, now_ms: u64) {
        let Some(w) = self.watchers.as_ref() else {
            return;
        };
        for ((db, key), list) in w.iter() {
            if (*db == a || *db == b)
                && (self.get(a, key, now_ms).is_some() || self.get(b, key, now_ms).is_some())
            {
                for f in list {
                    f.store(true, std::sync::atomic::Ordering::Release);
                }
            }
        }
    }

    /// Remember that the hash at `key` has field TTLs (HEXPIRE and friends call this).
    pub fn note_field_ttls(&mut self, db: usize, key: &[u8]) {
        self.hexpires
            .get_or_insert_with(Default::default)
            .insert((db, key.into()));
    }

    /// Reclaim due hash fields nobody touches: up to `budget` fields over this shard's hashes with field
    /// TTLs; deletes hashes that become empty. Returns (fields removed, keys deleted).
    pub fn expire_hash_fields(&mut self, now_ms: u64, budget: usize) -> (usize, usize) {
        let Some(set) = self.hexpires.as_ref() else {
            return (0, 0);
        };
        let keys: Vec<(usize, Box<[u8]>)> = set.iter().cloned().collect();
        let (mut fields, mut deleted) = (0, 0);
        let mut done = Vec::new();
        for (db, key) in keys {
            if fields >= budget {
                break;
            }
            let table = self.db_mut(db);
            let (gone, keep) = match table.find_mut(&key).and_then(|e| e.value_mut()) {
                Some(crate::types::Value::Hash(h)) => {
                    fields += h.expire_fields(now_ms, budget - fields);
                    (h.is_empty(), h.has_field_ttls())
                }
                _ => (false, false),
            };
            if gone {
                table.remove(&key);
                deleted += 1;
            }
            if gone || !keep {
                done.push((db, key));
            }
        }
        if let Some(set) = self.hexpires.as_mut() {
            for k in done {
                set.remove(&k);
            }
            if set.is_empty() {
                self.hexpires = None;
            }
        }
        (fields, deleted)
    }

    /// Read access to one database's table.
    #[inline]
    pub fn db(&self, db: usize) -> &Table {
        &self.dbs[db]
    }

    /// Write access to one database's table (a running snapshot saves each entry before `Table`'s write
    /// paths change it).
    #[inline]
    pub fn db_mut(&mut self, db: usize) -> &mut Table {
        &mut self.dbs[db]
    }

    /// Write access to all databases of this shard (SWAPDB, FLUSHALL, MOVE). Whole tables may move
    /// between databases here, so a running snapshot saves everything of this shard it has not saved yet.
    pub fn dbs_mut(&mut self) -> &mut [Table] {
        self.snapshot_finish();
        &mut self.dbs
    }

    /// Look a key up, treating an expired entry as absent (it is removed lazily; `on_expire` is told).
    /// Returns a mutable reference because callers usually go on to touch the clock or the value.
    pub fn lookup_mut(&mut self, db: usize, key: &[u8], now_ms: u64) -> Lookup<'_> {
        if self.dbs[db].is_empty() {
            return Lookup::Missing;
        }
        match self.db_mut(db).find_live_mut(key, now_ms) {
            table::Found::Live(e) => Lookup::Found(e),
            table::Found::Expired(_) => Lookup::Expired,
            table::Found::Missing => Lookup::Missing,
        }
    }

    /// Read-only lookup; an expired entry reads as absent (left for the writer or the active cycle to delete,
    /// as a replica would).
    pub fn get(&self, db: usize, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.dbs[db].find(key).filter(|e| !e.is_expired(now_ms))
    }
}

pub enum Lookup<'a> {
    Found(&'a mut Entry),
    /// The key existed but its TTL had passed; it has just been deleted.
    Expired,
    Missing,
}

impl<'a> Lookup<'a> {
    pub fn found(self) -> Option<&'a mut Entry> {
        match self {
            Lookup::Found(e) => Some(e),
            _ => None,
        }
    }
}

pub struct Keyspace {
    shards: Box<[Mutex<Shard>]>,
    snapshot: snapshot::SnapshotCtl,
    databases: usize,
    /// The keyspace-wide exclusive gate (worker threads run commands on its shared side).
    pub gate: gate::Gate,
}

/// Access to one locked shard: either a lock taken now, or a shard this thread already holds for a
/// transaction or script ([`Keyspace::hold`]), which is then reused instead of locked again.
pub enum ShardGuard<'a> {
    Locked(MutexGuard<'a, Shard>),
    Held(&'a mut Shard),
}

impl std::ops::Deref for ShardGuard<'_> {
    type Target = Shard;
    #[inline]
    fn deref(&self) -> &Shard {
        match self {
            ShardGuard::Locked(g) => g,
            ShardGuard::Held(s) => s,
        }
    }
}

impl std::ops::DerefMut for ShardGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Shard {
        match self {
            ShardGuard::Locked(g) => g,
            ShardGuard::Held(s) => s,
        }
    }
}

thread_local! {
    /// Shards this thread holds for the transaction or script it is running (sorted by index), as raw
    /// pointers into their locked mutexes. Set only by [`Held`], which keeps the locks for as long.
    static HELD: std::cell::RefCell<Vec<(usize, *mut Shard)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// What lock requests of this thread mean right now: one of the `MODE_*` values.
    static MODE: std::cell::Cell<u8> = const { std::cell::Cell::new(MODE_PLAIN) };
    /// Script scopes: whether the script touched a shard outside its declared keys' shards.
    static DEVIATED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Exclusive script scope: the declared keys' shards (sorted).
    static DECLARED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Declared-keys script scope: shards locked on the way (beyond the declared ones), unlocked at its end.
    static EXTRA: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Lock requests take their lock now.
const MODE_PLAIN: u8 = 0;
/// A transaction holds its planned shards ([`Keyspace::hold`]); requests for them reuse the locks.
const MODE_HELD: u8 = 1;
/// A script holds its declared keys' shards; other shards are locked on the way and kept until its end.
const MODE_SCRIPT_HELD: u8 = 2;
/// A script runs on the exclusive side of the gate; requests lock as usual and deviations are noted.
const MODE_SCRIPT_EXCLUSIVE: u8 = 3;

/// Shard locks held for a whole transaction or script (two-phase locking, docs/design/execution-model.md): while it lives,
/// every lock request of this thread for one of these shards is served from it without locking again, so
/// the commands inside run unchanged and atomically. For a transaction, requests for other shards are a
/// planning error; a script may go on to further shards (see [`Keyspace::script_scope`]).
pub struct Held<'a> {
    ks: &'a Keyspace,
    _guard: MultiGuard<'a>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        HELD.with(|h| h.borrow_mut().clear());
        MODE.with(|m| m.set(MODE_PLAIN));
        for i in EXTRA.with(|e| std::mem::take(&mut *e.borrow_mut())) {
            // SAFETY: `acquire_scoped` locked this shard for the script scope and leaked its guard; nothing
            // refers to it any more (the scope's commands are done).
            unsafe { self.ks.shards[i].force_unlock() };
        }
    }
}

/// The isolation of a running script: see [`Keyspace::script_scope`].
pub struct ScriptScope<'a> {
    inner: ScopeInner<'a>,
}

enum ScopeInner<'a> {
    /// Inside a transaction that already holds what the script may touch.
    Nested,
    Exclusive(#[allow(dead_code)] gate::Exclusive<'a>),
    Declared(#[allow(dead_code)] Held<'a>),
}

impl ScriptScope<'_> {
    /// Whether the script touched a shard outside its declared keys' shards (so far).
    pub fn deviated(&self) -> bool {
        !matches!(self.inner, ScopeInner::Nested) && DEVIATED.with(|d| d.get())
    }
}

impl Drop for ScriptScope<'_> {
    fn drop(&mut self) {
        if matches!(self.inner, ScopeInner::Exclusive(_)) {
            MODE.with(|m| m.set(MODE_PLAIN));
            DECLARED.with(|d| d.borrow_mut().clear());
        }
    }
}

impl Keyspace {
    pub fn new(databases: usize, workers: usize) -> Self {
        Keyspace {
            shards: (0..NUM_SHARDS)
                .map(|_| Mutex::new(Shard::new(databases)))
                .collect(),
            snapshot: snapshot::SnapshotCtl::default(),
            databases,
            gate: gate::Gate::new(workers),
        }
    }

    pub fn databases(&self) -> usize {
        self.databases
    }

    #[inline]
    fn acquire(&self, idx: usize) -> ShardGuard<'_> {
        let mode = MODE.with(|m| m.get());
        if mode != MODE_PLAIN {
            if let Some(g) = self.acquire_scoped(idx, mode) {
                return g;
            }
        }
        ShardGuard::Locked(self.shards[idx].lock())
    }

    /// A lock request inside a transaction or script scope: the held lock, or None to lock as usual.
    #[cold]
    fn acquire_scoped(&self, idx: usize, mode: u8) -> Option<ShardGuard<'_>> {
        if mode == MODE_SCRIPT_EXCLUSIVE {
            if DECLARED.with(|d| d.borrow().binary_search(&idx).is_err()) {
                DEVIATED.with(|d| d.set(true));
            }
            return None;
        }
        let (held, max) = HELD.with(|h| {
            let h = h.borrow();
            let found = h
                .binary_search_by_key(&idx, |(i, _)| *i)
                .ok()
                .map(|at| h[at].1);
            (found, h.last().map(|(i, _)| *i))
        });
        if let Some(p) = held {
            // SAFETY: the pointer targets a shard whose lock this thread holds in a live `Held`; the
            // commands running under it use one guard per shard at a time (as they must with plain
            // locks too), so this is the only live reference to the shard.
            return Some(ShardGuard::Held(unsafe { &mut *p }));
        }
        if mode == MODE_HELD {
            // The plan comes from the commands' key specs, which `declared` checks: this is a bug.
            debug_assert!(
                false,
                "shard {idx} requested outside the transaction's planned locks"
            );
            crate::log::warning(&format!(
                "internal: shard {idx} requested outside the transaction's planned locks"
            ));
            return None;
        }
        // A script touching an undeclared key: take its shard and keep it until the script ends. Above
        // every held shard, waiting keeps the ascending order. Below, it may not wait while holding
        // (another thread may hold it and wait for ours), so it polls: every other thread that holds
        // shard locks either holds one (single-key commands), or took its set all at once without waiting
        // while holding (`lock_many` backs off), or holds them all with the gate closed.
        DEVIATED.with(|d| d.set(true));
        let m = &self.shards[idx];
        let guard = if max.is_none_or(|max| idx > max) {
            m.lock()
        } else {
            let mut spins = 0u32;
            loop {
                if let Some(g) = m.try_lock() {
                    break g;
                }
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        };
        let p: *mut Shard = parking_lot::MutexGuard::leak(guard);
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            let at = h.partition_point(|(i, _)| *i < idx);
            h.insert(at, (idx, p));
        });
        EXTRA.with(|e| e.borrow_mut().push(idx));
        // SAFETY: just locked by this thread and leaked into the scope (unlocked when the scope ends).
        Some(ShardGuard::Held(unsafe { &mut *p }))
    }

    /// Lock the shard that owns `key`.
    #[inline]
    pub fn lock_key(&self, key: &[u8]) -> ShardGuard<'_> {
        let idx = shard_of(key);
        if declared::checking() {
            declared::check(idx, key);
        }
        self.acquire(idx)
    }

    #[inline]
    pub fn lock_shard(&self, idx: usize) -> ShardGuard<'_> {
        self.acquire(idx)
    }

    /// [`Keyspace::lock_shard`] without waiting, for background work that may skip a shard someone holds
    /// (a script holds its declared keys' shards for as long as it runs, busy or not): None when locked.
    pub fn try_lock_shard(&self, idx: usize) -> Option<ShardGuard<'_>> {
        if MODE.with(|m| m.get()) != MODE_PLAIN {
            return Some(self.acquire(idx));
        }
        self.shards[idx].try_lock().map(ShardGuard::Locked)
    }

    /// Lock the shards of several keys, in ascending order (deadlock-free). The returned set maps a key to
    /// its locked shard. It never waits while holding: if a later shard is busy, it lets go of those it has,
    /// waits for that one, and starts over (so a script that must take a lower shard late can never be
    /// waiting on a thread that waits on it).
    pub fn lock_many<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> MultiGuard<'_> {
        let checking = declared::checking();
        let mut idx: Vec<usize> = keys
            .into_iter()
            .map(|k| {
                let i = shard_of(k);
                if checking {
                    declared::check(i, k);
                }
                i
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        if idx.len() <= 1 || MODE.with(|m| m.get()) != MODE_PLAIN {
            let guards = idx.iter().map(|&i| self.acquire(i)).collect();
            return MultiGuard {
                idx,
                guards,
                _gate: None,
            };
        }
        let mut guards = Vec::with_capacity(idx.len());
        loop {
            guards.push(ShardGuard::Locked(self.shards[idx[0]].lock()));
            let busy = idx[1..].iter().find(|&&i| match self.shards[i].try_lock() {
                Some(g) => {
                    guards.push(ShardGuard::Locked(g));
                    false
                }
                None => true,
            });
            match busy {
                None => {
                    return MultiGuard {
                        idx,
                        guards,
                        _gate: None,
                    }
                }
                Some(&i) => {
                    guards.clear();
                    drop(self.shards[i].lock());
                }
            }
        }
    }

    /// Lock every shard: the keyspace-wide exclusive section (FLUSHALL, SWAPDB, ...). It takes the gate's
    /// exclusive side for as long as the returned guard lives (inside a transaction that holds everything,
    /// it reuses those locks). The calling worker is outside the gate afterwards.
    pub fn lock_all(&self) -> MultiGuard<'_> {
        let gate = if MODE.with(|m| m.get()) == MODE_PLAIN {
            self.gate.exclusive(|| false)
        } else {
            None
        };
        MultiGuard {
            idx: (0..NUM_SHARDS).collect(),
            guards: (0..NUM_SHARDS).map(|i| self.acquire(i)).collect(),
            _gate: gate,
        }
    }

    /// Keep the shards of `guard` locked for a transaction running on this thread: until the returned
    /// value is dropped, lock requests of this thread for them reuse these locks.
    pub fn hold<'a>(&'a self, guard: MultiGuard<'a>) -> Held<'a> {
        self.hold_as(guard, MODE_HELD)
    }

    fn hold_as<'a>(&'a self, mut guard: MultiGuard<'a>, mode: u8) -> Held<'a> {
        let ptrs: Vec<(usize, *mut Shard)> = guard
            .idx
            .iter()
            .zip(guard.guards.iter_mut())
            .map(|(&i, g)| (i, &mut **g as *mut Shard))
            .collect();
        HELD.with(|h| *h.borrow_mut() = ptrs);
        MODE.with(|m| m.set(mode));
        Held {
            ks: self,
            _guard: guard,
        }
    }

    /// Isolate a script from every other client until the returned scope is dropped (docs/design/execution-model.md, "Scripts").
    /// `exclusive == false`: the shards of the declared `keys` are locked now and kept (two-phase locking);
    /// a key outside them still works — its shard is taken on the way and kept — and marks the scope as
    /// deviated. `exclusive == true`: the gate's exclusive side (no other worker runs), locks taken per
    /// command as usual; deviation is noted too, so the caller can learn which scripts stay inside their
    /// keys. Inside a transaction that already holds its locks the scope changes nothing. Returns None
    /// when `give_up()` turned true while waiting for the gate (another script is busy). The calling
    /// worker is outside the gate after an exclusive scope.
    pub fn script_scope(
        &self,
        keys: &[&[u8]],
        exclusive: bool,
        give_up: &dyn Fn() -> bool,
    ) -> Option<ScriptScope<'_>> {
        if MODE.with(|m| m.get()) != MODE_PLAIN {
            return Some(ScriptScope {
                inner: ScopeInner::Nested,
            });
        }
        DEVIATED.with(|d| d.set(false));
        if exclusive {
            let ex = self.gate.exclusive(give_up)?;
            let mut declared: Vec<usize> = keys.iter().map(|k| shard_of(k)).collect();
            declared.sort_unstable();
            declared.dedup();
            DECLARED.with(|d| *d.borrow_mut() = declared);
            MODE.with(|m| m.set(MODE_SCRIPT_EXCLUSIVE));
            Some(ScriptScope {
                inner: ScopeInner::Exclusive(ex),
            })
        } else {
            let held = self.hold_as(self.lock_many(keys.iter().copied()), MODE_SCRIPT_HELD);
            Some(ScriptScope {
                inner: ScopeInner::Declared(held),
            })
        }
    }

    /// Number of keys in a database (locks each shard briefly, one at a time).
    pub fn dbsize(&self, db: usize) -> usize {
        (0..NUM_SHARDS).map(|i| self.acquire(i).db(db).len()).sum()
    }

    /// Size database `db`'s tables for `keys` keys in all (spread evenly over the shards). A hint: capped
    /// at [`MAX_RESERVE`] keys, and an allocation that fails is skipped (the tables grow as keys arrive).
    pub fn reserve(&self, db: usize, keys: usize) {
        let keys = keys.min(MAX_RESERVE);
        let per_shard = keys / NUM_SHARDS + keys / NUM_SHARDS / 8;
        if per_shard == 0 || db >= self.databases {
            return;
        }
        for i in 0..NUM_SHARDS {
            self.acquire(i).db_mut(db).reserve(per_shard);
        }
    }

    /// Whether any hash has fields with TTLs (an RDB file then needs version 12).
    pub fn has_field_ttls(&self) -> bool {
        (0..NUM_SHARDS).any(|i| {
            let s = self.acquire(i);
            s.hexpires.as_ref().is_some_and(|set| {
                set.iter().any(|(db, key)| {
                    matches!(s.dbs[*db].find(key).map(|e| e.value()),
                        Some(entry::ValueRef::Other(crate::types::Value::Hash(h))) if h.has_field_ttls())
                })
            })
        })
    }

    /// Number of waiter registrations on keys (INFO total_blocking_keys).
    pub fn blocking_keys(&self) -> usize {
        (0..NUM_SHARDS)
            .map(|i| self.acquire(i).waiter_count())
            .sum()
    }

    /// (keys, keys with TTL) of a database.
    pub fn db_counts(&self, db: usize) -> (usize, usize) {
        (0..NUM_SHARDS).fold((0, 0), |(k, v), i| {
            let s = self.acquire(i);
            (k + s.db(db).len(), v + s.db(db).volatile_len())
        })
    }
}

/// Several shard locks held at once, taken in ascending order.
pub struct MultiGuard<'a> {
    idx: Vec<usize>,
    guards: Vec<ShardGuard<'a>>,
    /// `lock_all` keeps the gate closed while it holds everything (dropped after the guards).
    _gate: Option<gate::Exclusive<'a>>,
}

impl<'a> MultiGuard<'a> {
    /// The locked shard owning `key` (which must have been among the keys locked).
    pub fn shard(&mut self, key: &[u8]) -> &mut Shard {
        let i = self
            .idx
            .binary_search(&shard_of(key))
            .expect("key's shard was not locked");
        &mut self.guards[i]
    }

    pub fn shards(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.guards.iter_mut().map(|g| &mut **g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_keys_are_caught() {
        declared::enable();
        let ks = Keyspace::new(1, 1);
        let (a, b) = two_keys();
        declared::set(Some(("get", vec![shard_of(&a)])));
        drop(ks.lock_key(&a));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(ks.lock_many([&a[..], &b[..]]));
        }));
        assert!(
            caught.is_err(),
            "a key outside the declared ones must be refused"
        );
        declared::set(None);
        drop(ks.lock_key(&b));
    }

    #[test]
    fn held_shards_are_reused_then_released() {
        let ks = std::sync::Arc::new(Keyspace::new(1, 1));
        let held = ks.hold(ks.lock_many([&b"a"[..], &b"b"[..]]));
        // Re-entrant: these would deadlock with plain mutexes.
        ks.lock_key(b"a")
            .db_mut(0)
            .insert_new(Entry::new_str(b"a", b"1", 0));
        {
            let mut g = ks.lock_many([&b"b"[..], &b"a"[..]]);
            assert!(g.shard(b"a").db(0).find(b"a").is_some());
        }
        // Another thread waits for the held lock until the hold ends.
        let ks2 = ks.clone();
        let t = std::thread::spawn(move || ks2.lock_key(b"a").db(0).len());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!t.is_finished());
        drop(held);
        assert_eq!(t.join().unwrap(), 1);
    }

    /// Two keys whose shards are `lo` < `hi`.
    fn two_keys() -> (Vec<u8>, Vec<u8>) {
        let mut ks: Vec<Vec<u8>> = (0..64).map(|i| format!("k{i}").into_bytes()).collect();
        ks.sort_by_key(|k| shard_of(k));
        ks.dedup_by_key(|k| shard_of(k));
        (ks[0].clone(), ks[ks.len() - 1].clone())
    }

    #[test]
    fn script_scope_takes_undeclared_shards_without_deadlock() {
        let ks = std::sync::Arc::new(Keyspace::new(1, 2));
        let (lo, hi) = two_keys();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Another thread keeps taking both shards at once.
        let (ks2, stop2, lo2, hi2) = (ks.clone(), stop.clone(), lo.clone(), hi.clone());
        let rounds = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rounds2 = rounds.clone();
        let t = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let mut g = ks2.lock_many([&lo2[..], &hi2[..]]);
                g.shard(&lo2).db_mut(0);
                rounds2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let mut i = 0;
        while i < 2000 || rounds.load(std::sync::atomic::Ordering::Relaxed) < 100 {
            i += 1;
            // Declared: the high shard; touches the low one on the way.
            let scope = ks.script_scope(&[&hi[..]], false, &|| false).unwrap();
            assert!(!scope.deviated());
            ks.lock_key(&hi).db_mut(0);
            ks.lock_key(&lo).db_mut(0);
            assert!(scope.deviated());
            drop(scope);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        t.join().unwrap();
        // Every lock was released at the scope's end.
        assert!(ks.shards[shard_of(&lo)].try_lock().is_some());
        assert!(ks.shards[shard_of(&hi)].try_lock().is_some());
    }

    #[test]
    fn exclusive_script_scope_notes_deviation() {
        let ks = Keyspace::new(1, 1);
        let (lo, hi) = two_keys();
        let scope = ks.script_scope(&[&lo[..]], true, &|| false).unwrap();
        ks.lock_key(&lo).db_mut(0);
        assert!(!scope.deviated());
        ks.lock_key(&hi).db_mut(0);
        assert!(scope.deviated());
        drop(scope);
        // Inside a transaction the scope is nested and changes nothing.
        let held = ks.hold(ks.lock_many([&lo[..]]));
        let scope = ks.script_scope(&[&lo[..]], true, &|| false).unwrap();
        ks.lock_key(&lo).db_mut(0);
        assert!(!scope.deviated());
        drop(scope);
        drop(held);
        assert!(ks.shards[shard_of(&lo)].try_lock().is_some());
    }

    #[test]
    fn slots_match_redis_cluster() {
        // Values from the Redis Cluster specification / CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }
}
