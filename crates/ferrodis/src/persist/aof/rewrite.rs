//! BGREWRITEAOF without fork: a new incr file and a point-in-time snapshot opened together, the new base
//! written from the snapshot (RDB body or commands) while commands flow into the new incr file.

use super::*;

/// RDB-body base writer (`aof-use-rdb-preamble yes`): the RDB codec's header with `aof-base 1`, the
/// shards as the snapshot hands them over, EOF and checksum.
pub(super) struct RdbBase {
    out: Mutex<Option<crate::persist::rdb::Writer<std::io::BufWriter<File>>>>,
    opts: crate::persist::rdb::SaveOptions,
    now_ms: u64,
    failed: Mutex<Option<String>>,
    size: AtomicU64,
}

impl RdbBase {
    fn create(srv: &Server, file: File) -> Result<RdbBase, String> {
        let opts = {
            let c = srv.config.read();
            crate::persist::rdb::SaveOptions {
                compression: c.persist.rdbcompression,
                checksum: c.persist.rdbchecksum,
                databases: c.databases,
            }
        };
        let mut w = crate::persist::rdb::Writer::new(
            std::io::BufWriter::with_capacity(1 << 16, file),
            opts.checksum,
        );
        let mut aux = crate::persist::rdb::Aux::now(srv);
        aux.aof_base = true;
        w.write_header(&aux).map_err(|e| e.to_string())?;
        Ok(RdbBase {
            out: Mutex::new(Some(w)),
            opts,
            now_ms: unix_ms(),
            failed: Mutex::new(None),
            size: AtomicU64::new(0),
        })
    }
}

impl ShardSink for RdbBase {
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
        crate::persist::rdb::put_select(buf, db);
    }

    fn encode(&self, buf: &mut Vec<u8>, e: &crate::keyspace::entry::Entry) {
        if !e.is_expired(self.now_ms) {
            crate::persist::rdb::encode_entry(buf, e, self.opts.compression);
        }
    }

    fn write(&self, buf: Vec<u8>) {
        if let Some(w) = self.out.lock().as_mut() {
            if let Err(e) = w.write_all(&buf) {
                self.failed.lock().get_or_insert(e.to_string());
            }
        }
    }
}

impl BaseWriter for RdbBase {
    fn finish(&self) -> Result<u64, String> {
        if let Some(e) = self.failed.lock().clone() {
            return Err(e);
        }
        let w = self.out.lock().take().ok_or("already finished")?;
        let n = w.written() + 9;
        w.finish().map_err(|e| e.to_string())?;
        self.size.store(n, Relaxed);
        Ok(n)
    }
}
// ---------------------------------------------------------------------------------------------------------
// Rewrite

/// BGREWRITEAOF: start a rewrite in the background. Err(message) when one is running already; Ok(false)
/// when it was scheduled (another snapshot is running).
pub fn bgrewrite(srv: &Arc<Server>) -> Result<bool, &'static str> {
    let aof = &srv.persist.aof;
    if aof.stats.rewrite_in_progress.load(Relaxed) {
        return Err("ERR Background append only file rewriting already in progress");
    }
    if srv.keyspace.snapshot_running() {
        aof.stats.rewrite_scheduled.store(true, Relaxed);
        // The background thread starts it once the other snapshot is over.
        start_background(srv);
        return Ok(false);
    }
    if aof
        .stats
        .rewrite_in_progress
        .compare_exchange(false, true, Relaxed, Relaxed)
        .is_err()
    {
        return Err("ERR Background append only file rewriting already in progress");
    }
    aof.stats.rewrite_scheduled.store(false, Relaxed);
    let srv2 = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("ferrodis-aofrw".into())
        .spawn(move || {
            crate::persist::background_priority();
            if let Err(e) = rewrite_now(&srv2, false) {
                crate::log::warning(&format!("Background AOF rewrite failed: {e}"));
            }
        });
    if spawned.is_err() {
        aof.stats.rewrite_in_progress.store(false, Relaxed);
        return Err("ERR Can't start the background AOF rewrite");
    }
    Ok(true)
}

