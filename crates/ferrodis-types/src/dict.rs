//! Shared building blocks for collection types.
//!
//! # [`Dict`]: a byte-keyed hash table with Redis's SCAN guarantee
//! Elements live densely in a paged slot array (one slot per element: the key bytes, optional "tail" bytes in
//! the same allocation, and a generic value `V`); buckets are `u32` slot indices (+1, 0 = empty) chained through
//! the slots. Bucket arrays are powers of two and resize incrementally as the keyspace's table does (two arrays
//! while a resize is in progress, one bucket moved per write and more through [`Dict::rehash`]); the slot
//! array grows in fixed pages, so no operation ever copies the whole table. Removal swaps the last slot into the
//! hole, which keeps slots dense: a uniformly random element is one random index ([`Dict::at`]).
//!
//! [`Dict::scan`] is Redis's reverse-binary cursor scan: every element present for the whole iteration is
//! returned at least once, across growth and shrinking between calls.
//!
//! Per element: a 24-byte slot (for `V = ()`), one allocation of key + tail bytes, and 4-8 bytes of buckets.
//! A hash stores field bytes as the key and value bytes as the tail; a set uses `Dict<()>`; a sorted set
//! `Dict<f64>`.
//!
//! # [`Packed`]: a listpack-like byte list
//! Entries are `varint(len) bytes` back to back in one `Vec<u8>` (1 byte of overhead for entries under 128
//! bytes), in insertion order, searched linearly: Redis's listpack for small collections.

use std::hash::BuildHasher;

const PAGE_BITS: u32 = 12;
const PAGE: usize = 1 << PAGE_BITS;
const MIN_BUCKETS: usize = 4;

struct Slot<V> {
    /// Key bytes followed by tail bytes.
    data: Box<[u8]>,
    klen: u32,
    /// Next slot in the bucket chain (index + 1; 0 = end).
    next: u32,
    val: V,
}

impl<V> Slot<V> {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.data[..self.klen as usize]
    }
    #[inline]
    fn tail(&self) -> &[u8] {
        &self.data[self.klen as usize..]
    }
}

fn join(key: &[u8], tail: &[u8]) -> Box<[u8]> {
    let mut v = Vec::with_capacity(key.len() + tail.len());
    v.extend_from_slice(key);
    v.extend_from_slice(tail);
    v.into_boxed_slice()
}

/// Dense slot storage in pages of `PAGE` slots (every page but the last is full).
struct Slots<V> {
    pages: Vec<Vec<Slot<V>>>,
    len: usize,
}

impl<V> Slots<V> {
    fn new() -> Self {
        Slots {
            pages: Vec::new(),
            len: 0,
        }
    }
    #[inline]
    fn get(&self, i: usize) -> &Slot<V> {
        &self.pages[i >> PAGE_BITS][i & (PAGE - 1)]
    }
    #[inline]
    fn get_mut(&mut self, i: usize) -> &mut Slot<V> {
        &mut self.pages[i >> PAGE_BITS][i & (PAGE - 1)]
    }
    fn push(&mut self, s: Slot<V>) {
        match self.pages.last_mut() {
            Some(p) if p.len() < PAGE => p.push(s),
            _ => {
                let mut p = Vec::with_capacity(if self.pages.is_empty() { 4 } else { PAGE });
                p.push(s);
                self.pages.push(p);
            }
        }
        self.len += 1;
    }
    fn pop(&mut self) -> Option<Slot<V>> {
        let single = self.pages.len() == 1;
        let p = self.pages.last_mut()?;
        let s = p.pop();
        if p.is_empty() {
            self.pages.pop();
        } else if single && p.capacity() > 16 && p.len() * 4 < p.capacity() {
            p.shrink_to(p.len() * 2);
        }
        self.len -= 1;
        s
    }
    fn iter(&self) -> impl Iterator<Item = &Slot<V>> {
        self.pages.iter().flat_map(|p| p.iter())
    }
}

/// A hash table keyed by byte strings; see the module documentation.
pub struct Dict<V> {
    slots: Slots<V>,
    /// `tabs[0]` is the current bucket array; while resizing, chains move from `tabs[0]` to `tabs[1]`.
    tabs: [Vec<u32>; 2],
    rehash_idx: usize,
    hasher: foldhash::fast::FixedState,
}

