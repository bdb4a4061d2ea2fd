//! The Pub/Sub subscription registry.
//!
//! Channels (and shard channels) live in tables sharded by the channel's hash, each behind its own
//! read-write lock, so publishers on different threads publishing to different channels never contend;
//! patterns are one separate list (skipped entirely, without touching its lock, while nobody subscribes to
//! a pattern). The registry never touches keyspace locks. A message is encoded at most once per protocol
//! (RESP2 array / RESP3 push) per PUBLISH and queued into each receiver's outbox
//! ([`ClientInfo::push`]), which enforces the pubsub class's client-output-buffer-limit. A publisher
//! delivers synchronously, so messages from one publisher arrive in publish order.
//!
//! Each client's own subscriptions are kept here too (by client id), for UNSUBSCRIBE without arguments and
//! for the cleanup when the connection ends. Lock order: a client's entry, then channel tables / pattern
//! list; a publisher takes only the latter.

use crate::client::{ClientInfo, OutputLimit};
use ferrodis_protocol::Reply;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

type Hasher = foldhash::fast::FixedState;

const CHANNEL_SHARDS: usize = 64;
const CLIENT_SHARDS: usize = 16;

/// The three subscription kinds, in the order of `ClientInfo::subs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

impl Kind {
    /// Reply names of the subscribe / unsubscribe confirmations.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

type Subscribers = Vec<Arc<ClientInfo>>;
type ChannelTable = HashMap<Box<[u8]>, Subscribers, Hasher>;

/// One client's subscriptions: name -> sequence number (to unsubscribe from everything in subscription
/// order).
struct ClientSubs {
    info: Arc<ClientInfo>,
    sets: [HashMap<Box<[u8]>, u64, Hasher>; 3],
    seq: u64,
}

pub struct PubSub {
    channels: Box<[RwLock<ChannelTable>]>,
    shard_channels: Box<[RwLock<ChannelTable>]>,
    patterns: RwLock<Vec<(Box<[u8]>, Subscribers)>>,
    npatterns: AtomicUsize,
    /// Clients with at least one subscription.
    nclients: AtomicUsize,
    clients: Box<[Mutex<HashMap<u64, ClientSubs, Hasher>>]>,
    /// The pubsub class's client-output-buffer-limit (hard, soft, soft seconds).
    limit: [AtomicU64; 3],
}

impl Default for PubSub {
    fn default() -> Self {
        Self::new()
    }
}

/// A message encoded lazily, once per protocol.
#[derive(Default)]
struct Encoded {
    resp2: Option<Vec<u8>>,
    resp3: Option<Vec<u8>>,
}

impl Encoded {
    fn get(&mut self, resp3: bool, parts: &[&[u8]]) -> &[u8] {
        let slot = if resp3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        };
        slot.get_or_insert_with(|| {
            let mut v = Vec::with_capacity(parts.iter().map(|p| p.len() + 16).sum::<usize>() + 8);
            let mut r = Reply::new(&mut v, resp3);
            r.push(parts.len());
            for p in parts {
                r.bulk(p);
            }
            v
        })
    }
}

fn table_new() -> ChannelTable {
    HashMap::with_hasher(Hasher::default())
}

