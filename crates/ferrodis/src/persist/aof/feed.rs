//! Feeding and ordering: each command's RESP encoding goes to the in-memory buffer in ticket order, the
//! writes and fsyncs that make a batch durable (group commit for `appendfsync always`), EXEC blocks.

use super::*;

// ---------------------------------------------------------------------------------------------------------
// RESP encoding of commands

/// Append `argv` as a RESP multibulk.
pub fn encode_argv<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

pub(super) fn encode_args(out: &mut Vec<u8>, args: &Args<'_>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args.iter() {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

pub(super) fn encode_select(out: &mut Vec<u8>, db: usize) {
    encode_argv(out, &[b"SELECT".as_slice(), db.to_string().as_bytes()]);
}

impl Aof {
    /// Whether commands are being fed (appendonly yes, loading done).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Pick up `appendfsync` and `aof-timestamp-enabled` after CONFIG SET.
    pub fn apply_config(&self, cfg: &crate::config::Config) {
        self.mode
            .store(fsync_mode(&cfg.persist.appendfsync), Relaxed);
        self.timestamps
            .store(cfg.persist.aof_timestamp_enabled, Relaxed);
    }

    /// Take this command's place in the AOF order. Call it INSIDE the shard lock of a write, before the
    /// lock is released (`Ctx::modified_in`, `propagate_before`/`after` do): commands on the same key are
    /// then written in the order they ran, although each feeds after releasing its locks. Cheap when the
    /// AOF is off; takes one ticket per command.
    #[inline]
    pub fn note_write(&self) {
        if self.enabled() {
            TICKET.with(|t| {
                if t.get() == 0 {
                    t.set(self.next_ticket.fetch_add(1, Relaxed));
                }
            });
        }
    }

    /// Append a command's propagated form (see [`Propagation`]).
    pub fn feed(&self, client: &Client, db: usize, args: &Args<'_>, prop: Propagation) {
        let mut enc: Vec<Vec<u8>> = Vec::with_capacity(1 + prop.before.len() + prop.after.len());
        let one = |argv: &Argv| {
            let mut v = Vec::new();
            encode_argv(&mut v, argv);
            v
        };
        enc.extend(prop.before.iter().map(one));
        if prop.changes > 0 {
            match &prop.replace {
                Some(cmds) => enc.extend(cmds.iter().map(one)),
                None => {
                    let mut v = Vec::with_capacity(args.buffer().len() + 16);
                    encode_args(&mut v, args);
                    enc.push(v);
                }
            }
        }
        enc.extend(prop.after.iter().map(one));
        let ticket = TICKET.with(|t| t.replace(0));
        if enc.is_empty() {
            if ticket != 0 {
                self.append(Vec::new(), false, &[ticket]);
            }
            return;
        }
        if client.in_exec {
            EXEC.with(|e| {
                let mut e = e.borrow_mut();
                if e.as_ref().is_some_and(|x| x.0 != client.id) {
                    let (_, cmds, tickets) = e.take().unwrap_or_default();
                    self.append(cmds, true, &tickets);
                }
                let slot = e.get_or_insert_with(|| (client.id, Vec::new(), Vec::new()));
                slot.1.extend(enc.into_iter().map(|v| (db, v)));
                if ticket != 0 {
                    slot.2.push(ticket);
                }
            });
            return;
        }
        self.flush_exec();
        // A command that propagates several effects is wrapped in MULTI/EXEC, so a torn tail never
        // replays half of it.
        let wrap = enc.len() > 1;
        let tickets: &[u64] = if ticket != 0 { &[ticket] } else { &[] };
        self.append(enc.into_iter().map(|v| (db, v)).collect(), wrap, tickets);
    }

    /// Append effects that no client command caused (keys removed by the active expiry cycle), as one
    /// unit in the order of the ticket taken with [`Aof::note_write`] (if any).
    pub fn feed_effects(&self, cmds: &[(usize, Vec<&[u8]>)]) {
        let ticket = TICKET.with(|t| t.replace(0));
        if !self.enabled() {
            return;
        }
        let enc = cmds
            .iter()
            .map(|(db, argv)| {
                let mut v = Vec::new();
                encode_argv(&mut v, argv);
                (*db, v)
            })
            .collect();
        let tickets: &[u64] = if ticket != 0 { &[ticket] } else { &[] };
        self.append(enc, false, tickets);
    }

    /// The order restarts at the current ticket (feeding switched on or off).
    pub(super) fn reset_order(&self) {
        let mut b = self.buf.lock();
        b.held.clear();
        b.stalled_since = None;
        b.next_emit = self.next_ticket.load(Relaxed);
    }

    /// Hand on what the EXEC this thread ran fed (MULTI ... EXEC around it when there is more than one
    /// command). Called on the next feed or wait of this thread; the lead may call it at the end of EXEC.
    pub fn flush_exec(&self) {
        if let Some((_, cmds, tickets)) = EXEC.with(|e| e.borrow_mut().take()) {
            let wrap = cmds.len() > 1;
            self.append(cmds, wrap, &tickets);
        }
    }

    /// Append encoded commands to the shared buffer (SELECT and timestamps as needed), in ticket order:
    /// `tickets` are those the commands took (a transaction: several; the block goes out at the first).
    /// Without tickets they go out at once.
    pub(super) fn append(&self, cmds: Vec<(usize, Vec<u8>)>, wrap: bool, tickets: &[u64]) {
        if !self.enabled() {
            return;
        }
        let mut b = self.buf.lock();
        let first = tickets.iter().copied().min().unwrap_or(0);
        if first == 0 || first < b.next_emit {
            // Unordered (or late: its turn was skipped): now.
            self.emit(&mut b, &cmds, wrap);
        } else {
            b.held.insert(first, Held { cmds, wrap });
            for &t in tickets {
                if t != first && t >= b.next_emit {
                    b.held.insert(
                        t,
                        Held {
                            cmds: Vec::new(),
                            wrap: false,
                        },
                    );
                }
            }
            self.drain(&mut b);
        }
        let end = b.end;
        let max = tickets.iter().copied().max().unwrap_or(0);
        drop(b);
        FED.with(|f| f.set(f.get().max(end)));
        if max != 0 {
            WAIT_TICKET.with(|w| w.set(w.get().max(max)));
        }
    }

    /// Emit the held commands whose turn has come.
    pub(super) fn drain(&self, b: &mut FeedBuf) {
        loop {
            let next = b.next_emit;
            match b.held.remove(&next) {
                Some(h) => {
                    b.next_emit += 1;
                    self.emit(b, &h.cmds, h.wrap);
                    b.stalled_since = None;
                }
                None => match b.held.keys().next().copied() {
                    None => {
                        b.stalled_since = None;
                        return;
                    }
                    Some(k) => {
                        let since = *b.stalled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < STALL_LIMIT {
                            return;
                        }
                        crate::log::warning(&format!(
                            "AOF: propagation ticket {next} never arrived, going on with {k}"
                        ));
                        b.next_emit = k;
                    }
                },
            }
        }
    }

    /// Check for a stalled ticket (background thread).
    pub(super) fn drain_stalled(&self) {
        let mut b = self.buf.lock();
        if !b.held.is_empty() {
            self.drain(&mut b);
        }
    }

    pub(super) fn emit(&self, b: &mut FeedBuf, cmds: &[(usize, Vec<u8>)], wrap: bool) {
        if cmds.is_empty() {
            return;
        }
        let start = b.data.len();
        if self.timestamps.load(Relaxed) {
            let now = unix_ms() / 1000;
            if now != b.last_ts {
                b.last_ts = now;
                b.data
                    .extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        let mut first = true;
        for (db, cmd) in cmds {
            if b.last_db != Some(*db) {
                encode_select(&mut b.data, *db);
                b.last_db = Some(*db);
            }
            if wrap && first {
                encode_argv(&mut b.data, &[b"MULTI"]);
            }
            first = false;
            b.data.extend_from_slice(cmd);
        }
        if wrap {
            encode_argv(&mut b.data, &[b"EXEC"]);
        }
        b.end += (b.data.len() - start) as u64;
    }

    /// The offset to wait for: everything this thread fed, once every ticket up to its own is out.
    pub(super) fn fed_target(&self) -> u64 {
        let wt = WAIT_TICKET.with(|w| w.get());
        if wt == 0 {
            return FED.with(|f| f.get());
        }
        let mut spins = 0u32;
        loop {
            let b = self.buf.lock();
            if wt < b.next_emit {
                let end = b.end;
                drop(b);
                WAIT_TICKET.with(|w| w.set(0));
                FED.with(|f| f.set(f.get().max(end)));
                return FED.with(|f| f.get());
            }
            drop(b);
            // Another thread is between its write and its feed (microseconds).
            spins += 1;
            if spins < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
                if spins.is_multiple_of(200) {
                    self.drain_stalled();
                }
            }
        }
    }

    /// Called by a worker before it sends the replies of a batch, blocking: see [`Aof::durable_target`]
    /// and [`Aof::durable`] (the async form, which lets the worker serve other connections meanwhile).
    #[inline]
    pub fn wait_durable(&self) {
        if let Some(target) = self.durable_target() {
            let mut r = self.req.lock();
            while self.synced.load(Acquire) < target {
                self.done_cv.wait_for(&mut r, Duration::from_millis(50));
            }
        }
    }

    /// Before a worker sends the replies of a batch. Everything this thread fed reaches the file now in
    /// every mode (a killed process loses nothing acknowledged). With `appendfsync always` the replies
    /// must also wait until it is on disk: this returns the offset to wait for with [`Aof::durable`] (the
    /// fsync thread has been asked for it). One fsync covers everything buffered by every thread and
    /// connection when it starts (group commit).
    #[inline]
    pub fn durable_target(&self) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        self.flush_exec();
        let target = self.fed_target();
        if self.mode.load(Relaxed) == FSYNC_ALWAYS {
            if target <= self.synced.load(Acquire) {
                return None;
            }
            let mut r = self.req.lock();
            if *r < target {
                *r = target;
                self.req_cv.notify_one();
            }
            return Some(target);
        }
        if target > self.written.load(Acquire) {
            self.write_pending(target);
        }
        None
    }

    /// Wait until the AOF is fsynced up to `target` (from [`Aof::durable_target`]).
    pub async fn durable(&self, target: u64) {
        let mut rx = self.synced_tx.subscribe();
        let _ = rx.wait_for(|v| *v >= target).await;
    }

    #[cold]
    pub(super) fn write_pending(&self, target: u64) {
        let mut io = self.io.lock();
        if target <= self.written.load(Acquire) {
            return;
        }
        self.write_locked(&mut io, false);
    }

    /// The fsync thread (`appendfsync always`): serves the offsets waiters asked for, each fsync covering
    /// everything buffered when it starts.
    pub(super) fn fsync_loop(weak: std::sync::Weak<Server>) {
        loop {
            let Some(srv) = weak.upgrade() else { return };
            let aof = &srv.persist.aof;
            {
                let mut r = aof.req.lock();
                if *r <= aof.synced.load(Acquire) {
                    aof.req_cv.wait_for(&mut r, Duration::from_millis(100));
                    if *r <= aof.synced.load(Acquire) {
                        if srv.shutting_down.load(Relaxed) {
                            return;
                        }
                        continue;
                    }
                }
            }
            let mut io = aof.io.lock();
            aof.write_locked(&mut io, true);
        }
    }

    /// With the I/O lock held: write everything buffered, fsync when `sync`.
    pub(super) fn write_locked(&self, io: &mut Io, sync: bool) {
        let (data, end) = {
            let mut b = self.buf.lock();
            (std::mem::take(&mut b.data), b.end)
        };
        if !data.is_empty() {
            let r = match io.file.as_mut() {
                Some(f) => f.write_all(&data),
                None => Ok(()),
            };
            match r {
                Ok(()) => {
                    if !self.stats.last_write_ok.swap(true, Relaxed) {
                        crate::log::warning("AOF write error looks solved, Redis can write again.");
                    }
                    io.incr_size += data.len() as u64;
                    self.stats
                        .current_size
                        .fetch_add(data.len() as u64, Relaxed);
                }
                Err(e) => {
                    if self.stats.last_write_ok.swap(false, Relaxed) {
                        crate::log::warning(&format!("Error writing to the AOF file: {e}"));
                    }
                }
            }
        }
        if sync {
            if let Some(f) = io.file.as_ref() {
                if let Err(e) = f.sync_data() {
                    crate::log::warning(&format!("Can't persist the AOF fsync error: {e}"));
                    self.stats.last_write_ok.store(false, Relaxed);
                }
            }
        }
        self.written.fetch_max(end, Release);
        if sync {
            self.stats.last_fsync_ms.store(unix_ms(), Relaxed);
            self.publish_synced(end);
        }
    }

    /// Write and fsync everything buffered now (shutdown, everysec tick).
    pub fn flush_and_sync(&self) {
        if !self.enabled() {
            return;
        }
        let mut io = self.io.lock();
        self.write_locked(&mut io, true);
    }

    /// The everysec / no tick: write what is buffered; fsync once a second in everysec mode. The fsync
    /// runs on a cloned handle outside the I/O lock, so writers are not held up by it.
    pub(super) fn tick(&self) {
        let mode = self.mode.load(Relaxed);
        let file = {
            let mut io = self.io.lock();
            self.write_locked(&mut io, false);
            if mode != FSYNC_EVERYSEC {
                return;
            }
            if self.synced.load(Relaxed) >= self.written.load(Relaxed) {
                return;
            }
            io.file.as_ref().and_then(|f| f.try_clone().ok())
        };
        let upto = self.written.load(Relaxed);
        if let Some(f) = file {
            if f.sync_data().is_ok() {
                self.stats.last_fsync_ms.store(unix_ms(), Relaxed);
                self.publish_synced(upto);
            } else {
                self.stats.delayed_fsync.fetch_add(1, Relaxed);
            }
        }
    }

    /// The stream is on disk up to `upto`: release the waiters.
    pub(super) fn publish_synced(&self, upto: u64) {
        if self.synced.fetch_max(upto, Release) >= upto {
            return;
        }
        self.synced_tx.send_if_modified(|v| {
            if *v < upto {
                *v = upto;
                true
            } else {
                false
            }
        });
        let _r = self.req.lock();
        self.done_cv.notify_all();
    }
}
