//! Ferrodis: a Redis-compatible in-memory data store. See ARCHITECTURE.md for the map.

pub mod client;
pub mod cmd;
pub mod config;
pub mod events;
pub mod expire;
pub mod info;
pub mod net;
pub mod notify;
pub mod persist;
pub mod persist_state;
pub mod pubsub;
pub mod scripting;
pub mod scripts;
pub mod server;
pub mod tracking;

// The layers below, under their old paths (`crate::types`, `crate::log`, ...).
pub use ferrodis_keyspace as keyspace;
pub use ferrodis_types as types;
pub use ferrodis_types::{glob, log, mem};

use std::sync::Arc;

/// Install the command table: the command layer's families and scripting's (EVAL, FUNCTION, ...). Idempotent;
/// [`run`] calls it, and so must anything else that runs commands in-process.
pub fn init() {
    let mut families = cmd::own_families();
    families.push(scripting::commands::COMMANDS);
    cmd::install(families);
}

/// Start a server with the given command-line arguments (without the program name) and block until it
/// shuts down. Returns the process exit code.
pub fn run(argv: &[String]) -> i32 {
    init();
    let cfg = match config::Config::from_args(argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.0);
            return 1;
        }
    };
    if let Err(e) = log::init(&cfg.loglevel, &cfg.logfile) {
        eprintln!("Can't open the log file: {e}");
        return 1;
    }
    let threads = cfg.threads;
    let port = cfg.port;
    let srv = Arc::new(server::Server::new(cfg, cmd::Registry::get().len()));
    info::start_sampler(&srv);
    log::notice(&format!(
        "Ferrodis version={}, bits=64, pid={}, just started",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    ));
    if let Err(e) = persist::load_at_startup(&srv, cmd::execute) {
        log::warning(&e);
        return 1;
    }
    persist::start_background(&srv);
    let _workers = match net::start(srv.clone()) {
        Ok(h) => h,
        Err(e) => {
            log::warning(&e.to_string());
            return 1;
        }
    };
    log::notice(&format!(
        "Running mode=standalone, port={port}, worker threads={threads}."
    ));
    log::notice("Ready to accept connections tcp");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("control runtime");
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => log::warning("Received SIGTERM scheduling shutdown..."),
            _ = int.recv() => log::warning("Received SIGINT scheduling shutdown..."),
            _ = srv.shutdown.notified() => log::warning("User requested shutdown..."),
        }
    });
    srv.shutting_down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    persist::at_exit(&srv);
    let unixsocket = srv.config.read().unixsocket.clone();
    if !unixsocket.is_empty() {
        let _ = std::fs::remove_file(unixsocket);
    }
    log::notice("Ferrodis is now ready to exit, bye bye...");
    0
}
