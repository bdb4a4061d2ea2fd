//! The list value type: a deque of packed chunks, with Redis's quicklist memory behaviour.
//!
//! A list is a `VecDeque` of [`Chunk`]s. A chunk is one byte buffer of entries encoded with the sizes of
//! Redis's listpack format (the entries are listpack entries: header, payload, back-length; strings that are
//! canonical 64-bit integers are stored as integers of 1 to 9 bytes). So the bytes of a chunk are exactly
//! what a Redis listpack node would hold, minus its 6-byte header and end byte, and the per-element overhead
//! is the listpack's (2 bytes for a short string, less than the string itself for an integer).
//!
//! Each chunk keeps free room at its front (`head`) as well as at its back, so pushing and popping at both
//! ends are amortized O(1) (a Redis listpack memmoves its whole node on a head insert). Chunks that stop
//! being an end chunk are compacted.
//!
//! Encoding (OBJECT ENCODING): a list starts as `listpack` (a single chunk that may grow without bound) and
//! becomes `quicklist` when a write would make it exceed `list-max-listpack-size`, using Redis 7.2's
//! estimate (current listpack bytes + raw bytes of the new elements). From then on chunks are bounded by the
//! same limit (new chunks are started as a Redis quicklist starts new nodes; an element larger than a node
//! gets a chunk of its own, as Redis's "plain" nodes). After a shrinking operation a quicklist of one chunk
//! at most half the limit turns back into a listpack, as in Redis 7.2.
//!
//! Indexes are `usize` from the head; the command layer converts Redis's negative indexes.

use ferrodis_protocol::num::parse_i64;
use std::collections::VecDeque;

/// Bytes of a listpack's header (total bytes u32 + count u16) plus its end marker.
const LP_OVERHEAD: usize = 7;
/// Redis's SIZE_SAFETY_LIMIT for count-limited nodes.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Redis's SIZE_ESTIMATE_OVERHEAD for the per-entry cost estimate when deciding whether a node takes more.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;

/// Node limits for a `list-max-listpack-size` value: (max bytes, max entries).
fn node_limits(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, if fill == 0 { 1 } else { fill as usize })
    } else {
        let off = fill.saturating_neg().saturating_sub(1).min(4) as u32;
        (4096usize << off, usize::MAX)
    }
}

/// Redis's quicklistNodeExceedsLimit.
fn exceeds_limit(fill: i64, new_sz: usize, new_count: usize) -> bool {
    let (sz, count) = node_limits(fill);
    if sz != usize::MAX {
        new_sz > sz
    } else {
        new_sz > SIZE_SAFETY_LIMIT || new_count > count
    }
}

/// Redis's isLargeElement: an element that gets a node of its own.
fn is_large(fill: i64, sz: usize) -> bool {
    let (lim, _) = node_limits(fill);
    if fill >= 0 {
        sz > SIZE_SAFETY_LIMIT
    } else {
        sz > lim
    }
}

// ---------------------------------------------------------------------------------------------------------
// Entry encoding (listpack entry layout)

/// One element as stored: a string, or a string that was a canonical integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// The element's bytes, exactly as they were pushed.
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => itoa::Buffer::new().format(i).as_bytes().to_vec(),
        }
    }

    /// Length of the element's bytes.
    pub fn len(self) -> usize {
        match self {
            Elem::Str(s) => s.len(),
            Elem::Int(i) => itoa::Buffer::new().format(i).len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A value to compare elements with (LREM, LPOS, LINSERT's pivot), prepared once.
#[derive(Clone, Copy, Debug)]
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Needle {
            bytes,
            int: as_int(bytes),
        }
    }

    #[inline]
    pub fn matches(&self, e: Elem<'_>) -> bool {
        match e {
            Elem::Int(i) => self.int == Some(i),
            Elem::Str(s) => self.int.is_none() && s == self.bytes,
        }
    }
}

/// Whether a string is stored as an integer (canonical decimal form of an i64, as listpack decides).
#[inline]
fn as_int(v: &[u8]) -> Option<i64> {
    if v.len() > 20 || v.is_empty() {
        return None;
    }
    parse_i64(v)
}

/// An encoded entry ready to be written: header bytes (with the integer payload), string payload, back-len.
struct Enc<'a> {
    hdr: [u8; 9],
    hlen: u8,
    payload: &'a [u8],
    back: [u8; 5],
    blen: u8,
}

