//! The typed argument cursor handlers read their arguments with.
//!
//! A handler walks its request from left to right: [`Argv::next`] for a required argument,
//! [`Argv::int`]/[`Argv::float`] for numbers, [`Argv::eat`] for a keyword, [`Argv::opt`] in option loops.
//! Every read is checked: a missing argument is an error reply (`ERR syntax error` unless the caller
//! says otherwise), never an index out of range, so no handler can panic on a short argument list
//! whatever the arity table says. Option sets several commands share (SCAN's MATCH/COUNT/TYPE, LIMIT
//! offset count) are parsed once here.

use super::{err, parse, CmdError};
use crate::glob;
use ferrodis_protocol::Args;

/// A position in a request's arguments. Starts after the command name.
#[derive(Clone, Copy)]
pub struct Argv<'a> {
    args: Args<'a>,
    pos: usize,
}

impl<'a> Argv<'a> {
    /// A cursor over `args` placed on the first argument after the command name.
    #[inline]
    pub fn new(args: Args<'a>) -> Argv<'a> {
        Argv { args, pos: 1 }
    }

    /// A cursor over `args` placed on argument `pos` (0 is the command name).
    #[inline]
    pub fn at(args: Args<'a>, pos: usize) -> Argv<'a> {
        Argv { args, pos }
    }

    /// Index of the next argument in the request (0 is the command name).
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Arguments not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.args.len().saturating_sub(self.pos)
    }

    /// True when every argument has been read.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.pos >= self.args.len()
    }

    /// The next argument without reading it.
    #[inline]
    pub fn peek(&self) -> Option<&'a [u8]> {
        self.args.try_get(self.pos)
    }

    /// Reads the next argument if there is one.
    #[inline]
    pub fn opt(&mut self) -> Option<&'a [u8]> {
        let a = self.args.try_get(self.pos)?;
        self.pos += 1;
        Some(a)
    }

    /// Reads the next argument; `ERR syntax error` when there is none. (Not `Iterator::next`: a missing
    /// argument is an error reply here, and `opt` is the Option form.)
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Result<&'a [u8], CmdError> {
        self.next_or(err::SYNTAX)
    }

    /// Reads the next argument; `msg` when there is none.
    #[inline]
    pub fn next_or(&mut self, msg: &'static str) -> Result<&'a [u8], CmdError> {
        self.opt().ok_or_else(|| msg.into())
    }

    /// Reads the next argument as an integer (`ERR value is not an integer or out of range`).
    #[inline]
    pub fn int(&mut self) -> Result<i64, CmdError> {
        parse::int(self.next()?)
    }

    /// Reads the next argument as a float (`ERR value is not a valid float`).
    #[inline]
    pub fn float(&mut self) -> Result<f64, CmdError> {
        parse::float(self.next()?)
    }

    /// Reads the next argument as a non-negative integer, `msg` when it is negative or not a number.
    #[inline]
    pub fn uint_or(&mut self, msg: &'static str) -> Result<usize, CmdError> {
        parse::uint_or(self.next()?, msg)
    }

    /// Reads the next argument when it is the keyword `word` (any case).
    #[inline]
    pub fn eat(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(a) if parse::eq(a, word) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Reads the next `n` arguments as one view; `ERR syntax error` when fewer are left.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<Args<'a>, CmdError> {
        if n > self.remaining() {
            return Err(err::SYNTAX.into());
        }
        let view = self.args.window(self.pos, n);
        self.pos += n;
        Ok(view)
    }

    /// Reads every argument left as one view.
    #[inline]
    pub fn rest(&mut self) -> Args<'a> {
        let view = self.args.skip(self.pos);
        self.pos = self.args.len();
        view
    }

    /// `ERR syntax error` unless every argument has been read.
    #[inline]
    pub fn finish(&self) -> Result<(), CmdError> {
        if self.is_done() {
            Ok(())
        } else {
            Err(err::SYNTAX.into())
        }
    }
}

/// The options of SCAN, HSCAN, SSCAN and ZSCAN.
pub struct ScanOpts<'a> {
    /// MATCH pattern; `None` when absent or when it matches everything (`*`).
    pub pattern: Option<&'a [u8]>,
    /// COUNT hint (10 when absent).
    pub count: u64,
    /// TYPE filter (SCAN only).
    pub type_filter: Option<&'a [u8]>,
    /// NOVALUES (HSCAN only).
    pub novalues: bool,
}

/// Which optional words a SCAN-family command accepts besides MATCH and COUNT.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ScanKind {
    /// SCAN: TYPE type.
    Keys,
    /// HSCAN: NOVALUES.
    Hash,
    /// SSCAN and ZSCAN: nothing more.
    Plain,
}

