//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, EXPIRE and friends, TTL and friends,
//! PERSIST, KEYS, SCAN, RANDOMKEY, TOUCH, OBJECT, COPY, MOVE, SWAPDB.
//!
//! Locking: single-key commands lock one shard; multi-key commands (DEL, EXISTS, TOUCH, UNLINK, RENAME, COPY)
//! lock all their shards at once with `lock_many`; KEYS, SCAN and RANDOMKEY lock shards one at a time; SWAPDB
//! takes every shard with `lock_all`.
//!
//! SCAN cursors: `cursor = (table_cursor << SHARD_BITS) | shard`. A scan walks shard 0, 1, ... and, inside a
//! shard, the table's reverse-binary cursor, which keeps Redis's guarantee (a key present for the whole scan is
//! returned at least once) across table growth and shrinking, since keys never move between shards.

use super::argv::{Argv, ScanKind, ScanOpts};
use super::spec::{self, ACCESS, DELETE, INSERT, OW, RM, RO, RW, UPDATE};
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::cmd::acl;
use crate::glob;
use crate::keyspace::entry::{Entry, ValueRef, EMBSTR_LIMIT};
use crate::keyspace::{Lookup, Shard, NUM_SHARDS, SHARD_BITS};
use crate::types::Value;
use ferrodis_protocol::{num, Args, Reply};

