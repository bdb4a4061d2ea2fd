//! One key of the keyspace: key bytes, value, TTL and access clock in a single 64-byte allocation.
//!
//! A string value that fits next to its key (key + value <= `PACKED_CAP` bytes) is stored inline in the
//! entry itself, so the common "small key, small value" case costs exactly one allocation of 64 bytes
//! (jemalloc's 64-byte class). Anything else keeps the key in a boxed slice and the value in [`Value`].

use crate::types::Value;

/// Bytes of key + value that fit inside the entry.
pub const PACKED_CAP: usize = 41;

const RAW_BIT: u32 = 1 << 31;
const NOT_INT_BIT: u32 = 1 << 30;
/// Which snapshot generation this entry was last saved for (see keyspace/snapshot.rs).
const SNAP_BIT: u32 = 1 << 29;
const LRU_MASK: u32 = !(RAW_BIT | NOT_INT_BIT | SNAP_BIT);

/// The access clock for a wall-clock time: seconds, modulo 2^29 (wraps every 17 years).
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_MASK
}

/// Seconds between an entry's access clock and `clock`, across the wrap.
pub fn lru_idle_secs(clock: u32, lru: u32) -> u32 {
    clock.wrapping_sub(lru) & LRU_MASK
}

/// A string value larger than this many bytes is reported as `raw` by OBJECT ENCODING (Redis's embstr limit).
pub const EMBSTR_LIMIT: usize = 44;

pub struct Entry {
    pub(super) next: Option<Box<Entry>>,
    /// Absolute expiry in unix milliseconds; 0 = no TTL.
    expire_at: u64,
    kv: Kv,
}

enum Kv {
    Packed {
        lru: u32,
        klen: u8,
        vlen: u8,
        buf: [u8; PACKED_CAP],
    },
    /// A short key stored inline, with a non-inline value (collections, big strings): saves the key's own
    /// allocation.
    Inline {
        lru: u32,
        klen: u8,
        kbuf: [u8; INLINE_KEY],
        value: Value,
    },
    Split {
        lru: u32,
        key: Box<[u8]>,
        value: Value,
    },
}

/// Longest key stored inline next to a non-inline value.
const INLINE_KEY: usize = 18;

