//! SORT and SORT_RO: sort the elements of a list, set or sorted set (numerically or with ALPHA), optionally by
//! external keys (`BY pattern`, hash fields with `->`), fetching external keys for each element (`GET pattern`,
//! `#` for the element itself), with LIMIT, ASC/DESC and (SORT only) STORE into a list.
//!
//! Locking: BY/GET patterns name keys that cannot be known before the sorted value is read, and they may live
//! on any shard, so a command with a real pattern (one containing `*`; `#` and star-less patterns look up
//! nothing) locks every shard with `lock_all`; otherwise only the source (and the STORE destination) are
//! locked with `lock_many`.
//!
//! Semantics follow Redis 7.2:
//! - numeric sorting parses values like C's `strtod` (leading blanks allowed, hex floats, `inf`); a value that
//!   does not convert completely, overflows, underflows or is NaN fails the whole command with
//!   `ERR One or more scores can't be converted into double`; equal scores are ordered by the element bytes;
//! - a BY pattern without `*` means "don't sort": lists and sorted sets keep their order (DESC reverses it,
//!   LIMIT takes a range directly); a set is returned in its iteration order, except with STORE, where it is
//!   sorted with ALPHA so the stored result is deterministic;
//! - a missing BY key sorts as 0 (numeric) or before every present key (ALPHA); a missing GET key, a key of
//!   the wrong type, or a pattern without `*` yields nil (an empty string in a STORE result);
//! - STORE writes a list (replacing any value and its TTL) and replies with its length; an empty result
//!   deletes the destination.

use super::argv::Argv;
use super::spec::{self, ACCESS, OW, RO, UPDATE};
use super::zsets::limit_option;
use super::{acl, err, flags::*, parse, CmdError, CmdResult, Command, Ctx, KeyRef};
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::MultiGuard;
use crate::types::list::List;
use crate::types::Value;
use ferrodis_protocol::Args;
use std::cmp::Ordering;

const SCORE_ERR: &str = "ERR One or more scores can't be converted into double";

pub static COMMANDS: &[Command] = &[
    Command {
        name: "sort",
        arity: -2,
        flags: WRITE | DENYOOM,
        acl: acl::DANGEROUS | acl::LIST | acl::SET | acl::SORTEDSET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RO | ACCESS),
            spec::unknown().flags(RO | ACCESS).notes("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
            spec::unknown().flags(OW | UPDATE).notes("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"),
        ],
        get_keys: Some(sort_keys),
        handler: sort,
        group: "generic",
        since: "1.0.0",
        summary: "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
        complexity: "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).",
        syntax: "key [BY by-pattern:pattern/pattern#1] [LIMIT <offset:integer count:integer>] [GET get-pattern:pattern/pattern#1 ...+] order:[ASC | DESC] [ALPHA=sorting] [STORE destination:key#2]",
        ..Command::DEFAULT
    },
    Command {
        name: "sort_ro",
        arity: -2,
        flags: READONLY,
        acl: acl::DANGEROUS | acl::LIST | acl::SET | acl::SORTEDSET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RO | ACCESS),
            spec::unknown().flags(RO | ACCESS).notes("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
        ],
        get_keys: Some(sort_ro_keys),
        handler: sort_ro,
        group: "generic",
        since: "7.0.0",
        summary: "Returns the sorted elements of a list, a set, or a sorted set.",
        complexity: "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).",
        syntax: "key [BY by-pattern:pattern/pattern#1] [LIMIT <offset:integer count:integer>] [GET get-pattern:pattern/pattern#1 ...+] order:[ASC | DESC] [ALPHA=sorting]",
        ..Command::DEFAULT
    },
];

/// Parsed options of one SORT call.
#[derive(Debug, Default, PartialEq)]
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<&'a [u8]>,
    by: Option<&'a [u8]>,
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

