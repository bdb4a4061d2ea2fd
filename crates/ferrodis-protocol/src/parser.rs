//! Incremental request parser: RESP multibulk and inline commands, with Redis 7's rules and errors.

use std::sync::OnceLock;

use memchr::{memchr, memchr2};

use crate::args::Args;
use crate::num::parse_i64;

/// Size limits applied while parsing (Redis's `proto-max-bulk-len` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk argument accepted (`proto-max-bulk-len`), default 512 MiB.
    pub max_bulk_len: usize,
    /// Largest multibulk count accepted, default `i32::MAX`.
    pub max_multibulk_len: usize,
    /// Longest inline request / count line without a terminator (`PROTO_INLINE_MAX_SIZE`), 64 KiB.
    pub max_inline_len: usize,
    /// False while the connection still has to authenticate: Redis then accepts at most 10 arguments
    /// and bulks of at most 16384 bytes.
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
            authenticated: true,
        }
    }
}

/// A protocol error. The text is what follows `ERR ` in the reply, e.g.
/// `Protocol error: invalid multibulk length`. The connection is to be closed after replying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ProtocolError {}

pub(crate) const ERR_INVALID_MBULK: &str = "Protocol error: invalid multibulk length";
pub(crate) const ERR_UNAUTH_MBULK: &str = "Protocol error: unauthenticated multibulk length";
pub(crate) const ERR_INVALID_BULK: &str = "Protocol error: invalid bulk length";
pub(crate) const ERR_UNAUTH_BULK: &str = "Protocol error: unauthenticated bulk length";
pub(crate) const ERR_BIG_MBULK: &str = "Protocol error: too big mbulk count string";
pub(crate) const ERR_BIG_BULK: &str = "Protocol error: too big bulk count string";
pub(crate) const ERR_BIG_INLINE: &str = "Protocol error: too big inline request";
pub(crate) const ERR_QUOTES: &str = "Protocol error: unbalanced quotes in request";

/// Redis's limits for connections that have not authenticated yet.
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;

/// Don't pre-reserve more spans than this from a client-provided count.
const MAX_PREALLOC_ARGS: usize = 1024;

/// "Protocol error: expected '$', got 'X'" for every byte X.
fn expected_dollar(b: u8) -> ProtocolError {
    static TABLE: OnceLock<Vec<&'static str>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=255u8)
            .map(|b| {
                let s = match b {
                    // Redis formats with %c into a C string: a NUL ends the message there.
                    0 => "Protocol error: expected '$', got '".to_string(),
                    // Redis replaces CR/LF in error messages with spaces.
                    b'\r' | b'\n' => "Protocol error: expected '$', got ' '".to_string(),
                    _ => format!("Protocol error: expected '$', got '{}'", b as char),
                };
                &*Box::leak(s.into_boxed_str())
            })
            .collect()
    });
    ProtocolError(table[b as usize])
}

/// Incremental, allocation-free (in steady state) request parser.
///
/// Feed it the unconsumed bytes of a connection's read buffer, starting at a request boundary.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    /// Argument spans: into the request buffer (multibulk) or into `scratch` (inline).
    spans: Vec<(usize, usize)>,
    /// Unescaped inline arguments.
    scratch: Vec<u8>,
    /// The last parsed request was inline: its arguments live in `scratch`.
    args_inline: bool,
    /// A request is partially parsed (the last call returned `Ok(None)`).
    pending: bool,
    /// Multibulk: offset reached in the request.
    pos: usize,
    /// Multibulk: the count line was read.
    count_read: bool,
    /// Multibulk: bulks still to read.
    remaining: usize,
    /// Multibulk: length of the bulk whose header was read but whose data is incomplete.
    bulk_len: Option<usize>,
    /// Where to resume searching for a line terminator.
    scan_from: usize,
    /// Length of the buffer seen by the last call that returned `Ok(None)`.
    seen: usize,
}

