//! The RDB format, compatible with Redis: a writer that emits RDB version 10 (what Redis 7.0 reads; 12 when
//! a hash has field TTLs, which need Redis 7.4's encodings) and a reader for versions 1 to 12 with every
//! type and encoding Redis ever wrote. DUMP/RESTORE payloads use the same value encoding.
//!
//! Layout of a file: `REDIS0010`, aux fields (`0xFA` key value), per database `0xFE db` + `0xFB size
//! expires`, then per key `[0xFC expire-ms][0xF8 idle][0xF9 freq] type key value`, `0xFF`, CRC64 (8 bytes
//! little endian; 0 when checksums are off). A DUMP payload is `type value version(2 LE) crc64(8 LE)`.
//!
//! The reader never trusts a length: pre-allocation is capped, blobs are read in bounded steps (a
//! truncated file fails before a huge allocation), nothing recurses, every malformed input is an
//! [`RdbError`] naming the problem and the byte offset.

pub mod blob;
pub mod lzf;
#[cfg(test)]
mod tests;

use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::Shard;
use crate::types::hash::{ExpireCond, Hash};
use crate::types::list::List;
use crate::types::set::Set;
use crate::types::stream::{Consumer, Group, PendingEntry, Stream, StreamId};
use crate::types::zset::{ZLimits, ZSet};
use crate::types::{EncodingLimits, Value};
use blob::{Item as Lp, LpWriter};
use ferrodis_protocol::num::{format_double, parse_f64, parse_i64};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::io::{self, Read, Write};

/// The version we write when nothing newer is needed (Redis 7.0).
pub const RDB_VERSION: u16 = 10;
/// The version needed by hash field TTLs (Redis 7.4).
pub const RDB_VERSION_HFE: u16 = 12;
/// The newest version we read.
pub const MAX_VERSION: u16 = 12;

pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    pub const HASH_METADATA: u8 = 24;
    pub const HASH_LISTPACK_EX: u8 = 25;
}

mod op {
    pub const SLOT_INFO: u8 = 244;
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Slice-by-16 tables: the checksum runs over whole files, so speed matters.
static CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// Redis's CRC64 (Jones polynomial, reflected).
pub fn crc64(data: &[u8]) -> u64 {
    CRC64.checksum(data)
}

/// A malformed or unsupported RDB input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub msg: String,
    /// Byte offset in the input where the problem was found.
    pub offset: u64,
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.msg, self.offset)
    }
}

impl std::error::Error for RdbError {}

/// How values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    /// `rdbcompression`: LZF-compress strings longer than 20 bytes when it saves space.
    pub compression: bool,
    /// `rdbchecksum`: write a CRC64 trailer (else 0).
    pub checksum: bool,
    /// Number of databases to walk in a shard.
    pub databases: usize,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            compression: true,
            checksum: true,
            databases: 16,
        }
    }
}

// =========================================================================================================
// Writing

pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A string as Redis's rdbSaveRawString writes it: integer-encoded when it is the canonical form of an
/// integer of at most 32 bits, LZF-compressed when asked, longer than 20 bytes and at least 4 bytes smaller.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if let Ok(b) = i8::try_from(v) {
                out.push(0xC0);
                out.push(b as u8);
                return;
            } else if let Ok(h) = i16::try_from(v) {
                out.push(0xC1);
                out.extend_from_slice(&h.to_le_bytes());
                return;
            } else if let Ok(w) = i32::try_from(v) {
                out.push(0xC2);
                out.extend_from_slice(&w.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        // Compressed into a scratch area at the end of `out`, then moved behind its two lengths.
        let at = out.len();
        if lzf::compress(s, out, s.len() - 4) {
            let c = out.split_off(at);
            out.push(0xC3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn put_ms(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(&ms.to_le_bytes());
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// A zset score as a listpack element (Redis's d2string: integers without a fraction, else %.17g).
fn score_bytes(s: f64) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    if s == 0.0 && s.is_sign_negative() {
        b.extend_from_slice(b"-0");
    } else if s.is_finite() && s == s.trunc() && s.abs() < 1e17 {
        b.extend_from_slice(itoa::Buffer::new().format(s as i64).as_bytes());
    } else {
        format_double(s, &mut b);
    }
    b
}

/// Listpacks of a list: about 8 KB each (list-max-listpack-size -2), as Redis's quicklist nodes.
const LIST_NODE_BYTES: usize = 8192;

/// Append the RDB encoding of a value (without the type byte) to `out`; returns the type byte.
pub fn encode_value(out: &mut Vec<u8>, v: ValueRef<'_>, compress: bool) -> u8 {
    match v {
        ValueRef::Str(s) => {
            put_string(out, s, compress);
            types::STRING
        }
        ValueRef::Other(Value::Str(s)) => {
            put_string(out, s, compress);
            types::STRING
        }
        ValueRef::Other(Value::List(l)) => {
            let mut nodes: Vec<Vec<u8>> = Vec::new();
            let mut w = LpWriter::new();
            for e in l.iter() {
                let bytes = e.to_vec();
                if !w.is_empty() && w.bytes() + bytes.len() + 8 > LIST_NODE_BYTES {
                    nodes.push(std::mem::take(&mut w).finish());
                }
                w.push(&bytes);
            }
            if !w.is_empty() {
                nodes.push(w.finish());
            }
            put_len(out, nodes.len() as u64);
            for n in nodes {
                put_len(out, 2); // QUICKLIST_NODE_CONTAINER_PACKED
                put_string(out, &n, compress);
            }
            types::LIST_QUICKLIST_2
        }
        ValueRef::Other(Value::Set(s)) => {
            if s.encoding() == "intset" {
                let mut ints: Vec<i64> = s
                    .iter()
                    .map(|e| match e {
                        crate::types::set::Elem::Int(i) => Some(i),
                        crate::types::set::Elem::Bytes(b) => parse_i64(b),
                    })
                    .collect::<Option<Vec<i64>>>()
                    .unwrap_or_default();
                if ints.len() == s.len() {
                    ints.sort_unstable();
                    put_string(out, &blob::intset_encode(&ints), compress);
                    return types::SET_INTSET;
                }
            }
            put_len(out, s.len() as u64);
            for m in s.iter() {
                m.with_bytes(|b| put_string(out, b, compress));
            }
            types::SET
        }
        ValueRef::Other(Value::Hash(h)) => encode_hash(out, h, compress),
        ValueRef::Other(Value::ZSet(z)) => {
            if z.is_compact() {
                let mut w = LpWriter::new();
                z.for_range(0, z.len(), false, |m, s| {
                    w.push(m);
                    w.push(&score_bytes(s));
                });
                put_string(out, &w.finish(), compress);
                types::ZSET_LISTPACK
            } else {
                put_len(out, z.len() as u64);
                // Highest first, as Redis writes it (loading then inserts at the head).
                z.for_range(0, z.len(), true, |m, s| {
                    put_string(out, m, compress);
                    out.extend_from_slice(&s.to_le_bytes());
                });
                types::ZSET_2
            }
        }
        ValueRef::Other(Value::Stream(s)) => {
            encode_stream(out, s, compress, false);
            types::STREAM_LISTPACKS_2
        }
    }
}

fn encode_hash(out: &mut Vec<u8>, h: &Hash, compress: bool) -> u8 {
    let ttls = h.has_field_ttls();
    if !ttls {
        if h.is_compact() {
            let mut w = LpWriter::new();
            for (f, v) in h.iter() {
                w.push(f);
                w.push(v);
            }
            put_string(out, &w.finish(), compress);
            return types::HASH_LISTPACK;
        }
        put_len(out, h.len() as u64);
        for (f, v) in h.iter() {
            put_string(out, f, compress);
            put_string(out, v, compress);
        }
        return types::HASH;
    }
    let expiry = |f: &[u8]| h.field_expire(f).flatten();
    let min = h.iter().filter_map(|(f, _)| expiry(f)).min().unwrap_or(0);
    put_ms(out, min);
    if h.is_compact() {
        // Ordered as Redis keeps a listpack-ex: by TTL ascending, fields without a TTL last.
        let mut triples: Vec<(&[u8], &[u8], u64)> = h
            .iter()
            .map(|(f, v)| (f, v, expiry(f).unwrap_or(0)))
            .collect();
        triples.sort_by_key(|t| if t.2 == 0 { u64::MAX } else { t.2 });
        let mut w = LpWriter::new();
        for (f, v, t) in triples {
            w.push(f);
            w.push(v);
            w.push_int(t as i64);
        }
        put_string(out, &w.finish(), compress);
        types::HASH_LISTPACK_EX
    } else {
        put_len(out, h.len() as u64);
        for (f, v) in h.iter() {
            put_len(out, expiry(f).map_or(0, |t| t - min + 1));
            put_string(out, f, compress);
            put_string(out, v, compress);
        }
        types::HASH_METADATA
    }
}

/// Stream node limits (stream-node-max-entries / -bytes defaults).
const STREAM_NODE_ENTRIES: usize = 100;
const STREAM_NODE_BYTES: usize = 4096;

/// A stream as STREAM_LISTPACKS_2 (Redis 7.0), or _3 with consumers' active times when `v3` (7.2).
fn encode_stream(out: &mut Vec<u8>, s: &Stream, compress: bool, v3: bool) {
    let entries = s.range(StreamId::MIN, StreamId::MAX, 0);
    // Build the nodes: master entry = the first entry's fields.
    let mut nodes: Vec<(StreamId, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let master = entries[i].id;
        let mfields: Vec<&[u8]> = entries[i].fields.iter().map(|(f, _)| *f).collect();
        let mut body = LpWriter::new();
        let mut n = 0;
        let start = i;
        while i < entries.len()
            && n < STREAM_NODE_ENTRIES
            && (n == 0 || body.bytes() < STREAM_NODE_BYTES)
        {
            let e = &entries[i];
            let same = e.fields.len() == mfields.len()
                && e.fields.iter().zip(&mfields).all(|((f, _), m)| f == m);
            body.push_int(if same { 2 } else { 0 });
            body.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
            body.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
            if same {
                for (_, v) in &e.fields {
                    body.push(v);
                }
            } else {
                body.push_int(e.fields.len() as i64);
                for (f, v) in &e.fields {
                    body.push(f);
                    body.push(v);
                }
            }
            let nf = e.fields.len() as i64;
            body.push_int(if same { nf + 3 } else { 2 * nf + 4 });
            n += 1;
            i += 1;
        }
        let _ = start;
        // Prefix the master entry: count, deleted, num-fields, fields..., 0.
        let mut w = LpWriter::new();
        w.push_int(n as i64);
        w.push_int(0);
        w.push_int(mfields.len() as i64);
        for f in &mfields {
            w.push(f);
        }
        w.push_int(0);
        let head = w.finish();
        let tail = body.finish();
        // Splice: header of `head` (6 bytes) + head entries + tail entries + end.
        let mut lp = Vec::with_capacity(head.len() + tail.len());
        lp.extend_from_slice(&head[..head.len() - 1]);
        lp.extend_from_slice(&tail[6..]);
        let total = lp.len() as u32;
        lp[..4].copy_from_slice(&total.to_le_bytes());
        let hn = u16::from_le_bytes([head[4], head[5]]) as usize;
        let tn = u16::from_le_bytes([tail[4], tail[5]]) as usize;
        let count = if hn == 65535 || tn == 65535 || hn + tn >= 65535 {
            65535
        } else {
            (hn + tn) as u16
        };
        lp[4..6].copy_from_slice(&count.to_le_bytes());
        nodes.push((master, lp));
    }
    put_len(out, nodes.len() as u64);
    for (master, lp) in &nodes {
        let mut k = Vec::with_capacity(16);
        put_id(&mut k, *master);
        put_string(out, &k, false);
        put_string(out, lp, compress);
    }
    put_len(out, s.len() as u64);
    put_len(out, s.last_id.ms);
    put_len(out, s.last_id.seq);
    let first = s.first_id().unwrap_or_default();
    put_len(out, first.ms);
    put_len(out, first.seq);
    put_len(out, s.max_deleted_id.ms);
    put_len(out, s.max_deleted_id.seq);
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, compress);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        put_len(out, g.entries_read.unwrap_or(u64::MAX));
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            put_id(out, *id);
            put_ms(out, p.delivery_time);
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_string(out, cname, compress);
            put_ms(out, c.seen_time);
            if v3 {
                put_ms(out, c.active_time.unwrap_or(u64::MAX));
            }
            put_len(out, c.pending.len() as u64);
            for id in &c.pending {
                put_id(out, *id);
            }
        }
    }
}

/// Whether a value needs RDB version 12 (hash field TTLs).
pub fn needs_v12(v: ValueRef<'_>) -> bool {
    matches!(v, ValueRef::Other(Value::Hash(h)) if h.has_field_ttls())
}

/// Append one key record: `[EXPIRETIME_MS] type key value`. Returns whether it needs version 12.
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry, compress: bool) -> bool {
    if let Some(at) = e.expire_at() {
        out.push(op::EXPIRETIME_MS);
        put_ms(out, at);
    }
    let tpos = out.len();
    out.push(0);
    put_string(out, e.key(), compress);
    let v = e.value();
    let v12 = needs_v12(e.value());
    out[tpos] = encode_value(out, v, compress);
    v12
}

