//! Minimal, exact RESP2 (plus the RESP3 scalar/aggregate types) reader over a TCP stream.
//! Frames borrow from the connection buffer: no allocation except for array element vectors.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_DEPTH: usize = 16;

#[derive(Debug)]
pub enum Val<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    Bulk(Option<&'a [u8]>),
    Array(Option<Vec<Val<'a>>>),
    /// RESP3 scalar we do not interpret (double, boolean, big number, null).
    Other(&'a [u8]),
}

impl Val<'_> {
    pub fn describe(&self) -> String {
        match self {
            Val::Simple(s) => format!("+{}", String::from_utf8_lossy(s)),
            Val::Error(s) => format!("-{}", String::from_utf8_lossy(s)),
            Val::Int(i) => format!(":{i}"),
            Val::Bulk(None) => "(nil bulk)".into(),
            Val::Bulk(Some(b)) => format!("${}", String::from_utf8_lossy(&b[..b.len().min(64)])),
            Val::Array(None) => "(nil array)".into(),
            Val::Array(Some(v)) => {
                let parts: Vec<String> = v.iter().take(8).map(|x| x.describe()).collect();
                format!("[{}]", parts.join(", "))
            }
            Val::Other(s) => format!("{}", String::from_utf8_lossy(s)),
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        match buf[i + 1..].iter().position(|&b| b == b'\n') {
            None => return None,
            Some(off) => {
                let nl = i + 1 + off;
                if buf[nl - 1] == b'\r' {
                    return Some(nl - 1);
                }
                i = nl;
            }
        }
    }
    None
}

fn parse_int(s: &[u8]) -> Result<i64, String> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(format!("bad integer {:?}", String::from_utf8_lossy(s)));
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(format!("bad integer {:?}", String::from_utf8_lossy(s)));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as i64))
            .ok_or_else(|| format!("integer overflow {:?}", String::from_utf8_lossy(s)))?;
    }
    Ok(if neg { -v } else { v })
}

/// Parse one frame starting at `pos`. Ok(None): incomplete. Returns the frame and the position after it.
pub fn parse(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Val<'_>, usize)>, String> {
    if pos >= buf.len() {
        return Ok(None);
    }
    if depth > MAX_DEPTH {
        return Err("nesting too deep".into());
    }
    let Some(eol) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..eol];
    let next = eol + 2;
    let t = buf[pos];
    match t {
        b'+' => Ok(Some((Val::Simple(line), next))),
        b'-' => Ok(Some((Val::Error(line), next))),
        b':' => Ok(Some((Val::Int(parse_int(line)?), next))),
        b'_' | b',' | b'#' | b'(' => Ok(Some((Val::Other(&buf[pos..eol]), next))),
        b'$' | b'=' | b'!' => {
            let n = parse_int(line)?;
            if n < 0 {
                if n == -1 && t == b'$' {
                    return Ok(Some((Val::Bulk(None), next)));
                }
                return Err(format!("bad bulk length {n}"));
            }
            let n = n as usize;
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            if &buf[next + n..next + n + 2] != b"\r\n" {
                return Err("bulk not terminated by CRLF".into());
            }
            let body = &buf[next..next + n];
            Ok(Some((
                if t == b'!' {
                    Val::Error(body)
                } else {
                    Val::Bulk(Some(body))
                },
                next + n + 2,
            )))
        }
        b'*' | b'>' | b'~' | b'%' => {
            let n = parse_int(line)?;
            if n < 0 {
                if n == -1 && t == b'*' {
                    return Ok(Some((Val::Array(None), next)));
                }
                return Err(format!("bad aggregate length {n}"));
            }
            let n = if t == b'%' {
                n as usize * 2
            } else {
                n as usize
            };
            let mut items = Vec::with_capacity(n.min(1024));
            let mut p = next;
            for _ in 0..n {
                match parse(buf, p, depth + 1)? {
                    None => return Ok(None),
                    Some((v, np)) => {
                        items.push(v);
                        p = np;
                    }
                }
            }
            Ok(Some((Val::Array(Some(items)), p)))
        }
        other => Err(format!(
            "protocol error: unexpected type byte {:?}",
            other as char
        )),
    }
}

pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    pub async fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        })
    }

    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data).await
    }

    /// Read more bytes from the socket (at least one). EOF is an error.
    pub async fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.end += n;
        Ok(())
    }

    /// Hand every complete frame in the buffer to `f`; returns how many were consumed.
    pub fn drain(&mut self, mut f: impl FnMut(&Val<'_>)) -> io::Result<usize> {
        let mut count = 0;
        loop {
            let window = &self.buf[..self.end];
            match parse(window, self.start, 0) {
                Ok(Some((v, next))) => {
                    f(&v);
                    drop(v);
                    self.start = next;
                    count += 1;
                }
                Ok(None) => return Ok(count),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }

    /// Read exactly one frame and map it through `f`.
    pub async fn next<R>(&mut self, mut f: impl FnMut(&Val<'_>) -> R) -> io::Result<R> {
        loop {
            let window = &self.buf[..self.end];
            match parse(window, self.start, 0) {
                Ok(Some((v, next))) => {
                    let r = f(&v);
                    drop(v);
                    self.start = next;
                    return Ok(r);
                }
                Ok(None) => self.fill().await?,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

/// Append one RESP command (array of bulk strings) to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames() {
        let b = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n:5\r\n-ERR x\r\n$-1\r\n*-1\r\n";
        let (v, p) = parse(b, 0, 0).unwrap().unwrap();
        assert!(matches!(v, Val::Array(Some(ref a)) if a.len() == 3));
        let (v, p) = parse(b, p, 0).unwrap().unwrap();
        assert!(matches!(v, Val::Int(5)));
        let (v, p) = parse(b, p, 0).unwrap().unwrap();
        assert!(matches!(v, Val::Error(b"ERR x")));
        let (v, p) = parse(b, p, 0).unwrap().unwrap();
        assert!(matches!(v, Val::Bulk(None)));
        let (v, p) = parse(b, p, 0).unwrap().unwrap();
        assert!(matches!(v, Val::Array(None)));
        assert_eq!(p, b.len());
        for cut in 0..b.len() - 1 {
            // Every prefix is either incomplete or a complete earlier frame: never an error.
            assert!(parse(&b[..cut], 0, 0).is_ok());
        }
        assert!(parse(b"$3\r\nabc", 0, 0).unwrap().is_none());
        assert!(parse(b"$3\r\nabcde", 0, 0).is_err());
        assert!(parse(b"?x\r\n", 0, 0).is_err());
        assert!(parse(b":99999999999999999999\r\n", 0, 0).is_err());
    }
}