const SAME_OBJECT: &str = "ERR source and destination objects are the same";
const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis's OBJ_SHARED_REFCOUNT: what OBJECT REFCOUNT says for the shared integers 0..9999.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
const SHARED_INTEGERS: i64 = 10_000;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "copy",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::KEYSPACE,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RO | ACCESS),
            spec::index(2).range(0, 1, 0).flags(OW | UPDATE),
        ],
        handler: copy,
        group: "generic",
        since: "6.2.0",
        summary: "Copies the value of a key to a new key.",
        complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
        syntax: "source:key destination:key [DB destination-db:integer] [REPLACE]",
        ..Command::DEFAULT
    },
    Command {
        name: "del",
        arity: -2,
        flags: WRITE,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RM | DELETE)],
        handler: del,
        group: "generic",
        since: "1.0.0",
        summary: "Deletes one or more keys.",
        complexity: "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
        syntax: "key ...",
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..Command::DEFAULT
    },
    Command {
        name: "exists",
        arity: -2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO)],
        handler: exists,
        group: "generic",
        since: "1.0.0",
        summary: "Determines whether one or more keys exist.",
        complexity: "O(N) where N is the number of keys to check.",
        syntax: "key ...",
        history: &[
            ("3.0.3", "Accepts multiple `key` arguments."),
        ],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..Command::DEFAULT
    },
    Command {
        name: "expire",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: expire,
        group: "generic",
        since: "1.0.0",
        summary: "Sets the expiration time of a key in seconds.",
        complexity: "O(1)",
        syntax: "key seconds:integer condition:[NX | XX | GT | LT]@7.0.0",
        history: &[
            ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "expireat",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: expireat,
        group: "generic",
        since: "1.2.0",
        summary: "Sets the expiration time of a key to a Unix timestamp.",
        complexity: "O(1)",
        syntax: "key unix-time-seconds:unix-time condition:[NX | XX | GT | LT]@7.0.0",
        history: &[
            ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "expiretime",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: expiretime,
        group: "generic",
        since: "7.0.0",
        summary: "Returns the expiration time of a key as a Unix timestamp.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "keys",
        arity: 2,
        flags: READONLY,
        acl: acl::DANGEROUS | acl::KEYSPACE,
        handler: keys,
        group: "generic",
        since: "1.0.0",
        summary: "Returns all key names that match a pattern.",
        complexity: "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
        syntax: "pattern:pattern",
        tips: &["request_policy:all_shards", "nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "move",
        arity: 3,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: move_cmd,
        group: "generic",
        since: "1.0.0",
        summary: "Moves a key to another database.",
        complexity: "O(1)",
        syntax: "key db:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "object",
        arity: -2,
        subcommands: OBJECT_SUBCOMMANDS,
        group: "generic",
        since: "2.2.3",
        summary: "A container for object introspection commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
    Command {
        name: "persist",
        arity: 2,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: persist,
        group: "generic",
        since: "2.2.0",
        summary: "Removes the expiration time of a key.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "pexpire",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: pexpire,
        group: "generic",
        since: "2.6.0",
        summary: "Sets the expiration time of a key in milliseconds.",
        complexity: "O(1)",
        syntax: "key milliseconds:integer condition:[NX | XX | GT | LT]@7.0.0",
        history: &[
            ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "pexpireat",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: pexpireat,
        group: "generic",
        since: "2.6.0",
        summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        complexity: "O(1)",
        syntax: "key unix-time-milliseconds:unix-time condition:[NX | XX | GT | LT]@7.0.0",
        history: &[
            ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "pexpiretime",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: pexpiretime,
        group: "generic",
        since: "7.0.0",
        summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "pttl",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: pttl,
        group: "generic",
        since: "2.6.0",
        summary: "Returns the expiration time in milliseconds of a key.",
        complexity: "O(1)",
        syntax: "key",
        history: &[
            ("2.8.0", "Added the -2 reply."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "randomkey",
        arity: 1,
        flags: READONLY,
        acl: acl::KEYSPACE,
        handler: randomkey,
        group: "generic",
        since: "1.0.0",
        summary: "Returns a random key name from the database.",
        complexity: "O(1)",
        tips: &["request_policy:all_shards", "response_policy:special", "nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "rename",
        arity: 3,
        flags: WRITE,
        acl: acl::KEYSPACE,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(OW | UPDATE),
        ],
        handler: rename,
        group: "generic",
        since: "1.0.0",
        summary: "Renames a key and overwrites the destination.",
        complexity: "O(1)",
        syntax: "key newkey:key",
        ..Command::DEFAULT
    },
    Command {
        name: "renamenx",
        arity: 3,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(OW | INSERT),
        ],
        handler: renamenx,
        group: "generic",
        since: "1.0.0",
        summary: "Renames a key only when the target key name doesn't exist.",
        complexity: "O(1)",
        syntax: "key newkey:key",
        history: &[
            ("3.2.0", "The command no longer returns an error when source and destination names are the same."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "scan",
        arity: -2,
        flags: READONLY,
        acl: acl::KEYSPACE,
        handler: scan,
        group: "generic",
        since: "2.8.0",
        summary: "Iterates over the key names in the database.",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        syntax: "cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [TYPE type@6.0.0]",
        history: &[
            ("6.0.0", "Added the `TYPE` subcommand."),
        ],
        tips: &["nondeterministic_output", "request_policy:special", "response_policy:special"],
        ..Command::DEFAULT
    },
    Command {
        name: "swapdb",
        arity: 3,
        flags: WRITE | FAST,
        acl: acl::DANGEROUS | acl::KEYSPACE,
        handler: swapdb,
        group: "server",
        since: "4.0.0",
        summary: "Swaps two Redis databases.",
        complexity: "O(N) where N is the count of clients watching or blocking on keys from both databases.",
        syntax: "index1:integer index2:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "touch",
        arity: -2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO)],
        handler: touch,
        group: "generic",
        since: "3.2.1",
        summary: "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
        complexity: "O(N) where N is the number of keys that will be touched.",
        syntax: "key ...",
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..Command::DEFAULT
    },
    Command {
        name: "ttl",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: ttl,
        group: "generic",
        since: "1.0.0",
        summary: "Returns the expiration time in seconds of a key.",
        complexity: "O(1)",
        syntax: "key",
        history: &[
            ("2.8.0", "Added the -2 reply."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "type",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: type_cmd,
        group: "generic",
        since: "1.0.0",
        summary: "Determines the type of value stored at a key.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "unlink",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RM | DELETE)],
        handler: del,
        group: "generic",
        since: "4.0.0",
        summary: "Asynchronously deletes one or more keys.",
        complexity: "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
        syntax: "key ...",
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        ..Command::DEFAULT
    },
];

static OBJECT_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "encoding",
        arity: 3,
        flags: READONLY,
        acl: acl::KEYSPACE,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO)],
        handler: object_encoding,
        group: "generic",
        since: "2.2.3",
        summary: "Returns the internal encoding of a Redis object.",
        complexity: "O(1)",
        syntax: "key",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "freq",
        arity: 3,
        flags: READONLY,
        acl: acl::KEYSPACE,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO)],
        handler: object_freq,
        group: "generic",
        since: "4.0.0",
        summary: "Returns the logarithmic access frequency counter of a Redis object.",
        complexity: "O(1)",
        syntax: "key",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::KEYSPACE,
        handler: object_help,
        group: "generic",
        since: "6.2.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "idletime",
        arity: 3,
        flags: READONLY,
        acl: acl::KEYSPACE,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO)],
        handler: object_idletime,
        group: "generic",
        since: "2.2.3",
        summary: "Returns the time since the last access to a Redis object.",
        complexity: "O(1)",
        syntax: "key",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "refcount",
        arity: 3,
        flags: READONLY,
        acl: acl::KEYSPACE,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO)],
        handler: object_refcount,
        group: "generic",
        since: "2.2.3",
        summary: "Returns the reference count of a value of a key.",
        complexity: "O(1)",
        syntax: "key",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
];

// ---------------------------------------------------------------------------------------------------------
// Lookup helpers
// ---------------------------------------------------------------------------------------------------------

