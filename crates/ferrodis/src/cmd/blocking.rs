//! Blocking pops: BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! Each command first tries its non-blocking form under the shard locks of all its keys; if every key is
//! empty it registers a waiter on each key while still holding those locks (see keyspace::blocking) and the
//! connection waits. A writer serves the waiter inside its own lock through the serve function built here.

use super::argv::Argv;
use super::spec::{self, ACCESS, DELETE, INSERT, RW};
use super::{acl, err, flags::*, lists, zsets, CmdError, CmdResult, Command, Ctx};
use crate::client::Blocked;
use crate::keyspace::blocking::{Serve, Waiter, Writer};
use crate::keyspace::{shard_of, Lookup, MultiGuard, Shard};
use crate::types::strings::LongDouble;
use crate::types::Value;
use ferrodis_protocol::{num, Args, Reply};
use std::time::{Duration, Instant};

/// Pops for a blocked client inside the writer's lock: (shard, db, key that became ready, the writer's
/// command context — for the clock and the side effects of the pop; the waiter's own settings, such as its
/// protocol, are captured by the function).
pub type ServeFn = Box<dyn Fn(&mut Shard, usize, &[u8], &Ctx<'_>) -> Serve + Send + Sync>;

/// The keyspace's blocking queues see a command's context as the writer that makes keys ready.
impl Writer for Ctx<'_> {
    type ServeFn = ServeFn;

    #[inline]
    fn defer_ready(&self, db: usize, key: &[u8]) -> bool {
        if self.defer_ready {
            self.ready.borrow_mut().push((db, key.to_vec()));
        }
        self.defer_ready
    }

    fn serve(&self, f: &ServeFn, shard: &mut Shard, db: usize, key: &[u8]) -> Serve {
        f(shard, db, key, self)
    }
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "blpop",
        arity: -3,
        flags: WRITE | BLOCKING,
        acl: acl::LIST,
        keys: &[spec::index(1).range(-2, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: blpop,
        group: "list",
        since: "2.0.0",
        summary: "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        complexity: "O(N) where N is the number of provided keys.",
        syntax: "key ... timeout:double",
        history: &[
            ("6.0.0", "`timeout` is interpreted as a double instead of an integer."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "brpop",
        arity: -3,
        flags: WRITE | BLOCKING,
        acl: acl::LIST,
        keys: &[spec::index(1).range(-2, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: brpop,
        group: "list",
        since: "2.0.0",
        summary: "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        complexity: "O(N) where N is the number of provided keys.",
        syntax: "key ... timeout:double",
        history: &[
            ("6.0.0", "`timeout` is interpreted as a double instead of an integer."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "blmove",
        arity: 6,
        flags: WRITE | DENYOOM | BLOCKING,
        acl: acl::LIST,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(RW | INSERT),
        ],
        handler: blmove,
        group: "list",
        since: "6.2.0",
        summary: "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
        complexity: "O(1)",
        syntax: "source:key destination:key wherefrom:<LEFT | RIGHT> whereto:<LEFT | RIGHT> timeout:double",
        ..Command::DEFAULT
    },
    Command {
        name: "brpoplpush",
        arity: 4,
        flags: WRITE | DENYOOM | BLOCKING,
        acl: acl::LIST,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(RW | INSERT),
        ],
        handler: brpoplpush,
        group: "list",
        since: "2.2.0",
        summary: "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
        complexity: "O(1)",
        syntax: "source:key destination:key timeout:double",
        history: &[
            ("6.0.0", "`timeout` is interpreted as a double instead of an integer."),
        ],
        deprecated_since: "6.2.0",
        replaced_by: "`BLMOVE` with the `RIGHT` and `LEFT` arguments",
        ..Command::DEFAULT
    },
    Command {
        name: "blmpop",
        arity: -5,
        flags: WRITE | BLOCKING,
        acl: acl::LIST,
        keys: &[spec::index(2).keynum(0, 1, 1).flags(RW | ACCESS | DELETE)],
        handler: blmpop,
        group: "list",
        since: "7.0.0",
        summary: "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
        complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        syntax: "timeout:double numkeys:integer key ... where:<LEFT | RIGHT> [COUNT count:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "bzpopmin",
        arity: -3,
        flags: WRITE | BLOCKING | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(-2, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: bzpopmin,
        group: "sorted-set",
        since: "5.0.0",
        summary: "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        syntax: "key ... timeout:double",
        history: &[
            ("6.0.0", "`timeout` is interpreted as a double instead of an integer."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "bzpopmax",
        arity: -3,
        flags: WRITE | BLOCKING | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(-2, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: bzpopmax,
        group: "sorted-set",
        since: "5.0.0",
        summary: "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        syntax: "key ... timeout:double",
        history: &[
            ("6.0.0", "`timeout` is interpreted as a double instead of an integer."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "bzmpop",
        arity: -5,
        flags: WRITE | BLOCKING,
        acl: acl::SORTEDSET,
        keys: &[spec::index(2).keynum(0, 1, 1).flags(RW | ACCESS | DELETE)],
        handler: bzmpop,
        group: "sorted-set",
        since: "7.0.0",
        summary: "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
        complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        syntax: "timeout:double numkeys:integer key ... where:<MIN | MAX> [COUNT count:integer]",
        ..Command::DEFAULT
    },
];

/// The non-blocking form a served blocking pop propagates as (AOF): `[name, key, extra...]`.
fn pop_argv(name: &str, key: &[u8], extra: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut v = vec![name.as_bytes().to_vec(), key.to_vec()];
    v.extend(extra.iter().map(|a| a.to_vec()));
    v
}

fn side_name(left: bool) -> &'static [u8] {
    if left {
        b"LEFT"
    } else {
        b"RIGHT"
    }
}

/// Encode a reply for a waiter in its own protocol.
fn encode(resp3: bool, f: impl FnOnce(&mut Reply<'_>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut Reply::new(&mut v, resp3));
    v
}

fn null_array(resp3: bool) -> Vec<u8> {
    encode(resp3, |r| r.null_array())
}

fn blpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop_list(ctx, args, true)
}

fn brpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bpop_list(ctx, args, false)
}

/// Reads `key ... timeout` (BLPOP, BRPOP, BZPOPMIN, BZPOPMAX): the keys and the timeout.
fn keys_then_timeout<'a>(a: &mut Argv<'a>) -> Result<(Vec<&'a [u8]>, Option<Duration>), CmdError> {
    let keys = a.take(a.remaining().saturating_sub(1))?;
    let timeout = parse_timeout(a.next()?)?;
    Ok((keys.iter().collect(), timeout))
}

/// BLPOP / BRPOP: [key, element] from the first non-empty list.
fn bpop_list(ctx: &mut Ctx<'_>, args: Args<'_>, left: bool) -> CmdResult {
    let (keys, timeout) = keys_then_timeout(&mut Argv::new(args))?;
    let db = ctx.db();
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(keys.iter().copied());
    for &k in &keys {
        if let Some(items) = lists::pop_from(ctx, guard.shard(k), db, k, left, 1)? {
            ctx.propagate_as(vec![pop_argv(if left { "LPOP" } else { "RPOP" }, k, &[])]);
            let mut r = ctx.reply();
            r.array(2);
            r.bulk(k);
            r.bulk(&items[0]);
            return Ok(());
        }
    }
    let resp3 = ctx.client.resp3;
    let serve: ServeFn =
        Box::new(
            move |shard, db, key, w| match lists::pop_from(w, shard, db, key, left, 1) {
                Ok(Some(items)) if !items.is_empty() => {
                    w.propagate_after(pop_argv(if left { "LPOP" } else { "RPOP" }, key, &[]));
                    Serve::Served(encode(resp3, |r| {
                        r.array(2);
                        r.bulk(key);
                        r.bulk(&items[0]);
                    }))
                }
                _ => Serve::NotReady,
            },
        );
    block(
        ctx,
        &mut guard,
        args,
        &keys,
        timeout,
        null_array(resp3),
        serve,
    );
    Ok(())
}

fn blmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst) = (a.next()?, a.next()?);
    let from_left = lists::parse_side(&mut a)?;
    let to_left = lists::parse_side(&mut a)?;
    let timeout = parse_timeout(a.next()?)?;
    bmove(ctx, args, src, dst, from_left, to_left, timeout)
}

fn brpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst) = (a.next()?, a.next()?);
    let timeout = parse_timeout(a.next()?)?;
    bmove(ctx, args, src, dst, false, true, timeout)
}

/// BLMOVE / BRPOPLPUSH with their arguments read (`args` is the request, kept for the blocked client).
fn bmove(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    timeout: Option<Duration>,
) -> CmdResult {
    let db = ctx.db();
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many([src, dst]);
    if let Some(v) = lists::move_locked(ctx, &mut guard, db, src, dst, from_left, to_left)? {
        ctx.propagate_as(vec![pop_argv(
            "LMOVE",
            src,
            &[dst, side_name(from_left), side_name(to_left)],
        )]);
        ctx.reply().bulk(&v);
        return Ok(());
    }
    if ctx.client.in_exec {
        // Redis answers a BLMOVE that may not block (MULTI, scripts) with a null bulk string, but a
        // timed-out one with a null array, as the other blocking list pops.
        drop(guard);
        ctx.reply().null();
        return Ok(());
    }
    let resp3 = ctx.client.resp3;
    let (dst_owned, same_shard) = (dst.to_vec(), shard_of(src) == shard_of(dst));
    let serve: ServeFn = Box::new(move |shard, db, key, w| {
        if !same_shard {
            // The destination is behind another lock: let the client re-run BLMOVE itself.
            return Serve::Retry;
        }
        if shard.get(db, &dst_owned, w.now_ms).is_some_and(|e| {
            !matches!(
                e.value(),
                crate::keyspace::entry::ValueRef::Other(Value::List(_))
            )
        }) {
            return Serve::Served(encode(resp3, |r| r.error(err::WRONGTYPE)));
        }
        let Ok(Some(mut items)) = lists::pop_from(w, shard, db, key, from_left, 1) else {
            return Serve::NotReady;
        };
        let Some(v) = items.pop() else {
            return Serve::NotReady;
        };
        match lists::push_to(w, shard, db, &dst_owned, [&v[..]], to_left, true) {
            Ok(_) => {
                w.propagate_after(pop_argv(
                    "LMOVE",
                    key,
                    &[&dst_owned, side_name(from_left), side_name(to_left)],
                ));
                Serve::Served(encode(resp3, |r| r.bulk(&v)))
            }
            Err(e) => Serve::Served(encode(resp3, |r| r.error(e.msg()))),
        }
    });
    block(
        ctx,
        &mut guard,
        args,
        &[src],
        timeout,
        null_array(resp3),
        serve,
    );
    Ok(())
}

fn blmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let timeout = a.next()?;
    let m = lists::parse_mpop(&mut a, "left", "right")?;
    // Redis checks the timeout after the other arguments.
    let timeout = parse_timeout(timeout)?;
    let db = ctx.db();
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(m.keys.iter().copied());
    if let Some((i, items)) = lists::mpop_locked(ctx, &mut guard, db, &m.keys, m.first, m.count)? {
        let n = items.len().to_string();
        ctx.propagate_as(vec![pop_argv(
            if m.first { "LPOP" } else { "RPOP" },
            m.keys[i],
            &[n.as_bytes()],
        )]);
        reply_key_items(&mut ctx.reply(), m.keys[i], &items);
        return Ok(());
    }
    let resp3 = ctx.client.resp3;
    let (left, count) = (m.first, m.count);
    let serve: ServeFn =
        Box::new(
            move |shard, db, key, w| match lists::pop_from(w, shard, db, key, left, count) {
                Ok(Some(items)) if !items.is_empty() => {
                    let n = items.len().to_string();
                    w.propagate_after(pop_argv(
                        if left { "LPOP" } else { "RPOP" },
                        key,
                        &[n.as_bytes()],
                    ));
                    Serve::Served(encode(resp3, |r| reply_key_items(r, key, &items)))
                }
                _ => Serve::NotReady,
            },
        );
    block(
        ctx,
        &mut guard,
        args,
        &m.keys,
        timeout,
        null_array(resp3),
        serve,
    );
    Ok(())
}

fn reply_key_items(r: &mut Reply<'_>, key: &[u8], items: &[Vec<u8>]) {
    r.array(2);
    r.bulk(key);
    r.array(items.len());
    for v in items {
        r.bulk(v);
    }
}

/// Pop from the sorted set at `key` in database `db` of a locked shard (for the serve functions, which run
/// under another client's context and so cannot rely on its selected database).
fn zpop_in(
    w: &Ctx<'_>,
    shard: &mut Shard,
    db: usize,
    key: &[u8],
    max: bool,
    count: usize,
) -> Option<zsets::Elems> {
    let Lookup::Found(e) = shard.lookup_mut(db, key, w.now_ms) else {
        return None;
    };
    let Some(Value::ZSet(z)) = e.value_mut() else {
        return None;
    };
    let popped = z.pop(max, count);
    let empty = z.is_empty();
    if popped.is_empty() {
        return None;
    }
    w.modified_in(shard, db, key, if max { "zpopmax" } else { "zpopmin" });
    if empty {
        shard.db_mut(db).remove(key);
        w.modified_in(shard, db, key, "del");
    }
    Some(popped)
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bzpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bzpop(ctx, args, true)
}

fn reply_key_member_score(r: &mut Reply<'_>, key: &[u8], elems: &[(Vec<u8>, f64)]) {
    let (m, s) = &elems[0];
    r.array(3);
    r.bulk(key);
    r.bulk(m);
    r.double(*s);
}

/// BZPOPMIN / BZPOPMAX: [key, member, score] from the first non-empty sorted set.
fn bzpop(ctx: &mut Ctx<'_>, args: Args<'_>, max: bool) -> CmdResult {
    let (keys, timeout) = keys_then_timeout(&mut Argv::new(args))?;
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(keys.iter().copied());
    for &k in &keys {
        if let Some(popped) = zsets::pop_locked(ctx, guard.shard(k), k, max, 1)? {
            if !popped.is_empty() {
                ctx.propagate_as(vec![pop_argv(
                    if max { "ZPOPMAX" } else { "ZPOPMIN" },
                    k,
                    &[],
                )]);
                reply_key_member_score(&mut ctx.reply(), k, &popped);
                return Ok(());
            }
        }
    }
    let resp3 = ctx.client.resp3;
    let serve: ServeFn =
        Box::new(
            move |shard, db, key, w| match zpop_in(w, shard, db, key, max, 1) {
                Some(p) => {
                    w.propagate_after(pop_argv(if max { "ZPOPMAX" } else { "ZPOPMIN" }, key, &[]));
                    Serve::Served(encode(resp3, |r| reply_key_member_score(r, key, &p)))
                }
                None => Serve::NotReady,
            },
        );
    block(
        ctx,
        &mut guard,
        args,
        &keys,
        timeout,
        null_array(resp3),
        serve,
    );
    Ok(())
}

fn bzmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let timeout = a.next()?;
    // The same parser as LMPOP's, with MAX / MIN for LEFT / RIGHT.
    let m = lists::parse_mpop(&mut a, "max", "min")?;
    // Redis checks the timeout after the other arguments.
    let timeout = parse_timeout(timeout)?;
    let (keys, max, count) = (m.keys, m.first, m.count);
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(keys.iter().copied());
    for &k in &keys {
        if let Some(popped) = zsets::pop_locked(ctx, guard.shard(k), k, max, count)? {
            if !popped.is_empty() {
                let n = popped.len().to_string();
                ctx.propagate_as(vec![pop_argv(
                    if max { "ZPOPMAX" } else { "ZPOPMIN" },
                    k,
                    &[n.as_bytes()],
                )]);
                zsets::reply_mpop(&mut ctx.reply(), k, &popped);
                return Ok(());
            }
        }
    }
    let resp3 = ctx.client.resp3;
    let serve: ServeFn =
        Box::new(
            move |shard, db, key, w| match zpop_in(w, shard, db, key, max, count) {
                Some(p) => {
                    let n = p.len().to_string();
                    w.propagate_after(pop_argv(
                        if max { "ZPOPMAX" } else { "ZPOPMIN" },
                        key,
                        &[n.as_bytes()],
                    ));
                    Serve::Served(encode(resp3, |r| zsets::reply_mpop(r, key, &p)))
                }
                None => Serve::NotReady,
            },
        );
    block(
        ctx,
        &mut guard,
        args,
        &keys,
        timeout,
        null_array(resp3),
        serve,
    );
    Ok(())
}

/// Redis's blocking timeout: seconds as a float, 0 = forever; negative and non-numbers are errors.
pub fn parse_timeout(b: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs = match num::parse_f64(b) {
        Some(s) => s,
        None => {
            beyond_double(b).ok_or(CmdError::from("ERR timeout is not a float or out of range"))?
        }
    };
    // As Redis: to milliseconds, rounded up, then range and sign checks.
    let ms = (secs * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err("ERR timeout is out of range".into());
    }
    if ms < 0.0 {
        return Err("ERR timeout is negative".into());
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// A timeout Redis reads (as a `long double`) but a double does not: hexadecimal, or beyond a double's range
/// (1e400 is out of range, -1e400 negative, 1e-400 one millisecond), as a double that gives the same result.
fn beyond_double(b: &[u8]) -> Option<f64> {
    let ld = LongDouble::parse(b).ok()?;
    // Exact for hexadecimal values a double holds; ±infinity past a double's largest.
    let v: f64 = ld.to_human().parse().ok()?;
    if v == 0.0 && !ld.is_zero() {
        // Below a double's smallest: rounds up to 1 ms, or (negative) to 0, no timeout.
        return Some(if b.first() == Some(&b'-') {
            -f64::MIN_POSITIVE
        } else {
            f64::MIN_POSITIVE
        });
    }
    Some(v)
}

/// Block the client on `keys` (whose shards `guard` holds): register one waiter in each key's queue and
/// tell the connection to wait. `timeout_reply` is sent if nothing arrives in time.
pub fn block(
    ctx: &mut Ctx<'_>,
    guard: &mut MultiGuard<'_>,
    args: Args<'_>,
    keys: &[&[u8]],
    timeout: Option<Duration>,
    timeout_reply: Vec<u8>,
    serve: ServeFn,
) {
    if ctx.client.in_exec {
        // Inside a transaction a blocking command acts as its non-blocking form: it times out at once.
        ctx.out.extend_from_slice(&timeout_reply);
        return;
    }
    let db = ctx.client.db;
    let mut owned: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    owned.dedup();
    let waiter = Waiter::new::<ServeFn>(ctx.client.id, db, owned.clone(), serve);
    for k in &owned {
        guard.shard(k).add_waiter(db, k, waiter.clone());
    }
    ctx.client.blocked = Some(Blocked {
        waiter,
        deadline: timeout.map(|t| Instant::now() + t),
        timeout_reply,
        argv: args.iter().map(|a| a.to_vec()).collect(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(
            parse_timeout(b"0.1").unwrap(),
            Some(Duration::from_millis(100))
        );
        assert_eq!(parse_timeout(b"2").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_timeout(b"-1").unwrap_err().msg(),
            "ERR timeout is negative"
        );
        assert_eq!(
            parse_timeout(b"abc").unwrap_err().msg(),
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(
            parse_timeout(b"inf").unwrap_err().msg(),
            "ERR timeout is out of range"
        );
        assert_eq!(parse_timeout(b"-0.0001").unwrap(), None);
        // Redis reads a long double: past a double's range, and hexadecimal.
        assert_eq!(
            parse_timeout(b"1e400").unwrap_err().msg(),
            "ERR timeout is out of range"
        );
        assert_eq!(
            parse_timeout(b"-1e400").unwrap_err().msg(),
            "ERR timeout is negative"
        );
        assert_eq!(
            parse_timeout(b"1e-400").unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(parse_timeout(b"-1e-400").unwrap(), None);
        assert_eq!(
            parse_timeout(b"0x10").unwrap(),
            Some(Duration::from_secs(16))
        );
        assert_eq!(
            parse_timeout(b"-0x10").unwrap_err().msg(),
            "ERR timeout is negative"
        );
        for bad in [&b"1e5000"[..], b"-1e5000", b"1e-5000", b" 1", b"", b"nan"] {
            assert_eq!(
                parse_timeout(bad).unwrap_err().msg(),
                "ERR timeout is not a float or out of range"
            );
        }
    }
}
