//! Set commands: SADD SREM SISMEMBER SMISMEMBER SMEMBERS SCARD SPOP SRANDMEMBER SMOVE SINTER SINTERCARD
//! SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.

use super::argv::{Argv, ScanKind, ScanOpts};
use super::hashes::{range_long, scan_reply};
use super::spec::{self, ACCESS, DELETE, INSERT, OW, RO, RW, UPDATE};
use super::{acl, err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::glob;
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::{shard_of, Shard};
use crate::types::set::{Elem, Set};
use crate::types::Value;
use ferrodis_protocol::{Args, Reply};

pub static COMMANDS: &[Command] = &[
    Command {
        name: "sadd",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: sadd,
        group: "set",
        since: "1.0.0",
        summary: "Adds one or more members to a set. Creates the key if it doesn't exist.",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        syntax: "key member ...",
        history: &[
            ("2.4.0", "Accepts multiple `member` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "srem",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: srem,
        group: "set",
        since: "1.0.0",
        summary: "Removes one or more members from a set. Deletes the set if the last member was removed.",
        complexity: "O(N) where N is the number of members to be removed.",
        syntax: "key member ...",
        history: &[
            ("2.4.0", "Accepts multiple `member` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "sismember",
        arity: 3,
        flags: READONLY | FAST,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: sismember,
        group: "set",
        since: "1.0.0",
        summary: "Determines whether a member belongs to a set.",
        complexity: "O(1)",
        syntax: "key member",
        ..Command::DEFAULT
    },
    Command {
        name: "smismember",
        arity: -3,
        flags: READONLY | FAST,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: smismember,
        group: "set",
        since: "6.2.0",
        summary: "Determines whether multiple members belong to a set.",
        complexity: "O(N) where N is the number of elements being checked for membership",
        syntax: "key member ...",
        ..Command::DEFAULT
    },
    Command {
        name: "smembers",
        arity: 2,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: smembers,
        group: "set",
        since: "1.0.0",
        summary: "Returns all members of a set.",
        complexity: "O(N) where N is the set cardinality.",
        syntax: "key",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "scard",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: scard,
        group: "set",
        since: "1.0.0",
        summary: "Returns the number of members in a set.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "spop",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: spop,
        group: "set",
        since: "1.0.0",
        summary: "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
        complexity: "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.",
        syntax: "key [count:integer@3.2.0]",
        history: &[
            ("3.2.0", "Added the `count` argument."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "srandmember",
        arity: -2,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: srandmember,
        group: "set",
        since: "1.0.0",
        summary: "Get one or multiple random members from a set",
        complexity: "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.",
        syntax: "key [count:integer@2.6.0]",
        history: &[
            ("2.6.0", "Added the optional `count` argument."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "smove",
        arity: 4,
        flags: WRITE | FAST,
        acl: acl::SET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(RW | INSERT),
        ],
        handler: smove,
        group: "set",
        since: "1.0.0",
        summary: "Moves a member from one set to another.",
        complexity: "O(1)",
        syntax: "source:key destination:key member",
        ..Command::DEFAULT
    },
    Command {
        name: "sinter",
        arity: -2,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO | ACCESS)],
        handler: sinter,
        group: "set",
        since: "1.0.0",
        summary: "Returns the intersect of multiple sets.",
        complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        syntax: "key ...",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "sintercard",
        arity: -3,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RO | ACCESS)],
        handler: sintercard,
        group: "set",
        since: "7.0.0",
        summary: "Returns the number of members of the intersect of multiple sets.",
        complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        syntax: "numkeys:integer key ... [LIMIT limit:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "sinterstore",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::SET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | UPDATE),
            spec::index(2).range(-1, 1, 0).flags(RO | ACCESS),
        ],
        handler: sinterstore,
        group: "set",
        since: "1.0.0",
        summary: "Stores the intersect of multiple sets in a key.",
        complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
        syntax: "destination:key key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "sunion",
        arity: -2,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO | ACCESS)],
        handler: sunion,
        group: "set",
        since: "1.0.0",
        summary: "Returns the union of multiple sets.",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        syntax: "key ...",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "sunionstore",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::SET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).range(-1, 1, 0).flags(RO | ACCESS),
        ],
        handler: sunionstore,
        group: "set",
        since: "1.0.0",
        summary: "Stores the union of multiple sets in a key.",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        syntax: "destination:key key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "sdiff",
        arity: -2,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO | ACCESS)],
        handler: sdiff,
        group: "set",
        since: "1.0.0",
        summary: "Returns the difference of multiple sets.",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        syntax: "key ...",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "sdiffstore",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::SET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).range(-1, 1, 0).flags(RO | ACCESS),
        ],
        handler: sdiffstore,
        group: "set",
        since: "1.0.0",
        summary: "Stores the difference of multiple sets in a key.",
        complexity: "O(N) where N is the total number of elements in all given sets.",
        syntax: "destination:key key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "sscan",
        arity: -3,
        flags: READONLY,
        acl: acl::SET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: sscan,
        group: "set",
        since: "2.8.0",
        summary: "Iterates over members of a set.",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        syntax: "key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
];