impl RequestParser {
    /// A parser with the given limits.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            spans: Vec::with_capacity(16),
            scratch: Vec::new(),
            args_inline: false,
            pending: false,
            pos: 0,
            count_read: false,
            remaining: 0,
            bulk_len: None,
            scan_from: 0,
            seen: 0,
        }
    }

    /// The limits, e.g. to set `authenticated` after AUTH or change `max_bulk_len` after CONFIG SET.
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// The current limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partially parsed request.
    pub fn reset(&mut self) {
        self.pending = false;
    }

    fn start_request(&mut self) {
        if self.spans.capacity() > 1 << 16 {
            self.spans = Vec::with_capacity(16);
        }
        if self.scratch.capacity() > 1 << 17 {
            self.scratch = Vec::new();
        }
        self.spans.clear();
        self.scratch.clear();
        self.args_inline = false;
        self.pos = 0;
        self.count_read = false;
        self.remaining = 0;
        self.bulk_len = None;
        self.scan_from = 0;
        self.seen = 0;
    }

    /// Tries to parse one request at the start of `buf`.
    ///
    /// `Ok(Some(consumed))`: a whole request was parsed; its arguments are available through
    /// [`args`](Self::args) (zero arguments for an empty request, which the caller skips).
    /// `Ok(None)`: more bytes are needed; call again with a buffer that starts with the same bytes.
    /// `Err`: protocol error; reply `-ERR <text>` and close the connection.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if !self.pending || buf.len() < self.seen {
            self.start_request();
        }
        self.pending = false;
        if buf.is_empty() {
            return Ok(None);
        }
        let r = if buf[0] == b'*' {
            self.parse_multibulk(buf)
        } else {
            self.parse_inline(buf)
        };
        match r {
            Ok(None) => {
                self.pending = true;
                self.seen = buf.len();
                Ok(None)
            }
            other => other,
        }
    }

    /// The arguments of the request last parsed. `buf` must be the bytes given to the `parse` call
    /// that returned `Ok(Some(_))`.
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        if self.args_inline {
            Args::from_parts(&self.scratch, &self.spans)
        } else {
            Args::from_parts(buf, &self.spans)
        }
    }

    /// At least how many more bytes the pending request needs, when known (inside a bulk).
    pub fn bytes_needed(&self) -> Option<usize> {
        if !self.pending {
            return None;
        }
        let len = self.bulk_len?;
        Some((self.pos + len + 2).saturating_sub(self.seen).max(1))
    }

    /// Finds the '\r' ending the line at `from`, as Redis's `strchr` does: a NUL byte hides anything
    /// after it. Returns `Some(index of '\r')` only when the byte after it is also present.
    fn find_cr(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        let start = self.scan_from.max(from);
        match memchr2(b'\r', 0, &buf[start..]) {
            Some(i) => {
                let at = start + i;
                // Resume here next time: same outcome until more bytes arrive (or forever for NUL).
                self.scan_from = at;
                if buf[at] == 0 || at + 2 > buf.len() {
                    None
                } else {
                    Some(at)
                }
            }
            None => {
                self.scan_from = buf.len();
                None
            }
        }
    }

    fn parse_multibulk(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if !self.count_read {
            let Some(cr) = self.find_cr(buf, 0) else {
                if buf.len() > self.limits.max_inline_len {
                    return Err(ProtocolError(ERR_BIG_MBULK));
                }
                return Ok(None);
            };
            let max = i64::try_from(self.limits.max_multibulk_len).unwrap_or(i64::MAX);
            let n = match parse_i64(&buf[1..cr]) {
                Some(n) if n <= max => n,
                _ => return Err(ProtocolError(ERR_INVALID_MBULK)),
            };
            if n > UNAUTH_MAX_MULTIBULK && !self.limits.authenticated {
                return Err(ProtocolError(ERR_UNAUTH_MBULK));
            }
            // Redis skips the byte after '\r' without looking at it.
            self.pos = cr + 2;
            if n <= 0 {
                return Ok(Some(self.pos));
            }
            self.count_read = true;
            self.remaining = n as usize;
            self.spans.reserve(self.remaining.min(MAX_PREALLOC_ARGS));
        }
        while self.remaining > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let pos = self.pos;
                    let Some(cr) = self.find_cr(buf, pos) else {
                        if buf.len() - pos > self.limits.max_inline_len {
                            return Err(ProtocolError(ERR_BIG_BULK));
                        }
                        return Ok(None);
                    };
                    if buf[pos] != b'$' {
                        return Err(expected_dollar(buf[pos]));
                    }
                    let max = i64::try_from(self.limits.max_bulk_len).unwrap_or(i64::MAX);
                    let len = match parse_i64(&buf[pos + 1..cr]) {
                        Some(l) if (0..=max).contains(&l) => l,
                        _ => return Err(ProtocolError(ERR_INVALID_BULK)),
                    };
                    if len > UNAUTH_MAX_BULK && !self.limits.authenticated {
                        return Err(ProtocolError(ERR_UNAUTH_BULK));
                    }
                    self.pos = cr + 2;
                    let len = len as usize;
                    self.bulk_len = Some(len);
                    len
                }
            };
            // The data and its two trailing bytes, which Redis skips without checking.
            if buf.len() - self.pos < len + 2 {
                return Ok(None);
            }
            self.spans.push((self.pos, self.pos + len));
            self.pos += len + 2;
            self.scan_from = self.pos;
            self.bulk_len = None;
            self.remaining -= 1;
        }
        Ok(Some(self.pos))
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        // Redis uses strchr: a NUL before the newline hides the newline.
        let start = self.scan_from;
        let nl = match memchr2(b'\n', 0, &buf[start..]) {
            Some(i) if buf[start + i] == b'\n' => start + i,
            found => {
                self.scan_from = match found {
                    Some(i) => start + i,
                    None => buf.len(),
                };
                if buf.len() > self.limits.max_inline_len {
                    return Err(ProtocolError(ERR_BIG_INLINE));
                }
                return Ok(None);
            }
        };
        let mut end = nl;
        if end > 0 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.args_inline = true;
        if split_args(&buf[..end], &mut self.scratch, &mut self.spans).is_err() {
            return Err(ProtocolError(ERR_QUOTES));
        }
        Ok(Some(nl + 1))
    }
}

