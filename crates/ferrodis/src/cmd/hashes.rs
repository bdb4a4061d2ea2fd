//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS HGETALL HINCRBY
//! HINCRBYFLOAT HRANDFIELD HSCAN.

use super::{acl, err, flags::*, parse, CmdError, CmdResult, Command, Ctx, KeySpec};
use crate::glob;
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::Shard;
use crate::types::hash::Hash;
use crate::types::strings::{LdError, LongDouble};
use crate::types::Value;
use ferrodis_protocol::{Args, Reply};

const HASH: &str = "hash";

macro_rules! hcmd {
    ($name:expr, $arity:expr, $flags:expr, $handler:expr, $since:expr, $summary:expr, $complexity:expr, $syntax:expr) => {
        hcmd!(
            $name,
            $arity,
            $flags,
            $handler,
            $since,
            $summary,
            $complexity,
            $syntax,
            &[]
        )
    };
    ($name:expr, $arity:expr, $flags:expr, $handler:expr, $since:expr, $summary:expr, $complexity:expr, $syntax:expr, $tips:expr) => {
        Command {
            name: $name,
            arity: $arity,
            flags: $flags,
            acl: acl::HASH,
            keys: KeySpec::ONE,
            handler: $handler,
            group: HASH,
            since: $since,
            summary: $summary,
            complexity: $complexity,
            syntax: $syntax,
            tips: $tips,
            ..Command::DEFAULT
        }
    };
}

const NONDET_ORDER: &[&str] = &["nondeterministic_output_order"];
const NONDET: &[&str] = &["nondeterministic_output"];

pub static COMMANDS: &[Command] = &[
    hcmd!("hset", -4, WRITE | DENYOOM | FAST, hset, "2.0.0",
        "Creates or modifies the value of a field in a hash.",
        "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
        "key field value [field value ...]"),
    hcmd!("hsetnx", 4, WRITE | DENYOOM | FAST, hsetnx, "2.0.0",
        "Sets the value of a field in a hash only when the field doesn't exist.", "O(1)", "key field value"),
    hcmd!("hget", 3, READONLY | FAST, hget, "2.0.0", "Returns the value of a field in a hash.", "O(1)", "key field"),
    hcmd!("hmget", -3, READONLY | FAST, hmget, "2.0.0", "Returns the values of all fields in a hash.",
        "O(N) where N is the number of fields being requested.", "key field [field ...]"),
    Command {
        deprecated_since: "4.0.0",
        replaced_by: "`HSET` with multiple field-value pairs",
        ..hcmd!("hmset", -4, WRITE | DENYOOM | FAST, hmset, "2.0.0", "Sets the values of multiple fields.",
            "O(N) where N is the number of fields being set.", "key field value [field value ...]")
    },
    hcmd!("hdel", -3, WRITE | FAST, hdel, "2.0.0",
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
        "O(N) where N is the number of fields to be removed.", "key field [field ...]"),
    hcmd!("hexists", 3, READONLY | FAST, hexists, "2.0.0", "Determines whether a field exists in a hash.", "O(1)", "key field"),
    hcmd!("hlen", 2, READONLY | FAST, hlen, "2.0.0", "Returns the number of fields in a hash.", "O(1)", "key"),
    hcmd!("hstrlen", 3, READONLY | FAST, hstrlen, "3.2.0", "Returns the length of the value of a field.", "O(1)", "key field"),
    hcmd!("hkeys", 2, READONLY, hkeys, "2.0.0", "Returns all fields in a hash.",
        "O(N) where N is the size of the hash.", "key", NONDET_ORDER),
    hcmd!("hvals", 2, READONLY, hvals, "2.0.0", "Returns all values in a hash.",
        "O(N) where N is the size of the hash.", "key", NONDET_ORDER),
    hcmd!("hgetall", 2, READONLY, hgetall, "2.0.0", "Returns all fields and values in a hash.",
        "O(N) where N is the size of the hash.", "key", NONDET_ORDER),
    hcmd!("hincrby", 4, WRITE | DENYOOM | FAST, hincrby, "2.0.0",
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        "O(1)", "key field increment"),
    hcmd!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, hincrbyfloat, "2.6.0",
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        "O(1)", "key field increment"),
    hcmd!("hrandfield", -2, READONLY, hrandfield, "6.2.0", "Returns one or more random fields from a hash.",
        "O(N) where N is the number of fields returned", "key [count [WITHVALUES]]", NONDET),
    hcmd!("hscan", -3, READONLY, hscan, "2.8.0", "Iterates over fields and values of a hash.",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the size of the collection.",
        "key cursor [MATCH pattern] [COUNT count] [NOVALUES]", NONDET),
];

// ---------------------------------------------------------------------------------------------------------
// Access helpers