/// A borrowed view of an entry's value.
pub enum ValueRef<'a> {
    Str(&'a [u8]),
    Other(&'a Value),
}

impl Entry {
    pub fn new(key: &[u8], value: Value, lru: u32) -> Box<Entry> {
        Box::new(Entry {
            next: None,
            expire_at: 0,
            kv: Kv::build(key, value, lru),
        })
    }

    pub fn new_str(key: &[u8], s: &[u8], lru: u32) -> Box<Entry> {
        Box::new(Entry {
            next: None,
            expire_at: 0,
            kv: Kv::build_str(key, s, lru),
        })
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        match &self.kv {
            Kv::Packed { klen, buf, .. } => &buf[..*klen as usize],
            Kv::Inline { klen, kbuf, .. } => &kbuf[..*klen as usize],
            Kv::Split { key, .. } => key,
        }
    }

    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        match &self.kv {
            Kv::Packed {
                klen, vlen, buf, ..
            } => {
                let k = *klen as usize;
                ValueRef::Str(&buf[k..k + *vlen as usize])
            }
            Kv::Split {
                value: Value::Str(s),
                ..
            }
            | Kv::Inline {
                value: Value::Str(s),
                ..
            } => ValueRef::Str(s),
            Kv::Split { value, .. } | Kv::Inline { value, .. } => ValueRef::Other(value),
        }
    }

    /// The string bytes, if the value is a string.
    #[inline]
    pub fn as_str(&self) -> Option<&[u8]> {
        match self.value() {
            ValueRef::Str(s) => Some(s),
            ValueRef::Other(_) => None,
        }
    }

    pub fn is_str(&self) -> bool {
        self.as_str().is_some()
    }

    /// Mutable access to a non-inline value. Strings stored inline are not reachable here: replace them with
    /// [`Entry::set_value`] / [`Entry::set_str`].
    pub fn value_mut(&mut self) -> Option<&mut Value> {
        match &mut self.kv {
            Kv::Packed { .. } => None,
            Kv::Split { value, .. } | Kv::Inline { value, .. } => Some(value),
        }
    }

    /// Take the string value out as an owned, growable buffer (for APPEND/SETRANGE), leaving an empty string.
    pub fn take_str_vec(&mut self) -> Option<Vec<u8>> {
        match &mut self.kv {
            Kv::Packed {
                klen, vlen, buf, ..
            } => {
                let k = *klen as usize;
                let v = buf[k..k + *vlen as usize].to_vec();
                *vlen = 0;
                Some(v)
            }
            Kv::Split {
                value: Value::Str(s),
                ..
            }
            | Kv::Inline {
                value: Value::Str(s),
                ..
            } => Some(std::mem::take(s)),
            Kv::Split { .. } | Kv::Inline { .. } => None,
        }
    }

    /// Replace the value. The clock and the snapshot bit stay (a changed snapshot bit would make a running
    /// or later snapshot take the entry as already saved and leave it out); RAW/NOT_INT are cleared.
    pub fn set_value(&mut self, value: Value) {
        let lru = self.meta() & (LRU_MASK | SNAP_BIT);
        let kv = match std::mem::replace(
            &mut self.kv,
            Kv::Packed {
                lru,
                klen: 0,
                vlen: 0,
                buf: [0; PACKED_CAP],
            },
        ) {
            Kv::Packed { klen, buf, .. } => Kv::build(&buf[..klen as usize], value, lru),
            Kv::Inline { klen, kbuf, .. } => Kv::build(&kbuf[..klen as usize], value, lru),
            Kv::Split { key, .. } => Kv::with_boxed_key(key, value, lru),
        };
        self.kv = kv;
    }

    pub fn set_str(&mut self, s: &[u8]) {
        *self.meta_mut() &= LRU_MASK | SNAP_BIT;
        // (Kept whole, snapshot bit included, when the value moves to another layout below.)
        let lru = self.meta();
        match &mut self.kv {
            Kv::Packed {
                klen, vlen, buf, ..
            } if *klen as usize + s.len() <= PACKED_CAP => {
                let k = *klen as usize;
                buf[k..k + s.len()].copy_from_slice(s);
                *vlen = s.len() as u8;
            }
            Kv::Split {
                key,
                value: Value::Str(v),
                ..
            } if key.len() + s.len() > PACKED_CAP => {
                v.clear();
                v.extend_from_slice(s);
                v.shrink_to_fit();
            }
            Kv::Inline {
                klen,
                value: Value::Str(v),
                ..
            } if *klen as usize + s.len() > PACKED_CAP => {
                v.clear();
                v.extend_from_slice(s);
                v.shrink_to_fit();
            }
            _ => {
                let key = self.key().to_vec();
                self.kv = Kv::build_str(&key, s, lru);
            }
        }
    }

    /// Store a string value given as an owned buffer (avoids a copy for large values).
    pub fn set_str_vec(&mut self, s: Vec<u8>) {
        if self.key().len() + s.len() <= PACKED_CAP {
            self.set_str(&s);
        } else {
            self.set_value(Value::Str(s));
        }
    }

    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }

    #[inline]
    pub fn set_expire_at(&mut self, when: Option<u64>) {
        self.expire_at = when.unwrap_or(0);
    }

    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }

    #[inline]
    fn meta(&self) -> u32 {
        match &self.kv {
            Kv::Packed { lru, .. } | Kv::Inline { lru, .. } | Kv::Split { lru, .. } => *lru,
        }
    }

    #[inline]
    fn meta_mut(&mut self) -> &mut u32 {
        match &mut self.kv {
            Kv::Packed { lru, .. } | Kv::Inline { lru, .. } | Kv::Split { lru, .. } => lru,
        }
    }

    /// The snapshot bit (compared with the table's parity: equal = saved for the running snapshot).
    #[inline]
    pub(super) fn snap_bit(&self) -> bool {
        self.meta() & SNAP_BIT != 0
    }

    #[inline]
    pub(super) fn set_snap_bit(&mut self, on: bool) {
        let m = self.meta_mut();
        *m = if on { *m | SNAP_BIT } else { *m & !SNAP_BIT };
    }

    /// The access clock (seconds, 29 bits).
    #[inline]
    pub fn lru(&self) -> u32 {
        self.meta() & LRU_MASK
    }

    #[inline]
    pub fn set_lru(&mut self, clock: u32) {
        let m = self.meta_mut();
        *m = (*m & !LRU_MASK) | (clock & LRU_MASK);
    }

    /// Whether the string was modified in place (APPEND, SETRANGE, SETBIT...): Redis then reports the
    /// `raw` encoding whatever its length. Any whole-value store clears it.
    #[inline]
    pub fn is_raw(&self) -> bool {
        self.meta() & RAW_BIT != 0
    }

    #[inline]
    pub fn mark_raw(&mut self) {
        *self.meta_mut() |= RAW_BIT;
    }

    /// Whether the string was stored as text without trying the integer encoding (INCRBYFLOAT results):
    /// Redis then reports `embstr` (or `raw` when long) even for text like "20".
    #[inline]
    pub fn is_not_int(&self) -> bool {
        self.meta() & NOT_INT_BIT != 0
    }

    #[inline]
    pub fn mark_not_int(&mut self) {
        *self.meta_mut() |= NOT_INT_BIT;
    }

    /// Whether the value lives inline with the key (for OBJECT ENCODING / memory reports).
    pub fn is_packed(&self) -> bool {
        matches!(self.kv, Kv::Packed { .. })
    }

    /// Deep copy under a new key (COPY, RENAME keep the value but may change the key).
    pub fn clone_with_key(&self, key: &[u8]) -> Box<Entry> {
        let mut e = match self.value() {
            ValueRef::Str(s) => Entry::new_str(key, s, self.meta()),
            ValueRef::Other(v) => Entry::new(key, v.clone(), self.meta()),
        };
        e.expire_at = self.expire_at;
        e
    }

    /// Move this entry's value under a new key, keeping TTL and clock (reusing the allocation).
    pub fn rekey(mut self: Box<Self>, key: &[u8]) -> Box<Entry> {
        let lru = self.meta();
        let placeholder = Kv::Packed {
            lru,
            klen: 0,
            vlen: 0,
            buf: [0; PACKED_CAP],
        };
        self.kv = match std::mem::replace(&mut self.kv, placeholder) {
            Kv::Packed {
                klen, vlen, buf, ..
            } => {
                let k = klen as usize;
                Kv::build_str(key, &buf[k..k + vlen as usize], lru)
            }
            Kv::Split { value, .. } | Kv::Inline { value, .. } => Kv::build(key, value, lru),
        };
        self.next = None;
        self
    }
}

