//! The compact blobs RDB embeds as strings: listpack, ziplist, intset, zipmap. Encoders for what we write
//! (listpack, intset) and bounds-checked decoders for everything Redis ever wrote.

use ferrodis_protocol::num::parse_i64;

/// One decoded element of a listpack or ziplist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Item<'_> {
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Item::Int(v) => itoa::Buffer::new().format(v).as_bytes().to_vec(),
            Item::Str(s) => s.to_vec(),
        }
    }

    pub fn as_int(self) -> Option<i64> {
        match self {
            Item::Int(v) => Some(v),
            Item::Str(s) => parse_i64(s),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Listpack

/// Builds a listpack the way Redis's lpAppend does (strings that are integers become integer entries).
pub struct LpWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for LpWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl LpWriter {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 6]);
        LpWriter { buf, count: 0 }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes so far (without the end marker).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    fn backlen(&mut self, l: usize) {
        let l = l as u64;
        if l <= 127 {
            self.buf.push(l as u8);
        } else if l < 16383 {
            self.buf.push((l >> 7) as u8);
            self.buf.push((l & 127) as u8 | 128);
        } else if l < 2097151 {
            self.buf.push((l >> 14) as u8);
            self.buf.push(((l >> 7) & 127) as u8 | 128);
            self.buf.push((l & 127) as u8 | 128);
        } else if l < 268435455 {
            self.buf.push((l >> 21) as u8);
            self.buf.push(((l >> 14) & 127) as u8 | 128);
            self.buf.push(((l >> 7) & 127) as u8 | 128);
            self.buf.push((l & 127) as u8 | 128);
        } else {
            self.buf.push((l >> 28) as u8);
            self.buf.push(((l >> 21) & 127) as u8 | 128);
            self.buf.push(((l >> 14) & 127) as u8 | 128);
            self.buf.push(((l >> 7) & 127) as u8 | 128);
            self.buf.push((l & 127) as u8 | 128);
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 {
                ((1i64 << 13) + v) as u64
            } else {
                v as u64
            };
            self.buf.push((u >> 8) as u8 | 0xC0);
            self.buf.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let l = self.buf.len() - start;
        self.backlen(l);
        self.count += 1;
    }

    /// Append a string, integer-encoded when it is the canonical form of an i64.
    pub fn push(&mut self, s: &[u8]) {
        if let Some(v) = parse_i64(s) {
            return self.push_int(v);
        }
        self.push_str(s);
    }

    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xE0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let l = self.buf.len() - start;
        self.backlen(l);
        self.count += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = if self.count < 65535 {
            self.count as u16
        } else {
            65535
        };
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn take<'a>(b: &'a [u8], pos: usize, n: usize, what: &str) -> Result<&'a [u8], String> {
    pos.checked_add(n)
        .and_then(|end| b.get(pos..end))
        .ok_or_else(|| format!("{what} truncated at byte {pos}"))
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64)
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Decode a whole listpack, checking every length against the buffer.
pub fn listpack(b: &[u8]) -> Result<Vec<Item<'_>>, String> {
    if b.len() < 7 {
        return Err("listpack too short".into());
    }
    let total = le(&b[..4]) as usize;
    if total != b.len() {
        return Err(format!(
            "listpack header size {total} != blob size {}",
            b.len()
        ));
    }
    let declared = le(&b[4..6]) as usize;
    let mut out = Vec::with_capacity(declared.min(4096));
    let mut p = 6;
    loop {
        let Some(&c) = b.get(p) else {
            return Err("listpack without end marker".into());
        };
        if c == 0xFF {
            if p + 1 != b.len() {
                return Err("listpack end marker before its end".into());
            }
            break;
        }
        let start = p;
        let item = if c & 0x80 == 0 {
            p += 1;
            Item::Int((c & 0x7F) as i64)
        } else if c & 0xC0 == 0x80 {
            let n = (c & 0x3F) as usize;
            let s = take(b, p + 1, n, "listpack string")?;
            p += 1 + n;
            Item::Str(s)
        } else if c & 0xE0 == 0xC0 {
            let x = take(b, p, 2, "listpack int")?;
            p += 2;
            Item::Int(sign_extend((((x[0] & 0x1F) as u64) << 8) | x[1] as u64, 13))
        } else if c & 0xF0 == 0xE0 {
            let x = take(b, p, 2, "listpack string")?;
            let n = (((x[0] & 0x0F) as usize) << 8) | x[1] as usize;
            let s = take(b, p + 2, n, "listpack string")?;
            p += 2 + n;
            Item::Str(s)
        } else {
            match c {
                0xF0 => {
                    let n = le(take(b, p + 1, 4, "listpack string")?) as usize;
                    let s = take(b, p + 5, n, "listpack string")?;
                    p += 5 + n;
                    Item::Str(s)
                }
                0xF1..=0xF4 => {
                    let w = [2usize, 3, 4, 8][(c - 0xF1) as usize];
                    let v = le(take(b, p + 1, w, "listpack int")?);
                    p += 1 + w;
                    Item::Int(sign_extend(v, (w * 8) as u32))
                }
                _ => return Err(format!("bad listpack encoding byte {c:#x} at {p}")),
            }
        };
        // Back length: check it describes this entry.
        let l = p - start;
        let blen = if l <= 127 {
            1
        } else if l < 16383 {
            2
        } else if l < 2097151 {
            3
        } else if l < 268435455 {
            4
        } else {
            5
        };
        take(b, p, blen, "listpack back length")?;
        p += blen;
        out.push(item);
    }
    if declared != 65535 && declared != out.len() {
        return Err(format!(
            "listpack declares {declared} entries but has {}",
            out.len()
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// Ziplist (RDB < 10)

pub fn ziplist(b: &[u8]) -> Result<Vec<Item<'_>>, String> {
    if b.len() < 11 {
        return Err("ziplist too short".into());
    }
    if le(&b[..4]) as usize != b.len() {
        return Err("ziplist header size mismatch".into());
    }
    let declared = le(&b[8..10]) as usize;
    let mut out = Vec::with_capacity(declared.min(4096));
    let mut p = 10;
    loop {
        let Some(&c) = b.get(p) else {
            return Err("ziplist without end marker".into());
        };
        if c == 0xFF {
            if p + 1 != b.len() {
                return Err("ziplist end marker before its end".into());
            }
            break;
        }
        // prevlen
        p += if c == 0xFE { 5 } else { 1 };
        let e = *take(b, p, 1, "ziplist entry")?.first().unwrap_or(&0);
        let item = match e >> 6 {
            0 => {
                let n = (e & 0x3F) as usize;
                let s = take(b, p + 1, n, "ziplist string")?;
                p += 1 + n;
                Item::Str(s)
            }
            1 => {
                let x = take(b, p, 2, "ziplist string")?;
                let n = (((x[0] & 0x3F) as usize) << 8) | x[1] as usize;
                let s = take(b, p + 2, n, "ziplist string")?;
                p += 2 + n;
                Item::Str(s)
            }
            2 => {
                let x = take(b, p + 1, 4, "ziplist string")?;
                let n = u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize;
                let s = take(b, p + 5, n, "ziplist string")?;
                p += 5 + n;
                Item::Str(s)
            }
            _ => {
                let (w, bits) = match e {
                    0xC0 => (2, 16),
                    0xD0 => (4, 32),
                    0xE0 => (8, 64),
                    0xF0 => (3, 24),
                    0xFE => (1, 8),
                    0xF1..=0xFD => (0, 0),
                    _ => return Err(format!("bad ziplist encoding byte {e:#x}")),
                };
                if w == 0 {
                    p += 1;
                    Item::Int((e & 0x0F) as i64 - 1)
                } else {
                    let v = le(take(b, p + 1, w, "ziplist int")?);
                    p += 1 + w;
                    Item::Int(sign_extend(v, bits))
                }
            }
        };
        out.push(item);
    }
    if declared != 65535 && declared != out.len() {
        return Err("ziplist entry count mismatch".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// Intset

pub fn intset_encode(vals: &[i64]) -> Vec<u8> {
    let w: usize = if vals.iter().all(|&v| i16::try_from(v).is_ok()) {
        2
    } else if vals.iter().all(|&v| i32::try_from(v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + w * vals.len());
    out.extend_from_slice(&(w as u32).to_le_bytes());
    out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
    for &v in vals {
        out.extend_from_slice(&v.to_le_bytes()[..w]);
    }
    out
}

pub fn intset(b: &[u8]) -> Result<Vec<i64>, String> {
    if b.len() < 8 {
        return Err("intset too short".into());
    }
    let w = le(&b[..4]) as usize;
    if !matches!(w, 2 | 4 | 8) {
        return Err(format!("bad intset encoding {w}"));
    }
    let n = le(&b[4..8]) as usize;
    if n.checked_mul(w).and_then(|x| x.checked_add(8)) != Some(b.len()) {
        return Err("intset size mismatch".into());
    }
    let v: Vec<i64> = b[8..]
        .chunks_exact(w)
        .map(|c| sign_extend(le(c), (w * 8) as u32))
        .collect();
    if v.windows(2).any(|p| p[0] >= p[1]) {
        return Err("intset not sorted".into());
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------------------
// Zipmap (RDB < 4)

/// Field-value pairs borrowed from a blob.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

pub fn zipmap(b: &[u8]) -> Result<Pairs<'_>, String> {
    fn len(b: &[u8], p: &mut usize) -> Result<Option<usize>, String> {
        let c = *take(b, *p, 1, "zipmap length")?.first().unwrap_or(&0);
        match c {
            255 => Ok(None),
            254 => {
                let n = le(take(b, *p + 1, 4, "zipmap length")?) as usize;
                *p += 5;
                Ok(Some(n))
            }
            n => {
                *p += 1;
                Ok(Some(n as usize))
            }
        }
    }
    if b.is_empty() {
        return Err("zipmap too short".into());
    }
    let mut p = 1;
    let mut out = Vec::new();
    loop {
        let Some(kl) = len(b, &mut p)? else {
            if p + 1 != b.len() {
                return Err("zipmap end marker before its end".into());
            }
            break;
        };
        let k = take(b, p, kl, "zipmap key")?;
        p += kl;
        let Some(vl) = len(b, &mut p)? else {
            return Err("zipmap key without value".into());
        };
        let free = *take(b, p, 1, "zipmap free")?.first().unwrap_or(&0) as usize;
        p += 1;
        let v = take(b, p, vl, "zipmap value")?;
        p += vl + free;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_roundtrip() {
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -32768,
            32767,
            40000,
            -8388608,
            8388607,
            1 << 30,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 200];
        let mut w = LpWriter::new();
        for &i in &ints {
            w.push_int(i);
        }
        w.push(b"hello");
        w.push(&mid);
        w.push(&long);
        w.push(b"");
        w.push(b"-12");
        let b = w.finish();
        let items = listpack(&b).unwrap();
        let mut want: Vec<Item> = ints.iter().map(|&i| Item::Int(i)).collect();
        want.extend([
            Item::Str(b"hello"),
            Item::Str(&mid),
            Item::Str(&long),
            Item::Str(b""),
            Item::Int(-12),
        ]);
        assert_eq!(items, want);
        // Truncations never panic and fail.
        for n in 0..b.len() {
            assert!(listpack(&b[..n]).is_err());
        }
    }

    #[test]
    fn intset_roundtrip() {
        for v in [
            vec![1i64, 2, 3],
            vec![-70000, 5],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            assert_eq!(intset(&intset_encode(&v)).unwrap(), v);
        }
        assert!(intset(&intset_encode(&[3, 1])).is_err());
    }

    #[test]
    fn ziplist_decode() {
        // zlbytes, zltail, zllen=3: "ab", 5 (imm), 300 (int16)
        let mut b = vec![0u8; 10];
        b.extend_from_slice(&[0, 0x02, b'a', b'b']);
        b.extend_from_slice(&[4, 0xF6]);
        b.extend_from_slice(&[2, 0xC0, 0x2C, 0x01]);
        b.push(0xFF);
        let n = b.len() as u32;
        b[..4].copy_from_slice(&n.to_le_bytes());
        b[8..10].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(
            ziplist(&b).unwrap(),
            vec![Item::Str(b"ab"), Item::Int(5), Item::Int(300)]
        );
    }

    #[test]
    fn zipmap_decode() {
        let b = [2u8, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 1, b'z', 0, 255];
        assert_eq!(
            zipmap(&b).unwrap(),
            vec![(&b"a"[..], &b"xy"[..]), (&b"b"[..], &b"z"[..])]
        );
    }
}
