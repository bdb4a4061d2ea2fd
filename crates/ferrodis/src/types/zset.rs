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
// Tree: the order-statistic treap + dict

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    score: f64,
    /// Index of the member's slot in the dict.
    slot: u32,
    left: u32,
    right: u32,
    /// Elements in this subtree (0 for a free node).
    size: u32,
}

struct Tree {
    nodes: Vec<Node>,
    /// Head of the free-node list (linked through `left`).
    free: u32,
    root: u32,
    /// member -> node index.
    dict: Dict<u32>,
    seed: u64,
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn tree_seed() -> u64 {
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(rand::random)
}

impl Tree {
    fn new() -> Tree {
        Tree {
            nodes: Vec::new(),
            free: NIL,
            root: NIL,
            dict: Dict::new(),
            seed: tree_seed(),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.dict.len()
    }

    #[inline]
    fn size(&self, n: u32) -> u32 {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].size
        }
    }

    #[inline]
    fn prio(&self, n: u32) -> u64 {
        mix(u64::from(n) ^ self.seed)
    }

    #[inline]
    fn member(&self, n: u32) -> &[u8] {
        self.dict.at(self.nodes[n as usize].slot as usize).0
    }

    #[inline]
    fn score_of(&self, n: u32) -> f64 {
        self.nodes[n as usize].score
    }

    #[inline]
    fn fix(&mut self, n: u32) {
        let (l, r) = {
            let x = &self.nodes[n as usize];
            (x.left, x.right)
        };
        let s = self.size(l) + self.size(r) + 1;
        self.nodes[n as usize].size = s;
    }

