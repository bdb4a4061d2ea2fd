//! Borrowed view of the arguments of one parsed request.

use std::fmt;

/// The arguments of one request: byte slices of a buffer, described by `(start, end)` spans.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// Builds an argument view from a buffer and `(start, end)` byte ranges into it.
    pub fn from_parts(buf: &'a [u8], spans: &'a [(usize, usize)]) -> Args<'a> {
        Args { buf, spans }
    }

    /// Number of arguments (the command name included).
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`, or `None` when out of range.
    #[inline]
    pub fn try_get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|&(s, e)| &self.buf[s..e])
    }

    /// Iterates over the arguments in order.
    #[inline]
    pub fn iter(&self) -> ArgsIter<'a> {
        ArgsIter {
            buf: self.buf,
            spans: self.spans.iter(),
        }
    }

    /// The arguments after the first `n` (empty when `n >= len()`).
    #[inline]
    pub fn skip(&self, n: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            spans: &self.spans[n.min(self.spans.len())..],
        }
    }

    /// `n` arguments starting at argument `from`, clamped to those that exist.
    #[inline]
    pub fn window(&self, from: usize, n: usize) -> Args<'a> {
        let from = from.min(self.spans.len());
        let to = from.saturating_add(n).min(self.spans.len());
        Args {
            buf: self.buf,
            spans: &self.spans[from..to],
        }
    }

    /// The `(start, end)` spans, relative to the underlying buffer.
    #[inline]
    pub fn spans(&self) -> &'a [(usize, usize)] {
        self.spans
    }

    /// The underlying buffer the spans index into.
    #[inline]
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<'a> IntoIterator for Args<'a> {
    type Item = &'a [u8];
    type IntoIter = ArgsIter<'a>;
    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Args<'a> {
    type Item = &'a [u8];
    type IntoIter = ArgsIter<'a>;
    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Args`].
#[derive(Clone)]
pub struct ArgsIter<'a> {
    buf: &'a [u8],
    spans: std::slice::Iter<'a, (usize, usize)>,
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.spans.next().map(|&(s, e)| &self.buf[s..e])
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
    #[inline]
    fn nth(&mut self, n: usize) -> Option<&'a [u8]> {
        self.spans.nth(n).map(|&(s, e)| &self.buf[s..e])
    }
}

impl DoubleEndedIterator for ArgsIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.spans.next_back().map(|&(s, e)| &self.buf[s..e])
    }
}

impl ExactSizeIterator for ArgsIter<'_> {}

impl std::iter::FusedIterator for ArgsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let buf = b"setkeyvalue";
        let spans = [(0, 3), (3, 6), (6, 11)];
        let a = Args::from_parts(buf, &spans);
        assert_eq!(a.len(), 3);
        assert!(!a.is_empty());
        assert_eq!(a.try_get(0), Some(&b"set"[..]));
        assert_eq!(a.try_get(2), Some(&b"value"[..]));
        assert_eq!(a.try_get(3), None);
        let v: Vec<&[u8]> = a.iter().collect();
        assert_eq!(v, vec![&b"set"[..], b"key", b"value"]);
        assert_eq!(a.iter().len(), 3);
        assert_eq!(a.iter().next_back(), Some(&b"value"[..]));
        let s = a.skip(1);
        assert_eq!(s.len(), 2);
        assert_eq!(s.try_get(0), Some(&b"key"[..]));
        assert!(a.skip(5).is_empty());
        assert_eq!(format!("{:?}", a), "[\"set\", \"key\", \"value\"]");
        let mut n = 0;
        for x in a {
            n += x.len();
        }
        assert_eq!(n, 11);
    }
}
