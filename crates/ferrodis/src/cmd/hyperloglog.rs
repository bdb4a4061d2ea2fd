//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//!
//! An HLL is a plain string value laid out exactly as Redis lays it out, so the bytes (and DUMP payloads)
//! are interchangeable with Redis 7.2:
//! - a 16-byte header: `HYLL`, the encoding (0 dense, 1 sparse), 3 unused bytes, the cached cardinality as
//!   8 little-endian bytes whose top bit (bit 7 of byte 15) marks the cache invalid;
//! - dense: 16384 registers of 6 bits, packed least significant bit first (12288 bytes);
//! - sparse: run-length opcodes `00xxxxxx` ZERO (1-64 zero registers), `01xxxxxx yyyyyyyy` XZERO (1-16384
//!   zero registers), `1vvvvvxx` VAL (1-4 registers of value 1-32). A sparse HLL is rewritten in place as
//!   Redis does (split, then merge of adjacent VALs) and becomes dense when a value exceeds 32 or the string
//!   would exceed `hll-sparse-max-bytes`.
//!
//! Elements are hashed with MurmurHash64A (seed 0xadc83b19): the low 14 bits pick the register, the run of
//! zeros above them plus one (at most 51) is the value. PFCOUNT uses Redis 7's estimator (Ertl's improved
//! raw estimator: `tau`/`sigma` over the register histogram), so the numbers are Redis's to the unit.

use super::argv::Argv;
use super::spec::{self, ACCESS, INSERT, RO, RW};
use super::{acl, flags::*, CmdError, CmdResult, Command, Ctx};
use crate::keyspace::entry::Entry;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "pfadd",
        arity: -2,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HYPERLOGLOG,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: pfadd,
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
        complexity: "O(1) to add every element.",
        syntax: "key [element ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "pfcount",
        arity: -2,
        flags: READONLY,
        acl: acl::HYPERLOGLOG,
        keys: &[spec::index(1)
            .range(-1, 1, 0)
            .flags(RW | ACCESS)
            .notes("RW because it may change the internal representation of the key, and propagate to replicas")],
        handler: pfcount,
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
        complexity: "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
        syntax: "key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "pfdebug",
        arity: 3,
        flags: WRITE | DENYOOM | ADMIN,
        acl: acl::HYPERLOGLOG,
        keys: &[spec::index(2).range(0, 1, 0).flags(RW | ACCESS)],
        handler: pfdebug,
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Internal commands for debugging HyperLogLog values.",
        complexity: "N/A",
        syntax: "subcommand key",
        syscmd: true,
        ..Command::DEFAULT
    },
    Command {
        name: "pfmerge",
        arity: -2,
        flags: WRITE | DENYOOM,
        acl: acl::HYPERLOGLOG,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | INSERT),
            spec::index(2).range(-1, 1, 0).flags(RO | ACCESS),
        ],
        handler: pfmerge,
        group: "hyperloglog",
        since: "2.8.9",
        summary: "Merges one or more HyperLogLog values into a single key.",
        complexity: "O(N) to merge N HyperLogLogs, but with high constant times.",
        syntax: "destkey:key [sourcekey:key ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "pfselftest",
        arity: 1,
        flags: ADMIN,
        acl: acl::HYPERLOGLOG,
        handler: pfselftest,
        group: "hyperloglog",
        since: "2.8.9",
        summary: "An internal command for testing HyperLogLog values.",
        complexity: "N/A",
        syntax: "",
        syscmd: true,
        ..Command::DEFAULT
    },
];

const INVALIDOBJ: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

// ---------------------------------------------------------------------------------------------------------
// The data structure (pure functions on the string's bytes)

pub mod hll {
    //! Redis's HyperLogLog representation and algorithms on a string's bytes.