impl<'a> Enc<'a> {
    fn new(v: &'a [u8]) -> Self {
        let mut hdr = [0u8; 9];
        let (hlen, payload): (usize, &[u8]) = match as_int(v) {
            Some(i) => (encode_int(i, &mut hdr), &[]),
            None => {
                let n = v.len();
                let h = if n < 64 {
                    hdr[0] = 0x80 | n as u8;
                    1
                } else if n < 4096 {
                    hdr[0] = 0xE0 | (n >> 8) as u8;
                    hdr[1] = n as u8;
                    2
                } else if let Ok(n32) = u32::try_from(n) {
                    hdr[0] = 0xF0;
                    hdr[1..5].copy_from_slice(&n32.to_le_bytes());
                    5
                } else {
                    // Beyond listpack's 32-bit string (Redis keeps such elements in plain nodes).
                    hdr[0] = 0xF5;
                    hdr[1..9].copy_from_slice(&(n as u64).to_le_bytes());
                    9
                };
                (h, v)
            }
        };
        let mut back = [0u8; 5];
        let blen = encode_backlen(hlen + payload.len(), &mut back);
        Enc {
            hdr,
            hlen: hlen as u8,
            payload,
            back,
            blen: blen as u8,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.hlen as usize + self.payload.len() + self.blen as usize
    }

    fn write_to(&self, dst: &mut [u8]) {
        let h = self.hlen as usize;
        let p = self.payload.len();
        dst[..h].copy_from_slice(&self.hdr[..h]);
        dst[h..h + p].copy_from_slice(self.payload);
        dst[h + p..].copy_from_slice(&self.back[..self.blen as usize]);
    }

    fn extend(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hdr[..self.hlen as usize]);
        out.extend_from_slice(self.payload);
        out.extend_from_slice(&self.back[..self.blen as usize]);
    }
}

fn encode_int(i: i64, out: &mut [u8; 9]) -> usize {
    if (0..=127).contains(&i) {
        out[0] = i as u8;
        1
    } else if (-4096..=4095).contains(&i) {
        let u = if i < 0 { (1i64 << 13) + i } else { i } as u16;
        out[0] = 0xC0 | (u >> 8) as u8;
        out[1] = u as u8;
        2
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&i) {
        out[0] = 0xF1;
        out[1..3].copy_from_slice(&(i as i16).to_le_bytes());
        3
    } else if (-(1i64 << 23)..(1i64 << 23)).contains(&i) {
        out[0] = 0xF2;
        out[1..4].copy_from_slice(&(i as i32).to_le_bytes()[..3]);
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&i) {
        out[0] = 0xF3;
        out[1..5].copy_from_slice(&(i as i32).to_le_bytes());
        5
    } else {
        out[0] = 0xF4;
        out[1..9].copy_from_slice(&i.to_le_bytes());
        9
    }
}

/// The back-length of an entry whose header + payload is `l` bytes (listpack's boundaries).
fn encode_backlen(l: usize, out: &mut [u8; 5]) -> usize {
    let n = if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    };
    // Most significant group first; every byte but the first carries the continuation bit.
    for (k, b) in out[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - k);
        let g = ((l >> shift) & 127) as u8;
        *b = if k == 0 { g } else { g | 128 };
    }
    n
}

/// Decode the entry starting at `off`: the element and the entry's total size.
#[inline]
fn decode(data: &[u8], off: usize) -> (Elem<'_>, usize) {
    let b0 = data[off];
    let (elem, hp) = if b0 & 0x80 == 0 {
        (Elem::Int(b0 as i64), 1)
    } else if b0 & 0xC0 == 0x80 {
        let n = (b0 & 0x3F) as usize;
        (Elem::Str(&data[off + 1..off + 1 + n]), 1 + n)
    } else if b0 & 0xE0 == 0xC0 {
        let u = (((b0 & 0x1F) as i64) << 8) | data[off + 1] as i64;
        let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
        (Elem::Int(v), 2)
    } else if b0 & 0xF0 == 0xE0 {
        let n = (((b0 & 0x0F) as usize) << 8) | data[off + 1] as usize;
        (Elem::Str(&data[off + 2..off + 2 + n]), 2 + n)
    } else {
        let p = &data[off + 1..];
        match b0 {
            0xF0 => {
                let n = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
                (Elem::Str(&data[off + 5..off + 5 + n]), 5 + n)
            }
            0xF1 => (Elem::Int(i16::from_le_bytes([p[0], p[1]]) as i64), 3),
            0xF2 => {
                let v = i32::from_le_bytes([0, p[0], p[1], p[2]]) >> 8;
                (Elem::Int(v as i64), 4)
            }
            0xF3 => (
                Elem::Int(i32::from_le_bytes([p[0], p[1], p[2], p[3]]) as i64),
                5,
            ),
            0xF5 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&p[..8]);
                let n = u64::from_le_bytes(b) as usize;
                (Elem::Str(&data[off + 9..off + 9 + n]), 9 + n)
            }
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&p[..8]);
                (Elem::Int(i64::from_le_bytes(b)), 9)
            }
        }
    };
    (elem, hp + backlen_size(hp))
}

