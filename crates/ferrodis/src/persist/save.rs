//! RDB snapshots of the whole dataset: SAVE, BGSAVE, save points, loading at startup.
//!
//! A save never forks: it opens a point-in-time snapshot of the keyspace (keyspace/snapshot.rs) and
//! serializes shard by shard while the server keeps serving; a shard a command is about to change first is
//! serialized by that command's thread, before the change. Serialized shards are appended to a temporary
//! file in the order they come; the file is fsynced and renamed over `dbfilename` at the end, as Redis does.

use super::rdb;
use crate::keyspace::snapshot::ShardSink;
use crate::server::{unix_ms, Server};
use parking_lot::Mutex;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Retry delay after a failed background save triggered by a save point (Redis's CONFIG_BGSAVE_RETRY_DELAY).
const RETRY_DELAY_SECS: u64 = 5;

pub use crate::persist_state::RdbState;

/// Changes since the last save (INFO rdb_changes_since_last_save).
pub fn changes_since_save(srv: &Server) -> u64 {
    srv.sum(|w| w.dirty.get())
        .saturating_sub(srv.persist.rdb.dirty_at_save.load(Relaxed))
}

/// Whether writes must be refused (MISCONF): the last background save failed, save points are
/// configured and `stop-writes-on-bgsave-error` is on.
#[inline]
pub fn refuse_writes(srv: &Server) -> bool {
    !srv.persist.rdb.last_bgsave_ok.load(Relaxed) && {
        let c = srv.config.read();
        c.persist.stop_writes_on_bgsave_error && !c.persist.save.is_empty()
    }
}

pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// The RDB file of the configuration.
pub fn rdb_path(srv: &Server) -> PathBuf {
    let c = srv.config.read();
    Path::new(&c.dir).join(&c.persist.dbfilename)
}

/// Where serialized entries go: the file being written, with its running checksum (only the walker's
/// thread writes; see keyspace/snapshot.rs).
struct FileSink {
    out: Mutex<rdb::FileWriter>,
    opts: rdb::SaveOptions,
    now_ms: u64,
    /// Set once a write failed; the rest is skipped and the save fails.
    failed: Mutex<Option<String>>,
    walker: std::thread::ThreadId,
    /// Bytes serialized by commands (their copies of entries about to change: our copy-on-write size).
    cow_bytes: AtomicU64,
}

impl ShardSink for FileSink {
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
        rdb::put_select(buf, db);
    }

    fn encode(&self, buf: &mut Vec<u8>, e: &crate::keyspace::entry::Entry) {
        if e.is_expired(self.now_ms) {
            return;
        }
        if std::thread::current().id() == self.walker {
            rdb::encode_entry(buf, e, self.opts.compression);
        } else {
            // A command waits on this entry: no compression (it costs most of the time).
            let before = buf.len();
            rdb::encode_entry(buf, e, false);
            self.cow_bytes
                .fetch_add((buf.len() - before) as u64, Relaxed);
        }
    }

    fn write(&self, buf: Vec<u8>) {
        if let Err(e) = self.out.lock().write_all(&buf) {
            self.failed.lock().get_or_insert(e.to_string());
        }
    }
}