impl<V: Clone> Clone for Dict<V> {
    fn clone(&self) -> Self {
        let mut d = Dict::with_capacity(self.len());
        for (k, t, v) in self.iter() {
            d.insert_new(k, t, v.clone());
        }
        d
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Dict<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|(k, t, v)| (String::from_utf8_lossy(k), (String::from_utf8_lossy(t), v))),
            )
            .finish()
    }
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Dict<V> {
    pub fn new() -> Self {
        Dict {
            slots: Slots::new(),
            tabs: [Vec::new(), Vec::new()],
            rehash_idx: 0,
            hasher: foldhash::fast::FixedState::with_seed(process_seed()),
        }
    }

    /// A dict with room for `n` elements without a resize.
    pub fn with_capacity(n: usize) -> Self {
        let mut d = Self::new();
        if n > 0 {
            d.tabs[0] = vec![0; n.next_power_of_two().max(MIN_BUCKETS)];
        }
        d
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.len == 0
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn rehashing(&self) -> bool {
        !self.tabs[1].is_empty()
    }

    /// Total bucket count (both arrays while resizing).
    pub fn buckets(&self) -> usize {
        self.tabs[0].len() + self.tabs[1].len()
    }

    /// Approximate heap bytes used (slots, buckets, key/tail allocations rounded to 8).
    pub fn mem_usage(&self) -> usize {
        let slots: usize = self.slots.pages.iter().map(|p| p.capacity()).sum::<usize>()
            * std::mem::size_of::<Slot<V>>();
        let data: usize = self.slots.iter().map(|s| (s.data.len() + 7) & !7).sum();
        slots + data + self.buckets() * 4
    }

    fn find_idx_h(&self, h: u64, key: &[u8]) -> Option<usize> {
        for tab in &self.tabs {
            if tab.is_empty() {
                break;
            }
            let mut cur = tab[(h as usize) & (tab.len() - 1)];
            while cur != 0 {
                let s = self.slots.get(cur as usize - 1);
                if s.key() == key {
                    return Some(cur as usize - 1);
                }
                cur = s.next;
            }
        }
        None
    }

    /// Slot index of `key`, if present (valid until the next insert or remove).
    pub fn find_index(&self, key: &[u8]) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        self.find_idx_h(self.hash(key), key)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.find_index(key).is_some()
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.find_index(key).map(|i| &self.slots.get(i).val)
    }

    /// The tail bytes stored with `key` (a hash field's value).
    pub fn get_tail(&self, key: &[u8]) -> Option<&[u8]> {
        self.find_index(key).map(|i| self.slots.get(i).tail())
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.rehash_step();
        let i = self.find_index(key)?;
        Some(&mut self.slots.get_mut(i).val)
    }

    /// The element at slot index `i < len()`: (key, tail, value). Slot order is insertion order, except that
    /// a removal moves the last element into the hole. A uniformly random element is `at(rand % len)`.
    pub fn at(&self, i: usize) -> (&[u8], &[u8], &V) {
        let s = self.slots.get(i);
        (s.key(), s.tail(), &s.val)
    }

    /// Insert or replace `key` with empty tail; returns the old value.
    pub fn insert(&mut self, key: &[u8], val: V) -> Option<V> {
        self.insert_tail(key, &[], val).map(|(_, v)| v)
    }

    /// Insert or replace `key` with `tail` bytes and `val`; returns the old (tail, value).
    pub fn insert_tail(&mut self, key: &[u8], tail: &[u8], val: V) -> Option<(Box<[u8]>, V)> {
        self.rehash_step();
        if let Some(i) = self.find_index(key) {
            let s = self.slots.get_mut(i);
            let old_data = if s.tail() != tail {
                std::mem::replace(&mut s.data, join(key, tail))
            } else {
                s.data.clone()
            };
            let old_val = std::mem::replace(&mut s.val, val);
            let klen = key.len();
            let mut old_tail = old_data.into_vec();
            old_tail.drain(..klen);
            return Some((old_tail.into_boxed_slice(), old_val));
        }
        self.insert_new(key, tail, val);
        None
    }

    /// Insert a key known to be absent.
    pub fn insert_new(&mut self, key: &[u8], tail: &[u8], val: V) {
        debug_assert!(self.find_index(key).is_none());
        assert!(self.len() < u32::MAX as usize - 1, "dict full");
        self.rehash_step();
        self.grow_if_needed();
        let h = self.hash(key);
        let t = usize::from(self.rehashing());
        let idx = self.slots.len;
        let tab = &mut self.tabs[t];
        let b = (h as usize) & (tab.len() - 1);
        let next = tab[b];
        tab[b] = idx as u32 + 1;
        self.slots.push(Slot {
            data: join(key, tail),
            klen: key.len() as u32,
            next,
            val,
        });
    }

    /// Replace the tail bytes of an existing key; false if absent.
    pub fn set_tail(&mut self, key: &[u8], tail: &[u8]) -> bool {
        match self.find_index(key) {
            Some(i) => {
                self.slots.get_mut(i).data = join(key, tail);
                true
            }
            None => false,
        }
    }

    /// Make the link that points at slot `from` (in the chain for hash `h`) point at `to` instead.
    fn relink(&mut self, h: u64, from: u32, to: u32) {
        for t in 0..2 {
            if self.tabs[t].is_empty() {
                break;
            }
            let b = (h as usize) & (self.tabs[t].len() - 1);
            let mut cur = self.tabs[t][b];
            if cur == from {
                self.tabs[t][b] = to;
                return;
            }
            while cur != 0 {
                let s = self.slots.get_mut(cur as usize - 1);
                if s.next == from {
                    s.next = to;
                    return;
                }
                cur = s.next;
            }
        }
        debug_assert!(false, "dict: link not found");
    }

    /// Remove `key`; returns (tail, value).
    pub fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let h = self.hash(key);
        let i = self.find_idx_h(h, key)?;
        let (data, val) = self.remove_at(h, i);
        let mut v = data.into_vec();
        v.drain(..key.len());
        self.shrink_if_needed();
        Some((v.into_boxed_slice(), val))
    }

    fn remove_at(&mut self, h: u64, i: usize) -> (Box<[u8]>, V) {
        let next = self.slots.get(i).next;
        self.relink(h, i as u32 + 1, next);
        let last = self.slots.len - 1;
        if i != last {
            let hl = self.hash(self.slots.get(last).key());
            self.relink(hl, last as u32 + 1, i as u32 + 1);
        }
        let mut moved = self.slots.pop().expect("non-empty");
        if i != last {
            std::mem::swap(self.slots.get_mut(i), &mut moved);
        }
        (moved.data, moved.val)
    }

    /// Remove the element at slot index `i` (e.g. a random one); returns (key, tail, value).
    pub fn remove_index(&mut self, i: usize) -> (Vec<u8>, Vec<u8>, V) {
        let key = self.slots.get(i).key().to_vec();
        let (tail, v) = self.remove(&key).expect("index in range");
        (key, tail.into_vec(), v)
    }

    /// Every element as (key, tail, value), in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], &V)> {
        self.slots.iter().map(|s| (s.key(), s.tail(), &s.val))
    }

    /// Mutable values, in slot order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = (&[u8], &mut V)> {
        self.slots.pages.iter_mut().flat_map(|p| {
            p.iter_mut().map(|s| {
                let k = &s.data[..s.klen as usize];
                (k, &mut s.val)
            })
        })
    }

    fn grow_if_needed(&mut self) {
        if self.rehashing() {
            return;
        }
        let size = self.tabs[0].len();
        if size == 0 {
            self.tabs[0] = vec![0; MIN_BUCKETS];
        } else if self.len() >= size {
            self.start_resize((self.len() + 1).next_power_of_two());
        }
    }

    fn shrink_if_needed(&mut self) {
        if self.rehashing() {
            return;
        }
        let size = self.tabs[0].len();
        if self.is_empty() && size > 0 {
            self.tabs[0] = Vec::new();
        } else if size > MIN_BUCKETS && self.len() * 8 < size {
            self.start_resize(self.len().next_power_of_two().max(MIN_BUCKETS));
        }
    }

    fn start_resize(&mut self, n: usize) {
        if n != self.tabs[0].len() {
            self.tabs[1] = vec![0; n];
            self.rehash_idx = 0;
        }
    }

    #[inline]
    fn rehash_step(&mut self) {
        if self.rehashing() {
            self.rehash(1);
        }
    }

    /// Move up to `n` non-empty buckets to the new array (starting a due shrink first); returns true while a
    /// resize is in progress.
    pub fn rehash(&mut self, n: usize) -> bool {
        if !self.rehashing() {
            self.shrink_if_needed();
            if !self.rehashing() {
                return false;
            }
        }
        let mut empty_visits = n * 10;
        let mut moved = 0;
        let mask = self.tabs[1].len() - 1;
        while moved < n && self.rehash_idx < self.tabs[0].len() {
            let mut cur = std::mem::take(&mut self.tabs[0][self.rehash_idx]);
            self.rehash_idx += 1;
            if cur == 0 {
                empty_visits -= 1;
                if empty_visits == 0 {
                    break;
                }
                continue;
            }
            while cur != 0 {
                let i = cur as usize - 1;
                let h = self.hasher.hash_one(self.slots.get(i).key());
                let b = (h as usize) & mask;
                let s = self.slots.get_mut(i);
                let next = s.next;
                s.next = self.tabs[1][b];
                self.tabs[1][b] = cur;
                cur = next;
            }
            moved += 1;
        }
        if self.rehash_idx >= self.tabs[0].len() {
            self.tabs[0] = std::mem::take(&mut self.tabs[1]);
            self.rehash_idx = 0;
            return false;
        }
        true
    }

    fn visit(&self, tab: &[u32], idx: u64, f: &mut impl FnMut(&[u8], &[u8], &V)) {
        let mut cur = tab[idx as usize];
        while cur != 0 {
            let s = self.slots.get(cur as usize - 1);
            f(s.key(), s.tail(), &s.val);
            cur = s.next;
        }
    }

    /// Visit the elements of the bucket(s) at `cursor` and return the next cursor (0 = done): Redis's
    /// dictScan, with the same guarantee (an element present for the whole scan is visited at least once).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8], &V)) -> u64 {
        if self.is_empty() || self.tabs[0].is_empty() {
            return 0;
        }
        let mut v = cursor;
        if !self.rehashing() {
            let m0 = (self.tabs[0].len() - 1) as u64;
            self.visit(&self.tabs[0], v & m0, &mut f);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, large) = if self.tabs[0].len() <= self.tabs[1].len() {
                (&self.tabs[0], &self.tabs[1])
            } else {
                (&self.tabs[1], &self.tabs[0])
            };
            let m0 = (small.len() - 1) as u64;
            let m1 = (large.len() - 1) as u64;
            self.visit(small, v & m0, &mut f);
            loop {
                self.visit(large, v & m1, &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }
}

