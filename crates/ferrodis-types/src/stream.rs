//! The stream type: an append-only log of entries keyed by [`StreamId`] (milliseconds-sequence), plus
//! consumer groups.
//!
//! Storage: entries live in chunks of up to [`CHUNK_MAX_ENTRIES`] entries / [`CHUNK_MAX_BYTES`] bytes, kept in a
//! `BTreeMap` by the chunk's base ID (≤ every ID in the chunk). Inside a chunk entries are packed one after
//! the other in a byte buffer: the ID as varint deltas from the base, then the values — and the field names
//! only when they differ from the chunk's master field list (the fields of the entry that opened the chunk),
//! as Redis's listpacks do. Finding an ID is a tree search plus a scan of one chunk; a range read costs
//! O(log n) plus the entries it returns. Deletion splices the entry out of its chunk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Entries per chunk (Redis's stream-node-max-entries default).
pub const CHUNK_MAX_ENTRIES: usize = 100;
/// Bytes of packed data per chunk (Redis's stream-node-max-bytes default).
pub const CHUNK_MAX_BYTES: usize = 4096;

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
pub const ID_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
pub const ID_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
pub const EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID (None at the maximum).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID (None at 0-0).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis's string2ull: decimal digits only, no sign, no overflow.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Parse an ID as `ms-seq` or `ms` (then the sequence is `missing_seq`). With `ranges`, `-` and `+` are the
/// minimum and maximum IDs. Returns the ID and whether the sequence was given.
pub fn parse_id(b: &[u8], missing_seq: u64, ranges: bool) -> Result<StreamId, &'static str> {
    if ranges && b.len() == 1 {
        if b[0] == b'-' {
            return Ok(StreamId::MIN);
        }
        if b[0] == b'+' {
            return Ok(StreamId::MAX);
        }
    }
    if b.len() > 127 {
        return Err(INVALID_ID);
    }
    match b.iter().position(|&c| c == b'-') {
        Some(dash) => {
            let ms = parse_u64(&b[..dash]).ok_or(INVALID_ID)?;
            let seq = parse_u64(&b[dash + 1..]).ok_or(INVALID_ID)?;
            Ok(StreamId::new(ms, seq))
        }
        None => Ok(StreamId::new(parse_u64(b).ok_or(INVALID_ID)?, missing_seq)),
    }
}

/// A strict ID (no `-`/`+`), as XDEL, XACK, XCLAIM, XSETID take.
pub fn parse_strict_id(b: &[u8]) -> Result<StreamId, &'static str> {
    parse_id(b, 0, false)
}

/// How XADD was asked to pick the new ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSpec {
    /// `*`
    Auto,
    /// `<ms>-*`
    AutoSeq(u64),
    /// `<ms>-<seq>` or `<ms>` (sequence 0)
    Explicit(StreamId),
}

impl IdSpec {
    pub fn parse(b: &[u8]) -> Result<IdSpec, &'static str> {
        if b == b"*" {
            return Ok(IdSpec::Auto);
        }
        if let Some(ms) = b.strip_suffix(b"-*") {
            return Ok(IdSpec::AutoSeq(parse_u64(ms).ok_or(INVALID_ID)?));
        }
        Ok(IdSpec::Explicit(parse_id(b, 0, false)?))
    }
}

/// A range bound as XRANGE takes it: `-`, `+`, `ms`, `ms-seq`, optionally `(`-prefixed (exclusive).
/// `start` selects the default for a missing sequence (0 for a start, max for an end). Returns None for an
/// exclusive bound that excludes everything (`(+` as start / `(-` as end). Errors are Redis's.
pub fn parse_range_bound(b: &[u8], start: bool) -> Result<Option<StreamId>, &'static str> {
    let missing = if start { 0 } else { u64::MAX };
    if let Some(rest) = b.strip_prefix(b"(") {
        if rest == b"-" || rest == b"+" {
            return Err("ERR invalid start ID for the interval");
        }
        let id = parse_id(rest, missing, false)?;
        return Ok(if start { id.incr() } else { id.decr() });
    }
    parse_id(b, missing, true).map(Some)
}