    /// Split `t` into (first `k` elements, the rest).
    fn split(&mut self, t: u32, k: u32) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let l = self.nodes[t as usize].left;
        let ls = self.size(l);
        if k <= ls {
            let (a, b) = self.split(l, k);
            self.nodes[t as usize].left = b;
            self.fix(t);
            (a, t)
        } else {
            let r = self.nodes[t as usize].right;
            let (a, b) = self.split(r, k - ls - 1);
            self.nodes[t as usize].right = a;
            self.fix(t);
            (t, b)
        }
    }

    /// Concatenate (every element of `a` precedes every element of `b`).
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.prio(a) > self.prio(b) {
            let r = self.nodes[a as usize].right;
            let m = self.merge(r, b);
            self.nodes[a as usize].right = m;
            self.fix(a);
            a
        } else {
            let l = self.nodes[b as usize].left;
            let m = self.merge(a, l);
            self.nodes[b as usize].left = m;
            self.fix(b);
            b
        }
    }

    /// Number of leading elements for which `pred` holds (`pred` must be true then false along the order).
    fn partition_point(&self, pred: impl Fn(&[u8], f64) -> bool) -> usize {
        let mut t = self.root;
        let mut n = 0usize;
        while t != NIL {
            let x = &self.nodes[t as usize];
            if pred(self.member(t), x.score) {
                n += self.size(x.left) as usize + 1;
                t = x.right;
            } else {
                t = x.left;
            }
        }
        n
    }

    /// The node with rank `k` (< len).
    fn select(&self, mut k: u32) -> u32 {
        let mut t = self.root;
        while t != NIL {
            let x = &self.nodes[t as usize];
            let ls = self.size(x.left);
            match k.cmp(&ls) {
                Ordering::Less => t = x.left,
                Ordering::Equal => return t,
                Ordering::Greater => {
                    k -= ls + 1;
                    t = x.right;
                }
            }
        }
        NIL
    }

    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        self.partition_point(|m, s| key_cmp(s, m, score, member) == Ordering::Less)
    }

    fn alloc(&mut self, score: f64, slot: u32) -> u32 {
        let node = Node {
            score,
            slot,
            left: NIL,
            right: NIL,
            size: 1,
        };
        if self.free != NIL {
            let n = self.free;
            self.free = self.nodes[n as usize].left;
            self.nodes[n as usize] = node;
            n
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    fn release(&mut self, n: u32) {
        let x = &mut self.nodes[n as usize];
        x.size = 0;
        x.right = NIL;
        x.left = self.free;
        self.free = n;
    }

    /// Link node `n` into the tree at its ordered position.
    fn link(&mut self, n: u32) {
        let r = self.rank_of(self.score_of(n), self.member(n));
        let (a, b) = self.split(self.root, r as u32);
        let a = self.merge(a, n);
        self.root = self.merge(a, b);
    }

    /// Unlink the node with rank `r` from the tree (it stays allocated).
    fn unlink_rank(&mut self, r: usize) -> u32 {
        let (a, rest) = self.split(self.root, r as u32);
        let (m, b) = self.split(rest, 1);
        self.root = self.merge(a, b);
        m
    }

    fn insert_new(&mut self, member: &[u8], score: f64) {
        let n = self.alloc(score, self.dict.len() as u32);
        self.dict.insert_new(member, &[], n);
        self.link(n);
    }

    /// Remove `member`'s entry from the dict, keeping node slots right after the dict moves its last slot.
    fn dict_remove(&mut self, slot: usize) {
        self.dict.remove_index(slot);
        if slot < self.dict.len() {
            let moved = *self.dict.at(slot).2;
            self.nodes[moved as usize].slot = slot as u32;
        }
    }

    fn update_score(&mut self, n: u32, score: f64) {
        let r = self.rank_of(self.score_of(n), self.member(n));
        let m = self.unlink_rank(r);
        debug_assert_eq!(m, n);
        let x = &mut self.nodes[n as usize];
        x.score = score;
        x.left = NIL;
        x.right = NIL;
        x.size = 1;
        self.link(n);
    }

    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let n = *self.dict.get(member)?;
        let score = self.score_of(n);
        let r = self.rank_of(score, member);
        self.unlink_rank(r);
        let slot = self.nodes[n as usize].slot as usize;
        self.dict_remove(slot);
        self.release(n);
        Some(score)
    }

    /// Remove ranks [lo, hi).
    fn remove_ranks(&mut self, lo: usize, hi: usize) {
        let (a, rest) = self.split(self.root, lo as u32);
        let (m, b) = self.split(rest, (hi - lo) as u32);
        self.root = self.merge(a, b);
        let mut stack = vec![m];
        while let Some(t) = stack.pop() {
            if t == NIL {
                continue;
            }
            let x = self.nodes[t as usize];
            stack.push(x.left);
            stack.push(x.right);
            self.dict_remove(x.slot as usize);
            self.release(t);
        }
        if self.dict.is_empty() {
            self.nodes = Vec::new();
            self.free = NIL;
        }
    }

    /// Visit ranks [lo, hi) in ascending order, or descending when `rev`.
    fn for_range(&self, lo: usize, hi: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        if lo >= hi {
            return;
        }
        let mut stack: Vec<u32> = Vec::with_capacity(64);
        // Descend to the first element to visit, keeping the nodes still to be visited after it.
        let mut k = if rev { hi - 1 } else { lo } as u32;
        let mut t = self.root;
        while t != NIL {
            let x = &self.nodes[t as usize];
            let ls = self.size(x.left);
            match k.cmp(&ls) {
                Ordering::Equal => {
                    stack.push(t);
                    break;
                }
                Ordering::Less => {
                    if !rev {
                        stack.push(t);
                    }
                    t = x.left;
                }
                Ordering::Greater => {
                    if rev {
                        stack.push(t);
                    }
                    k -= ls + 1;
                    t = x.right;
                }
            }
        }
        let mut remaining = hi - lo;
        while remaining > 0 {
            let Some(t) = stack.pop() else { break };
            let x = &self.nodes[t as usize];
            f(self.member(t), x.score);
            remaining -= 1;
            let mut c = if rev { x.left } else { x.right };
            while c != NIL {
                stack.push(c);
                let y = &self.nodes[c as usize];
                c = if rev { y.right } else { y.left };
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
            // Appending in order: rank = len.
            let n = t.alloc(s, t.dict.len() as u32);
            t.dict.insert_new(m, &[], n);
            let r = t.merge(t.root, n);
            t.root = r;
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
                let n = t.alloc(s, t.dict.len() as u32);
                t.dict.insert_new(m, &[], n);
                let r = t.merge(t.root, n);
                t.root = r;
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
            Enc::Tree(t) => t.dict.get(member).map(|&n| t.score_of(n)),
        }
    }

    fn convert_to_tree(&mut self) {
        if let Enc::Pack(p) = &self.enc {
            let mut t = Tree::new();
            for (_, m, s) in p.iter() {
                let n = t.alloc(s, t.dict.len() as u32);
                t.dict.insert_new(m, &[], n);
                let r = t.merge(t.root, n);
                t.root = r;
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
        match t.dict.get(member) {
            Some(&n) => {
                if t.score_of(n) != score {
                    t.update_score(n, score);
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
        match self.score(member) {
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
                    self.insert(member, score, lim);
                    Ok((AddOutcome::Updated, score))
                } else {
                    Ok((AddOutcome::Unchanged, score))
                }
            }
            None => {
                if f.xx {
                    return Ok((AddOutcome::Skipped, 0.0));
                }
                self.insert(member, score, lim);
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
                let n = *t.dict.get(member)?;
                let s = t.score_of(n);
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
            Enc::Tree(t) => {
                let n = t.select(r as u32);
                Some((t.member(n), t.score_of(n)))
            }
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

    /// Ranks [lo, hi) of the elements whose score is in `r`.
    pub fn score_ranks(&self, r: &ScoreRange) -> (usize, usize) {
        if r.is_empty() {
            return (0, 0);
        }
        let lo = self.partition_point(|_, s| !r.gte_min(s));
        let hi = self.partition_point(|_, s| r.lte_max(s));
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
                let (m, _, &node) = t.dict.at(i);
                Some((m, t.score_of(node)))
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
            Enc::Tree(t) => t.dict.scan(cursor, |m, _, &n| f(m, t.score_of(n))),
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
            fn walk(t: &Tree, n: u32) -> u32 {
                if n == NIL {
                    return 0;
                }
                let x = t.nodes[n as usize];
                let s = walk(t, x.left) + walk(t, x.right) + 1;
                assert_eq!(s, x.size);
                s
            }
            assert_eq!(walk(t, t.root) as usize, t.len());
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
        format!("m{}", i % 60).into_bytes()
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