/// `count` distinct indices in `0..n` (count <= n), uniformly chosen, using `r` for randomness: a partial
/// Fisher-Yates shuffle when `count` is a large share of `n`, rejection sampling otherwise (no O(n) memory).
pub fn distinct_indices(n: usize, count: usize, mut r: impl FnMut() -> u64) -> Vec<usize> {
    let count = count.min(n);
    if count * 3 > n {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..count {
            let j = i + (r() as usize) % (n - i);
            idx.swap(i, j);
        }
        idx.truncate(count);
        idx
    } else {
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let i = (r() as usize) % n;
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    }
}

fn process_seed() -> u64 {
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(rand::random)
}

// ---------------------------------------------------------------------------------------------------------
// Packed: a listpack-like list of byte strings.

/// A compact list of byte strings in one exact-size heap block, in insertion order: Redis's listpack.
///
/// The value is one thin pointer (8 bytes) to `[len|tag: u32][count: u16][entries]`, where each entry is
/// `varint(len) bytes`. `len` is the byte length of the entries (30 bits, at most [`Packed::MAX_BYTES`]);
/// `tag` is 2 bits the owner may use (e.g. listpack vs listpackex, or an intset's width); `count` is the
/// number of entries, or `u16::MAX` when there are too many to say (then it is counted by a scan, as a Redis
/// listpack does). The block is reallocated to its exact size on every write, as Redis does with listpacks
/// (small collections only: the big encodings live elsewhere).
pub struct Packed {
    ptr: NonNull<u8>,
}