/// A SELECTDB opcode (entries that follow belong to database `db`).
pub fn put_select(out: &mut Vec<u8>, db: usize) {
    out.push(op::SELECTDB);
    put_len(out, db as u64);
}

/// Serialize every live key of a shard (all databases): SELECTDB + RESIZEDB per non-empty database, then
/// the keys. Returns whether a value needed version 12.
pub fn encode_shard(out: &mut Vec<u8>, shard: &Shard, opts: &SaveOptions, now_ms: u64) -> bool {
    let mut v12 = false;
    for db in 0..opts.databases {
        let t = shard.db(db);
        if t.is_empty() {
            continue;
        }
        out.push(op::SELECTDB);
        put_len(out, db as u64);
        out.push(op::RESIZEDB);
        put_len(out, t.len() as u64);
        put_len(out, t.volatile_len() as u64);
        for e in t.iter() {
            if e.is_expired(now_ms) {
                continue;
            }
            v12 |= encode_entry(out, e, opts.compression);
        }
    }
    v12
}

/// A DUMP payload: type, value, RDB version (10, or 12 for hash field TTLs), CRC64 of all that.
pub fn dump_payload(v: ValueRef<'_>, compress: bool) -> Vec<u8> {
    let mut out = vec![0u8];
    let ver = if needs_v12(match &v {
        ValueRef::Str(s) => ValueRef::Str(s),
        ValueRef::Other(o) => ValueRef::Other(o),
    }) {
        RDB_VERSION_HFE
    } else {
        RDB_VERSION
    };
    out[0] = encode_value(&mut out, v, compress);
    out.extend_from_slice(&ver.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Aux fields of a file header.
#[derive(Clone, Debug)]
pub struct Aux {
    /// The RDB version to write (10; 12 when a hash has field TTLs).
    pub version: u16,
    pub redis_ver: String,
    pub ctime: u64,
    pub used_mem: u64,
    pub aof_base: bool,
}

impl Aux {
    /// The header of a save of `srv` now (version 10; set `version` to 12 when hashes have field TTLs).
    pub fn now(srv: &crate::server::Server) -> Aux {
        Aux {
            version: RDB_VERSION,
            redis_ver: "7.2.4".into(),
            ctime: crate::server::unix_ms() / 1000,
            used_mem: srv.refresh_memory().0,
            aof_base: false,
        }
    }
}

/// Writes an RDB stream to `W`, keeping the running CRC64.
pub struct Writer<W: Write> {
    w: W,
    digest: Option<crc::Digest<'static, u64, crc::Table<16>>>,
    written: u64,
}

pub type FileWriter = Writer<std::io::BufWriter<std::fs::File>>;

impl<W: Write> Writer<W> {
    pub fn new(w: W, checksum: bool) -> Self {
        Writer {
            w,
            digest: checksum.then(|| CRC64.digest()),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Magic, version and aux fields.
    pub fn write_header(&mut self, aux: &Aux) -> io::Result<()> {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(format!("REDIS{:04}", aux.version).as_bytes());
        let mut field = |k: &str, v: &[u8]| {
            b.push(op::AUX);
            put_string(&mut b, k.as_bytes(), false);
            put_string(&mut b, v, false);
        };
        field("redis-ver", aux.redis_ver.as_bytes());
        field("redis-bits", b"64");
        field("ctime", aux.ctime.to_string().as_bytes());
        field("used-mem", aux.used_mem.to_string().as_bytes());
        field("aof-base", if aux.aof_base { b"1" } else { b"0" });
        self.write_all(&b)
    }

    /// A function library (FUNCTION2 opcode) with its code.
    pub fn write_function(&mut self, code: &[u8]) -> io::Result<()> {
        let mut b = vec![op::FUNCTION2];
        put_string(&mut b, code, false);
        self.write_all(&b)
    }

    /// SELECTDB + RESIZEDB.
    pub fn select_db(&mut self, db: usize, size: u64, expires: u64) -> io::Result<()> {
        let mut b = vec![op::SELECTDB];
        put_len(&mut b, db as u64);
        b.push(op::RESIZEDB);
        put_len(&mut b, size);
        put_len(&mut b, expires);
        self.write_all(&b)
    }

    /// One key (after `select_db`).
    pub fn write_entry(&mut self, e: &Entry, compress: bool) -> io::Result<()> {
        let mut b = Vec::new();
        encode_entry(&mut b, e, compress);
        self.write_all(&b)
    }

    /// EOF and checksum; returns the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.write_all(&[op::EOF])?;
        let crc = self.digest.take().map_or(0, |d| d.finalize());
        self.w.write_all(&crc.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        if let Some(d) = &mut self.digest {
            d.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Free-function form of [`Writer::write_header`].
pub fn write_header<W: Write>(w: &mut Writer<W>, aux: &Aux) -> io::Result<()> {
    w.write_header(aux)
}

// =========================================================================================================
// Reading

/// Largest pre-allocation made from a length read from the input.
const PREALLOC_CAP: usize = 4096;
/// Blobs are read in steps of this size, so a lying length fails on a short input before it allocates.
const READ_STEP: usize = 1 << 20;

/// A byte source with an offset and an optional running CRC64.
pub struct Src<R: Read> {
    r: R,
    off: u64,
    digest: Option<crc::Digest<'static, u64, crc::Table<16>>>,
}

impl<R: Read> Src<R> {
    pub fn new(r: R, checksum: bool) -> Self {
        Src {
            r,
            off: 0,
            digest: checksum.then(|| CRC64.digest()),
        }
    }

    pub fn offset(&self) -> u64 {
        self.off
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, RdbError> {
        Err(RdbError {
            msg: msg.into(),
            offset: self.off,
        })
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        if let Err(e) = self.r.read_exact(buf) {
            return self.err(if e.kind() == io::ErrorKind::UnexpectedEof {
                "unexpected end of input".to_string()
            } else {
                format!("read error: {e}")
            });
        }
        if let Some(d) = &mut self.digest {
            d.update(buf);
        }
        self.off += buf.len() as u64;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, RdbError> {
        let Ok(n) = usize::try_from(n) else {
            return self.err("length too large");
        };
        // Grown one step at a time (a truncated input fails before a claimed length is ever allocated),
        // and fallibly: data too large for memory is an error, not an abort.
        let mut v = Vec::new();
        while v.len() < n {
            let step = (n - v.len()).min(READ_STEP);
            let at = v.len();
            if !crate::mem::can_hold((at + step) as u64) || v.try_reserve(step).is_err() {
                return self.err(format!("out of memory reading a string of {n} bytes"));
            }
            v.resize(at + step, 0);
            self.fill(&mut v[at..])?;
        }
        Ok(v)
    }

    fn ms(&mut self) -> Result<u64, RdbError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A length, or (special encoding, true).
    fn len_enc(&mut self) -> Result<(u64, bool), RdbError> {
        let c = self.byte()?;
        Ok(match c >> 6 {
            0 => ((c & 0x3F) as u64, false),
            1 => ((((c & 0x3F) as u64) << 8) | self.byte()? as u64, false),
            2 => match c {
                0x80 => (u32::from_be_bytes(self.array()?) as u64, false),
                0x81 => (u64::from_be_bytes(self.array()?), false),
                _ => return self.err(format!("unknown length encoding {c:#x}")),
            },
            _ => ((c & 0x3F) as u64, true),
        })
    }

    pub fn read_len(&mut self) -> Result<u64, RdbError> {
        match self.len_enc()? {
            (n, false) => Ok(n),
            _ => self.err("encoded value where a length was expected"),
        }
    }

    pub fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        let (n, special) = self.len_enc()?;
        if !special {
            return self.bytes(n);
        }
        match n {
            0 => Ok((self.byte()? as i8).to_string().into_bytes()),
            1 => Ok(i16::from_le_bytes(self.array()?).to_string().into_bytes()),
            2 => Ok(i32::from_le_bytes(self.array()?).to_string().into_bytes()),
            3 => {
                let clen = self.read_len()?;
                let ulen = self.read_len()?;
                // Refuse lengths no real compressed data could produce before reading anything.
                if ulen == 0 || ulen > clen.saturating_mul(lzf::MAX_RATIO as u64) {
                    return self.err("invalid LZF lengths");
                }
                let c = self.bytes(clen)?;
                let Ok(ulen) = usize::try_from(ulen) else {
                    return self.err("invalid LZF lengths");
                };
                match lzf::decompress(&c, ulen) {
                    Ok(v) => Ok(v),
                    Err(lzf::Error::Corrupt) => self.err("invalid LZF compressed string"),
                    Err(lzf::Error::OutOfMemory) => self.err(format!(
                        "out of memory decompressing a string of {ulen} bytes"
                    )),
                }
            }
            _ => self.err(format!("unknown string encoding {n}")),
        }
    }

    /// The old ZSET score format: length byte, 253 nan, 254 +inf, 255 -inf, else ASCII.
    fn old_double(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let b = self.bytes(n as u64)?;
                match std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                {
                    Some(d) => Ok(d),
                    None => self.err("invalid double"),
                }
            }
        }
    }

    fn id(&mut self) -> Result<StreamId, RdbError> {
        let b: [u8; 16] = self.array()?;
        Ok(id_from(&b))
    }
}

fn id_from(b: &[u8; 16]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&b[..8]);
    seq.copy_from_slice(&b[8..]);
    StreamId {
        ms: u64::from_be_bytes(ms),
        seq: u64::from_be_bytes(seq),
    }
}

fn cap(n: u64) -> usize {
    (n as usize).min(PREALLOC_CAP)
}

fn zlim(lim: &EncodingLimits) -> ZLimits {
    ZLimits {
        max_entries: lim.zset_max_listpack_entries,
        max_value: lim.zset_max_listpack_value,
    }
}

/// The latest hash field expiry time a file may hold (Redis's 48-bit expiry field): later ones are
/// corrupt input, and could not be written back as listpack integers.
const MAX_FIELD_TTL: u64 = (1 << 48) - 1;

/// Builders that reject duplicates (a corrupt input) and pick our encodings.
struct HashBuild {
    h: Hash,
    seen: HashSet<Vec<u8>>,
}

impl HashBuild {
    fn new() -> Self {
        HashBuild {
            h: Hash::new(),
            seen: HashSet::new(),
        }
    }
    fn add(
        &mut self,
        f: &[u8],
        v: &[u8],
        ttl: Option<u64>,
        lim: &EncodingLimits,
    ) -> Result<(), String> {
        if !self.seen.insert(f.to_vec()) {
            return Err("duplicate hash field".into());
        }
        if ttl.is_some_and(|at| at > MAX_FIELD_TTL) {
            return Err("invalid hash field TTL".into());
        }
        self.h.try_conversion([f, v], lim);
        self.h.set(f, v, lim);
        if let Some(at) = ttl {
            self.h.set_field_expire(f, at, ExpireCond::Always, 0);
        }
        Ok(())
    }
}

fn zset_from(pairs: Vec<(Vec<u8>, f64)>, lim: &EncodingLimits) -> Result<ZSet, String> {
    let mut seen = HashSet::with_capacity(pairs.len());
    for (m, s) in &pairs {
        if s.is_nan() {
            return Err("zset score is NaN".into());
        }
        if !seen.insert(m.as_slice()) {
            return Err("duplicate zset member".into());
        }
    }
    Ok(ZSet::from_pairs(
        pairs.iter().map(|(m, s)| (m.as_slice(), *s)),
        &zlim(lim),
    ))
}

fn set_from(members: Vec<Vec<u8>>, lim: &EncodingLimits) -> Result<Set, String> {
    let mut s = Set::create(
        members.first().map_or(&b""[..], |m| m.as_slice()),
        members.len(),
        lim,
    );
    for m in &members {
        if !s.add(m, lim) {
            return Err("duplicate set member".into());
        }
    }
    Ok(s)
}

fn item_f64(i: Lp<'_>) -> Option<f64> {
    match i {
        Lp::Int(v) => Some(v as f64),
        Lp::Str(s) => parse_f64(s),
    }
}

/// Decode one value of RDB type `ty`. `Ok(None)`: an empty collection (Redis skips those keys).
pub fn decode_value<R: Read>(
    src: &mut Src<R>,
    ty: u8,
    lim: &EncodingLimits,
) -> Result<Option<Value>, RdbError> {
    use types::*;
    macro_rules! bad {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(m) => return src.err(m),
            }
        };
    }
    let fill = lim.list_max_listpack_size;
    let v = match ty {
        STRING => Value::Str(src.string()?),
        LIST => {
            let n = src.read_len()?;
            let mut l = List::new();
            for _ in 0..n {
                let e = src.string()?;
                l.push_back(&e, fill);
            }
            Value::List(Box::new(l))
        }
        LIST_ZIPLIST => {
            let b = src.string()?;
            let items = bad!(blob::ziplist(&b));
            let mut l = List::new();
            for i in items {
                l.push_back(&i.to_vec(), fill);
            }
            Value::List(Box::new(l))
        }
        LIST_QUICKLIST | LIST_QUICKLIST_2 => {
            let n = src.read_len()?;
            let mut l = List::new();
            for _ in 0..n {
                let container = if ty == LIST_QUICKLIST_2 {
                    src.read_len()?
                } else {
                    2
                };
                let b = src.string()?;
                match container {
                    1 => l.push_back(&b, fill),
                    2 => {
                        let items = if ty == LIST_QUICKLIST_2 {
                            bad!(blob::listpack(&b))
                        } else {
                            bad!(blob::ziplist(&b))
                        };
                        if items.is_empty() {
                            return src.err("empty quicklist node");
                        }
                        for i in items {
                            l.push_back(&i.to_vec(), fill);
                        }
                    }
                    c => return src.err(format!("unknown quicklist container {c}")),
                }
            }
            Value::List(Box::new(l))
        }
        SET => {
            let n = src.read_len()?;
            let mut members = Vec::with_capacity(cap(n));
            for _ in 0..n {
                members.push(src.string()?);
            }
            Value::Set(Box::new(bad!(set_from(members, lim))))
        }
        SET_INTSET => {
            let b = src.string()?;
            let ints = bad!(blob::intset(&b));
            let members = ints
                .iter()
                .map(|i| i.to_string().into_bytes())
                .collect::<Vec<_>>();
            Value::Set(Box::new(bad!(set_from(members, lim))))
        }
        SET_LISTPACK => {
            let b = src.string()?;
            let items = bad!(blob::listpack(&b));
            let members = items.into_iter().map(|i| i.to_vec()).collect();
            Value::Set(Box::new(bad!(set_from(members, lim))))
        }
        ZSET | ZSET_2 => {
            let n = src.read_len()?;
            let mut pairs = Vec::with_capacity(cap(n));
            for _ in 0..n {
                let m = src.string()?;
                let s = if ty == ZSET_2 {
                    f64::from_le_bytes(src.array()?)
                } else {
                    src.old_double()?
                };
                pairs.push((m, s));
            }
            Value::ZSet(Box::new(bad!(zset_from(pairs, lim))))
        }
        ZSET_ZIPLIST | ZSET_LISTPACK => {
            let b = src.string()?;
            let items = if ty == ZSET_LISTPACK {
                bad!(blob::listpack(&b))
            } else {
                bad!(blob::ziplist(&b))
            };
            if items.len() % 2 != 0 {
                return src.err("zset listpack with an odd number of elements");
            }
            let mut pairs = Vec::with_capacity(items.len() / 2);
            for p in items.chunks_exact(2) {
                let Some(s) = item_f64(p[1]) else {
                    return src.err("invalid zset score in listpack");
                };
                pairs.push((p[0].to_vec(), s));
            }
            Value::ZSet(Box::new(bad!(zset_from(pairs, lim))))
        }
        HASH => {
            let n = src.read_len()?;
            let mut hb = HashBuild::new();
            for _ in 0..n {
                let f = src.string()?;
                let v = src.string()?;
                bad!(hb.add(&f, &v, None, lim));
            }
            Value::Hash(Box::new(hb.h))
        }
        HASH_ZIPMAP => {
            let b = src.string()?;
            let pairs = bad!(blob::zipmap(&b));
            let mut hb = HashBuild::new();
            for (f, v) in pairs {
                bad!(hb.add(f, v, None, lim));
            }
            Value::Hash(Box::new(hb.h))
        }
        HASH_ZIPLIST | HASH_LISTPACK => {
            let b = src.string()?;
            let items = if ty == HASH_LISTPACK {
                bad!(blob::listpack(&b))
            } else {
                bad!(blob::ziplist(&b))
            };
            if items.len() % 2 != 0 {
                return src.err("hash listpack with an odd number of elements");
            }
            let mut hb = HashBuild::new();
            for p in items.chunks_exact(2) {
                bad!(hb.add(&p[0].to_vec(), &p[1].to_vec(), None, lim));
            }
            Value::Hash(Box::new(hb.h))
        }
        HASH_METADATA | HASH_METADATA_PRE_GA => {
            let min = if ty == HASH_METADATA { src.ms()? } else { 0 };
            let n = src.read_len()?;
            let mut hb = HashBuild::new();
            for _ in 0..n {
                let t = src.read_len()?;
                let f = src.string()?;
                let v = src.string()?;
                let ttl = match (t, ty == HASH_METADATA) {
                    (0, _) => None,
                    (t, true) => match (t - 1).checked_add(min) {
                        Some(at) => Some(at),
                        None => return src.err("hash field TTL overflow"),
                    },
                    (t, false) => Some(t),
                };
                bad!(hb.add(&f, &v, ttl, lim));
            }
            Value::Hash(Box::new(hb.h))
        }
        HASH_LISTPACK_EX | HASH_LISTPACK_EX_PRE_GA => {
            if ty == HASH_LISTPACK_EX {
                src.ms()?;
            }
            let b = src.string()?;
            let items = bad!(blob::listpack(&b));
            if items.len() % 3 != 0 {
                return src.err("hash listpack-ex with a bad element count");
            }
            let mut hb = HashBuild::new();
            for p in items.chunks_exact(3) {
                let ttl = match p[2].as_int() {
                    Some(0) => None,
                    Some(t) if t > 0 => Some(t as u64),
                    _ => return src.err("invalid hash field TTL"),
                };
                bad!(hb.add(&p[0].to_vec(), &p[1].to_vec(), ttl, lim));
            }
            Value::Hash(Box::new(hb.h))
        }
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(decode_stream(src, ty)?))
        }
        MODULE_PRE_GA | MODULE_2 => return src.err("module values are not supported"),
        t => return src.err(format!("unknown RDB value type {t}")),
    };
    let empty = match &v {
        Value::Str(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::ZSet(z) => z.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Stream(_) => false,
    };
    Ok(if empty { None } else { Some(v) })
}

/// A stream entry decoded from a node: ID and field-value pairs.
type NodeEntry = (StreamId, Vec<(Vec<u8>, Vec<u8>)>);

/// Entries of one stream listpack node with master ID `master`.
fn stream_node(master: StreamId, items: &[Lp<'_>]) -> Result<Vec<NodeEntry>, String> {
    let mut p = 0;
    let mut next = || -> Result<Lp<'_>, String> {
        let i = items.get(p).copied().ok_or("stream listpack truncated")?;
        p += 1;
        Ok(i)
    };
    let int = |i: Lp<'_>| {
        i.as_int()
            .ok_or_else(|| "stream listpack: integer expected".to_string())
    };
    let count = int(next()?)?;
    let deleted = int(next()?)?;
    let nmaster = int(next()?)?;
    if count < 0 || deleted < 0 || nmaster < 0 || nmaster as usize > items.len() {
        return Err("stream listpack: bad master entry".into());
    }
    let mut mfields = Vec::with_capacity(nmaster as usize);
    for _ in 0..nmaster {
        mfields.push(next()?.to_vec());
    }
    if int(next()?)? != 0 {
        return Err("stream listpack: bad master terminator".into());
    }
    let total = (count as u64).saturating_add(deleted as u64);
    let mut out = Vec::new();
    for _ in 0..total {
        let flags = int(next()?)?;
        let dms = int(next()?)?;
        let dseq = int(next()?)?;
        let id = StreamId {
            ms: master.ms.wrapping_add(dms as u64),
            seq: master.seq.wrapping_add(dseq as u64),
        };
        let mut fields = Vec::new();
        if flags & 2 != 0 {
            for f in &mfields {
                fields.push((f.clone(), next()?.to_vec()));
            }
        } else {
            let n = int(next()?)?;
            if n < 0 || n as usize > items.len() {
                return Err("stream listpack: bad field count".into());
            }
            for _ in 0..n {
                let f = next()?.to_vec();
                fields.push((f, next()?.to_vec()));
            }
        }
        let _lp_count = next()?;
        if flags & 1 == 0 {
            out.push((id, fields));
        }
    }
    if p != items.len() {
        return Err("stream listpack: trailing elements".into());
    }
    if out.len() != count as usize {
        return Err("stream listpack: live entry count mismatch".into());
    }
    Ok(out)
}

fn decode_stream<R: Read>(src: &mut Src<R>, ty: u8) -> Result<Stream, RdbError> {
    let mut s = Stream::new();
    let nodes = src.read_len()?;
    let mut last: Option<StreamId> = None;
    for _ in 0..nodes {
        let k = src.string()?;
        let Ok(k16) = <[u8; 16]>::try_from(k.as_slice()) else {
            return src.err("stream node key is not a 128-bit ID");
        };
        let master = id_from(&k16);
        let lp = src.string()?;
        let items = match blob::listpack(&lp) {
            Ok(i) => i,
            Err(m) => return src.err(m),
        };
        if items.is_empty() {
            return src.err("empty stream listpack node");
        }
        let entries = match stream_node(master, &items) {
            Ok(e) => e,
            Err(m) => return src.err(m),
        };
        for (id, fields) in entries {
            if id.is_zero() || last.is_some_and(|l| id <= l) {
                return src.err("stream IDs out of order");
            }
            let refs: Vec<(&[u8], &[u8])> = fields
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            s.append(id, &refs);
            last = Some(id);
        }
    }
    let len = src.read_len()?;
    if len != s.len() as u64 {
        return src.err("stream length does not match its entries");
    }
    let last_id = StreamId {
        ms: src.read_len()?,
        seq: src.read_len()?,
    };
    if last.is_some_and(|l| l > last_id) {
        return src.err("stream last ID below its entries");
    }
    s.last_id = last_id;
    if ty >= types::STREAM_LISTPACKS_2 {
        let _first = StreamId {
            ms: src.read_len()?,
            seq: src.read_len()?,
        };
        s.max_deleted_id = StreamId {
            ms: src.read_len()?,
            seq: src.read_len()?,
        };
        s.entries_added = src.read_len()?;
    } else {
        s.entries_added = s.len() as u64;
    }
    let ngroups = src.read_len()?;
    for _ in 0..ngroups {
        let name = src.string()?;
        let mut g = Group {
            last_id: StreamId {
                ms: src.read_len()?,
                seq: src.read_len()?,
            },
            ..Group::default()
        };
        if ty >= types::STREAM_LISTPACKS_2 {
            let er = src.read_len()?;
            g.entries_read = (er != u64::MAX).then_some(er);
        } else {
            g.entries_read = s.estimate_entries_read(g.last_id);
        }
        let npel = src.read_len()?;
        let mut pel = BTreeMap::new();
        for _ in 0..npel {
            let id = src.id()?;
            let delivery_time = src.ms()?;
            let delivery_count = src.read_len()?;
            if pel
                .insert(
                    id,
                    PendingEntry {
                        consumer: Vec::new(),
                        delivery_time,
                        delivery_count,
                    },
                )
                .is_some()
            {
                return src.err("duplicate stream PEL entry");
            }
        }
        let nconsumers = src.read_len()?;
        let mut owned = 0u64;
        for _ in 0..nconsumers {
            let cname = src.string()?;
            let seen_time = src.ms()?;
            let active_time = if ty >= types::STREAM_LISTPACKS_3 {
                let t = src.ms()?;
                (t != u64::MAX).then_some(t)
            } else {
                Some(seen_time)
            };
            let n = src.read_len()?;
            let mut pending = BTreeSet::new();
            for _ in 0..n {
                let id = src.id()?;
                match pel.get_mut(&id) {
                    Some(p) if p.consumer.is_empty() => p.consumer = cname.clone(),
                    _ => return src.err("consumer PEL entry not in the group PEL"),
                }
                pending.insert(id);
                owned += 1;
            }
            if g.consumers
                .insert(
                    cname,
                    Consumer {
                        seen_time,
                        active_time,
                        pending,
                    },
                )
                .is_some()
            {
                return src.err("duplicate stream consumer");
            }
        }
        if owned != pel.len() as u64 {
            return src.err("stream group PEL entry without a consumer");
        }
        g.pel = pel;
        if s.groups.insert(name, g).is_some() {
            return src.err("duplicate stream consumer group");
        }
    }
    Ok(s)
}

/// One key read from a file.
#[derive(Debug)]
pub struct KeyItem {
    pub db: usize,
    pub key: Vec<u8>,
    /// `Value::Str` for strings.
    pub value: Value,
    pub expire_ms: Option<u64>,
    /// LRU idle seconds (IDLE opcode).
    pub idle_secs: Option<u64>,
    /// LFU counter (FREQ opcode).
    pub freq: Option<u8>,
}

/// What a file yields, in order.
#[derive(Debug)]
pub enum Item {
    Aux(Vec<u8>, Vec<u8>),
    /// A function library's code (FUNCTION2), to be loaded as FUNCTION RESTORE would.
    Function(Vec<u8>),
    /// The RESIZEDB hint, already bounded (see [`MAX_RESIZE_HINT`]).
    ResizeDb {
        db: usize,
        size: u64,
        expires: u64,
    },
    Key(KeyItem),
}

/// The fewest bytes one key takes in a file: type, key length, value length (an empty key and string).
const MIN_KEY_BYTES: u64 = 3;

/// The largest RESIZEDB hint passed on, whatever the file claims: tables grow on their own past it.
pub const MAX_RESIZE_HINT: u64 = 1 << 24;

/// Reads an RDB file.
pub struct Reader<R: Read> {
    src: Src<R>,
    version: u16,
    lim: EncodingLimits,
    /// Total input length when known: bounds the RESIZEDB hints.
    input_len: Option<u64>,
}

impl<R: Read> Reader<R> {
    pub fn new(r: R, lim: EncodingLimits) -> Self {
        Reader {
            src: Src::new(r, true),
            version: 0,
            lim,
            input_len: None,
        }
    }

    /// Tell the reader how many bytes the input has (from its start), so that size hints can be checked
    /// against what the rest of the input could possibly hold.
    pub fn with_input_len(mut self, len: Option<u64>) -> Self {
        self.input_len = len;
        self
    }

    /// A RESIZEDB count as a usable hint: no more keys than the remaining bytes could encode, and never
    /// more than [`MAX_RESIZE_HINT`]. The file's number is only a hint (Redis treats it so too): a
    /// crafted one must not make the loader allocate for keys that are not there.
    fn size_hint(&self, n: u64) -> u64 {
        let n = n.min(MAX_RESIZE_HINT);
        match self.input_len {
            Some(len) => n.min(len.saturating_sub(self.src.off) / MIN_KEY_BYTES),
            None => n,
        }
    }

    /// The file's version (after the header was read).
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn offset(&self) -> u64 {
        self.src.off
    }

    fn header(&mut self) -> Result<(), RdbError> {
        let magic: [u8; 9] = self.src.array()?;
        if &magic[..5] != b"REDIS" {
            return Err(RdbError {
                msg: "wrong signature trying to load DB from file".into(),
                offset: 0,
            });
        }
        let v = std::str::from_utf8(&magic[5..])
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u16>().ok());
        match v {
            Some(v) if (1..=MAX_VERSION).contains(&v) => {
                self.version = v;
                Ok(())
            }
            _ => Err(RdbError {
                msg: format!(
                    "can't handle RDB format version {}",
                    String::from_utf8_lossy(&magic[5..])
                ),
                offset: 5,
            }),
        }
    }

    /// Read the whole file, handing every item to `f` (which may stop the load with an error).
    pub fn read_all(
        &mut self,
        mut f: impl FnMut(Item) -> Result<(), RdbError>,
    ) -> Result<(), RdbError> {
        self.header()?;
        let mut db = 0usize;
        let mut expire: Option<u64> = None;
        let mut idle = None;
        let mut freq = None;
        loop {
            let t = self.src.byte()?;
            match t {
                op::EXPIRETIME_MS => {
                    expire = Some(self.src.ms()?);
                    continue;
                }
                op::EXPIRETIME => {
                    expire = Some(u32::from_le_bytes(self.src.array()?) as u64 * 1000);
                    continue;
                }
                op::IDLE => {
                    idle = Some(self.src.read_len()?);
                    continue;
                }
                op::FREQ => {
                    freq = Some(self.src.byte()?);
                    continue;
                }
                op::SELECTDB => {
                    let n = self.src.read_len()?;
                    db = match usize::try_from(n) {
                        Ok(n) if n < 1 << 20 => n,
                        _ => return self.src.err(format!("invalid database number {n}")),
                    };
                }
                op::RESIZEDB => {
                    let size = self.src.read_len()?;
                    let expires = self.src.read_len()?;
                    let (size, expires) = (self.size_hint(size), self.size_hint(expires));
                    f(Item::ResizeDb { db, size, expires })?;
                }
                op::SLOT_INFO => {
                    self.src.read_len()?;
                    self.src.read_len()?;
                    self.src.read_len()?;
                }
                op::AUX => {
                    let k = self.src.string()?;
                    let v = self.src.string()?;
                    f(Item::Aux(k, v))?;
                }
                op::MODULE_AUX => {
                    return self
                        .src
                        .err("module aux data is not supported (no modules)");
                }
                op::FUNCTION_PRE_GA => {
                    return self.src.err("pre-release function format is not supported");
                }
                op::FUNCTION2 => {
                    let code = self.src.string()?;
                    f(Item::Function(code))?;
                }
                op::EOF => {
                    if self.version >= 5 {
                        let expected = self.src.digest.take().map_or(0, |d| d.finalize());
                        let got = u64::from_le_bytes(self.src.array()?);
                        if got != 0 && got != expected {
                            return self.src.err(format!(
                                "wrong RDB checksum: expected {expected:x}, got {got:x}"
                            ));
                        }
                    }
                    return Ok(());
                }
                ty => {
                    let key = self.src.string()?;
                    let value = decode_value(&mut self.src, ty, &self.lim)?;
                    let (e, i, fq) = (expire.take(), idle.take(), freq.take());
                    if let Some(value) = value {
                        f(Item::Key(KeyItem {
                            db,
                            key,
                            value,
                            expire_ms: e,
                            idle_secs: i,
                            freq: fq,
                        }))?;
                    }
                    continue;
                }
            }
            expire = None;
            idle = None;
            freq = None;
        }
    }
}

