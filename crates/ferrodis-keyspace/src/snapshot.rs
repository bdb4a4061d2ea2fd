//! Point-in-time snapshots without fork (docs/design/persistence.md).
//!
//! A snapshot starts with every shard locked (the gate's exclusive side, so no command is half done): each
//! table flips its parity, which makes every entry "not saved" (an entry's snapshot bit differs from its
//! table's parity). From then on each entry is serialized exactly once, in its state at the snapshot point:
//! by the walker, which visits the shards one by one, or — if a command is about to change or delete it
//! first — by that command, inside its lock, just before the change (the table's write paths call the
//! hook). Entries created after the snapshot point carry the new parity and are skipped. A command pays for
//! the entries it touches, never for a whole shard; extra memory is the serialized copies of changed
//! entries waiting for the walker.

use super::entry::Entry;
pub use super::table::ShardSink;
use super::table::TableSnap;
use super::{Keyspace, NUM_SHARDS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Buckets the walker visits per lock hold.
const WALK_SLICE: usize = 128;

/// What the tables write to: buffers queue here (commands and the walker call `write` with a shard
/// locked) and the walker hands them to the real sink between shards, with no lock held.
struct Queued {
    inner: Arc<dyn ShardSink>,
    queue: parking_lot::Mutex<Vec<Vec<u8>>>,
}

impl ShardSink for Queued {
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
        self.inner.begin_db(buf, db);
    }

    fn encode(&self, buf: &mut Vec<u8>, e: &Entry) {
        self.inner.encode(buf, e);
    }

    fn write(&self, buf: Vec<u8>) {
        self.queue.lock().push(buf);
    }
}

impl Queued {
    fn drain(&self) {
        let bufs = std::mem::take(&mut *self.queue.lock());
        for b in bufs {
            self.inner.write(b);
        }
    }
}

/// Shared by the keyspace and the snapshot in progress.
#[derive(Default)]
pub struct SnapshotCtl {
    active: AtomicBool,
}

/// A snapshot in progress: call [`Snapshot::walk`] to save every entry not saved yet.
pub struct Snapshot<'a> {
    ks: &'a Keyspace,
    sink: Arc<Queued>,
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
        let queued = Arc::new(Queued {
            inner: sink,
            queue: Default::default(),
        });
        let sink: Arc<dyn ShardSink> = queued.clone();
        // Every shard locked: no command is in the middle of a change while the tables flip.
        let mut all = self.lock_all();
        for shard in all.shards() {
            shard.snapshot_begin(&sink);
        }
        drop(all);
        Some(Snapshot {
            ks: self,
            sink: queued,
        })
    }

    /// Whether a snapshot is in progress.
    pub fn snapshot_running(&self) -> bool {
        self.snapshot.active.load(Ordering::Acquire)
    }
}

impl Snapshot<'_> {
    /// Save every entry that no command saved yet, one shard lock at a time, then close the snapshot.
    /// Everything serialized (by commands meanwhile, or here) reaches the sink's `write` from this thread,
    /// between shards, with no lock held.
    pub fn walk(self) {
        for idx in 0..NUM_SHARDS {
            // Plain locks, held for a slice of buckets at a time (this may run on a thread that is not a
            // worker, and runs at a lower priority: a long hold would stall the commands waiting on it).
            let shard = &self.ks.shards[idx];
            let databases = shard.lock().dbs.len();
            for db in 0..databases {
                let mut pos = 0;
                while let Some(next) = shard.lock().dbs[db].snapshot_step(pos, WALK_SLICE) {
                    pos = next;
                    self.sink.drain();
                }
            }
            shard.lock().snapshot_finish();
            self.sink.drain();
        }
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        // A walk cut short (an error) still leaves no table hooked to this snapshot's sink.
        for idx in 0..NUM_SHARDS {
            self.ks.shards[idx].lock().snapshot_abandon();
        }
        self.ks.snapshot.active.store(false, Ordering::Release);
    }
}

impl super::Shard {
    fn snapshot_begin(&mut self, sink: &Arc<dyn ShardSink>) {
        for (db, t) in self.dbs.iter_mut().enumerate() {
            t.snapshot_begin(TableSnap {
                db,
                sink: sink.clone(),
            });
        }
    }

    /// Save this shard's entries not saved yet (all databases).
    pub(super) fn snapshot_finish(&mut self) {
        for t in self.dbs.iter_mut() {
            t.snapshot_finish();
        }
    }

    fn snapshot_abandon(&mut self) {
        for t in self.dbs.iter_mut() {
            t.snapshot_abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;
    use parking_lot::Mutex;

    /// (db, key, value) of a saved string.
    type Saved = (usize, Vec<u8>, Vec<u8>);

    /// Records every string saved (encode writes "key\0value\n"; begin_db a "#db\n" line).
    #[derive(Default)]
    struct Collect(Mutex<Vec<Saved>>);

    impl ShardSink for Collect {
        fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
            buf.extend_from_slice(format!("#{db}\n").as_bytes());
        }
        fn encode(&self, buf: &mut Vec<u8>, e: &Entry) {
            if let Some(v) = e.as_str() {
                buf.extend_from_slice(e.key());
                buf.push(0);
                buf.extend_from_slice(v);
                buf.push(b'\n');
            }
        }
        fn write(&self, buf: Vec<u8>) {
            let mut db = 0;
            let mut out = self.0.lock();
            for line in buf.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                if let Some(d) = line.strip_prefix(b"#") {
                    db = std::str::from_utf8(d).unwrap().parse().unwrap();
                } else {
                    let at = line.iter().position(|&c| c == 0).unwrap();
                    out.push((db, line[..at].to_vec(), line[at + 1..].to_vec()));
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
        assert!(saved.iter().all(|(db, _, v)| *db == 0 && v == b"old"));
        let mut names: Vec<&Vec<u8>> = saved.iter().map(|(_, k, _)| k).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), keys.len(), "every key saved exactly once");
        drop(saved);
        assert!(!ks.snapshot_running());
        // The next snapshot (the parity flips back) sees the changed dataset.
        let sink = Arc::new(Collect::default());
        ks.begin_snapshot(sink.clone()).unwrap().walk();
        let saved = sink.0.lock();
        assert_eq!(saved.len(), 2 * keys.len());
        assert!(saved.iter().all(|(_, _, v)| v == b"new"));
    }
}
