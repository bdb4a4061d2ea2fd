//! The hash value type: a listpack-like packed field/value list while small (insertion order, as Redis's
//! listpack), converted to a [`Dict`] (field bytes as key, value bytes as tail, one allocation per field) past
//! `hash-max-listpack-entries` / `hash-max-listpack-value`, and never back.
//!
//! # Field expiry (Redis 7.4 hash field TTLs)
//! A hash that never had a field TTL pays nothing for the feature:
//! - a small hash moves from `listpack` to `listpackex` (Redis's name) the first time an H*EXPIRE* command
//!   touches it: field, value, TTL triples in one packed buffer (the TTL entry is empty for a persistent
//!   field, else 8 bytes of big-endian unix ms), ordered by expiry time with persistent fields last, as Redis
//!   keeps them, so the soonest expiry is always the first triple;
//! - a `hashtable` keeps field TTLs in an `Option<Box<Ttls>>` side table (None while no field has a TTL):
//!   field -> expiry plus an ordered (expiry, field) set for reclaiming due fields in time order.
//!
//! A field whose expiry time is `<= now` is logically gone. The type does not hide such fields by itself:
//! callers reclaim them first with [`Hash::expire_fields`] (the command layer does it on every access, and the
//! server's active expiry cycle for hashes nobody touches), so reads never see them.

use super::dict::{Compact, CompactMut, CompactRef, Dict, Packed};
use super::EncodingLimits;
use std::collections::{BTreeSet, HashMap};

/// The hash table encoding: the dict plus the field TTL side table (None while no field has a TTL).
#[derive(Clone, Debug)]
struct Table {
    d: Dict<()>,
    ttls: Option<Box<Ttls>>,
}

/// Packed tag of a listpackex (field, value, ttl triples); 0 is a plain listpack.
const TAG_EX: u8 = 1;

/// A borrowed view of the representation (`P`: &Packed or &mut Packed, and so on).
enum View<P, D, T> {
    /// field, value, field, value, ...
    Listpack(P),
    /// field, value, ttl, ... ordered by ttl (persistent fields last).
    ListpackEx(P),
    Table(D, T),
}

/// Per-field expiry times of a hash table.
#[derive(Clone, Debug, Default)]
struct Ttls {
    by_field: HashMap<Box<[u8]>, u64, foldhash::fast::RandomState>,
    by_time: BTreeSet<(u64, Box<[u8]>)>,
}

impl Ttls {
    fn get(&self, f: &[u8]) -> Option<u64> {
        self.by_field.get(f).copied()
    }

