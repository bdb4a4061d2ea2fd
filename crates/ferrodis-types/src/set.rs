//! The set value type, with Redis 7.2's three encodings: `intset` (sorted integers, while every member is an
//! integer and there are at most `set-max-intset-entries`), `listpack` (small sets of short strings, insertion
//! order) and `hashtable` (a [`Dict`]). Conversions follow Redis's rules (setTypeCreate, setTypeAdd,
//! setTypeMaybeConvert) and never go back.

use super::dict::{Compact, CompactMut, CompactRef, Dict, Packed, PackedIter};
use super::EncodingLimits;
use ferrodis_protocol::num::parse_i64;

/// A borrowed view of the representation.
enum View<P, D> {
    Intset(P),
    Listpack(P),
    Table(D),
}

/// An intset: sorted distinct integers, little-endian, all of one width (2, 4 or 8 bytes, the smallest that
/// holds every member, as Redis's intset), in the raw bytes of a [`Packed`] whose tag is the width class
/// (1, 2, 3; tag 0 is a listpack of strings).
mod intset {
    use super::Packed;

    #[inline]
    pub fn width(p: &Packed) -> usize {
        1 << p.tag()
    }

    fn class_for(x: i64) -> u8 {
        if i16::try_from(x).is_ok() {
            1
        } else if i32::try_from(x).is_ok() {
            2
        } else {
            3
        }
    }

    pub fn new() -> Packed {
        let mut p = Packed::new();
        p.set_tag(1);
        p
    }

    #[inline]
    pub fn len(p: &Packed) -> usize {
        p.bytes() / width(p)
    }

    #[inline]
    pub fn get(p: &Packed, i: usize) -> i64 {
        let w = width(p);
        let b = &p.data()[i * w..i * w + w];
        match w {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }

    fn enc(x: i64, w: usize) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..w].copy_from_slice(&x.to_le_bytes()[..w]);
        out
    }

    pub fn search(p: &Packed, x: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, len(p));
        while lo < hi {
            let mid = (lo + hi) / 2;
            match get(p, mid).cmp(&x) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Insert `x` at sorted position `i` (from `search`), widening every member first if needed.
    pub fn insert(p: &mut Packed, i: usize, x: i64) {
        let c = class_for(x);
        if c > p.tag() {
            let n = len(p);
            let w = 1usize << c;
            let mut raw = Vec::with_capacity((n + 1) * w);
            for k in 0..n {
                raw.extend_from_slice(&enc(get(p, k), w)[..w]);
            }
            let mut q = Packed::new();
            q.raw_splice(0..0, &raw);
            q.set_tag(c);
            *p = q;
        }
        let w = width(p);
        p.raw_splice(i * w..i * w, &enc(x, w)[..w]);
    }

    pub fn remove(p: &mut Packed, i: usize) -> i64 {
        let x = get(p, i);
        let w = width(p);
        p.raw_splice(i * w..i * w + w, &[]);
        x
    }
}

/// 8 bytes: a thin pointer to the intset/listpack block, or to the boxed [`Dict`].
#[derive(Clone, Debug)]
pub struct Set {
    repr: Compact<Dict<()>>,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            repr: Compact::packed(intset::new()),
        }
    }
}

/// One member as stored: an integer (intset) or bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Elem<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Int(v) => itoa::Buffer::new().format(*v).as_bytes().to_vec(),
            Elem::Bytes(b) => b.to_vec(),
        }
    }

    /// Call `f` with the member's bytes (no allocation).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Int(v) => f(itoa::Buffer::new().format(*v).as_bytes()),
            Elem::Bytes(b) => f(b),
        }
    }
}

