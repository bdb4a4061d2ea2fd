//! The multi-part layout on disk: the manifest (parse, write atomically) and the names and creation of
//! base and incr files.

use super::*;

// ---------------------------------------------------------------------------------------------------------
// Manifest

impl Manifest {
    /// Parse a manifest the way Redis 7 does (`file <name> seq <n> type <b|i|h>` lines, `#` comments).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_words(line)
                .ok_or_else(|| format!("Invalid AOF manifest file format (line {})", no + 1))?;
            if words.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in words.chunks(2) {
                match kv[0].as_str() {
                    "file" => name = Some(kv[1].clone()),
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1].as_str() {
                            "b" => Some(FileType::Base),
                            "i" => Some(FileType::Incr),
                            "h" => Some(FileType::History),
                            _ => None,
                        }
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            let f = ManifestFile { name, seq, kind };
            match kind {
                FileType::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.cur_base_seq = seq;
                    m.base = Some(f);
                }
                FileType::Incr => {
                    if seq <= m.cur_incr_seq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.cur_incr_seq = seq;
                    m.incrs.push(f);
                }
                FileType::History => m.history.push(f),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() && m.history.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest text, exactly as Redis writes it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |f: &ManifestFile, t: char| {
            s.push_str(&format!(
                "file {} seq {} type {}\n",
                quote_name(&f.name),
                f.seq,
                t
            ));
        };
        if let Some(b) = &self.base {
            line(b, 'b');
        }
        for h in &self.history {
            line(h, 'h');
        }
        for i in &self.incrs {
            line(i, 'i');
        }
        s
    }
}

/// Split a manifest line into words (Redis's sdssplitargs: double quotes with escapes allowed).
pub(super) fn split_words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut w = Vec::new();
        if b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = *b.get(i + 1)?;
                        match c {
                            b'x' => {
                                let h = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                                w.push(u8::from_str_radix(h, 16).ok()?);
                                i += 4;
                                continue;
                            }
                            b'n' => w.push(b'\n'),
                            b'r' => w.push(b'\r'),
                            b't' => w.push(b'\t'),
                            b'a' => w.push(7),
                            b'b' => w.push(8),
                            c => w.push(c),
                        }
                        i += 2;
                    }
                    Some(&c) => {
                        w.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                w.push(b[i]);
                i += 1;
            }
        }
        out.push(String::from_utf8_lossy(&w).into_owned());
    }
    Some(out)
}

/// A file name as the manifest writes it: plain, or quoted (sdscatrepr) when it has odd characters.
pub(super) fn quote_name(name: &str) -> String {
    if name
        .bytes()
        .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
    {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for c in name.bytes() {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

// ---------------------------------------------------------------------------------------------------------
// Files

pub(super) fn base_name(filename: &str, seq: u64, rdb: bool) -> String {
    format!("{filename}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

pub(super) fn incr_name(filename: &str, seq: u64) -> String {
    format!("{filename}.{seq}.incr.aof")
}

pub(super) fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

/// Write the manifest atomically (temp file, fsync, rename, fsync the directory).
pub(super) fn persist_manifest(dir: &Path, filename: &str, m: &Manifest) -> Result<(), String> {
    let tmp = dir.join(format!("temp-{}", manifest_name(filename)));
    let fin = dir.join(manifest_name(filename));
    (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(m.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &fin)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })()
    .map_err(|e| format!("Can't persist the AOF manifest file {}: {e}", fin.display()))
}

pub(super) fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Open a new incr file (seq = current + 1) in `io`, switching the writes over to it. The buffer must
/// have been written to the previous file first.
pub(super) fn open_new_incr(io: &mut Io) -> Result<(), String> {
    std::fs::create_dir_all(&io.dir)
        .map_err(|e| format!("Can't create the AOF directory {}: {e}", io.dir.display()))?;
    let seq = io.manifest.cur_incr_seq + 1;
    let name = incr_name(&io.filename, seq);
    let path = io.dir.join(&name);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("Can't open the append-only file {name}: {e}"))?;
    let mut m = io.manifest.clone();
    m.cur_incr_seq = seq;
    m.incrs.push(ManifestFile {
        name,
        seq,
        kind: FileType::Incr,
    });
    persist_manifest(&io.dir, &io.filename, &m)?;
    io.manifest = m;
    io.file = Some(f);
    io.incr_size = 0;
    Ok(())
}