    fn set(&mut self, f: &[u8], at: u64) {
        let key: Box<[u8]> = f.into();
        if let Some(old) = self.by_field.insert(key.clone(), at) {
            self.by_time.remove(&(old, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    fn remove(&mut self, f: &[u8]) -> Option<u64> {
        let at = self.by_field.remove(f)?;
        self.by_time.remove(&(at, Box::from(f)));
        Some(at)
    }

    fn min(&self) -> Option<u64> {
        self.by_time.first().map(|(t, _)| *t)
    }

    fn is_empty(&self) -> bool {
        self.by_field.is_empty()
    }
}

/// The condition of HEXPIRE and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireCond {
    Always,
    /// Only fields without a TTL.
    Nx,
    /// Only fields with a TTL.
    Xx,
    /// Only if the new time is later (no TTL counts as infinite: never).
    Gt,
    /// Only if the new time is earlier (no TTL counts as infinite: always).
    Lt,
}

/// Per-field results of [`Hash::set_field_expire`] (HEXPIRE's reply codes).
pub const EXPIRE_NO_FIELD: i64 = -2;
pub const EXPIRE_COND_NOT_MET: i64 = 0;
pub const EXPIRE_SET: i64 = 1;
pub const EXPIRE_DELETED: i64 = 2;
/// Per-field results of [`Hash::persist_field`] (HPERSIST's reply codes).
pub const PERSIST_NO_FIELD: i64 = -2;
pub const PERSIST_NO_TTL: i64 = -1;
pub const PERSIST_OK: i64 = 1;

#[inline]
fn dec_ttl(b: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(b).ok().map(u64::from_be_bytes)
}

/// The entry of a listpackex triple at byte offset `foff`: (value offset, ttl offset, end offset).
fn triple_at(p: &Packed, foff: usize) -> (usize, usize, usize) {
    let (_, voff) = p.entry_at(foff);
    let (_, toff) = p.entry_at(voff);
    let (_, end) = p.entry_at(toff);
    (voff, toff, end)
}

/// A copy of `p` with the triple (f, v, ttl) inserted at its place in expiry order: before the first triple
/// that expires no earlier, or that has no TTL; at the end for a persistent field.
fn lpex_with(p: &Packed, f: &[u8], v: &[u8], ttl: Option<u64>) -> Packed {
    let mut out = Packed::new();
    out.set_tag(TAG_EX);
    let mut done = false;
    let tb = ttl.map(u64::to_be_bytes);
    let tslice: &[u8] = tb.as_ref().map_or(&[], |b| &b[..]);
    let mut it = p.iter();
    while let (Some(f0), Some(v0), Some(t0)) = (it.next(), it.next(), it.next()) {
        if !done {
            if let Some(at) = ttl {
                if dec_ttl(t0).is_none_or(|t| t >= at) {
                    out.push(f);
                    out.push(v);
                    out.push(tslice);
                    done = true;
                }
            }
        }
        out.push(f0);
        out.push(v0);
        out.push(t0);
    }
    if !done {
        out.push(f);
        out.push(v);
        out.push(tslice);
    }
    out
}

/// 8 bytes: a thin pointer to the listpack block, or to the boxed [`Table`].
#[derive(Clone, Debug)]
pub struct Hash {
    repr: Compact<Table>,
}

impl Default for Hash {
    fn default() -> Self {
        Self::new()
    }
}

pub enum Iter<'a> {
    Listpack(super::dict::PackedIter<'a>),
    ListpackEx(super::dict::PackedIter<'a>),
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
            Iter::ListpackEx(it) => {
                let f = it.next()?;
                let v = it.next()?;
                it.next()?;
                Some((f, v))
            }
            Iter::Table(it) => it.next(),
        }
    }
}

impl Hash {
    pub fn new() -> Self {
        Hash {
            repr: Compact::packed(Packed::new()),
        }
    }

    #[inline]
    #[allow(clippy::type_complexity)]
    fn view(&self) -> View<&Packed, &Dict<()>, &Option<Box<Ttls>>> {
        match self.repr.get() {
            CompactRef::Packed(p) if p.tag() == TAG_EX => View::ListpackEx(p),
            CompactRef::Packed(p) => View::Listpack(p),
            CompactRef::Big(t) => View::Table(&t.d, &t.ttls),
        }
    }

    #[inline]
    #[allow(clippy::type_complexity)]
    fn view_mut(&mut self) -> View<&mut Packed, &mut Dict<()>, &mut Option<Box<Ttls>>> {
        match self.repr.get_mut() {
            CompactMut::Packed(p) if p.tag() == TAG_EX => View::ListpackEx(p),
            CompactMut::Packed(p) => View::Listpack(p),
            CompactMut::Big(t) => View::Table(&mut t.d, &mut t.ttls),
        }
    }

    /// Whether a listpack can take `extra` more bytes (Redis's listpack safety limit); true for a table.
    fn packed_fits(&self, extra: usize) -> bool {
        match self.repr.get() {
            CompactRef::Packed(p) => p.fits(extra.saturating_add(p.len())),
            CompactRef::Big(_) => true,
        }
    }

    fn set_table(&mut self, d: Dict<()>, ttls: Option<Box<Ttls>>) {
        self.repr = Compact::big(Box::new(Table { d, ttls }));
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.view() {
            View::Listpack(_) => "listpack",
            View::ListpackEx(_) => "listpackex",
            View::Table(..) => "hashtable",
        }
    }

    /// Number of fields (including due fields not reclaimed yet).
    pub fn len(&self) -> usize {
        match self.view() {
            View::Listpack(p) => p.len() / 2,
            View::ListpackEx(p) => p.len() / 3,
            View::Table(d, _) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self.view() {
            View::Listpack(p) => {
                let off = p.find(field, 2)?;
                let (_, next) = p.entry_at(off);
                Some(p.entry_at(next).0)
            }
            View::ListpackEx(p) => {
                let off = p.find(field, 3)?;
                let (_, next) = p.entry_at(off);
                Some(p.entry_at(next).0)
            }
            View::Table(d, _) => d.get_tail(field),
        }
    }

    /// [`Hash::get`] that treats a due field (expiry time `<= now_ms`, not reclaimed yet) as missing: for
    /// readers outside the hash commands (SORT ... BY/GET key->field) that cannot reclaim.
    pub fn get_live(&self, field: &[u8], now_ms: u64) -> Option<&[u8]> {
        if self.has_due_fields(now_ms)
            && self
                .field_expire(field)
                .is_some_and(|t| t.is_some_and(|t| t <= now_ms))
        {
            return None;
        }
        self.get(field)
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Convert to the hash table encoding (field TTLs carried over).
    pub fn convert_to_table(&mut self) {
        match self.view() {
            View::Listpack(p) => {
                let mut d = Dict::with_capacity(p.len() / 2);
                let mut it = p.iter();
                while let (Some(f), Some(v)) = (it.next(), it.next()) {
                    d.insert_new(f, v, ());
                }
                self.set_table(d, None);
            }
            View::ListpackEx(p) => {
                let mut d = Dict::with_capacity(p.len() / 3);
                let mut ttls = Ttls::default();
                let mut it = p.iter();
                while let (Some(f), Some(v), Some(t)) = (it.next(), it.next(), it.next()) {
                    d.insert_new(f, v, ());
                    if let Some(at) = dec_ttl(t) {
                        ttls.set(f, at);
                    }
                }
                let ttls = (!ttls.is_empty()).then(|| Box::new(ttls));
                self.set_table(d, ttls);
            }
            View::Table(..) => {}
        }
    }

    /// Convert up front if any of these fields/values is longer than the listpack limit (Redis's
    /// hashTypeTryConversion, called before HSET/HMSET/HSETNX add anything).
    pub fn try_conversion<'a>(
        &mut self,
        args: impl IntoIterator<Item = &'a [u8]>,
        lim: &EncodingLimits,
    ) {
        if self.is_compact()
            && args
                .into_iter()
                .any(|a| a.len() > lim.hash_max_listpack_value)
        {
            self.convert_to_table();
        }
    }

    /// Set `field` to `value`, clearing any TTL the field had (HSET); returns true if the field is new.
    /// Converts to a hash table past the limits.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: &EncodingLimits) -> bool {
        self.set_inner(field, value, lim, false)
    }

    /// Set `field` to `value` keeping the field's TTL (HINCRBY/HINCRBYFLOAT, as Redis 7.4); returns true if
    /// the field is new.
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8], lim: &EncodingLimits) -> bool {
        self.set_inner(field, value, lim, true)
    }

