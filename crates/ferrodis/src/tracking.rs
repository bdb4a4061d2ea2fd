//! Client-side caching (CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO).
//!
//! State shared by every worker thread lives in one process-wide [`Registry`] (one server per process):
//! - the tracking table (default mode): key -> ids of the clients that read it, sharded by key hash, each
//!   shard behind its own mutex. An entry is removed when the key is invalidated (one invalidation per read,
//!   as Redis), and the table is bounded by `tracking-table-max-keys` (keys over the limit are evicted and
//!   invalidated, as Redis does);
//! - the prefix table (BCAST mode): prefix -> ids;
//! - the tracking clients by id, with what a writer on another thread needs to reach them ([`Target`]).
//!
//! Threads add a race Redis does not have: a reader records the keys it read after its shard lock is
//! released, so a writer on another thread could modify the key and look the table up in between, find
//! nobody, and the reader would cache a stale value forever. To close it, a writer stamps the key's bucket
//! (time of the write) in the table shard before looking readers up, and a reader that finds its key's
//! bucket stamped after the time its read began sends itself an invalidation instead of recording the key.
//! Both happen under the table shard's mutex, so one of the two always sees the other. "The time the read
//! began" is bounded below by the end of the client's previous batch or of its previous tracked read (or
//! exactly, if `cmd::execute` calls [`before_command`]): a false positive only costs an extra invalidation.

use crate::client::{Client, OutputLimit};
pub use crate::client::{Tracking, TrackingTarget as Target};
use crate::notify::KeyEvent;
use crate::server::{mono_ns, Server};
use ferrodis_protocol::{Args, Reply};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

type Hasher = foldhash::fast::FixedState;

const KEY_SHARDS: usize = 64;
const STAMP_BUCKETS: usize = 512;

struct KeyShard {
    keys: HashMap<Box<[u8]>, Vec<u64>, Hasher>,
    /// Last write time (ns since `base`) of the keys hashing to each bucket.
    stamps: Box<[u64]>,
}

struct Registry {
    base_ns: u64,
    keys: Box<[Mutex<KeyShard>]>,
    /// BCAST prefixes -> client ids.
    prefixes: RwLock<Vec<(Vec<u8>, Vec<u64>)>>,
    nprefixes: AtomicUsize,
    clients: RwLock<HashMap<u64, Arc<Target>, Hasher>>,
    total_keys: AtomicUsize,
    total_items: AtomicUsize,
    /// tracking-table-max-keys as last read from the config.
    max_keys: AtomicU64,
    inserts: AtomicU64,
    evict_cursor: AtomicUsize,
}

fn reg() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        base_ns: mono_ns(),
        keys: (0..KEY_SHARDS)
            .map(|_| {
                Mutex::new(KeyShard {
                    keys: HashMap::with_hasher(Hasher::default()),
                    stamps: vec![0; STAMP_BUCKETS].into_boxed_slice(),
                })
            })
            .collect(),
        prefixes: RwLock::new(Vec::new()),
        nprefixes: AtomicUsize::new(0),
        clients: RwLock::new(HashMap::with_hasher(Hasher::default())),
        total_keys: AtomicUsize::new(0),
        total_items: AtomicUsize::new(0),
        max_keys: AtomicU64::new(1_000_000),
        inserts: AtomicU64::new(0),
        evict_cursor: AtomicUsize::new(0),
    })
}

impl Registry {
    /// Nanoseconds since the registry was made, plus one (0 is "never").
    fn ns(&self, t_ns: u64) -> u64 {
        t_ns.saturating_sub(self.base_ns) + 1
    }

    fn slot(&self, key: &[u8]) -> (usize, usize) {
        let h = Hasher::default().hash_one(key);
        (
            (h as usize) % KEY_SHARDS,
            ((h >> 32) as usize) % STAMP_BUCKETS,
        )
    }

    fn target(&self, id: u64) -> Option<Arc<Target>> {
        self.clients.read().get(&id).cloned()
    }
}

// ---------------------------------------------------------------------------------------------------
// Message delivery.

const NO_LIMIT: OutputLimit = OutputLimit {
    hard: 0,
    soft: 0,
    soft_secs: 0,
};

