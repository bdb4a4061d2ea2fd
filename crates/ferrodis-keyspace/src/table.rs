//! The per-shard, per-database key table: a chained hash table with power-of-two bucket arrays that grows and
//! shrinks incrementally (two arrays while a resize is in progress, one bucket moved per operation and more
//! from the background cycle), and a reverse-binary SCAN cursor that returns every entry present for the whole
//! scan at least once, even across resizes.

use super::entry::Entry;
use std::hash::BuildHasher;

type Bucket = Option<Box<Entry>>;

pub struct Table {
    /// `tabs[0]` is the current array; while resizing, entries move from `tabs[0]` to `tabs[1]`.
    tabs: [Vec<Bucket>; 2],
    /// Next bucket of `tabs[0]` to move while resizing.
    rehash_idx: usize,
    len: usize,
    /// Entries that carry a TTL.
    volatile: usize,
    hasher: foldhash::fast::FixedState,
    /// The snapshot bit value that means "saved" for the running (or last) snapshot; new entries get it.
    parity: bool,
    /// While a snapshot runs and this table is not fully saved: where entries go before they change.
    snap: Option<Box<TableSnap>>,
}

/// A running snapshot, as one table sees it.
pub struct TableSnap {
    pub db: usize,
    pub sink: std::sync::Arc<dyn ShardSink>,
}

/// Receives the entries of a snapshot (serialization goes here). The table's write paths call it (through
/// [`TableSnap`]) before changing an entry the running snapshot has not saved; [`crate::snapshot`] runs
/// the snapshot.
pub trait ShardSink: Send + Sync {
    /// Start a run of entries of database `db` in `buf` (e.g. an RDB SELECTDB).
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize);
    /// Append one entry as it is now (skipping it if it is expired at the snapshot point). Called with
    /// the entry's shard locked, by the walker or by a command about to change the entry: it must not
    /// lock shards.
    fn encode(&self, buf: &mut Vec<u8>, e: &Entry);
    /// Take a buffer of encoded entries (on the walker's thread, between shards, in no particular
    /// order of databases: each buffer starts with its `begin_db`).
    fn write(&self, buf: Vec<u8>);
}

/// Save `e` (its state now, before a change) if the running snapshot has not saved it yet.
#[cold]
#[inline(never)]
fn presave(snap: &TableSnap, parity: bool, e: &mut Entry) {
    if e.snap_bit() != parity {
        let mut buf = Vec::new();
        snap.sink.begin_db(&mut buf, snap.db);
        snap.sink.encode(&mut buf, e);
        snap.sink.write(buf);
        e.set_snap_bit(parity);
    }
}