/// Check a DUMP payload (version and CRC64) and decode its value. Errors are Redis's RESTORE messages.
pub fn parse_payload(p: &[u8], lim: &EncodingLimits) -> Result<Value, &'static str> {
    const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
    const BAD_DATA: &str = "ERR Bad data format";
    if p.len() < 10 {
        return Err(BAD_PAYLOAD);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > MAX_VERSION {
        return Err(BAD_PAYLOAD);
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if crc64(&p[..p.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(BAD_PAYLOAD);
    }
    let Some((&ty, rest)) = body.split_first() else {
        return Err(BAD_DATA);
    };
    let mut src = Src::new(rest, false);
    match decode_value(&mut src, ty, lim) {
        Ok(Some(v)) if src.r.is_empty() => Ok(v),
        _ => Err(BAD_DATA),
    }
}

/// Build a keyspace entry from a loaded value.
pub fn make_entry(key: &[u8], value: Value, lru: u32) -> Box<Entry> {
    match value {
        Value::Str(s) => Entry::new_str(key, &s, lru),
        v => Entry::new(key, v, lru),
    }
}

/// Load an RDB file into the server's keyspace (meant for an empty keyspace at startup; existing keys
/// are replaced). Keys already expired are dropped. Returns (keys loaded, keys expired). Function
/// libraries are handed to `on_function`. `input_len`, the input's size when known, bounds how much the
/// file's size hints may pre-allocate.
pub fn load_into_with<R: Read>(
    srv: &crate::server::Server,
    r: R,
    input_len: Option<u64>,
    mut on_function: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(u64, u64), RdbError> {
    let lim = srv.encoding.get();
    let dbs = srv.keyspace.databases();
    let now = crate::server::unix_ms();
    let clock = crate::keyspace::entry::lru_clock(now);
    let mut reader = Reader::new(r, lim).with_input_len(input_len);
    let (mut loaded, mut expired) = (0u64, 0u64);
    let res = reader.read_all(|item| match item {
        Item::Key(k) => {
            if k.db >= dbs {
                return Err(RdbError {
                    msg: format!(
                        "key '{}' is in database {} but this server has {dbs} databases",
                        String::from_utf8_lossy(&k.key),
                        k.db
                    ),
                    offset: 0,
                });
            }
            if k.expire_ms.is_some_and(|at| at <= now) {
                expired += 1;
                return Ok(());
            }
            let lru = match k.idle_secs {
                Some(idle) => clock.wrapping_sub(idle.min(u32::MAX as u64) as u32),
                None => clock,
            };
            let field_ttls = matches!(&k.value, Value::Hash(h) if h.has_field_ttls());
            let mut e = make_entry(&k.key, k.value, lru);
            e.set_lru(lru);
            e.set_expire_at(k.expire_ms);
            let mut g = srv.keyspace.lock_key(&k.key);
            g.db_mut(k.db).upsert(e);
            if field_ttls {
                g.note_field_ttls(k.db, &k.key);
            }
            loaded += 1;
            Ok(())
        }
        Item::ResizeDb { db, size, .. } if db < dbs => {
            // Size the tables up front (as Redis does with this hint) instead of growing them step by
            // step while loading. The reader bounded the hint; tables grow past it as keys arrive.
            srv.keyspace
                .reserve(db, usize::try_from(size).unwrap_or(usize::MAX));
            Ok(())
        }
        Item::Function(code) => on_function(&code).map_err(|m| RdbError {
            msg: format!("failed loading a function library: {m}"),
            offset: 0,
        }),
        _ => Ok(()),
    });
    res.map(|_| (loaded, expired))
}

/// [`load_into_with`] ignoring function libraries (with a warning in the log).
pub fn load_into<R: Read>(
    srv: &crate::server::Server,
    r: R,
    input_len: Option<u64>,
) -> Result<(u64, u64), RdbError> {
    load_into_with(srv, r, input_len, |_| {
        crate::log::warning("The RDB file has function libraries: not loaded (unsupported)");
        Ok(())
    })
}