// ---------------------------------------------------------------------------------------------------------
// Varints

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn get_bytes<'a>(data: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(data, pos) as usize;
    let s = &data[*pos..*pos + n];
    *pos += n;
    s
}

// ---------------------------------------------------------------------------------------------------------
// Chunks

#[derive(Clone, Debug)]
struct Chunk {
    /// Field names of the entry that opened the chunk.
    master: Vec<Box<[u8]>>,
    count: usize,
    /// Per entry: varint ms delta from the base, varint seq (delta from the base seq when the ms delta is 0),
    /// varint tag (0 = the master's fields, values follow; n > 0 = n field/value pairs follow), then the data.
    data: Vec<u8>,
}

/// One decoded entry, borrowing from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    pub fields: Vec<(&'a [u8], &'a [u8])>,
}

impl Chunk {
    fn new(fields: &[(&[u8], &[u8])]) -> Chunk {
        Chunk {
            master: fields.iter().map(|(f, _)| Box::<[u8]>::from(*f)).collect(),
            count: 0,
            data: Vec::new(),
        }
    }

    fn push(&mut self, base: StreamId, id: StreamId, fields: &[(&[u8], &[u8])]) {
        let dms = id.ms - base.ms;
        put_varint(&mut self.data, dms);
        put_varint(
            &mut self.data,
            if dms == 0 { id.seq - base.seq } else { id.seq },
        );
        let same = fields.len() == self.master.len()
            && fields
                .iter()
                .zip(&self.master)
                .all(|((f, _), m)| *f == &m[..]);
        if same {
            put_varint(&mut self.data, 0);
            for (_, v) in fields {
                put_bytes(&mut self.data, v);
            }
        } else {
            put_varint(&mut self.data, fields.len() as u64);
            for (f, v) in fields {
                put_bytes(&mut self.data, f);
                put_bytes(&mut self.data, v);
            }
        }
        self.count += 1;
    }

    /// Decode the ID at `pos` and advance past it.
    fn read_id(&self, base: StreamId, pos: &mut usize) -> StreamId {
        let dms = get_varint(&self.data, pos);
        let s = get_varint(&self.data, pos);
        if dms == 0 {
            StreamId::new(base.ms, base.seq + s)
        } else {
            StreamId::new(base.ms + dms, s)
        }
    }

    /// Skip the fields at `pos`.
    fn skip_fields(&self, pos: &mut usize) {
        let tag = get_varint(&self.data, pos) as usize;
        let n = if tag == 0 { self.master.len() } else { tag * 2 };
        for _ in 0..n {
            let len = get_varint(&self.data, pos) as usize;
            *pos += len;
        }
    }

