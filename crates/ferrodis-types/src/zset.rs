//! The sorted-set value type.
//!
//! Two encodings, as Redis:
//! - **listpack** ([`Pack`]): entries `varint(len << 1 | float) member score` back to back in one buffer,
//!   sorted by (score, member); integral scores are stored as a zigzag varint, others as 8 bytes. Every
//!   operation is a linear scan (at most `zset-max-listpack-entries` entries).
//! - **skiplist** ([`Tree`]): an order-statistic treap over an arena of 24-byte nodes (score, dict slot,
//!   children, subtree size) giving O(log n) rank, select and range, plus a [`Dict`] member -> node index that
//!   owns the member bytes (stored once) and gives ZSCAN its reverse-binary cursor. Node priorities are a
//!   seeded hash of the node index, so no priority is stored.
//!
//! Elements are ordered by score, then by member bytes; `-0` and `0` compare equal (as Redis's `<`/`==`).
//! Scores are never NaN.

use super::dict::Dict;
use std::cmp::Ordering;

/// Encoding thresholds (zset-max-listpack-entries / zset-max-listpack-value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for ZLimits {
    fn default() -> Self {
        ZLimits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

#[inline]
fn key_cmp(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    if s1 < s2 {
        Ordering::Less
    } else if s1 > s2 {
        Ordering::Greater
    } else {
        m1.cmp(m2)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Ranges

/// A score interval with optional exclusive ends (`(1.5`), as ZRANGEBYSCORE parses it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

/// strtod over the whole input as Redis's zslParseRange uses it: leading blanks allowed, an empty string is 0,
/// overflow gives ±inf, NaN is rejected.
fn strtod_whole(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() {
        return if s.is_empty() { Some(0.0) } else { None };
    }
    let v: f64 = t.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    Some(v)
}

impl ScoreRange {
    /// Parse `min` and `max` (`(` prefix = exclusive, `inf`/`-inf`/`+inf` accepted). None = "min or max is not
    /// a float".
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        fn one(b: &[u8]) -> Option<(f64, bool)> {
            match b.first() {
                Some(b'(') => Some((strtod_whole(&b[1..])?, true)),
                _ => Some((strtod_whole(b)?, false)),
            }
        }
        let (min, minex) = one(min)?;
        let (max, maxex) = one(max)?;
        Some(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }

    #[inline]
    pub fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    #[inline]
    pub fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }

    /// True when no score can be inside.
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lexicographic range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[x` (inclusive) or `(x` (exclusive).
    Val(Vec<u8>, bool),
}

impl LexBound {
    /// Parse `-`, `+`, `[x`, `(x`; None = "min or max not valid string range item".
    pub fn parse(b: &[u8]) -> Option<LexBound> {
        match b.first()? {
            b'+' if b.len() == 1 => Some(LexBound::Max),
            b'-' if b.len() == 1 => Some(LexBound::Min),
            b'[' => Some(LexBound::Val(b[1..].to_vec(), false)),
            b'(' => Some(LexBound::Val(b[1..].to_vec(), true)),
            _ => None,
        }
    }

    fn exclusive(&self) -> bool {
        match self {
            LexBound::Val(_, ex) => *ex,
            _ => true,
        }
    }
}

/// A lexicographic interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }

    pub fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Val(v, true) => m > v.as_slice(),
            LexBound::Val(v, false) => m >= v.as_slice(),
        }
    }

    pub fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Val(v, true) => m < v.as_slice(),
            LexBound::Val(v, false) => m <= v.as_slice(),
        }
    }

    /// True when no member can be inside.
    pub fn is_empty(&self) -> bool {
        let cmp = match (&self.min, &self.max) {
            (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Ordering::Equal,
            (LexBound::Min, _) | (_, LexBound::Max) => Ordering::Less,
            (LexBound::Max, _) | (_, LexBound::Min) => Ordering::Greater,
            (LexBound::Val(a, _), LexBound::Val(b, _)) => a.cmp(b),
        };
        cmp == Ordering::Greater
            || (cmp == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Pack: the listpack encoding

#[derive(Clone, Default, PartialEq)]
struct Pack {
    buf: Vec<u8>,
    len: u32,
}

const INT_SCORE_LIMIT: f64 = (1u64 << 53) as f64;

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[inline]
fn get_varint(buf: &[u8], p: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*p];
        *p += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

fn encode_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    // -0 is stored as the integer 0, as Redis's listpack does.
    let int = score.fract() == 0.0 && score.abs() < INT_SCORE_LIMIT;
    put_varint(out, ((member.len() as u64) << 1) | u64::from(!int));
    out.extend_from_slice(member);
    if int {
        let i = score as i64;
        put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
    } else {
        out.extend_from_slice(&score.to_le_bytes());
    }
}

impl Pack {
    /// Decode the entry at `off`: (member, score, next offset).
    #[inline]
    fn at(&self, off: usize) -> (&[u8], f64, usize) {
        let mut p = off;
        let h = get_varint(&self.buf, &mut p);
        let mlen = (h >> 1) as usize;
        let member = &self.buf[p..p + mlen];
        p += mlen;
        let score = if h & 1 == 1 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.buf[p..p + 8]);
            p += 8;
            f64::from_le_bytes(b)
        } else {
            let z = get_varint(&self.buf, &mut p);
            ((z >> 1) as i64 ^ -((z & 1) as i64)) as f64
        };
        (member, score, p)
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &[u8], f64)> + '_ {
        let mut off = 0;
        std::iter::from_fn(move || {
            if off >= self.buf.len() {
                return None;
            }
            let (m, s, next) = self.at(off);
            let at = off;
            off = next;
            Some((at, m, s))
        })
    }

    /// (byte offset, score) of `member`.
    fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.iter()
            .find(|(_, m, _)| *m == member)
            .map(|(o, _, s)| (o, s))
    }

    fn insert(&mut self, member: &[u8], score: f64) {
        let off = self
            .iter()
            .find(|(_, m, s)| key_cmp(*s, m, score, member) == Ordering::Greater)
            .map_or(self.buf.len(), |(o, _, _)| o);
        let mut enc = Vec::with_capacity(member.len() + 10);
        encode_entry(&mut enc, member, score);
        self.buf.splice(off..off, enc);
        self.len += 1;
    }

    fn remove_at(&mut self, off: usize) {
        let (_, _, end) = self.at(off);
        self.buf.drain(off..end);
        self.len -= 1;
    }

    /// Byte offset of the entry with rank `r` (or the end).
    fn offset_of_rank(&self, r: usize) -> usize {
        self.iter().nth(r).map_or(self.buf.len(), |(o, _, _)| o)
    }

    fn remove_ranks(&mut self, lo: usize, hi: usize) {
        let a = self.offset_of_rank(lo);
        let b = self.offset_of_rank(hi);
        self.buf.drain(a..b);
        self.len -= (hi - lo) as u32;
        if self.buf.capacity() > 64 && self.buf.len() * 2 < self.buf.capacity() {
            self.buf.shrink_to(self.buf.len() * 3 / 2);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tree: a counted B+tree over (score, dict slot) + dict

const NIL: u32 = u32::MAX;
/// Entries per leaf: 63 makes a leaf exactly 768 bytes (a jemalloc size class).
#[cfg(not(test))]
const LCAP: usize = 63;
#[cfg(test)]
const LCAP: usize = 5;
/// Children per inner node: 38 makes an inner node exactly 768 bytes.
#[cfg(not(test))]
const ICAP: usize = 38;
#[cfg(test)]
const ICAP: usize = 4;
/// A non-root node with fewer entries is merged with or refilled from a sibling.
const LMIN: usize = if LCAP / 4 > 1 { LCAP / 4 } else { 1 };
const IMIN: usize = if ICAP / 4 > 2 { ICAP / 4 } else { 2 };
/// Enough levels for 2^32 elements at the minimum fan-out.
const MAXH: usize = 40;

/// A leaf: sorted keys (score, dict slot of the member), linked to its neighbours for range walks.
struct Leaf {
    scores: [f64; LCAP],
    slots: [u32; LCAP],
    len: u32,
    prev: u32,
    next: u32,
}

/// An inner node: for each child, its subtree's first key (score, slot), element count and node index.
struct Inner {
    scores: [f64; ICAP],
    slots: [u32; ICAP],
    counts: [u32; ICAP],
    kids: [u32; ICAP],
    len: u32,
}

/// The inner nodes visited from the root down to a leaf, and the child index taken in each.
struct Path {
    n: usize,
    node: [u32; MAXH],
    idx: [u32; MAXH],
}

impl Path {
    #[inline]
    fn new() -> Path {
        Path {
            n: 0,
            node: [0; MAXH],
            idx: [0; MAXH],
        }
    }

    #[inline]
    fn push(&mut self, node: u32, idx: usize) {
        self.node[self.n] = node;
        self.idx[self.n] = idx as u32;
        self.n += 1;
    }
}

/// The big encoding: elements ordered by (score, member) in a B+tree whose inner nodes count the elements
/// below each child (rank and select in O(log n)); the dict maps member -> score and owns the member bytes,
/// which the tree references by dict slot index (the dict keeps slots dense, moving its last slot into a
/// removed one: [`Tree::retarget_last_slot`] follows that move in the tree).
///
/// Invariants: every inner node stores the exact first key of each child's subtree; non-root inner nodes
/// have at least 2 children (IMIN after any removal settles); non-root leaves are never empty.
struct Tree {
    leaves: Vec<Option<Box<Leaf>>>,
    inners: Vec<Option<Box<Inner>>>,
    free_leaves: Vec<u32>,
    free_inners: Vec<u32>,
    root: u32,
    /// Number of inner levels (0: the root is a leaf).
    height: u32,
    dict: Dict<f64>,
}

impl Tree {
    fn new() -> Tree {
        let mut t = Tree {
            leaves: Vec::new(),
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            root: 0,
            height: 0,
            dict: Dict::new(),
        };
        t.root = t.new_leaf();
        t
    }

    #[inline]
    fn len(&self) -> usize {
        self.dict.len()
    }

    #[inline]
    fn lf(&self, i: u32) -> &Leaf {
        self.leaves[i as usize].as_deref().expect("live leaf")
    }

    #[inline]
    fn lf_mut(&mut self, i: u32) -> &mut Leaf {
        self.leaves[i as usize].as_deref_mut().expect("live leaf")
    }

    #[inline]
    fn inn(&self, i: u32) -> &Inner {
        self.inners[i as usize].as_deref().expect("live inner node")
    }

    #[inline]
    fn inn_mut(&mut self, i: u32) -> &mut Inner {
        self.inners[i as usize]
            .as_deref_mut()
            .expect("live inner node")
    }

    fn two_leaves(&mut self, a: u32, b: u32) -> (&mut Leaf, &mut Leaf) {
        let (a, b) = (a as usize, b as usize);
        assert_ne!(a, b);
        if a < b {
            let (x, y) = self.leaves.split_at_mut(b);
            (
                x[a].as_deref_mut().expect("leaf"),
                y[0].as_deref_mut().expect("leaf"),
            )
        } else {
            let (x, y) = self.leaves.split_at_mut(a);
            (
                y[0].as_deref_mut().expect("leaf"),
                x[b].as_deref_mut().expect("leaf"),
            )
        }
    }

    fn two_inners(&mut self, a: u32, b: u32) -> (&mut Inner, &mut Inner) {
        let (a, b) = (a as usize, b as usize);
        assert_ne!(a, b);
        if a < b {
            let (x, y) = self.inners.split_at_mut(b);
            (
                x[a].as_deref_mut().expect("inner"),
                y[0].as_deref_mut().expect("inner"),
            )
        } else {
            let (x, y) = self.inners.split_at_mut(a);
            (
                y[0].as_deref_mut().expect("inner"),
                x[b].as_deref_mut().expect("inner"),
            )
        }
    }

    fn new_leaf(&mut self) -> u32 {
        let b = Box::new(Leaf {
            scores: [0.0; LCAP],
            slots: [0; LCAP],
            len: 0,
            prev: NIL,
            next: NIL,
        });
        if let Some(i) = self.free_leaves.pop() {
            self.leaves[i as usize] = Some(b);
            i
        } else {
            self.leaves.push(Some(b));
            (self.leaves.len() - 1) as u32
        }
    }

    fn free_leaf(&mut self, i: u32) {
        self.leaves[i as usize] = None;
        self.free_leaves.push(i);
    }

    fn new_inner(&mut self) -> u32 {
        let b = Box::new(Inner {
            scores: [0.0; ICAP],
            slots: [0; ICAP],
            counts: [0; ICAP],
            kids: [0; ICAP],
            len: 0,
        });
        if let Some(i) = self.free_inners.pop() {
            self.inners[i as usize] = Some(b);
            i
        } else {
            self.inners.push(Some(b));
            (self.inners.len() - 1) as u32
        }
    }

    fn free_inner(&mut self, i: u32) {
        self.inners[i as usize] = None;
        self.free_inners.push(i);
    }

    #[inline]
    fn member(&self, slot: u32) -> &[u8] {
        self.dict.at(slot as usize).0
    }

    /// Order of the stored key (`es`, `eslot`) relative to (`s`, `m`): scores first, member bytes on ties.
    #[inline]
    fn cmp_key(&self, es: f64, eslot: u32, s: f64, m: &[u8]) -> Ordering {
        if es < s {
            Ordering::Less
        } else if es > s {
            Ordering::Greater
        } else {
            self.member(eslot).cmp(m)
        }
    }

    /// Descend to the boundary of `pred` (true then false along the order, on stored (score, slot)):
    /// returns (leaf, position in the leaf, rank) of the first element for which it is false.
    #[inline]
    fn descend(&self, pred: impl Fn(f64, u32) -> bool, path: &mut Path) -> (u32, usize, usize) {
        path.n = 0;
        let mut node = self.root;
        let mut rank = 0usize;
        for _ in 0..self.height {
            let x = self.inn(node);
            let (mut lo, mut hi) = (1, x.len as usize);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if pred(x.scores[mid], x.slots[mid]) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let j = lo - 1;
            rank += x.counts[..j].iter().map(|&c| c as usize).sum::<usize>();
            path.push(node, j);
            node = x.kids[j];
        }
        let l = self.lf(node);
        let (mut lo, mut hi) = (0, l.len as usize);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if pred(l.scores[mid], l.slots[mid]) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (node, lo, rank + lo)
    }

    /// (leaf, position, rank) of the stored key (`s`, `m`), which must be present.
    fn locate(&self, s: f64, m: &[u8], path: &mut Path) -> (u32, usize, usize) {
        let (leaf, pos, rank) = self.descend(
            |es, eslot| self.cmp_key(es, eslot, s, m) != Ordering::Greater,
            path,
        );
        debug_assert!(pos > 0, "zset: key not in tree");
        (leaf, pos.saturating_sub(1), rank.saturating_sub(1))
    }

    /// (leaf, position) of rank `r` (< len).
    fn descend_rank(&self, mut r: usize, path: &mut Path) -> (u32, usize) {
        path.n = 0;
        let mut node = self.root;
        for _ in 0..self.height {
            let x = self.inn(node);
            let last = x.len as usize - 1;
            let mut j = 0;
            while j < last && r >= x.counts[j] as usize {
                r -= x.counts[j] as usize;
                j += 1;
            }
            path.push(node, j);
            node = x.kids[j];
        }
        (node, r)
    }

    /// The first key of the subtree at `node` (a leaf when `leaf`).
    fn first_key(&self, node: u32, leaf: bool) -> (f64, u32) {
        if leaf {
            let l = self.lf(node);
            (l.scores[0], l.slots[0])
        } else {
            let x = self.inn(node);
            (x.scores[0], x.slots[0])
        }
    }

    /// The node at path level `d` (the leaf when `d == path.n`) has a new first key: update the ancestors'
    /// copies of it.
    fn fix_first(&mut self, path: &Path, mut d: usize, s: f64, slot: u32) {
        while d > 0 {
            d -= 1;
            let i = path.idx[d] as usize;
            let x = self.inn_mut(path.node[d]);
            x.scores[i] = s;
            x.slots[i] = slot;
            if i != 0 {
                break;
            }
        }
    }

    /// Set the stored first key of child `i` of the inner node at path level `d`.
    fn set_sep(&mut self, path: &Path, d: usize, i: usize, s: f64, slot: u32) {
        let x = self.inn_mut(path.node[d]);
        x.scores[i] = s;
        x.slots[i] = slot;
        if i == 0 {
            self.fix_first(path, d, s, slot);
        }
    }

    /// Insert the key (`s`, `slot`) (the member already in the dict at `slot`).
    fn insert_key(&mut self, s: f64, slot: u32) {
        let mut path = Path::new();
        let m = self.member(slot);
        let (leaf, pos, _) = self.descend(
            |es, eslot| self.cmp_key(es, eslot, s, m) == Ordering::Less,
            &mut path,
        );
        self.insert_at(&path, leaf, pos, s, slot);
    }

    /// Append a key greater than every stored one.
    fn push_back(&mut self, s: f64, slot: u32) {
        let mut path = Path::new();
        let mut node = self.root;
        for _ in 0..self.height {
            let x = self.inn(node);
            let j = x.len as usize - 1;
            path.push(node, j);
            node = x.kids[j];
        }
        let pos = self.lf(node).len as usize;
        self.insert_at(&path, node, pos, s, slot);
    }

    fn insert_at(&mut self, path: &Path, leaf: u32, pos: usize, s: f64, slot: u32) {
        for d in 0..path.n {
            let i = path.idx[d] as usize;
            self.inn_mut(path.node[d]).counts[i] += 1;
        }
        let len = self.lf(leaf).len as usize;
        if len < LCAP {
            let l = self.lf_mut(leaf);
            l.scores.copy_within(pos..len, pos + 1);
            l.slots.copy_within(pos..len, pos + 1);
            l.scores[pos] = s;
            l.slots[pos] = slot;
            l.len += 1;
            if pos == 0 {
                self.fix_first(path, path.n, s, slot);
            }
            return;
        }
        // Split: half and half, except that an append (or a prepend) leaves the full leaf full, so that
        // ascending loads fill leaves completely.
        let k = if pos == LCAP {
            LCAP
        } else if pos == 0 {
            0
        } else {
            LCAP / 2
        };
        let r = self.new_leaf();
        let next = self.lf(leaf).next;
        {
            let (l, rr) = self.two_leaves(leaf, r);
            let n = LCAP - k;
            rr.scores[..n].copy_from_slice(&l.scores[k..]);
            rr.slots[..n].copy_from_slice(&l.slots[k..]);
            rr.len = n as u32;
            l.len = k as u32;
            rr.prev = leaf;
            rr.next = next;
            l.next = r;
        }
        if next != NIL {
            self.lf_mut(next).prev = r;
        }
        let (tgt, p) = if pos < k || (pos == k && k < LCAP) {
            (leaf, pos)
        } else {
            (r, pos - k)
        };
        {
            let l = self.lf_mut(tgt);
            let len = l.len as usize;
            l.scores.copy_within(p..len, p + 1);
            l.slots.copy_within(p..len, p + 1);
            l.scores[p] = s;
            l.slots[p] = slot;
            l.len += 1;
        }
        if tgt == leaf && p == 0 {
            self.fix_first(path, path.n, s, slot);
        }
        let lc = self.lf(leaf).len;
        let (rc, fs, fslot) = {
            let x = self.lf(r);
            (x.len, x.scores[0], x.slots[0])
        };
        self.add_child(path, path.n, leaf, r, (fs, fslot), lc, rc);
    }

    /// The node `left` at path level `d` was split, `right` (first key `first`) must follow it in its parent;
    /// `lc` and `rc` are their element counts.
    #[allow(clippy::too_many_arguments)]
    fn add_child(
        &mut self,
        path: &Path,
        d: usize,
        left: u32,
        right: u32,
        first: (f64, u32),
        lc: u32,
        rc: u32,
    ) {
        if d == 0 {
            let (s0, sl0) = self.first_key(left, path.n == 0);
            let nr = self.new_inner();
            let x = self.inn_mut(nr);
            x.scores[0] = s0;
            x.slots[0] = sl0;
            x.counts[0] = lc;
            x.kids[0] = left;
            x.scores[1] = first.0;
            x.slots[1] = first.1;
            x.counts[1] = rc;
            x.kids[1] = right;
            x.len = 2;
            self.root = nr;
            self.height += 1;
            return;
        }
        let p = path.node[d - 1];
        let i = path.idx[d - 1] as usize;
        let at = i + 1;
        let len = self.inn(p).len as usize;
        self.inn_mut(p).counts[i] = lc;
        fn put(x: &mut Inner, at: usize, first: (f64, u32), cnt: u32, kid: u32) {
            let len = x.len as usize;
            x.scores.copy_within(at..len, at + 1);
            x.slots.copy_within(at..len, at + 1);
            x.counts.copy_within(at..len, at + 1);
            x.kids.copy_within(at..len, at + 1);
            x.scores[at] = first.0;
            x.slots[at] = first.1;
            x.counts[at] = cnt;
            x.kids[at] = kid;
            x.len += 1;
        }
        if len < ICAP {
            put(self.inn_mut(p), at, first, rc, right);
            return;
        }
        let k = ICAP / 2;
        let q = self.new_inner();
        let (c1, c2, f2) = {
            let (x, y) = self.two_inners(p, q);
            let n = ICAP - k;
            y.scores[..n].copy_from_slice(&x.scores[k..]);
            y.slots[..n].copy_from_slice(&x.slots[k..]);
            y.counts[..n].copy_from_slice(&x.counts[k..]);
            y.kids[..n].copy_from_slice(&x.kids[k..]);
            y.len = n as u32;
            x.len = k as u32;
            if at <= k {
                put(x, at, first, rc, right);
            } else {
                put(y, at - k, first, rc, right);
            }
            let c1: u32 = x.counts[..x.len as usize].iter().sum();
            let c2: u32 = y.counts[..y.len as usize].iter().sum();
            (c1, c2, (y.scores[0], y.slots[0]))
        };
        self.add_child(path, d - 1, p, q, f2, c1, c2);
    }

    /// Remove the entry at (`leaf`, `pos`) reached through `path` (the dict is not touched).
    fn delete_at(&mut self, path: &Path, leaf: u32, pos: usize) {
        for d in 0..path.n {
            let i = path.idx[d] as usize;
            self.inn_mut(path.node[d]).counts[i] -= 1;
        }
        let l = self.lf_mut(leaf);
        let len = l.len as usize;
        l.scores.copy_within(pos + 1..len, pos);
        l.slots.copy_within(pos + 1..len, pos);
        l.len -= 1;
        let nl = l.len as usize;
        if pos == 0 && nl > 0 {
            let (s, slot) = (l.scores[0], l.slots[0]);
            self.fix_first(path, path.n, s, slot);
        }
        if path.n > 0 && nl < LMIN {
            self.rebalance(path, path.n);
        }
    }

    /// The node at path level `d` (the leaf when `d == path.n`, d > 0) is under its minimum: merge it with a
    /// sibling or move entries over from one.
    fn rebalance(&mut self, path: &Path, d: usize) {
        let is_leaf = d == path.n;
        let p = path.node[d - 1];
        let i = path.idx[d - 1] as usize;
        let plen = self.inn(p).len as usize;
        if plen < 2 {
            return;
        }
        let (a, b) = if i > 0 { (i - 1, i) } else { (0, 1) };
        let (ka, kb) = {
            let x = self.inn(p);
            (x.kids[a], x.kids[b])
        };
        let merged;
        if is_leaf {
            let (la, lb) = (self.lf(ka).len as usize, self.lf(kb).len as usize);
            if la + lb <= LCAP {
                let nx = {
                    let (x, y) = self.two_leaves(ka, kb);
                    x.scores[la..la + lb].copy_from_slice(&y.scores[..lb]);
                    x.slots[la..la + lb].copy_from_slice(&y.slots[..lb]);
                    x.len = (la + lb) as u32;
                    x.next = y.next;
                    y.next
                };
                if nx != NIL {
                    self.lf_mut(nx).prev = ka;
                }
                self.free_leaf(kb);
                merged = true;
            } else {
                let total = la + lb;
                let na = total / 2;
                {
                    let (x, y) = self.two_leaves(ka, kb);
                    if la > na {
                        let mv = la - na;
                        y.scores.copy_within(0..lb, mv);
                        y.slots.copy_within(0..lb, mv);
                        y.scores[..mv].copy_from_slice(&x.scores[na..la]);
                        y.slots[..mv].copy_from_slice(&x.slots[na..la]);
                    } else {
                        let mv = na - la;
                        x.scores[la..na].copy_from_slice(&y.scores[..mv]);
                        x.slots[la..na].copy_from_slice(&y.slots[..mv]);
                        y.scores.copy_within(mv..lb, 0);
                        y.slots.copy_within(mv..lb, 0);
                    }
                    x.len = na as u32;
                    y.len = (total - na) as u32;
                }
                let (fs, fslot) = self.first_key(kb, true);
                let x = self.inn_mut(p);
                x.counts[a] = na as u32;
                x.counts[b] = (total - na) as u32;
                x.scores[b] = fs;
                x.slots[b] = fslot;
                merged = false;
            }
            if la == 0 {
                let (fs, fslot) = self.first_key(ka, true);
                self.set_sep(path, d - 1, a, fs, fslot);
            }
        } else {
            let (la, lb) = (self.inn(ka).len as usize, self.inn(kb).len as usize);
            if la + lb <= ICAP {
                {
                    let (x, y) = self.two_inners(ka, kb);
                    x.scores[la..la + lb].copy_from_slice(&y.scores[..lb]);
                    x.slots[la..la + lb].copy_from_slice(&y.slots[..lb]);
                    x.counts[la..la + lb].copy_from_slice(&y.counts[..lb]);
                    x.kids[la..la + lb].copy_from_slice(&y.kids[..lb]);
                    x.len = (la + lb) as u32;
                }
                self.free_inner(kb);
                merged = true;
            } else {
                let total = la + lb;
                let na = total / 2;
                let (ca, cb, f2) = {
                    let (x, y) = self.two_inners(ka, kb);
                    if la > na {
                        let mv = la - na;
                        y.scores.copy_within(0..lb, mv);
                        y.slots.copy_within(0..lb, mv);
                        y.counts.copy_within(0..lb, mv);
                        y.kids.copy_within(0..lb, mv);
                        y.scores[..mv].copy_from_slice(&x.scores[na..la]);
                        y.slots[..mv].copy_from_slice(&x.slots[na..la]);
                        y.counts[..mv].copy_from_slice(&x.counts[na..la]);
                        y.kids[..mv].copy_from_slice(&x.kids[na..la]);
                    } else {
                        let mv = na - la;
                        x.scores[la..na].copy_from_slice(&y.scores[..mv]);
                        x.slots[la..na].copy_from_slice(&y.slots[..mv]);
                        x.counts[la..na].copy_from_slice(&y.counts[..mv]);
                        x.kids[la..na].copy_from_slice(&y.kids[..mv]);
                        y.scores.copy_within(mv..lb, 0);
                        y.slots.copy_within(mv..lb, 0);
                        y.counts.copy_within(mv..lb, 0);
                        y.kids.copy_within(mv..lb, 0);
                    }
                    x.len = na as u32;
                    y.len = (total - na) as u32;
                    let ca: u32 = x.counts[..na].iter().sum();
                    let cb: u32 = y.counts[..total - na].iter().sum();
                    (ca, cb, (y.scores[0], y.slots[0]))
                };
                let x = self.inn_mut(p);
                x.counts[a] = ca;
                x.counts[b] = cb;
                x.scores[b] = f2.0;
                x.slots[b] = f2.1;
                merged = false;
            }
        }
        if !merged {
            return;
        }
        // Child b is gone from p.
        let plen = {
            let x = self.inn_mut(p);
            x.counts[a] += x.counts[b];
            let len = x.len as usize;
            x.scores.copy_within(b + 1..len, b);
            x.slots.copy_within(b + 1..len, b);
            x.counts.copy_within(b + 1..len, b);
            x.kids.copy_within(b + 1..len, b);
            x.len -= 1;
            x.len as usize
        };
        if d - 1 == 0 {
            if plen == 1 {
                self.root = self.inn(p).kids[0];
                self.height -= 1;
                self.free_inner(p);
            }
        } else if plen < IMIN {
            self.rebalance(path, d - 1);
        }
    }

    /// Before the dict removes slot `slot`, moving its last slot there: make the tree reference the moved
    /// element by its new slot.
    fn retarget_last_slot(&mut self, slot: usize) {
        let last = self.dict.len() - 1;
        if slot == last {
            return;
        }
        let mut path = Path::new();
        let (leaf, pos) = {
            let (lm, _, &ls) = self.dict.at(last);
            let (leaf, pos, _) = self.locate(ls, lm, &mut path);
            (leaf, pos)
        };
        for d in 0..path.n {
            let i = path.idx[d] as usize;
            let x = self.inn_mut(path.node[d]);
            if x.slots[i] == last as u32 {
                x.slots[i] = slot as u32;
            }
        }
        let l = self.lf_mut(leaf);
        debug_assert_eq!(l.slots[pos], last as u32);
        l.slots[pos] = slot as u32;
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        self.dict.insert_new(member, &[], score);
        let slot = (self.dict.len() - 1) as u32;
        self.insert_key(score, slot);
    }

    /// Append in order (`member` greater than every element).
    fn push_new(&mut self, member: &[u8], score: f64) {
        self.dict.insert_new(member, &[], score);
        let slot = (self.dict.len() - 1) as u32;
        self.push_back(score, slot);
    }

    /// Change the score of the member at dict slot `slot` from `old` to `new`.
    fn update_score(&mut self, slot: usize, member: &[u8], old: f64, new: f64) {
        if let Some(v) = self.dict.get_mut(member) {
            *v = new;
        }
        let mut path = Path::new();
        let (leaf, pos, _) = self.locate(old, member, &mut path);
        // Keep the entry where it is when it stays between its neighbours (Redis's zslUpdateScore).
        let l = self.lf(leaf);
        let len = l.len as usize;
        let after_prev = if pos > 0 {
            self.cmp_key(l.scores[pos - 1], l.slots[pos - 1], new, member) == Ordering::Less
        } else if l.prev != NIL {
            let p = self.lf(l.prev);
            p.len > 0 && {
                let j = p.len as usize - 1;
                self.cmp_key(p.scores[j], p.slots[j], new, member) == Ordering::Less
            }
        } else {
            true
        };
        let before_next = after_prev
            && if pos + 1 < len {
                self.cmp_key(l.scores[pos + 1], l.slots[pos + 1], new, member) == Ordering::Greater
            } else if l.next != NIL {
                let nx = self.lf(l.next);
                nx.len > 0
                    && self.cmp_key(nx.scores[0], nx.slots[0], new, member) == Ordering::Greater
            } else {
                true
            };
        if before_next {
            self.lf_mut(leaf).scores[pos] = new;
            if pos == 0 {
                self.fix_first(&path, path.n, new, slot as u32);
            }
            return;
        }
        self.delete_at(&path, leaf, pos);
        self.insert_key(new, slot as u32);
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let slot = self.dict.find_index(member)?;
        let score = *self.dict.at(slot).2;
        let mut path = Path::new();
        let (leaf, pos, _) = self.locate(score, member, &mut path);
        self.delete_at(&path, leaf, pos);
        self.retarget_last_slot(slot);
        self.dict.remove(member);
        self.maybe_reset();
        Some(score)
    }

    /// Drop all nodes once empty.
    fn maybe_reset(&mut self) {
        if self.dict.is_empty() && (self.height > 0 || self.leaves.len() > 1) {
            *self = Tree::new();
        }
    }

    /// Remove the element of rank `r` (< len); returns its member and score.
    fn remove_rank(&mut self, r: usize) -> (Vec<u8>, f64) {
        let mut path = Path::new();
        let (leaf, pos) = self.descend_rank(r, &mut path);
        let (score, slot) = {
            let l = self.lf(leaf);
            (l.scores[pos], l.slots[pos] as usize)
        };
        self.delete_at(&path, leaf, pos);
        self.retarget_last_slot(slot);
        let (m, _, _) = self.dict.remove_index(slot);
        (m, score)
    }

    /// Remove ranks [lo, hi).
    fn remove_ranks(&mut self, lo: usize, hi: usize) {
        for _ in lo..hi {
            self.remove_rank(lo);
        }
        self.maybe_reset();
    }

    /// Pop `n` elements from the low end (or the high end when `max`), in pop order.
    fn pop(&mut self, max: bool, n: usize) -> Vec<(Vec<u8>, f64)> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let r = if max { self.len() - 1 } else { 0 };
            out.push(self.remove_rank(r));
        }
        self.maybe_reset();
        out
    }

    /// The member and score of rank `r` (< len).
    fn select(&self, r: usize) -> (&[u8], f64) {
        let mut path = Path::new();
        let (leaf, pos) = self.descend_rank(r, &mut path);
        let l = self.lf(leaf);
        (self.member(l.slots[pos]), l.scores[pos])
    }

    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        let mut path = Path::new();
        self.locate(score, member, &mut path).2
    }

    /// Number of leading elements for which `pred` holds (`pred` must be true then false along the order).
    fn partition_point(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let mut path = Path::new();
        self.descend(|s, slot| pred(self.member(slot), s), &mut path)
            .2
    }

    /// As [`Tree::partition_point`] for a predicate on scores only (no member bytes fetched).
    fn partition_point_score(&self, pred: impl Fn(f64) -> bool) -> usize {
        let mut path = Path::new();
        self.descend(|s, _| pred(s), &mut path).2
    }

    /// Visit ranks [lo, hi) in ascending order, or descending when `rev`.
    fn for_range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        if lo >= hi {
            return;
        }
        let mut path = Path::new();
        let (mut leaf, pos) = self.descend_rank(if rev { hi - 1 } else { lo }, &mut path);
        let mut left = hi - lo;
        if !rev {
            let mut pos = pos;
            while leaf != NIL {
                let l = self.lf(leaf);
                let end = (l.len as usize).min(pos + left);
                for k in pos..end {
                    f(self.member(l.slots[k]), l.scores[k]);
                }
                left -= end.saturating_sub(pos);
                if left == 0 {
                    break;
                }
                leaf = l.next;
                pos = 0;
            }
        } else {
            let mut pos = pos + 1; // exclusive end within the leaf
            while leaf != NIL {
                let l = self.lf(leaf);
                let start = pos.saturating_sub(left);
                for k in (start..pos).rev() {
                    f(self.member(l.slots[k]), l.scores[k]);
                }
                left -= pos - start;
                if left == 0 {
                    break;
                }
                leaf = l.prev;
                if leaf != NIL {
                    pos = self.lf(leaf).len as usize;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// ZSet

#[derive(Clone)]
enum Enc {
    Pack(Pack),
    Tree(Box<Tree>),
}

impl Clone for Tree {
    fn clone(&self) -> Self {
        let mut t = Tree::new();
        self.for_range(0, self.len(), false, |m, s| {
            t.push_new(m, s);
        });
        t
    }
}

/// A sorted set.
#[derive(Clone)]
pub struct ZSet {
    enc: Enc,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        self.for_range(0, self.len(), false, |m, s| {
            l.entry(&(String::from_utf8_lossy(m), s));
        });
        l.finish()
    }
}

/// What ZADD's per-element logic did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    Updated,
    /// Nothing changed (same score, or a condition was not met).
    Unchanged,
    /// A condition (NX, XX, GT, LT) prevented the operation.
    Skipped,
}

/// ZADD's flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// The increment made the score NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NanScore;

impl ZSet {
    /// An empty sorted set in the listpack encoding.
    pub fn new() -> ZSet {
        ZSet {
            enc: Enc::Pack(Pack::default()),
        }
    }

    /// An empty sorted set in the encoding Redis's zsetTypeCreate picks for `size_hint` elements whose first
    /// member is `len_hint` bytes.
    pub fn with_hint(size_hint: usize, len_hint: usize, lim: &ZLimits) -> ZSet {
        if size_hint <= lim.max_entries && len_hint <= lim.max_value {
            ZSet::new()
        } else {
            ZSet {
                enc: Enc::Tree(Box::new(Tree::new())),
            }
        }
    }

    /// Build from (member, score) pairs with distinct members, choosing the encoding as Redis does for stored
    /// results (listpack when the count and every member fit the limits).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], f64)>, lim: &ZLimits) -> ZSet {
        let mut v: Vec<(&[u8], f64)> = pairs.into_iter().collect();
        v.sort_by(|a, b| key_cmp(a.1, a.0, b.1, b.0));
        let small = v.len() <= lim.max_entries && v.iter().all(|(m, _)| m.len() <= lim.max_value);
        if small {
            let mut p = Pack::default();
            for (m, s) in &v {
                encode_entry(&mut p.buf, m, *s);
            }
            p.len = v.len() as u32;
            ZSet { enc: Enc::Pack(p) }
        } else {
            let mut t = Tree::new();
            for (m, s) in v {
                t.push_new(m, s);
            }
            ZSet {
                enc: Enc::Tree(Box::new(t)),
            }
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.enc {
            Enc::Pack(_) => "listpack",
            Enc::Tree(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.len as usize,
            Enc::Tree(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.enc {
            Enc::Pack(p) => p.find(member).map(|(_, s)| s),
            Enc::Tree(t) => t.dict.get(member).copied(),
        }
    }

    fn convert_to_tree(&mut self) {
        if let Enc::Pack(p) = &self.enc {
            let mut t = Tree::new();
            for (_, m, s) in p.iter() {
                t.push_new(m, s);
            }
            self.enc = Enc::Tree(Box::new(t));
        }
    }

    /// Redis's zsetTypeMaybeConvert: convert a listpack that is about to receive `size_hint` elements.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: &ZLimits) {
        if matches!(self.enc, Enc::Pack(_)) && size_hint > lim.max_entries {
            self.convert_to_tree();
        }
    }

    /// Set `member`'s score (insert or update); true if it was added.
    pub fn insert(&mut self, member: &[u8], score: f64, lim: &ZLimits) -> bool {
        if let Enc::Pack(p) = &mut self.enc {
            match p.find(member) {
                Some((off, old)) => {
                    if old != score {
                        p.remove_at(off);
                        p.insert(member, score);
                    }
                    return false;
                }
                None => {
                    if p.len as usize + 1 > lim.max_entries || member.len() > lim.max_value {
                        self.convert_to_tree();
                    } else {
                        p.insert(member, score);
                        return true;
                    }
                }
            }
        }
        let Enc::Tree(t) = &mut self.enc else {
            return false;
        };
        match t.dict.find_index(member) {
            Some(slot) => {
                let old = *t.dict.at(slot).2;
                if old != score {
                    t.update_score(slot, member, old, score);
                }
                false
            }
            None => {
                t.insert_new(member, score);
                true
            }
        }
    }

    /// ZADD's per-element logic (Redis's zsetAdd): returns what happened and the resulting score.
    pub fn add(
        &mut self,
        member: &[u8],
        mut score: f64,
        f: AddFlags,
        lim: &ZLimits,
    ) -> Result<(AddOutcome, f64), NanScore> {
        // The big encoding: one dict lookup, then the tree.
        let slot = match &self.enc {
            Enc::Tree(t) => Some(t.dict.find_index(member)),
            Enc::Pack(_) => None,
        };
        let cur = match slot {
            Some(Some(i)) => match &self.enc {
                Enc::Tree(t) => Some(*t.dict.at(i).2),
                Enc::Pack(_) => None,
            },
            Some(None) => None,
            None => self.score(member),
        };
        match cur {
            Some(cur) => {
                if f.nx {
                    return Ok((AddOutcome::Skipped, cur));
                }
                if f.incr {
                    score += cur;
                    if score.is_nan() {
                        return Err(NanScore);
                    }
                }
                if (f.lt && score >= cur) || (f.gt && score <= cur) {
                    return Ok((AddOutcome::Skipped, cur));
                }
                if score != cur {
                    match (&mut self.enc, slot) {
                        (Enc::Tree(t), Some(Some(i))) => t.update_score(i, member, cur, score),
                        _ => {
                            self.insert(member, score, lim);
                        }
                    }
                    Ok((AddOutcome::Updated, score))
                } else {
                    Ok((AddOutcome::Unchanged, score))
                }
            }
            None => {
                if f.xx {
                    return Ok((AddOutcome::Skipped, 0.0));
                }
                match &mut self.enc {
                    Enc::Tree(t) => t.insert_new(member, score),
                    Enc::Pack(_) => {
                        self.insert(member, score, lim);
                    }
                }
                Ok((AddOutcome::Added, score))
            }
        }
    }

    /// Remove `member`; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.enc {
            Enc::Pack(p) => {
                let (off, s) = p.find(member)?;
                p.remove_at(off);
                Some(s)
            }
            Enc::Tree(t) => t.remove(member),
        }
    }

    /// Ascending (0-based) rank and score of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.enc {
            Enc::Pack(p) => p
                .iter()
                .enumerate()
                .find(|(_, (_, m, _))| *m == member)
                .map(|(i, (_, _, s))| (i, s)),
            Enc::Tree(t) => {
                let s = *t.dict.get(member)?;
                Some((t.rank_of(s, member), s))
            }
        }
    }

    /// The element with ascending rank `r`.
    pub fn get(&self, r: usize) -> Option<(&[u8], f64)> {
        if r >= self.len() {
            return None;
        }
        match &self.enc {
            Enc::Pack(p) => p.iter().nth(r).map(|(_, m, s)| (m, s)),
            Enc::Tree(t) => Some(t.select(r)),
        }
    }

    /// Visit ascending ranks [lo, hi) (clamped), in descending order when `rev`.
    pub fn for_range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let hi = hi.min(self.len());
        if lo >= hi {
            return;
        }
        match &self.enc {
            Enc::Pack(p) => {
                if rev {
                    let v: Vec<(&[u8], f64)> = p
                        .iter()
                        .skip(lo)
                        .take(hi - lo)
                        .map(|(_, m, s)| (m, s))
                        .collect();
                    for (m, s) in v.into_iter().rev() {
                        f(m, s);
                    }
                } else {
                    for (_, m, s) in p.iter().skip(lo).take(hi - lo) {
                        f(m, s);
                    }
                }
            }
            Enc::Tree(t) => t.for_range(lo, hi, rev, f),
        }
    }

    /// Every element in ascending order.
    pub fn to_vec(&self) -> Vec<(Vec<u8>, f64)> {
        let mut v = Vec::with_capacity(self.len());
        self.for_range(0, self.len(), false, |m, s| v.push((m.to_vec(), s)));
        v
    }

    /// Number of leading elements satisfying `pred` (true then false along the order).
    pub fn partition_point(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.iter().take_while(|(_, m, s)| pred(m, *s)).count(),
            Enc::Tree(t) => t.partition_point(pred),
        }
    }

    /// As [`ZSet::partition_point`] for a predicate on scores only.
    fn partition_point_score(&self, pred: impl Fn(f64) -> bool) -> usize {
        match &self.enc {
            Enc::Pack(p) => p.iter().take_while(|(_, _, s)| pred(*s)).count(),
            Enc::Tree(t) => t.partition_point_score(pred),
        }
    }

    /// Ranks [lo, hi) of the elements whose score is in `r`.
    pub fn score_ranks(&self, r: &ScoreRange) -> (usize, usize) {
        if r.is_empty() {
            return (0, 0);
        }
        let lo = self.partition_point_score(|s| !r.gte_min(s));
        let hi = self.partition_point_score(|s| r.lte_max(s));
        (lo, hi.max(lo))
    }

    /// Ranks [lo, hi) of the elements whose member is in `r` (meaningful when all scores are equal).
    pub fn lex_ranks(&self, r: &LexRange) -> (usize, usize) {
        if r.is_empty() {
            return (0, 0);
        }
        let lo = self.partition_point(|m, _| !r.gte_min(m));
        let hi = self.partition_point(|m, _| r.lte_max(m));
        (lo, hi.max(lo))
    }

    /// Remove ascending ranks [lo, hi) (clamped); returns how many were removed.
    pub fn remove_ranks(&mut self, lo: usize, hi: usize) -> usize {
        let hi = hi.min(self.len());
        if lo >= hi {
            return 0;
        }
        match &mut self.enc {
            Enc::Pack(p) => p.remove_ranks(lo, hi),
            Enc::Tree(t) => t.remove_ranks(lo, hi),
        }
        hi - lo
    }

    /// Remove and return up to `count` elements with the lowest scores (or highest when `max`), in pop order.
    pub fn pop(&mut self, max: bool, count: usize) -> Vec<(Vec<u8>, f64)> {
        let n = count.min(self.len());
        let (lo, hi) = if max {
            (self.len() - n, self.len())
        } else {
            (0, n)
        };
        if let Enc::Tree(t) = &mut self.enc {
            return t.pop(max, n);
        }
        let mut out = Vec::with_capacity(n);
        self.for_range(lo, hi, max, |m, s| out.push((m.to_vec(), s)));
        self.remove_ranks(lo, hi);
        out
    }

    /// Pop up to `count` lowest-scoring elements.
    pub fn pop_min(&mut self, count: usize) -> Vec<(Vec<u8>, f64)> {
        self.pop(false, count)
    }

    /// Pop up to `count` highest-scoring elements.
    pub fn pop_max(&mut self, count: usize) -> Vec<(Vec<u8>, f64)> {
        self.pop(true, count)
    }

    /// A uniformly random element, from a random number (None when empty).
    pub fn random(&self, rnd: u64) -> Option<(&[u8], f64)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = (rnd % n as u64) as usize;
        match &self.enc {
            Enc::Pack(p) => p.iter().nth(i).map(|(_, m, s)| (m, s)),
            Enc::Tree(t) => {
                let (m, _, &s) = t.dict.at(i);
                Some((m, s))
            }
        }
    }

    /// One ZSCAN step: visits some elements and returns the next cursor (0 = done). The listpack encoding
    /// visits everything at once.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match &self.enc {
            Enc::Pack(p) => {
                for (_, m, s) in p.iter() {
                    f(m, s);
                }
                0
            }
            Enc::Tree(t) => t.dict.scan(cursor, |m, _, &s| f(m, s)),
        }
    }

    /// True when ZSCAN returns everything in one call (compact encoding).
    pub fn is_compact(&self) -> bool {
        matches!(self.enc, Enc::Pack(_))
    }

    /// Do some incremental dict rehashing (for a cron); true while more is pending.
    pub fn rehash(&mut self, n: usize) -> bool {
        match &mut self.enc {
            Enc::Pack(_) => false,
            Enc::Tree(t) => t.dict.rehash(n),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Model = Vec<(f64, Vec<u8>)>;

    fn model_sort(m: &mut Model) {
        m.sort_by(|a, b| key_cmp(a.0, &a.1, b.0, &b.1));
    }

    fn check(z: &ZSet, m: &Model) {
        assert_eq!(z.len(), m.len());
        let v = z.to_vec();
        let got: Model = v.iter().map(|(mm, s)| (*s, mm.clone())).collect();
        assert_eq!(&got, m);
        for (i, (s, mm)) in m.iter().enumerate() {
            assert_eq!(z.rank(mm), Some((i, *s)));
            assert_eq!(z.get(i), Some((mm.as_slice(), *s)));
            assert_eq!(z.score(mm), Some(*s));
        }
        // Reverse ranges.
        let mut rv = Vec::new();
        z.for_range(1, m.len().saturating_sub(1), true, |mm, s| {
            rv.push((s, mm.to_vec()))
        });
        let mut want: Model = m
            .iter()
            .skip(1)
            .take(m.len().saturating_sub(2))
            .cloned()
            .collect();
        want.reverse();
        assert_eq!(rv, want);
        if let Enc::Tree(t) = &z.enc {
            t.check_invariants();
        }
    }

    impl Tree {
        /// Check the B+tree invariants: counts, exact first keys, fill, leaf links, order, dict agreement.
        fn check_invariants(&self) {
            // Returns (count, first key) of the subtree; collects leaves in order.
            fn walk(
                t: &Tree,
                node: u32,
                depth: u32,
                root: bool,
                leaves: &mut Vec<u32>,
            ) -> (usize, Option<(f64, u32)>) {
                if depth == t.height {
                    let l = t.lf(node);
                    assert!(root || l.len > 0, "empty non-root leaf");
                    leaves.push(node);
                    let first = (l.len > 0).then(|| (l.scores[0], l.slots[0]));
                    return (l.len as usize, first);
                }
                let x = t.inn(node);
                assert!(x.len >= 2 || (!root && x.len >= 1), "inner node too small");
                if !root {
                    assert!(x.len as usize >= IMIN, "inner node under minimum");
                }
                let mut total = 0;
                for j in 0..x.len as usize {
                    let (c, f) = walk(t, x.kids[j], depth + 1, false, leaves);
                    assert_eq!(c, x.counts[j] as usize, "count");
                    let f = f.expect("non-empty child");
                    assert_eq!(f.0.to_bits(), x.scores[j].to_bits(), "first score");
                    assert_eq!(f.1, x.slots[j], "first slot");
                    total += c;
                }
                (total, Some((x.scores[0], x.slots[0])))
            }
            let mut leaves = Vec::new();
            let (n, _) = walk(self, self.root, 0, true, &mut leaves);
            assert_eq!(n, self.len());
            for (k, &l) in leaves.iter().enumerate() {
                let x = self.lf(l);
                assert_eq!(x.prev, if k == 0 { NIL } else { leaves[k - 1] });
                assert_eq!(x.next, leaves.get(k + 1).copied().unwrap_or(NIL));
            }
            let mut prev: Option<(f64, u32)> = None;
            for &l in &leaves {
                let x = self.lf(l);
                for k in 0..x.len as usize {
                    let (s, slot) = (x.scores[k], x.slots[k]);
                    let (m, _, &ds) = self.dict.at(slot as usize);
                    assert_eq!(ds.to_bits(), s.to_bits(), "dict score");
                    if let Some((ps, pslot)) = prev {
                        assert_eq!(self.cmp_key(ps, pslot, s, m), Ordering::Less, "order");
                    }
                    prev = Some((s, slot));
                }
            }
            let live = self.leaves.iter().filter(|l| l.is_some()).count();
            assert_eq!(live, leaves.len(), "leaked leaves");
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(u8, i8),
        Rem(u8),
        RemRanks(u8, u8),
        Pop(bool, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..60, -5i8..5).prop_map(|(m, s)| Op::Add(m, s)),
            2 => (0u8..60).prop_map(Op::Rem),
            1 => (0u8..20, 0u8..5).prop_map(|(a, b)| Op::RemRanks(a, b)),
            1 => (any::<bool>(), 0u8..4).prop_map(|(x, c)| Op::Pop(x, c)),
        ]
    }

    fn member(i: u8) -> Vec<u8> {
        format!("m{i}").into_bytes()
    }

    /// Wider member space and score range: deeper trees, more splits, merges and in-place updates.
    fn wide_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Add(m, s)),
            3 => any::<u8>().prop_map(Op::Rem),
            1 => (0u8..200, 0u8..40).prop_map(|(a, b)| Op::RemRanks(a, b)),
            1 => (any::<bool>(), 0u8..30).prop_map(|(x, c)| Op::Pop(x, c)),
        ]
    }

    fn run(ops: Vec<Op>, lim: ZLimits, ranges: Vec<(i8, i8, bool, bool)>) {
        let mut z = ZSet::new();
        let mut m: Model = Vec::new();
        for op in ops {
            match op {
                Op::Add(i, s) => {
                    let mm = member(i);
                    let s = f64::from(s) / 2.0;
                    let added = z.insert(&mm, s, &lim);
                    let was = m.iter().position(|x| x.1 == mm);
                    assert_eq!(added, was.is_none());
                    if let Some(p) = was {
                        m.remove(p);
                    }
                    m.push((s, mm));
                    model_sort(&mut m);
                }
                Op::Rem(i) => {
                    let mm = member(i);
                    let was = m.iter().position(|x| x.1 == mm);
                    let got = z.remove(&mm);
                    assert_eq!(got, was.map(|p| m[p].0));
                    if let Some(p) = was {
                        m.remove(p);
                    }
                }
                Op::RemRanks(a, n) => {
                    let lo = a as usize;
                    let hi = (lo + n as usize).min(m.len());
                    let got = z.remove_ranks(lo, lo + n as usize);
                    if lo < hi {
                        m.drain(lo..hi);
                        assert_eq!(got, hi - lo);
                    } else {
                        assert_eq!(got, 0);
                    }
                }
                Op::Pop(max, c) => {
                    let got = z.pop(max, c as usize);
                    let n = (c as usize).min(m.len());
                    let want: Vec<(Vec<u8>, f64)> = if max {
                        m.drain(m.len() - n..)
                            .rev()
                            .map(|(s, mm)| (mm, s))
                            .collect()
                    } else {
                        m.drain(..n).map(|(s, mm)| (mm, s)).collect()
                    };
                    assert_eq!(got, want);
                }
            }
            check(&z, &m);
        }
        for (a, b, ax, bx) in ranges {
            let r = ScoreRange {
                min: f64::from(a) / 2.0,
                max: f64::from(b) / 2.0,
                minex: ax,
                maxex: bx,
            };
            let (lo, hi) = z.score_ranks(&r);
            let want: Vec<usize> = (0..m.len())
                .filter(|&i| r.gte_min(m[i].0) && r.lte_max(m[i].0))
                .collect();
            assert_eq!((lo..hi).collect::<Vec<_>>(), want);
            // Lex over members only (valid order when comparing a same-score set).
            let lr = LexRange {
                min: LexBound::Val(member(a.unsigned_abs()), ax),
                max: if bx {
                    LexBound::Max
                } else {
                    LexBound::Val(member(b.unsigned_abs()), false)
                },
            };
            let mut same = ZSet::new();
            for (_, mm) in &m {
                same.insert(mm, 0.0, &lim);
            }
            let (lo, hi) = same.lex_ranks(&lr);
            let names: Vec<Vec<u8>> = {
                let mut v: Vec<Vec<u8>> = m.iter().map(|x| x.1.clone()).collect();
                v.sort();
                v
            };
            let want: Vec<usize> = (0..names.len())
                .filter(|&i| lr.gte_min(&names[i]) && lr.lte_max(&names[i]))
                .collect();
            assert_eq!((lo..hi).collect::<Vec<_>>(), want);
        }
        let c = z.clone();
        check(&c, &m);
    }

    proptest! {
        #[test]
        fn tree_matches_model(ops in proptest::collection::vec(op(), 0..300),
                              ranges in proptest::collection::vec((-6i8..6, -6i8..6, any::<bool>(), any::<bool>()), 0..8)) {
            run(ops, ZLimits { max_entries: 0, max_value: 64 }, ranges);
        }

        #[test]
        fn wide_tree_matches_model(ops in proptest::collection::vec(wide_op(), 0..1500)) {
            run(ops, ZLimits { max_entries: 0, max_value: 64 }, vec![(-6, 6, false, true)]);
        }

        #[test]
        fn listpack_and_conversion_match_model(ops in proptest::collection::vec(op(), 0..200),
                              ranges in proptest::collection::vec((-6i8..6, -6i8..6, any::<bool>(), any::<bool>()), 0..8)) {
            run(ops, ZLimits { max_entries: 16, max_value: 64 }, ranges);
        }
    }

    #[test]
    fn encodings_and_conversion() {
        let lim = ZLimits::default();
        let mut z = ZSet::new();
        for i in 0..128 {
            z.insert(format!("m{i}").as_bytes(), i as f64, &lim);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"x", 0.5, &lim);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"x"), Some((1, 0.5)));
        let mut y = ZSet::new();
        y.insert(&[b'a'; 65], 1.0, &lim);
        assert_eq!(y.encoding(), "skiplist");
        assert_eq!(ZSet::with_hint(129, 1, &lim).encoding(), "skiplist");
        assert_eq!(ZSet::with_hint(3, 65, &lim).encoding(), "skiplist");
    }

    #[test]
    fn scores_roundtrip_in_pack() {
        let lim = ZLimits::default();
        let mut z = ZSet::new();
        let vals = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -4503599627370496.0,
            9007199254740993.0,
            0.1,
        ];
        for (i, v) in vals.iter().enumerate() {
            z.insert(format!("m{i}").as_bytes(), *v, &lim);
        }
        for (i, v) in vals.iter().enumerate() {
            let s = z.score(format!("m{i}").as_bytes()).unwrap();
            let v = if *v == 0.0 { 0.0 } else { *v };
            assert_eq!(s.to_bits(), v.to_bits(), "{v}");
        }
    }

    #[test]
    fn add_flags() {
        let lim = ZLimits::default();
        let mut z = ZSet::new();
        let f = AddFlags::default();
        assert_eq!(z.add(b"a", 1.0, f, &lim), Ok((AddOutcome::Added, 1.0)));
        assert_eq!(z.add(b"a", 1.0, f, &lim), Ok((AddOutcome::Unchanged, 1.0)));
        let gt = AddFlags { gt: true, ..f };
        assert_eq!(z.add(b"a", 0.0, gt, &lim), Ok((AddOutcome::Skipped, 1.0)));
        assert_eq!(z.add(b"a", 2.0, gt, &lim), Ok((AddOutcome::Updated, 2.0)));
        let inc = AddFlags { incr: true, ..f };
        z.add(b"i", f64::INFINITY, f, &lim).unwrap();
        assert_eq!(z.add(b"i", f64::NEG_INFINITY, inc, &lim), Err(NanScore));
        let xx = AddFlags { xx: true, ..f };
        assert_eq!(z.add(b"new", 1.0, xx, &lim), Ok((AddOutcome::Skipped, 0.0)));
        assert_eq!(z.len(), 2);
    }

    #[test]
    fn range_parsing() {
        let r = ScoreRange::parse(b"(1", b"+inf").unwrap();
        assert!(r.minex && !r.maxex && r.max == f64::INFINITY);
        assert!(ScoreRange::parse(b"nan", b"1").is_none());
        assert!(ScoreRange::parse(b"(", b"").is_some());
        assert!(ScoreRange::parse(b"1x", b"2").is_none());
        assert!(LexRange::parse(b"a", b"+").is_none());
        assert!(LexRange::parse(b"-", b"+").is_some_and(|r| !r.is_empty()));
        assert!(LexRange::parse(b"+", b"-").is_some_and(|r| r.is_empty()));
        assert!(LexRange::parse(b"[a", b"(a").is_some_and(|r| r.is_empty()));
        assert!(LexRange::parse(b"[a", b"[a").is_some_and(|r| !r.is_empty()));
    }

    #[test]
    fn scan_covers_tree() {
        let lim = ZLimits {
            max_entries: 0,
            max_value: 64,
        };
        let mut z = ZSet::new();
        for i in 0..1000 {
            z.insert(format!("m{i}").as_bytes(), i as f64, &lim);
        }
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        loop {
            c = z.scan(c, |m, s| {
                assert_eq!(z.score(m), Some(s));
                seen.insert(m.to_vec());
            });
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }
}
