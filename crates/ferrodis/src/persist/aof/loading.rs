//! Loading at startup: the base (RDB body or commands) and the incr files replayed through the command
//! path, a truncated tail, upgrading a single-file AOF from before Redis 7.

use super::*;

/// Load an RDB file (an RDB base) into the keyspace: (keys loaded, keys expired).
pub(super) fn load_rdb(srv: &Server, path: &Path) -> Result<(u64, u64), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let f = File::open(path).map_err(|e| format!("Can't open the AOF base {name}: {e}"))?;
    let len = f.metadata().ok().map(|m| m.len());
    crate::persist::rdb::load_into(srv, std::io::BufReader::with_capacity(1 << 20, f), len)
        .map_err(|e| format!("Bad file format reading the append only file {name}: {e}"))
}

// ---------------------------------------------------------------------------------------------------------
// Loading

/// What loading found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// An AOF existed (manifest found).
    pub existed: bool,
    pub commands: u64,
    pub keys_loaded: u64,
}

/// How a command stream ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed {
    /// Everything parsed.
    Complete,
    /// The last command is incomplete from this offset (a torn tail).
    Truncated(usize),
    /// Not a command at this offset.
    Bad(usize),
}

/// Split a command stream into commands (skipping `#` annotation lines), calling `f` for each with its
/// arguments (as an `Args` over `data`) and its end offset.
pub(super) fn parse_stream(
    data: &[u8],
    mut f: impl FnMut(Args<'_>, usize) -> Result<(), String>,
) -> Result<Parsed, String> {
    let mut pos = 0;
    let mut argv: Vec<(usize, usize)> = Vec::new();
    while pos < data.len() {
        let start = pos;
        match data[pos] {
            b'#' => match memchr::memchr(b'\n', &data[pos..]) {
                Some(n) => {
                    pos += n + 1;
                    continue;
                }
                None => return Ok(Parsed::Truncated(start)),
            },
            b'*' => {}
            _ => return Ok(Parsed::Bad(start)),
        }
        let line = |p: usize| -> Option<Result<(i64, usize), ()>> {
            let n = memchr::memchr(b'\n', &data[p..])?;
            if n < 2 || data[p + n - 1] != b'\r' {
                return Some(Err(()));
            }
            let v = ferrodis_protocol::num::parse_i64(&data[p + 1..p + n - 1]);
            Some(v.map(|v| (v, p + n + 1)).ok_or(()))
        };
        let (count, mut p) = match line(pos) {
            None => return Ok(Parsed::Truncated(start)),
            Some(Err(())) => return Ok(Parsed::Bad(start)),
            Some(Ok(v)) => v,
        };
        if count < 1 {
            return Ok(Parsed::Bad(start));
        }
        argv.clear();
        for _ in 0..count {
            if p >= data.len() {
                return Ok(Parsed::Truncated(start));
            }
            if data[p] != b'$' {
                return Ok(Parsed::Bad(start));
            }
            let (len, q) = match line(p) {
                None => return Ok(Parsed::Truncated(start)),
                Some(Err(())) => return Ok(Parsed::Bad(start)),
                Some(Ok(v)) => v,
            };
            if len < 0 {
                return Ok(Parsed::Bad(start));
            }
            let len = len as usize;
            if q + len + 2 > data.len() {
                return Ok(Parsed::Truncated(start));
            }
            if &data[q + len..q + len + 2] != b"\r\n" {
                return Ok(Parsed::Bad(start));
            }
            argv.push((q, q + len));
            p = q + len + 2;
        }
        pos = p;
        f(Args::from_parts(data, &argv), pos)?;
    }
    Ok(Parsed::Complete)
}

/// Counts the bytes read through it (where an RDB preamble ends).
pub(super) struct Counting<R> {
    inner: R,
    n: usize,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n;
        Ok(n)
    }
}