/// SORT's key finder (Redis's sortGetKeys): the source, plus the STORE destination (the last one given),
/// skipping the arguments of LIMIT, BY and GET.
fn sort_keys(args: &Args<'_>, out: &mut Vec<KeyRef>) -> bool {
    out.push(KeyRef {
        pos: 1,
        flags: RO | ACCESS,
    });
    let mut store = None;
    let mut a = Argv::at(*args, 2);
    while let Some(word) = a.opt() {
        if parse::eq(word, "limit") {
            a.opt();
            a.opt();
        } else if parse::eq(word, "get") || parse::eq(word, "by") {
            a.opt();
        } else if parse::eq(word, "store") && !a.is_done() {
            store = Some(a.pos());
            a.opt();
        }
    }
    out.extend(store.map(|pos| KeyRef {
        pos,
        flags: OW | UPDATE,
    }));
    true
}

/// SORT_RO's key finder: the source.
fn sort_ro_keys(_args: &Args<'_>, out: &mut Vec<KeyRef>) -> bool {
    out.push(KeyRef {
        pos: 1,
        flags: RO | ACCESS,
    });
    true
}

/// Parses SORT's options (`a` placed after the key), as Redis does: a later ASC/DESC, LIMIT, STORE or BY wins,
/// GET accumulates, an option missing its values is a syntax error.
fn parse_opts<'a>(a: &mut Argv<'a>, readonly: bool) -> Result<Opts<'a>, CmdError> {
    let mut o = Opts {
        limit_count: -1,
        ..Opts::default()
    };
    while let Some(word) = a.opt() {
        let more = !a.is_done();
        if parse::eq(word, "asc") {
            o.desc = false;
        } else if parse::eq(word, "desc") {
            o.desc = true;
        } else if parse::eq(word, "alpha") {
            o.alpha = true;
        } else if let Some((start, count)) = limit_option(word, a)? {
            o.limit_start = start;
            o.limit_count = count;
        } else if !readonly && parse::eq(word, "store") && more {
            o.store = Some(a.next()?);
        } else if parse::eq(word, "by") && more {
            let p = a.next()?;
            o.by = Some(p);
            // A BY pattern without '*' names no per-element key: nothing to sort by. As in Redis, a later
            // BY with a star does not undo it (`BY nosort BY w_*` does not sort).
            if !has_star(p) {
                o.dontsort = true;
            }
        } else if parse::eq(word, "get") && more {
            o.gets.push(a.next()?);
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    Ok(o)
}

/// The part of a pattern C string functions see (up to the first NUL byte).
fn cstr(p: &[u8]) -> &[u8] {
    match memchr::memchr(0, p) {
        Some(i) => &p[..i],
        None => p,
    }
}

fn has_star(p: &[u8]) -> bool {
    memchr::memchr(b'*', cstr(p)).is_some()
}

/// A pattern resolved against one element: `#` (the element itself), a key, or a key plus a hash field.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Elem,
    Key(Vec<u8>, Option<Vec<u8>>),
    Nothing,
}

/// Substitute the first `*` of `pat` with `elem`; `key*->field` dereferences a hash field (the field must be
/// non-empty, and the arrow must come after the star).
fn resolve(pat: &[u8], elem: &[u8]) -> Target {
    let c = cstr(pat);
    if c == b"#" {
        return Target::Elem;
    }
    let Some(star) = memchr::memchr(b'*', c) else {
        return Target::Nothing;
    };
    let arrow = memchr::memmem::find(&c[star + 1..], b"->")
        .map(|i| star + 1 + i)
        .filter(|&f| f + 2 < c.len());
    let (fieldlen, field) = match arrow {
        Some(f) => (pat.len() - f - 2, Some(pat[f + 2..].to_vec())),
        None => (0, None),
    };
    let postfix = pat.len() - (star + 1) - if field.is_some() { fieldlen + 2 } else { 0 };
    let mut key = Vec::with_capacity(star + elem.len() + postfix);
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pat[star + 1..star + 1 + postfix]);
    Target::Key(key, field)
}