pub(crate) fn as_hash(e: &Entry) -> Result<&Hash, CmdError> {
    match e.value() {
        ValueRef::Other(Value::Hash(h)) => Ok(h),
        _ => Err(err::WRONGTYPE.into()),
    }
}

pub(crate) fn as_hash_mut(e: &mut Entry) -> Result<&mut Hash, CmdError> {
    match e.value_mut() {
        Some(Value::Hash(h)) => Ok(h),
        _ => Err(err::WRONGTYPE.into()),
    }
}

/// Run `f` on the hash at `key` for reading (None when the key is missing); WRONGTYPE for other types.
fn read_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(Option<&Hash>) -> R,
) -> Result<R, CmdError> {
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let r = match ctx.lookup(&mut shard, key) {
        None => f(None),
        Some(e) => f(Some(as_hash(e)?)),
    };
    Ok(r)
}

/// Run `f` on the hash at `key` for writing, creating an empty one if it is missing and `create`; the key is
/// deleted if the hash ends up empty. `f` returns (result, event name if it changed the hash).
fn write_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut Hash) -> Result<(R, Option<&'static str>), CmdError>,
) -> Result<Option<R>, CmdError> {
    let srv = ctx.srv;
    let db = ctx.db();
    let lru = ctx.lru_clock();
    let mut shard = srv.keyspace.lock_key(key);
    let (r, event, empty) = match ctx.lookup_write(&mut shard, key) {
        Some(e) => {
            let h = as_hash_mut(e)?;
            let (r, ev) = f(h)?;
            (r, ev, h.is_empty())
        }
        None if create => {
            let mut h = Hash::new();
            let (r, ev) = f(&mut h)?;
            if !h.is_empty() {
                shard
                    .db_mut(db)
                    .insert_new(Entry::new(key, Value::Hash(Box::new(h)), lru));
            }
            (r, ev, false)
        }
        None => return Ok(None),
    };
    finish_write(ctx, &mut shard, key, event, empty);
    Ok(Some(r))
}

fn finish_write(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    event: Option<&'static str>,
    empty: bool,
) {
    if let Some(ev) = event {
        ctx.modified(shard, key, ev);
    }
    if empty {
        shard.db_mut(ctx.db()).remove(key);
        ctx.modified(shard, key, "del");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Handlers

fn hset_generic(ctx: &mut Ctx<'_>, args: Args<'_>, name: &str) -> Result<i64, CmdError> {
    if args.len() % 2 == 1 {
        return Err(format!("ERR wrong number of arguments for '{name}' command").into());
    }
    let lim = ctx.srv.encoding.get();
    let r = write_hash(ctx, args.get(1), true, |h| {
        h.try_conversion(args.skip(2).iter(), &lim);
        let mut created = 0;
        let mut i = 2;
        while i + 1 < args.len() {
            if h.set(args.get(i), args.get(i + 1), &lim) {
                created += 1;
            }
            i += 2;
        }
        Ok((created, Some("hset")))
    })?;
    Ok(r.unwrap_or(0))
}

fn hset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let n = hset_generic(ctx, args, "hset")?;
    ctx.reply().int(n);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hset_generic(ctx, args, "hmset")?;
    ctx.reply().ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lim = ctx.srv.encoding.get();
    let (f, v) = (args.get(2), args.get(3));
    let r = write_hash(ctx, args.get(1), true, |h| {
        if h.contains(f) {
            return Ok((0, None));
        }
        h.try_conversion([f, v], &lim);
        h.set(f, v, &lim);
        Ok((1, Some("hset")))
    })?;
    ctx.reply().int(r.unwrap_or(0));
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let f = args.get(2);
    let v = read_hash(ctx, args.get(1), |h| {
        h.and_then(|h| h.get(f)).map(<[u8]>::to_vec)
    })?;
    match v {
        Some(v) => ctx.reply().bulk(&v),
        None => ctx.reply().null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let fields = args.skip(2);
    let mut body = Vec::new();
    let resp3 = ctx.client.resp3;
    read_hash(ctx, args.get(1), |h| {
        let mut r = Reply::new(&mut body, resp3);
        r.array(fields.len());
        for f in fields.iter() {
            match h.and_then(|h| h.get(f)) {
                Some(v) => r.bulk(v),
                None => r.null(),
            }
        }
    })?;
    ctx.out.extend_from_slice(&body);
    Ok(())
}

fn hdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let r = write_hash(ctx, args.get(1), false, |h| {
        let mut n = 0;
        for f in args.skip(2).iter() {
            if h.remove(f) {
                n += 1;
                if h.is_empty() {
                    break;
                }
            }
        }
        Ok((n, (n > 0).then_some("hdel")))
    })?;
    ctx.reply().int(r.unwrap_or(0));
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let f = args.get(2);
    let b = read_hash(ctx, args.get(1), |h| h.is_some_and(|h| h.contains(f)))?;
    ctx.reply().int(i64::from(b));
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let n = read_hash(ctx, args.get(1), |h| h.map_or(0, Hash::len))?;
    ctx.reply().int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let f = args.get(2);
    let n = read_hash(ctx, args.get(1), |h| {
        h.and_then(|h| h.get(f)).map_or(0, <[u8]>::len)
    })?;
    ctx.reply().int(n as i64);
    Ok(())
}

#[derive(Clone, Copy)]
enum Part {
    Keys,
    Vals,
    All,
}

fn hget_all(ctx: &mut Ctx<'_>, args: Args<'_>, part: Part) -> CmdResult {
    let mut body = Vec::new();
    let resp3 = ctx.client.resp3;
    read_hash(ctx, args.get(1), |h| {
        let mut r = Reply::new(&mut body, resp3);
        let n = h.map_or(0, Hash::len);
        match part {
            Part::All => r.map(n),
            _ => r.array(n),
        }
        if let Some(h) = h {
            for (f, v) in h.iter() {
                match part {
                    Part::Keys => r.bulk(f),
                    Part::Vals => r.bulk(v),
                    Part::All => {
                        r.bulk(f);
                        r.bulk(v);
                    }
                }
            }
        }
    })?;
    ctx.out.extend_from_slice(&body);
    Ok(())
}

fn hkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hget_all(ctx, args, Part::Keys)
}