/// A client for replaying commands (no connection).
/// How the commands of an AOF are run: `cmd::execute` (the command layer sits above persistence, so the
/// caller of [`load`] hands it down).
pub type Execute =
    fn(&Arc<Server>, &mut Client, &mut Vec<u8>, Args<'_>, &mut crate::server::BatchClock);

pub(super) fn loader_client() -> Client {
    let info = crate::client::ClientInfo::new(u64::MAX, String::new(), String::new(), -1, false);
    Client::new(u64::MAX, 0, Arc::new(info), true)
}

/// Replay one command file through the normal command path. `last` says whether a torn tail may be cut
/// (aof-load-truncated) instead of refusing. Returns the number of commands.
pub(super) fn replay_file(
    srv: &Arc<Server>,
    client: &mut Client,
    path: &Path,
    last: bool,
    load_truncated: bool,
    execute: Execute,
) -> Result<(u64, u64), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data = std::fs::read(path).map_err(|e| {
        format!("Fatal error: can't open the append log file {name} for reading: {e}")
    })?;
    if data.is_empty() {
        return Ok((0, 0));
    }
    // An old-style AOF (before Redis 7) may start with an RDB body, commands following it.
    let mut skip = 0usize;
    let mut keys = 0u64;
    if data.starts_with(b"REDIS") {
        let mut r = Counting {
            inner: &data[..],
            n: 0,
        };
        let (loaded, _) = crate::persist::rdb::load_into(srv, &mut r, Some(data.len() as u64))
            .map_err(|e| format!("Bad file format reading the append only file {name}: {e}"))?;
        keys = loaded;
        skip = r.n;
    }
    let data = &data[skip..];
    let mut out = Vec::new();
    let mut clock = crate::server::BatchClock::new();
    let mut commands = 0u64;
    // Offset just before an open MULTI (its transaction is dropped if the file ends inside it).
    let mut multi_start: Option<usize> = None;
    let mut valid_upto = 0usize;
    let parsed = parse_stream(data, |args, end| {
        // parse_stream yields at least one argument (the command name).
        let name0 = args.try_get(0).unwrap_or_default();
        if name0.eq_ignore_ascii_case(b"multi") {
            multi_start = Some(valid_upto);
        } else if name0.eq_ignore_ascii_case(b"exec") {
            multi_start = None;
        }
        out.clear();
        execute(srv, client, &mut out, args, &mut clock);
        if out.starts_with(b"-ERR unknown command") {
            return Err(format!(
                "Unknown command '{}' reading the append only file {name}",
                String::from_utf8_lossy(name0)
            ));
        }
        commands += 1;
        if multi_start.is_none() {
            valid_upto = end;
        }
        Ok(())
    })?;
    match parsed {
        Parsed::Complete if multi_start.is_none() => Ok((commands, keys)),
        Parsed::Bad(_) => Err(format!(
            "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
        )),
        Parsed::Complete | Parsed::Truncated(_) => {
            if !last || !load_truncated {
                return Err(format!(
                    "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
                ));
            }
            // Drop a transaction left open at the end (its commands ran on the loader client: discard).
            if client.multi.is_some() {
                out.clear();
                let discard = Args::from_parts(b"DISCARD", &[(0, 7)]);
                execute(srv, client, &mut out, discard, &mut clock);
            }
            crate::log::warning(&format!(
                "!!! Warning: short read while loading the AOF file {name}!!!"
            ));
            let valid_upto = skip + valid_upto;
            crate::log::warning(&format!(
                "!!! Truncating the AOF {name} at offset {valid_upto} !!!"
            ));
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(valid_upto as u64).and_then(|_| f.sync_all()));
            if let Err(e) = f {
                return Err(format!(
                    "Error truncating the AOF file {name}: {e}"
                ));
            }
            crate::log::warning(&format!(
                "AOF {name} loaded anyway because aof-load-truncated is enabled"
            ));
            Ok((commands, keys))
        }
    }
}

