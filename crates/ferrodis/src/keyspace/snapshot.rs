//! Point-in-time snapshots without fork (DESIGN.md §2.6).
//!
//! A snapshot starts with every shard locked (the gate's exclusive side, so no command is half done) and
//! opens a new epoch. From then on each shard is serialized exactly once, in its state at the snapshot
//! point: by the snapshot walker, or — if a command is about to change it first — by that writer, inside its
//! lock and before the change (the write hook `Shard::db_mut`). Extra memory is bounded by the shards being
//! serialized at the same moment (one per writer thread plus the walker), not by the write rate.

use super::{Keyspace, Shard, NUM_SHARDS};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Receives each shard once per snapshot (serialization goes here).
pub trait ShardSink: Send + Sync {
    /// Serialize `shard` (all its databases) as it is now: the state at the snapshot point. Called with the
    /// shard locked, by the walker or by the first writer after the snapshot point. Must not lock shards.
    fn save_shard(&self, idx: usize, shard: &Shard);
}

/// Shared by the keyspace and each of its shards.
#[derive(Default)]
pub struct SnapshotCtl {
    active: AtomicBool,
    epoch: AtomicU64,
    sink: RwLock<Option<Arc<dyn ShardSink>>>,
}

impl SnapshotCtl {
    #[inline]
    pub(super) fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The write hook's slow path: save `shard` first if this snapshot has not saved it yet.
    #[cold]
    pub(super) fn before_write(&self, idx: usize, shard: &mut Shard) {
        let epoch = self.epoch.load(Ordering::Acquire);
        if shard.saved_epoch == epoch {
            return;
        }
        let sink = self.sink.read().clone();
        if let Some(sink) = sink {
            sink.save_shard(idx, shard);
        }
        shard.saved_epoch = epoch;
    }
}

/// A snapshot in progress: call [`Snapshot::walk`] to save every shard not saved yet.
pub struct Snapshot<'a> {
    ks: &'a Keyspace,
    epoch: u64,
}

impl Keyspace {
    /// Open a snapshot at this instant. Fails if one is already running (one at a time, like Redis's
    /// child process).
    pub fn begin_snapshot(&self, sink: Arc<dyn ShardSink>) -> Option<Snapshot<'_>> {
        let ctl = &self.snapshot;
        if ctl
            .active
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return None;
        }
        // Every shard locked: no command is in the middle of a change while the epoch moves.
        let all = self.lock_all();
        *ctl.sink.write() = Some(sink);
        let epoch = ctl.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        drop(all);
        Some(Snapshot { ks: self, epoch })
    }

    /// Whether a snapshot is in progress.
    pub fn snapshot_running(&self) -> bool {
        self.snapshot.active()
    }
}

impl Snapshot<'_> {
    /// Save every shard that no writer saved yet, one shard lock at a time, then close the snapshot.
    pub fn walk(self) {
        let ctl = &self.ks.snapshot;
        for idx in 0..NUM_SHARDS {
            // A plain lock: this may run on a thread that is not a worker, which holds one shard briefly.
            let mut shard = self.ks.shards[idx].lock();
            if shard.saved_epoch != self.epoch {
                ctl.before_write(idx, &mut shard);
            }
        }
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        let ctl = &self.ks.snapshot;
        *ctl.sink.write() = None;
        ctl.active.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::entry::Entry;
    use parking_lot::Mutex;

    /// (shard, key, value) of a saved string.
    type Saved = (usize, Vec<u8>, Vec<u8>);

    /// Records every string saved.
    #[derive(Default)]
    struct Collect(Mutex<Vec<Saved>>);

    impl ShardSink for Collect {
        fn save_shard(&self, idx: usize, shard: &Shard) {
            let mut out = self.0.lock();
            for e in shard.db(0).iter() {
                if let Some(v) = e.as_str() {
                    out.push((idx, e.key().to_vec(), v.to_vec()));
                }
            }
        }
    }

    #[test]
    fn snapshot_is_point_in_time_under_writes() {
        let ks = Arc::new(Keyspace::new(1, 1));
        let keys: Vec<Vec<u8>> = (0..2000).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            ks.lock_key(k)
                .db_mut(0)
                .insert_new(Entry::new_str(k, b"old", 0));
        }
        let sink = Arc::new(Collect::default());
        let snap = ks.begin_snapshot(sink.clone()).unwrap();
        assert!(ks.begin_snapshot(Arc::new(Collect::default())).is_none());
        // Writers change every key (and add new ones) while the walker runs.
        let ks2 = ks.clone();
        let keys2 = keys.clone();
        let w = std::thread::spawn(move || {
            for k in &keys2 {
                {
                    let mut s = ks2.lock_key(k);
                    let t = s.db_mut(0);
                    t.remove(k);
                    t.insert_new(Entry::new_str(k, b"new", 0));
                }
                let extra = [k.as_slice(), b"-x"].concat();
                ks2.lock_key(&extra)
                    .db_mut(0)
                    .insert_new(Entry::new_str(&extra, b"new", 0));
            }
        });
        snap.walk();
        w.join().unwrap();
        let saved = sink.0.lock();
        assert_eq!(
            saved.len(),
            keys.len(),
            "exactly the keys at the snapshot point"
        );
        assert!(saved.iter().all(|(_, _, v)| v == b"old"));
        let mut shards: Vec<usize> = saved.iter().map(|(i, _, _)| *i).collect();
        shards.sort_unstable();
        let n = shards.len();
        shards.dedup();
        let per_shard: usize = (0..NUM_SHARDS)
            .map(|i| ks.shards[i].lock().db(0).len())
            .sum();
        assert!(per_shard >= n);
        assert!(!ks.snapshot_running());
    }
}