    fn read_fields<'a>(&'a self, pos: &mut usize) -> Vec<(&'a [u8], &'a [u8])> {
        let tag = get_varint(&self.data, pos) as usize;
        if tag == 0 {
            self.master
                .iter()
                .map(|m| (&m[..], get_bytes(&self.data, pos)))
                .collect()
        } else {
            (0..tag)
                .map(|_| {
                    let f = get_bytes(&self.data, pos);
                    (f, get_bytes(&self.data, pos))
                })
                .collect()
        }
    }

    /// (id, start offset, end offset) of every entry.
    fn spans(&self, base: StreamId) -> Vec<(StreamId, usize, usize)> {
        let mut out = Vec::with_capacity(self.count);
        let mut pos = 0;
        while pos < self.data.len() {
            let start = pos;
            let id = self.read_id(base, &mut pos);
            self.skip_fields(&mut pos);
            out.push((id, start, pos));
        }
        out
    }

    fn entries(&self, base: StreamId) -> Vec<EntryRef<'_>> {
        let mut out = Vec::with_capacity(self.count);
        let mut pos = 0;
        while pos < self.data.len() {
            let id = self.read_id(base, &mut pos);
            let fields = self.read_fields(&mut pos);
            out.push(EntryRef { id, fields });
        }
        out
    }

    fn heap_bytes(&self) -> usize {
        self.data.capacity()
            + self.master.capacity() * 16
            + self.master.iter().map(|m| m.len()).sum::<usize>()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Consumer groups

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    pub consumer: Vec<u8>,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen_time: u64,
    pub active_time: Option<u64>,
    pub pending: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// None = unknown (Redis's SCG_INVALID_ENTRIES_READ).
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    /// The consumer `name`, created if missing (returns whether it was created).
    pub fn consumer_mut(&mut self, name: &[u8], now_ms: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self
            .consumers
            .entry(name.to_vec())
            .or_insert_with(|| Consumer {
                seen_time: now_ms,
                active_time: None,
                pending: BTreeSet::new(),
            });
        (c, created)
    }

    /// Remove a consumer and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pending {
            self.pel.remove(id);
        }
        Some(c.pending.len())
    }

    /// Acknowledge an ID; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pending.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Assign a pending entry to `consumer` (creating or moving it).
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], now_ms: u64, count: u64) {
        if let Some(old) = self.pel.get(&id) {
            if old.consumer != consumer {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pending.remove(&id);
                }
            }
        }
        self.pel.insert(
            id,
            PendingEntry {
                consumer: consumer.to_vec(),
                delivery_time: now_ms,
                delivery_count: count,
            },
        );
        let (c, _) = self.consumer_mut(consumer, now_ms);
        c.pending.insert(id);
    }
}

// ---------------------------------------------------------------------------------------------------------
// The stream

#[derive(Clone, Debug, Default)]
pub struct Stream {
    chunks: BTreeMap<StreamId, Chunk>,
    len: usize,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Vec<u8>, Group>,
}