/// Look a key up in database `db` of a locked shard without touching its access clock (Redis's
/// LOOKUP_NOTOUCH: TYPE, TTL, EXISTS, OBJECT): expires it lazily and counts keyspace hits and misses when
/// `stats` is set.
fn peek_in<'s>(
    ctx: &Ctx<'_>,
    shard: &'s mut Shard,
    db: usize,
    key: &[u8],
    stats: bool,
) -> Option<&'s mut Entry> {
    let st = &ctx.srv.workers[ctx.client.worker];
    match shard.lookup_mut(db, key, ctx.now_ms) {
        Lookup::Found(e) => {
            if stats {
                st.hits.add(1);
            }
            Some(e)
        }
        Lookup::Expired => {
            st.expired.add(1);
            if stats {
                st.misses.add(1);
            }
            None
        }
        Lookup::Missing => {
            if stats {
                st.misses.add(1);
            }
            None
        }
    }
}

fn peek<'s>(ctx: &Ctx<'_>, shard: &'s mut Shard, key: &[u8]) -> Option<&'s mut Entry> {
    peek_in(ctx, shard, ctx.client.db, key, true)
}

/// The name TYPE and SCAN TYPE use for an entry's value.
fn type_name(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Str(_) => "string",
        ValueRef::Other(v) => v.type_name(),
    }
}

/// Parse an integer argument the way Redis's getIntFromObjectOrReply does: a 64-bit integer that must also fit
/// a C int. Errors are `msg` when given, else Redis's generic ones.
fn parse_c_int(b: &[u8], msg: Option<&'static str>) -> Result<i64, CmdError> {
    match num::parse_i64(b) {
        Some(v) if i32::try_from(v).is_ok() => Ok(v),
        Some(_) => Err(msg
            .unwrap_or("ERR value is out of range, value must between -2147483648 and 2147483647")
            .into()),
        None => Err(msg.unwrap_or(err::NOT_INTEGER).into()),
    }
}

/// A database index that must be in range.
fn db_index(ctx: &Ctx<'_>, v: i64) -> Result<usize, CmdError> {
    if v < 0 || v as u64 >= ctx.srv.keyspace.databases() as u64 {
        return Err(err::DB_INDEX.into());
    }
    Ok(v as usize)
}

// ---------------------------------------------------------------------------------------------------------
// DEL, UNLINK, EXISTS, TOUCH, TYPE
// ---------------------------------------------------------------------------------------------------------

/// Run `f` on every key (duplicates included, in order) with its shard locked: a single key takes one shard
/// lock, several keys take all their shards at once (`lock_many`) so that the command is atomic.
fn each_key_locked(ctx: &Ctx<'_>, keys: Args<'_>, mut f: impl FnMut(&mut Shard, &[u8])) {
    match keys.try_get(0) {
        Some(k) if keys.len() == 1 => {
            let mut shard = ctx.srv.keyspace.lock_key(k);
            f(&mut shard, k);
        }
        _ => {
            let mut guard = ctx.srv.keyspace.lock_many(keys.iter());
            for k in keys.iter() {
                f(guard.shard(k), k);
            }
        }
    }
}

fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let db = ctx.client.db;
    let mut n = 0;
    each_key_locked(ctx, args.skip(1), |shard, k| {
        if peek_in(ctx, shard, db, k, false).is_some() && shard.db_mut(db).remove(k).is_some() {
            n += 1;
            ctx.modified(shard, k, "del");
        }
    });
    ctx.reply().int(n);
    Ok(())
}

/// EXISTS counts a key once per time it is named.
fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut n = 0;
    each_key_locked(ctx, args.skip(1), |shard, k| {
        if peek(ctx, shard, k).is_some() {
            n += 1;
        }
    });
    ctx.reply().int(n);
    Ok(())
}

/// TOUCH updates the access clock even for a client in CLIENT NO-TOUCH mode (as Redis 7.2).
fn touch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let clock = ctx.lru_clock();
    let mut n = 0;
    each_key_locked(ctx, args.skip(1), |shard, k| {
        if let Some(e) = peek(ctx, shard, k) {
            e.set_lru(clock);
            n += 1;
        }
    });
    ctx.reply().int(n);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let mut shard = ctx.srv.keyspace.lock_key(key);
    let name = peek(ctx, &mut shard, key).map_or("none", |e| type_name(e));
    drop(shard);
    ctx.reply().simple(name);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// RENAME, RENAMENX, COPY, MOVE, SWAPDB
// ---------------------------------------------------------------------------------------------------------

fn rename(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    rename_generic(ctx, args, true)
}