/// Look up what a pattern names for one element: a string value, or a hash field.
fn lookup_pattern(
    ctx: &Ctx<'_>,
    g: &mut MultiGuard<'_>,
    pat: &[u8],
    elem: &[u8],
) -> Option<Vec<u8>> {
    let (key, field) = match resolve(pat, elem) {
        Target::Elem => return Some(elem.to_vec()),
        Target::Nothing => return None,
        Target::Key(k, f) => (k, f),
    };
    let e = ctx.lookup(g.shard(&key), &key)?;
    match (e.value(), field) {
        (ValueRef::Str(s), None) => Some(s.to_vec()),
        (ValueRef::Other(Value::Hash(h)), Some(f)) => {
            h.get_live(&f, ctx.now_ms).map(|v| v.to_vec())
        }
        _ => None,
    }
}

/// Parse a sort weight the way C's `strtod` does when the whole string must be consumed: the value stops at
/// the first NUL byte, leading blanks are skipped, hex floats and `inf`/`infinity` are accepted; an empty
/// string is 0; NaN, overflow and underflow (a non-zero value below the smallest normal double) fail.
fn strtod_score(b: &[u8]) -> Option<f64> {
    let b = cstr(b);
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let s = std::str::from_utf8(&b[start..]).ok()?;
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (v, nonzero_digits) = if let Some(hex) = lower.strip_prefix("0x") {
        ferrodis_protocol::num::parse_hex_float(hex.as_bytes())?
    } else {
        if lower.starts_with("inf") {
            return if lower == "inf" || lower == "infinity" {
                Some(if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                })
            } else {
                None
            };
        }
        // Rust's parser accepts the same decimal syntax as strtod, plus "nan"/"inf" handled around it.
        if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            || !body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let mant = body.split(['e', 'E']).next().unwrap_or("");
        (v, mant.bytes().any(|c| matches!(c, b'1'..=b'9')))
    };
    if v.is_nan() || v.is_infinite() {
        return None;
    }
    if nonzero_digits && v.abs() < f64::MIN_POSITIVE {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// The elements to output, after loading, sorting and LIMIT: `elems[start..=end]` (empty when end < start).
struct Sorted {
    elems: Vec<Vec<u8>>,
    start: i64,
    end: i64,
}

impl Sorted {
    fn selected(&self) -> &[Vec<u8>] {
        if self.end < self.start || self.start < 0 {
            &[]
        } else {
            &self.elems[self.start as usize..=self.end as usize]
        }
    }
}

/// Sort key of one element.
enum Weight {
    Score(f64),
    /// ALPHA with a BY pattern: the looked-up value (None when missing).
    By(Option<Vec<u8>>),
    /// ALPHA without BY: compare the elements themselves.
    Elem,
}

fn compare(a: &(Vec<u8>, Weight), b: &(Vec<u8>, Weight)) -> Ordering {
    match (&a.1, &b.1) {
        (Weight::Score(x), Weight::Score(y)) => x
            .partial_cmp(y)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0)),
        (Weight::By(x), Weight::By(y)) => match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        },
        _ => a.0.cmp(&b.0),
    }
}

