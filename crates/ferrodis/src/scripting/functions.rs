//! Function libraries (FUNCTION LOAD / FCALL): the shared registry of libraries and their functions, and
//! the DUMP/RESTORE payload (Redis's format: FUNCTION2 opcode + RDB string per library, RDB version, CRC64).

use super::{engine, sflags, Scripting, POLICY_UNKNOWN};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

pub use crate::scripts::{FuncMeta, Libraries, Library};

impl Libraries {
    pub fn function_count(&self) -> usize {
        self.funcs.len()
    }

    fn remove(&mut self, name: &str) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        for f in lib.functions.keys() {
            self.funcs.remove(f);
        }
        Some(lib)
    }

    fn insert(&mut self, lib: Library) {
        for (n, m) in &lib.functions {
            self.funcs.insert(n.clone(), m.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }
}

/// RDB opcode of a function library.
const FUNCTION2: u8 = 245;

const NAME_ERR: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The library name from the `#!lua name=<name>` header.
pub fn parse_header(code: &[u8]) -> Result<String, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|&c| c == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[2..end]).into_owned();
    let mut parts = line.split(' ').filter(|s| !s.is_empty());
    let engine = parts.next().unwrap_or("");
    let mut name = None;
    for p in parts {
        match p.strip_prefix("name=") {
            Some(n) => name = Some(n.to_string()),
            None => return Err(format!("ERR Invalid metadata value given: {p}")),
        }
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err(NAME_ERR.into());
    }
    Ok(name)
}

/// Compile and register a library (FUNCTION LOAD). Returns its name.
pub fn load(s: &Scripting, code: &[u8], replace: bool) -> Result<String, String> {
    let name = parse_header(code)?;
    if !replace && s.libs.read().libs.contains_key(&name) {
        return Err(format!("ERR Library '{name}' already exists"));
    }
    let regs = engine::with_state(|st| {
        st.load_library_code(code).map(|regs| {
            regs.into_iter()
                .map(|r| (r.name, r.flags, r.desc))
                .collect::<Vec<_>>()
        })
    })??;
    if regs.is_empty() {
        return Err("ERR No functions registered".into());
    }
    let mut libs = s.libs.write();
    if !replace && libs.libs.contains_key(&name) {
        return Err(format!("ERR Library '{name}' already exists"));
    }
    for (f, _, _) in &regs {
        if let Some(m) = libs.funcs.get(f) {
            if m.library != name {
                return Err(format!("ERR Function {f} already exists"));
            }
        }
    }
    libs.remove(&name);
    let functions = regs
        .into_iter()
        .map(|(f, flags, desc)| {
            (
                f.clone(),
                Arc::new(FuncMeta {
                    name: f,
                    library: name.clone(),
                    flags,
                    desc,
                    policy: AtomicU8::new(POLICY_UNKNOWN),
                }),
            )
        })
        .collect();
    libs.insert(Library {
        name: name.clone(),
        code: code.into(),
        functions,
    });
    s.libs_gen.fetch_add(1, Relaxed);
    Ok(name)
}

pub fn delete(s: &Scripting, name: &[u8]) -> Result<(), String> {
    let name = String::from_utf8_lossy(name);
    let mut libs = s.libs.write();
    if libs.remove(&name).is_none() {
        return Err("ERR Library not found".into());
    }
    s.libs_gen.fetch_add(1, Relaxed);
    Ok(())
}

pub fn flush(s: &Scripting) {
    *s.libs.write() = Libraries::default();
    s.libs_gen.fetch_add(1, Relaxed);
}

/// Make this thread's state hold the current libraries' functions.
pub fn sync_state(s: &Scripting, st: &mut engine::State) {
    let gen = s.libs_gen.load(Relaxed);
    if st.lib_gen == gen {
        return;
    }
    let libs = s.libs.read();
    let gen = s.libs_gen.load(Relaxed);
    for (_, k) in st.functions.drain() {
        let _ = st.lua.remove_registry_value(k);
    }
    for lib in libs.libs.values() {
        if let Ok(regs) = st.load_library_code(&lib.code) {
            for r in regs {
                if let Ok(k) = st.lua.create_registry_value(r.func) {
                    st.functions.insert(r.name, k);
                }
            }
        }
    }
    st.lib_gen = gen;
}

/// FUNCTION DUMP payload.
pub fn dump(s: &Scripting) -> Vec<u8> {
    use crate::persist::rdb;
    let mut out = Vec::new();
    for lib in s.libs.read().libs.values() {
        out.push(FUNCTION2);
        rdb::put_string(&mut out, &lib.code, true);
    }
    out.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

/// FUNCTION RESTORE.
pub fn restore(s: &Scripting, payload: &[u8], policy: RestorePolicy) -> Result<(), String> {
    use crate::persist::rdb;
    const BAD: &str = "ERR DUMP payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD.into());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().unwrap_or_default());
    if ver > rdb::RDB_VERSION_HFE || (crc != 0 && rdb::crc64(&payload[..payload.len() - 8]) != crc)
    {
        return Err(BAD.into());
    }
    let mut codes = Vec::new();
    let mut pos = 0usize;
    while pos < body.len() {
        if body[pos] != FUNCTION2 {
            return Err("ERR given type is not a function".into());
        }
        let mut src = rdb::Src::new(&body[pos + 1..], false);
        let code = src
            .string()
            .map_err(|_| "ERR failed loading the given functions payload".to_string())?;
        codes.push(code);
        pos += 1 + src.offset() as usize;
    }
    // Check everything on a scratch registry first, then apply.
    let mut names = Vec::new();
    for c in &codes {
        names.push(parse_header(c)?);
    }
    let existing: Vec<String> = s.libs.read().libs.keys().cloned().collect();
    if policy == RestorePolicy::Append {
        if let Some(n) = names.iter().find(|n| existing.contains(n)) {
            return Err(format!("ERR Library {n} already exists"));
        }
    }
    let backup: Vec<Vec<u8>> = s.library_codes();
    if policy == RestorePolicy::Flush {
        flush(s);
    }
    for c in &codes {
        if let Err(e) = load(s, c, policy != RestorePolicy::Append) {
            // Put the previous libraries back.
            flush(s);
            for b in &backup {
                let _ = load(s, b, true);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Flags of a function as FUNCTION LIST shows them.
pub fn flag_names(flags: u32) -> Vec<&'static str> {
    sflags::NAMES
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(parse_header(b"#!lua name=mylib\nx").unwrap(), "mylib");
        assert_eq!(
            parse_header(b"return 1").unwrap_err(),
            "ERR Missing library metadata"
        );
        assert_eq!(
            parse_header(b"#!lua\nx").unwrap_err(),
            "ERR Library name was not given"
        );
        assert_eq!(
            parse_header(b"#!lua name=e foo=bar\nx").unwrap_err(),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(parse_header(b"#!lua name=a-b\nx").unwrap_err(), NAME_ERR);
    }
}