fn rename_generic(ctx: &mut Ctx<'_>, args: Args<'_>, nx: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst) = (a.next()?, a.next()?);
    let db = ctx.client.db;
    let mut guard = ctx.srv.keyspace.lock_many([src, dst]);
    if ctx.lookup_write(guard.shard(src), src).is_none() {
        return Err(err::NO_SUCH_KEY.into());
    }
    if src == dst {
        drop(guard);
        if nx {
            ctx.reply().int(0);
        } else {
            ctx.reply().ok();
        }
        return Ok(());
    }
    let dshard = guard.shard(dst);
    if ctx.lookup_write(dshard, dst).is_some() {
        if nx {
            drop(guard);
            ctx.reply().int(0);
            return Ok(());
        }
        dshard.db_mut(db).remove(dst);
    }
    let Some(entry) = guard.shard(src).db_mut(db).remove(src) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    guard.shard(dst).db_mut(db).insert_new(entry.rekey(dst));
    ctx.modified(guard.shard(src), src, "rename_from");
    ctx.modified(guard.shard(dst), dst, "rename_to");
    drop(guard);
    if nx {
        ctx.reply().int(1);
    } else {
        ctx.reply().ok();
    }
    Ok(())
}

fn copy(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst) = (a.next()?, a.next()?);
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    while let Some(word) = a.opt() {
        if parse::eq(word, "replace") {
            replace = true;
        } else if parse::eq(word, "db") && !a.is_done() {
            dst_db = db_index(ctx, a.int()?)?;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    if src_db == dst_db && src == dst {
        return Err(SAME_OBJECT.into());
    }
    let clock = ctx.lru_clock();
    let mut guard = ctx.srv.keyspace.lock_many([src, dst]);
    let Some(mut copied) = ctx
        .lookup(guard.shard(src), src)
        .map(|e| e.clone_with_key(dst))
    else {
        drop(guard);
        ctx.reply().int(0);
        return Ok(());
    };
    copied.set_lru(clock);
    let dshard = guard.shard(dst);
    if peek_in(ctx, dshard, dst_db, dst, false).is_some() {
        if !replace {
            drop(guard);
            ctx.reply().int(0);
            return Ok(());
        }
        dshard.db_mut(dst_db).remove(dst);
    }
    dshard.db_mut(dst_db).insert_new(copied);
    ctx.modified_in(dshard, dst_db, dst, "copy_to");
    drop(guard);
    ctx.reply().int(1);
    Ok(())
}

fn move_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let src_db = ctx.client.db;
    let dst_db = db_index(ctx, parse_c_int(a.next()?, None)?)?;
    if dst_db == src_db {
        return Err(SAME_OBJECT.into());
    }
    let mut shard = ctx.srv.keyspace.lock_key(key);
    if ctx.lookup_write(&mut shard, key).is_none()
        || peek_in(ctx, &mut shard, dst_db, key, false).is_some()
    {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    }
    let moved = match shard.db_mut(src_db).remove(key) {
        Some(e) => {
            shard.db_mut(dst_db).insert_new(e);
            true
        }
        None => false,
    };
    if moved {
        ctx.modified_in(&mut shard, src_db, key, "move_from");
        ctx.modified_in(&mut shard, dst_db, key, "move_to");
    }
    drop(shard);
    ctx.reply().int(i64::from(moved));
    Ok(())
}

fn swapdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut argv = Argv::new(args);
    let a = parse_c_int(argv.next()?, Some("ERR invalid first DB index"))?;
    let b = parse_c_int(argv.next()?, Some("ERR invalid second DB index"))?;
    let (a, b) = (db_index(ctx, a)?, db_index(ctx, b)?);
    if a != b {
        let mut all = ctx.srv.keyspace.lock_all();
        for shard in all.shards() {
            shard.touch_watched_swap(a, b, ctx.now_ms);
            shard.dbs_mut().swap(a, b);
            // Clients blocked on keys of either database may now find data.
            shard.all_keys_ready(ctx);
        }
        // Its place in the AOF order, taken while everything is locked.
        ctx.srv.persist.aof.note_write();
    }
    ctx.srv.workers[ctx.client.worker].dirty.add(1);
    ctx.prop.borrow_mut().changes += 1; // propagated as is (AOF)
    ctx.reply().ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// EXPIRE family, PERSIST, TTL family
// ---------------------------------------------------------------------------------------------------------

/// The NX / XX / GT / LT condition words, as the EXPIRE family and ZADD read them (any case, each may be
/// repeated). Which combinations are allowed, and the error otherwise, is each command's own.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

impl Cond {
    /// Records `word` when it is NX, XX, GT or LT; false (nothing recorded) for any other word.
    #[inline]
    pub(crate) fn accept(&mut self, word: &[u8]) -> bool {
        if parse::eq(word, "nx") {
            self.nx = true;
        } else if parse::eq(word, "xx") {
            self.xx = true;
        } else if parse::eq(word, "gt") {
            self.gt = true;
        } else if parse::eq(word, "lt") {
            self.lt = true;
        } else {
            return false;
        }
        true
    }