// ---------------------------------------------------------------------------------------------------------
// Access helpers

fn as_set(e: &Entry) -> Result<&Set, CmdError> {
    match e.value() {
        ValueRef::Other(Value::Set(s)) => Ok(s),
        _ => Err(err::WRONGTYPE.into()),
    }
}

fn as_set_mut(e: &mut Entry) -> Result<&mut Set, CmdError> {
    match e.value_mut() {
        Some(Value::Set(s)) => Ok(s),
        _ => Err(err::WRONGTYPE.into()),
    }
}

fn read_set<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(Option<&Set>) -> R,
) -> Result<R, CmdError> {
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let r = match ctx.lookup(&mut shard, key) {
        None => f(None),
        Some(e) => f(Some(as_set(e)?)),
    };
    Ok(r)
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

fn emit(r: &mut Reply<'_>, e: Elem<'_>) {
    match e {
        Elem::Int(v) => r.bulk_int(v),
        Elem::Bytes(b) => r.bulk(b),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Single-key commands

fn sadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let first = a.peek().ok_or(CmdError::from(err::SYNTAX))?;
    let members = a.rest();
    let lim = ctx.srv.encoding.get();
    let hint = members.len();
    let srv = ctx.srv;
    let db = ctx.db();
    let lru = ctx.lru_clock();
    let mut shard = srv.keyspace.lock_key(key);
    let mut added = 0;
    match ctx.lookup_write(&mut shard, key) {
        Some(e) => {
            let s = as_set_mut(e)?;
            s.maybe_convert(hint, &lim);
            for m in members.iter() {
                added += i64::from(s.add(m, &lim));
            }
        }
        None => {
            let mut s = Set::create(first, hint, &lim);
            for m in members.iter() {
                added += i64::from(s.add(m, &lim));
            }
            shard
                .db_mut(db)
                .insert_new(Entry::new(key, Value::Set(Box::new(s)), lru));
        }
    }
    if added > 0 {
        ctx.modified(&mut shard, key, "sadd");
    }
    drop(shard);
    ctx.reply().int(added);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let members = a.rest();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let mut removed = 0;
    let mut empty = false;
    if let Some(e) = ctx.lookup_write(&mut shard, key) {
        let s = as_set_mut(e)?;
        for m in members.iter() {
            if s.remove(m) {
                removed += 1;
                if s.is_empty() {
                    empty = true;
                    break;
                }
            }
        }
    }
    finish_write(ctx, &mut shard, key, (removed > 0).then_some("srem"), empty);
    drop(shard);
    ctx.reply().int(removed);
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, m) = (a.next()?, a.next()?);
    let b = read_set(ctx, key, |s| s.is_some_and(|s| s.contains(m)))?;
    ctx.reply().int(i64::from(b));
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let ms = a.rest();
    let v: Vec<bool> = read_set(ctx, key, |s| {
        ms.iter()
            .map(|m| s.is_some_and(|s| s.contains(m)))
            .collect()
    })?;
    let mut r = ctx.reply();
    r.array(v.len());
    for b in v {
        r.int(i64::from(b));
    }
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    read_set(ctx, key, |s| {
        let mut r = Reply::new(&mut body, resp3);
        r.set(s.map_or(0, Set::len));
        if let Some(s) = s {
            for e in s.iter() {
                emit(&mut r, e);
            }
        }
    })?;
    ctx.out.extend_from_slice(&body);
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let n = read_set(ctx, key, |s| s.map_or(0, Set::len))?;
    ctx.reply().int(n as i64);
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let count = match opt_count(&mut a)? {
        None => None,
        Some(c) => match parse::int(c) {
            Ok(v) if v >= 0 => Some(v as usize),
            _ => return Err("ERR value is out of range, must be positive".into()),
        },
    };
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let mut popped: Vec<Vec<u8>> = Vec::new();
    let mut empty = false;
    if let Some(e) = ctx.lookup_write(&mut shard, key) {
        let s = as_set_mut(e)?;
        let n = count.unwrap_or(1).min(s.len());
        for _ in 0..n {
            let i = (rand::random::<u64>() as usize) % s.len();
            popped.push(s.remove_nth(i));
        }
        empty = s.is_empty();
    }
    finish_write(
        ctx,
        &mut shard,
        key,
        (!popped.is_empty()).then_some("spop"),
        empty,
    );
    // Random picks propagate as what was picked: SREM, or DEL when a counted pop emptied the set.
    if !popped.is_empty() {
        ctx.propagate_as(vec![if empty && count.is_some() {
            vec![b"DEL".to_vec(), key.to_vec()]
        } else {
            let mut v = vec![b"SREM".to_vec(), key.to_vec()];
            v.extend(popped.iter().cloned());
            v
        }]);
    }
    drop(shard);
    let mut r = ctx.reply();
    match count {
        None => match popped.first() {
            Some(m) => r.bulk(m),
            None => r.null(),
        },
        Some(_) => {
            r.set(popped.len());
            for m in &popped {
                r.bulk(m);
            }
        }
    }
    Ok(())
}

/// The optional last `count` argument of SPOP and SRANDMEMBER: `ERR syntax error` when more than one argument
/// is left (before the count is looked at, as Redis does).
fn opt_count<'a>(a: &mut Argv<'a>) -> Result<Option<&'a [u8]>, CmdError> {
    if a.remaining() > 1 {
        return Err(err::SYNTAX.into());
    }
    Ok(a.opt())
}