impl Kv {
    fn build(key: &[u8], value: Value, lru: u32) -> Kv {
        match value {
            Value::Str(s) if key.len() + s.len() <= PACKED_CAP => Kv::build_str(key, &s, lru),
            value => Kv::unpacked(key, value, lru),
        }
    }

    /// A key with a value that is not packed: inline key if short, else a boxed one.
    fn unpacked(key: &[u8], value: Value, lru: u32) -> Kv {
        if key.len() <= INLINE_KEY {
            let mut kbuf = [0u8; INLINE_KEY];
            kbuf[..key.len()].copy_from_slice(key);
            Kv::Inline {
                lru,
                klen: key.len() as u8,
                kbuf,
                value,
            }
        } else {
            Kv::Split {
                lru,
                key: key.into(),
                value,
            }
        }
    }

    fn with_boxed_key(key: Box<[u8]>, value: Value, lru: u32) -> Kv {
        match value {
            Value::Str(s) if key.len() + s.len() <= PACKED_CAP => Kv::build_str(&key, &s, lru),
            value if key.len() <= INLINE_KEY => Kv::unpacked(&key, value, lru),
            value => Kv::Split { lru, key, value },
        }
    }

    fn build_str(key: &[u8], s: &[u8], lru: u32) -> Kv {
        if key.len() + s.len() <= PACKED_CAP {
            let mut buf = [0u8; PACKED_CAP];
            buf[..key.len()].copy_from_slice(key);
            buf[key.len()..key.len() + s.len()].copy_from_slice(s);
            Kv::Packed {
                lru,
                klen: key.len() as u8,
                vlen: s.len() as u8,
                buf,
            }
        } else {
            Kv::unpacked(key, Value::Str(s.to_vec()), lru)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_changes_keep_the_snapshot_bit() {
        for on in [false, true] {
            let mut e = Entry::new_str(b"k", b"abc", 7);
            e.set_snap_bit(on);
            e.mark_raw();
            e.set_str(&[b'x'; 100]); // packed -> unpacked
            assert_eq!((e.snap_bit(), e.lru(), e.is_raw()), (on, 7, false));
            e.set_str(b"ab"); // unpacked -> packed
            assert_eq!((e.snap_bit(), e.lru()), (on, 7));
            let v = e.take_str_vec().unwrap();
            e.set_str_vec([v, vec![0; 200]].concat());
            assert_eq!((e.snap_bit(), e.lru()), (on, 7));
            e.mark_not_int();
            e.set_value(Value::Str(vec![1; 300]));
            assert_eq!((e.snap_bit(), e.lru(), e.is_not_int()), (on, 7, false));
        }
    }

    #[test]
    fn entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }

    #[test]
    fn packed_and_split_round_trip() {
        let mut e = Entry::new_str(b"key:000000000001", b"xyz", 7);
        assert!(e.is_packed());
        assert_eq!(e.key(), b"key:000000000001");
        assert_eq!(e.as_str(), Some(&b"xyz"[..]));
        let big = vec![b'a'; 100];
        e.set_str(&big);
        assert!(!e.is_packed());
        assert_eq!(e.as_str(), Some(&big[..]));
        assert_eq!(e.key(), b"key:000000000001");
        e.set_str(b"small");
        assert!(e.is_packed());
        assert_eq!(e.as_str(), Some(&b"small"[..]));
        assert_eq!(e.lru(), 7);
        e.mark_raw();
        assert!(e.is_raw());
        e.set_lru(9);
        assert!(e.is_raw() && e.lru() == 9);
        let copy = e.clone_with_key(b"c");
        assert!(copy.is_raw());
        e.set_str(b"x");
        assert!(!e.is_raw());
        e.set_expire_at(Some(123));
        let e2 = e.rekey(b"other");
        assert_eq!(e2.key(), b"other");
        assert_eq!(e2.as_str(), Some(&b"x"[..]));
        assert_eq!(e2.expire_at(), Some(123));
    }

    #[test]
    fn short_key_with_collection_value_is_inline() {
        let mut e = Entry::new(b"user:00000001", Value::Str(vec![b'v'; 100]), 3);
        assert!(matches!(e.kv, Kv::Inline { .. }));
        assert_eq!(e.key(), b"user:00000001");
        assert_eq!(e.as_str().map(|s| s.len()), Some(100));
        e.set_str(b"tiny");
        assert!(e.is_packed());
        e.set_value(Value::Str(vec![b'w'; 64]));
        assert!(matches!(e.kv, Kv::Inline { .. }));
        let e = e.rekey(&[b'k'; 30]);
        assert!(matches!(e.kv, Kv::Split { .. }));
        assert_eq!(e.as_str().map(|s| s.len()), Some(64));
    }

    #[test]
    fn long_key_short_value() {
        let key = vec![b'k'; 200];
        let mut e = Entry::new_str(&key, b"1", 0);
        assert!(!e.is_packed());
        assert_eq!(e.key(), &key[..]);
        let mut v = e.take_str_vec().unwrap();
        v.extend_from_slice(b"23");
        e.set_str_vec(v);
        assert_eq!(e.as_str(), Some(&b"123"[..]));
    }
}