use std::ptr::NonNull;

const HDR: usize = 6;
const COUNT_UNKNOWN: u16 = u16::MAX;
const LEN_MASK: u32 = (1 << 30) - 1;

// SAFETY: a Packed uniquely owns its block, as a Box<[u8]> does.
unsafe impl Send for Packed {}
unsafe impl Sync for Packed {}

#[inline]
fn block_layout(len: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(HDR + len, 2).expect("packed block layout")
}

impl Default for Packed {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Packed {
    fn clone(&self) -> Self {
        let mut p = Packed::with_len(self.bytes());
        p.header_mut().copy_from_slice(self.header());
        p.data_mut().copy_from_slice(self.data());
        p
    }
}

impl PartialEq for Packed {
    fn eq(&self, o: &Self) -> bool {
        self.tag() == o.tag() && self.data() == o.data()
    }
}

impl Eq for Packed {}

impl Drop for Packed {
    fn drop(&mut self) {
        // SAFETY: the block was allocated with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), block_layout(self.bytes())) }
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

#[inline]
fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

impl Packed {
    /// Largest number of entry bytes a Packed holds (Redis's listpack safety limit is 1 GB too): owners
    /// convert to their big encoding before [`Packed::fits`] fails.
    pub const MAX_BYTES: usize = LEN_MASK as usize;

    pub fn new() -> Self {
        Self::with_len(0)
    }

    /// A block of `len` zeroed entry bytes, tag 0, count 0.
    fn with_len(len: usize) -> Self {
        assert!(len <= Self::MAX_BYTES, "packed buffer over 1 GB");
        let layout = block_layout(len);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        let mut p = Packed { ptr };
        p.header_mut()[..4].copy_from_slice(&(len as u32).to_le_bytes());
        p
    }

    #[inline]
    fn header(&self) -> &[u8] {
        // SAFETY: every block starts with HDR header bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), HDR) }
    }

    #[inline]
    fn header_mut(&mut self) -> &mut [u8] {
        // SAFETY: as header(); &mut self gives unique access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), HDR) }
    }

    #[inline]
    fn word(&self) -> u32 {
        let h = self.header();
        u32::from_le_bytes([h[0], h[1], h[2], h[3]])
    }

    /// The owner's 2-bit tag.
    #[inline]
    pub fn tag(&self) -> u8 {
        (self.word() >> 30) as u8
    }

    pub fn set_tag(&mut self, tag: u8) {
        let w = (self.word() & LEN_MASK) | ((tag as u32 & 3) << 30);
        self.header_mut()[..4].copy_from_slice(&w.to_le_bytes());
    }

    /// The raw entry bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the block holds HDR + bytes() bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(HDR), self.bytes()) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let n = self.bytes();
        // SAFETY: as data(); &mut self gives unique access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(HDR), n) }
    }

    /// Reallocate to `len` entry bytes (new bytes are unspecified until written).
    fn resize(&mut self, len: usize) {
        let old = self.bytes();
        if len == old {
            return;
        }
        assert!(len <= Self::MAX_BYTES, "packed buffer over 1 GB");
        // SAFETY: the block was allocated with block_layout(old); the new size is non-zero.
        let raw = unsafe { std::alloc::realloc(self.ptr.as_ptr(), block_layout(old), HDR + len) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(block_layout(len))
        };
        self.ptr = ptr;
        let w = (len as u32) | (self.word() & !LEN_MASK);
        self.header_mut()[..4].copy_from_slice(&w.to_le_bytes());
    }

    /// Replace the raw bytes `range` with `with` (the entry count is the caller's business).
    pub fn raw_splice(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        let old = self.bytes();
        let (a, b) = (range.start, range.end);
        assert!(a <= b && b <= old, "packed splice out of range");
        let new = old - (b - a) + with.len();
        if new > old {
            self.resize(new);
            self.data_mut().copy_within(b..old, a + with.len());
        } else {
            self.data_mut().copy_within(b..old, a + with.len());
        }
        self.data_mut()[a..a + with.len()].copy_from_slice(with);
        if new < old {
            self.resize(new);
        }
    }

    /// Whether `extra` more bytes still fit.
    #[inline]
    pub fn fits(&self, extra: usize) -> bool {
        self.bytes().saturating_add(extra) <= Self::MAX_BYTES
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        let h = self.header();
        let c = u16::from_le_bytes([h[4], h[5]]);
        if c != COUNT_UNKNOWN {
            c as usize
        } else {
            self.iter().count()
        }
    }

    fn set_count(&mut self, n: usize) {
        let c = u16::try_from(n).unwrap_or(COUNT_UNKNOWN);
        self.header_mut()[4..6].copy_from_slice(&c.to_le_bytes());
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes() == 0
    }

    /// Bytes used by the entries.
    #[inline]
    pub fn bytes(&self) -> usize {
        (self.word() & LEN_MASK) as usize
    }

    /// Decode the entry at byte offset `off`: (entry bytes, offset of the next entry).
    #[inline]
    pub fn entry_at(&self, off: usize) -> (&[u8], usize) {
        let buf = self.data();
        let mut n = 0usize;
        let mut shift = 0;
        let mut p = off;
        loop {
            let b = buf[p];
            p += 1;
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        (&buf[p..p + n], p + n)
    }

    /// Entries in order.
    pub fn iter(&self) -> PackedIter<'_> {
        PackedIter { p: self, off: 0 }
    }

    /// Entries with their byte offsets.
    pub fn iter_offsets(&self) -> impl Iterator<Item = (usize, &[u8])> {
        let mut off = 0;
        let end = self.bytes();
        std::iter::from_fn(move || {
            if off >= end {
                return None;
            }
            let (e, next) = self.entry_at(off);
            let at = off;
            off = next;
            Some((at, e))
        })
    }

    /// Byte offset of the first entry equal to `x` among entries 0, step, 2*step, ... (step 2 searches the
    /// fields of a field/value list).
    pub fn find(&self, x: &[u8], step: usize) -> Option<usize> {
        let mut off = 0;
        let mut k = 0usize;
        let end = self.bytes();
        while off < end {
            let (e, next) = self.entry_at(off);
            if k.is_multiple_of(step) && e == x {
                return Some(off);
            }
            off = next;
            k += 1;
        }
        None
    }

    pub fn push(&mut self, x: &[u8]) {
        let n = self.len();
        let old = self.bytes();
        let vl = varint_len(x.len());
        self.resize(old + vl + x.len());
        let mut hdr = Vec::with_capacity(vl);
        put_varint(&mut hdr, x.len());
        let d = self.data_mut();
        d[old..old + vl].copy_from_slice(&hdr);
        d[old + vl..].copy_from_slice(x);
        self.set_count(n + 1);
    }

    /// Replace the entry at byte offset `off` with `x`.
    pub fn replace(&mut self, off: usize, x: &[u8]) {
        let (_, end) = self.entry_at(off);
        let mut enc = Vec::with_capacity(varint_len(x.len()) + x.len());
        put_varint(&mut enc, x.len());
        enc.extend_from_slice(x);
        self.raw_splice(off..end, &enc);
    }

    /// Remove `n` consecutive entries starting at byte offset `off`.
    pub fn remove(&mut self, off: usize, n: usize) {
        let count = self.len();
        let mut end = off;
        for _ in 0..n {
            end = self.entry_at(end).1;
        }
        self.raw_splice(off..end, &[]);
        self.set_count(count - n);
    }

    /// The i-th entry (linear).
    pub fn nth(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }
}

pub struct PackedIter<'a> {
    p: &'a Packed,
    off: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.off >= self.p.bytes() {
            return None;
        }
        let (e, next) = self.p.entry_at(self.off);
        self.off = next;
        Some(e)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Compact: a Packed or a boxed big representation in one word.

/// Either a [`Packed`] (small encodings) or a `Box<T>` (the big encoding) in 8 bytes: the low pointer bit
/// tells which (a Packed block is 2-aligned, `T` must be too). So a `Box<Hash>` of a small hash is an 8-byte
/// allocation next to its exact-size listpack block.
pub struct Compact<T> {
    raw: NonNull<u8>,
    _own: std::marker::PhantomData<Box<T>>,
}

/// A shared view of a [`Compact`].
pub enum CompactRef<'a, T> {
    Packed(&'a Packed),
    Big(&'a T),
}

/// A mutable view of a [`Compact`].
pub enum CompactMut<'a, T> {
    Packed(&'a mut Packed),
    Big(&'a mut T),
}

// SAFETY: a Compact owns either a Packed (Send + Sync) or a Box<T>.
unsafe impl<T: Send> Send for Compact<T> {}
unsafe impl<T: Sync> Sync for Compact<T> {}

impl<T> Compact<T> {
    const ALIGNED: () = assert!(std::mem::align_of::<T>() >= 2);

    pub fn packed(p: Packed) -> Self {
        let p = std::mem::ManuallyDrop::new(p);
        Compact {
            raw: p.ptr,
            _own: std::marker::PhantomData,
        }
    }

    pub fn big(b: Box<T>) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::ALIGNED;
        let raw = Box::into_raw(b).cast::<u8>().wrapping_add(1);
        Compact {
            raw: NonNull::new(raw).expect("non-null box"),
            _own: std::marker::PhantomData,
        }
    }

    #[inline]
    pub fn is_big(&self) -> bool {
        (self.raw.as_ptr() as usize) & 1 == 1
    }

    #[inline]
    fn big_ptr(&self) -> *mut T {
        self.raw.as_ptr().wrapping_sub(1).cast::<T>()
    }

    #[inline]
    pub fn get(&self) -> CompactRef<'_, T> {
        if self.is_big() {
            // SAFETY: a tagged pointer came from Box::into_raw and is owned by self.
            CompactRef::Big(unsafe { &*self.big_ptr() })
        } else {
            // SAFETY: an untagged Compact has exactly the representation of a Packed (one NonNull).
            CompactRef::Packed(unsafe { &*(self as *const Self).cast::<Packed>() })
        }
    }

    #[inline]
    pub fn get_mut(&mut self) -> CompactMut<'_, T> {
        if self.is_big() {
            // SAFETY: as get(); &mut self gives unique access.
            CompactMut::Big(unsafe { &mut *self.big_ptr() })
        } else {
            // SAFETY: as get(). A Packed only ever stores pointers to 2-aligned blocks, so it stays untagged.
            CompactMut::Packed(unsafe { &mut *(self as *mut Self).cast::<Packed>() })
        }
    }
}

impl<T> Drop for Compact<T> {
    fn drop(&mut self) {
        if self.is_big() {
            // SAFETY: the pointer came from Box::into_raw.
            drop(unsafe { Box::from_raw(self.big_ptr()) });
        } else {
            // SAFETY: an untagged Compact owns a Packed; it is read out once, here.
            drop(unsafe { std::ptr::read((self as *const Self).cast::<Packed>()) });
        }
    }
}

impl<T: Clone> Clone for Compact<T> {
    fn clone(&self) -> Self {
        match self.get() {
            CompactRef::Packed(p) => Compact::packed(p.clone()),
            CompactRef::Big(b) => Compact::big(Box::new(b.clone())),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Compact<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get() {
            CompactRef::Packed(p) => p.fmt(f),
            CompactRef::Big(b) => b.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    fn key(i: usize) -> Vec<u8> {
        format!("k{i}").into_bytes()
    }

    fn check_invariants<V>(d: &Dict<V>) {
        // Every slot is reachable through exactly one chain, and find_index agrees.
        let mut reached = 0;
        for tab in &d.tabs {
            for &head in tab {
                let mut cur = head;
                while cur != 0 {
                    reached += 1;
                    cur = d.slots.get(cur as usize - 1).next;
                }
            }
        }
        assert_eq!(reached, d.len());
        for i in 0..d.len() {
            let (k, _, _) = d.at(i);
            assert_eq!(d.find_index(k), Some(i));
        }
    }

    #[test]
    fn basic_ops() {
        let mut d: Dict<u32> = Dict::new();
        for i in 0..10_000 {
            assert_eq!(d.insert(&key(i), i as u32), None);
        }
        assert_eq!(d.len(), 10_000);
        assert_eq!(d.insert(&key(5), 55), Some(5));
        assert_eq!(d.get(&key(5)), Some(&55));
        *d.get_mut(&key(6)).unwrap() = 66;
        assert_eq!(d.get(&key(6)), Some(&66));
        check_invariants(&d);
        for i in 0..9_990 {
            assert!(d.remove(&key(i)).is_some(), "{i}");
        }
        assert!(d.remove(&key(0)).is_none());
        for _ in 0..20 {
            d.rehash(1000);
        }
        assert_eq!(d.len(), 10);
        check_invariants(&d);
        assert!(d.buckets() <= 128);
    }

    #[test]
    fn tails() {
        let mut d: Dict<()> = Dict::new();
        d.insert_tail(b"f", b"v1", ());
        assert_eq!(d.get_tail(b"f"), Some(&b"v1"[..]));
        let (old, ()) = d.insert_tail(b"f", b"value2", ()).unwrap();
        assert_eq!(&*old, b"v1");
        assert!(d.set_tail(b"f", b""));
        assert_eq!(d.get_tail(b"f"), Some(&b""[..]));
        let (t, ()) = d.remove(b"f").unwrap();
        assert!(t.is_empty());
        assert!(d.is_empty());
    }

    #[test]
    fn packed_is_thin_and_counts_past_u16() {
        assert_eq!(std::mem::size_of::<Packed>(), 8);
        assert_eq!(std::mem::size_of::<Compact<Dict<()>>>(), 8);
        let mut p = Packed::new();
        p.set_tag(2);
        for i in 0..70_000u32 {
            p.push(&i.to_le_bytes()[..(i % 4) as usize]);
        }
        assert_eq!(p.len(), 70_000);
        assert_eq!(p.tag(), 2);
        let off = p.iter_offsets().nth(5).unwrap().0;
        p.remove(off, 5_000);
        assert_eq!(p.len(), 65_000);
        p.remove(0, 1);
        assert_eq!(p.len(), 64_999);
        assert_eq!(p.tag(), 2);
        let q = p.clone();
        assert_eq!(q, p);
        p.raw_splice(0..p.bytes(), &[]);
        assert!(p.is_empty());
        let mut c: Compact<Dict<()>> = Compact::packed(q);
        assert!(!c.is_big());
        if let CompactMut::Packed(p) = c.get_mut() {
            p.push(b"grows the block");
        }
        assert!(matches!(c.get(), CompactRef::Packed(p) if p.len() == 65_000));
        let mut d = Dict::new();
        d.insert(b"k", ());
        c = Compact::big(Box::new(d));
        assert!(c.is_big() && matches!(c.clone().get(), CompactRef::Big(d) if d.len() == 1));
    }

    #[test]
    fn packed_ops() {
        let mut p = Packed::new();
        let long = vec![b'x'; 300];
        p.push(b"a");
        p.push(&long);
        p.push(b"");
        p.push(b"c");
        assert_eq!(p.len(), 4);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec![&b"a"[..], &long, b"", b"c"]
        );
        let off = p.find(b"c", 1).unwrap();
        p.replace(off, b"cc");
        assert_eq!(p.find(b"c", 1), None);
        assert_eq!(p.find(b"", 2), Some(p.find(b"", 1).unwrap()));
        assert_eq!(p.find(&long, 2), None);
        let off = p.find(&long, 1).unwrap();
        p.remove(off, 2);
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"cc"]);
        assert_eq!(p.nth(1), Some(&b"cc"[..]));
    }