fn hvals(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hget_all(ctx, args, Part::Vals)
}

fn hgetall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hget_all(ctx, args, Part::All)
}

fn hincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let incr = parse::int(args.get(3))?;
    let lim = ctx.srv.encoding.get();
    let f = args.get(2);
    let r = write_hash(ctx, args.get(1), true, |h| {
        let cur = match h.get(f) {
            None => 0,
            Some(v) => ferrodis_protocol::num::parse_i64(v)
                .ok_or_else(|| CmdError::from("ERR hash value is not an integer"))?,
        };
        let new = cur
            .checked_add(incr)
            .ok_or_else(|| CmdError::from(err::OVERFLOW))?;
        h.set(f, itoa::Buffer::new().format(new).as_bytes(), &lim);
        Ok((new, Some("hincrby")))
    })?;
    ctx.reply().int(r.unwrap_or(0));
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let incr = match LongDouble::parse(args.get(3)) {
        Ok(v) => v,
        Err(LdError::Invalid) => return Err(err::NOT_FLOAT.into()),
        Err(LdError::NanOrInf) => return Err("ERR value is NaN or Infinity".into()),
    };
    let lim = ctx.srv.encoding.get();
    let f = args.get(2);
    let r = write_hash(ctx, args.get(1), true, |h| {
        let cur = match h.get(f) {
            None => LongDouble::from_i64(0),
            Some(v) => match LongDouble::parse(v) {
                Ok(v) => v,
                Err(LdError::Invalid) => return Err("ERR hash value is not a float".into()),
                Err(LdError::NanOrInf) => {
                    return Err("ERR increment would produce NaN or Infinity".into())
                }
            },
        };
        let sum = cur
            .checked_add(incr)
            .map_err(|_| CmdError::from("ERR increment would produce NaN or Infinity"))?;
        let s = sum.to_human();
        h.set(f, s.as_bytes(), &lim);
        Ok((s, Some("hincrbyfloat")))
    })?;
    ctx.reply().bulk(r.unwrap_or_default().as_bytes());
    Ok(())
}

fn hrandfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        let v = read_hash(ctx, args.get(1), |h| {
            h.filter(|h| !h.is_empty()).and_then(|h| {
                let i = (rand::random::<u64>() as usize) % h.len();
                h.nth(i).map(|(f, _)| f.to_vec())
            })
        })?;
        match v {
            Some(f) => ctx.reply().bulk(&f),
            None => ctx.reply().null(),
        }
        return Ok(());
    }
    let count = range_long(args.get(2))?;
    let withvalues = match args.len() {
        3 => false,
        4 if parse::eq(args.get(3), "withvalues") => true,
        _ => return Err(err::SYNTAX.into()),
    };
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err("ERR value is out of range".into());
    }
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    read_hash(ctx, args.get(1), |h| {
        let mut r = Reply::new(&mut body, resp3);
        let Some(h) = h.filter(|_| count != 0) else {
            r.array(0);
            return;
        };
        let emit = |r: &mut Reply<'_>, f: &[u8], v: &[u8]| {
            if withvalues {
                if resp3 {
                    r.array(2);
                }
                r.bulk(f);
                r.bulk(v);
            } else {
                r.bulk(f);
            }
        };
        let header = |r: &mut Reply<'_>, n: usize| {
            r.array(if withvalues && !resp3 { n * 2 } else { n });
        };
        let len = h.len();
        if count < 0 {
            let n = count.unsigned_abs() as usize;
            header(&mut r, n);
            for _ in 0..n {
                let i = (rand::random::<u64>() as usize) % len;
                if let Some((f, v)) = h.nth(i) {
                    emit(&mut r, f, v);
                }
            }
        } else if count as usize >= len {
            header(&mut r, len);
            for (f, v) in h.iter() {
                emit(&mut r, f, v);
            }
        } else {
            let idx = crate::types::dict::distinct_indices(len, count as usize, rand::random);
            header(&mut r, idx.len());
            if h.is_compact() {
                // nth is linear on a listpack: walk once.
                let pairs: Vec<_> = h.iter().collect();
                for i in idx {
                    emit(&mut r, pairs[i].0, pairs[i].1);
                }
            } else {
                for i in idx {
                    if let Some((f, v)) = h.nth(i) {
                        emit(&mut r, f, v);
                    }
                }
            }
        }
    })?;
    ctx.out.extend_from_slice(&body);
    Ok(())
}