/// An AOF from before Redis 7 (`<dir>/<appendfilename>`, one file) and no manifest: move it into the AOF
/// directory as the base of a new manifest, as Redis 7 does on its first start.
pub(super) fn upgrade_old_aof(srv: &Server, aofdir: &Path, filename: &str) -> Result<(), String> {
    let old = Path::new(&srv.config.read().dir).join(filename);
    if !old.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(aofdir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", aofdir.display()))?;
    let m = Manifest {
        base: Some(ManifestFile {
            name: filename.to_string(),
            seq: 1,
            kind: FileType::Base,
        }),
        cur_base_seq: 1,
        ..Default::default()
    };
    std::fs::rename(&old, aofdir.join(filename)).map_err(|e| {
        format!(
            "Error moving the old AOF {} into {}: {e}",
            old.display(),
            aofdir.display()
        )
    })?;
    persist_manifest(aofdir, filename, &m)?;
    crate::log::notice("Successfully migrated an old-style AOF into the AOF directory");
    Ok(())
}

/// Load the AOF at startup (appendonly yes): read the manifest, load the base and replay the incr files
/// in order. Returns `existed: false` when there is no AOF yet (the caller may then load dump.rdb, as
/// Redis does not — see [`start`]). Err: the server must refuse to start with this message. `execute` runs
/// the commands (`cmd::execute`, above this module).
pub fn load(srv: &Arc<Server>, execute: Execute) -> Result<LoadStats, String> {
    let aof = &srv.persist.aof;
    let (dir, filename, load_truncated) = {
        let c = srv.config.read();
        (
            Path::new(&c.dir).join(&c.persist.appenddirname),
            c.persist.appendfilename.clone(),
            c.persist.aof_load_truncated,
        )
    };
    let mpath = dir.join(manifest_name(&filename));
    if !mpath.exists() {
        upgrade_old_aof(srv, &dir, &filename)?;
    }
    let text = match std::fs::read(&mpath) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            aof.io.lock().dir = dir;
            return Ok(LoadStats::default());
        }
        Err(e) => {
            return Err(format!(
                "Can't open the AOF manifest {}: {e}",
                mpath.display()
            ))
        }
    };
    let manifest = Manifest::parse(&text)?;
    aof.stats.loading.store(true, Relaxed);
    let start = Instant::now();
    let mut st = LoadStats {
        existed: true,
        ..Default::default()
    };
    let mut client = loader_client();
    let files: Vec<&ManifestFile> = manifest.base.iter().chain(manifest.incrs.iter()).collect();
    let mut total = 0u64;
    let r = (|| -> Result<(), String> {
        for (i, f) in files.iter().enumerate() {
            let path = dir.join(&f.name);
            let last = i + 1 == files.len();
            if !path.exists() {
                return Err(format!("The AOF file {} doesn't exist", f.name));
            }
            if f.kind == FileType::Base && f.name.ends_with(".rdb") {
                let (loaded, _expired) = load_rdb(srv, &path)?;
                st.keys_loaded += loaded;
            } else {
                // Commands, possibly after an RDB body (an old-style AOF made the base).
                let (n, keys) =
                    replay_file(srv, &mut client, &path, last, load_truncated, execute)?;
                st.commands += n;
                st.keys_loaded += keys;
            }
            total += file_size(&path);
            crate::log::notice(&format!(
                "DB loaded from {} file {}: {:.3} seconds",
                if f.kind == FileType::Base {
                    "base"
                } else {
                    "incr"
                },
                f.name,
                start.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    })();
    aof.stats.loading.store(false, Relaxed);
    r?;
    let base_size = manifest
        .base
        .as_ref()
        .map(|b| file_size(&dir.join(&b.name)))
        .unwrap_or(0);
    aof.stats.base_size.store(base_size, Relaxed);
    aof.stats.current_size.store(total, Relaxed);
    aof.stats.size_at_rewrite.store(total, Relaxed);
    {
        let mut io = aof.io.lock();
        io.dir = dir;
        io.filename = filename;
        io.manifest = manifest;
    }
    crate::log::notice(&format!(
        "DB loaded from append only file: {:.3} seconds",
        start.elapsed().as_secs_f64()
    ));
    Ok(st)
}
