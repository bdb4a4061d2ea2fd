//! Lua scripting (EVAL and FUNCTION): the Lua 5.1 environment Redis provides, conversions between Lua values
//! and RESP replies, the script cache and the function libraries.
//!
//! Shared state lives in [`Scripting`] (one per server): the EVAL script cache (by SHA1), the function
//! libraries (with a generation counter), and the scripts running past the busy threshold (each with its own
//! kill/wrote flags: scripts on several worker threads may be busy at once). Each worker thread has its own
//! Lua state (see [`engine`]) into which scripts are compiled and libraries loaded lazily.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod commands;
pub mod convert;
pub mod engine;
pub mod functions;
pub mod sandbox;
pub mod structlib;

pub use crate::scripts::{BusyFlags, BusyScript, RunningInfo, Script, Scripting};

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

/// Script flags (shebang `flags=` / `register_function` flags).
pub mod sflags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// The script had a shebang line (flags are explicit).
    pub const EXPLICIT: u32 = 1 << 31;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn by_name(n: &str) -> Option<u32> {
        NAMES.iter().find(|(_, s)| *s == n).map(|(f, _)| *f)
    }
}

/// Isolation policy of a script (docs/design/execution-model.md, "Scripts"): unknown scripts run exclusively; those seen to stay
/// inside their declared keys' shards run with those shards locked; those that strayed stay exclusive.
pub const POLICY_UNKNOWN: u8 = 0;
pub const POLICY_CLEAN: u8 = 1;
pub const POLICY_DIRTY: u8 = 2;

/// What a busy script's hook calls to serve the other connections of its worker thread (the network layer
/// installs it at startup: `net::serve_while_busy`).
pub static BUSY_HOOK: std::sync::OnceLock<fn(&Arc<crate::server::Server>)> =
    std::sync::OnceLock::new();

pub const BUSY_EVAL: u8 = 1;
pub const BUSY_FUNCTION: u8 = 2;

/// The errors of a busy EVAL script / function (Redis's slowevalerr / slowscripterr).
pub const BUSY_EVAL_ERR: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION_ERR: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

impl Scripting {
    pub fn new() -> Self {
        Self::default()
    }

    /// The error other clients get while a script is busy, if one is.
    #[inline]
    pub fn busy_error(&self) -> Option<&'static str> {
        match self.busy.load(Relaxed) {
            0 => None,
            BUSY_EVAL => Some(BUSY_EVAL_ERR),
            _ => Some(BUSY_FUNCTION_ERR),
        }
    }

    /// A script on this thread ran past the busy threshold: from now on others get BUSY. Returns its id
    /// for [`Scripting::busy_end`].
    pub fn busy_begin(&self, kind: u8, flags: Arc<BusyFlags>, running: RunningInfo) -> u64 {
        let id = self.next_busy_id.fetch_add(1, Relaxed);
        let mut l = self.busy_list.lock();
        l.push(BusyScript {
            id,
            kind,
            flags,
            running,
        });
        self.busy.store(l[0].kind, Relaxed);
        id
    }

    /// A busy script ended: BUSY stays only while another script is still busy.
    pub fn busy_end(&self, id: u64) {
        let mut l = self.busy_list.lock();
        l.retain(|b| b.id != id);
        self.busy.store(l.first().map_or(0, |b| b.kind), Relaxed);
    }

    /// SCRIPT KILL (`function` false) / FUNCTION KILL: flag the busy scripts of that kind that did not
    /// write. With one busy script this answers exactly as Redis (UNKILLABLE before a wrong kind); with
    /// several, those of the other kind are left alone.
    pub fn kill_busy(&self, function: bool) -> Result<(), &'static str> {
        let want = if function { BUSY_FUNCTION } else { BUSY_EVAL };
        let l = self.busy_list.lock();
        if l.is_empty() {
            return Err(NOTBUSY);
        }
        let killable = |b: &BusyScript| !b.flags.wrote.load(Relaxed);
        let of_kind: Vec<&BusyScript> = l.iter().filter(|b| b.kind == want).collect();
        if of_kind.is_empty() {
            if !l.iter().any(killable) {
                return Err(UNKILLABLE);
            }
            return Err(if function {
                BUSY_EVAL_ERR
            } else {
                BUSY_FUNCTION_ERR
            });
        }
        let mut any = false;
        for b in of_kind.into_iter().filter(|b| killable(b)) {
            b.flags.kill.store(true, Relaxed);
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(UNKILLABLE)
        }
    }

    /// FUNCTION STATS' running_script: Err(BUSY) while a busy EVAL script runs (as Redis), else the busy
    /// function, if any.
    pub fn running_function(&self) -> Result<Option<RunningInfo>, &'static str> {
        let l = self.busy_list.lock();
        if l.iter().any(|b| b.kind == BUSY_EVAL) {
            return Err(BUSY_EVAL_ERR);
        }
        Ok(l.first().map(|b| b.running.clone()))
    }

    /// A cached script by SHA (any case).
    pub fn script(&self, sha: &[u8]) -> Option<Arc<Script>> {
        let key = sha_key(sha)?;
        self.scripts.read().get(&key).cloned()
    }

    /// Add a script (already validated) to the cache; returns the cached entry.
    pub fn add_script(&self, sha: [u8; 40], body: &[u8], flags: u32) -> Arc<Script> {
        let mut m = self.scripts.write();
        m.entry(sha)
            .or_insert_with(|| {
                self.scripts_bytes.fetch_add(body.len() as u64, Relaxed);
                Arc::new(Script {
                    sha,
                    name: String::from_utf8_lossy(&sha).into(),
                    body: body.into(),
                    flags,
                    policy: AtomicU8::new(POLICY_UNKNOWN),
                })
            })
            .clone()
    }

    pub fn flush_scripts(&self) {
        self.scripts.write().clear();
        self.scripts_bytes.store(0, Relaxed);
        self.scripts_epoch.fetch_add(1, Relaxed);
    }

    /// Library codes, for RDB/AOF persistence (each loads with FUNCTION LOAD).
    pub fn library_codes(&self) -> Vec<Vec<u8>> {
        self.libs
            .read()
            .libs
            .values()
            .map(|l| l.code.to_vec())
            .collect()
    }

    /// Load a library from its code (RDB/AOF loading, FUNCTION RESTORE): runs its registration on this
    /// thread's Lua state. Returns the library name or Redis's error text.
    pub fn load_library(&self, code: &[u8], replace: bool) -> Result<String, String> {
        functions::load(self, code, replace)
    }
}

