//! The set value type, with Redis 7.2's three encodings: `intset` (sorted integers, while every member is an
//! integer and there are at most `set-max-intset-entries`), `listpack` (small sets of short strings, insertion
//! order) and `hashtable` (a [`Dict`]). Conversions follow Redis's rules (setTypeCreate, setTypeAdd,
//! setTypeMaybeConvert) and never go back.

use super::dict::{Dict, Packed, PackedIter};
use super::EncodingLimits;
use ferrodis_protocol::num::parse_i64;

#[derive(Clone, Debug)]
enum Repr {
    Intset(Vec<i64>),
    Listpack(Packed),
    Table(Dict<()>),
}

#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            repr: Repr::Intset(Vec::new()),
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
    Intset(std::slice::Iter<'a, i64>),
    Listpack(PackedIter<'a>),
    Table(Box<dyn Iterator<Item = &'a [u8]> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;
    fn next(&mut self) -> Option<Elem<'a>> {
        match self {
            Iter::Intset(it) => it.next().map(|v| Elem::Int(*v)),
            Iter::Listpack(it) => it.next().map(Elem::Bytes),
            Iter::Table(it) => it.next().map(Elem::Bytes),
        }
    }
}

impl Set {
    /// An empty set in the encoding Redis's setTypeCreate picks for a first member `first` and about
    /// `size_hint` members.
    pub fn create(first: &[u8], size_hint: usize, lim: &EncodingLimits) -> Set {
        let repr = if parse_i64(first).is_some() && size_hint <= lim.set_max_intset_entries {
            Repr::Intset(Vec::new())
        } else if size_hint <= lim.set_max_listpack_entries {
            Repr::Listpack(Packed::new())
        } else {
            Repr::Table(Dict::with_capacity(size_hint))
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
        match self.repr {
            Repr::Intset(_) => "intset",
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Intset(v) => v.len(),
            Repr::Listpack(p) => p.len(),
            Repr::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Intset(v) => parse_i64(m).is_some_and(|x| v.binary_search(&x).is_ok()),
            Repr::Listpack(p) => p.find(m, 1).is_some(),
            Repr::Table(d) => d.contains_key(m),
        }
    }

    fn convert(&mut self, to_table: bool, room: usize) {
        let items: Vec<Vec<u8>> = self.iter().map(|e| e.to_vec()).collect();
        self.repr = if to_table {
            let mut d = Dict::with_capacity(room.max(items.len()));
            for m in &items {
                d.insert_new(m, &[], ());
            }
            Repr::Table(d)
        } else {
            let mut p = Packed::new();
            for m in &items {
                p.push(m);
            }
            Repr::Listpack(p)
        };
    }

    /// Redis's setTypeMaybeConvert: convert to a hash table up front when `size_hint` members are about to be
    /// added and they cannot fit the compact encoding.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: &EncodingLimits) {
        let big = match self.repr {
            Repr::Listpack(_) => size_hint > lim.set_max_listpack_entries,
            Repr::Intset(_) => size_hint > lim.set_max_intset_entries,
            Repr::Table(_) => false,
        };
        if big {
            self.convert(true, size_hint);
        }
    }

    /// Add a member; returns true if it was not there.
    pub fn add(&mut self, m: &[u8], lim: &EncodingLimits) -> bool {
        match &mut self.repr {
            Repr::Table(d) => {
                if d.contains_key(m) {
                    return false;
                }
                d.insert_new(m, &[], ());
                true
            }
            Repr::Listpack(p) => {
                if p.find(m, 1).is_some() {
                    return false;
                }
                if p.len() < lim.set_max_listpack_entries && m.len() <= lim.set_max_listpack_value {
                    p.push(m);
                } else {
                    let n = p.len() + 1;
                    self.convert(true, n);
                    self.add(m, lim);
                }
                true
            }
            Repr::Intset(v) => {
                if let Some(x) = parse_i64(m) {
                    match v.binary_search(&x) {
                        Ok(_) => return false,
                        Err(i) => v.insert(i, x),
                    }
                    if v.len() > lim.set_max_intset_entries.min(1 << 30) {
                        let n = v.len();
                        self.convert(true, n);
                    }
                    return true;
                }
                let n = v.len();
                let to_table =
                    !(n < lim.set_max_listpack_entries && m.len() <= lim.set_max_listpack_value);
                self.convert(to_table, n + 1);
                self.add(m, lim)
            }
        }
    }

    /// Remove a member; returns true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Intset(v) => match parse_i64(m).map(|x| v.binary_search(&x)) {
                Some(Ok(i)) => {
                    v.remove(i);
                    true
                }
                _ => false,
            },
            Repr::Listpack(p) => match p.find(m, 1) {
                Some(off) => {
                    p.remove(off, 1);
                    true
                }
                None => false,
            },
            Repr::Table(d) => d.remove(m).is_some(),
        }
    }

    /// Members: ascending for an intset, insertion order for a listpack, table order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Intset(v) => Iter::Intset(v.iter()),
            Repr::Listpack(p) => Iter::Listpack(p.iter()),
            Repr::Table(d) => Iter::Table(Box::new(d.iter().map(|(k, _, _)| k))),
        }
    }

    /// The i-th member (i < len()); `nth(random % len)` is a uniformly random member.
    pub fn nth(&self, i: usize) -> Option<Elem<'_>> {
        match &self.repr {
            Repr::Intset(v) => v.get(i).map(|x| Elem::Int(*x)),
            Repr::Listpack(p) => p.nth(i).map(Elem::Bytes),
            Repr::Table(d) => (i < d.len()).then(|| Elem::Bytes(d.at(i).0)),
        }
    }

    /// Remove and return the i-th member (i < len()).
    pub fn remove_nth(&mut self, i: usize) -> Vec<u8> {
        match &mut self.repr {
            Repr::Intset(v) => Elem::Int(v.remove(i)).to_vec(),
            Repr::Listpack(p) => {
                let (off, m) = p.iter_offsets().nth(i).expect("index in range");
                let m = m.to_vec();
                p.remove(off, 1);
                m
            }
            Repr::Table(d) => d.remove_index(i).0,
        }
    }

    /// SSCAN step: compact encodings return everything with cursor 0; a table scans from `cursor`.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Elem<'_>)) -> u64 {
        match &self.repr {
            Repr::Table(d) => d.scan(cursor, |k, _, _| f(Elem::Bytes(k))),
            _ => {
                for e in self.iter() {
                    f(e);
                }
                0
            }
        }
    }

    pub fn is_compact(&self) -> bool {
        !matches!(self.repr, Repr::Table(_))
    }

    /// Advance an incremental table resize (background cycle).
    pub fn rehash(&mut self, n: usize) -> bool {
        match &mut self.repr {
            Repr::Table(d) => d.rehash(n),
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
