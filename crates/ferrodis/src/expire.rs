//! Active expiry: each worker walks its share of the shards (shard % workers == worker) `hz` times a second,
//! deleting keys whose TTL has passed, within a CPU budget of 25% of each tick (as Redis's slow cycle). The
//! walk uses the table's SCAN cursor, so it makes steady progress through each table and never holds a shard
//! lock for more than a few buckets; a tick stops looking once under a tenth of the keys with a TTL it
//! examined had expired. The same pass advances any incremental table resize.

use crate::keyspace::NUM_SHARDS;
use crate::server::{unix_ms, Server};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Buckets examined per table per lock hold.
const STEPS_PER_LOCK: usize = 32;

/// Once a tick has examined this many keys with a TTL in at least [`MIN_SHARDS`] shards and under a tenth
/// of them had expired, it stops looking for expired keys (Redis's "acceptable stale" rule of 10%): a large dataset with
/// few expired keys is not walked whole every tick. The walk goes on from there at the next tick.
const SAMPLE: usize = 200;
const MIN_SHARDS: usize = 16;

pub async fn run_cycle(srv: Arc<Server>, worker: usize) {
    let nworkers = srv.workers.len();
    let dbs = srv.keyspace.databases();
    let mine: Vec<usize> = (worker..NUM_SHARDS).step_by(nworkers).collect();
    // One cursor per (my shard, db).
    let mut cursors = vec![0u64; mine.len() * dbs];
    let mut next_shard = 0usize;
    loop {
        let hz = srv.config.read().hz.max(1);
        let tick = Duration::from_millis(1000 / hz as u64);
        tokio::time::sleep(tick).await;
        if srv.shutting_down.load(Relaxed) {
            return;
        }
        if worker == 0 {
            srv.refresh_memory();
        }
        let active = srv.active_expire.load(Relaxed);
        let budget = tick / 4;
        let start = Instant::now();
        let mut visited = 0;
        let (mut examined, mut removed_tick, mut scanning) = (0usize, 0u64, true);
        while visited < mine.len() && start.elapsed() < budget {
            let si = next_shard;
            next_shard = (next_shard + 1) % mine.len();
            visited += 1;
            // Like a command, on the shared side of the keyspace gate (skipped while a script is busy).
            if !srv
                .keyspace
                .gate
                .enter(|| srv.scripting.busy.load(Relaxed) != 0)
            {
                break;
            }
            // A shard held by a running script (possibly busy: for as long as it likes) is left for a
            // later tick rather than waited for.
            let Some(mut shard) = srv.keyspace.try_lock_shard(mine[si]) else {
                srv.keyspace.gate.leave();
                continue;
            };
            let now = unix_ms();
            let mut removed = 0u64;
            // Keys deleted, for "expired" notifications once the lock is released (only while
            // notifications are on).
            let notify = srv.notify_flags.load(Relaxed) & crate::notify::EXPIRED != 0
                && srv.key_events.load(Relaxed);
            let mut expired_keys: Vec<(usize, Vec<u8>)> = Vec::new();
            // Keys deleted, propagated as DEL (AOF).
            let aof = srv.persist.aof.enabled();
            let mut deleted: Vec<(usize, Vec<u8>)> = Vec::new();
            if active {
                shard.expire_hash_fields(now, 1000);
            }
            for db in 0..dbs {
                let table = shard.db(db);
                if table.is_empty() {
                    continue;
                }
                let needs_expire = scanning && active && table.volatile_len() > 0;
                let table = shard.db_mut(db);
                table.rehash(16);
                if !needs_expire {
                    continue;
                }
                let c = &mut cursors[si * dbs + db];
                for _ in 0..STEPS_PER_LOCK {
                    let (next, n) = table.scan_remove(*c, |e| {
                        let gone = e.is_expired(now);
                        if gone || e.expire_at().is_some() {
                            examined += 1;
                        }
                        if gone && notify {
                            expired_keys.push((db, e.key().to_vec()));
                        }
                        if gone && aof {
                            deleted.push((db, e.key().to_vec()));
                        }
                        gone
                    });
                    removed += n as u64;
                    *c = next;
                    if next == 0 {
                        break;
                    }
                }
            }
            if !deleted.is_empty() {
                // Its place in the AOF order is taken inside the shard lock.
                srv.persist.aof.note_write();
            }
            drop(shard);
            if !deleted.is_empty() {
                let dels: Vec<(usize, Vec<&[u8]>)> = deleted
                    .iter()
                    .map(|(db, key)| (*db, vec![b"DEL".as_slice(), key.as_slice()]))
                    .collect();
                srv.persist.aof.feed_effects(&dels);
            }
            if removed > 0 {
                srv.workers[worker].expired.add(removed);
            }
            removed_tick += removed;
            if visited >= MIN_SHARDS && examined >= SAMPLE && removed_tick * 10 < examined as u64 {
                // Still visited for incremental rehashing, no longer scanned.
                scanning = false;
            }
            for (db, key) in expired_keys {
                crate::notify::notify(&srv, "expired", &key, db);
            }
            srv.keyspace.gate.leave();
        }
    }
}