/// C `isspace` in the C locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline request line into arguments, with the rules of Redis's `sdssplitargs`.
/// The unescaped bytes go to `out`, their `(start, end)` ranges to `spans`.
/// `Err(())` on unbalanced quotes.
pub(crate) fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), ()> {
    // The line is handled as a C string: it ends at the first NUL.
    let line = match memchr(0, line) {
        Some(i) => &line[..i],
        None => line,
    };
    let n = line.len();
    let at = |i: usize| -> u8 {
        if i < n {
            line[i]
        } else {
            0
        }
    };
    let mut i = 0;
    loop {
        while i < n && is_c_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Ok(());
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = at(i);
            let mut done = false;
            if in_dq {
                if c == b'\\' && at(i + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(i + 2)), hex_val(at(i + 3))) {
                        out.push(h * 16 + l);
                        i += 3;
                    } else {
                        // "\x" not followed by two hex digits: plain escape of 'x'.
                        out.push(b'x');
                        i += 1;
                    }
                } else if c == b'\\' && at(i + 1) != 0 {
                    i += 1;
                    out.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    let next = at(i + 1);
                    if next != 0 && !is_c_space(next) {
                        return Err(());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(());
                } else {
                    out.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    let next = at(i + 1);
                    if next != 0 && !is_c_space(next) {
                        return Err(());
                    }
                    done = true;
                } else if c == 0 {
                    return Err(());
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => out.push(c),
                }
            }
            if i < n {
                i += 1;
            }
            if done {
                spans.push((start, out.len()));
                break;
            }
        }
    }
}