/// Save the dataset to `path` now (on the calling thread; other clients keep being served). Fails if
/// another snapshot is running.
pub fn save_to(srv: &Server, path: &Path) -> Result<(), String> {
    let (opts, dir) = {
        let c = srv.config.read();
        (
            rdb::SaveOptions {
                compression: c.persist.rdbcompression,
                checksum: c.persist.rdbchecksum,
                databases: c.databases,
            },
            PathBuf::from(&c.dir),
        )
    };
    let tmp = dir.join(format!("temp-{}-{}.rdb", std::process::id(), unix_ms()));
    let file = std::fs::File::create(&tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {} (in server root dir {}) for saving: {e}",
            tmp.file_name().unwrap_or_default().to_string_lossy(),
            dir.display()
        )
    })?;
    let result = (|| {
        let mut w = rdb::FileWriter::new(
            std::io::BufWriter::with_capacity(1 << 20, file),
            opts.checksum,
        );
        let mut aux = rdb::Aux::now(srv);
        if srv.keyspace.has_field_ttls() {
            aux.version = rdb::RDB_VERSION_HFE;
        }
        w.write_header(&aux).map_err(|e| e.to_string())?;
        for code in srv.scripting.library_codes() {
            w.write_function(&code).map_err(|e| e.to_string())?;
        }
        let sink = Arc::new(FileSink {
            out: Mutex::new(w),
            opts,
            now_ms: unix_ms(),
            failed: Mutex::new(None),
            walker: std::thread::current().id(),
            cow_bytes: AtomicU64::new(0),
        });
        let dirty = srv.sum(|w| w.dirty.get());
        let snap = srv
            .keyspace
            .begin_snapshot(sink.clone())
            .ok_or("Background save already in progress")?;
        snap.walk();
        let sink = Arc::try_unwrap(sink).map_err(|_| "snapshot sink still in use".to_string())?;
        if let Some(e) = sink.failed.into_inner() {
            return Err(format!("Write error saving DB on disk: {e}"));
        }
        srv.persist
            .rdb
            .last_cow_size
            .store(sink.cow_bytes.load(Relaxed), Relaxed);
        let file = sink
            .out
            .into_inner()
            .finish()
            .and_then(|b| b.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| format!("Write error saving DB on disk: {e}"))?;
        file.sync_all()
            .map_err(|e| format!("Write error saving DB on disk: {e}"))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| {
            format!(
                "Error moving temp DB file {} on the final destination {} (in server root dir {}): {e}",
                tmp.display(),
                path.display(),
                dir.display()
            )
        })?;
        srv.persist.rdb.dirty_at_save.store(dirty, Relaxed);
        srv.persist.rdb.last_save.store(unix_ms() / 1000, Relaxed);
        srv.persist.rdb.saves.fetch_add(1, Relaxed);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// SAVE: save in the foreground (only the calling client waits).
pub fn save(srv: &Server) -> Result<(), String> {
    if srv.persist.rdb.bgsave_in_progress.load(Relaxed) {
        return Err("ERR Background save already in progress".into());
    }
    let path = rdb_path(srv);
    match save_to(srv, &path) {
        Ok(()) => {
            srv.persist.rdb.last_bgsave_ok.store(true, Relaxed);
            crate::log::notice("DB saved on disk");
            Ok(())
        }
        Err(e) => {
            crate::log::warning(&e);
            Err("ERR".into())
        }
    }
}

/// BGSAVE: start a background save. Err(message) when one is already running.
pub fn bgsave(srv: &Arc<Server>) -> Result<(), &'static str> {
    let st = &srv.persist.rdb;
    if st
        .bgsave_in_progress
        .compare_exchange(false, true, Relaxed, Relaxed)
        .is_err()
    {
        return Err("ERR Background save already in progress");
    }
    let now = unix_ms();
    st.bgsave_started_ms.store(now, Relaxed);
    st.last_bgsave_try.store(now / 1000, Relaxed);
    let srv2 = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(move || {
            super::background_priority();
            let start = Instant::now();
            let st = &srv2.persist.rdb;
            let path = rdb_path(&srv2);
            let r = save_to(&srv2, &path);
            st.last_bgsave_time_sec
                .store(start.elapsed().as_secs() as i64, Relaxed);
            match r {
                Ok(()) => {
                    st.last_bgsave_ok.store(true, Relaxed);
                    crate::log::notice("Background saving terminated with success");
                }
                Err(e) => {
                    st.last_bgsave_ok.store(false, Relaxed);
                    crate::log::warning(&e);
                    crate::log::warning("Background saving error");
                }
            }
            st.bgsave_in_progress.store(false, Relaxed);
        });
    if spawned.is_err() {
        st.bgsave_in_progress.store(false, Relaxed);
        return Err("ERR could not start the background save");
    }
    crate::log::notice("Background saving started");
    Ok(())
}

