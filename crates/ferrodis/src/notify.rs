//! Side effects of keyspace writes that run after the command, once its shard locks are released (fan-out
//! must never hold keyspace locks): keyspace notifications (`notify-keyspace-events`) and, later,
//! client-side caching invalidation.
//!
//! `Ctx::modified_in` records a [`KeyEvent`] only while some consumer is enabled (one relaxed load
//! otherwise); `cmd::execute` hands the recorded events to [`after_command`].

use crate::server::Server;

/// One modification of a key, with Redis's keyspace event name ("set", "del", "lpush", "expired", ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    pub db: usize,
    pub key: Vec<u8>,
    pub event: &'static str,
}

/// Deliver the events a command produced.
pub fn after_command(srv: &Server, events: &[KeyEvent]) {
    let _ = (srv, events);
}