const MIN_SIZE: usize = 4;

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Self {
        Table {
            tabs: [Vec::new(), Vec::new()],
            rehash_idx: 0,
            len: 0,
            volatile: 0,
            hasher: foldhash::fast::FixedState::with_seed(process_seed()),
            parity: false,
            snap: None,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn rehashing(&self) -> bool {
        !self.tabs[1].is_empty()
    }

    pub fn find(&self, key: &[u8]) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        let h = self.hash(key);
        for t in 0..2 {
            let tab = &self.tabs[t];
            if tab.is_empty() {
                break;
            }
            let mut cur = tab[(h as usize) & (tab.len() - 1)].as_deref();
            while let Some(e) = cur {
                if e.key() == key {
                    return Some(e);
                }
                cur = e.next.as_deref();
            }
        }
        None
    }

    pub fn find_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if self.len == 0 {
            return None;
        }
        self.rehash_step();
        let h = self.hash(key);
        let t = self.table_holding(h, key)?;
        let tab = &mut self.tabs[t];
        let mask = tab.len() - 1;
        let mut cur = tab[(h as usize) & mask].as_deref_mut();
        while let Some(e) = cur {
            if e.key() == key {
                if let Some(snap) = &self.snap {
                    presave(snap, self.parity, e);
                }
                return Some(e);
            }
            cur = e.next.as_deref_mut();
        }
        None
    }

    fn table_holding(&self, h: u64, key: &[u8]) -> Option<usize> {
        for t in 0..2 {
            let tab = &self.tabs[t];
            if tab.is_empty() {
                break;
            }
            let mut cur = tab[(h as usize) & (tab.len() - 1)].as_deref();
            while let Some(e) = cur {
                if e.key() == key {
                    return Some(t);
                }
                cur = e.next.as_deref();
            }
        }
        None
    }

    /// Find `key` for modification, deleting it instead if its TTL passed at `now_ms` (one hash, one walk).
    pub fn find_live_mut(&mut self, key: &[u8], now_ms: u64) -> Found<'_> {
        if self.len == 0 {
            return Found::Missing;
        }
        self.rehash_step();
        let h = self.hash(key);
        let Table {
            tabs: [t0, t1],
            len,
            volatile,
            snap,
            parity,
            ..
        } = self;
        let link = match find_link(t0, h, key) {
            Some(l) => l,
            None => match find_link(t1, h, key) {
                Some(l) => l,
                None => return Found::Missing,
            },
        };
        if let (Some(snap), Some(e)) = (snap.as_deref(), link.as_deref_mut()) {
            presave(snap, *parity, e);
        }
        if !link.as_ref().is_some_and(|e| e.is_expired(now_ms)) {
            return Found::Live(link.as_deref_mut().expect("link holds the key"));
        }
        let mut removed = link.take().expect("link holds the key");
        *link = removed.next.take();
        *len -= 1;
        *volatile -= 1;
        // (Shrinking, if now due, happens on the next insert or remove.)
        Found::Expired(removed)
    }

    /// Insert an entry whose key is known to be absent.
    pub fn insert_new(&mut self, mut entry: Box<Entry>) {
        self.rehash_step();
        self.grow_if_needed();
        // Born after the snapshot point (if one runs): not part of it.
        entry.set_snap_bit(self.parity);
        let h = self.hash(entry.key());
        if entry.expire_at().is_some() {
            self.volatile += 1;
        }
        let t = if self.rehashing() { 1 } else { 0 };
        let tab = &mut self.tabs[t];
        let idx = (h as usize) & (tab.len() - 1);
        entry.next = tab[idx].take();
        tab[idx] = Some(entry);
        self.len += 1;
    }

    /// Make room for `n` entries without further growth steps (a hint, e.g. RESIZEDB while loading). The
    /// bucket array is allocated fallibly: if it cannot be had, nothing changes and the table grows
    /// step by step as usual.
    pub fn reserve(&mut self, n: usize) {
        if self.rehashing() || n <= self.tabs[0].len() {
            return;
        }
        let Some(size) = n.checked_next_power_of_two() else {
            return;
        };
        let Some(buckets) = try_empty_buckets(size.max(MIN_SIZE)) else {
            return;
        };
        if self.len == 0 {
            self.tabs[0] = buckets;
        } else {
            self.tabs[1] = buckets;
            self.rehash_idx = 0;
        }
    }

    /// Insert or replace; returns the replaced entry.
    pub fn upsert(&mut self, entry: Box<Entry>) -> Option<Box<Entry>> {
        let old = self.remove(entry.key());
        self.insert_new(entry);
        old
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Box<Entry>> {
        if self.len == 0 {
            return None;
        }
        self.rehash_step();
        let h = self.hash(key);
        for t in 0..2 {
            let tab = &mut self.tabs[t];
            if tab.is_empty() {
                break;
            }
            let mask = tab.len() - 1;
            let mut link = &mut tab[(h as usize) & mask];
            loop {
                match link {
                    None => break,
                    Some(e) if e.key() == key => {
                        if let Some(snap) = &self.snap {
                            presave(snap, self.parity, e);
                        }
                        let mut removed = link.take().unwrap();
                        *link = removed.next.take();
                        self.len -= 1;
                        if removed.expire_at().is_some() {
                            self.volatile -= 1;
                        }
                        self.shrink_if_needed();
                        return Some(removed);
                    }
                    Some(e) => link = &mut e.next,
                }
            }
        }
        None
    }

    /// Record a TTL change made through `find_mut` (keeps the volatile count exact).
    pub fn note_ttl_change(&mut self, had: bool, has: bool) {
        match (had, has) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Set or clear a key's TTL; returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], when: Option<u64>) -> bool {
        let Some(e) = self.find_mut(key) else {
            return false;
        };
        let had = e.expire_at().is_some();
        e.set_expire_at(when);
        self.note_ttl_change(had, when.is_some());
        true
    }

    pub fn clear(&mut self) -> Table {
        // A running snapshot gets every entry not saved yet first; the empty table keeps the parity.
        self.snapshot_finish();
        let parity = self.parity;
        let old = std::mem::take(self);
        self.parity = parity;
        old
    }

    /// Unhook a snapshot that ended without visiting this table (its walk failed).
    pub(super) fn snapshot_abandon(&mut self) {
        self.snap = None;
    }

    /// A snapshot starts (every shard locked): every entry is now "not saved".
    pub(super) fn snapshot_begin(&mut self, snap: TableSnap) {
        self.parity = !self.parity;
        self.snap = Some(Box::new(snap));
    }

    /// A slice of the walker's visit: save the entries not saved yet in the buckets at positions
    /// `pos..pos + n` (positions run over the current array, then the one being grown into). Returns the
    /// next position, or None past the end. The walker releases the shard between slices; entries a resize
    /// moves behind it meanwhile are caught by the final [`Table::snapshot_finish`].
    pub(super) fn snapshot_step(&mut self, pos: usize, n: usize) -> Option<usize> {
        let snap = self.snap.as_deref()?;
        let total = self.tabs[0].len() + self.tabs[1].len();
        if pos >= total {
            return None;
        }
        let end = pos.saturating_add(n).min(total);
        let mut buf = Vec::new();
        snap.sink.begin_db(&mut buf, snap.db);
        let start = buf.len();
        let parity = self.parity;
        for i in pos..end {
            let (t, j) = if i < self.tabs[0].len() {
                (0, i)
            } else {
                (1, i - self.tabs[0].len())
            };
            let mut cur = self.tabs[t][j].as_deref_mut();
            while let Some(e) = cur {
                if e.snap_bit() != parity {
                    snap.sink.encode(&mut buf, e);
                    e.set_snap_bit(parity);
                }
                cur = e.next.as_deref_mut();
            }
        }
        if buf.len() > start {
            snap.sink.write(buf);
        }
        Some(end)
    }

    /// Save every entry the running snapshot has not saved yet (the walker's last pass, or before a
    /// whole-table change), in one buffer; the table is then done with this snapshot.
    pub(super) fn snapshot_finish(&mut self) {
        if self.snap.is_some() {
            self.snapshot_step(0, usize::MAX);
            self.snap = None;
        }
    }

    fn grow_if_needed(&mut self) {
        if self.rehashing() {
            return;
        }
        let size = self.tabs[0].len();
        if size == 0 {
            self.tabs[0] = empty_buckets(MIN_SIZE);
        } else if self.len >= size {
            self.start_resize((self.len + 1).next_power_of_two());
        }
    }

    fn shrink_if_needed(&mut self) {
        if self.rehashing() {
            return;
        }
        let size = self.tabs[0].len();
        if self.len == 0 && size > 0 {
            self.tabs[0] = Vec::new();
        } else if size > MIN_SIZE && self.len * 8 < size {
            self.start_resize(self.len.next_power_of_two().max(MIN_SIZE));
        }
    }

    fn start_resize(&mut self, new_size: usize) {
        debug_assert!(!self.rehashing());
        if new_size == self.tabs[0].len() {
            return;
        }
        self.tabs[1] = empty_buckets(new_size);
        self.rehash_idx = 0;
    }

    /// Move one bucket (visiting at most a few empty ones).
    #[inline]
    fn rehash_step(&mut self) {
        if self.rehashing() {
            self.rehash(1);
        }
    }

    /// Move up to `n` non-empty buckets to the new array (starting a due shrink first); returns true while a
    /// resize remains in progress. The background cycle calls this.
    pub fn rehash(&mut self, n: usize) -> bool {
        if !self.rehashing() {
            self.shrink_if_needed();
            if !self.rehashing() {
                return false;
            }
        }
        let mut empty_visits = n * 10;
        let mut moved = 0;
        while moved < n && self.rehash_idx < self.tabs[0].len() {
            let mut chain = self.tabs[0][self.rehash_idx].take();
            if chain.is_none() {
                self.rehash_idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    break;
                }
                continue;
            }
            let mask = self.tabs[1].len() - 1;
            while let Some(mut e) = chain {
                chain = e.next.take();
                let idx = (self.hasher.hash_one(e.key()) as usize) & mask;
                e.next = self.tabs[1][idx].take();
                self.tabs[1][idx] = Some(e);
            }
            self.rehash_idx += 1;
            moved += 1;
        }
        if self.rehash_idx >= self.tabs[0].len() {
            self.tabs[0] = std::mem::take(&mut self.tabs[1]);
            self.rehash_idx = 0;
            return false;
        }
        true
    }

    /// Visit the entries of the bucket(s) at `cursor` and return the next cursor (0 = done). Same algorithm and
    /// guarantees as Redis's dictScan: cursors count in reverse-binary order so that growth and shrinking
    /// between calls never skip an entry that was present for the whole scan.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&Entry)) -> u64 {
        if self.len == 0 || self.tabs[0].is_empty() {
            return 0;
        }
        let mut v = cursor;
        let visit = |tab: &Vec<Bucket>, idx: u64, f: &mut dyn FnMut(&Entry)| {
            let mut cur = tab[idx as usize].as_deref();
            while let Some(e) = cur {
                f(e);
                cur = e.next.as_deref();
            }
        };
        if !self.rehashing() {
            let m0 = (self.tabs[0].len() - 1) as u64;
            visit(&self.tabs[0], v & m0, &mut f);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, large) = if self.tabs[0].len() <= self.tabs[1].len() {
                (&self.tabs[0], &self.tabs[1])
            } else {
                (&self.tabs[1], &self.tabs[0])
            };
            let m0 = (small.len() - 1) as u64;
            let m1 = (large.len() - 1) as u64;
            visit(small, v & m0, &mut f);
            loop {
                visit(large, v & m1, &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    /// Mutable walk of one cursor position (for the active expiry cycle): `f` returns true to delete the entry.
    /// Returns the next cursor and the number of entries removed.
    pub fn scan_remove(&mut self, cursor: u64, mut f: impl FnMut(&Entry) -> bool) -> (u64, usize) {
        let mut doomed: Vec<Vec<u8>> = Vec::new();
        let next = self.scan(cursor, |e| {
            if f(e) {
                doomed.push(e.key().to_vec());
            }
        });
        let n = doomed.len();
        for k in doomed {
            self.remove(&k);
        }
        (next, n)
    }

    /// A uniformly chosen non-empty bucket's random entry (RANDOMKEY); `r` supplies randomness.
    pub fn random_entry(&self, mut r: impl FnMut() -> u64) -> Option<&Entry> {
        if self.len == 0 {
            return None;
        }
        // Sample buckets until a non-empty one turns up (load factor is kept >= 1/8, so this ends quickly).
        loop {
            let t = if self.rehashing() && r() & 1 == 1 {
                1
            } else {
                0
            };
            let tab = &self.tabs[t];
            if t == 0 && self.rehashing() {
                // Buckets below rehash_idx are empty already.
                let span = tab.len() - self.rehash_idx;
                let idx = self.rehash_idx + (r() as usize) % span;
                if let Some(e) = pick_in_chain(tab[idx].as_deref(), &mut r) {
                    return Some(e);
                }
            } else {
                let idx = (r() as usize) & (tab.len() - 1);
                if let Some(e) = pick_in_chain(tab[idx].as_deref(), &mut r) {
                    return Some(e);
                }
            }
        }
    }

    /// Every entry, in bucket order (KEYS, snapshots).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.tabs.iter().flat_map(|tab| {
            tab.iter().flat_map(|b| {
                let mut cur = b.as_deref();
                std::iter::from_fn(move || {
                    let e = cur?;
                    cur = e.next.as_deref();
                    Some(e)
                })
            })
        })
    }

    /// Bucket count of the current array(s) (DEBUG HTSTATS-like reports, memory estimates).
    pub fn buckets(&self) -> usize {
        self.tabs[0].len() + self.tabs[1].len()
    }
}

