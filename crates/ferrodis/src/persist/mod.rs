//! Persistence: the RDB file format (read and write, Redis-compatible), snapshots without fork, AOF.

pub mod aof;
pub mod rdb;

use crate::client::Client;
use crate::cmd::Propagation;
use crate::server::Server;
use ferrodis_protocol::Args;

/// Persistence state of a server.
pub struct Persist {
    pub aof: aof::Aof,
}

impl Persist {
    pub fn new(cfg: &crate::config::Config) -> Self {
        Persist {
            aof: aof::Aof::new(cfg),
        }
    }
}

/// A command ran and changed something (or has effects to hand on): feed the AOF. Called by `cmd::run`
/// after the handler, with the database the command started in.
#[inline]
pub fn propagate(srv: &Server, client: &Client, db: usize, args: &Args<'_>, prop: Propagation) {
    if srv.persist.aof.enabled() {
        srv.persist.aof.feed(client, db, args, prop);
    }
}