    /// The EXPIRE family's options: the rest of `a`, each a condition word, in a combination EXPIRE allows.
    fn parse_expire(a: &mut Argv<'_>) -> Result<Self, CmdError> {
        let mut c = Cond::default();
        while let Some(o) = a.opt() {
            if !c.accept(o) {
                return Err(
                    format!("ERR Unsupported option {}", String::from_utf8_lossy(o)).into(),
                );
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(
                "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
            );
        }
        if c.gt && c.lt {
            return Err("ERR GT and LT options at the same time are not compatible".into());
        }
        Ok(c)
    }

    /// Whether the new absolute expiry `when` may replace `current` (None = no TTL, an infinite one).
    fn allows(&self, current: Option<u64>, when: i64) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt {
            match current {
                None => return false,
                Some(cur) if when <= cur as i64 => return false,
                _ => {}
            }
        }
        if self.lt {
            if let Some(cur) = current {
                if when >= cur as i64 {
                    return false;
                }
            }
        }
        true
    }
}

/// Turn the EXPIRE-family argument into an absolute unix time in ms, with Redis's overflow checks.
/// `relative` adds `now_ms`; `seconds` multiplies by 1000. The result may be negative (already expired).
fn absolute_expire(
    arg: &[u8],
    seconds: bool,
    now_ms: u64,
    relative: bool,
    name: &str,
) -> Result<i64, CmdError> {
    let invalid = || CmdError::from(format!("ERR invalid expire time in '{name}' command"));
    let mut when = parse::int(arg)?;
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if relative {
        when = when.checked_add(now_ms as i64).ok_or_else(invalid)?;
    }
    Ok(when)
}

fn expire_generic(ctx: &mut Ctx<'_>, args: Args<'_>, seconds: bool, relative: bool) -> CmdResult {
    let name = match (seconds, relative) {
        (true, true) => "expire",
        (false, true) => "pexpire",
        (true, false) => "expireat",
        (false, false) => "pexpireat",
    };
    let mut a = Argv::new(args);
    let (key, time) = (a.next()?, a.next()?);
    // The options are checked before the time, as in Redis.
    let cond = Cond::parse_expire(&mut a)?;
    let when = absolute_expire(time, seconds, ctx.now_ms, relative, name)?;
    let db = ctx.client.db;
    let mut shard = ctx.srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    if !cond.allows(e.expire_at(), when) {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    }
    let event = if when <= ctx.now_ms as i64 {
        shard.db_mut(db).remove(key);
        "del"
    } else {
        shard.db_mut(db).set_expire(key, Some(when as u64));
        "expire"
    };
    ctx.modified(&mut shard, key, event);
    // Propagated as its effect: DEL when the time has passed, else PEXPIREAT with the absolute time.
    ctx.propagate_as(vec![if event == "del" {
        vec![b"DEL".to_vec(), key.to_vec()]
    } else {
        vec![
            b"PEXPIREAT".to_vec(),
            key.to_vec(),
            when.to_string().into_bytes(),
        ]
    }]);
    drop(shard);
    ctx.reply().int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, true, true)
}

fn pexpire(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, false, true)
}

fn expireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, true, false)
}

fn pexpireat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    expire_generic(ctx, args, false, false)
}

fn persist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let db = ctx.client.db;
    let mut shard = ctx.srv.keyspace.lock_key(key);
    let had_ttl = ctx
        .lookup_write(&mut shard, key)
        .is_some_and(|e| e.expire_at().is_some());
    if had_ttl {
        shard.db_mut(db).set_expire(key, None);
        ctx.modified(&mut shard, key, "persist");
    }
    drop(shard);
    ctx.reply().int(i64::from(had_ttl));
    Ok(())
}

/// TTL (-2 missing, -1 no TTL), in ms or rounded seconds, relative to now or absolute.
fn ttl_value(expire_at: Option<u64>, now_ms: u64, ms: bool, absolute: bool) -> i64 {
    let Some(at) = expire_at else {
        return -1;
    };
    let at = at.min(i64::MAX as u64) as i64;
    let t = if absolute {
        at
    } else {
        at.saturating_sub(now_ms as i64).max(0)
    };
    if ms {
        t
    } else {
        t.saturating_add(500) / 1000
    }
}

fn ttl_generic(ctx: &mut Ctx<'_>, args: Args<'_>, ms: bool, absolute: bool) -> CmdResult {
    let key = Argv::new(args).next()?;
    let mut shard = ctx.srv.keyspace.lock_key(key);
    let v = match peek(ctx, &mut shard, key) {
        None => -2,
        Some(e) => ttl_value(e.expire_at(), ctx.now_ms, ms, absolute),
    };
    drop(shard);
    ctx.reply().int(v);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, false, false)
}

fn pttl(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, true, false)
}

fn expiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, false, true)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ttl_generic(ctx, args, true, true)
}