/// Result of [`Table::find_live_mut`].
pub enum Found<'a> {
    Live(&'a mut Entry),
    /// The key's TTL had passed: it has been removed (the caller decides what to do with it).
    Expired(Box<Entry>),
    Missing,
}

/// The link (bucket head or `next` field) that holds `key` in `tab`, if any.
fn find_link<'a>(tab: &'a mut [Bucket], h: u64, key: &[u8]) -> Option<&'a mut Bucket> {
    if tab.is_empty() {
        return None;
    }
    let idx = (h as usize) & (tab.len() - 1);
    let mut link = &mut tab[idx];
    loop {
        match link {
            None => return None,
            Some(e) if e.key() == key => return Some(link),
            Some(e) => link = &mut e.next,
        }
    }
}

fn pick_in_chain<'a>(head: Option<&'a Entry>, r: &mut impl FnMut() -> u64) -> Option<&'a Entry> {
    let mut n = 0u64;
    let mut cur = head;
    while let Some(e) = cur {
        n += 1;
        cur = e.next.as_deref();
    }
    if n == 0 {
        return None;
    }
    let mut k = r() % n;
    let mut cur = head;
    while let Some(e) = cur {
        if k == 0 {
            return Some(e);
        }
        k -= 1;
        cur = e.next.as_deref();
    }
    None
}