#[inline]
fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    }
}

/// Start offset of the entry that ends at `end` (exclusive), read from its back-length.
#[inline]
fn prev_start(data: &[u8], end: usize) -> usize {
    let mut p = end - 1;
    let mut l = 0usize;
    let mut shift = 0;
    loop {
        let b = data[p];
        l |= ((b & 127) as usize) << shift;
        if b & 128 == 0 {
            break;
        }
        shift += 7;
        p -= 1;
    }
    end - backlen_size(l) - l
}

// ---------------------------------------------------------------------------------------------------------
// Chunk

/// One node: entries in `buf[head..]`.
#[derive(Clone, Debug, Default)]
struct Chunk {
    buf: Vec<u8>,
    head: u32,
    count: u32,
}

impl Chunk {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.head as usize..]
    }

    /// Bytes of entries (a Redis listpack of these entries has `bytes() + 7` bytes).
    #[inline]
    fn bytes(&self) -> usize {
        self.buf.len() - self.head as usize
    }

    fn push_back(&mut self, e: &Enc<'_>) {
        let n = e.len();
        if self.buf.len() + n > self.buf.capacity() {
            let data = self.bytes();
            if self.head as usize >= data.max(n) {
                // Reclaim the consumed front instead of growing.
                self.compact();
            } else {
                self.buf.reserve_exact(n.max(data / 4 + 16));
            }
        }
        e.extend(&mut self.buf);
        self.count += 1;
    }

    fn push_front(&mut self, e: &Enc<'_>) {
        let n = e.len();
        if (self.head as usize) < n {
            self.make_front_room(n);
        }
        let h = self.head as usize - n;
        e.write_to(&mut self.buf[h..h + n]);
        self.head = h as u32;
        self.count += 1;
    }

    /// Ensure at least `n` free bytes before the data (moving it), keeping about a quarter of slack.
    fn make_front_room(&mut self, n: usize) {
        let data = self.bytes();
        let gap = n.max(data / 4 + 16);
        let mut nb = Vec::with_capacity(gap + data);
        nb.resize(gap, 0);
        nb.extend_from_slice(self.data());
        self.buf = nb;
        self.head = gap as u32;
    }

    /// Drop the free room at both ends (the chunk stopped being an end chunk).
    fn compact(&mut self) {
        if self.head > 0 {
            self.buf.drain(..self.head as usize);
            self.head = 0;
        }
    }

    fn seal(&mut self) {
        self.compact();
        self.buf.shrink_to_fit();
    }

    fn front(&self) -> Elem<'_> {
        decode(self.data(), 0).0
    }

    fn back(&self) -> Elem<'_> {
        let d = self.data();
        decode(d, prev_start(d, d.len())).0
    }

    fn pop_front(&mut self) -> Vec<u8> {
        let (e, n) = decode(self.data(), 0);
        let v = e.to_vec();
        self.head += n as u32;
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        v
    }

    fn pop_back(&mut self) -> Vec<u8> {
        let d = self.data();
        let s = prev_start(d, d.len());
        let v = decode(d, s).0.to_vec();
        let h = self.head as usize;
        self.buf.truncate(h + s);
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        v
    }

    /// Byte offset (in `data()`) of the entry with index `i` within this chunk.
    fn offset_of(&self, i: usize) -> usize {
        let d = self.data();
        let c = self.count as usize;
        if i <= c / 2 {
            let mut off = 0;
            for _ in 0..i {
                off += decode(d, off).1;
            }
            off
        } else {
            let mut end = d.len();
            for _ in 0..c - i {
                end = prev_start(d, end);
            }
            end
        }
    }

    /// Insert an entry at byte offset `off` of `data()`.
    fn insert_at(&mut self, off: usize, e: &Enc<'_>) {
        if off == 0 && self.head as usize >= e.len() {
            return self.push_front(e);
        }
        if off == self.bytes() && self.buf.len() + e.len() <= self.buf.capacity() {
            return self.push_back(e);
        }
        let mut tmp = Vec::with_capacity(e.len());
        e.extend(&mut tmp);
        let at = self.head as usize + off;
        self.buf.splice(at..at, tmp);
        self.count += 1;
    }

    /// Replace `len` bytes at `off` with the entry `e`.
    fn replace_at(&mut self, off: usize, len: usize, e: &Enc<'_>) {
        let mut tmp = Vec::with_capacity(e.len());
        e.extend(&mut tmp);
        let at = self.head as usize + off;
        self.buf.splice(at..at + len, tmp);
    }

    /// Remove `n` entries starting at byte offset `off`.
    fn remove_entries(&mut self, off: usize, n: usize) {
        let d = self.data();
        let mut end = off;
        for _ in 0..n {
            end += decode(d, end).1;
        }
        let h = self.head as usize;
        self.buf.drain(h + off..h + end);
        self.count -= n as u32;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
    }

    /// Split off the entries from index `i` on into a new chunk.
    fn split_off(&mut self, i: usize) -> Chunk {
        let off = self.offset_of(i);
        let h = self.head as usize;
        let tail = self.buf[h + off..].to_vec();
        self.buf.truncate(h + off);
        let moved = self.count - i as u32;
        self.count = i as u32;
        self.seal();
        Chunk {
            buf: tail,
            head: 0,
            count: moved,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// List

#[derive(Clone, Debug, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
    /// OBJECT ENCODING is "quicklist" (chunks bounded by the node limit) rather than "listpack".
    quick: bool,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        if self.quick {
            "quicklist"
        } else {
            "listpack"
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap bytes used (MEMORY USAGE).
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<List>()
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.chunks.iter().map(|c| c.buf.capacity()).sum::<usize>()
    }

    /// Number of chunks (nodes), for tests and DEBUG-style reports.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes a Redis listpack holding this whole list would take (meaningful for the listpack encoding).
    pub fn listpack_bytes(&self) -> usize {
        LP_OVERHEAD + self.chunks.iter().map(Chunk::bytes).sum::<usize>()
    }

    /// Call before adding `add_count` elements totalling `add_bytes` raw bytes: a listpack that would outgrow
    /// `list-max-listpack-size` (`fill`) becomes a quicklist (Redis 7.2's listTypeTryConvertListpack).
    pub fn prepare_grow(&mut self, fill: i64, add_bytes: usize, add_count: usize) {
        if !self.quick
            && exceeds_limit(
                fill,
                self.listpack_bytes().saturating_add(add_bytes),
                self.len + add_count,
            )
        {
            self.quick = true;
        }
    }

    /// Call after removing elements: a quicklist of a single node at most half the limit goes back to a
    /// listpack (Redis 7.2's listTypeTryConvertQuicklist with shrinking).
    pub fn shrunk(&mut self, fill: i64) {
        if !self.quick || self.chunks.len() > 1 {
            return;
        }
        let (sz, count) = node_limits(fill);
        let (sz, count) = (sz / 2, count / 2);
        if self.listpack_bytes() <= sz && self.len <= count {
            self.quick = false;
        }
    }

    /// Whether chunk `c` may take one more element of `sz` raw bytes.
    fn accepts(&self, c: &Chunk, fill: i64, sz: usize) -> bool {
        if !self.quick {
            return true;
        }
        !is_large(fill, sz)
            && !exceeds_limit(
                fill,
                c.bytes() + LP_OVERHEAD + sz + SIZE_ESTIMATE_OVERHEAD,
                c.count as usize + 1,
            )
    }

    pub fn push_back(&mut self, v: &[u8], fill: i64) {
        let e = Enc::new(v);
        let fits = match self.chunks.back() {
            Some(c) => self.accepts(c, fill, v.len()),
            None => false,
        };
        if !fits {
            if let Some(c) = self.chunks.back_mut() {
                c.seal();
            }
            if self.chunks.capacity() == 0 {
                self.chunks.reserve_exact(1);
            }
            self.chunks.push_back(Chunk::default());
        }
        if let Some(c) = self.chunks.back_mut() {
            c.push_back(&e);
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, v: &[u8], fill: i64) {
        let e = Enc::new(v);
        let fits = match self.chunks.front() {
            Some(c) => self.accepts(c, fill, v.len()),
            None => false,
        };
        if !fits {
            if let Some(c) = self.chunks.front_mut() {
                c.seal();
            }
            if self.chunks.capacity() == 0 {
                self.chunks.reserve_exact(1);
            }
            self.chunks.push_front(Chunk::default());
        }
        if let Some(c) = self.chunks.front_mut() {
            c.push_front(&e);
        }
        self.len += 1;
    }

    /// Remove and return the first element.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.front_mut()?;
        let v = c.pop_front();
        if c.count == 0 {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(v)
    }

    /// Remove and return the last element.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let c = self.chunks.back_mut()?;
        let v = c.pop_back();
        if c.count == 0 {
            self.chunks.pop_back();
        }
        self.len -= 1;
        Some(v)
    }

    /// Pop up to `n` elements from one end, in pop order.
    pub fn pop_n(&mut self, front: bool, n: usize) -> Vec<Vec<u8>> {
        let n = n.min(self.len);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let v = if front {
                self.pop_front()
            } else {
                self.pop_back()
            };
            match v {
                Some(v) => out.push(v),
                None => break,
            }
        }
        out
    }

    pub fn front(&self) -> Option<Elem<'_>> {
        self.chunks.front().map(Chunk::front)
    }

    pub fn back(&self) -> Option<Elem<'_>> {
        self.chunks.back().map(Chunk::back)
    }

    /// (chunk index, index inside it) of element `i` (< len), walking from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut rest = i;
            for (ci, c) in self.chunks.iter().enumerate() {
                if rest < c.count as usize {
                    return (ci, rest);
                }
                rest -= c.count as usize;
            }
        } else {
            let mut from_end = self.len - i; // >= 1
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_end <= c.count as usize {
                    return (ci, c.count as usize - from_end);
                }
                from_end -= c.count as usize;
            }
        }
        unreachable!("index within length")
    }

    pub fn get(&self, i: usize) -> Option<Elem<'_>> {
        if i >= self.len {
            return None;
        }
        let (ci, k) = self.locate(i);
        let c = &self.chunks[ci];
        Some(decode(c.data(), c.offset_of(k)).0)
    }

    /// Replace element `i`; false if out of range.
    pub fn set(&mut self, i: usize, v: &[u8], fill: i64) -> bool {
        if i >= self.len {
            return false;
        }
        self.prepare_grow(fill, v.len(), 1);
        let (ci, k) = self.locate(i);
        let e = Enc::new(v);
        let c = &mut self.chunks[ci];
        let off = c.offset_of(k);
        let old = decode(c.data(), off).1;
        c.replace_at(off, old, &e);
        self.fix_chunk(ci, fill);
        true
    }

    /// Insert `v` so that it becomes element `i` (0..=len).
    pub fn insert(&mut self, i: usize, v: &[u8], fill: i64) {
        if i == 0 {
            return self.push_front(v, fill);
        }
        if i >= self.len {
            return self.push_back(v, fill);
        }
        let (ci, k) = self.locate(i);
        let e = Enc::new(v);
        let c = &mut self.chunks[ci];
        let off = c.offset_of(k);
        c.insert_at(off, &e);
        self.len += 1;
        self.fix_chunk(ci, fill);
    }

    /// In the quicklist encoding, split chunk `ci` while it is over the node limit (halves; an element
    /// larger than a node ends up alone in its chunk).
    fn fix_chunk(&mut self, ci: usize, fill: i64) {
        if !self.quick {
            return;
        }
        let mut stack = vec![ci];
        while let Some(ci) = stack.pop() {
            let c = &self.chunks[ci];
            let cnt = c.count as usize;
            if cnt < 2 || !exceeds_limit(fill, c.bytes() + LP_OVERHEAD, cnt) {
                continue;
            }
            let right = self.chunks[ci].split_off(cnt / 2);
            self.chunks.insert(ci + 1, right);
            // Check the right half first (indexes below it do not move).
            stack.push(ci);
            stack.push(ci + 1);
        }
    }

    /// Index of the first element matching `needle`.
    pub fn find(&self, needle: &Needle<'_>) -> Option<usize> {
        self.iter().position(|e| needle.matches(e))
    }

    /// Remove up to `count` elements equal to `needle` (0 = all), from the head when `from_head`, else from
    /// the tail. Returns how many were removed.
    pub fn remove_matching(&mut self, needle: &Needle<'_>, count: usize, from_head: bool) -> usize {
        let limit = if count == 0 { usize::MAX } else { count };
        let mut removed = 0;
        let n = self.chunks.len();
        for step in 0..n {
            if removed >= limit {
                break;
            }
            let ci = if from_head { step } else { n - 1 - step };
            let c = &mut self.chunks[ci];
            // Offsets of matching entries in this chunk.
            let d = c.data();
            let mut hits: Vec<(usize, usize)> = Vec::new();
            let mut off = 0;
            while off < d.len() {
                let (e, sz) = decode(d, off);
                if needle.matches(e) {
                    hits.push((off, sz));
                }
                off += sz;
            }
            if hits.is_empty() {
                continue;
            }
            let take = (limit - removed).min(hits.len());
            let chosen = if from_head {
                &hits[..take]
            } else {
                &hits[hits.len() - take..]
            };
            // Rebuild the chunk's data without the chosen entries.
            let mut nb = Vec::with_capacity(d.len());
            let mut prev = 0;
            for &(o, sz) in chosen {
                nb.extend_from_slice(&d[prev..o]);
                prev = o + sz;
            }
            nb.extend_from_slice(&d[prev..]);
            c.buf = nb;
            c.head = 0;
            c.count -= take as u32;
            removed += take;
        }
        if removed > 0 {
            self.chunks.retain(|c| c.count > 0);
            self.len -= removed;
        }
        removed
    }

    /// Keep only elements `start..=stop` (already clamped: start <= stop < len), or clear if `None`.
    pub fn retain_range(&mut self, keep: Option<(usize, usize)>) {
        let Some((start, stop)) = keep else {
            self.chunks.clear();
            self.len = 0;
            return;
        };
        let mut ltrim = start;
        let mut rtrim = self.len - 1 - stop;
        while ltrim > 0 {
            let Some(c) = self.chunks.front_mut() else {
                break;
            };
            let cnt = c.count as usize;
            if cnt <= ltrim {
                self.chunks.pop_front();
                ltrim -= cnt;
            } else {
                c.remove_entries(0, ltrim);
                ltrim = 0;
            }
        }
        while rtrim > 0 {
            let Some(c) = self.chunks.back_mut() else {
                break;
            };
            let cnt = c.count as usize;
            if cnt <= rtrim {
                self.chunks.pop_back();
                rtrim -= cnt;
            } else {
                let off = c.offset_of(cnt - rtrim);
                c.remove_entries(off, rtrim);
                rtrim = 0;
            }
        }
        self.len = stop - start + 1;
    }

    /// All elements, head to tail (double-ended).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            list: self,
            fc: 0,
            foff: 0,
            bc: self.chunks.len(),
            boff: 0,
            left: self.len,
        }
    }

    /// `count` elements starting at index `start` (start + count <= len), head to tail.
    pub fn range(&self, start: usize, count: usize) -> Iter<'_> {
        if count == 0 || start >= self.len {
            return Iter {
                list: self,
                fc: 0,
                foff: 0,
                bc: 0,
                boff: 0,
                left: 0,
            };
        }
        let (ci, k) = self.locate(start);
        Iter {
            list: self,
            fc: ci,
            foff: self.chunks[ci].offset_of(k),
            bc: self.chunks.len(),
            boff: 0,
            left: count.min(self.len - start),
        }
    }
}