// ---------------------------------------------------------------------------------------------------------
// KEYS, SCAN, RANDOMKEY
// ---------------------------------------------------------------------------------------------------------

fn keys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let pattern = Argv::new(args).next()?;
    let all = glob::is_match_all(pattern);
    let (srv, db, now) = (ctx.srv, ctx.client.db, ctx.now_ms);
    // Encode the keys into a side buffer, then prefix the count.
    let mut body = Vec::new();
    let mut n = 0usize;
    {
        let mut r = Reply::new(&mut body, ctx.client.resp3);
        for i in 0..NUM_SHARDS {
            let shard = srv.keyspace.lock_shard(i);
            let table = shard.db(db);
            if table.is_empty() {
                continue;
            }
            for e in table.iter() {
                if !e.is_expired(now) && (all || glob::matches(pattern, e.key(), false)) {
                    r.bulk(e.key());
                    n += 1;
                }
            }
        }
    }
    let mut r = ctx.reply();
    r.array(n);
    r.raw(&body);
    Ok(())
}

/// Split a SCAN cursor into (shard index, table cursor).
#[inline]
fn split_cursor(cursor: u64) -> (usize, u64) {
    (
        (cursor & (NUM_SHARDS as u64 - 1)) as usize,
        cursor >> SHARD_BITS,
    )
}

#[inline]
fn join_cursor(shard: usize, table_cursor: u64) -> u64 {
    (table_cursor << SHARD_BITS) | shard as u64
}

fn scan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let cursor = parse::cursor(a.next()?)?;
    let ScanOpts {
        pattern,
        count,
        type_filter,
        ..
    } = ScanOpts::parse(&mut a, ScanKind::Keys)?;

    let (srv, db, now) = (ctx.srv, ctx.client.db, ctx.now_ms);
    // Bound the work of one call as Redis does (at most ~10 buckets per requested element).
    let max_steps = count.saturating_mul(10);
    let (mut shard_idx, mut tc) = split_cursor(cursor);
    let mut visited: u64 = 0;
    let mut steps: u64 = 0;
    let mut body = Vec::new();
    let mut n = 0usize;
    let mut expired: Vec<Vec<u8>> = Vec::new();
    let next = loop {
        {
            let mut shard = srv.keyspace.lock_shard(shard_idx);
            let table = shard.db(db);
            if table.is_empty() {
                tc = 0;
            } else {
                let mut r = Reply::new(&mut body, ctx.client.resp3);
                loop {
                    tc = table.scan(tc, |e| {
                        visited += 1;
                        if e.is_expired(now) {
                            expired.push(e.key().to_vec());
                            return;
                        }
                        if let Some(p) = pattern {
                            if !glob::matches(p, e.key(), false) {
                                return;
                            }
                        }
                        if let Some(t) = type_filter {
                            if !t.eq_ignore_ascii_case(type_name(e).as_bytes()) {
                                return;
                            }
                        }
                        r.bulk(e.key());
                        n += 1;
                    });
                    steps += 1;
                    if tc == 0 || visited >= count || steps >= max_steps {
                        break;
                    }
                }
                if !expired.is_empty() {
                    let t = shard.db_mut(db);
                    for k in expired.drain(..) {
                        if t.remove(&k).is_some() {
                            ctx.count_expired(1);
                        }
                    }
                }
            }
        }
        if tc == 0 {
            shard_idx += 1;
            if shard_idx == NUM_SHARDS {
                break 0;
            }
        }
        if visited >= count || steps >= max_steps {
            break join_cursor(shard_idx, tc);
        }
    };
    let mut r = ctx.reply();
    r.array(2);
    r.bulk(itoa::Buffer::new().format(next).as_bytes());
    r.array(n);
    r.raw(&body);
    Ok(())
}

fn random_u64() -> u64 {
    rand::random()
}

fn randomkey(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let (srv, db, now) = (ctx.srv, ctx.client.db, ctx.now_ms);
    let found: Option<Vec<u8>> = 'attempt: loop {
        // Sample shards at random (uniform over the non-empty ones); fall back to a sweep from a random start
        // so that a sparse database still finds its keys. An expired key found on the way is deleted and the
        // draw repeated, as Redis does.
        let start = random_u64() as usize;
        let order = (0..64)
            .map(|_| random_u64() as usize % NUM_SHARDS)
            .chain((0..NUM_SHARDS).map(|k| (start.wrapping_add(k)) % NUM_SHARDS));
        for idx in order {
            let mut shard = srv.keyspace.lock_shard(idx);
            let Some(e) = shard.db(db).random_entry(random_u64) else {
                continue;
            };
            if !e.is_expired(now) {
                break 'attempt Some(e.key().to_vec());
            }
            let k = e.key().to_vec();
            shard.db_mut(db).remove(&k);
            ctx.count_expired(1);
            continue 'attempt;
        }
        break None;
    };
    match found {
        Some(k) => ctx.reply().bulk(&k),
        None => ctx.reply().null(),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// OBJECT
// ---------------------------------------------------------------------------------------------------------

/// OBJECT ENCODING of a string value, as Redis encodes a string given to SET: `int` for the canonical text of
/// a 64-bit integer, `embstr` up to 44 bytes, else `raw`.
pub fn string_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && num::parse_i64(s).is_some() {
        "int"
    } else if s.len() <= EMBSTR_LIMIT {
        "embstr"
    } else {
        "raw"
    }
}