    /// Register index bits.
    pub const P: u32 = 14;
    /// Hash bits left for the run of zeros.
    pub const Q: u32 = 64 - P;
    pub const REGISTERS: usize = 1 << P;
    const P_MASK: u64 = REGISTERS as u64 - 1;
    const REGISTER_MAX: u8 = 63;
    pub const HDR: usize = 16;
    pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
    pub const DENSE: u8 = 0;
    pub const SPARSE: u8 = 1;
    const VAL_MAX_VALUE: u8 = 32;
    const VAL_MAX_LEN: usize = 4;
    const ZERO_MAX_LEN: usize = 64;
    const XZERO_MAX_LEN: usize = 16384;
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    const SEED: u64 = 0xadc8_3b19;

    /// The sparse representation is corrupt.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Corrupt;

    /// MurmurHash64A as Redis uses it (blocks read little-endian on every platform).
    pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
        const M: u64 = 0xc6a4_a793_5bd1_e995;
        const R: u32 = 47;
        let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
        let mut chunks = key.chunks_exact(8);
        for c in &mut chunks {
            let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            k = k.wrapping_mul(M);
            k ^= k >> R;
            k = k.wrapping_mul(M);
            h ^= k;
            h = h.wrapping_mul(M);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            for (i, &b) in tail.iter().enumerate().rev() {
                h ^= (b as u64) << (8 * i);
            }
            h = h.wrapping_mul(M);
        }
        h ^= h >> R;
        h = h.wrapping_mul(M);
        h ^= h >> R;
        h
    }

    /// The register an element maps to and the value it proposes (run of zeros + 1, 1..=51).
    #[inline]
    pub fn pat_len(ele: &[u8]) -> (usize, u8) {
        let hash = murmur64a(ele, SEED);
        let index = (hash & P_MASK) as usize;
        let rest = (hash >> P) | (1u64 << Q);
        (index, rest.trailing_zeros() as u8 + 1)
    }

    /// Is this string a HyperLogLog Redis would accept (magic, encoding, dense length)?
    pub fn is_valid(s: &[u8]) -> bool {
        s.len() >= HDR
            && &s[..4] == b"HYLL"
            && s[4] <= SPARSE
            && (s[4] != DENSE || s.len() == DENSE_SIZE)
    }

    /// A new, empty HLL: sparse, XZERO opcodes covering every register, cached cardinality 0.
    pub fn new_sparse() -> Vec<u8> {
        let mut s = Vec::with_capacity(HDR + 2 * REGISTERS.div_ceil(XZERO_MAX_LEN));
        s.extend_from_slice(b"HYLL");
        s.extend_from_slice(&[SPARSE, 0, 0, 0]);
        s.extend_from_slice(&[0; 8]);
        let mut left = REGISTERS;
        while left > 0 {
            let n = left.min(XZERO_MAX_LEN);
            push_xzero(&mut s, n);
            left -= n;
        }
        s
    }

    fn push_xzero(s: &mut Vec<u8>, len: usize) {
        let l = len - 1;
        s.push((l >> 8) as u8 | 0x40);
        s.push((l & 0xff) as u8);
    }

    #[inline]
    pub fn cache_valid(s: &[u8]) -> bool {
        s[15] & 0x80 == 0
    }

    #[inline]
    pub fn invalidate_cache(s: &mut [u8]) {
        s[15] |= 0x80;
    }

    pub fn cached(s: &[u8]) -> u64 {
        u64::from_le_bytes(s[8..16].try_into().unwrap_or([0; 8]))
    }

    pub fn set_cached(s: &mut [u8], card: u64) {
        s[8..16].copy_from_slice(&card.to_le_bytes());
    }

    // ---- dense registers (`regs` = the bytes after the header)

    /// Register `i` (a missing byte past the end reads as 0, as Redis reads its string's terminator).
    #[inline]
    pub fn dense_get(regs: &[u8], i: usize) -> u8 {
        let byte = i * 6 / 8;
        let fb = (i * 6) & 7;
        let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
        let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
        (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
    }

    #[inline]
    pub fn dense_set(regs: &mut [u8], i: usize, v: u8) {
        let byte = i * 6 / 8;
        let fb = (i * 6) & 7;
        let v = v as u32;
        let m = REGISTER_MAX as u32;
        if let Some(b) = regs.get_mut(byte) {
            *b = ((*b as u32 & !(m << fb)) | (v << fb)) as u8;
        }
        if let Some(b) = regs.get_mut(byte + 1) {
            let fb8 = 8 - fb;
            *b = ((*b as u32 & !(m >> fb8)) | (v >> fb8)) as u8;
        }
    }

    /// Raise register `i` to `count` if lower; whether it changed.
    #[inline]
    pub fn dense_update(regs: &mut [u8], i: usize, count: u8) -> bool {
        if count > dense_get(regs, i) {
            dense_set(regs, i, count);
            true
        } else {
            false
        }
    }

    /// Every register of a dense HLL, four at a time (3 bytes).
    #[inline]
    fn dense_for_each(regs: &[u8], mut f: impl FnMut(usize, u8)) {
        let regs = &regs[..REGISTERS * 6 / 8];
        for (g, c) in regs.chunks_exact(3).enumerate() {
            let (b0, b1, b2) = (c[0], c[1], c[2]);
            let i = g * 4;
            f(i, b0 & 63);
            f(i + 1, ((b0 >> 6) | (b1 << 2)) & 63);
            f(i + 2, ((b1 >> 4) | (b2 << 4)) & 63);
            f(i + 3, b2 >> 2);
        }
    }

    // ---- sparse opcodes

    #[inline]
    fn is_zero(b: u8) -> bool {
        b & 0xc0 == 0
    }
    #[inline]
    fn is_xzero(b: u8) -> bool {
        b & 0xc0 == 0x40
    }
    #[inline]
    fn is_val(b: u8) -> bool {
        b & 0x80 != 0
    }
    #[inline]
    fn zero_len(b: u8) -> usize {
        (b & 0x3f) as usize + 1
    }
    #[inline]
    fn xzero_len(s: &[u8], p: usize) -> usize {
        ((((s[p] & 0x3f) as usize) << 8) | s.get(p + 1).copied().unwrap_or(0) as usize) + 1
    }
    #[inline]
    fn val_value(b: u8) -> u8 {
        ((b >> 2) & 0x1f) + 1
    }
    #[inline]
    fn val_len(b: u8) -> usize {
        (b & 3) as usize + 1
    }
    #[inline]
    fn val(v: u8, len: usize) -> u8 {
        (((v - 1) << 2) | (len as u8 - 1)) | 0x80
    }
    /// Up to 5 opcode bytes built on the stack (a split's replacement sequence).
    struct Seq {
        b: [u8; 5],
        n: usize,
    }

    impl Seq {
        fn push(&mut self, v: u8) {
            self.b[self.n] = v;
            self.n += 1;
        }
        fn len(&self) -> usize {
            self.n
        }
    }

    fn zero_op(seq: &mut Seq, len: usize) {
        if len > ZERO_MAX_LEN {
            let l = len - 1;
            seq.push((l >> 8) as u8 | 0x40);
            seq.push((l & 0xff) as u8);
        } else {
            seq.push((len - 1) as u8);
        }
    }

    /// The dense form of a sparse HLL (header copied, encoding changed), or `Corrupt`.
    pub fn sparse_to_dense(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
        let mut d = vec![0u8; DENSE_SIZE];
        d[..HDR].copy_from_slice(&s[..HDR]);
        d[4] = DENSE;
        let regs = &mut d[HDR..];
        let mut idx = 0usize;
        let mut p = HDR;
        while p < s.len() {
            let b = s[p];
            if is_zero(b) {
                idx += zero_len(b);
                p += 1;
            } else if is_xzero(b) {
                idx += xzero_len(s, p);
                p += 2;
            } else {
                let (runlen, v) = (val_len(b), val_value(b));
                if runlen + idx > REGISTERS {
                    break;
                }
                for i in idx..idx + runlen {
                    dense_set(regs, i, v);
                }
                idx += runlen;
                p += 1;
            }
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
        Ok(d)
    }

    /// Convert `s` to dense in place if sparse.
    pub fn to_dense(s: &mut Vec<u8>) -> Result<bool, Corrupt> {
        if s[4] == DENSE {
            return Ok(false);
        }
        *s = sparse_to_dense(s)?;
        Ok(true)
    }

    /// Raise register `index` of the sparse HLL `s` to `count` (Redis's hllSparseSet): Ok(true) when it
    /// changed. The string may become dense.
    pub fn sparse_set(
        s: &mut Vec<u8>,
        index: usize,
        count: u8,
        max_bytes: u64,
    ) -> Result<bool, Corrupt> {
        if count > VAL_MAX_VALUE {
            return promote(s, index, count);
        }
        // Step 1: find the opcode covering `index`.
        let end = s.len();
        let mut p = HDR;
        let mut first = 0usize;
        let mut prev: Option<usize> = None;
        let mut span = 0usize;
        let mut oplen = 1;
        while p < end {
            let b = s[p];
            oplen = 1;
            span = if is_zero(b) {
                zero_len(b)
            } else if is_val(b) {
                val_len(b)
            } else {
                oplen = 2;
                xzero_len(s, p)
            };
            if index < first + span {
                break;
            }
            prev = Some(p);
            p += oplen;
            first += span;
        }
        if span == 0 || p >= end {
            return Err(Corrupt);
        }
        let next = Some(p + oplen).filter(|&n| n < end);
        let b = s[p];
        let runlen = span;

        // Step 2: the trivial cases.
        let mut updated = false;
        if is_val(b) {
            if val_value(b) >= count {
                return Ok(false);
            }
            if runlen == 1 {
                s[p] = val(count, 1);
                updated = true;
            }
        } else if is_zero(b) && runlen == 1 {
            s[p] = val(count, 1);
            updated = true;
        }
        if !updated {
            // General case: split the opcode into up to three.
            let mut seq = Seq { b: [0; 5], n: 0 };
            let last = first + span - 1;
            if is_val(b) {
                let cur = val_value(b);
                if index != first {
                    seq.push(val(cur, index - first));
                }
                seq.push(val(count, 1));
                if index != last {
                    seq.push(val(cur, last - index));
                }
            } else {
                if index != first {
                    zero_op(&mut seq, index - first);
                }
                seq.push(val(count, 1));
                if index != last {
                    zero_op(&mut seq, last - index);
                }
            }
            // Step 3: substitute the sequence for the old opcode.
            let old = oplen as isize;
            let delta = seq.len() as isize - old;
            if delta > 0 && (end as u64).saturating_add(delta as u64) > max_bytes {
                return promote(s, index, count);
            }
            let new_len = (end as isize + delta) as usize;
            s.resize(new_len.max(end).max(p + seq.len()), 0);
            if delta != 0 {
                if let Some(n) = next {
                    s.copy_within(n..end, (n as isize + delta) as usize);
                }
            }
            s[p..p + seq.len()].copy_from_slice(&seq.b[..seq.n]);
            s.truncate(new_len);
        }

        // Step 4: merge adjacent VALs of the same value, scanning up to 5 opcodes from the previous one.
        let mut end = s.len();
        let mut p = prev.unwrap_or(HDR);
        let mut scan = 5;
        while p < end && scan > 0 {
            scan -= 1;
            let b = s[p];
            if is_xzero(b) {
                p += 2;
                continue;
            } else if is_zero(b) {
                p += 1;
                continue;
            }
            if p + 1 < end && is_val(s[p + 1]) {
                let (v1, v2) = (val_value(b), val_value(s[p + 1]));
                if v1 == v2 {
                    let len = val_len(b) + val_len(s[p + 1]);
                    if len <= VAL_MAX_LEN {
                        s[p + 1] = val(v1, len);
                        s.remove(p);
                        end -= 1;
                        continue;
                    }
                }
            }
            p += 1;
        }
        invalidate_cache(s);
        Ok(true)
    }

    fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
        to_dense(s)?;
        dense_update(&mut s[HDR..], index, count);
        Ok(true)
    }

    /// Add one element (Redis's hllAdd): Ok(true) when a register changed.
    #[inline]
    pub fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupt> {
        let (index, count) = pat_len(ele);
        match s[4] {
            DENSE => Ok(dense_update(&mut s[HDR..], index, count)),
            SPARSE => sparse_set(s, index, count, max_bytes),
            _ => Err(Corrupt),
        }
    }

    /// Fold a valid HLL into `max` (one byte per register): Redis's hllMerge.
    pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
        if s[4] == DENSE {
            dense_for_each(&s[HDR..], |i, v| {
                if v > max[i] {
                    max[i] = v;
                }
            });
            return Ok(());
        }
        let mut i = 0usize;
        let mut p = HDR;
        while p < s.len() {
            let b = s[p];
            if is_zero(b) {
                i += zero_len(b);
                p += 1;
            } else if is_xzero(b) {
                i += xzero_len(s, p);
                p += 2;
            } else {
                let (runlen, v) = (val_len(b), val_value(b));
                if runlen + i > REGISTERS {
                    break;
                }
                for m in &mut max[i..i + runlen] {
                    if v > *m {
                        *m = v;
                    }
                }
                i += runlen;
                p += 1;
            }
        }
        if i != REGISTERS {
            return Err(Corrupt);
        }
        Ok(())
    }

    /// The register histogram of a valid HLL (sparse: `Corrupt` when the opcodes do not cover exactly
    /// every register).
    pub fn histogram(s: &[u8]) -> Result<[u32; 64], Corrupt> {
        let mut h = [0u32; 64];
        if s[4] == DENSE {
            dense_for_each(&s[HDR..], |_, v| h[v as usize] += 1);
            return Ok(h);
        }
        let mut idx = 0usize;
        let mut p = HDR;
        while p < s.len() {
            let b = s[p];
            if is_zero(b) {
                let n = zero_len(b);
                idx += n;
                h[0] = h[0].wrapping_add(n as u32);
                p += 1;
            } else if is_xzero(b) {
                let n = xzero_len(s, p);
                idx += n;
                h[0] = h[0].wrapping_add(n as u32);
                p += 2;
            } else {
                let n = val_len(b);
                idx += n;
                let v = val_value(b) as usize;
                h[v] = h[v].wrapping_add(n as u32);
                p += 1;
            }
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
        Ok(h)
    }

    /// The histogram of one-byte-per-register registers (a merge's result).
    pub fn raw_histogram(max: &[u8; REGISTERS]) -> [u32; 64] {
        let mut h = [0u32; 64];
        for &v in max.iter() {
            h[(v & 63) as usize] += 1;
        }
        h
    }

    fn tau(mut x: f64) -> f64 {
        if x == 0.0 || x == 1.0 {
            return 0.0;
        }
        let mut y = 1.0;
        let mut z = 1.0 - x;
        loop {
            x = x.sqrt();
            let zp = z;
            y *= 0.5;
            z -= (1.0 - x) * (1.0 - x) * y;
            if zp == z {
                break;
            }
        }
        z / 3.0
    }

    fn sigma(mut x: f64) -> f64 {
        if x == 1.0 {
            return f64::INFINITY;
        }
        let mut y = 1.0;
        let mut z = x;
        loop {
            x *= x;
            let zp = z;
            z += x * y;
            y += y;
            if zp == z {
                break;
            }
        }
        z
    }

    /// Redis 7's cardinality estimate from a register histogram (Ertl, arXiv:1702.01284).
    pub fn estimate(h: &[u32; 64]) -> u64 {
        let m = REGISTERS as f64;
        let q = Q as usize;
        let mut z = m * tau((m - h[q + 1] as f64) / m);
        for j in (1..=q).rev() {
            z += h[j] as f64;
            z *= 0.5;
        }
        z += m * sigma(h[0] as f64 / m);
        let e = ALPHA_INF * m * m / z;
        // llroundl: half away from zero; out of range (x86-64) gives the "integer indefinite" value.
        let r = e.round();
        if r.is_finite() && r >= i64::MIN as f64 && r < i64::MAX as f64 {
            r as i64 as u64
        } else {
            1u64 << 63
        }
    }

    /// The decoded sparse opcodes (PFDEBUG DECODE).
    pub fn decode(s: &[u8]) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let mut p = HDR;
        while p < s.len() {
            let b = s[p];
            if is_zero(b) {
                let _ = write!(out, "z:{} ", zero_len(b));
                p += 1;
            } else if is_xzero(b) {
                let _ = write!(out, "Z:{} ", xzero_len(s, p));
                p += 2;
            } else {
                let _ = write!(out, "v:{},{} ", val_value(b), val_len(b));
                p += 1;
            }
        }
        out.trim_matches(' ').to_string()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn new_hll_layout() {
            let s = new_sparse();
            assert_eq!(s, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
            assert!(is_valid(&s));
            assert_eq!(estimate(&histogram(&s).unwrap()), 0);
        }

        #[test]
        fn dense_registers_round_trip() {
            let mut regs = vec![0u8; DENSE_SIZE - HDR];
            let mut x = 12345u64;
            let mut want = vec![0u8; REGISTERS];
            for (i, w) in want.iter_mut().enumerate() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *w = (x & 63) as u8;
                dense_set(&mut regs, i, *w);
            }
            for (i, w) in want.iter().enumerate() {
                assert_eq!(dense_get(&regs, i), *w);
            }
            dense_for_each(&regs, |i, v| assert_eq!(v, want[i]));
        }

        #[test]
        fn sparse_and_dense_agree() {
            let mut sp = new_sparse();
            let mut de = sparse_to_dense(&new_sparse()).unwrap();
            for j in 0..20000u64 {
                let e = j.to_le_bytes();
                add(&mut sp, &e, 3000).unwrap();
                add(&mut de, &e, 3000).unwrap();
                if j % 997 == 0 {
                    assert_eq!(
                        estimate(&histogram(&sp).unwrap()),
                        estimate(&histogram(&de).unwrap())
                    );
                }
            }
            assert_eq!(sp[4], DENSE);
            assert_eq!(sp[HDR..], de[HDR..]);
        }

        #[test]
        fn corrupt_sparse_is_detected() {
            let mut s = new_sparse();
            s.push(0x80);
            assert_eq!(histogram(&s), Err(Corrupt));
            let mut s = new_sparse();
            s.truncate(17);
            assert!(add(&mut s, b"a", 3000).is_err() || histogram(&s).is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Handlers

/// The string of a key that must be an HLL: WRONGTYPE for other types and for strings that are not HLLs.
fn hll_bytes(e: &Entry) -> Result<&[u8], CmdError> {
    let s = e.as_str().ok_or(super::err::WRONGTYPE)?;
    if !hll::is_valid(s) {
        return Err(NOT_HLL.into());
    }
    Ok(s)
}

fn sparse_max_bytes(ctx: &Ctx<'_>) -> u64 {
    ctx.srv.config.read().hll_sparse_max_bytes
}

fn pfadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let elements = a.rest();
    let lru = ctx.lru_clock();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let updated = match ctx.lookup_write(&mut shard, key) {
        None => {
            let mut s = hll::new_sparse();
            let max = sparse_max_bytes(ctx);
            for el in elements.iter() {
                // (A fresh HLL cannot be corrupt.)
                let _ = hll::add(&mut s, el, max);
            }
            hll::invalidate_cache(&mut s);
            let mut e = Entry::new_str(key, &s, lru);
            e.mark_raw();
            shard.db_mut(db).insert_new(e);
            true
        }
        Some(e) => {
            let sparse = hll_bytes(e)?[4] == hll::SPARSE;
            let max = if sparse { sparse_max_bytes(ctx) } else { 0 };
            let n = super::strings::with_raw_bytes(e, |s| {
                let mut n = 0u32;
                for el in elements.iter() {
                    match hll::add(s, el, max) {
                        Ok(true) => n += 1,
                        Ok(false) => {}
                        Err(_) => return Err(CmdError::from(INVALIDOBJ)),
                    }
                }
                if n > 0 {
                    hll::invalidate_cache(s);
                }
                Ok(n)
            })?;
            n > 0
        }
    };
    if updated {
        ctx.modified(&mut shard, key, "pfadd");
    }
    drop(shard);
    ctx.reply().int(updated as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = args.skip(1);
    let srv = ctx.srv;
    if keys.len() > 1 {
        let mut guard = srv.keyspace.lock_many(keys.iter());
        let mut max = Box::new([0u8; hll::REGISTERS]);
        for k in keys.iter() {
            let Some(e) = ctx.lookup(guard.shard(k), k) else {
                continue;
            };
            let s = hll_bytes(e)?;
            hll::merge_into(&mut max, s).map_err(|_| CmdError::from(INVALIDOBJ))?;
        }
        drop(guard);
        let card = hll::estimate(&hll::raw_histogram(&max));
        ctx.reply().int(card as i64);
        return Ok(());
    }
    let key = Argv::new(args).next()?;
    let mut shard = srv.keyspace.lock_key(key);
    let card = match ctx.lookup(&mut shard, key) {
        None => 0,
        Some(e) => {
            let s = hll_bytes(e)?;
            if hll::cache_valid(s) {
                let card = hll::cached(s);
                if !e.is_raw() {
                    e.mark_raw();
                }
                card
            } else {
                let card =
                    hll::estimate(&hll::histogram(s).map_err(|_| CmdError::from(INVALIDOBJ))?);
                super::strings::with_raw_bytes(e, |s| hll::set_cached(s, card));
                // Not a keyspace event: the key is signalled (WATCH, tracking) and the change propagated.
                ctx.modified(&mut shard, key, crate::events::NO_NOTIFICATION);
                card
            }
        }
    };
    drop(shard);
    ctx.reply().int(card as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = args.skip(1);
    let dest = Argv::new(args).next()?;
    let lru = ctx.lru_clock();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(keys.iter());
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut use_dense = false;
    for k in keys.iter() {
        let Some(e) = ctx.lookup(guard.shard(k), k) else {
            continue;
        };
        let s = hll_bytes(e)?;
        use_dense |= s[4] == hll::DENSE;
        hll::merge_into(&mut max, s).map_err(|_| CmdError::from(INVALIDOBJ))?;
    }
    let shard = guard.shard(dest);
    let max_bytes = sparse_max_bytes(ctx);
    let write = |s: &mut Vec<u8>| -> Result<(), CmdError> {
        if use_dense {
            hll::to_dense(s).map_err(|_| CmdError::from(INVALIDOBJ))?;
        }
        for (j, &v) in max.iter().enumerate() {
            if v == 0 {
                continue;
            }
            if s[4] == hll::DENSE {
                hll::dense_update(&mut s[hll::HDR..], j, v);
            } else {
                // (Redis ignores a failure here: the sources were validated.)
                let _ = hll::sparse_set(s, j, v, max_bytes);
            }
        }
        hll::invalidate_cache(s);
        Ok(())
    };
    match ctx.lookup_write(shard, dest) {
        None => {
            let mut s = hll::new_sparse();
            write(&mut s)?;
            let mut e = Entry::new_str(dest, &s, lru);
            e.mark_raw();
            shard.db_mut(db).insert_new(e);
        }
        Some(e) => super::strings::with_raw_bytes(e, write)?,
    }
    ctx.modified(shard, dest, "pfadd");
    drop(guard);
    ctx.reply().ok();
    Ok(())
}

fn pfdebug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let sub = a.next()?;
    let key = a.next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        return Err("ERR The specified key does not exist".into());
    };
    let enc = hll_bytes(e)?[4];
    e.mark_raw();
    let sub_lc = sub.to_ascii_lowercase();
    match sub_lc.as_slice() {
        b"getreg" | b"todense" => {
            let converted = if enc == hll::SPARSE {
                super::strings::with_raw_bytes(e, hll::to_dense)
                    .map_err(|_| CmdError::from(INVALIDOBJ))?;
                ctx.count_change();
                true
            } else {
                false
            };
            if sub_lc == b"todense" {
                drop(shard);
                ctx.reply().int(converted as i64);
                return Ok(());
            }
            let s = e.as_str().unwrap_or_default();
            let regs: Vec<u8> = (0..hll::REGISTERS)
                .map(|i| hll::dense_get(&s[hll::HDR..], i))
                .collect();
            drop(shard);
            let mut r = ctx.reply();
            r.array(regs.len());
            for v in regs {
                r.int(v as i64);
            }
        }
        b"decode" => {
            if enc != hll::SPARSE {
                return Err("ERR HLL encoding is not sparse".into());
            }
            let text = hll::decode(e.as_str().unwrap_or_default());
            drop(shard);
            ctx.reply().bulk(text.as_bytes());
        }
        b"encoding" => {
            drop(shard);
            ctx.reply()
                .simple(if enc == hll::DENSE { "dense" } else { "sparse" });
        }
        _ => {
            return Err(format!(
                "ERR Unknown PFDEBUG subcommand '{}'",
                String::from_utf8_lossy(sub)
            )
            .into())
        }
    }
    Ok(())
}

/// PFSELFTEST: register access on the dense layout, then sparse/dense agreement and the estimator's error
/// at cardinalities 1, 10, ..., 10^7 (as Redis's self test).
fn pfselftest(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let mut rng = crate::server::unix_us() | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut regs = vec![0u8; hll::DENSE_SIZE - hll::HDR];
    let mut want = vec![0u8; hll::REGISTERS];
    for _ in 0..1000 {
        for (i, w) in want.iter_mut().enumerate() {
            *w = (next() & 63) as u8;
            hll::dense_set(&mut regs, i, *w);
        }
        for (i, &w) in want.iter().enumerate() {
            let v = hll::dense_get(&regs, i);
            if v != w {
                return Err(format!("TESTFAILED Register {i} should be {w} but is {v}").into());
            }
        }
    }
    let max_bytes = sparse_max_bytes(ctx);
    let mut dense = hll::sparse_to_dense(&hll::new_sparse()).unwrap_or_default();
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (hll::REGISTERS as f64).sqrt();
    let seed = next();
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let _ = hll::add(&mut dense, &ele, max_bytes);
        let _ = hll::add(&mut sparse, &ele, max_bytes);
        if j != checkpoint {
            continue;
        }
        if j < max_bytes / 2 && sparse[4] != hll::SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let count = |s: &[u8]| {
            hll::histogram(s)
                .map(|h| hll::estimate(&h))
                .unwrap_or(u64::MAX)
        };
        let card = count(&dense);
        if card != count(&sparse) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Err(
                format!("TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}").into(),
            );
        }
        checkpoint *= 10;
    }
    ctx.reply().ok();
    Ok(())
}