/// Limit bounds as Redis clamps them for a value of `len` elements: (start, end), inclusive.
fn limit_bounds(len: i64, limit_start: i64, limit_count: i64) -> (i64, i64) {
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

/// Read the elements to sort out of the value (None = a missing key, sorted as an empty list), taking a LIMIT
/// range directly where no sorting happens (lists and sorted sets with `dontsort`).
fn extract(v: Option<&Value>, o: &mut Opts<'_>) -> Sorted {
    let len = match v {
        None => 0,
        Some(Value::List(l)) => l.len(),
        Some(Value::Set(s)) => s.len(),
        Some(Value::ZSet(z)) => z.len(),
        Some(_) => 0,
    } as i64;
    // An unsorted set would come out in an arbitrary order: a stored result is sorted (ALPHA) instead.
    if o.dontsort && matches!(v, Some(Value::Set(_))) && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let (start, end) = limit_bounds(len, o.limit_start, o.limit_count);
    let ranged = o.dontsort && matches!(v, Some(Value::List(_) | Value::ZSet(_)));
    if ranged {
        // Only the selected range, in the value's own order (reversed for DESC).
        let n = (end - start + 1).max(0) as usize;
        let mut elems = Vec::with_capacity(n);
        if n > 0 {
            let (s, e) = (start as usize, end as usize);
            let len = len as usize;
            match v {
                Some(Value::List(l)) => {
                    if o.desc {
                        // (list::Iter::rev on a sub-range starts at the list's tail: reverse after.)
                        elems.extend(l.range(len - 1 - e, n).map(|x| x.to_vec()));
                        elems.reverse();
                    } else {
                        elems.extend(l.range(s, n).map(|x| x.to_vec()));
                    }
                }
                Some(Value::ZSet(z)) => {
                    if o.desc {
                        z.for_range(len - 1 - e, len - s, true, |m, _| elems.push(m.to_vec()));
                    } else {
                        z.for_range(s, e + 1, false, |m, _| elems.push(m.to_vec()));
                    }
                }
                _ => {}
            }
            return Sorted {
                elems,
                start: 0,
                end: end - start,
            };
        }
        return Sorted { elems, start, end };
    }
    let elems: Vec<Vec<u8>> = match v {
        None | Some(Value::Str(_)) | Some(Value::Hash(_)) | Some(Value::Stream(_)) => Vec::new(),
        Some(Value::List(l)) => l.iter().map(|x| x.to_vec()).collect(),
        Some(Value::Set(s)) => s.iter().map(|x| x.to_vec()).collect(),
        Some(Value::ZSet(z)) => {
            let mut v = Vec::with_capacity(z.len());
            z.for_range(0, z.len(), false, |m, _| v.push(m.to_vec()));
            v
        }
    };
    Sorted { elems, start, end }
}

/// Sort the loaded elements by their weights (elements, BY lookups; numeric or ALPHA).
fn sort_elems(
    ctx: &Ctx<'_>,
    g: &mut MultiGuard<'_>,
    elems: Vec<Vec<u8>>,
    o: &Opts<'_>,
) -> Result<Vec<Vec<u8>>, CmdError> {
    let mut bad = false;
    let mut v: Vec<(Vec<u8>, Weight)> = Vec::with_capacity(elems.len());
    for e in elems {
        let w = if o.alpha {
            match o.by {
                Some(p) => Weight::By(lookup_pattern(ctx, g, p, &e)),
                None => Weight::Elem,
            }
        } else {
            let score = match o.by {
                Some(p) => lookup_pattern(ctx, g, p, &e).map(|b| strtod_score(&b)),
                None => Some(strtod_score(&e)),
            };
            match score {
                None => Weight::Score(0.0),
                Some(Some(s)) => Weight::Score(s),
                Some(None) => {
                    bad = true;
                    Weight::Score(0.0)
                }
            }
        };
        v.push((e, w));
    }
    if bad {
        return Err(SCORE_ERR.into());
    }
    if o.desc {
        v.sort_by(|a, b| compare(b, a));
    } else {
        v.sort_by(compare);
    }
    Ok(v.into_iter().map(|(e, _)| e).collect())
}

fn sort(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The result of a SORT: the reply items, or the length stored.
enum Outcome {
    Reply(Vec<Option<Vec<u8>>>),
    Stored(usize),
}

fn sort_generic(ctx: &mut Ctx<'_>, args: Args<'_>, readonly: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let mut o = parse_opts(&mut a, readonly)?;
    let patterns = o.by.is_some_and(has_star)
        || o.gets
            .iter()
            .any(|p| matches!(resolve(p, b""), Target::Key(..)));
    let srv = ctx.srv;
    let (db, lru) = (ctx.db(), ctx.lru_clock());
    let mut g = if patterns {
        srv.keyspace.lock_all()
    } else {
        srv.keyspace.lock_many(std::iter::once(key).chain(o.store))
    };
    let outcome = {
        let ctx: &Ctx<'_> = ctx;
        let mut sorted = match ctx.lookup(g.shard(key), key) {
            None => extract(None, &mut o),
            Some(e) => match e.value() {
                ValueRef::Other(v @ (Value::List(_) | Value::Set(_) | Value::ZSet(_))) => {
                    extract(Some(v), &mut o)
                }
                _ => return Err(err::WRONGTYPE.into()),
            },
        };
        if !o.dontsort {
            let elems = std::mem::take(&mut sorted.elems);
            sorted.elems = sort_elems(ctx, &mut g, elems, &o)?;
        }
        let selected = sorted.selected();
        let mut items: Vec<Option<Vec<u8>>> =
            Vec::with_capacity(selected.len() * o.gets.len().max(1));
        for e in selected {
            if o.gets.is_empty() {
                items.push(Some(e.clone()));
            }
            for p in &o.gets {
                items.push(lookup_pattern(ctx, &mut g, p, e));
            }
        }
        match o.store {
            None => Outcome::Reply(items),
            Some(dst) => {
                let n = items.len();
                let shard = g.shard(dst);
                if n > 0 {
                    let fill = ctx.srv.encoding.get().list_max_listpack_size;
                    let bytes = items
                        .iter()
                        .map(|i| i.as_ref().map_or(0, |v| v.len()))
                        .fold(0usize, |a, b| a.saturating_add(b));
                    let mut l = List::new();
                    l.prepare_grow(fill, bytes, n);
                    for i in &items {
                        l.push_back(i.as_deref().unwrap_or(b""), fill);
                    }
                    shard
                        .db_mut(db)
                        .upsert(Entry::new(dst, Value::List(Box::new(l)), lru));
                    ctx.modified(shard, dst, "sortstore");
                } else if ctx.lookup_write(shard, dst).is_some() {
                    shard.db_mut(db).remove(dst);
                    ctx.modified(shard, dst, "del");
                }
                Outcome::Stored(n)
            }
        }
    };
    drop(g);
    match outcome {
        Outcome::Stored(n) => ctx.reply().int(n as i64),
        Outcome::Reply(items) => {
            let mut r = ctx.reply();
            r.array(items.len());
            for i in &items {
                match i {
                    Some(b) => r.bulk(b),
                    None => r.null(),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, f: Option<&str>) -> Target {
        Target::Key(k.as_bytes().to_vec(), f.map(|f| f.as_bytes().to_vec()))
    }

    /// What a test checks of parsed options: dontsort, BY pattern, LIMIT start and count.
    type Parsed = (bool, Option<Vec<u8>>, i64, i64);

    fn opts(words: &[&str], readonly: bool) -> Result<Parsed, String> {
        let mut all = vec!["sort", "k"];
        all.extend_from_slice(words);
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for w in &all {
            spans.push((buf.len(), buf.len() + w.len()));
            buf.extend_from_slice(w.as_bytes());
        }
        let args = Args::from_parts(&buf, &spans);
        parse_opts(&mut Argv::at(args, 2), readonly)
            .map(|o| {
                (
                    o.dontsort,
                    o.by.map(<[u8]>::to_vec),
                    o.limit_start,
                    o.limit_count,
                )
            })
            .map_err(|e| e.msg().to_string())
    }

    #[test]
    fn options_parse_like_redis() {
        assert_eq!(opts(&[], false).unwrap(), (false, None, 0, -1));
        // A star-less BY stops sorting for good, whatever BY follows it.
        let (dontsort, by, ..) = opts(&["BY", "nosort", "by", "w_*"], false).unwrap();
        assert!(dontsort);
        assert_eq!(by.as_deref(), Some(&b"w_*"[..]));
        assert!(!opts(&["by", "w_*"], false).unwrap().0);
        assert_eq!(
            opts(&["limit", "1", "2", "LIMIT", "3", "4"], false).unwrap(),
            (false, None, 3, 4)
        );
        assert_eq!(opts(&["limit", "1"], false).unwrap_err(), err::SYNTAX);
        assert_eq!(
            opts(&["limit", "x", "y"], false).unwrap_err(),
            err::NOT_INTEGER
        );
        assert_eq!(opts(&["store"], false).unwrap_err(), err::SYNTAX);
        assert!(opts(&["store", "d"], false).is_ok());
        assert_eq!(opts(&["store", "d"], true).unwrap_err(), err::SYNTAX);
        assert_eq!(opts(&["get"], false).unwrap_err(), err::SYNTAX);
    }

    #[test]
    fn patterns_resolve_like_redis() {
        assert_eq!(resolve(b"#", b"x"), Target::Elem);
        assert_eq!(resolve(b"nosort", b"x"), Target::Nothing);
        assert_eq!(resolve(b"w_*", b"x"), key("w_x", None));
        assert_eq!(resolve(b"a*b*c", b"x"), key("axb*c", None));
        assert_eq!(resolve(b"u_*->name", b"7"), key("u_7", Some("name")));
        // An empty field name is no dereference; the arrow is then part of the key.
        assert_eq!(resolve(b"u_*->", b"7"), key("u_7->", None));
        // Only the first arrow after the star splits; the rest belongs to the field.
        assert_eq!(resolve(b"u_*->a->b", b"7"), key("u_7", Some("a->b")));
        // An arrow before the star is part of the key.
        assert_eq!(resolve(b"a->*", b"7"), key("a->7", None));
        // C string semantics: searches stop at a NUL byte.
        assert_eq!(resolve(b"#\0x", b"e"), Target::Elem);
        assert_eq!(resolve(b"ab\0*", b"e"), Target::Nothing);
        assert!(has_star(b"x*"));
        assert!(!has_star(b"x\0*"));
    }

    #[test]
    fn scores_parse_like_strtod() {
        for (s, v) in [
            ("", 0.0),
            ("1", 1.0),
            (" 5", 5.0),
            ("\t-2.5", -2.5),
            ("+.5e1", 5.0),
            ("5.", 5.0),
            ("0x10", 16.0),
            ("0X1p-2", 0.25),
            ("-0x.8", -0.5),
            ("1e-300", 1e-300),
            ("0e-400", 0.0),
            ("2.2250738585072014e-308", f64::MIN_POSITIVE),
            ("7\0junk", 7.0),
        ] {
            assert_eq!(strtod_score(s.as_bytes()), Some(v), "{s:?}");
        }
        assert_eq!(strtod_score(b"inf"), Some(f64::INFINITY));
        assert_eq!(strtod_score(b"-Infinity"), Some(f64::NEG_INFINITY));
        for s in [
            " ", "+", "5 ", "abc", "nan", "1e", "1_0", "0x", "infinit", "1e400", "1e-310",
            "4.9e-324", "0x1p", "--1", "1e5.5",
        ] {
            assert_eq!(strtod_score(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn limit_bounds_clamp_like_redis() {
        assert_eq!(limit_bounds(6, 0, -1), (0, 5));
        assert_eq!(limit_bounds(6, 2, 3), (2, 4));
        assert_eq!(limit_bounds(6, -5, 3), (0, 2));
        assert_eq!(limit_bounds(6, 4, 100), (4, 5));
        assert_eq!(limit_bounds(6, 0, 0), (0, -1));
        assert_eq!(limit_bounds(6, 6, 1), (5, 4));
        assert_eq!(limit_bounds(0, 0, -1), (-1, -2));
        assert_eq!(limit_bounds(3, i64::MIN, i64::MAX), (0, 2));
    }

    #[test]
    fn weights_compare_like_redis() {
        let e = |s: &str, w: Weight| (s.as_bytes().to_vec(), w);
        let a = e("b", Weight::Score(1.0));
        let b = e("a", Weight::Score(1.0));
        assert_eq!(compare(&a, &b), Ordering::Greater);
        let a = e("a", Weight::By(None));
        let b = e("b", Weight::By(Some(b"x".to_vec())));
        assert_eq!(compare(&a, &b), Ordering::Less);
        assert_eq!(compare(&e("z", Weight::By(None)), &a), Ordering::Equal);
        assert_eq!(
            compare(&e("10", Weight::Elem), &e("9", Weight::Elem)),
            Ordering::Less
        );
    }
}
