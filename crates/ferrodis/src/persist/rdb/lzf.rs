//! LZF compression in the format Redis reads and writes (liblzf's): literal runs `000LLLLL` + L+1 bytes,
//! back references `LLLooooo [L'] oooooooo` (length-2 in the top 3 bits, 7 = one more length byte;
//! offset-1 in 13 bits). Written here rather than taken from the `lzf` crate: its compressor allocates and
//! zeroes a 512 KB hash table on every call (saving a million small strings took tens of seconds), and
//! its decompressor was the top item of an RDB load profile. The compressor follows liblzf's algorithm so
//! DUMP payloads are byte-identical to Redis's; its table lives per thread and is invalidated by a call
//! counter instead of being cleared.

use std::cell::RefCell;

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const MAX_LIT: usize = 1 << 5;

/// liblzf's hash table, per thread, never cleared: each slot holds (call number << 32 | offset), and a
/// slot written by an earlier call reads as empty — the same as the zeroed table of a fresh call.
struct Table {
    call: u32,
    slots: Vec<u64>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table { call: 0, slots: vec![0; HSIZE] });
}

#[inline]
fn slot(h: u32) -> usize {
    ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Compress `input`, appending to `out`, if the result takes less than `limit` bytes (liblzf's rule for
/// its output buffer size: Redis passes the length minus 4); otherwise leave `out` as it was and return
/// false. The algorithm is liblzf's (greedy, 3-byte hash, the same hash and table updates), so the bytes
/// are the ones Redis writes.
pub fn compress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
    let n = input.len();
    if n < 2 || limit == 0 {
        return false;
    }
    let base = out.len();
    let ok = TABLE.with(|t| {
        let mut t = t.borrow_mut();
        t.call = t.call.wrapping_add(1);
        if t.call == 0 {
            t.slots.iter_mut().for_each(|s| *s = 0);
            t.call = 1;
        }
        let call = u64::from(t.call) << 32;
        let slots = &mut t.slots;
        let get = |slots: &Vec<u64>, i: usize| {
            let v = slots[i];
            if v >> 32 == call >> 32 {
                (v & 0xffff_ffff) as usize
            } else {
                0
            }
        };
        // Output positions relative to `base`; the first byte is the pending literal run's length.
        out.push(0);
        let mut op = 1usize;
        let mut lit = 0usize;
        let mut ip = 0usize;
        let mut h: u32 = (u32::from(input[0]) << 8) | u32::from(input[1]);
        while ip + 2 < n {
            h = (h << 8) | u32::from(input[ip + 2]);
            let i = slot(h);
            let r = get(slots, i);
            slots[i] = call | ip as u64;
            let off = ip.wrapping_sub(r).wrapping_sub(1);
            if off < MAX_OFF
                && ip + 4 < n
                && r > 0
                && r < n - 2
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
                && input[r + 2] == input[ip + 2]
            {
                let maxlen = (n - ip - 2).min(MAX_REF);
                // Close the literal run (drop its byte if empty).
                out[base + op - lit - 1] = (lit as u8).wrapping_sub(1);
                if lit == 0 {
                    op -= 1;
                    out.pop();
                }
                if op + 3 + 1 >= limit {
                    return false;
                }
                let mut len = 3;
                while len < maxlen && input[r + len] == input[ip + len] {
                    len += 1;
                }
                let l = len - 2;
                if l < 7 {
                    out.push(((off >> 8) as u8) + ((l as u8) << 5));
                } else {
                    out.push(((off >> 8) as u8) + (7 << 5));
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                out.push(0); // the next literal run's length
                op = out.len() - base;
                lit = 0;
                ip += len - 2;
                if ip >= n {
                    break;
                }
                // liblzf hashes the last two positions of the match.
                h = (u32::from(input[ip]) << 8) | u32::from(input[ip + 1]);
                h = (h << 8) | u32::from(input[ip + 2]);
                slots[slot(h)] = call | ip as u64;
                ip += 1;
                h = (h << 8) | u32::from(input[ip + 2]);
                slots[slot(h)] = call | ip as u64;
                ip += 1;
            } else {
                if op >= limit {
                    return false;
                }
                push_literal(out, base, &mut op, &mut lit, input[ip]);
                ip += 1;
            }
        }
        if op + 3 > limit {
            return false;
        }
        for &b in &input[ip..] {
            push_literal(out, base, &mut op, &mut lit, b);
        }
        out[base + op - lit - 1] = (lit as u8).wrapping_sub(1);
        if lit == 0 {
            out.pop();
        }
        true
    });
    if !ok {
        out.truncate(base);
    }
    ok
}

/// One more byte of the current literal run; a full run (32 bytes) gets its length byte and a new run
/// starts.
#[inline]
fn push_literal(out: &mut Vec<u8>, base: usize, op: &mut usize, lit: &mut usize, b: u8) {
    out.push(b);
    *op += 1;
    *lit += 1;
    if *lit == MAX_LIT {
        out[base + *op - *lit - 1] = (*lit as u8) - 1;
        *lit = 0;
        out.push(0);
        *op += 1;
    }
}

/// Why [`decompress`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Malformed data, or data that does not decompress to exactly the announced size.
    Corrupt,
    /// The announced size could not be allocated.
    OutOfMemory,
}

/// The most one input byte can stand for: a 3-byte back reference copies up to 264 bytes.
pub const MAX_RATIO: usize = 88;

/// Decompress `input` into exactly `out_len` bytes. The announced size comes from the data, so it is checked
/// against what `input` could possibly expand to before anything is allocated, and allocated fallibly.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, Error> {
    if out_len > input.len().saturating_mul(MAX_RATIO) {
        return Err(Error::Corrupt);
    }
    let mut out = Vec::new();
    out.try_reserve_exact(out_len)
        .map_err(|_| Error::OutOfMemory)?;
    expand(input, out_len, &mut out).ok_or(Error::Corrupt)?;
    Ok(out)
}