    fn set_inner(&mut self, field: &[u8], value: &[u8], lim: &EncodingLimits, keep: bool) -> bool {
        if self.is_compact()
            && (field.len() > lim.hash_max_listpack_value
                || value.len() > lim.hash_max_listpack_value
                || !self.packed_fits(field.len() + value.len() + 64))
        {
            self.convert_to_table();
        }
        let convert = match self.view_mut() {
            View::Listpack(p) => {
                if let Some(off) = p.find(field, 2) {
                    let (_, voff) = p.entry_at(off);
                    p.replace(voff, value);
                    return false;
                }
                p.push(field);
                p.push(value);
                p.len() / 2 > lim.hash_max_listpack_entries
            }
            View::ListpackEx(p) => {
                if let Some(off) = p.find(field, 3) {
                    let (voff, toff, _) = triple_at(p, off);
                    if keep || dec_ttl(p.entry_at(toff).0).is_none() {
                        p.replace(voff, value);
                    } else {
                        // The TTL goes: the field moves among the persistent ones (the end), as in Redis.
                        p.remove(off, 3);
                        p.push(field);
                        p.push(value);
                        p.push(&[]);
                    }
                    return false;
                }
                p.push(field);
                p.push(value);
                p.push(&[]);
                p.len() / 3 > lim.hash_max_listpack_entries
            }
            View::Table(d, ttls) => {
                let new = d.insert_tail(field, value, ()).is_none();
                if !new && !keep {
                    clear_ttl(ttls, field);
                }
                return new;
            }
        };
        if convert {
            self.convert_to_table();
        }
        true
    }

