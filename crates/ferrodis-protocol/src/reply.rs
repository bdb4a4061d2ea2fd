//! RESP2/RESP3 reply encoder.

use crate::num::format_double;

/// Appends encoded replies to an output buffer, in RESP2 or RESP3.
#[derive(Debug)]
pub struct Reply<'a> {
    /// The output buffer.
    pub buf: &'a mut Vec<u8>,
    /// Encode RESP3 types (after `HELLO 3`); otherwise their RESP2 fallbacks.
    pub resp3: bool,
}

impl<'a> Reply<'a> {
    /// An encoder appending to `buf`.
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Self {
        Reply { buf, resp3 }
    }

    #[inline]
    fn header(&mut self, prefix: u8, n: usize) {
        self.buf.push(prefix);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    fn line(&mut self, prefix: u8, s: &[u8]) {
        self.buf.reserve(s.len() + 3);
        self.buf.push(prefix);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends `bytes` with CR and LF replaced by spaces.
    fn sanitized(&mut self, bytes: &[u8]) {
        if memchr::memchr2(b'\r', b'\n', bytes).is_none() {
            self.buf.extend_from_slice(bytes);
        } else {
            self.buf.extend(bytes.iter().map(|&c| match c {
                b'\r' | b'\n' => b' ',
                c => c,
            }));
        }
    }

    /// Simple string: `+s\r\n`. CR/LF in `s` become spaces.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.sanitized(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK\r\n`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// Error: `-msg\r\n`. `msg` carries its code (`ERR ...`, `WRONGTYPE ...`); a leading '-' is
    /// accepted too. CR/LF in `msg` become spaces.
    pub fn error(&mut self, msg: &str) {
        let m = msg.strip_prefix('-').unwrap_or(msg);
        self.buf.reserve(m.len() + 3);
        self.buf.push(b'-');
        self.sanitized(m.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Integer: `:v\r\n`.
    pub fn int(&mut self, v: i64) {
        self.line(b':', itoa::Buffer::new().format(v).as_bytes());
    }

    /// Bulk string: `$len\r\nb\r\n`.
    pub fn bulk(&mut self, b: &[u8]) {
        self.buf.reserve(b.len() + 16);
        self.header(b'$', b.len());
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Bulk string holding the decimal text of `v`.
    pub fn bulk_int(&mut self, v: i64) {
        let mut ib = itoa::Buffer::new();
        let s = ib.format(v).as_bytes();
        self.bulk(s);
    }

    /// Null bulk: RESP2 `$-1\r\n`, RESP3 `_\r\n`.
    pub fn null(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// Null array: RESP2 `*-1\r\n`, RESP3 `_\r\n`.
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    /// Array header: `*n\r\n`.
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }

    /// Map header of `n_pairs` pairs: RESP3 `%n\r\n`, RESP2 `*<2n>\r\n`.
    pub fn map(&mut self, n_pairs: usize) {
        if self.resp3 {
            self.header(b'%', n_pairs);
        } else {
            self.header(b'*', n_pairs * 2);
        }
    }

    /// Set header: RESP3 `~n\r\n`, RESP2 `*n\r\n`.
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n);
    }

    /// Push header: RESP3 `>n\r\n`, RESP2 `*n\r\n`.
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n);
    }

    /// Double: RESP3 `,<text>\r\n`, RESP2 a bulk of the text ([`format_double`]).
    pub fn double(&mut self, d: f64) {
        if self.resp3 {
            self.buf.push(b',');
            format_double(d, self.buf);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            // Format in place, then put the (short) length header in front of the text.
            let start = self.buf.len();
            format_double(d, self.buf);
            let n = self.buf.len() - start;
            let mut hdr = [0u8; 8];
            hdr[0] = b'$';
            let mut ib = itoa::Buffer::new();
            let digits = ib.format(n).as_bytes();
            hdr[1..1 + digits.len()].copy_from_slice(digits);
            hdr[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
            let h = &hdr[..3 + digits.len()];
            self.buf.splice(start..start, h.iter().copied());
            self.buf.extend_from_slice(b"\r\n");
        }
    }

    /// Boolean: RESP3 `#t\r\n` / `#f\r\n`, RESP2 `:1\r\n` / `:0\r\n`.
    pub fn boolean(&mut self, b: bool) {
        let s: &[u8] = match (self.resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        };
        self.buf.extend_from_slice(s);
    }

    /// Verbatim string: RESP3 `=<len+4>\r\n<fmt>:<s>\r\n` (`format` is 3 characters, e.g. "txt"),
    /// RESP2 a bulk of `s`.
    pub fn verbatim(&mut self, format: &str, s: &[u8]) {
        if self.resp3 {
            let f = format.as_bytes();
            let mut fmt3 = [b' '; 3];
            let n = f.len().min(3);
            fmt3[..n].copy_from_slice(&f[..n]);
            self.buf.reserve(s.len() + 20);
            self.header(b'=', s.len() + 4);
            self.buf.extend_from_slice(&fmt3);
            self.buf.push(b':');
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }

    /// Big number: RESP3 `(s\r\n`, RESP2 a bulk of `s`.
    pub fn big_number(&mut self, s: &str) {
        if self.resp3 {
            self.line(b'(', s.as_bytes());
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// Appends already encoded bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(resp3: bool, f: impl FnOnce(&mut Reply<'_>)) -> String {
        let mut v = Vec::new();
        f(&mut Reply::new(&mut v, resp3));
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn scalars() {
        for r3 in [false, true] {
            assert_eq!(enc(r3, |r| r.simple("OK")), "+OK\r\n");
            assert_eq!(enc(r3, |r| r.simple("a\r\nb")), "+a  b\r\n");
            assert_eq!(enc(r3, |r| r.ok()), "+OK\r\n");
            assert_eq!(enc(r3, |r| r.error("ERR foo")), "-ERR foo\r\n");
            assert_eq!(enc(r3, |r| r.error("-WRONGTYPE x")), "-WRONGTYPE x\r\n");
            assert_eq!(enc(r3, |r| r.error("ERR a\r\nb\nc")), "-ERR a  b c\r\n");
            assert_eq!(enc(r3, |r| r.int(0)), ":0\r\n");
            assert_eq!(enc(r3, |r| r.int(-42)), ":-42\r\n");
            assert_eq!(enc(r3, |r| r.int(i64::MIN)), ":-9223372036854775808\r\n");
            assert_eq!(enc(r3, |r| r.bulk(b"")), "$0\r\n\r\n");
            assert_eq!(enc(r3, |r| r.bulk(b"hello")), "$5\r\nhello\r\n");
            assert_eq!(enc(r3, |r| r.bulk_int(-123)), "$4\r\n-123\r\n");
            assert_eq!(enc(r3, |r| r.array(3)), "*3\r\n");
            assert_eq!(enc(r3, |r| r.raw(b"+X\r\n")), "+X\r\n");
        }
    }

    #[test]
    fn resp2_fallbacks() {
        assert_eq!(enc(false, |r| r.null()), "$-1\r\n");
        assert_eq!(enc(false, |r| r.null_array()), "*-1\r\n");
        assert_eq!(enc(false, |r| r.map(2)), "*4\r\n");
        assert_eq!(enc(false, |r| r.set(3)), "*3\r\n");
        assert_eq!(enc(false, |r| r.push(3)), "*3\r\n");
        assert_eq!(enc(false, |r| r.double(1.5)), "$3\r\n1.5\r\n");
        assert_eq!(enc(false, |r| r.double(f64::INFINITY)), "$3\r\ninf\r\n");
        assert_eq!(enc(false, |r| r.double(-1e300)), "$7\r\n-1e+300\r\n");
        assert_eq!(enc(false, |r| r.boolean(true)), ":1\r\n");
        assert_eq!(enc(false, |r| r.boolean(false)), ":0\r\n");
        assert_eq!(enc(false, |r| r.verbatim("txt", b"hi")), "$2\r\nhi\r\n");
        assert_eq!(enc(false, |r| r.big_number("123")), "$3\r\n123\r\n");
    }

    #[test]
    fn resp3_types() {
        assert_eq!(enc(true, |r| r.null()), "_\r\n");
        assert_eq!(enc(true, |r| r.null_array()), "_\r\n");
        assert_eq!(enc(true, |r| r.map(2)), "%2\r\n");
        assert_eq!(enc(true, |r| r.set(3)), "~3\r\n");
        assert_eq!(enc(true, |r| r.push(3)), ">3\r\n");
        assert_eq!(enc(true, |r| r.double(1.5)), ",1.5\r\n");
        assert_eq!(enc(true, |r| r.double(3.0)), ",3\r\n");
        assert_eq!(enc(true, |r| r.double(f64::NEG_INFINITY)), ",-inf\r\n");
        assert_eq!(enc(true, |r| r.double(f64::NAN)), ",nan\r\n");
        assert_eq!(enc(true, |r| r.double(-0.0)), ",-0\r\n");
        assert_eq!(enc(true, |r| r.boolean(true)), "#t\r\n");
        assert_eq!(enc(true, |r| r.boolean(false)), "#f\r\n");
        assert_eq!(
            enc(true, |r| r.verbatim("txt", b"hello")),
            "=9\r\ntxt:hello\r\n"
        );
        assert_eq!(enc(true, |r| r.big_number("-123")), "(-123\r\n");
    }
}