fn expand(input: &[u8], out_len: usize, out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if i + n > input.len() || out.len() + n > out_len {
                return None;
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
            continue;
        }
        let mut len = ctrl >> 5;
        if len == 7 {
            len += *input.get(i)? as usize;
            i += 1;
        }
        len += 2;
        let off = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
        i += 1;
        if off > out.len() || out.len() + len > out_len {
            return None;
        }
        let start = out.len() - off;
        if off >= len {
            out.extend_from_within(start..start + len);
        } else {
            // Overlapping copy: byte by byte, as the format means.
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(data: &[u8]) {
        let mut c = Vec::new();
        if compress(data, &mut c, data.len()) {
            let d = decompress(&c, data.len()).expect("decompress");
            assert_eq!(d, data);
        }
    }

    #[test]
    fn compresses_repetitive_data() {
        let data = b"value:1234567890".repeat(50);
        let mut c = vec![7u8];
        assert!(compress(&data, &mut c, data.len() - 4));
        assert!(c.len() < data.len() / 4);
        assert_eq!(c[0], 7);
        assert_eq!(decompress(&c[1..], data.len()).unwrap(), data);
        // Malformed input: a reference before the start, a short literal run, a wrong size.
        assert_eq!(decompress(&[0x20, 0x05], 3), Err(Error::Corrupt));
        assert_eq!(decompress(&[0x05, b'a'], 6), Err(Error::Corrupt));
        assert_eq!(decompress(&[0x00, b'a'], 2), Err(Error::Corrupt));
        let zeros = vec![0u8; 100_000];
        round_trip(&zeros);
        round_trip(b"abcabcabcabcabcabcabcabcabc");
    }

    #[test]
    fn incompressible_input_is_left_alone() {
        let data: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut c = vec![1, 2, 3];
        assert!(!compress(&data, &mut c, data.len() - 4));
        assert_eq!(c, vec![1, 2, 3]);
    }

    /// A long overlapping back reference with the extra length byte, in liblzf's encoding (Redis's
    /// compressed payloads are checked end to end in tests/rdb.rs).
    #[test]
    fn reads_liblzf_output() {
        let data = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        // liblzf: literal 'a', then a back reference of length 49 at distance 1.
        let c = [0x00, b'a', 0xE0, 0x28, 0x00];
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
    }

    /// A claimed size no input of this length could produce is refused before anything is allocated,
    /// so a few bytes cannot ask for gigabytes.
    #[test]
    fn refuses_impossible_sizes() {
        let c = [0x00, b'a', 0xE0, 0xFF, 0x00];
        assert_eq!(decompress(&c, 1 << 40), Err(Error::Corrupt));
        assert_eq!(decompress(&c, usize::MAX), Err(Error::Corrupt));
        assert_eq!(decompress(&[], 1), Err(Error::Corrupt));
        // The longest expansion the format allows is still accepted: 1 + 264 bytes from 5.
        assert_eq!(decompress(&c, 265).unwrap(), vec![b'a'; 265]);
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(0u8..4, 0..3000)) {
            round_trip(&data);
        }

        #[test]
        fn round_trips_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            round_trip(&data);
        }
    }
}