    /// Remove `field`; returns true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.view_mut() {
            View::Listpack(p) => match p.find(field, 2) {
                Some(off) => {
                    p.remove(off, 2);
                    true
                }
                None => false,
            },
            View::ListpackEx(p) => match p.find(field, 3) {
                Some(off) => {
                    p.remove(off, 3);
                    true
                }
                None => false,
            },
            View::Table(d, ttls) => {
                let found = d.remove(field).is_some();
                if found {
                    clear_ttl(ttls, field);
                }
                found
            }
        }
    }

    /// (field, value) pairs: insertion order for a listpack (expiry order, then insertion order, for a
    /// listpackex), table order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match self.view() {
            View::Listpack(p) => Iter::Listpack(p.iter()),
            View::ListpackEx(p) => Iter::ListpackEx(p.iter()),
            View::Table(d, _) => Iter::Table(Box::new(d.iter().map(|(k, t, _)| (k, t)))),
        }
    }

    /// The i-th pair (i < len()); for a hash table, slot order, so `nth(random % len)` is uniform.
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self.view() {
            View::Listpack(_) | View::ListpackEx(_) => self.iter().nth(i),
            View::Table(d, _) => (i < d.len()).then(|| {
                let (k, t, _) = d.at(i);
                (k, t)
            }),
        }
    }

    /// HSCAN step: a listpack returns everything with cursor 0; a table scans from `cursor`.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self.view() {
            View::Listpack(_) | View::ListpackEx(_) => {
                for (k, v) in self.iter() {
                    f(k, v);
                }
                0
            }
            View::Table(d, _) => d.scan(cursor, |k, t, _| f(k, t)),
        }
    }

    /// Whether a SCAN over this hash is a single whole-collection reply (compact encoding).
    pub fn is_compact(&self) -> bool {
        !self.repr.is_big()
    }

    /// Advance an incremental table resize (background cycle).
    pub fn rehash(&mut self, n: usize) -> bool {
        match self.view_mut() {
            View::Table(d, _) => d.rehash(n),
            _ => false,
        }
    }

    // -----------------------------------------------------------------------------------------------------
    // Field expiry

    /// Prepare the hash to hold field TTLs: a listpack becomes a listpackex (Redis converts the first time an
    /// H*EXPIRE* command runs on the hash, whatever its outcome). A hash table needs nothing.
    pub fn enable_field_ttls(&mut self) {
        if self.is_compact() && !self.packed_fits(64) {
            // Past the listpack safety limit: the TTLs go to a table's side table instead.
            self.convert_to_table();
        }
        if let View::Listpack(p) = self.view() {
            let mut out = Packed::new();
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                out.push(f);
                out.push(v);
                out.push(&[]);
            }
            out.set_tag(TAG_EX);
            self.repr = Compact::packed(out);
        }
    }

    /// The field's expiry: None if there is no such field, Some(None) if it has no TTL, Some(Some(unix ms)).
    pub fn field_expire(&self, field: &[u8]) -> Option<Option<u64>> {
        match self.view() {
            View::Listpack(p) => p.find(field, 2).map(|_| None),
            View::ListpackEx(p) => {
                let off = p.find(field, 3)?;
                let (_, toff, _) = triple_at(p, off);
                Some(dec_ttl(p.entry_at(toff).0))
            }
            View::Table(d, ttls) => {
                if !d.contains_key(field) {
                    return None;
                }
                Some(ttls.as_ref().and_then(|t| t.get(field)))
            }
        }
    }

    /// Whether any field has a TTL.
    pub fn has_field_ttls(&self) -> bool {
        self.next_field_expiry().is_some()
    }

    /// The soonest field expiry time (unix ms), if any field has a TTL.
    pub fn next_field_expiry(&self) -> Option<u64> {
        match self.view() {
            View::Listpack(_) => None,
            // Triples are in expiry order: the first one expires first (or nothing does).
            View::ListpackEx(p) => p.nth(2).and_then(dec_ttl),
            View::Table(_, ttls) => ttls.as_ref().and_then(|t| t.min()),
        }
    }

    /// Whether some field is due (its expiry time is `<= now_ms`) and waits to be reclaimed.
    pub fn has_due_fields(&self, now_ms: u64) -> bool {
        self.next_field_expiry().is_some_and(|t| t <= now_ms)
    }

    /// Set `field`'s expiry to `at` (unix ms) under `cond`, as HPEXPIREAT does for one field; returns
    /// Redis's code: [`EXPIRE_NO_FIELD`], [`EXPIRE_COND_NOT_MET`], [`EXPIRE_SET`], or [`EXPIRE_DELETED`]
    /// when `at <= now_ms` (the field is removed).
    pub fn set_field_expire(
        &mut self,
        field: &[u8],
        at: u64,
        cond: ExpireCond,
        now_ms: u64,
    ) -> i64 {
        let Some(prev) = self.field_expire(field) else {
            return EXPIRE_NO_FIELD;
        };
        let met = match (cond, prev) {
            (ExpireCond::Always, _) => true,
            (ExpireCond::Nx, p) => p.is_none(),
            (ExpireCond::Xx, p) => p.is_some(),
            (ExpireCond::Gt, p) => p.is_some_and(|p| at > p),
            (ExpireCond::Lt, p) => p.is_none_or(|p| at < p),
        };
        if !met {
            return EXPIRE_COND_NOT_MET;
        }
        if at <= now_ms {
            self.remove(field);
            return EXPIRE_DELETED;
        }
        self.put_ttl(field, Some(at));
        EXPIRE_SET
    }

    /// Remove `field`'s TTL (HPERSIST for one field): [`PERSIST_NO_FIELD`], [`PERSIST_NO_TTL`] or
    /// [`PERSIST_OK`].
    pub fn persist_field(&mut self, field: &[u8]) -> i64 {
        match self.field_expire(field) {
            None => PERSIST_NO_FIELD,
            Some(None) => PERSIST_NO_TTL,
            Some(Some(_)) => {
                self.put_ttl(field, None);
                PERSIST_OK
            }
        }
    }

    /// Set or clear the TTL of an existing field.
    fn put_ttl(&mut self, field: &[u8], ttl: Option<u64>) {
        if ttl.is_some() {
            self.enable_field_ttls();
        }
        match self.view_mut() {
            View::Listpack(_) => {}
            View::ListpackEx(p) => {
                let Some(off) = p.find(field, 3) else { return };
                let (voff, _, _) = triple_at(p, off);
                let v = p.entry_at(voff).0.to_vec();
                p.remove(off, 3);
                *p = lpex_with(p, field, &v, ttl);
            }
            View::Table(_, ttls) => match ttl {
                Some(at) => ttls.get_or_insert_with(Default::default).set(field, at),
                None => clear_ttl(ttls, field),
            },
        }
    }

    /// Remove up to `max` fields whose expiry time is `<= now_ms`, soonest first; returns how many went.
    /// The hash may end up empty: the caller then deletes the key.
    pub fn expire_fields(&mut self, now_ms: u64, max: usize) -> usize {
        self.expire_fields_each(now_ms, max, |_| {})
    }

    /// [`Hash::expire_fields`], telling `f` each removed field (e.g. to propagate an HDEL).
    pub fn expire_fields_each(
        &mut self,
        now_ms: u64,
        max: usize,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        let mut n = 0;
        match self.view_mut() {
            View::Listpack(_) => {}
            View::ListpackEx(p) => {
                let mut it = p.iter();
                while n < max {
                    let (Some(field), Some(_), Some(t)) = (it.next(), it.next(), it.next()) else {
                        break;
                    };
                    if dec_ttl(t).is_none_or(|t| t > now_ms) {
                        break;
                    }
                    f(field);
                    n += 1;
                }
                if n > 0 {
                    p.remove(0, 3 * n);
                }
            }
            View::Table(d, ttls) => {
                let Some(t) = ttls.as_mut() else { return 0 };
                while n < max {
                    match t.by_time.first() {
                        Some((at, _)) if *at <= now_ms => {}
                        _ => break,
                    }
                    let (_, field) = t.by_time.pop_first().expect("non-empty");
                    t.by_field.remove(&field);
                    d.remove(&field);
                    f(&field);
                    n += 1;
                }
                if t.is_empty() {
                    *ttls = None;
                }
            }
        }
        n
    }

    /// Every field with a TTL as (field, expiry unix ms), e.g. for persistence.
    pub fn field_ttls(&self) -> Vec<(&[u8], u64)> {
        match self.view() {
            View::Listpack(_) => Vec::new(),
            View::ListpackEx(p) => {
                let mut out = Vec::new();
                let mut it = p.iter();
                while let (Some(f), Some(_), Some(t)) = (it.next(), it.next(), it.next()) {
                    match dec_ttl(t) {
                        Some(at) => out.push((f, at)),
                        None => break,
                    }
                }
                out
            }
            View::Table(_, ttls) => ttls.as_ref().map_or_else(Vec::new, |t| {
                t.by_time.iter().map(|(at, f)| (&f[..], *at)).collect()
            }),
        }
    }
}