/// Whether a rewrite is running (BGSAVE refuses to start meanwhile, as in Redis).
pub fn rewrite_in_progress(srv: &Server) -> bool {
    srv.persist.aof.stats.rewrite_in_progress.load(Relaxed)
}

/// Command-form base writer: every key as the commands that rebuild it.
pub(super) struct CmdBase {
    out: Mutex<(std::io::BufWriter<File>, u64)>,
    now_ms: u64,
    failed: Mutex<Option<String>>,
}

impl ShardSink for CmdBase {
    fn begin_db(&self, buf: &mut Vec<u8>, db: usize) {
        encode_select(buf, db);
    }

    fn encode(&self, buf: &mut Vec<u8>, e: &crate::keyspace::entry::Entry) {
        if !e.is_expired(self.now_ms) {
            rewrite_entry(buf, e, self.now_ms);
        }
    }

    fn write(&self, buf: Vec<u8>) {
        let mut o = self.out.lock();
        o.1 += buf.len() as u64;
        if let Err(e) = o.0.write_all(&buf) {
            self.failed.lock().get_or_insert(e.to_string());
        }
    }
}

impl BaseWriter for CmdBase {
    fn finish(&self) -> Result<u64, String> {
        if let Some(e) = self.failed.lock().clone() {
            return Err(e);
        }
        let mut o = self.out.lock();
        o.0.flush().map_err(|e| e.to_string())?;
        Ok(o.1)
    }
}

pub(super) const BATCH: usize = 64;

/// The commands that rebuild one key (Redis's rewriteAppendOnlyFileRio forms).
pub fn rewrite_entry(out: &mut Vec<u8>, e: &crate::keyspace::entry::Entry, _now_ms: u64) {
    use crate::keyspace::entry::ValueRef;
    let key = e.key();
    let mut batched = |cmd: &[u8], items: &mut dyn Iterator<Item = Vec<Vec<u8>>>| {
        let mut argv: Vec<Vec<u8>> = vec![cmd.to_vec(), key.to_vec()];
        let mut n = 0;
        for it in items {
            argv.extend(it);
            n += 1;
            if n == BATCH {
                encode_argv(out, &argv);
                argv.truncate(2);
                n = 0;
            }
        }
        if n > 0 {
            encode_argv(out, &argv);
        }
    };
    match e.value() {
        ValueRef::Str(s) => encode_argv(out, &[b"SET".as_slice(), key, s]),
        ValueRef::Other(v) => match v {
            Value::Str(s) => encode_argv(out, &[b"SET".as_slice(), key, s]),
            Value::List(l) => batched(b"RPUSH", &mut l.iter().map(|x| vec![x.to_vec()])),
            Value::Set(s) => batched(b"SADD", &mut s.iter().map(|x| vec![x.to_vec()])),
            Value::ZSet(z) => batched(
                b"ZADD",
                &mut z.to_vec().into_iter().map(|(m, s)| {
                    let mut f = Vec::new();
                    ferrodis_protocol::num::format_double(s, &mut f);
                    vec![f, m]
                }),
            ),
            Value::Hash(h) => {
                batched(
                    b"HSET",
                    &mut h.iter().map(|(f, v)| vec![f.to_vec(), v.to_vec()]),
                );
                for (f, at) in h.field_ttls() {
                    encode_argv(
                        out,
                        &[
                            b"HPEXPIREAT".as_slice(),
                            key,
                            at.to_string().as_bytes(),
                            b"FIELDS",
                            b"1",
                            f,
                        ],
                    );
                }
            }
            Value::Stream(s) => rewrite_stream(out, key, s),
        },
    }
    if let Some(at) = e.expire_at() {
        encode_argv(
            out,
            &[b"PEXPIREAT".as_slice(), key, at.to_string().as_bytes()],
        );
    }
}