/// How to trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Number of chunks (XINFO STREAM radix-tree-nodes / -keys approximations).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Approximate heap bytes used (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.chunks
            .values()
            .map(|c| c.heap_bytes() + 64)
            .sum::<usize>()
            + 64
    }

    /// The ID XADD would give for `spec`, checked against the top item.
    pub fn next_id(&self, spec: IdSpec, now_ms: u64) -> Result<StreamId, &'static str> {
        let last = self.last_id;
        match spec {
            IdSpec::Auto => {
                if now_ms > last.ms {
                    Ok(StreamId::new(now_ms, 0))
                } else {
                    last.incr().ok_or(EXHAUSTED)
                }
            }
            IdSpec::AutoSeq(ms) => {
                if ms == last.ms {
                    if last.seq == u64::MAX {
                        return Err(ID_TOO_SMALL);
                    }
                    Ok(StreamId::new(ms, last.seq + 1))
                } else if ms > last.ms {
                    Ok(StreamId::new(ms, 0))
                } else {
                    Err(ID_TOO_SMALL)
                }
            }
            IdSpec::Explicit(id) => {
                if id.is_zero() {
                    Err(ID_ZERO)
                } else if id <= last {
                    Err(ID_TOO_SMALL)
                } else {
                    Ok(id)
                }
            }
        }
    }

    /// Append an entry with the given ID (which must be greater than `last_id`).
    pub fn append(&mut self, id: StreamId, fields: &[(&[u8], &[u8])]) {
        debug_assert!(id > self.last_id || (self.last_id.is_zero() && !id.is_zero()));
        let need_new = match self.chunks.last_key_value() {
            None => true,
            Some((_, c)) => c.count >= CHUNK_MAX_ENTRIES || c.data.len() >= CHUNK_MAX_BYTES,
        };
        if need_new {
            // The previous chunk is full: give back its spare capacity.
            if let Some(mut last) = self.chunks.last_entry() {
                last.get_mut().data.shrink_to_fit();
            }
            let mut c = Chunk::new(fields);
            c.push(id, id, fields);
            self.chunks.insert(id, c);
        } else if let Some(mut e) = self.chunks.last_entry() {
            let base = *e.key();
            e.get_mut().push(base, id, fields);
        }
        self.len += 1;
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Add an entry as XADD does: pick the ID, append. Returns the new ID.
    pub fn add(
        &mut self,
        spec: IdSpec,
        fields: &[(&[u8], &[u8])],
        now_ms: u64,
    ) -> Result<StreamId, &'static str> {
        let id = self.next_id(spec, now_ms)?;
        self.append(id, fields);
        Ok(id)
    }

    /// Entries with `start <= id <= end`, ascending, at most `count` (0 = all).
    pub fn range(&self, start: StreamId, end: StreamId, count: usize) -> Vec<EntryRef<'_>> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let first_base = self
            .chunks
            .range(..=start)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(start);
        for (base, c) in self.chunks.range(first_base..=end) {
            for e in c.entries(*base) {
                if e.id < start {
                    continue;
                }
                if e.id > end {
                    return out;
                }
                out.push(e);
                if count > 0 && out.len() >= count {
                    return out;
                }
            }
        }
        out
    }

    /// Entries with `start <= id <= end`, descending, at most `count` (0 = all).
    pub fn rev_range(&self, start: StreamId, end: StreamId, count: usize) -> Vec<EntryRef<'_>> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        for (base, c) in self.chunks.range(..=end).rev() {
            let mut es = c.entries(*base);
            es.reverse();
            for e in es {
                if e.id > end {
                    continue;
                }
                if e.id < start {
                    return out;
                }
                out.push(e);
                if count > 0 && out.len() >= count {
                    return out;
                }
            }
            if *base < start {
                break;
            }
        }
        out
    }

    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        self.range(id, id, 1).pop()
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let Some((base, c)) = self.chunks.range(..=id).next_back() else {
            return false;
        };
        let mut pos = 0;
        while pos < c.data.len() {
            let eid = c.read_id(*base, &mut pos);
            if eid == id {
                return true;
            }
            if eid > id {
                return false;
            }
            c.skip_fields(&mut pos);
        }
        false
    }

    pub fn first_entry(&self) -> Option<EntryRef<'_>> {
        self.range(StreamId::MIN, StreamId::MAX, 1).pop()
    }

    pub fn last_entry(&self) -> Option<EntryRef<'_>> {
        self.rev_range(StreamId::MIN, StreamId::MAX, 1).pop()
    }

    pub fn first_id(&self) -> Option<StreamId> {
        let (base, c) = self.chunks.first_key_value()?;
        let mut pos = 0;
        Some(c.read_id(*base, &mut pos))
    }

    /// Delete one entry; true if it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&base, c)) = self.chunks.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(&(_, s, e)) = c.spans(base).iter().find(|(eid, _, _)| *eid == id) else {
            return false;
        };
        c.data.drain(s..e);
        c.count -= 1;
        if c.count == 0 {
            self.chunks.remove(&base);
        }
        self.len -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        true
    }

    /// Trim as XTRIM / XADD do (unlike XDEL this leaves `max_deleted_id` alone, as Redis does). `approx`:
    /// only whole chunks are removed; `limit` caps the entries removed (0 = no cap). Returns the number of
    /// entries removed.
    pub fn trim(&mut self, strategy: TrimStrategy, approx: bool, limit: usize) -> usize {
        let mut removed = 0usize;
        // Whether the whole first chunk can go.
        let whole_chunk_goes = |s: &Stream, base: StreamId, c: &Chunk| -> bool {
            match strategy {
                TrimStrategy::MaxLen(max) => (s.len - c.count) as u64 >= max,
                // A whole chunk goes when its last entry is below min.
                TrimStrategy::MinId(min) => {
                    c.spans(base).last().is_some_and(|(id, _, _)| *id < min)
                }
            }
        };
        while let Some((&base, c)) = self.chunks.first_key_value() {
            if limit > 0 && removed + c.count > limit {
                break;
            }
            if !whole_chunk_goes(self, base, c) {
                break;
            }
            let n = c.count;
            self.chunks.remove(&base);
            self.len -= n;
            removed += n;
        }
        if approx {
            return removed;
        }
        // Exact: remove entries one by one from the front of the first chunk.
        while let Some(mut e) = self.chunks.first_entry() {
            let base = *e.key();
            let spans = e.get().spans(base);
            let mut cut = 0;
            let mut n = 0usize;
            let mut any = false;
            for &(id, _, end) in &spans {
                let go = match strategy {
                    TrimStrategy::MaxLen(max) => (self.len - n) as u64 > max,
                    TrimStrategy::MinId(min) => id < min,
                };
                if !go || (limit > 0 && removed >= limit) {
                    break;
                }
                cut = end;
                n += 1;
                any = true;
                removed += 1;
            }
            if !any {
                break;
            }
            let c = e.get_mut();
            c.data.drain(..cut);
            c.count -= n;
            self.len -= n;
            if c.count == 0 {
                e.remove();
                continue;
            }
            break;
        }
        removed
    }

    /// Whether an entry between `start` and `end` (inclusive) was ever deleted (as far as max_deleted_id
    /// tells: Redis's streamRangeHasTombstones).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.len == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// Redis's streamEstimateDistanceFromFirstEverEntry: the entries-read counter of a group whose last
    /// delivered ID is `id`, if it can be known.
    pub fn estimate_entries_read(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let first = self.first_id().unwrap_or(StreamId::MIN);
        if self.max_deleted_id.is_zero() || self.max_deleted_id < first {
            if id < first {
                return Some(self.entries_added - self.len as u64);
            }
            if id == first {
                return Some(self.entries_added - self.len as u64 + 1);
            }
        }
        None
    }

    /// The lag of a group (XINFO GROUPS), None when unknown.
    pub fn group_lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.range_has_tombstones(g.last_id, StreamId::MAX) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.estimate_entries_read(g.last_id)
            .map(|r| self.entries_added.saturating_sub(r))
    }

    /// Advance a group past a delivered `id` (XREADGROUP `>`): last ID and entries-read counter.
    pub fn group_delivered(&mut self, group: &[u8], id: StreamId) {
        let tomb = self.range_has_tombstones(id, StreamId::MAX);
        let est = self.estimate_entries_read(id);
        if let Some(g) = self.groups.get_mut(group) {
            if id > g.last_id {
                g.entries_read = match g.entries_read {
                    Some(r) if !tomb => Some(r + 1),
                    _ => est,
                };
                g.last_id = id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(v: &[u8]) -> Vec<(&[u8], &[u8])> {
        vec![(b"a".as_slice(), v), (b"b".as_slice(), b"x".as_slice())]
    }

    #[test]
    fn id_parsing() {
        assert_eq!(parse_id(b"1-2", 0, false), Ok(StreamId::new(1, 2)));
        assert_eq!(parse_id(b"5", 0, false), Ok(StreamId::new(5, 0)));
        assert_eq!(
            parse_id(b"5", u64::MAX, false),
            Ok(StreamId::new(5, u64::MAX))
        );
        assert_eq!(parse_id(b"-", 0, true), Ok(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0, true), Ok(StreamId::MAX));
        assert_eq!(parse_id(b"+", 0, false), Err(INVALID_ID));
        assert_eq!(parse_id(b"1-", 0, false), Err(INVALID_ID));
        assert_eq!(parse_id(b"-1", 0, false), Err(INVALID_ID));
        assert_eq!(parse_id(b"1-2-3", 0, false), Err(INVALID_ID));
        assert_eq!(parse_id(b"18446744073709551616", 0, false), Err(INVALID_ID));
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615", 0, false),
            Ok(StreamId::MAX)
        );
        assert_eq!(IdSpec::parse(b"*"), Ok(IdSpec::Auto));
        assert_eq!(IdSpec::parse(b"7-*"), Ok(IdSpec::AutoSeq(7)));
        assert_eq!(IdSpec::parse(b"x-*"), Err(INVALID_ID));
        assert_eq!(
            parse_range_bound(b"(1-1", true),
            Ok(Some(StreamId::new(1, 2)))
        );
        assert_eq!(
            parse_range_bound(b"(1", false),
            Ok(Some(StreamId::new(1, u64::MAX - 1)))
        );
        assert_eq!(parse_range_bound(b"(0-0", false), Ok(None));
        assert_eq!(
            parse_range_bound(b"2", false),
            Ok(Some(StreamId::new(2, u64::MAX)))
        );
    }

    #[test]
    fn generation() {
        let mut s = Stream::new();
        assert_eq!(
            s.add(IdSpec::Auto, &f(b"1"), 100),
            Ok(StreamId::new(100, 0))
        );
        // Clock going backwards: reuse last ms.
        assert_eq!(s.add(IdSpec::Auto, &f(b"1"), 50), Ok(StreamId::new(100, 1)));
        assert_eq!(
            s.add(IdSpec::AutoSeq(100), &f(b"1"), 0),
            Ok(StreamId::new(100, 2))
        );
        assert_eq!(s.add(IdSpec::AutoSeq(99), &f(b"1"), 0), Err(ID_TOO_SMALL));
        assert_eq!(
            s.add(IdSpec::Explicit(StreamId::new(100, 2)), &f(b"1"), 0),
            Err(ID_TOO_SMALL)
        );
        let mut z = Stream::new();
        assert_eq!(
            z.add(IdSpec::Explicit(StreamId::MIN), &f(b"1"), 0),
            Err(ID_ZERO)
        );
        z.append(StreamId::new(5, u64::MAX), &f(b"1"));
        assert_eq!(z.next_id(IdSpec::Auto, 0), Ok(StreamId::new(6, 0)));
        assert_eq!(z.next_id(IdSpec::AutoSeq(5), 0), Err(ID_TOO_SMALL));
        z.append(StreamId::MAX, &f(b"1"));
        assert_eq!(z.next_id(IdSpec::Auto, u64::MAX), Err(EXHAUSTED));
    }

    #[test]
    fn chunks_share_fields_and_delete() {
        let mut s = Stream::new();
        for i in 1..=250u64 {
            let v = i.to_string();
            if i % 7 == 0 {
                s.append(StreamId::new(i, 0), &[(b"other".as_slice(), v.as_bytes())]);
            } else {
                s.append(StreamId::new(i, 0), &f(v.as_bytes()));
            }
        }
        assert_eq!(s.len(), 250);
        assert_eq!(s.chunk_count(), 3);
        let r = s.range(StreamId::new(99, 0), StreamId::new(104, 0), 0);
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].fields, f(b"99"));
        assert_eq!(r[0].id, StreamId::new(99, 0));
        assert_eq!(
            s.get(StreamId::new(14, 0)).unwrap().fields,
            vec![(b"other".as_slice(), b"14".as_slice())]
        );
        assert!(s.delete(StreamId::new(101, 0)));
        assert!(!s.delete(StreamId::new(101, 0)));
        assert!(!s.contains(StreamId::new(101, 0)));
        assert!(s.contains(StreamId::new(102, 0)));
        assert_eq!(s.max_deleted_id, StreamId::new(101, 0));
        let r = s.rev_range(StreamId::new(99, 0), StreamId::new(103, 0), 3);
        let ids: Vec<u64> = r.iter().map(|e| e.id.ms).collect();
        assert_eq!(ids, vec![103, 102, 100]);
    }

    #[test]
    fn trimming() {
        let mk = || {
            let mut s = Stream::new();
            for i in 1..=250u64 {
                s.append(StreamId::new(i, 0), &f(b"v"));
            }
            s
        };
        let mut s = mk();
        assert_eq!(s.trim(TrimStrategy::MaxLen(120), true, 0), 100);
        assert_eq!(s.len(), 150);
        let mut s = mk();
        assert_eq!(s.trim(TrimStrategy::MaxLen(120), false, 0), 130);
        assert_eq!(s.len(), 120);
        assert_eq!(s.first_id(), Some(StreamId::new(131, 0)));
        let mut s = mk();
        assert_eq!(
            s.trim(TrimStrategy::MinId(StreamId::new(150, 0)), false, 0),
            149
        );
        assert_eq!(s.first_id(), Some(StreamId::new(150, 0)));
        let mut s = mk();
        assert_eq!(
            s.trim(TrimStrategy::MinId(StreamId::new(150, 0)), true, 0),
            100
        );
        let mut s = mk();
        assert_eq!(s.trim(TrimStrategy::MaxLen(0), true, 150), 100);
        let mut s = mk();
        assert_eq!(s.trim(TrimStrategy::MaxLen(0), false, 0), 250);
        assert!(s.is_empty());
        // Trimming is not deletion: max_deleted_id stays (as Redis).
        assert_eq!(s.max_deleted_id, StreamId::MIN);
    }

    proptest! {
        #[test]
        fn id_order_and_roundtrip(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), d in any::<u64>()) {
            let x = StreamId::new(a, b);
            let y = StreamId::new(c, d);
            prop_assert_eq!(x < y, (a, b) < (c, d));
            prop_assert_eq!(parse_id(x.to_string().as_bytes(), 0, false), Ok(x));
            if let Some(n) = x.incr() { prop_assert_eq!(n.decr(), Some(x)); prop_assert!(n > x); }
        }

        #[test]
        fn generated_ids_increase(clock in proptest::collection::vec(0u64..1000, 1..200)) {
            let mut s = Stream::new();
            let mut prev = StreamId::MIN;
            for now in clock {
                let id = s.add(IdSpec::Auto, &f(b"v"), now).unwrap();
                prop_assert!(id > prev);
                prev = id;
            }
        }

        #[test]
        fn model(ops in proptest::collection::vec((0u8..4, 0u64..400, 0u64..300), 1..300)) {
            let mut s = Stream::new();
            let mut model: BTreeMap<StreamId, u64> = BTreeMap::new();
            for (op, a, b) in ops {
                match op {
                    0 | 1 => {
                        let v = a.to_string();
                        let id = s.add(IdSpec::Auto, &f(v.as_bytes()), a).unwrap();
                        model.insert(id, a);
                    }
                    2 => {
                        let id = model.keys().nth(a as usize % (model.len() + 1)).copied().unwrap_or(StreamId::new(a, 0));
                        prop_assert_eq!(s.delete(id), model.remove(&id).is_some());
                    }
                    _ => {
                        let removed = s.trim(TrimStrategy::MaxLen(b), false, 0);
                        let mut n = 0;
                        while model.len() as u64 > b { let k = *model.keys().next().unwrap(); model.remove(&k); n += 1; }
                        prop_assert_eq!(removed, n);
                    }
                }
                prop_assert_eq!(s.len(), model.len());
                let (lo, hi) = (StreamId::new(a.min(b), 0), StreamId::new(a.max(b), 5));
                let got: Vec<StreamId> = s.range(lo, hi, 0).iter().map(|e| e.id).collect();
                let want: Vec<StreamId> = model.range(lo..=hi).map(|(k, _)| *k).collect();
                prop_assert_eq!(&got, &want);
                let mut rgot: Vec<StreamId> = s.rev_range(lo, hi, 0).iter().map(|e| e.id).collect();
                rgot.reverse();
                prop_assert_eq!(rgot, want);
            }
        }
    }
}
