//! LZF compression in the format Redis reads and writes (liblzf's): literal runs `000LLLLL` + L+1 bytes,
//! back references `LLLooooo [L'] oooooooo` (length-2 in the top 3 bits, 7 = one more length byte;
//! offset-1 in 13 bits). Written here rather than taken from the `lzf` crate: its compressor allocates and
//! zeroes a 512 KB hash table on every call (saving a million small strings took tens of seconds), and
//! its decompressor was the top item of an RDB load profile. This compressor keeps a small table per
//! thread and never clears it (an entry left from another input is only a hint: every match is checked
//! against the input itself).

use std::cell::RefCell;

const HLOG: u32 = 14;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const MAX_LIT: usize = 1 << 5;

thread_local! {
    static TABLE: RefCell<Vec<u32>> = RefCell::new(vec![0; 1 << HLOG]);
}

#[inline]
fn hash(b: &[u8]) -> usize {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
}

/// Compress `input`, appending to `out`, if the result takes at most `limit` bytes; otherwise leave
/// `out` as it was and return false.
pub fn compress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
    let base = out.len();
    let n = input.len();
    if n < 4 {
        return false;
    }
    TABLE.with(|t| {
        let mut table = t.borrow_mut();
        // Literal run: index of its control byte and its length so far.
        let mut ctrl = out.len();
        out.push(0);
        let mut lit = 0usize;
        let mut ip = 0usize;
        while ip < n {
            if ip + 2 < n {
                let h = hash(&input[ip..]);
                let r = table[h] as usize;
                table[h] = ip as u32;
                if r < ip && ip - r - 1 < MAX_OFF && input[r..r + 3] == input[ip..ip + 3] {
                    let max = MAX_REF.min(n - ip);
                    let mut len = 3;
                    while len < max && input[r + len] == input[ip + len] {
                        len += 1;
                    }
                    // Close the literal run (or drop its unused control byte).
                    if lit == 0 {
                        out.pop();
                    } else {
                        out[ctrl] = (lit - 1) as u8;
                    }
                    let off = ip - r - 1;
                    let l = len - 2;
                    if l < 7 {
                        out.push(((off >> 8) as u8) | ((l as u8) << 5));
                    } else {
                        out.push(((off >> 8) as u8) | (7 << 5));
                        out.push((l - 7) as u8);
                    }
                    out.push(off as u8);
                    ip += len;
                    ctrl = out.len();
                    out.push(0);
                    lit = 0;
                    if out.len() - base > limit {
                        out.truncate(base);
                        return false;
                    }
                    continue;
                }
            }
            out.push(input[ip]);
            lit += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[ctrl] = (MAX_LIT - 1) as u8;
                ctrl = out.len();
                out.push(0);
                lit = 0;
            }
            if out.len() - base > limit + 1 {
                out.truncate(base);
                return false;
            }
        }
        if lit == 0 {
            out.pop();
        } else {
            out[ctrl] = (lit - 1) as u8;
        }
        if out.len() - base > limit || out.len() == base {
            out.truncate(base);
            return false;
        }
        true
    })
}

/// Decompress `input` into exactly `out_len` bytes; None if the data is malformed or the size differs.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
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
    (out.len() == out_len).then_some(out)
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
        assert!(decompress(&[0x20, 0x05], 3).is_none());
        assert!(decompress(&[0x05, b'a'], 6).is_none());
        assert!(decompress(&[0x00, b'a'], 2).is_none());
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