pub(super) fn rewrite_stream(out: &mut Vec<u8>, key: &[u8], s: &crate::types::stream::Stream) {
    use crate::types::stream::StreamId;
    let id = |i: StreamId| i.to_string().into_bytes();
    let entries = s.range(StreamId::MIN, StreamId::MAX, usize::MAX);
    if entries.is_empty() {
        // An empty stream: create it with a placeholder entry and delete that (Redis's trick).
        encode_argv(
            out,
            &[
                b"XADD".as_slice(),
                key,
                b"MAXLEN",
                b"0",
                &id(s.last_id),
                b"x",
                b"y",
            ],
        );
    } else {
        for e in &entries {
            let mut argv: Vec<&[u8]> = vec![b"XADD", key];
            let eid = id(e.id);
            argv.push(&eid);
            for (f, v) in &e.fields {
                argv.push(f);
                argv.push(v);
            }
            encode_argv(out, &argv);
        }
    }
    encode_argv(
        out,
        &[
            b"XSETID".as_slice(),
            key,
            &id(s.last_id),
            b"ENTRIESADDED",
            s.entries_added.to_string().as_bytes(),
            b"MAXDELETEDID",
            &id(s.max_deleted_id),
        ],
    );
    for (gname, g) in &s.groups {
        let read = match g.entries_read {
            Some(n) => n.to_string(),
            None => "-1".into(),
        };
        encode_argv(
            out,
            &[
                b"XGROUP".as_slice(),
                b"CREATE",
                key,
                gname,
                &id(g.last_id),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
        for (cname, c) in &g.consumers {
            if c.pending.is_empty() {
                encode_argv(
                    out,
                    &[b"XGROUP".as_slice(), b"CREATECONSUMER", key, gname, cname],
                );
            }
        }
        for (pid, p) in &g.pel {
            encode_argv(
                out,
                &[
                    b"XCLAIM".as_slice(),
                    key,
                    gname,
                    &p.consumer,
                    b"0",
                    &id(*pid),
                    b"TIME",
                    p.delivery_time.to_string().as_bytes(),
                    b"RETRYCOUNT",
                    p.delivery_count.to_string().as_bytes(),
                    b"JUSTID",
                    b"FORCE",
                ],
            );
        }
    }
}

/// Run a rewrite on this thread. `initial`: the base for a fresh AOF (startup or CONFIG SET appendonly
/// yes), where the in-progress flag was not taken by `bgrewrite`.
pub(super) fn rewrite_now(srv: &Arc<Server>, initial: bool) -> Result<(), String> {
    let aof = &srv.persist.aof;
    if initial {
        // Wait for another snapshot to finish (a BGSAVE), then take the flag.
        loop {
            if !srv.keyspace.snapshot_running()
                && aof
                    .stats
                    .rewrite_in_progress
                    .compare_exchange(false, true, Relaxed, Relaxed)
                    .is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let started = Instant::now();
    aof.stats.rewrite_started_ms.store(unix_ms(), Relaxed);
    let r = rewrite_inner(srv);
    let secs = started.elapsed().as_secs() as i64;
    aof.stats.last_rewrite_time_sec.store(secs, Relaxed);
    aof.stats.last_rewrite_ok.store(r.is_ok(), Relaxed);
    aof.stats.rewrite_in_progress.store(false, Relaxed);
    if initial {
        aof.stats.initial_pending.store(false, Relaxed);
    }
    if r.is_ok() {
        aof.stats.rewrites.fetch_add(1, Relaxed);
        crate::log::notice("Background AOF rewrite finished successfully");
    }
    r
}

pub(super) fn rewrite_inner(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.persist.aof;
    let rdb = srv.config.read().persist.aof_use_rdb_preamble;
    if !aof.enabled() {
        let c = srv.config.read();
        let mut io = aof.io.lock();
        io.dir = Path::new(&c.dir).join(&c.persist.appenddirname);
        io.filename = c.persist.appendfilename.clone();
        io.manifest = std::fs::read(io.dir.join(manifest_name(&io.filename)))
            .ok()
            .and_then(|t| Manifest::parse(&String::from_utf8_lossy(&t)).ok())
            .unwrap_or_default();
    }
    let (dir, filename, base_seq) = {
        let io = aof.io.lock();
        (
            io.dir.clone(),
            io.filename.clone(),
            io.manifest.cur_base_seq + 1,
        )
    };
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let file = File::create(&tmp).map_err(|e| format!("Can't create the temp AOF file: {e}"))?;
    let writer: Arc<dyn BaseWriter> = if rdb {
        Arc::new(RdbBase::create(srv, file)?)
    } else {
        Arc::new(CmdBase {
            out: Mutex::new((std::io::BufWriter::with_capacity(1 << 16, file), 0)),
            now_ms: unix_ms(),
            failed: Mutex::new(None),
        })
    };
    // The switch point: every shard locked and the gate closed (so every command that ran before has
    // been fed), the new incr file opened, and the snapshot begun — in one exclusive section. Holding
    // the locks makes `begin_snapshot`'s own `lock_all` reuse them.
    let ks = &srv.keyspace;
    let snap;
    let switched_incrs;
    {
        let all = ks.lock_all();
        let held = ks.hold(all);
        {
            let mut io = aof.io.lock();
            aof.write_locked(&mut io, aof.mode.load(Relaxed) == FSYNC_ALWAYS);
            if let Some(f) = io.file.as_ref() {
                let _ = f.sync_data();
            }
            if aof.enabled() {
                open_new_incr(&mut io)?;
                switched_incrs = io.manifest.cur_incr_seq;
            } else {
                // AOF off (a BGREWRITEAOF anyway): the new base alone replaces whatever is there.
                switched_incrs = u64::MAX;
            }
            aof.buf.lock().last_db = None;
        }
        snap = ks.begin_snapshot(writer.clone() as Arc<dyn ShardSink>);
        drop(held);
    }
    let Some(snap) = snap else {
        aof.stats.rewrite_scheduled.store(true, Relaxed);
        let _ = std::fs::remove_file(&tmp);
        return Err("another snapshot is running; rewrite scheduled".into());
    };
    crate::log::notice("Background append only file rewriting started");
    snap.walk();
    let finished = writer.finish();
    drop(writer);
    let size = match finished {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    let bname = base_name(&filename, base_seq, rdb);
    std::fs::rename(&tmp, dir.join(&bname)).map_err(|e| e.to_string())?;
    // New manifest: the new base, the incr files from the switch point on; the rest is history.
    let removed;
    {
        let mut io = aof.io.lock();
        let mut m = io.manifest.clone();
        let mut old: Vec<ManifestFile> = m.base.take().into_iter().collect();
        let (keep, drop_): (Vec<_>, Vec<_>) =
            m.incrs.drain(..).partition(|f| f.seq >= switched_incrs);
        old.extend(drop_);
        old.append(&mut m.history);
        m.incrs = keep;
        m.base = Some(ManifestFile {
            name: bname.clone(),
            seq: base_seq,
            kind: FileType::Base,
        });
        m.cur_base_seq = base_seq;
        persist_manifest(&io.dir, &io.filename, &m)?;
        io.manifest = m;
        removed = old;
        let incr_total: u64 = io
            .manifest
            .incrs
            .iter()
            .map(|f| file_size(&io.dir.join(&f.name)))
            .sum();
        aof.stats.base_size.store(size, Relaxed);
        aof.stats.current_size.store(size + incr_total, Relaxed);
        aof.stats.size_at_rewrite.store(size + incr_total, Relaxed);
    }
    for f in removed {
        if f.name != bname {
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
    }
    Ok(())
}
