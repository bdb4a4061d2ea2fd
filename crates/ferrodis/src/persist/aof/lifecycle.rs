//! Starting and stopping: appending after loading, the background thread (writes, `everysec` fsyncs,
//! scheduled rewrites), CONFIG SET appendonly yes/no, shutdown.

use super::*;

/// Start appending (after [`load`], before accepting clients, when `appendonly yes`): open the last
/// incr file of the manifest for appending (or a new one), start the background thread, and when there
/// is no base yet write one from the current dataset (as Redis does on a first start with AOF on).
pub fn start(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.persist.aof;
    aof.apply_config(&srv.config.read());
    let need_base;
    {
        let mut io = aof.io.lock();
        std::fs::create_dir_all(&io.dir)
            .map_err(|e| format!("Can't create the AOF directory {}: {e}", io.dir.display()))?;
        need_base = io.manifest.base.is_none();
        // Redis opens a fresh incr file when it starts from a manifest without one, and appends to the
        // last one otherwise.
        match io.manifest.incrs.last().cloned() {
            // A fresh AOF: the initial rewrite below opens incr file 1 along with base 1.
            _ if need_base => {}
            Some(last) => {
                let path = io.dir.join(&last.name);
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("Can't open the append-only file {}: {e}", last.name))?;
                io.incr_size = file_size(&path);
                io.file = Some(f);
            }
            None => open_new_incr(&mut io)?,
        }
        // History files left behind by an interrupted rewrite.
        let hist = std::mem::take(&mut io.manifest.history);
        if !hist.is_empty() {
            let m = io.manifest.clone();
            persist_manifest(&io.dir, &io.filename, &m)?;
            for h in hist {
                let _ = std::fs::remove_file(io.dir.join(&h.name));
            }
        }
    }
    {
        let mut b = aof.buf.lock();
        b.last_db = None;
        b.data.clear();
    }
    aof.on.store(true, Relaxed);
    start_background(srv);
    if need_base {
        let (f, seq) = {
            let io = aof.io.lock();
            (io.filename.clone(), io.manifest.cur_base_seq + 1)
        };
        crate::log::notice(&format!(
            "Creating AOF base file {} on server start",
            base_name(&f, seq, aof_rdb_base(srv))
        ));
        rewrite_now(srv, true)?;
    }
    Ok(())
}

/// Whether new base files get an RDB body.
pub(super) fn aof_rdb_base(srv: &Server) -> bool {
    srv.config.read().persist.aof_use_rdb_preamble
}

pub(super) fn start_background(srv: &Arc<Server>) {
    if srv.persist.aof.bg_started.swap(true, Relaxed) {
        return;
    }
    let weak = Arc::downgrade(srv);
    let weak2 = weak.clone();
    let _ = std::thread::Builder::new()
        .name("ferrodis-aof-fsync".into())
        .spawn(move || Aof::fsync_loop(weak2));
    let _ = std::thread::Builder::new()
        .name("ferrodis-aof".into())
        .spawn(move || {
            let mut last_sync = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let Some(srv) = weak.upgrade() else { return };
                let aof = &srv.persist.aof;
                if srv.shutting_down.load(Relaxed) {
                    aof.flush_and_sync();
                    return;
                }
                cron(&srv);
                if !aof.enabled() {
                    continue;
                }
                aof.drain_stalled();
                // Write what idle threads left in the buffer; fsync once a second (everysec).
                if last_sync.elapsed() >= Duration::from_secs(1) {
                    last_sync = Instant::now();
                    aof.tick();
                } else {
                    let mut io = aof.io.lock();
                    aof.write_locked(&mut io, false);
                }
            }
        });
}

/// auto-aof-rewrite and scheduled rewrites.
pub(super) fn cron(srv: &Arc<Server>) {
    let aof = &srv.persist.aof;
    if aof.stats.rewrite_in_progress.load(Relaxed) || srv.keyspace.snapshot_running() {
        return;
    }
    if aof.stats.rewrite_scheduled.load(Relaxed) {
        let _ = bgrewrite(srv);
        return;
    }
    if !aof.enabled() {
        return;
    }
    let (pct, min) = {
        let c = srv.config.read();
        (
            c.persist.auto_aof_rewrite_percentage,
            c.persist.auto_aof_rewrite_min_size,
        )
    };
    if pct == 0 {
        return;
    }
    let cur = aof.stats.current_size.load(Relaxed);
    let base = aof.stats.size_at_rewrite.load(Relaxed).max(1);
    if cur > min && cur.saturating_sub(base) * 100 / base >= pct {
        crate::log::notice(&format!(
            "Starting automatic rewriting of AOF on {}% growth",
            cur.saturating_sub(base) * 100 / base
        ));
        let _ = bgrewrite(srv);
    }
}

/// Turn the AOF on at run time (CONFIG SET appendonly yes): like Redis, write a base of the current
/// dataset first (in the background); commands are fed from the switch point on.
pub fn enable(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.persist.aof;
    if aof.enabled() {
        return Ok(());
    }
    let (dir, filename) = {
        let c = srv.config.read();
        (
            Path::new(&c.dir).join(&c.persist.appenddirname),
            c.persist.appendfilename.clone(),
        )
    };
    // As in Redis, turning the AOF on fails at once (and CONFIG SET rolls back) when its directory can't
    // be made; the rewrite thread would only find out later.
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't open or create append-only dir {}: {e}",
            dir.display()
        )
    })?;
    {
        let mut io = aof.io.lock();
        io.dir = dir.clone();
        io.filename = filename.clone();
        io.manifest = std::fs::read(dir.join(manifest_name(&filename)))
            .ok()
            .and_then(|t| Manifest::parse(&String::from_utf8_lossy(&t)).ok())
            .unwrap_or_default();
        // A new base replaces whatever was there: the old files become history.
        let m = &mut io.manifest;
        let old: Vec<ManifestFile> = m.base.take().into_iter().chain(m.incrs.drain(..)).collect();
        m.history.extend(old.into_iter().map(|mut f| {
            f.kind = FileType::History;
            f
        }));
        io.file = None;
    }
    aof.apply_config(&srv.config.read());
    // Shown as scheduled until the rewrite thread takes over.
    aof.stats.initial_pending.store(true, Relaxed);
    aof.reset_order();
    aof.on.store(true, Relaxed);
    start_background(srv);
    let srv2 = srv.clone();
    std::thread::Builder::new()
        .name("ferrodis-aofrw".into())
        .spawn(move || {
            crate::persist::background_priority();
            if let Err(e) = rewrite_now(&srv2, true) {
                crate::log::warning(&e);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Turn the AOF off at run time (CONFIG SET appendonly no): flush, fsync, stop feeding.
pub fn disable(srv: &Server) {
    let aof = &srv.persist.aof;
    if !aof.enabled() {
        return;
    }
    aof.flush_and_sync();
    aof.on.store(false, Relaxed);
    aof.reset_order();
    let mut io = aof.io.lock();
    io.file = None;
    // Offsets stay monotonic (waiters compare against them); nothing is pending after the flush.
    let end = {
        let mut b = aof.buf.lock();
        b.data.clear();
        b.last_db = None;
        b.end
    };
    aof.written.fetch_max(end, Release);
    aof.publish_synced(end);
}

/// Flush and fsync at shutdown.
pub fn shutdown(srv: &Server) {
    srv.persist.aof.flush_and_sync();
}