impl PubSub {
    pub fn new() -> PubSub {
        PubSub {
            channels: (0..CHANNEL_SHARDS)
                .map(|_| RwLock::new(table_new()))
                .collect(),
            shard_channels: (0..CHANNEL_SHARDS)
                .map(|_| RwLock::new(table_new()))
                .collect(),
            patterns: RwLock::new(Vec::new()),
            npatterns: AtomicUsize::new(0),
            nclients: AtomicUsize::new(0),
            clients: (0..CLIENT_SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(Hasher::default())))
                .collect(),
            limit: Default::default(),
        }
    }

    pub fn set_limit(&self, l: OutputLimit) {
        self.limit[0].store(l.hard, Relaxed);
        self.limit[1].store(l.soft, Relaxed);
        self.limit[2].store(l.soft_secs, Relaxed);
    }

    fn limit(&self) -> OutputLimit {
        OutputLimit {
            hard: self.limit[0].load(Relaxed),
            soft: self.limit[1].load(Relaxed),
            soft_secs: self.limit[2].load(Relaxed),
        }
    }

    fn table(&self, kind: Kind, ch: &[u8]) -> &RwLock<ChannelTable> {
        let i = (Hasher::default().hash_one(ch) as usize) % CHANNEL_SHARDS;
        match kind {
            Kind::Shard => &self.shard_channels[i],
            _ => &self.channels[i],
        }
    }

    fn client_shard(&self, id: u64) -> &Mutex<HashMap<u64, ClientSubs, Hasher>> {
        &self.clients[(id as usize) % CLIENT_SHARDS]
    }

    /// Subscribe a client to a channel, pattern or shard channel. Returns false if it already was.
    pub fn subscribe(&self, info: &Arc<ClientInfo>, kind: Kind, name: &[u8]) -> bool {
        let mut clients = self.client_shard(info.id).lock();
        let cs = clients.entry(info.id).or_insert_with(|| {
            self.nclients.fetch_add(1, Relaxed);
            ClientSubs {
                info: info.clone(),
                sets: Default::default(),
                seq: 0,
            }
        });
        let set = &mut cs.sets[kind as usize];
        if set.contains_key(name) {
            return false;
        }
        cs.seq += 1;
        set.insert(name.into(), cs.seq);
        info.subs[kind as usize].store(set.len() as u64, Relaxed);
        match kind {
            Kind::Pattern => {
                let mut pats = self.patterns.write();
                match pats.iter_mut().find(|(p, _)| &p[..] == name) {
                    Some((_, subs)) => subs.push(info.clone()),
                    None => {
                        pats.push((name.into(), vec![info.clone()]));
                        self.npatterns.store(pats.len(), Relaxed);
                    }
                }
            }
            _ => {
                self.table(kind, name)
                    .write()
                    .entry(name.into())
                    .or_default()
                    .push(info.clone());
            }
        }
        true
    }

    /// Unsubscribe a client from one channel / pattern / shard channel. Returns false if it was not
    /// subscribed.
    pub fn unsubscribe(&self, info: &ClientInfo, kind: Kind, name: &[u8]) -> bool {
        let mut clients = self.client_shard(info.id).lock();
        let Some(cs) = clients.get_mut(&info.id) else {
            return false;
        };
        let set = &mut cs.sets[kind as usize];
        if set.remove(name).is_none() {
            return false;
        }
        info.subs[kind as usize].store(set.len() as u64, Relaxed);
        if cs.sets.iter().all(|s| s.is_empty()) {
            clients.remove(&info.id);
            self.nclients.fetch_sub(1, Relaxed);
        }
        drop(clients);
        self.detach(info.id, kind, name);
        true
    }

    /// Remove a client from the global tables (its own entry is already updated).
    fn detach(&self, id: u64, kind: Kind, name: &[u8]) {
        match kind {
            Kind::Pattern => {
                let mut pats = self.patterns.write();
                if let Some(i) = pats.iter().position(|(p, _)| &p[..] == name) {
                    let subs = &mut pats[i].1;
                    subs.retain(|c| c.id != id);
                    if subs.is_empty() {
                        pats.remove(i);
                        self.npatterns.store(pats.len(), Relaxed);
                    }
                }
            }
            _ => {
                let mut t = self.table(kind, name).write();
                if let Some(subs) = t.get_mut(name) {
                    subs.retain(|c| c.id != id);
                    if subs.is_empty() {
                        t.remove(name);
                    }
                }
            }
        }
    }

    /// A client's subscriptions of one kind, in subscription order.
    pub fn subscriptions(&self, id: u64, kind: Kind) -> Vec<Vec<u8>> {
        let clients = self.client_shard(id).lock();
        let Some(cs) = clients.get(&id) else {
            return Vec::new();
        };
        let mut v: Vec<(&Box<[u8]>, &u64)> = cs.sets[kind as usize].iter().collect();
        v.sort_by_key(|(_, s)| **s);
        v.into_iter().map(|(n, _)| n.to_vec()).collect()
    }

    /// Drop every subscription of a client (disconnect, RESET).
    pub fn remove_client(&self, id: u64) {
        let Some(cs) = self.client_shard(id).lock().remove(&id) else {
            return;
        };
        self.nclients.fetch_sub(1, Relaxed);
        for (k, kind) in [Kind::Channel, Kind::Pattern, Kind::Shard]
            .into_iter()
            .enumerate()
        {
            for name in cs.sets[k].keys() {
                self.detach(id, kind, name);
            }
            cs.info.subs[k].store(0, Relaxed);
        }
    }

    /// PUBLISH / SPUBLISH: deliver `msg` to the subscribers of `ch` (and, for PUBLISH, of the matching
    /// patterns). Returns the number of receivers.
    pub fn publish(&self, kind: Kind, ch: &[u8], msg: &[u8]) -> usize {
        let limit = self.limit();
        let mut n = 0;
        // Receivers dropped for overcoming the output buffer limit: unsubscribed right away (as Redis
        // frees them before its next event loop iteration), once the read locks are released.
        let mut dropped: Vec<u64> = Vec::new();
        {
            let t = self.table(kind, ch).read();
            if let Some(subs) = t.get(ch) {
                let mut enc = Encoded::default();
                let head: &[u8] = if kind == Kind::Shard {
                    b"smessage"
                } else {
                    b"message"
                };
                for c in subs {
                    let resp3 = c.resp.load(Relaxed) == 3;
                    if !c.push(enc.get(resp3, &[head, ch, msg]), limit) {
                        dropped.push(c.id);
                    }
                    n += 1;
                }
            }
        }
        if kind == Kind::Channel && self.npatterns.load(Relaxed) > 0 {
            let pats = self.patterns.read();
            for (p, subs) in pats.iter() {
                if !crate::glob::matches(p, ch, false) {
                    continue;
                }
                let mut enc = Encoded::default();
                for c in subs {
                    let resp3 = c.resp.load(Relaxed) == 3;
                    if !c.push(enc.get(resp3, &[b"pmessage", p, ch, msg]), limit) {
                        dropped.push(c.id);
                    }
                    n += 1;
                }
            }
        }
        for id in dropped {
            self.remove_client(id);
        }
        n
    }

    /// Active channels (or shard channels) matching an optional glob pattern.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let tables = if kind == Kind::Shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        let mut out = Vec::new();
        for t in tables.iter() {
            for name in t.read().keys() {
                if pattern.is_none_or(|p| crate::glob::matches(p, name, false)) {
                    out.push(name.to_vec());
                }
            }
        }
        out
    }

    /// Number of subscribers of a channel (or shard channel), patterns excluded.
    pub fn numsub(&self, kind: Kind, ch: &[u8]) -> usize {
        self.table(kind, ch).read().get(ch).map_or(0, |s| s.len())
    }

    /// Number of distinct patterns subscribed to.
    pub fn numpat(&self) -> usize {
        self.npatterns.load(Relaxed)
    }

    /// Whether anyone at all subscribes to anything (cheap check before building notifications).
    pub fn any_subscribers(&self) -> bool {
        self.nclients.load(Relaxed) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: u64) -> Arc<ClientInfo> {
        Arc::new(ClientInfo::new(id, "a".into(), "b".into(), -1, false))
    }

    fn drain(c: &ClientInfo) -> Vec<u8> {
        let mut v = Vec::new();
        c.drain_outbox(&mut v);
        v
    }

    #[test]
    fn subscribe_publish_unsubscribe() {
        let ps = PubSub::new();
        let a = client(1);
        let b = client(2);
        assert!(ps.subscribe(&a, Kind::Channel, b"news"));
        assert!(!ps.subscribe(&a, Kind::Channel, b"news"));
        assert!(ps.subscribe(&b, Kind::Pattern, b"n*"));
        b.resp.store(3, Relaxed);
        assert_eq!(ps.publish(Kind::Channel, b"news", b"hi"), 2);
        assert_eq!(
            drain(&a),
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            drain(&b),
            b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(ps.publish(Kind::Shard, b"news", b"x"), 0);
        assert_eq!(ps.numsub(Kind::Channel, b"news"), 1);
        assert_eq!(ps.numpat(), 1);
        assert_eq!(ps.channels(Kind::Channel, None), vec![b"news".to_vec()]);
        assert_eq!(a.subs[0].load(Relaxed), 1);
        assert!(ps.unsubscribe(&a, Kind::Channel, b"news"));
        assert!(!ps.unsubscribe(&a, Kind::Channel, b"news"));
        assert_eq!(a.subs[0].load(Relaxed), 0);
        assert!(ps.channels(Kind::Channel, None).is_empty());
        ps.remove_client(2);
        assert_eq!(ps.numpat(), 0);
        assert_eq!(b.subs[1].load(Relaxed), 0);
        assert!(!ps.any_subscribers());
    }

    #[test]
    fn subscription_order() {
        let ps = PubSub::new();
        let a = client(7);
        for ch in [&b"c"[..], b"a", b"b"] {
            ps.subscribe(&a, Kind::Shard, ch);
        }
        assert_eq!(
            ps.subscriptions(7, Kind::Shard),
            vec![b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(ps.publish(Kind::Shard, b"a", b"m"), 1);
        assert_eq!(drain(&a), b"*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$1\r\nm\r\n");
    }
}
