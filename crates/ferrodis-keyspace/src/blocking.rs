//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...).
//!
//! A blocked client registers one [`Waiter`] in the queue of every key it waits for, inside the shard locks it
//! took to find those keys empty, so no write can slip in between. A writer that makes a key ready (any
//! modification reported through the command layer's `Ctx::modified`) serves that key's waiters in FIFO order *inside its own
//! shard lock*: it claims a waiter (an atomic state change, so a waiter blocked on several keys is served by
//! exactly one of them, and never after it timed out), runs the waiter's serve function, which pops on the
//! waiter's behalf and encodes its reply, and wakes the waiting connection. The element therefore goes to
//! exactly one waiter and nobody else can take it in between.
//!
//! Inside a transaction or script ([`Writer::defer_ready`]) the key is only noted; it is served when the
//! outermost transaction or script has run entirely, still under its locks (Redis's ready-keys rule,
//! `cmd::serve_ready_keys`): a key pushed and deleted again by one transaction wakes nobody.
//!
//! A waiter whose command needs a second shard (BLMOVE to a key on another shard) cannot complete inside the
//! writer's lock; its serve function answers [`Serve::Retry`] and the connection re-runs the command itself.

use super::Shard;
use parking_lot::Mutex;
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const WAITING: u8 = 0;
const CLAIMED: u8 = 1;
const DONE: u8 = 2;
const CANCELLED: u8 = 3;

/// What a serve function did for a waiter.
pub enum Serve {
    /// Popped on the waiter's behalf; these are the encoded reply bytes.
    Served(Vec<u8>),
    /// The key is not (or no longer) something this waiter can pop from: it stays blocked, and so do the
    /// waiters behind it (they want the same thing: pops).
    NotReady,
    /// This waiter wants something else than what the key now offers (a stream reader after a later ID, a
    /// consumer of another group): it stays blocked where it is, and the waiters behind it are tried.
    Skip,
    /// Needs more than this shard: wake the client to re-run its command.
    Retry,
}

/// The writer that made a key ready, as the queues see it: the command layer's context implements it
/// (this crate knows nothing of commands). The serve functions of blocked clients are the command layer's
/// too: a waiter stores one as an opaque [`Writer::ServeFn`] and the writer runs it with itself as the
/// context (for the clock and the side effects of the pop).
pub trait Writer {
    /// The command layer's serve function type: pops for a blocked client inside the writer's lock, given
    /// (shard, db, key that became ready, the writer's context); the waiter's own settings, such as its
    /// protocol, are captured by the function. [`Waiter::new`] must be given a value of this type.
    type ServeFn: Any + Send + Sync;
    /// Inside a transaction or script a key that became ready is only noted, to be served once the
    /// outermost one has run entirely: note it and return true. False: serve it now.
    fn defer_ready(&self, db: usize, key: &[u8]) -> bool;
    /// Run a serve function with this writer as its context.
    fn serve(&self, f: &Self::ServeFn, shard: &mut Shard, db: usize, key: &[u8]) -> Serve;
}

/// How a blocked command ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Served(Vec<u8>),
    Retry,
    /// Unblocked by CLIENT UNBLOCK ... ERROR.
    Unblocked,
}

pub struct Waiter {
    pub client_id: u64,
    pub db: usize,
    pub keys: Vec<Vec<u8>>,
    state: AtomicU8,
    outcome: Mutex<Option<Outcome>>,
    pub notify: tokio::sync::Notify,
    /// A [`Writer::ServeFn`] of the command layer.
    serve: Box<dyn Any + Send + Sync>,
}

impl Waiter {
    /// `serve`: the [`Writer::ServeFn`] of the writers that will serve this waiter.
    pub fn new<F: Any + Send + Sync>(
        client_id: u64,
        db: usize,
        keys: Vec<Vec<u8>>,
        serve: F,
    ) -> Arc<Waiter> {
        Arc::new(Waiter {
            client_id,
            db,
            keys,
            state: AtomicU8::new(WAITING),
            outcome: Mutex::new(None),
            notify: tokio::sync::Notify::new(),
            serve: Box::new(serve),
        })
    }