fn empty_buckets(n: usize) -> Vec<Bucket> {
    let mut v = Vec::with_capacity(n);
    v.resize_with(n, || None);
    v
}

/// [`empty_buckets`], or None when the memory cannot be allocated.
fn try_empty_buckets(n: usize) -> Option<Vec<Bucket>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize_with(n, || None);
    Some(v)
}

impl Drop for Table {
    fn drop(&mut self) {
        // Unlink chains iteratively so a long chain cannot overflow the stack through recursive drops.
        for tab in self.tabs.iter_mut() {
            for b in tab.iter_mut() {
                let mut cur = b.take();
                while let Some(mut e) = cur {
                    cur = e.next.take();
                }
            }
        }
    }
}

fn process_seed() -> u64 {
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(rand::random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    #[test]
    fn insert_find_remove() {
        let mut t = Table::new();
        for i in 0..1000 {
            t.insert_new(Entry::new_str(&key(i), b"v", 0));
        }
        assert_eq!(t.len(), 1000);
        for i in 0..1000 {
            assert!(t.find(&key(i)).is_some());
        }
        for i in 0..990 {
            assert!(t.remove(&key(i)).is_some());
        }
        assert_eq!(t.len(), 10);
        // The background cycle finishes the resizes (and starts any further shrink that is due).
        for _ in 0..10 {
            t.rehash(100);
        }
        assert!(t.buckets() <= 64);
        assert!(t.find(&key(995)).is_some());
        assert!(t.find(&key(5)).is_none());
    }

    /// A size hint the machine cannot satisfy changes nothing (no abort, no partial state), and the
    /// table still works and grows on its own.
    #[test]
    fn impossible_reserve_is_ignored() {
        let mut t = Table::new();
        t.reserve(usize::MAX);
        t.reserve(1 << 60);
        assert_eq!(t.buckets(), 0);
        t.reserve(100);
        assert_eq!(t.buckets(), 128);
        for i in 0..10 {
            t.insert_new(Entry::new_str(&key(i), b"v", 0));
        }
        t.reserve(usize::MAX);
        t.reserve(1 << 60);
        assert_eq!(t.buckets(), 128);
        for i in 0..10 {
            assert!(t.find(&key(i)).is_some());
        }
    }

    #[test]
    fn find_live_mut_expires_lazily() {
        let mut t = Table::new();
        let mut e = Entry::new_str(b"a", b"1", 0);
        e.set_expire_at(Some(100));
        t.insert_new(e);
        t.insert_new(Entry::new_str(b"b", b"2", 0));
        assert_eq!(t.volatile_len(), 1);
        assert!(matches!(t.find_live_mut(b"a", 99), Found::Live(_)));
        assert!(matches!(t.find_live_mut(b"a", 100), Found::Expired(_)));
        assert!(matches!(t.find_live_mut(b"a", 100), Found::Missing));
        assert!(matches!(t.find_live_mut(b"b", u64::MAX), Found::Live(_)));
        assert_eq!((t.len(), t.volatile_len()), (1, 0));
    }

    fn full_scan(t: &Table) -> HashSet<Vec<u8>> {
        let mut seen = HashSet::new();
        let mut c = 0;
        loop {
            c = t.scan(c, |e| {
                seen.insert(e.key().to_vec());
            });
            if c == 0 {
                break;
            }
        }
        seen
    }

    #[test]
    fn scan_sees_everything() {
        let mut t = Table::new();
        for i in 0..5000 {
            t.insert_new(Entry::new_str(&key(i), b"v", 0));
        }
        assert_eq!(full_scan(&t).len(), 5000);
    }

    proptest! {
        /// Keys present for the whole scan are returned even when the table grows or shrinks between calls.
        #[test]
        fn scan_guarantee_across_resizes(stable in 1usize..300, churn in proptest::collection::vec((any::<bool>(), 0usize..3000), 0..400), steps in 1usize..8) {
            let mut t = Table::new();
            for i in 0..stable {
                t.insert_new(Entry::new_str(&key(i), b"v", 0));
            }
            let mut seen = HashSet::new();
            let mut c = 0u64;
            let mut ops = churn.into_iter();
            loop {
                c = t.scan(c, |e| { seen.insert(e.key().to_vec()); });
                if c == 0 { break; }
                for _ in 0..steps {
                    if let Some((add, i)) = ops.next() {
                        let k = key(10_000 + i);
                        if add { if t.find(&k).is_none() { t.insert_new(Entry::new_str(&k, b"v", 0)); } }
                        else { t.remove(&k); }
                    }
                }
            }
            for i in 0..stable {
                prop_assert!(seen.contains(&key(i)), "missed {}", i);
            }
        }
    }
}