/// The save-point check, run periodically (Redis's serverCron): start a background save when a
/// `save <seconds> <changes>` point is reached.
pub fn cron(srv: &Arc<Server>) {
    let st = &srv.persist.rdb;
    if st.bgsave_in_progress.load(Relaxed) || srv.keyspace.snapshot_running() {
        return;
    }
    let now = unix_ms() / 1000;
    if st.scheduled.swap(false, Relaxed) {
        let _ = bgsave(srv);
        return;
    }
    let points = srv.config.read().persist.save.clone();
    if points.is_empty() {
        return;
    }
    let changes = changes_since_save(srv);
    let since = now.saturating_sub(st.last_save.load(Relaxed));
    let retry_ok = st.last_bgsave_ok.load(Relaxed)
        || now.saturating_sub(st.last_bgsave_try.load(Relaxed)) > RETRY_DELAY_SECS;
    if let Some((secs, n)) = points
        .iter()
        .find(|(secs, n)| changes >= *n && since >= *secs)
    {
        if retry_ok {
            crate::log::notice(&format!("{n} changes in {secs} seconds. Saving..."));
            let _ = bgsave(srv);
        }
    }
}

/// Load `dbfilename` at startup if it exists. Returns Err with a message when the file is unreadable or
/// corrupt (the server then refuses to start, as Redis does).
pub fn load_at_startup(srv: &Server) -> Result<(), String> {
    let path = rdb_path(srv);
    if !path.exists() {
        return Ok(());
    }
    let start = Instant::now();
    srv.persist.rdb.loading.store(true, Relaxed);
    let r = load_file(srv, &path);
    srv.persist.rdb.loading.store(false, Relaxed);
    let (loaded, expired) = r?;
    crate::log::notice(&format!(
        "Done loading RDB, keys loaded: {loaded}, keys expired: {expired}."
    ));
    crate::log::notice(&format!(
        "DB loaded from disk: {:.3} seconds",
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Read an RDB file into the keyspace (which should be empty). Returns (keys loaded, keys expired).
pub fn load_file(srv: &Server, path: &Path) -> Result<(u64, u64), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("Error opening {}: {e}", path.display()))?;
    let len = file.metadata().ok().map(|m| m.len());
    let (loaded, expired) = rdb::load_into_with(
        srv,
        std::io::BufReader::with_capacity(1 << 20, file),
        len,
        |code| srv.scripting.load_library(code, true).map(|_| ()),
    )
    .map_err(|e| {
        format!("Short read or OOM loading DB. Unrecoverable error, aborting now. ({e})")
    })?;
    srv.persist.rdb.last_load_keys_loaded.store(loaded, Relaxed);
    srv.persist
        .rdb
        .last_load_keys_expired
        .store(expired, Relaxed);
    srv.persist
        .rdb
        .dirty_at_save
        .store(srv.sum(|w| w.dirty.get()), Relaxed);
    srv.persist.rdb.last_save.store(unix_ms() / 1000, Relaxed);
    Ok((loaded, expired))
}

/// INFO persistence lines for RDB.
pub fn info(srv: &Server, o: &mut String) {
    use std::fmt::Write;
    let st = &srv.persist.rdb;
    let running = st.bgsave_in_progress.load(Relaxed);
    let _ = write!(
        o,
        "rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\n\
         rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\n\
         rdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:{}\r\n\
         rdb_last_load_keys_loaded:{}\r\n",
        changes_since_save(srv),
        running as u8,
        st.last_save.load(Relaxed),
        if st.last_bgsave_ok.load(Relaxed) { "ok" } else { "err" },
        st.last_bgsave_time_sec.load(Relaxed),
        if running {
            (unix_ms().saturating_sub(st.bgsave_started_ms.load(Relaxed)) / 1000) as i64
        } else {
            -1
        },
        st.saves.load(Relaxed),
        st.last_cow_size.load(Relaxed),
        st.last_load_keys_expired.load(Relaxed),
        st.last_load_keys_loaded.load(Relaxed),
    );
}