impl<'a> ScanOpts<'a> {
    /// Parses the options left in `a`, as Redis does: each of MATCH, COUNT (≥ 1) and TYPE takes one
    /// value, a later one wins, anything else is a syntax error.
    pub fn parse(a: &mut Argv<'a>, kind: ScanKind) -> Result<ScanOpts<'a>, CmdError> {
        let mut o = ScanOpts {
            pattern: None,
            count: 10,
            type_filter: None,
            novalues: false,
        };
        while let Some(word) = a.opt() {
            let has_value = !a.is_done();
            if parse::eq(word, "count") && has_value {
                let c = a.int()?;
                if c < 1 {
                    return Err(err::SYNTAX.into());
                }
                o.count = c as u64;
            } else if parse::eq(word, "match") && has_value {
                let p = a.next()?;
                o.pattern = (!glob::is_match_all(p)).then_some(p);
            } else if kind == ScanKind::Keys && parse::eq(word, "type") && has_value {
                o.type_filter = Some(a.next()?);
            } else if kind == ScanKind::Hash && parse::eq(word, "novalues") {
                o.novalues = true;
            } else {
                return Err(err::SYNTAX.into());
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_args<R>(words: &[&str], f: impl FnOnce(Args<'_>) -> R) -> R {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for w in words {
            let s = buf.len();
            buf.extend_from_slice(w.as_bytes());
            spans.push((s, buf.len()));
        }
        f(Args::from_parts(&buf, &spans))
    }

    #[test]
    fn reads_in_order_and_reports_missing_arguments() {
        with_args(&["cmd", "k", "12", "1.5", "NX", "x"], |args| {
            let mut a = Argv::new(args);
            assert_eq!(a.next().unwrap(), b"k");
            assert_eq!(a.int().unwrap(), 12);
            assert_eq!(a.float().unwrap(), 1.5);
            assert!(!a.eat("xx"));
            assert!(a.eat("nx"));
            assert_eq!(a.remaining(), 1);
            assert!(a.finish().is_err());
            assert_eq!(a.peek(), Some(&b"x"[..]));
            assert_eq!(a.rest().len(), 1);
            assert!(a.is_done());
            assert!(a.finish().is_ok());
            assert_eq!(a.next().unwrap_err().msg(), err::SYNTAX);
            assert_eq!(a.next_or("ERR custom").unwrap_err().msg(), "ERR custom");
            assert!(a.opt().is_none());
            assert!(a.take(1).is_err());
        });
    }

    #[test]
    fn numbers_get_redis_errors() {
        with_args(&["cmd", "abc", "abc", "-1"], |args| {
            let mut a = Argv::new(args);
            assert_eq!(a.int().unwrap_err().msg(), err::NOT_INTEGER);
            assert_eq!(a.float().unwrap_err().msg(), err::NOT_FLOAT);
            assert_eq!(a.uint_or("ERR neg").unwrap_err().msg(), "ERR neg");
        });
    }

    #[test]
    fn take_gives_a_window() {
        with_args(&["cmd", "a", "b", "c", "d"], |args| {
            let mut a = Argv::at(args, 2);
            let w = a.take(2).unwrap();
            assert_eq!(w.iter().collect::<Vec<_>>(), vec![&b"b"[..], b"c"]);
            assert_eq!(a.pos(), 4);
            assert!(a.take(2).is_err());
            assert_eq!(a.pos(), 4);
        });
    }

    #[test]
    fn scan_options() {
        with_args(
            &["scan", "0", "MATCH", "a*", "COUNT", "5", "TYPE", "hash"],
            |args| {
                let mut a = Argv::at(args, 2);
                let o = ScanOpts::parse(&mut a, ScanKind::Keys).unwrap();
                assert_eq!(o.pattern, Some(&b"a*"[..]));
                assert_eq!(o.count, 5);
                assert_eq!(o.type_filter, Some(&b"hash"[..]));
                let mut a = Argv::at(args, 2);
                assert!(ScanOpts::parse(&mut a, ScanKind::Plain).is_err());
            },
        );
        with_args(&["hscan", "k", "0", "match", "*", "novalues"], |args| {
            let o = ScanOpts::parse(&mut Argv::at(args, 3), ScanKind::Hash).unwrap();
            assert_eq!(o.pattern, None);
            assert_eq!(o.count, 10);
            assert!(o.novalues);
        });
        for bad in [
            &["sscan", "k", "0", "count", "0"][..],
            &["sscan", "k", "0", "count"],
        ] {
            with_args(bad, |args| {
                let r = ScanOpts::parse(&mut Argv::at(args, 3), ScanKind::Plain);
                assert_eq!(r.err().unwrap().msg(), err::SYNTAX);
            });
        }
    }
}