    proptest! {
        #[test]
        fn dict_matches_model(ops in proptest::collection::vec((0u8..4, 0usize..200, any::<u16>()), 0..2000)) {
            let mut d: Dict<u16> = Dict::new();
            let mut m: BTreeMap<Vec<u8>, u16> = BTreeMap::new();
            for (op, k, v) in ops {
                let k = key(k);
                match op {
                    0 | 1 => prop_assert_eq!(d.insert(&k, v), m.insert(k, v)),
                    2 => prop_assert_eq!(d.remove(&k).map(|x| x.1), m.remove(&k)),
                    _ => { d.rehash(3); }
                }
                prop_assert_eq!(d.len(), m.len());
            }
            check_invariants(&d);
            let got: BTreeMap<Vec<u8>, u16> = d.iter().map(|(k, _, v)| (k.to_vec(), *v)).collect();
            prop_assert_eq!(got, m);
        }

        /// Keys present for the whole scan are returned even when the dict grows or shrinks between calls.
        #[test]
        fn scan_guarantee_across_resizes(stable in 1usize..300, churn in proptest::collection::vec((any::<bool>(), 0usize..3000), 0..600), steps in 1usize..20) {
            let mut d: Dict<()> = Dict::new();
            for i in 0..stable {
                d.insert(&key(i), ());
            }
            let mut seen = HashSet::new();
            let mut c = 0u64;
            let mut ops = churn.into_iter();
            loop {
                c = d.scan(c, |k, _, _| { seen.insert(k.to_vec()); });
                if c == 0 { break; }
                for _ in 0..steps {
                    if let Some((add, i)) = ops.next() {
                        let k = key(10_000 + i);
                        if add { d.insert(&k, ()); } else { d.remove(&k); }
                    }
                }
            }
            for i in 0..stable {
                prop_assert!(seen.contains(&key(i)), "missed {}", i);
            }
        }

        #[test]
        fn packed_matches_vec(ops in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..200)), 0..200)) {
            let mut p = Packed::new();
            let mut m: Vec<Vec<u8>> = Vec::new();
            for (op, x) in ops {
                match op {
                    0 => { p.push(&x); m.push(x); }
                    1 => {
                        if let Some(off) = p.find(&x, 1) {
                            p.remove(off, 1);
                            let i = m.iter().position(|e| *e == x).unwrap();
                            m.remove(i);
                        } else {
                            prop_assert!(!m.contains(&x));
                        }
                    }
                    _ => {
                        if !m.is_empty() {
                            let i = x.len() % m.len();
                            let off = p.iter_offsets().nth(i).unwrap().0;
                            p.replace(off, &x);
                            m[i] = x;
                        }
                    }
                }
                prop_assert_eq!(p.len(), m.len());
            }
            prop_assert_eq!(p.iter().map(|e| e.to_vec()).collect::<Vec<_>>(), m);
        }
    }
}
