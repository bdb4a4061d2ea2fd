//! Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS HGETALL HINCRBY
//! HINCRBYFLOAT HRANDFIELD HSCAN, and Redis 7.4's hash field expiry: HEXPIRE HPEXPIRE HEXPIREAT HPEXPIREAT
//! HTTL HPTTL HEXPIRETIME HPEXPIRETIME HPERSIST.
//!
//! Field expiry: every access to a hash goes through [`read_hash`] / [`write_hash`], which first reclaim the
//! hash's due fields (expiry time `<= now`), emitting `hexpired` (and `del` when the hash empties), so no
//! command ever sees an expired field. Fields nobody touches are reclaimed by the server's active expiry
//! cycle through [`Hash::expire_fields`].

use super::argv::{Argv, ScanKind, ScanOpts};
use super::spec::{self, ACCESS, DELETE, INSERT, RO, RW, UPDATE};
use super::{acl, err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::glob;
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::Shard;
use crate::types::hash::{ExpireCond, Hash};
use crate::types::strings::{LdError, LongDouble};
use crate::types::Value;
use ferrodis_protocol::{Args, Reply};

pub static COMMANDS: &[Command] = &[
    Command {
        name: "hset",
        arity: -4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hset,
        group: "hash",
        since: "2.0.0",
        summary: "Creates or modifies the value of a field in a hash.",
        complexity: "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.",
        syntax: "key data:<field value> ...",
        history: &[
            ("4.0.0", "Accepts multiple `field` and `value` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "hsetnx",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: hsetnx,
        group: "hash",
        since: "2.0.0",
        summary: "Sets the value of a field in a hash only when the field doesn't exist.",
        complexity: "O(1)",
        syntax: "key field value",
        ..Command::DEFAULT
    },
    Command {
        name: "hget",
        arity: 3,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hget,
        group: "hash",
        since: "2.0.0",
        summary: "Returns the value of a field in a hash.",
        complexity: "O(1)",
        syntax: "key field",
        ..Command::DEFAULT
    },
    Command {
        name: "hmget",
        arity: -3,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hmget,
        group: "hash",
        since: "2.0.0",
        summary: "Returns the values of all fields in a hash.",
        complexity: "O(N) where N is the number of fields being requested.",
        syntax: "key field ...",
        ..Command::DEFAULT
    },
    Command {
        name: "hmset",
        arity: -4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hmset,
        group: "hash",
        since: "2.0.0",
        summary: "Sets the values of multiple fields.",
        complexity: "O(N) where N is the number of fields being set.",
        syntax: "key data:<field value> ...",
        deprecated_since: "4.0.0",
        replaced_by: "`HSET` with multiple field-value pairs",
        ..Command::DEFAULT
    },
    Command {
        name: "hdel",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: hdel,
        group: "hash",
        since: "2.0.0",
        summary: "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
        complexity: "O(N) where N is the number of fields to be removed.",
        syntax: "key field ...",
        history: &[
            ("2.4.0", "Accepts multiple `field` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "hexists",
        arity: 3,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: hexists,
        group: "hash",
        since: "2.0.0",
        summary: "Determines whether a field exists in a hash.",
        complexity: "O(1)",
        syntax: "key field",
        ..Command::DEFAULT
    },
    Command {
        name: "hlen",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: hlen,
        group: "hash",
        since: "2.0.0",
        summary: "Returns the number of fields in a hash.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "hstrlen",
        arity: 3,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: hstrlen,
        group: "hash",
        since: "3.2.0",
        summary: "Returns the length of the value of a field.",
        complexity: "O(1)",
        syntax: "key field",
        ..Command::DEFAULT
    },
    Command {
        name: "hkeys",
        arity: 2,
        flags: READONLY,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hkeys,
        group: "hash",
        since: "2.0.0",
        summary: "Returns all fields in a hash.",
        complexity: "O(N) where N is the size of the hash.",
        syntax: "key",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "hvals",
        arity: 2,
        flags: READONLY,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hvals,
        group: "hash",
        since: "2.0.0",
        summary: "Returns all values in a hash.",
        complexity: "O(N) where N is the size of the hash.",
        syntax: "key",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "hgetall",
        arity: 2,
        flags: READONLY,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hgetall,
        group: "hash",
        since: "2.0.0",
        summary: "Returns all fields and values in a hash.",
        complexity: "O(N) where N is the size of the hash.",
        syntax: "key",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "hincrby",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: hincrby,
        group: "hash",
        since: "2.0.0",
        summary: "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        complexity: "O(1)",
        syntax: "key field increment:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "hincrbyfloat",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: hincrbyfloat,
        group: "hash",
        since: "2.6.0",
        summary: "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        complexity: "O(1)",
        syntax: "key field increment:double",
        ..Command::DEFAULT
    },
    Command {
        name: "hrandfield",
        arity: -2,
        flags: READONLY,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hrandfield,
        group: "hash",
        since: "6.2.0",
        summary: "Returns one or more random fields from a hash.",
        complexity: "O(N) where N is the number of fields returned",
        syntax: "key options:[count:integer [WITHVALUES]]",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "hscan",
        arity: -3,
        flags: READONLY,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hscan,
        group: "hash",
        since: "2.8.0",
        summary: "Iterates over fields and values of a hash.",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        syntax: "key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "hexpire",
        arity: -6,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hexpire,
        group: "hash",
        since: "7.4.0",
        summary: "Set expiry for hash field using relative time to expire (seconds)",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key seconds:integer condition:[NX | XX | GT | LT] FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "hpexpire",
        arity: -6,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hpexpire,
        group: "hash",
        since: "7.4.0",
        summary: "Set expiry for hash field using relative time to expire (milliseconds)",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key milliseconds:integer condition:[NX | XX | GT | LT] FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "hexpireat",
        arity: -6,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hexpireat,
        group: "hash",
        since: "7.4.0",
        summary: "Set expiry for hash field using an absolute Unix timestamp (seconds)",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key unix-time-seconds:unix-time condition:[NX | XX | GT | LT] FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "hpexpireat",
        arity: -6,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hpexpireat,
        group: "hash",
        since: "7.4.0",
        summary: "Set expiry for hash field using an absolute Unix timestamp (milliseconds)",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key unix-time-milliseconds:unix-time condition:[NX | XX | GT | LT] FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "httl",
        arity: -5,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: httl,
        group: "hash",
        since: "7.4.0",
        summary: "Returns the TTL in seconds of a hash field.",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key FIELDS <numfields:integer field ...>",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "hpttl",
        arity: -5,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hpttl,
        group: "hash",
        since: "7.4.0",
        summary: "Returns the TTL in milliseconds of a hash field.",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key FIELDS <numfields:integer field ...>",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "hexpiretime",
        arity: -5,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hexpiretime,
        group: "hash",
        since: "7.4.0",
        summary: "Returns the expiration time of a hash field as a Unix timestamp, in seconds.",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "hpexpiretime",
        arity: -5,
        flags: READONLY | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: hpexpiretime,
        group: "hash",
        since: "7.4.0",
        summary: "Returns the expiration time of a hash field as a Unix timestamp, in msec.",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "hpersist",
        arity: -5,
        flags: WRITE | FAST,
        acl: acl::HASH,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: hpersist,
        group: "hash",
        since: "7.4.0",
        summary: "Removes the expiration time for each specified field",
        complexity: "O(N) where N is the number of specified fields",
        syntax: "key FIELDS <numfields:integer field ...>",
        ..Command::DEFAULT
    },
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

/// Run `f` on the hash at `key` for reading (None when the key is missing); WRONGTYPE for other types. Due
/// fields are reclaimed first.
fn read_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(Option<&Hash>) -> R,
) -> Result<R, CmdError> {
    let srv = ctx.srv;
    let now = ctx.now_ms;
    let mut shard = srv.keyspace.lock_key(key);
    let mut reclaimed = 0;
    let mut gone = false;
    let r = match ctx.lookup(&mut shard, key) {
        None => f(None),
        Some(e) => {
            let h = as_hash_mut(e)?;
            if h.has_due_fields(now) {
                reclaimed = h.expire_fields(now, usize::MAX);
                gone = h.is_empty();
            }
            if gone {
                f(None)
            } else {
                f(Some(h))
            }
        }
    };
    after_reclaim(ctx, &mut shard, key, reclaimed, gone);
    Ok(r)
}

/// Keyspace side effects of a lazy field reclaim: `hexpired`, and `del` (removing the key) if it emptied.
fn after_reclaim(ctx: &Ctx<'_>, shard: &mut Shard, key: &[u8], reclaimed: usize, gone: bool) {
    if reclaimed == 0 {
        return;
    }
    ctx.modified(shard, key, "hexpired");
    if gone {
        shard.db_mut(ctx.db()).remove(key);
        ctx.modified(shard, key, "del");
    }
}

/// Run `f` on the hash at `key` for writing, creating an empty one if it is missing and `create`; the key is
/// deleted if the hash ends up empty. `f` returns (result, event name if it changed the hash). Due fields are
/// reclaimed first (a hash left empty by that counts as missing).
fn write_hash<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut Hash) -> Result<(R, Option<&'static str>), CmdError>,
) -> Result<Option<R>, CmdError> {
    let srv = ctx.srv;
    let db = ctx.db();
    let lru = ctx.lru_clock();
    let now = ctx.now_ms;
    let mut shard = srv.keyspace.lock_key(key);
    let mut reclaimed = 0;
    let mut gone = false;
    let mut created = None;
    let mut empty = false;
    let outcome = {
        let mut found = match ctx.lookup_write(&mut shard, key) {
            Some(e) => Some(as_hash_mut(e)?),
            None => None,
        };
        if let Some(h) = found.as_deref_mut() {
            if h.has_due_fields(now) {
                reclaimed = h.expire_fields(now, usize::MAX);
                gone = h.is_empty();
            }
        }
        if gone {
            found = None;
        }
        match found {
            Some(h) => {
                let res = f(h);
                empty = h.is_empty();
                Some(res)
            }
            None if create => {
                let mut h = Hash::new();
                let res = f(&mut h);
                if res.is_ok() && !h.is_empty() {
                    created = Some(h);
                }
                Some(res)
            }
            None => None,
        }
    };
    after_reclaim(ctx, &mut shard, key, reclaimed, gone);
    let Some(res) = outcome else {
        return Ok(None);
    };
    let (r, event) = res?;
    if let Some(h) = created {
        shard
            .db_mut(db)
            .insert_new(Entry::new(key, Value::Hash(Box::new(h)), lru));
    }
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
    let mut a = Argv::new(args);
    let key = a.next()?;
    let pairs = a.rest();
    if pairs.is_empty() || pairs.len() % 2 == 1 {
        return Err(format!("ERR wrong number of arguments for '{name}' command").into());
    }
    let lim = ctx.srv.encoding.get();
    let r = write_hash(ctx, key, true, |h| {
        h.try_conversion(pairs.iter(), &lim);
        let mut created = 0;
        let mut it = pairs.iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            if h.set(f, v, &lim) {
                created += 1;
            }
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
    let mut a = Argv::new(args);
    let (key, f, v) = (a.next()?, a.next()?, a.next()?);
    let lim = ctx.srv.encoding.get();
    let r = write_hash(ctx, key, true, |h| {
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
    let mut a = Argv::new(args);
    let (key, f) = (a.next()?, a.next()?);
    let v = read_hash(ctx, key, |h| h.and_then(|h| h.get(f)).map(<[u8]>::to_vec))?;
    match v {
        Some(v) => ctx.reply().bulk(&v),
        None => ctx.reply().null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let fields = a.rest();
    let mut body = Vec::new();
    let resp3 = ctx.client.resp3;
    read_hash(ctx, key, |h| {
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
    let mut a = Argv::new(args);
    let key = a.next()?;
    let fields = a.rest();
    let r = write_hash(ctx, key, false, |h| {
        let mut n = 0;
        for f in fields.iter() {
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
    let mut a = Argv::new(args);
    let (key, f) = (a.next()?, a.next()?);
    let b = read_hash(ctx, key, |h| h.is_some_and(|h| h.contains(f)))?;
    ctx.reply().int(i64::from(b));
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let n = read_hash(ctx, key, |h| h.map_or(0, Hash::len))?;
    ctx.reply().int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, f) = (a.next()?, a.next()?);
    let n = read_hash(ctx, key, |h| {
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
    let key = Argv::new(args).next()?;
    let mut body = Vec::new();
    let resp3 = ctx.client.resp3;
    read_hash(ctx, key, |h| {
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
    let mut a = Argv::new(args);
    let (key, f) = (a.next()?, a.next()?);
    let incr = a.int()?;
    let lim = ctx.srv.encoding.get();
    let r = write_hash(ctx, key, true, |h| {
        let cur = match h.get(f) {
            None => 0,
            Some(v) => ferrodis_protocol::num::parse_i64(v)
                .ok_or_else(|| CmdError::from("ERR hash value is not an integer"))?,
        };
        let new = cur
            .checked_add(incr)
            .ok_or_else(|| CmdError::from(err::OVERFLOW))?;
        h.set_keep_ttl(f, itoa::Buffer::new().format(new).as_bytes(), &lim);
        Ok((new, Some("hincrby")))
    })?;
    ctx.reply().int(r.unwrap_or(0));
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, f) = (a.next()?, a.next()?);
    let incr = match LongDouble::parse(a.next()?) {
        Ok(v) => v,
        Err(LdError::Invalid) => return Err(err::NOT_FLOAT.into()),
        Err(LdError::NanOrInf) => return Err("ERR value is NaN or Infinity".into()),
    };
    let lim = ctx.srv.encoding.get();
    let r = write_hash(ctx, key, true, |h| {
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
        h.set_keep_ttl(f, s.as_bytes(), &lim);
        let ttl = h.field_expire(f).flatten();
        Ok(((s, ttl), Some("hincrbyfloat")))
    })?;
    let (r, ttl) = r.unzip();
    if let Some(v) = &r {
        // The result, not the increment (float rounding on replay), keeping the field's TTL.
        let key = key.to_vec();
        let mut cmds = vec![vec![
            b"HSET".to_vec(),
            key.clone(),
            f.to_vec(),
            v.as_bytes().to_vec(),
        ]];
        if let Some(at) = ttl.flatten() {
            cmds.push(vec![
                b"HPEXPIREAT".to_vec(),
                key,
                at.to_string().into_bytes(),
                b"FIELDS".to_vec(),
                b"1".to_vec(),
                f.to_vec(),
            ]);
        }
        ctx.propagate_as(cmds);
    }
    ctx.reply().bulk(r.unwrap_or_default().as_bytes());
    Ok(())
}

fn hrandfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let Some(count) = a.opt() else {
        let v = read_hash(ctx, key, |h| {
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
    };
    let count = range_long(count)?;
    let withvalues = match (a.opt(), a.is_done()) {
        (None, _) => false,
        (Some(w), true) if parse::eq(w, "withvalues") => true,
        _ => return Err(err::SYNTAX.into()),
    };
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err("ERR value is out of range".into());
    }
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    read_hash(ctx, key, |h| {
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

/// Write a SCAN reply: the next cursor and the elements.
pub(crate) fn scan_reply(ctx: &mut Ctx<'_>, cursor: u64, n: usize, body: &[u8]) {
    let mut r = ctx.reply();
    r.array(2);
    r.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    r.array(n);
    ctx.out.extend_from_slice(body);
}

fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let cursor = parse::cursor(a.next()?)?;
    // Redis reads the options only once the key is found and of the right type.
    let opts = ScanOpts::parse(&mut a, ScanKind::Hash);
    let resp3 = ctx.client.resp3;
    let mut body = Vec::new();
    let mut n = 0usize;
    let next = read_hash(ctx, key, |h| {
        let Some(h) = h else {
            return Ok::<u64, CmdError>(0);
        };
        let o = opts?;
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
            return Ok(h.scan(0, &mut emit));
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
        Ok(c)
    })??;
    scan_reply(ctx, next, n, &body);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Hash field expiry (Redis 7.4)

/// Largest absolute field expiry time Redis accepts (unix ms): its 48-bit expiry field less 2 reserved bits.
const HFE_MAX_ABS_TIME_MS: i64 = ((1i64 << 48) - 1) >> 2;

const FIELDS_MISSING: &str =
    "ERR Mandatory argument FIELDS is missing or not at the right position";
const NUMFIELDS_MISMATCH: &str = "ERR The `numfields` parameter must match the number of arguments";
const NUMFIELDS_EXPIRE: &str = "ERR Parameter `numFields` should be greater than 0";
const NUMFIELDS_QUERY: &str = "ERR Number of fields must be a positive integer";

/// Reads `FIELDS numfields field ...`, the rest of the request (HEXPIRE and friends, HTTL and friends,
/// HPERSIST); returns the fields. `count_err` is the command's message for a numfields that is not an integer
/// in 1..=LONG_MAX.
fn parse_fields<'a>(a: &mut Argv<'a>, count_err: &'static str) -> Result<Args<'a>, CmdError> {
    if !a.eat("fields") {
        return Err(FIELDS_MISSING.into());
    }
    let n = match a.opt().and_then(ferrodis_protocol::num::parse_i64) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(count_err.into()),
    };
    if n != a.remaining() as u64 {
        return Err(NUMFIELDS_MISMATCH.into());
    }
    Ok(a.rest())
}

/// WRONGTYPE if `key` holds something other than a hash (checked before argument errors, as Redis does).
fn check_hash_type(ctx: &Ctx<'_>, key: &[u8]) -> CmdResult {
    let shard = ctx.srv.keyspace.lock_key(key);
    match shard.get(ctx.db(), key, ctx.now_ms) {
        Some(e) => as_hash(e).map(|_| ()),
        None => Ok(()),
    }
}

fn int_array(ctx: &mut Ctx<'_>, codes: &[i64]) {
    let mut r = ctx.reply();
    r.array(codes.len());
    for &c in codes {
        r.int(c);
    }
}

/// HEXPIRE / HPEXPIRE / HEXPIREAT / HPEXPIREAT: `basetime` is now (relative forms) or 0; `unit_ms` is 1000
/// for the seconds forms.
fn hexpire_generic(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    name: &str,
    relative: bool,
    unit_ms: i64,
) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    check_hash_type(ctx, key)?;
    let mut t = a.int()?;
    if t < 0 {
        return Err("ERR invalid expire time, must be >= 0".into());
    }
    let bad_time = || CmdError::from(format!("ERR invalid expire time in '{name}' command"));
    if unit_ms == 1000 {
        if t > HFE_MAX_ABS_TIME_MS / 1000 {
            return Err(bad_time());
        }
        t *= 1000;
    }
    let base = if relative { ctx.now_ms as i64 } else { 0 };
    if t > HFE_MAX_ABS_TIME_MS - base {
        return Err(bad_time());
    }
    let at = (t + base) as u64;
    // Everything after the time, propagated as it is.
    let tail = {
        let mut t = a;
        t.rest()
    };
    let cond = if a.eat("nx") {
        ExpireCond::Nx
    } else if a.eat("xx") {
        ExpireCond::Xx
    } else if a.eat("gt") {
        ExpireCond::Gt
    } else if a.eat("lt") {
        ExpireCond::Lt
    } else {
        ExpireCond::Always
    };
    let fields = parse_fields(&mut a, NUMFIELDS_EXPIRE)?;
    let now = ctx.now_ms;
    let codes = write_hash(ctx, key, false, |h| {
        h.enable_field_ttls();
        let mut codes = Vec::with_capacity(fields.len());
        let (mut set, mut deleted) = (0, 0);
        for f in fields.iter() {
            let c = h.set_field_expire(f, at, cond, now);
            match c {
                crate::types::hash::EXPIRE_SET => set += 1,
                crate::types::hash::EXPIRE_DELETED => deleted += 1,
                _ => {}
            }
            codes.push(c);
        }
        // Redis 7.4 reports a field removed for a past time as "hdel" (and "del" if the hash empties).
        let ev = if deleted > 0 {
            Some("hdel")
        } else if set > 0 {
            Some("hexpire")
        } else {
            None
        };
        Ok((codes, ev))
    })?;
    if codes
        .as_ref()
        .is_some_and(|c| c.contains(&crate::types::hash::EXPIRE_SET))
    {
        let db = ctx.db();
        ctx.srv.keyspace.lock_key(key).note_field_ttls(db, key);
    }
    if name != "hpexpireat" {
        // An absolute time in ms replays to the same result.
        let mut v = vec![
            b"HPEXPIREAT".to_vec(),
            key.to_vec(),
            at.to_string().into_bytes(),
        ];
        v.extend(tail.iter().map(|a| a.to_vec()));
        ctx.propagate_as(vec![v]);
    }
    let codes = codes.unwrap_or_else(|| vec![crate::types::hash::EXPIRE_NO_FIELD; fields.len()]);
    int_array(ctx, &codes);
    Ok(())
}

fn hexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hexpire_generic(ctx, args, "hexpire", true, 1000)
}

fn hpexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hexpire_generic(ctx, args, "hpexpire", true, 1)
}

fn hexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hexpire_generic(ctx, args, "hexpireat", false, 1000)
}

fn hpexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    hexpire_generic(ctx, args, "hpexpireat", false, 1)
}

#[derive(Clone, Copy)]
enum TtlKind {
    /// Remaining time (HTTL/HPTTL).
    Ttl,
    /// Absolute time (HEXPIRETIME/HPEXPIRETIME).
    At,
}

/// One field's reply for HTTL and friends: -2 no field, -1 no TTL, else the time (seconds round up).
fn ttl_code(exp: Option<Option<u64>>, kind: TtlKind, ms: bool, now: u64) -> i64 {
    match exp {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            let base = match kind {
                TtlKind::Ttl => now,
                TtlKind::At => 0,
            };
            let d = at.saturating_sub(base) as i64;
            if ms {
                d
            } else {
                (d + 999) / 1000
            }
        }
    }
}

fn httl_generic(ctx: &mut Ctx<'_>, args: Args<'_>, kind: TtlKind, ms: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    check_hash_type(ctx, key)?;
    let fields = parse_fields(&mut a, NUMFIELDS_QUERY)?;
    let now = ctx.now_ms;
    let codes = read_hash(ctx, key, |h| {
        fields
            .iter()
            .map(|f| ttl_code(h.and_then(|h| h.field_expire(f)), kind, ms, now))
            .collect::<Vec<_>>()
    })?;
    int_array(ctx, &codes);
    Ok(())
}

fn httl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    httl_generic(ctx, args, TtlKind::Ttl, false)
}

fn hpttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    httl_generic(ctx, args, TtlKind::Ttl, true)
}

fn hexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    httl_generic(ctx, args, TtlKind::At, false)
}

fn hpexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    httl_generic(ctx, args, TtlKind::At, true)
}

fn hpersist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    check_hash_type(ctx, key)?;
    let fields = parse_fields(&mut a, NUMFIELDS_QUERY)?;
    let codes = write_hash(ctx, key, false, |h| {
        let codes: Vec<i64> = fields.iter().map(|f| h.persist_field(f)).collect();
        let changed = codes.contains(&crate::types::hash::PERSIST_OK);
        Ok((codes, changed.then_some("hpersist")))
    })?;
    let codes = codes.unwrap_or_else(|| vec![crate::types::hash::PERSIST_NO_FIELD; fields.len()]);
    int_array(ctx, &codes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(super::parse::cursor(b"").unwrap(), 0);
        assert_eq!(super::parse::cursor(b"12").unwrap(), 12);
        assert_eq!(super::parse::cursor(b"-1").unwrap(), u64::MAX);
        assert!(super::parse::cursor(b"x").is_err());
        assert!(super::parse::cursor(b"18446744073709551616").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(range_long(b"-5").unwrap(), -5);
        assert!(range_long(b"-9223372036854775808").is_err());
        assert!(range_long(b"x").is_err());
    }
}