fn srandmember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let count = match opt_count(&mut a)? {
        None => None,
        Some(c) => Some(range_long(c)?),
    };
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    read_set(ctx, key, |s| {
        let mut r = Reply::new(&mut body, resp3);
        let Some(count) = count else {
            match s.filter(|s| !s.is_empty()) {
                Some(s) => {
                    let i = (rand::random::<u64>() as usize) % s.len();
                    emit(&mut r, s.nth(i).expect("in range"));
                }
                None => r.null(),
            }
            return;
        };
        let Some(s) = s.filter(|s| !s.is_empty() && count != 0) else {
            r.array(0);
            return;
        };
        let len = s.len();
        let compact_list: Option<Vec<Elem<'_>>> = s.is_compact().then(|| s.iter().collect());
        let pick = |i: usize| match &compact_list {
            Some(v) => v[i],
            None => s.nth(i).expect("in range"),
        };
        if count < 0 {
            let n = count.unsigned_abs() as usize;
            r.array(n);
            for _ in 0..n {
                emit(&mut r, pick((rand::random::<u64>() as usize) % len));
            }
        } else if count as usize >= len {
            r.array(len);
            for e in s.iter() {
                emit(&mut r, e);
            }
        } else {
            let idx = crate::types::dict::distinct_indices(len, count as usize, rand::random);
            r.array(idx.len());
            for i in idx {
                emit(&mut r, pick(i));
            }
        }
    })?;
    ctx.out.extend_from_slice(&body);
    Ok(())
}

