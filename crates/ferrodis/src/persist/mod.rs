//! Persistence: the RDB file format (read and write, Redis-compatible), snapshots without fork, AOF.

pub mod aof;
pub mod rdb;
pub mod save;

use crate::client::Client;
use crate::server::Server;
use ferrodis_protocol::Args;

pub use crate::persist_state::Persist;

/// Load the dataset at startup: the AOF when `appendonly yes`, else the RDB file if there is one.
/// `execute` runs the commands of the AOF (`cmd::execute`).
pub fn load_at_startup(srv: &std::sync::Arc<Server>, execute: aof::Execute) -> Result<(), String> {
    if srv.config.read().persist.appendonly {
        // As Redis 7: with the AOF on, dump.rdb is not read; without an AOF yet, a base is written from
        // the (empty) dataset.
        let st = aof::load(srv, execute)?;
        if st.existed {
            crate::log::notice(&format!(
                "AOF loaded: {} commands replayed, {} keys from the base",
                st.commands, st.keys_loaded
            ));
        }
        return aof::start(srv);
    }
    save::load_at_startup(srv)
}

/// Background persistence work: the save-point check (every 100 ms, like Redis's serverCron).
pub fn start_background(srv: &std::sync::Arc<Server>) {
    let srv = srv.clone();
    let _ = std::thread::Builder::new()
        .name("persist-cron".into())
        .spawn(move || {
            while !srv.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                save::cron(&srv);
            }
        });
}

/// On SIGTERM/SIGINT (or after SHUTDOWN): the final save when save points are configured, unless SHUTDOWN
/// already dealt with it.
pub fn at_exit(srv: &Server) {
    use std::sync::atomic::Ordering::Relaxed;
    aof::shutdown(srv);
    if srv.persist.final_save_done.load(Relaxed) || srv.config.read().persist.save.is_empty() {
        return;
    }
    crate::log::notice("Saving the final RDB snapshot before exiting.");
    match save::save_to(srv, &save::rdb_path(srv)) {
        Ok(()) => crate::log::notice("DB saved on disk"),
        Err(e) => crate::log::warning(&e),
    }
}

/// Run the calling (background) thread at a lower priority (nice +10), so a save or rewrite walking the
/// keyspace yields the core to the workers serving requests when they share it.
pub fn background_priority() {
    // SAFETY: plain syscalls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// A command ran and changed something (or has effects to hand on): feed the AOF. Called by `cmd::call`
/// after the handler, with the database the command started in.
#[inline]
pub fn propagate(srv: &Server, client: &Client, db: usize, args: &Args<'_>, prop: Propagation) {
    if srv.persist.aof.enabled() {
        srv.persist.aof.feed(client, db, args, prop);
    }
}

/// One command line, as propagated.
pub type Argv = Vec<Vec<u8>>;

/// What a command hands to the AOF (and later replicas) once it ran: by default the command as received if
/// it changed anything. Handlers whose own form would not replay to the same result (relative TTLs, random
/// picks, generated IDs, floats...) replace it; effects on other keys (expired keys deleted on access,
/// blocked clients served) are added around it.
#[derive(Default)]
pub struct Propagation {
    /// Number of `Ctx::modified` calls: a command that changed nothing propagates only `before`/`after`.
    pub changes: u64,
    /// The commands that stand for this one, when set.
    pub replace: Option<Vec<Argv>>,
    /// Effects propagated before it (DEL of a key found expired).
    pub before: Vec<Argv>,
    /// Effects propagated after it (pops served to blocked clients).
    pub after: Vec<Argv>,
}

impl Propagation {
    pub fn is_empty(&self) -> bool {
        self.changes == 0 && self.before.is_empty() && self.after.is_empty()
    }
}