pub enum Iter<'a> {
    Intset(&'a Packed, std::ops::Range<usize>),
    Listpack(PackedIter<'a>),
    Table(Box<dyn Iterator<Item = &'a [u8]> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;
    fn next(&mut self) -> Option<Elem<'a>> {
        match self {
            Iter::Intset(p, r) => r.next().map(|i| Elem::Int(intset::get(p, i))),
            Iter::Listpack(it) => it.next().map(Elem::Bytes),
            Iter::Table(it) => it.next().map(Elem::Bytes),
        }
    }
}

impl Set {
    #[inline]
    fn view(&self) -> View<&Packed, &Dict<()>> {
        match self.repr.get() {
            CompactRef::Packed(p) if p.tag() == 0 => View::Listpack(p),
            CompactRef::Packed(p) => View::Intset(p),
            CompactRef::Big(d) => View::Table(d),
        }
    }

    #[inline]
    fn view_mut(&mut self) -> View<&mut Packed, &mut Dict<()>> {
        match self.repr.get_mut() {
            CompactMut::Packed(p) if p.tag() == 0 => View::Listpack(p),
            CompactMut::Packed(p) => View::Intset(p),
            CompactMut::Big(d) => View::Table(d),
        }
    }

    /// An empty set in the encoding Redis's setTypeCreate picks for a first member `first` and about
    /// `size_hint` members.
    pub fn create(first: &[u8], size_hint: usize, lim: &EncodingLimits) -> Set {
        let repr = if parse_i64(first).is_some() && size_hint <= lim.set_max_intset_entries {
            Compact::packed(intset::new())
        } else if size_hint <= lim.set_max_listpack_entries {
            Compact::packed(Packed::new())
        } else {
            Compact::big(Box::new(Dict::with_capacity(size_hint)))
        };
        Set { repr }
    }

    /// An empty intset (the starting point of SINTERSTORE/SUNIONSTORE/SDIFFSTORE results).
    pub fn new_intset() -> Set {
        Set::default()
    }

    /// Build a set by adding `members` in order, starting from an intset.
    pub fn from_members<'a>(
        members: impl IntoIterator<Item = &'a [u8]>,
        lim: &EncodingLimits,
    ) -> Set {
        let mut s = Set::new_intset();
        for m in members {
            s.add(m, lim);
        }
        s
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.view() {
            View::Intset(_) => "intset",
            View::Listpack(_) => "listpack",
            View::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self.view() {
            View::Intset(p) => intset::len(p),
            View::Listpack(p) => p.len(),
            View::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self.view() {
            View::Intset(p) => parse_i64(m).is_some_and(|x| intset::search(p, x).is_ok()),
            View::Listpack(p) => p.find(m, 1).is_some(),
            View::Table(d) => d.contains_key(m),
        }
    }

    fn convert(&mut self, to_table: bool, room: usize) {
        let items: Vec<Vec<u8>> = self.iter().map(|e| e.to_vec()).collect();
        self.repr = if to_table {
            let mut d = Dict::with_capacity(room.max(items.len()));
            for m in &items {
                d.insert_new(m, &[], ());
            }
            Compact::big(Box::new(d))
        } else {
            let mut p = Packed::new();
            for m in &items {
                p.push(m);
            }
            Compact::packed(p)
        };
    }

    /// Redis's setTypeMaybeConvert: convert to a hash table up front when `size_hint` members are about to be
    /// added and they cannot fit the compact encoding.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: &EncodingLimits) {
        let big = match self.view() {
            View::Listpack(_) => size_hint > lim.set_max_listpack_entries,
            View::Intset(_) => size_hint > lim.set_max_intset_entries,
            View::Table(_) => false,
        };
        if big {
            self.convert(true, size_hint);
        }
    }

    /// Add a member; returns true if it was not there.
    pub fn add(&mut self, m: &[u8], lim: &EncodingLimits) -> bool {
        match self.view_mut() {
            View::Table(d) => {
                if d.contains_key(m) {
                    return false;
                }
                d.insert_new(m, &[], ());
                true
            }
            View::Listpack(p) => {
                if p.find(m, 1).is_some() {
                    return false;
                }
                if p.len() < lim.set_max_listpack_entries
                    && m.len() <= lim.set_max_listpack_value
                    && p.fits(m.len() + 16)
                {
                    p.push(m);
                } else {
                    let n = p.len() + 1;
                    self.convert(true, n);
                    self.add(m, lim);
                }
                true
            }
            View::Intset(p) => {
                if let Some(x) = parse_i64(m) {
                    match intset::search(p, x) {
                        Ok(_) => return false,
                        Err(i) => intset::insert(p, i, x),
                    }
                    let n = intset::len(p);
                    if n > lim.set_max_intset_entries.min(1 << 26) {
                        self.convert(true, n);
                    }
                    return true;
                }
                let n = intset::len(p);
                let to_table =
                    !(n < lim.set_max_listpack_entries && m.len() <= lim.set_max_listpack_value);
                self.convert(to_table, n + 1);
                self.add(m, lim)
            }
        }
    }

    /// Remove a member; returns true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.view_mut() {
            View::Intset(p) => match parse_i64(m).map(|x| intset::search(p, x)) {
                Some(Ok(i)) => {
                    intset::remove(p, i);
                    true
                }
                _ => false,
            },
            View::Listpack(p) => match p.find(m, 1) {
                Some(off) => {
                    p.remove(off, 1);
                    true
                }
                None => false,
            },
            View::Table(d) => d.remove(m).is_some(),
        }
    }

    /// Members: ascending for an intset, insertion order for a listpack, table order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match self.view() {
            View::Intset(p) => Iter::Intset(p, 0..intset::len(p)),
            View::Listpack(p) => Iter::Listpack(p.iter()),
            View::Table(d) => Iter::Table(Box::new(d.iter().map(|(k, _, _)| k))),
        }
    }

    /// The i-th member (i < len()); `nth(random % len)` is a uniformly random member.
    pub fn nth(&self, i: usize) -> Option<Elem<'_>> {
        match self.view() {
            View::Intset(p) => (i < intset::len(p)).then(|| Elem::Int(intset::get(p, i))),
            View::Listpack(p) => p.nth(i).map(Elem::Bytes),
            View::Table(d) => (i < d.len()).then(|| Elem::Bytes(d.at(i).0)),
        }
    }

    /// Remove and return the i-th member (i < len()).
    pub fn remove_nth(&mut self, i: usize) -> Vec<u8> {
        match self.view_mut() {
            View::Intset(p) => Elem::Int(intset::remove(p, i)).to_vec(),
            View::Listpack(p) => {
                let (off, m) = p.iter_offsets().nth(i).expect("index in range");
                let m = m.to_vec();
                p.remove(off, 1);
                m
            }
            View::Table(d) => d.remove_index(i).0,
        }
    }

    /// SSCAN step: compact encodings return everything with cursor 0; a table scans from `cursor`.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Elem<'_>)) -> u64 {
        match self.view() {
            View::Table(d) => d.scan(cursor, |k, _, _| f(Elem::Bytes(k))),
            _ => {
                for e in self.iter() {
                    f(e);
                }
                0
            }
        }
    }

    pub fn is_compact(&self) -> bool {
        !self.repr.is_big()
    }

    /// Advance an incremental table resize (background cycle).
    pub fn rehash(&mut self, n: usize) -> bool {
        match self.view_mut() {
            View::Table(d) => d.rehash(n),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn lim(intset: usize, lp: usize, val: usize) -> EncodingLimits {
        EncodingLimits {
            set_max_intset_entries: intset,
            set_max_listpack_entries: lp,
            set_max_listpack_value: val,
            ..Default::default()
        }
    }

    #[test]
    fn encodings_follow_redis_rules() {
        let l = lim(4, 3, 5);
        let mut s = Set::create(b"1", 1, &l);
        assert_eq!(s.encoding(), "intset");
        for m in [&b"3"[..], b"1", b"2", b"-5"] {
            s.add(m, &l);
        }
        assert_eq!(s.len(), 4);
        assert_eq!(
            s.iter().map(|e| e.to_vec()).collect::<Vec<_>>(),
            vec![b"-5".to_vec(), b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
        assert!(s.contains(b"2") && !s.contains(b"02") && !s.contains(b"x"));
        s.add(b"7", &l);
        assert_eq!(s.encoding(), "hashtable");

        let mut s = Set::create(b"1", 1, &l);
        s.add(b"1", &l);
        s.add(b"a", &l);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"b", &l);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"c", &l);
        assert_eq!(s.encoding(), "hashtable");

        let mut s = Set::create(b"a", 1, &l);
        assert_eq!(s.encoding(), "listpack");
        s.add(b"toolong", &l);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(Set::create(b"a", 4, &l).encoding(), "hashtable");
        assert_eq!(Set::create(b"1", 4, &l).encoding(), "intset");
        assert_eq!(Set::create(b"1", 5, &l).encoding(), "hashtable");
    }

    #[test]
    fn small_sets_are_one_word_and_intsets_widen() {
        assert_eq!(std::mem::size_of::<Set>(), 8);
        let l = lim(100, 100, 64);
        let mut s = Set::create(b"1", 1, &l);
        for x in [5i64, -3, 300, -40000, 7_000_000_000, 2] {
            assert!(s.add(x.to_string().as_bytes(), &l));
        }
        assert!(!s.add(b"300", &l));
        assert_eq!(s.encoding(), "intset");
        let got: Vec<Vec<u8>> = s.iter().map(|e| e.to_vec()).collect();
        let want: Vec<Vec<u8>> = [-40000i64, -3, 2, 5, 300, 7_000_000_000]
            .iter()
            .map(|x| x.to_string().into_bytes())
            .collect();
        assert_eq!(got, want);
        assert!(s.contains(b"7000000000") && !s.contains(b"4"));
        assert!(s.remove(b"7000000000"));
        assert_eq!(s.nth(0), Some(Elem::Int(-40000)));
        assert_eq!(s.remove_nth(0), b"-40000".to_vec());
        assert_eq!(s.len(), 4);
        for x in [i64::MIN, i64::MAX, i32::MIN as i64, i16::MAX as i64 + 1] {
            assert!(s.add(x.to_string().as_bytes(), &l));
            assert!(s.contains(x.to_string().as_bytes()));
        }
        let c = s.clone();
        assert_eq!(
            c.iter().map(|e| e.to_vec()).collect::<Vec<_>>(),
            s.iter().map(|e| e.to_vec()).collect::<Vec<_>>()
        );
    }

    proptest! {
        #[test]
        fn set_matches_model(ops in proptest::collection::vec((0u8..3, 0usize..60, any::<bool>()), 0..400), lp in 1usize..10, is in 1usize..10) {
            let l = lim(is, lp, 4);
            let mut s = Set::default();
            let mut m: BTreeSet<Vec<u8>> = BTreeSet::new();
            for (op, x, num) in ops {
                let x = if num { x.to_string().into_bytes() } else { format!("m{x}").into_bytes() };
                match op {
                    0 | 1 => prop_assert_eq!(s.add(&x, &l), m.insert(x)),
                    _ => prop_assert_eq!(s.remove(&x), m.remove(&x)),
                }
                prop_assert_eq!(s.len(), m.len());
            }
            let got: BTreeSet<Vec<u8>> = s.iter().map(|e| e.to_vec()).collect();
            prop_assert_eq!(&got, &m);
            for x in &m { prop_assert!(s.contains(x)); }
            let mut popped = BTreeSet::new();
            while !s.is_empty() {
                let i = s.len() / 2;
                let e = s.nth(i).unwrap().to_vec();
                prop_assert_eq!(s.remove_nth(i), e.clone());
                popped.insert(e);
            }
            prop_assert_eq!(popped, m);
        }
    }
}