fn sscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let cursor = super::parse::cursor(a.next()?)?;
    // Redis reads the options only once the key is found and of the right type.
    let opts = ScanOpts::parse(&mut a, ScanKind::Plain);
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    let mut n = 0usize;
    let next = read_set(ctx, key, |s| {
        let Some(s) = s else {
            return Ok::<u64, CmdError>(0);
        };
        let o = opts?;
        let mut r = Reply::new(&mut body, resp3);
        let mut visited = 0u64;
        let mut f = |e: Elem<'_>| {
            visited += 1;
            if let Some(p) = o.pattern {
                if !e.with_bytes(|b| glob::matches(p, b, false)) {
                    return;
                }
            }
            emit(&mut r, e);
            n += 1;
        };
        if s.is_compact() {
            return Ok(s.scan(0, &mut f));
        }
        let mut c = cursor;
        let mut budget = o.count.saturating_mul(10);
        let mut seen = 0u64;
        loop {
            c = s.scan(c, |e| {
                seen += 1;
                f(e)
            });
            budget -= 1;
            if c == 0 || budget == 0 || seen >= o.count {
                break;
            }
        }
        Ok(c)
    })??;
    scan_reply(ctx, next, n, &body);
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst, m) = (a.next()?, a.next()?, a.next()?);
    let lim = ctx.srv.encoding.get();
    let (srv, db, lru) = (ctx.srv, ctx.db(), ctx.lru_clock());
    let mut g = srv.keyspace.lock_many([src, dst]);
    // Type checks first (source, then destination), as Redis does.
    let src_exists = match ctx.lookup_write(g.shard(src), src) {
        None => false,
        Some(e) => {
            as_set(e)?;
            true
        }
    };
    if let Some(e) = ctx.lookup_write(g.shard(dst), dst) {
        as_set(e)?;
    }
    if !src_exists {
        drop(g);
        ctx.reply().int(0);
        return Ok(());
    }
    if src == dst {
        let is = g
            .shard(src)
            .get(db, src, ctx.now_ms)
            .and_then(|e| as_set(e).ok())
            .is_some_and(|s| s.contains(m));
        drop(g);
        ctx.reply().int(i64::from(is));
        return Ok(());
    }
    let (removed, empty) = {
        let shard = g.shard(src);
        match shard.db_mut(db).find_mut(src).map(as_set_mut) {
            Some(Ok(s)) => {
                let r = s.remove(m);
                (r, s.is_empty())
            }
            _ => (false, false),
        }
    };
    if !removed {
        drop(g);
        ctx.reply().int(0);
        return Ok(());
    }
    finish_write(ctx, g.shard(src), src, Some("srem"), empty);
    let shard = g.shard(dst);
    let added = match shard.db_mut(db).find_mut(dst) {
        Some(e) => as_set_mut(e)?.add(m, &lim),
        None => {
            let mut s = Set::create(m, 1, &lim);
            s.add(m, &lim);
            shard
                .db_mut(db)
                .insert_new(Entry::new(dst, Value::Set(Box::new(s)), lru));
            true
        }
    };
    if added {
        ctx.modified(shard, dst, "sadd");
    }
    drop(g);
    ctx.reply().int(1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Multi-key algebra

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// What an algebra command computes: the result members in reply order, or "empty because a key is
/// missing" for SINTER.
fn compute(
    ctx: &mut Ctx<'_>,
    shards: &[&Shard],
    idx: &[usize],
    keys: &[&[u8]],
    op: Op,
    limit: usize,
) -> Result<Vec<Vec<u8>>, CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let find = |k: &[u8]| -> &Shard {
        let i = idx.binary_search(&shard_of(k)).expect("locked");
        shards[i]
    };
    let mut sets: Vec<Option<&Set>> = Vec::with_capacity(keys.len());
    for k in keys {
        match find(k).get(db, k, now) {
            None => sets.push(None),
            Some(e) => sets.push(Some(as_set(e)?)),
        }
    }
    if op == Op::Inter && sets.iter().any(Option::is_none) {
        return Ok(Vec::new());
    }
    let lim = ctx.srv.encoding.get();
    let out = match op {
        Op::Inter => {
            let mut ss: Vec<&Set> = sets.into_iter().flatten().collect();
            ss.sort_by_key(|s| s.len());
            let mut out = Vec::new();
            for e in ss[0].iter() {
                let b = e.to_vec();
                if ss[1..].iter().all(|s| s.contains(&b)) {
                    out.push(b);
                    if limit != 0 && out.len() >= limit {
                        break;
                    }
                }
            }
            out
        }
        Op::Union => {
            let mut acc = Set::new_intset();
            for s in sets.iter().flatten() {
                for e in s.iter() {
                    e.with_bytes(|b| acc.add(b, &lim));
                }
            }
            acc.iter().map(|e| e.to_vec()).collect()
        }
        Op::Diff => {
            let mut acc = Set::new_intset();
            if let Some(Some(first)) = sets.first() {
                for e in first.iter() {
                    let b = e.to_vec();
                    if !sets[1..].iter().flatten().any(|s| s.contains(&b)) {
                        acc.add(&b, &lim);
                    }
                }
            }
            acc.iter().map(|e| e.to_vec()).collect()
        }
    };
    Ok(out)
}