enum Payload<'a> {
    Keys(&'a [&'a [u8]]),
    /// FLUSHALL / FLUSHDB: a null instead of the key list.
    Flush,
}

/// Deliver one invalidation message for tracking client `t`: a RESP3 push to whoever receives its
/// invalidations, or a `__redis__:invalidate` message to a RESP2 redirect client in pub/sub mode (a RESP2
/// client without redirection gets nothing, as in Redis).
fn send(srv: &Server, t: &Target, payload: &Payload<'_>) {
    let (to, redirected) = if t.redirect != 0 {
        match srv.clients.lock().get(&t.redirect).cloned() {
            Some(i) => (i, true),
            None => {
                t.broken.store(true, Relaxed);
                if t.info.resp.load(Relaxed) == 3 {
                    let mut m = Vec::with_capacity(48);
                    let mut r = Reply::new(&mut m, true);
                    r.push(2);
                    r.bulk(b"tracking-redir-broken");
                    r.int(t.redirect as i64);
                    t.info.push(&m, NO_LIMIT);
                }
                return;
            }
        }
    } else {
        (t.info.clone(), false)
    };
    let resp3 = to.resp.load(Relaxed) == 3;
    let mut m = Vec::with_capacity(64);
    if resp3 {
        m.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else if redirected && to.subs.iter().any(|s| s.load(Relaxed) > 0) {
        m.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    } else {
        return;
    }
    match payload {
        Payload::Keys(keys) => {
            let mut r = Reply::new(&mut m, resp3);
            r.array(keys.len());
            for k in keys.iter() {
                r.bulk(k);
            }
        }
        // The null follows the tracking client's protocol, as Redis encodes it.
        Payload::Flush => {
            if t.info.resp.load(Relaxed) == 3 {
                m.extend_from_slice(b"_\r\n");
            } else {
                m.extend_from_slice(b"$-1\r\n");
            }
        }
    }
    to.push(&m, NO_LIMIT);
}

/// Send one single-key invalidation to each listed (default-mode) client.
fn invalidate_key_for(srv: &Server, key: &[u8], ids: &[u64], skip: u64) {
    let r = reg();
    for &id in ids {
        if id == skip {
            continue;
        }
        if let Some(t) = r.target(id) {
            if !t.bcast {
                send(srv, &t, &Payload::Keys(&[key]));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Hooks called by the command executor.

/// Optional hook: called before a command of a tracking client runs, to know exactly when its read began.
pub fn before_command(client: &mut Client) {
    if let Some(t) = client.tracking.as_mut() {
        t.floor.store(reg().ns(mono_ns()), Relaxed);
    }
}

/// Optional hook: called after every command of a tracking client (`is_client_cmd`: a CLIENT subcommand),
/// to end the CLIENT CACHING one-shot as Redis does (it survives CLIENT commands and a MULTI block).
pub fn after_command(client: &mut Client, is_client_cmd: bool) {
    let in_multi = client.multi.is_some();
    if let Some(t) = client.tracking.as_mut() {
        if !is_client_cmd && !in_multi {
            t.caching.store(false, Relaxed);
        }
    }
}

/// Record the keys a read-only command of a tracking client read (`key_positions`: where they are in
/// `args`, from the command's key specs).
pub fn note_read(
    srv: &Server,
    client: &mut Client,
    args: &Args<'_>,
    key_positions: impl FnOnce() -> Vec<usize>,
) {
    let in_multi = client.multi.is_some();
    let info = client.info.clone();
    let Some(tr) = client.tracking.as_mut() else {
        return;
    };
    let t = tr.target.clone();
    let caching = if in_multi {
        tr.caching.load(Relaxed)
    } else {
        tr.caching.swap(false, Relaxed)
    };
    let r = reg();
    let batch_start = info.created_ns + info.last_active_ms.load(Relaxed) * 1_000_000;
    let floor_ns = tr.floor.load(Relaxed).max(r.ns(batch_start));
    tr.floor.store(r.ns(mono_ns()), Relaxed);
    if t.bcast || (t.optin && !caching) || (t.optout && caching) {
        return;
    }
    let mut raced: Vec<&[u8]> = Vec::new();
    let mut added = 0;
    for pos in key_positions() {
        let Some(key) = args.try_get(pos) else {
            continue;
        };
        let (s, b) = r.slot(key);
        let mut sh = r.keys[s].lock();
        if sh.stamps[b] >= floor_ns {
            // Possibly written between our read and now: invalidate (and still track it).
            raced.push(key);
        }
        match sh.keys.get_mut(key) {
            Some(ids) => {
                if !ids.contains(&client.id) {
                    ids.push(client.id);
                    r.total_items.fetch_add(1, Relaxed);
                }
            }
            None => {
                sh.keys.insert(key.into(), vec![client.id]);
                r.total_keys.fetch_add(1, Relaxed);
                r.total_items.fetch_add(1, Relaxed);
                added += 1;
            }
        }
    }
    for key in raced {
        send(srv, &t, &Payload::Keys(&[key]));
    }
    if added > 0 {
        enforce_limit(srv, added);
    }
}

/// Keep the tracking table within `tracking-table-max-keys`: evict keys (invalidating them) when over.
fn enforce_limit(srv: &Server, added: u64) {
    let r = reg();
    let n = r.inserts.fetch_add(added, Relaxed);
    let mut max = r.max_keys.load(Relaxed);
    if n % 1024 < added || (max > 0 && r.total_keys.load(Relaxed) as u64 > max) {
        max = srv.config.read().tracking_table_max_keys;
        r.max_keys.store(max, Relaxed);
    }
    if max == 0 {
        return;
    }
    let mut tries = 0;
    while r.total_keys.load(Relaxed) as u64 > max && tries < KEY_SHARDS * 2 {
        tries += 1;
        let s = r.evict_cursor.fetch_add(1, Relaxed) % KEY_SHARDS;
        let excess = (r.total_keys.load(Relaxed) as u64).saturating_sub(max) as usize;
        let victims: Vec<(Box<[u8]>, Vec<u64>)> = {
            let mut sh = r.keys[s].lock();
            let ks: Vec<Box<[u8]>> = sh.keys.keys().take(excess).cloned().collect();
            ks.into_iter()
                .filter_map(|k| sh.keys.remove_entry(&k))
                .collect()
        };
        for (k, ids) in victims {
            r.total_keys.fetch_sub(1, Relaxed);
            r.total_items.fetch_sub(ids.len(), Relaxed);
            invalidate_key_for(srv, &k, &ids, 0);
        }
    }
}

/// Send invalidations for keys a command modified (`writer` is the client that wrote them: NOLOOP).
pub fn invalidate(srv: &Server, writer: &Client, events: &[KeyEvent]) {
    if srv.tracking_clients.load(Relaxed) == 0 {
        return;
    }
    let r = reg();
    let writer_id = writer
        .tracking
        .as_ref()
        .filter(|t| t.target.noloop)
        .map_or(0, |_| writer.id);
    let now = r.ns(mono_ns());
    for (i, e) in events.iter().enumerate() {
        // A key miss is a read, not a change.
        if e.event == "keymiss" || events[..i].iter().any(|p| p.key == e.key) {
            continue;
        }
        let (s, b) = r.slot(&e.key);
        let ids = {
            let mut sh = r.keys[s].lock();
            sh.stamps[b] = now;
            sh.keys.remove(&e.key[..])
        };
        if let Some(ids) = ids {
            r.total_keys.fetch_sub(1, Relaxed);
            r.total_items.fetch_sub(ids.len(), Relaxed);
            invalidate_key_for(srv, &e.key, &ids, writer_id);
        }
    }
    if let Some(t) = writer.tracking.as_ref() {
        if writer.multi.is_none() {
            t.caching.store(false, Relaxed);
        }
        // The writer's later reads begin after its own writes.
        t.floor.store(r.ns(mono_ns()), Relaxed);
    }
    if r.nprefixes.load(Relaxed) > 0 {
        broadcast(srv, events, writer_id);
    }
}

/// BCAST: one message per (prefix, client) with this command's keys under the prefix, sorted.
fn broadcast(srv: &Server, events: &[KeyEvent], skip: u64) {
    let r = reg();
    let mut sends: Vec<(u64, Vec<&[u8]>)> = Vec::new();
    {
        let pfx = r.prefixes.read();
        for (p, ids) in pfx.iter() {
            let mut keys: Vec<&[u8]> = events
                .iter()
                .map(|e| &e.key[..])
                .filter(|k| k.starts_with(p))
                .collect();
            if keys.is_empty() {
                continue;
            }
            keys.sort_unstable();
            keys.dedup();
            for &id in ids {
                if id != skip {
                    sends.push((id, keys.clone()));
                }
            }
        }
    }
    for (id, keys) in sends {
        if let Some(t) = r.target(id) {
            send(srv, &t, &Payload::Keys(&keys));
        }
    }
}

/// FLUSHALL / FLUSHDB: forget every tracked key and send a null invalidation to every tracking client.
pub fn flushed(srv: &Server) {
    if srv.tracking_clients.load(Relaxed) == 0 {
        return;
    }
    let r = reg();
    let now = r.ns(mono_ns());
    for s in r.keys.iter() {
        let mut sh = s.lock();
        let n: usize = sh.keys.values().map(|v| v.len()).sum();
        r.total_keys.fetch_sub(sh.keys.len(), Relaxed);
        r.total_items.fetch_sub(n, Relaxed);
        sh.keys = HashMap::with_hasher(Hasher::default());
        sh.stamps.iter_mut().for_each(|x| *x = now);
    }
    let targets: Vec<Arc<Target>> = r.clients.read().values().cloned().collect();
    for t in targets {
        send(srv, &t, &Payload::Flush);
    }
}

// ---------------------------------------------------------------------------------------------------
// Enabling / disabling.

fn register(srv: &Server, t: Arc<Target>) {
    let r = reg();
    let id = t.info.id;
    if r.clients.write().insert(id, t).is_none() {
        srv.tracking_clients.fetch_add(1, Relaxed);
    }
}

fn add_prefix(p: &[u8], id: u64) {
    let r = reg();
    let mut pfx = r.prefixes.write();
    match pfx.iter_mut().find(|(q, _)| q == p) {
        Some((_, ids)) => {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        None => {
            // Sorted, so a BCAST client gets its prefixes' messages in prefix order, as in Redis.
            let at = pfx.partition_point(|(q, _)| q.as_slice() < p);
            pfx.insert(at, (p.to_vec(), vec![id]));
        }
    }
    r.nprefixes.store(pfx.len(), Relaxed);
}

fn remove_prefixes(prefixes: &[Vec<u8>], id: u64) {
    if prefixes.is_empty() {
        return;
    }
    let r = reg();
    let mut pfx = r.prefixes.write();
    for (p, ids) in pfx.iter_mut() {
        if prefixes.contains(p) {
            ids.retain(|&i| i != id);
        }
    }
    pfx.retain(|(_, ids)| !ids.is_empty());
    r.nprefixes.store(pfx.len(), Relaxed);
}

/// Turn tracking off for a client (CLIENT TRACKING OFF, RESET). Its entries in the key table are dropped
/// lazily (a later invalidation finds it gone), as Redis does.
pub fn disable(srv: &Server, client: &mut Client) {
    if client.tracking.take().is_some() {
        client_gone(srv, client.id);
    }
}

/// The connection ended (called from net.rs however the connection task ends): release its tracking state.
pub fn client_gone(srv: &Server, id: u64) {
    let r = reg();
    let removed = r.clients.write().remove(&id);
    if let Some(t) = removed {
        srv.tracking_clients.fetch_sub(1, Relaxed);
        remove_prefixes(&t.prefixes, id);
    }
}

/// Whether two prefixes overlap (one is a prefix of the other).
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Redis's prefix rules: a new prefix may not overlap an existing one (the same prefix again is fine) nor
/// another new one.
fn check_prefixes(existing: &[Vec<u8>], new: &[&[u8]]) -> Result<(), String> {
    const TAIL: &str = "Prefixes for a single client must not overlap.";
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing
            .iter()
            .find(|e| e.as_slice() != *p && overlaps(e, p))
        {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. {TAIL}",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(e)
            ));
        }
        for q in &new[i + 1..] {
            if overlaps(p, q) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. {TAIL}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// CLIENT TRACKING ON (the CLIENT subcommands themselves are in cmd/tracking.rs).

/// The options of CLIENT TRACKING ON.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// Client id invalidations are redirected to (0: none; checked to exist by the caller).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// CLIENT TRACKING ON: turn tracking on for `client` (or change its options), with the BCAST prefixes
/// given. Errors are Redis's replies.
pub fn enable(
    srv: &Server,
    client: &mut Client,
    mode: Mode,
    mut prefixes: Vec<&[u8]>,
) -> Result<(), String> {
    let Mode {
        redirect,
        bcast,
        optin,
        optout,
        noloop,
    } = mode;
    if !bcast && !prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    let old = client.tracking.as_ref().map(|t| t.target.clone());
    if let Some(o) = &old {
        if o.bcast != bcast {
            return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
        }
    }
    if bcast && (optin || optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if optin && optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if let Some(o) = &old {
        if (optin && o.optout) || (optout && o.optin) {
            return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
        }
    }
    let mut all: Vec<Vec<u8>> = old.as_ref().map(|o| o.prefixes.clone()).unwrap_or_default();
    if bcast {
        check_prefixes(&all, &prefixes)?;
        if prefixes.is_empty() {
            prefixes.push(b"");
        }
        for p in &prefixes {
            if !all.iter().any(|q| q == p) {
                all.push(p.to_vec());
            }
            add_prefix(p, client.id);
        }
        all.sort();
    }
    let target = Arc::new(Target {
        info: client.info.clone(),
        redirect,
        bcast,
        optin,
        optout,
        noloop,
        prefixes: all,
        broken: Arc::new(AtomicBool::new(false)),
    });
    register(srv, target.clone());
    let caching = client
        .tracking
        .as_ref()
        .is_some_and(|t| t.caching.load(Relaxed));
    client.tracking = Some(Box::new(Tracking {
        target,
        caching: AtomicBool::new(caching),
        floor: AtomicU64::new(reg().ns(mono_ns())),
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Introspection.

/// CLIENT LIST: the tracking flags ("t", "R", "B") and the redir field (-1 when not tracking).
pub fn list_fields(id: u64) -> (String, i64) {
    let Some(t) = reg().target(id) else {
        return (String::new(), -1);
    };
    let mut f = String::from("t");
    if t.broken.load(Relaxed) {
        f.push('R');
    }
    if t.bcast {
        f.push('B');
    }
    (f, t.redirect as i64)
}

/// INFO fields: tracking_clients, tracking_total_keys, tracking_total_items, tracking_total_prefixes.
pub fn stats(srv: &Server) -> (usize, usize, usize, usize) {
    let r = reg();
    (
        srv.tracking_clients.load(Relaxed),
        r.total_keys.load(Relaxed),
        r.total_items.load(Relaxed),
        r.nprefixes.load(Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules() {
        assert!(check_prefixes(&[], &[b"a", b"b"]).is_ok());
        assert_eq!(
            check_prefixes(&[], &[b"a", b"ab"]).unwrap_err(),
            "ERR Prefix 'a' overlaps with another provided prefix 'ab'. Prefixes for a single client must not overlap."
        );
        assert_eq!(
            check_prefixes(&[b"user:".to_vec()], &[b"us"]).unwrap_err(),
            "ERR Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for a single client must not overlap."
        );
        assert!(check_prefixes(&[b"a".to_vec()], &[b"a", b"zz"]).is_ok());
        assert!(check_prefixes(&[b"".to_vec()], &[b"q"]).is_err());
        assert!(check_prefixes(&[], &[b"a", b"a"]).is_err());
    }

    #[test]
    fn overlap() {
        assert!(overlaps(b"", b"x"));
        assert!(overlaps(b"ab", b"a"));
        assert!(!overlaps(b"ab", b"ac"));
    }

    #[test]
    fn slots_in_range() {
        let r = reg();
        for k in [&b""[..], b"a", b"user:1", b"\xff\x00"] {
            let (s, b) = r.slot(k);
            assert!(s < KEY_SHARDS && b < STAMP_BUCKETS);
        }
        assert!(r.ns(mono_ns()) >= 1);
    }
}