/// Drop `field`'s entry from a table's TTL side table, freeing the table when it empties.
fn clear_ttl(ttls: &mut Option<Box<Ttls>>, field: &[u8]) {
    if let Some(t) = ttls {
        if t.remove(field).is_some() && t.is_empty() {
            *ttls = None;
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

    #[test]
    fn one_word_and_clone() {
        assert_eq!(std::mem::size_of::<Hash>(), 8);
        let l = lim(4, 16);
        let mut h = Hash::new();
        for i in 0..3 {
            h.set(format!("f{i}").as_bytes(), b"v", &l);
        }
        h.set_field_expire(b"f1", 500, ExpireCond::Always, 0);
        let c = h.clone();
        assert_eq!(c.encoding(), "listpackex");
        assert_eq!(c.field_expire(b"f1"), Some(Some(500)));
        for i in 3..6 {
            h.set(format!("f{i}").as_bytes(), b"v", &l);
        }
        assert_eq!(h.encoding(), "hashtable");
        let c = h.clone();
        assert_eq!(c.len(), 6);
        assert_eq!(c.field_expire(b"f1"), Some(Some(500)));
        assert_eq!(c.encoding(), "hashtable");
    }

    #[test]
    fn listpackex_orders_by_expiry_and_codes() {
        let l = lim(8, 16);
        let mut h = Hash::new();
        for f in [&b"a"[..], b"b", b"c", b"d"] {
            h.set(f, b"v", &l);
        }
        assert!(!h.has_field_ttls());
        assert_eq!(
            h.set_field_expire(b"zz", 5000, ExpireCond::Always, 1000),
            -2
        );
        assert_eq!(h.set_field_expire(b"c", 5000, ExpireCond::Always, 1000), 1);
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.set_field_expire(b"b", 3000, ExpireCond::Always, 1000), 1);
        let order: Vec<&[u8]> = h.iter().map(|(f, _)| f).collect();
        assert_eq!(order, vec![&b"b"[..], b"c", b"a", b"d"]);
        assert_eq!(h.next_field_expiry(), Some(3000));
        // Conditions: no TTL is infinite.
        assert_eq!(h.set_field_expire(b"a", 9000, ExpireCond::Gt, 1000), 0);
        assert_eq!(h.set_field_expire(b"a", 9000, ExpireCond::Xx, 1000), 0);
        assert_eq!(h.set_field_expire(b"a", 9000, ExpireCond::Lt, 1000), 1);
        assert_eq!(h.set_field_expire(b"a", 9000, ExpireCond::Nx, 1000), 0);
        assert_eq!(h.set_field_expire(b"a", 9000, ExpireCond::Gt, 1000), 0);
        assert_eq!(h.set_field_expire(b"a", 9001, ExpireCond::Gt, 1000), 1);
        assert_eq!(h.set_field_expire(b"a", 9001, ExpireCond::Lt, 1000), 0);
        assert_eq!(h.field_expire(b"a"), Some(Some(9001)));
        assert_eq!(h.field_expire(b"d"), Some(None));
        assert_eq!(h.field_expire(b"x"), None);
        // HSET clears the TTL, HINCRBY-style writes keep it.
        h.set_keep_ttl(b"b", b"2", &l);
        assert_eq!(h.field_expire(b"b"), Some(Some(3000)));
        h.set(b"b", b"3", &l);
        assert_eq!(h.field_expire(b"b"), Some(None));
        assert_eq!(h.persist_field(b"b"), -1);
        assert_eq!(h.persist_field(b"c"), 1);
        assert_eq!(h.persist_field(b"nope"), -2);
        assert_eq!(h.next_field_expiry(), Some(9001));
        // A time in the past deletes.
        assert_eq!(h.set_field_expire(b"d", 1000, ExpireCond::Always, 1000), 2);
        assert!(!h.contains(b"d"));
        assert_eq!(h.get_live(b"a", 9001), None);
        assert_eq!(h.get_live(b"a", 9000), Some(&b"v"[..]));
        assert_eq!(h.get_live(b"b", 9001), Some(&b"3"[..]));
        assert_eq!(h.expire_fields(9000, usize::MAX), 0);
        assert_eq!(h.expire_fields(9001, usize::MAX), 1);
        assert!(!h.has_field_ttls());
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn table_ttls_side_table() {
        let l = lim(2, 16);
        let mut h = Hash::new();
        for i in 0..10 {
            h.set(format!("f{i}").as_bytes(), b"v", &l);
        }
        assert_eq!(h.encoding(), "hashtable");
        assert!(!h.has_field_ttls());
        for i in 0..5 {
            assert_eq!(
                h.set_field_expire(format!("f{i}").as_bytes(), 100 + i, ExpireCond::Always, 0),
                1
            );
        }
        assert_eq!(h.next_field_expiry(), Some(100));
        assert_eq!(h.field_ttls().len(), 5);
        assert!(h.remove(b"f0"));
        assert_eq!(h.next_field_expiry(), Some(101));
        let mut gone = Vec::new();
        assert_eq!(h.expire_fields_each(103, 1, |f| gone.push(f.to_vec())), 1);
        assert_eq!(gone, vec![b"f1".to_vec()]);
        assert_eq!(h.expire_fields(103, 10), 2);
        assert_eq!(h.len(), 6);
        h.set(b"f4", b"new", &l);
        assert!(!h.has_field_ttls());
        // Conversion carries TTLs over.
        let mut s = Hash::new();
        let big = lim(100, 100);
        s.set(b"a", b"1", &big);
        s.set(b"b", b"2", &big);
        s.set_field_expire(b"a", 500, ExpireCond::Always, 0);
        s.set(b"c", &[b'x'; 200], &big);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.field_expire(b"a"), Some(Some(500)));
        assert_eq!(s.field_expire(b"b"), Some(None));
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

        /// Field TTLs against a model map of (value, ttl), with a clock that moves forward.
        #[test]
        fn ttls_match_model(ops in proptest::collection::vec((0u8..8, 0usize..30, 0u64..50), 0..400), entries in 1usize..20) {
            let l = lim(entries, 10);
            let mut h = Hash::new();
            let mut m: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> = BTreeMap::new();
            let mut now = 100u64;
            for (op, f, x) in ops {
                let f = format!("f{f}").into_bytes();
                match op {
                    0 => {
                        let v = vec![b'v'; (x % 12) as usize];
                        prop_assert_eq!(h.set(&f, &v, &l), m.insert(f, (v, None)).is_none());
                    }
                    1 => {
                        let v = vec![b'w'; (x % 12) as usize];
                        let old = m.get(&f).and_then(|e| e.1);
                        prop_assert_eq!(h.set_keep_ttl(&f, &v, &l), m.insert(f, (v, old)).is_none());
                    }
                    2 => prop_assert_eq!(h.remove(&f), m.remove(&f).is_some()),
                    3 | 4 => {
                        let at = now - 5 + x;
                        let cond = [ExpireCond::Always, ExpireCond::Nx, ExpireCond::Xx, ExpireCond::Gt, ExpireCond::Lt][(x % 5) as usize];
                        let want = match m.get(&f) {
                            None => -2,
                            Some((_, p)) => {
                                let met = match cond {
                                    ExpireCond::Always => true,
                                    ExpireCond::Nx => p.is_none(),
                                    ExpireCond::Xx => p.is_some(),
                                    ExpireCond::Gt => p.is_some_and(|p| at > p),
                                    ExpireCond::Lt => p.is_none_or(|p| at < p),
                                };
                                if !met { 0 } else if at <= now { m.remove(&f); 2 } else { m.get_mut(&f).unwrap().1 = Some(at); 1 }
                            }
                        };
                        prop_assert_eq!(h.set_field_expire(&f, at, cond, now), want);
                    }
                    5 => {
                        let want = match m.get_mut(&f) {
                            None => -2,
                            Some((_, None)) => -1,
                            Some((_, t)) => { *t = None; 1 }
                        };
                        prop_assert_eq!(h.persist_field(&f), want);
                    }
                    6 => {
                        now += x % 7;
                        let due: Vec<Vec<u8>> = m.iter().filter(|(_, (_, t))| t.is_some_and(|t| t <= now)).map(|(k, _)| k.clone()).collect();
                        let max = (x % 4) as usize;
                        let n = h.expire_fields(now, max);
                        prop_assert_eq!(n, due.len().min(max));
                        // Remove from the model whichever fields went (soonest first; ties in any order).
                        let left: BTreeMap<Vec<u8>, ()> = h.iter().map(|(f, _)| (f.to_vec(), ())).collect();
                        for d in due {
                            if !left.contains_key(&d) { m.remove(&d); }
                        }
                    }
                    _ => {
                        let want = m.get(&f).map(|e| e.1);
                        prop_assert_eq!(h.field_expire(&f), want);
                    }
                }
                prop_assert_eq!(h.len(), m.len());
                let min = m.values().filter_map(|e| e.1).min();
                prop_assert_eq!(h.next_field_expiry(), min);
                prop_assert_eq!(h.has_field_ttls(), min.is_some());
            }
            let got: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> = h
                .iter()
                .map(|(f, v)| (f.to_vec(), (v.to_vec(), h.field_expire(f).unwrap())))
                .collect();
            prop_assert_eq!(&got, &m);
            prop_assert_eq!(h.field_ttls().len(), m.values().filter(|e| e.1.is_some()).count());
        }
    }
}