/// The scripting figures of INFO memory.
pub struct MemoryInfo {
    /// Lua heap of all worker states (used_memory_lua, used_memory_vm_eval, used_memory_vm_total).
    pub vm: u64,
    /// Bytes of cached EVAL script bodies (used_memory_scripts_eval).
    pub scripts_eval: u64,
    pub cached_scripts: u64,
    pub functions: u64,
    pub libraries: u64,
    /// Bytes of function library code (used_memory_functions).
    pub functions_bytes: u64,
}

impl Scripting {
    pub fn memory_info(&self) -> MemoryInfo {
        let libs = self.libs.read();
        MemoryInfo {
            vm: self.lua_memory.load(Relaxed),
            scripts_eval: self.scripts_bytes.load(Relaxed),
            cached_scripts: self.scripts.read().len() as u64,
            functions: libs.funcs.len() as u64,
            libraries: libs.libs.len() as u64,
            functions_bytes: libs.libs.values().map(|l| l.code.len() as u64).sum(),
        }
    }
}

/// Lower-case 40-hex key of a SHA argument, None if it cannot be one.
pub fn sha_key(sha: &[u8]) -> Option<[u8; 40]> {
    if sha.len() != 40 {
        return None;
    }
    let mut k = [0u8; 40];
    for (d, s) in k.iter_mut().zip(sha) {
        *d = s.to_ascii_lowercase();
    }
    Some(k)
}

/// SHA1 of `body` as 40 lower-case hex digits.
pub fn sha1_hex(body: &[u8]) -> [u8; 40] {
    use sha1::{Digest, Sha1};
    let d = Sha1::digest(body);
    let mut out = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// Parse an EVAL script's shebang line (`#!lua flags=a,b`). Returns (flags, offset of the body after the
/// shebang line... the whole body is compiled, the shebang being a Lua comment) or Redis's error.
pub fn parse_shebang(body: &[u8]) -> Result<u32, String> {
    if !body.starts_with(b"#!") {
        return Ok(0);
    }
    let Some(nl) = body.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..nl]);
    let mut parts = line.split(' ').filter(|s| !s.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = sflags::EXPLICIT;
    for p in parts {
        if let Some(list) = p.strip_prefix("flags=") {
            for f in list.split(',').filter(|s| !s.is_empty()) {
                match sflags::by_name(f) {
                    Some(b) => flags |= b,
                    None => return Err(format!("ERR Unexpected flag in script shebang: {f}")),
                }
            }
        } else {
            return Err(format!("ERR Unknown lua shebang option: {p}"));
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_empty() {
        assert_eq!(&sha1_hex(b""), b"da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn shebang() {
        assert_eq!(parse_shebang(b"return 1"), Ok(0));
        assert_eq!(parse_shebang(b"#!lua\nreturn 1"), Ok(sflags::EXPLICIT));
        assert_eq!(
            parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok(sflags::EXPLICIT | sflags::NO_WRITES | sflags::ALLOW_OOM)
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=no-writes,bogus\nreturn 1").unwrap_err(),
            "ERR Unexpected flag in script shebang: bogus"
        );
        assert_eq!(
            parse_shebang(b"#!lua name=x\nreturn 1").unwrap_err(),
            "ERR Unknown lua shebang option: name=x"
        );
        assert_eq!(
            parse_shebang(b"#!luax\nreturn 1").unwrap_err(),
            "ERR Unexpected engine in script shebang: #!luax"
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=no-writes").unwrap_err(),
            "ERR Invalid script shebang"
        );
    }
}