/// Iterator over a list's elements. Going backwards, `bc`/`boff` point just past the next element to
/// yield (`bc == chunks.len()` means the end of the list).
pub struct Iter<'a> {
    list: &'a List,
    fc: usize,
    foff: usize,
    bc: usize,
    boff: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        if self.left == 0 {
            return None;
        }
        let chunks = &self.list.chunks;
        while self.foff >= chunks[self.fc].bytes() {
            self.fc += 1;
            self.foff = 0;
        }
        let (e, sz) = decode(chunks[self.fc].data(), self.foff);
        self.foff += sz;
        self.left -= 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<Elem<'a>> {
        if self.left == 0 {
            return None;
        }
        let chunks = &self.list.chunks;
        if self.bc == chunks.len() {
            self.bc -= 1;
            self.boff = chunks[self.bc].bytes();
        }
        while self.boff == 0 {
            self.bc -= 1;
            self.boff = chunks[self.bc].bytes();
        }
        let d = chunks[self.bc].data();
        let s = prev_start(d, self.boff);
        self.boff = s;
        self.left -= 1;
        Some(decode(d, s).0)
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(Elem::to_vec).collect()
    }

    fn check(l: &List, m: &VecDeque<Vec<u8>>) {
        let fwd = collect(l);
        let want: Vec<Vec<u8>> = m.iter().cloned().collect();
        assert_eq!(fwd, want);
        let mut rev: Vec<Vec<u8>> = l.iter().rev().map(Elem::to_vec).collect();
        rev.reverse();
        assert_eq!(rev, want);
        assert_eq!(l.len(), m.len());
        assert_eq!(
            l.chunks.iter().map(|c| c.count as usize).sum::<usize>(),
            m.len()
        );
        assert!(l.chunks.iter().all(|c| c.count > 0));
    }

    #[test]
    fn encodings_round_trip() {
        let samples: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"0".to_vec(),
            b"127".to_vec(),
            b"128".to_vec(),
            b"-1".to_vec(),
            b"-4096".to_vec(),
            b"4095".to_vec(),
            b"4096".to_vec(),
            b"-4097".to_vec(),
            b"32767".to_vec(),
            b"-32768".to_vec(),
            b"32768".to_vec(),
            b"8388607".to_vec(),
            b"-8388608".to_vec(),
            b"8388608".to_vec(),
            b"2147483647".to_vec(),
            b"-2147483648".to_vec(),
            b"2147483648".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"9223372036854775808".to_vec(),
            b"-0".to_vec(),
            b"01".to_vec(),
            b"+1".to_vec(),
            b" 1".to_vec(),
            vec![b'x'; 63],
            vec![b'x'; 64],
            vec![b'y'; 4095],
            vec![b'z'; 4096],
            vec![b'w'; 20000],
        ];
        let mut l = List::new();
        for s in &samples {
            l.push_back(s, -2);
        }
        let got = collect(&l);
        assert_eq!(got, samples);
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(l.get(i).unwrap().to_vec(), *s);
            assert_eq!(l.get(i).unwrap().len(), s.len());
        }
        let mut rev: Vec<_> = l.iter().rev().map(Elem::to_vec).collect();
        rev.reverse();
        assert_eq!(rev, samples);
    }

    #[test]
    fn listpack_sizes_match_redis() {
        // Entry sizes as a Redis listpack stores them.
        let mut l = List::new();
        l.push_back(b"a", -2); // 6-bit string: 1 + 1 + 1
        assert_eq!(l.listpack_bytes(), 7 + 3);
        l.push_back(b"100", -2); // 7-bit uint: 1 + 1
        assert_eq!(l.listpack_bytes(), 7 + 3 + 2);
        l.push_back(b"1000", -2); // 13-bit int: 2 + 1
        assert_eq!(l.listpack_bytes(), 7 + 3 + 2 + 3);
        l.push_back(&[b'x'; 100], -2); // 12-bit string: 2 + 100 + 1
        assert_eq!(l.listpack_bytes(), 7 + 3 + 2 + 3 + 103);
        l.push_back(&[b'x'; 200], -2); // 12-bit string: 2 + 200 + 2 (backlen of 202)
        assert_eq!(l.listpack_bytes(), 7 + 3 + 2 + 3 + 103 + 204);
    }

    #[test]
    fn conversion_thresholds() {
        let mut l = List::new();
        // 8 KB limit: 7 + 70 * 103 bytes of listpack, plus 100 raw bytes, is within 8192.
        for _ in 0..70 {
            l.prepare_grow(-2, 100, 1);
            l.push_back(&[b'a'; 100], -2);
        }
        assert_eq!(l.encoding(), "listpack");
        l.prepare_grow(-2, 1000, 1);
        l.push_back(&[b'a'; 1000], -2);
        assert_eq!(l.encoding(), "quicklist");
        for _ in 0..1000 {
            l.push_back(&[b'b'; 100], -2);
        }
        assert!(l.chunk_count() > 10);
        assert!(l
            .chunks
            .iter()
            .all(|c| c.bytes() + LP_OVERHEAD <= 8192 + 1200));
        while l.len() > 10 {
            l.pop_front();
        }
        l.shrunk(-2);
        assert_eq!(l.encoding(), "listpack");
        // Count-limited nodes.
        let mut l = List::new();
        for i in 0..5 {
            l.prepare_grow(4, 1, 1);
            l.push_back(format!("{i}").as_bytes(), 4);
        }
        assert_eq!(l.encoding(), "quicklist");
        for i in 0..20 {
            l.push_back(format!("{i}").as_bytes(), 4);
        }
        assert!(l.chunks.iter().all(|c| c.count <= 5));
        // A large element gets a chunk of its own.
        let mut l = List::new();
        l.prepare_grow(-2, 3, 1);
        l.push_back(b"abc", -2);
        l.prepare_grow(-2, 10000, 1);
        l.push_back(&[b'x'; 10000], -2);
        l.push_back(b"def", -2);
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.chunk_count(), 3);
    }

    #[test]
    fn queue_pattern_does_not_grow() {
        let mut l = List::new();
        for i in 0..100_000u32 {
            l.push_back(format!("item{i}").as_bytes(), -2);
            if i >= 10 {
                l.pop_front();
            }
        }
        assert_eq!(l.len(), 10);
        assert!(l.mem_usage() < 4096, "{}", l.mem_usage());
        let mut l = List::new();
        for i in 0..100_000u32 {
            l.push_front(format!("item{i}").as_bytes(), -2);
            if i >= 10 {
                l.pop_back();
            }
        }
        assert!(l.mem_usage() < 4096, "{}", l.mem_usage());
    }

    #[test]
    fn memory_per_element() {
        let mut l = List::new();
        l.quick = true;
        for i in 0..100_000u32 {
            l.push_front(format!("element:{i:08}").as_bytes(), -2);
        }
        // 16-byte elements: listpack entry = 18 bytes.
        let per = l.mem_usage() as f64 / 100_000.0;
        assert!(per < 20.0, "{per}");
        let mut l = List::new();
        l.quick = true;
        for i in 0..100_000u32 {
            l.push_back(format!("element:{i:08}").as_bytes(), -2);
        }
        let per = l.mem_usage() as f64 / 100_000.0;
        assert!(per < 20.0, "{per}");
    }

    #[derive(Clone, Debug)]
    enum Op {
        PushFront(Vec<u8>),
        PushBack(Vec<u8>),
        PopFront,
        PopBack,
        Insert(usize, Vec<u8>),
        Set(usize, Vec<u8>),
        Rem(Vec<u8>, i64),
        Trim(usize, usize),
        Get(usize),
        Range(usize, usize),
        PopN(bool, usize),
    }

    fn val() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::sample::select(vec![
                b"a".to_vec(), b"b".to_vec(), b"1".to_vec(), b"-5000".to_vec(), b"70000".to_vec(),
                b"".to_vec(), b"01".to_vec()
            ]),
            2 => any::<i64>().prop_map(|i| i.to_string().into_bytes()),
            2 => prop::collection::vec(any::<u8>(), 0..80),
            1 => (0usize..3000).prop_map(|n| vec![b'q'; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => val().prop_map(Op::PushFront),
            4 => val().prop_map(Op::PushBack),
            2 => Just(Op::PopFront),
            2 => Just(Op::PopBack),
            2 => (any::<usize>(), val()).prop_map(|(i, v)| Op::Insert(i, v)),
            2 => (any::<usize>(), val()).prop_map(|(i, v)| Op::Set(i, v)),
            1 => (val(), -3i64..3).prop_map(|(v, c)| Op::Rem(v, c)),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Trim(a, b)),
            2 => any::<usize>().prop_map(Op::Get),
            1 => (any::<usize>(), 0usize..50).prop_map(|(a, b)| Op::Range(a, b)),
            1 => (any::<bool>(), 0usize..5).prop_map(|(f, n)| Op::PopN(f, n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn behaves_like_vecdeque(ops in prop::collection::vec(op(), 1..200), fill in prop::sample::select(vec![-2i64, -1, 2, 5, 0])) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushFront(v) => { l.prepare_grow(fill, v.len(), 1); l.push_front(&v, fill); m.push_front(v); }
                    Op::PushBack(v) => { l.prepare_grow(fill, v.len(), 1); l.push_back(&v, fill); m.push_back(v); }
                    Op::PopFront => { prop_assert_eq!(l.pop_front(), m.pop_front()); l.shrunk(fill); }
                    Op::PopBack => { prop_assert_eq!(l.pop_back(), m.pop_back()); l.shrunk(fill); }
                    Op::PopN(f, n) => {
                        let got = l.pop_n(f, n);
                        let want: Vec<Vec<u8>> = (0..n.min(m.len())).filter_map(|_| if f { m.pop_front() } else { m.pop_back() }).collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Insert(i, v) => {
                        let i = i % (m.len() + 1);
                        l.prepare_grow(fill, v.len(), 1);
                        l.insert(i, &v, fill);
                        m.insert(i, v);
                    }
                    Op::Set(i, v) => {
                        if m.is_empty() { prop_assert!(!l.set(i, &v, fill)); continue; }
                        let i = i % m.len();
                        prop_assert!(l.set(i, &v, fill));
                        m[i] = v;
                        l.shrunk(fill);
                    }
                    Op::Rem(v, c) => {
                        let needle = Needle::new(&v);
                        let n = l.remove_matching(&needle, c.unsigned_abs() as usize, c >= 0);
                        let limit = if c == 0 { usize::MAX } else { c.unsigned_abs() as usize };
                        let mut removed = 0;
                        if c >= 0 {
                            let mut out = VecDeque::new();
                            for x in m.drain(..) { if x == v && removed < limit { removed += 1 } else { out.push_back(x) } }
                            m = out;
                        } else {
                            let mut out = VecDeque::new();
                            for x in m.drain(..).rev() { if x == v && removed < limit { removed += 1 } else { out.push_front(x) } }
                            m = out;
                        }
                        prop_assert_eq!(n, removed);
                        l.shrunk(fill);
                    }
                    Op::Trim(a, b) => {
                        if m.is_empty() { continue; }
                        let a = a % m.len();
                        let b = b % m.len();
                        if a > b { l.retain_range(None); m.clear(); }
                        else { l.retain_range(Some((a, b))); m = m.range(a..=b).cloned().collect(); }
                        l.shrunk(fill);
                    }
                    Op::Get(i) => {
                        if m.is_empty() { prop_assert!(l.get(i).is_none()); continue; }
                        let i = i % m.len();
                        prop_assert_eq!(l.get(i).map(Elem::to_vec), Some(m[i].clone()));
                        prop_assert!(l.get(m.len()).is_none());
                    }
                    Op::Range(a, n) => {
                        if m.is_empty() { prop_assert_eq!(l.range(a, n).count(), 0); continue; }
                        let a = a % m.len();
                        let n = n.min(m.len() - a);
                        let got: Vec<Vec<u8>> = l.range(a, n).map(Elem::to_vec).collect();
                        let want: Vec<Vec<u8>> = m.range(a..a + n).cloned().collect();
                        prop_assert_eq!(got, want);
                    }
                }
                check(&l, &m);
                if let Some(v) = m.front() { prop_assert_eq!(l.front().map(Elem::to_vec), Some(v.clone())); }
                if let Some(v) = m.back() { prop_assert_eq!(l.back().map(Elem::to_vec), Some(v.clone())); }
                if !l.quick { prop_assert!(l.chunk_count() <= 1); }
            }
        }
    }
}