/// A count between -LONG_MAX and LONG_MAX, with Redis's errors (getRangeLongFromObjectOrReply).
pub(crate) fn range_long(b: &[u8]) -> Result<i64, CmdError> {
    let v = parse::int(b)?;
    if v == i64::MIN {
        return Err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                .into(),
        );
    }
    Ok(v)
}

/// Parse a SCAN cursor as Redis does (strtoul: optional sign, a `-` wraps; empty is 0).
pub(crate) fn parse_cursor(b: &[u8]) -> Result<u64, CmdError> {
    let bad = || CmdError::from("ERR invalid cursor");
    if b.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(bad());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// Options of HSCAN/SSCAN/ZSCAN: (pattern, count, novalues).
pub(crate) struct ScanOpts<'a> {
    pub pattern: Option<&'a [u8]>,
    pub count: u64,
    pub novalues: bool,
}

pub(crate) fn parse_scan_opts<'a>(
    args: &Args<'a>,
    from: usize,
    allow_novalues: bool,
) -> Result<ScanOpts<'a>, CmdError> {
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        novalues: false,
    };
    let mut i = from;
    while i < args.len() {
        let a = args.get(i);
        let has_value = i + 1 < args.len();
        if parse::eq(a, "count") && has_value {
            let c = parse::int(args.get(i + 1))?;
            if c < 1 {
                return Err(err::SYNTAX.into());
            }
            o.count = c as u64;
            i += 2;
        } else if parse::eq(a, "match") && has_value {
            let p = args.get(i + 1);
            o.pattern = (!glob::is_match_all(p)).then_some(p);
            i += 2;
        } else if allow_novalues && parse::eq(a, "novalues") {
            o.novalues = true;
            i += 1;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    Ok(o)
}

/// Write a SCAN reply: the next cursor and the elements.
pub(crate) fn scan_reply(ctx: &mut Ctx<'_>, cursor: u64, n: usize, body: &[u8]) {
    let mut r = ctx.reply();
    r.array(2);
    r.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    r.array(n);
    ctx.out.extend_from_slice(body);
}

fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cursor = parse_cursor(args.get(2))?;
    let o = parse_scan_opts(&args, 3, true)?;
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    let mut n = 0usize;
    let next = read_hash(ctx, args.get(1), |h| {
        let Some(h) = h else { return 0 };
        let mut r = Reply::new(&mut body, resp3);
        let mut emit = |f: &[u8], v: &[u8]| {
            if o.pattern.is_some_and(|p| !glob::matches(p, f, false)) {
                return;
            }
            r.bulk(f);
            n += 1;
            if !o.novalues {
                r.bulk(v);
                n += 1;
            }
        };
        if h.is_compact() {
            return h.scan(0, &mut emit);
        }
        let mut c = cursor;
        let mut budget = o.count.saturating_mul(10);
        let mut visited = 0u64;
        loop {
            c = h.scan(c, |f, v| {
                visited += if o.novalues { 1 } else { 2 };
                emit(f, v);
            });
            budget -= 1;
            if c == 0 || budget == 0 || visited >= o.count {
                break;
            }
        }
        c
    })?;
    scan_reply(ctx, next, n, &body);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b"").unwrap(), 0);
        assert_eq!(parse_cursor(b"12").unwrap(), 12);
        assert_eq!(parse_cursor(b"-1").unwrap(), u64::MAX);
        assert!(parse_cursor(b"x").is_err());
        assert!(parse_cursor(b"18446744073709551616").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(range_long(b"-5").unwrap(), -5);
        assert!(range_long(b"-9223372036854775808").is_err());
        assert!(range_long(b"x").is_err());
    }
}