fn encoding_of(e: &Entry) -> &'static str {
    match e.value() {
        ValueRef::Str(_) if e.is_raw() => "raw",
        ValueRef::Str(s) if e.is_not_int() => {
            if s.len() <= crate::keyspace::entry::EMBSTR_LIMIT {
                "embstr"
            } else {
                "raw"
            }
        }
        ValueRef::Str(s) => string_encoding(s),
        ValueRef::Other(v) => value_encoding(v),
    }
}

fn value_encoding(v: &Value) -> &'static str {
    match v {
        Value::Str(s) => string_encoding(s),
        other => other.collection_encoding(),
    }
}

fn lfu_policy(ctx: &Ctx<'_>) -> bool {
    ctx.srv.config.read().maxmemory_policy.ends_with("-lfu")
}

/// Look up OBJECT's key (after the subcommand; no access-clock update); a missing key is a null reply.
fn object_lookup<T>(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    f: impl FnOnce(&Entry) -> T,
) -> Result<Option<T>, CmdError> {
    let key = Argv::at(args, 2).next()?;
    let mut shard = ctx.srv.keyspace.lock_key(key);
    let v = peek(ctx, &mut shard, key).map(|e| f(e));
    drop(shard);
    if v.is_none() {
        ctx.reply().null();
    }
    Ok(v)
}

fn object_encoding(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if let Some(enc) = object_lookup(ctx, args, encoding_of)? {
        ctx.reply().bulk(enc.as_bytes());
    }
    Ok(())
}

fn object_refcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(int) = object_lookup(ctx, args, |e| e.as_str().and_then(num::parse_i64))? else {
        return Ok(());
    };
    // Redis shares the integers 0..9999 unless maxmemory evicts by LRU/LFU.
    let sharing = {
        let cfg = ctx.srv.config.read();
        !(cfg.maxmemory != 0
            && (cfg.maxmemory_policy.ends_with("-lru") || cfg.maxmemory_policy.ends_with("-lfu")))
    };
    let shared = sharing && int.is_some_and(|v| (0..SHARED_INTEGERS).contains(&v));
    ctx.reply().int(if shared { SHARED_REFCOUNT } else { 1 });
    Ok(())
}

fn object_idletime(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(lru) = object_lookup(ctx, args, |e| e.lru())? else {
        return Ok(());
    };
    if lfu_policy(ctx) {
        return Err(LFU_SELECTED.into());
    }
    let idle = crate::keyspace::entry::lru_idle_secs(ctx.lru_clock(), lru);
    ctx.reply().int(i64::from(idle));
    Ok(())
}