fn shard_indices(keys: &[&[u8]]) -> Vec<usize> {
    let mut idx: Vec<usize> = keys.iter().map(|k| shard_of(k)).collect();
    idx.sort_unstable();
    idx.dedup();
    idx
}

/// Run `compute` with every key's shard locked (the lookups go through `ctx.lookup` first for lazy expiry
/// and statistics).
fn algebra(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    op: Op,
    limit: usize,
) -> Result<Vec<Vec<u8>>, CmdError> {
    let srv = ctx.srv;
    let mut g = srv.keyspace.lock_many(keys.iter().copied());
    for k in keys {
        ctx.lookup(g.shard(k), k);
    }
    let idx = shard_indices(keys);
    let shards: Vec<&Shard> = g.shards().map(|s| &*s).collect();
    compute(ctx, &shards, &idx, keys, op, limit)
}

fn reply_members(ctx: &mut Ctx<'_>, v: &[Vec<u8>]) {
    let mut r = ctx.reply();
    r.set(v.len());
    for m in v {
        r.bulk(m);
    }
}

fn read_op(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) -> CmdResult {
    let keys: Vec<&[u8]> = Argv::new(args).rest().iter().collect();
    let v = algebra(ctx, &keys, op, 0)?;
    reply_members(ctx, &v);
    Ok(())
}

fn sinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_op(ctx, args, Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_op(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_op(ctx, args, Op::Diff)
}

fn sintercard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let numkeys = match parse::int(a.next()?) {
        Ok(v) if v > 0 => v as usize,
        _ => return Err("ERR numkeys should be greater than 0".into()),
    };
    if numkeys > a.remaining() {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let keys: Vec<&[u8]> = a.take(numkeys)?.iter().collect();
    // LIMIT may repeat: the last one wins.
    let mut limit = 0usize;
    while let Some(word) = a.opt() {
        if parse::eq(word, "limit") && !a.is_done() {
            limit = a.uint_or("ERR LIMIT can't be negative")?;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let v = algebra(ctx, &keys, Op::Inter, limit)?;
    ctx.reply().int(v.len() as i64);
    Ok(())
}

fn store_op(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op, event: &'static str) -> CmdResult {
    let mut a = Argv::new(args);
    let all: Vec<&[u8]> = a.rest().iter().collect();
    let Some((&dst, keys)) = all.split_first() else {
        return Err(err::SYNTAX.into());
    };
    let lim = ctx.srv.encoding.get();
    let (srv, db, lru) = (ctx.srv, ctx.db(), ctx.lru_clock());
    let mut g = srv.keyspace.lock_many(all.iter().copied());
    for k in keys {
        ctx.lookup(g.shard(k), k);
    }
    let v = {
        let idx = shard_indices(&all);
        let shards: Vec<&Shard> = g.shards().map(|s| &*s).collect();
        compute(ctx, &shards, &idx, keys, op, 0)?
    };
    let n = v.len();
    let shard = g.shard(dst);
    let existed = ctx.lookup_write(shard, dst).is_some();
    if v.is_empty() {
        if existed {
            shard.db_mut(db).remove(dst);
            ctx.modified(shard, dst, "del");
        }
    } else {
        let s = Set::from_members(v.iter().map(|m| &m[..]), &lim);
        shard
            .db_mut(db)
            .upsert(Entry::new(dst, Value::Set(Box::new(s)), lru));
        ctx.modified(shard, dst, event);
    }
    drop(g);
    ctx.reply().int(n as i64);
    Ok(())
}

fn sinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    store_op(ctx, args, Op::Inter, "sinterstore")
}

fn sunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    store_op(ctx, args, Op::Union, "sunionstore")
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    store_op(ctx, args, Op::Diff, "sdiffstore")
}
