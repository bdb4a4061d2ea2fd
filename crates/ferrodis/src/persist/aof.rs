//! The append-only file (Redis 7 multi-part layout). Not implemented yet: `appendonly yes` is refused.

use crate::client::Client;
use crate::cmd::Propagation;
use ferrodis_protocol::Args;

pub struct Aof {}

impl Aof {
    pub fn new(_cfg: &crate::config::Config) -> Self {
        Aof {}
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        false
    }

    /// Called by a worker before it sends the replies of a batch: with `appendfsync always`, returns once
    /// everything this thread fed is on disk (group commit). A no-op otherwise.
    #[inline]
    pub fn wait_durable(&self) {}

    pub fn feed(&self, _client: &Client, _db: usize, _args: &Args<'_>, _prop: Propagation) {}
}