    fn claim(&self) -> bool {
        self.state
            .compare_exchange(WAITING, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn finish(&self, outcome: Outcome) {
        *self.outcome.lock() = Some(outcome);
        self.state.store(DONE, Ordering::Release);
        self.notify.notify_one();
    }

    /// Give up waiting (timeout, disconnect, CLIENT UNBLOCK ... TIMEOUT). False if a writer already claimed
    /// the waiter: its outcome is then (about to be) available and must be used.
    pub fn cancel(&self) -> bool {
        self.state
            .compare_exchange(WAITING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// End the wait with an error (CLIENT UNBLOCK ... ERROR). False if it was no longer waiting.
    pub fn unblock_with_error(&self) -> bool {
        if !self.claim() {
            return false;
        }
        self.finish(Outcome::Unblocked);
        true
    }

    /// Wake a cancelled-by-timeout waiter's task (CLIENT UNBLOCK ... TIMEOUT).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }

    pub fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// The outcome, once a writer finished serving (None while waiting or after a cancel).
    pub fn take_outcome(&self) -> Option<Outcome> {
        if self.state.load(Ordering::Acquire) != DONE {
            return None;
        }
        self.outcome.lock().take()
    }
}

type Queues = HashMap<(usize, Box<[u8]>), VecDeque<Arc<Waiter>>>;

/// The waiters of one shard, by (db, key).
#[derive(Default)]
pub struct Waiters {
    queues: Queues,
    /// A serve function is running: keys it makes ready (BLMOVE pushing to a key of this shard) are queued
    /// here and served after it, instead of re-entering.
    serving: bool,
    pending: Vec<(usize, Vec<u8>)>,
}

impl Waiters {
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    pub fn push(&mut self, db: usize, key: &[u8], w: Arc<Waiter>) {
        self.queues
            .entry((db, key.into()))
            .or_default()
            .push_back(w);
    }

    /// Drop a waiter from a key's queue (it finished, or gave up).
    pub fn remove(&mut self, db: usize, key: &[u8], w: &Arc<Waiter>) {
        let k = (db, Box::<[u8]>::from(key));
        if let Some(q) = self.queues.get_mut(&k) {
            q.retain(|x| !Arc::ptr_eq(x, w));
            if q.is_empty() {
                self.queues.remove(&k);
            }
        }
    }

    fn has(&self, db: usize, key: &[u8]) -> bool {
        // Avoid allocating a boxed key for the common "nobody waits here" case.
        !self.queues.is_empty() && self.queues.contains_key(&(db, Box::<[u8]>::from(key)))
    }

    /// Keys (db, key) that have waiters (SWAPDB/FLUSH re-check them all).
    pub fn keys(&self) -> Vec<(usize, Vec<u8>)> {
        self.queues.keys().map(|(d, k)| (*d, k.to_vec())).collect()
    }

    pub fn count(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }
}

impl Shard {
    /// Register a blocked client on a key of this shard.
    pub fn add_waiter(&mut self, db: usize, key: &[u8], w: Arc<Waiter>) {
        self.waiters
            .get_or_insert_with(Default::default)
            .push(db, key, w);
    }

    pub fn remove_waiter(&mut self, db: usize, key: &[u8], w: &Arc<Waiter>) {
        if let Some(ws) = self.waiters.as_mut() {
            ws.remove(db, key, w);
            if ws.is_empty() && !ws.serving {
                self.waiters = None;
            }
        }
    }

    /// A key of this shard was written: serve its waiters, first come first served, while it can.
    #[inline]
    pub fn key_ready<W: Writer>(&mut self, db: usize, key: &[u8], ctx: &W) {
        let Some(ws) = self.waiters.as_mut() else {
            return;
        };
        if !ws.has(db, key) {
            return;
        }
        if ctx.defer_ready(db, key) {
            // Inside a transaction or script: served when it has run entirely.
            return;
        }
        if ws.serving {
            ws.pending.push((db, key.to_vec()));
            return;
        }
        ws.serving = true;
        self.serve_waiters(db, key, ctx);
        while let Some((d, k)) = self.waiters.as_mut().and_then(|ws| ws.pending.pop()) {
            self.serve_waiters(d, &k, ctx);
        }
        if let Some(ws) = self.waiters.as_mut() {
            ws.serving = false;
            if ws.is_empty() {
                self.waiters = None;
            }
        }
    }

    fn serve_waiters<W: Writer>(&mut self, db: usize, key: &[u8], ctx: &W) {
        let k = (db, Box::<[u8]>::from(key));
        // In queue order; a served waiter leaves the queue, a skipped one keeps its place.
        let line: Vec<Arc<Waiter>> = match self.waiters.as_ref().and_then(|ws| ws.queues.get(&k)) {
            Some(q) => q.iter().cloned().collect(),
            None => return,
        };
        for w in line {
            if !w.claim() {
                // Already served through another key, timed out or disconnected.
                self.remove_waiter(db, key, &w);
                continue;
            }
            let serve = w
                .serve
                .downcast_ref::<W::ServeFn>()
                .expect("a waiter's serve function is its writers' Writer::ServeFn");
            match ctx.serve(serve, self, db, key) {
                Serve::Served(reply) => {
                    self.remove_waiter(db, key, &w);
                    w.finish(Outcome::Served(reply));
                }
                Serve::Skip => w.state.store(WAITING, Ordering::Release),
                Serve::Retry => {
                    self.remove_waiter(db, key, &w);
                    w.finish(Outcome::Retry);
                    break;
                }
                Serve::NotReady => {
                    // Put it back as it was: still first in line.
                    w.state.store(WAITING, Ordering::Release);
                    break;
                }
            }
        }
    }

    /// Re-check every key that has waiters (after SWAPDB / FLUSH of whole databases).
    pub fn all_keys_ready<W: Writer>(&mut self, ctx: &W) {
        let keys = match &self.waiters {
            Some(ws) => ws.keys(),
            None => return,
        };
        for (db, k) in keys {
            self.key_ready(db, &k, ctx);
        }
    }

    pub fn waiter_count(&self) -> usize {
        self.waiters.as_ref().map_or(0, |w| w.count())
    }
}