/// Entries keep one access clock, not Redis's LFU counter, so FREQ reports what Redis's counter would read for a
/// key never accessed since it was written: the initial value 5, decayed by one per idle minute.
fn object_freq(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(lru) = object_lookup(ctx, args, |e| e.lru())? else {
        return Ok(());
    };
    if !lfu_policy(ctx) {
        return Err(LFU_NOT_SELECTED.into());
    }
    const LFU_INIT_VAL: u32 = 5;
    let idle_minutes = crate::keyspace::entry::lru_idle_secs(ctx.lru_clock(), lru) / 60;
    ctx.reply()
        .int(i64::from(LFU_INIT_VAL.saturating_sub(idle_minutes)));
    Ok(())
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

fn object_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let mut r = ctx.reply();
    r.array(OBJECT_HELP.len());
    for line in OBJECT_HELP {
        r.simple(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_like_strtoul() {
        assert_eq!(super::parse::cursor(b"0").ok(), Some(0));
        assert_eq!(super::parse::cursor(b"").ok(), Some(0));
        assert_eq!(super::parse::cursor(b"+12").ok(), Some(12));
        assert_eq!(super::parse::cursor(b"-1").ok(), Some(u64::MAX));
        assert_eq!(
            super::parse::cursor(b"18446744073709551615").ok(),
            Some(u64::MAX)
        );
        assert_eq!(super::parse::cursor(b"18446744073709551616").ok(), None);
        assert_eq!(super::parse::cursor(b" 0").ok(), None);
        assert_eq!(super::parse::cursor(b"0 ").ok(), None);
        assert_eq!(super::parse::cursor(b"0x1").ok(), None);
        assert_eq!(super::parse::cursor(b"-").ok(), None);
        assert_eq!(super::parse::cursor(b"abc").ok(), None);
    }

    #[test]
    fn cursor_round_trip() {
        for shard in [0, 1, 17, NUM_SHARDS - 1] {
            for tc in [0u64, 1, 5, 1 << 40] {
                assert_eq!(split_cursor(join_cursor(shard, tc)), (shard, tc));
            }
        }
    }

    #[test]
    fn string_encodings() {
        assert_eq!(string_encoding(b"123"), "int");
        assert_eq!(string_encoding(b"-1"), "int");
        assert_eq!(string_encoding(b"9223372036854775807"), "int");
        assert_eq!(string_encoding(b"-9223372036854775808"), "int");
        assert_eq!(string_encoding(b"9223372036854775808"), "embstr");
        assert_eq!(string_encoding(b"12345678901234567890"), "embstr");
        assert_eq!(string_encoding(b"01"), "embstr");
        assert_eq!(string_encoding(b"+1"), "embstr");
        assert_eq!(string_encoding(b" 1"), "embstr");
        assert_eq!(string_encoding(b""), "embstr");
        assert_eq!(string_encoding(&[b'a'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'a'; 45]), "raw");
    }

    fn cond(opts: &[&str]) -> Result<Cond, CmdError> {
        let buf: Vec<u8> = opts.concat().into_bytes();
        let mut spans = Vec::new();
        let mut at = 0;
        for o in opts {
            spans.push((at, at + o.len()));
            at += o.len();
        }
        Cond::parse_expire(&mut Argv::at(Args::from_parts(&buf, &spans), 0))
    }

    #[test]
    fn expire_options() {
        assert_eq!(cond(&[]).unwrap(), Cond::default());
        assert!(cond(&["nx", "XX"])
            .unwrap_err()
            .msg()
            .starts_with("ERR NX and XX, GT or LT"));
        assert!(cond(&["nx", "gt"]).is_err());
        assert!(cond(&["nx", "lt"]).is_err());
        assert_eq!(
            cond(&["gt", "lt"]).unwrap_err().msg(),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            cond(&["foo"]).unwrap_err().msg(),
            "ERR Unsupported option foo"
        );
        let c = cond(&["xx", "gt"]).unwrap();
        assert!(c.xx && c.gt);
        assert!(cond(&["nx", "nx"]).unwrap().nx);
    }

    #[test]
    fn expire_conditions() {
        let nx = Cond {
            nx: true,
            ..Default::default()
        };
        let xx = Cond {
            xx: true,
            ..Default::default()
        };
        let gt = Cond {
            gt: true,
            ..Default::default()
        };
        let lt = Cond {
            lt: true,
            ..Default::default()
        };
        assert!(nx.allows(None, 5));
        assert!(!nx.allows(Some(5), 5));
        assert!(!xx.allows(None, 5));
        assert!(xx.allows(Some(1), 5));
        assert!(!gt.allows(None, 5));
        assert!(gt.allows(Some(4), 5));
        assert!(!gt.allows(Some(5), 5));
        assert!(lt.allows(None, 5));
        assert!(lt.allows(Some(6), 5));
        assert!(!lt.allows(Some(5), 5));
    }

    #[test]
    fn expire_overflow() {
        let e = |a: &str, s, rel| absolute_expire(a.as_bytes(), s, 1_000, rel, "expire");
        assert_eq!(e("10", true, true).unwrap(), 11_000);
        assert_eq!(e("10", false, true).unwrap(), 1_010);
        assert_eq!(e("-5", false, false).unwrap(), -5);
        assert!(e("9223372036854775807", true, true).is_err());
        assert!(e("9223372036854775807", false, true).is_err());
        assert!(e("9223372036854775807", false, false).is_ok());
        assert!(e("-9223372036854775808", true, false).is_err());
        assert!(e("-9223372036854775808", false, true).is_ok());
        assert_eq!(e("abc", true, true).unwrap_err().msg(), err::NOT_INTEGER);
        assert_eq!(
            e("9223372036854775807", true, true).unwrap_err().msg(),
            "ERR invalid expire time in 'expire' command"
        );
    }

    #[test]
    fn ttl_rounding() {
        assert_eq!(ttl_value(None, 0, false, false), -1);
        assert_eq!(ttl_value(Some(10_499), 0, false, false), 10);
        assert_eq!(ttl_value(Some(10_500), 0, false, false), 11);
        assert_eq!(ttl_value(Some(10_500), 0, true, false), 10_500);
        assert_eq!(ttl_value(Some(5), 10, true, false), 0);
        assert_eq!(
            ttl_value(Some(99_999_999_999_700), 0, false, true),
            100_000_000_000
        );
        assert_eq!(
            ttl_value(Some(99_999_999_999_700), 5, true, true),
            99_999_999_999_700
        );
    }
}
