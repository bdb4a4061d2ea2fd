//! The hash value type: a listpack-like packed field/value list while small (insertion order, as Redis's
//! listpack), converted to a [`Dict`] (field bytes as key, value bytes as tail, one allocation per field) past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`, and never back.

use super::dict::{Dict, Packed};
use super::EncodingLimits;

#[derive(Clone, Debug)]
enum Repr {
    /// field, value, field, value, ...
    Listpack(Packed),
    Table(Dict<()>),
}

#[derive(Clone, Debug)]
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Self {
        Self::new()
    }
}

pub enum Iter<'a> {
    Listpack(super::dict::PackedIter<'a>),
    Table(Box<dyn Iterator<Item = (&'a [u8], &'a [u8])> + 'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Listpack(it) => {
                let f = it.next()?;
                let v = it.next()?;
                Some((f, v))
            }
            Iter::Table(it) => it.next(),
        }
    }
}

impl Hash {
    pub fn new() -> Self {
        Hash {
            repr: Repr::Listpack(Packed::new()),
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(p) => p.len() / 2,
            Repr::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Listpack(p) => {
                let off = p.find(field, 2)?;
                let (_, next) = p.entry_at(off);
                Some(p.entry_at(next).0)
            }
            Repr::Table(d) => d.get_tail(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Convert to the hash table encoding.
    pub fn convert_to_table(&mut self) {
        if let Repr::Listpack(p) = &self.repr {
            let mut d = Dict::with_capacity(p.len() / 2);
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                d.insert_new(f, v, ());
            }
            self.repr = Repr::Table(d);
        }
    }

    /// Convert up front if any of these fields/values is longer than the listpack limit (Redis's
    /// hashTypeTryConversion, called before HSET/HMSET/HSETNX add anything).
    pub fn try_conversion<'a>(
        &mut self,
        args: impl IntoIterator<Item = &'a [u8]>,
        lim: &EncodingLimits,
    ) {
        if matches!(self.repr, Repr::Listpack(_))
            && args
                .into_iter()
                .any(|a| a.len() > lim.hash_max_listpack_value)
        {
            self.convert_to_table();
        }
    }

    /// Set `field` to `value`; returns true if the field is new. Converts to a hash table past the limits.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: &EncodingLimits) -> bool {
        if matches!(self.repr, Repr::Listpack(_))
            && (field.len() > lim.hash_max_listpack_value
                || value.len() > lim.hash_max_listpack_value)
        {
            self.convert_to_table();
        }
        match &mut self.repr {
            Repr::Listpack(p) => {
                if let Some(off) = p.find(field, 2) {
                    let (_, voff) = p.entry_at(off);
                    p.replace(voff, value);
                    return false;
                }
                p.push(field);
                p.push(value);
                if p.len() / 2 > lim.hash_max_listpack_entries {
                    self.convert_to_table();
                }
                true
            }
            Repr::Table(d) => d.insert_tail(field, value, ()).is_none(),
        }
    }

    /// Remove `field`; returns true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(p) => match p.find(field, 2) {
                Some(off) => {
                    p.remove(off, 2);
                    true
                }
                None => false,
            },
            Repr::Table(d) => d.remove(field).is_some(),
        }
    }

    /// (field, value) pairs: insertion order for a listpack, table order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Listpack(p) => Iter::Listpack(p.iter()),
            Repr::Table(d) => Iter::Table(Box::new(d.iter().map(|(k, t, _)| (k, t)))),
        }
    }

    /// The i-th pair (i < len()); for a hash table, slot order, so `nth(random % len)` is uniform.
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Listpack(_) => self.iter().nth(i),
            Repr::Table(d) => (i < d.len()).then(|| {
                let (k, t, _) = d.at(i);
                (k, t)
            }),
        }
    }

    /// HSCAN step: a listpack returns everything with cursor 0; a table scans from `cursor`.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match &self.repr {
            Repr::Listpack(_) => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                0
            }
            Repr::Table(d) => d.scan(cursor, |k, t, _| f(k, t)),
        }
    }

    /// Whether a SCAN over this hash is a single whole-collection reply (compact encoding).
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    /// Advance an incremental table resize (background cycle).
    pub fn rehash(&mut self, n: usize) -> bool {
        match &mut self.repr {
            Repr::Table(d) => d.rehash(n),
            Repr::Listpack(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn lim(entries: usize, value: usize) -> EncodingLimits {
        EncodingLimits {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..Default::default()
        }
    }

    #[test]
    fn listpack_keeps_insertion_order_and_converts() {
        let l = lim(3, 8);
        let mut h = Hash::new();
        assert!(h.set(b"b", b"1", &l));
        assert!(h.set(b"a", b"2", &l));
        assert!(!h.set(b"b", b"3", &l));
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            vec![(&b"b"[..], &b"3"[..]), (b"a", b"2")]
        );
        assert_eq!(h.encoding(), "listpack");
        h.set(b"c", b"3", &l);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"d", b"4", &l);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(b"b"), Some(&b"3"[..]));
        let mut h2 = Hash::new();
        h2.set(b"f", b"123456789", &l);
        assert_eq!(h2.encoding(), "hashtable");
        let mut h3 = Hash::new();
        h3.try_conversion([&b"f"[..], b"123456789"], &l);
        assert_eq!(h3.encoding(), "hashtable");
    }

    proptest! {
        #[test]
        fn hash_matches_model(ops in proptest::collection::vec((0u8..3, 0usize..40, 0usize..20), 0..400), entries in 1usize..20) {
            let l = lim(entries, 10);
            let mut h = Hash::new();
            let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (op, f, vl) in ops {
                let f = format!("f{f}").into_bytes();
                let v = vec![b'v'; vl];
                match op {
                    0 | 1 => prop_assert_eq!(h.set(&f, &v, &l), m.insert(f, v).is_none()),
                    _ => prop_assert_eq!(h.remove(&f), m.remove(&f).is_some()),
                }
                prop_assert_eq!(h.len(), m.len());
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(&got, &m);
            for (f, v) in &m {
                prop_assert_eq!(h.get(f), Some(&v[..]));
            }
            for i in 0..h.len() {
                prop_assert!(h.nth(i).is_some());
            }
        }
    }
}
