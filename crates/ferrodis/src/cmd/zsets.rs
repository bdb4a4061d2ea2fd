//! Sorted-set commands: ZADD ZINCRBY ZSCORE ZMSCORE ZCARD ZCOUNT ZLEXCOUNT ZRANK ZREVRANK ZRANGE ZRANGESTORE
//! ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZREVRANGE ZREM ZREMRANGEBYRANK ZREMRANGEBYSCORE
//! ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZMPOP ZRANDMEMBER ZUNION ZINTER ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE
//! ZINTERCARD ZSCAN.
//!
//! The blocking forms (BZPOPMIN, BZPOPMAX, BZMPOP) build on [`pop_locked`], [`reply_pop`] and
//! [`reply_mpop`].

use super::argv::{Argv, ScanKind, ScanOpts};
use super::keys::Cond;
use super::spec::{self, ACCESS, DELETE, OW, RO, RW, UPDATE};
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::cmd::acl;
use crate::glob;
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::Shard;
use crate::types::zset::{AddFlags, AddOutcome, LexRange, ScoreRange, ZLimits, ZSet};
use crate::types::Value;
use ferrodis_protocol::{Args, Reply};
use std::collections::HashMap;

/// Elements copied out of a sorted set: (member, score).
pub type Elems = Vec<(Vec<u8>, f64)>;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "zadd",
        arity: -4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: zadd,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
        complexity: "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        syntax: "key condition:[NX | XX]@3.0.2 comparison:[GT | LT]@6.2.0 [CH=change@3.0.2] [INCR=increment@3.0.2] data:<score:double member> ...",
        history: &[
            ("2.4.0", "Accepts multiple elements."),
            ("3.0.2", "Added the `XX`, `NX`, `CH` and `INCR` options."),
            ("6.2.0", "Added the `GT` and `LT` options."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "zincrby",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: zincrby,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Increments the score of a member in a sorted set.",
        complexity: "O(log(N)) where N is the number of elements in the sorted set.",
        syntax: "key increment:integer member",
        ..Command::DEFAULT
    },
    Command {
        name: "zscore",
        arity: 3,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zscore,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Returns the score of a member in a sorted set.",
        complexity: "O(1)",
        syntax: "key member",
        ..Command::DEFAULT
    },
    Command {
        name: "zmscore",
        arity: -3,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zmscore,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Returns the score of one or more members in a sorted set.",
        complexity: "O(N) where N is the number of members being requested.",
        syntax: "key member ...",
        ..Command::DEFAULT
    },
    Command {
        name: "zcard",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: zcard,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Returns the number of members in a sorted set.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "zcount",
        arity: 4,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zcount,
        group: "sorted-set",
        since: "2.0.0",
        summary: "Returns the count of members in a sorted set that have scores within a range.",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        syntax: "key min:double max:double",
        ..Command::DEFAULT
    },
    Command {
        name: "zlexcount",
        arity: 4,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zlexcount,
        group: "sorted-set",
        since: "2.8.9",
        summary: "Returns the number of members in a sorted set within a lexicographical range.",
        complexity: "O(log(N)) with N being the number of elements in the sorted set.",
        syntax: "key min max",
        ..Command::DEFAULT
    },
    Command {
        name: "zrank",
        arity: -3,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrank,
        group: "sorted-set",
        since: "2.0.0",
        summary: "Returns the index of a member in a sorted set ordered by ascending scores.",
        complexity: "O(log(N))",
        syntax: "key member [WITHSCORE]",
        history: &[
            ("7.2.0", "Added the optional `WITHSCORE` argument."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "zrevrank",
        arity: -3,
        flags: READONLY | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrevrank,
        group: "sorted-set",
        since: "2.0.0",
        summary: "Returns the index of a member in a sorted set ordered by descending scores.",
        complexity: "O(log(N))",
        syntax: "key member [WITHSCORE]",
        history: &[
            ("7.2.0", "Added the optional `WITHSCORE` argument."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "zrange",
        arity: -4,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrange,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Returns members in a sorted set within a range of indexes.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        syntax: "key start stop sortby:[BYSCORE | BYLEX]@6.2.0 [REV@6.2.0] [LIMIT <offset:integer count:integer>@6.2.0] [WITHSCORES]",
        history: &[
            ("6.2.0", "Added the `REV`, `BYSCORE`, `BYLEX` and `LIMIT` options."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "zrangestore",
        arity: -5,
        flags: WRITE | DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).range(0, 1, 0).flags(RO | ACCESS),
        ],
        handler: zrangestore,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Stores a range of members from sorted set in a key.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
        syntax: "dst:key src:key min max sortby:[BYSCORE | BYLEX] [REV] [LIMIT <offset:integer count:integer>]",
        ..Command::DEFAULT
    },
    Command {
        name: "zrangebyscore",
        arity: -4,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrangebyscore,
        group: "sorted-set",
        since: "1.0.5",
        summary: "Returns members in a sorted set within a range of scores.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        syntax: "key min:double max:double [WITHSCORES@2.0.0] [LIMIT <offset:integer count:integer>]",
        history: &[
            ("2.0.0", "Added the `WITHSCORES` modifier."),
        ],
        deprecated_since: "6.2.0",
        replaced_by: "`ZRANGE` with the `BYSCORE` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "zrevrangebyscore",
        arity: -4,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrevrangebyscore,
        group: "sorted-set",
        since: "2.2.0",
        summary: "Returns members in a sorted set within a range of scores in reverse order.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        syntax: "key max:double min:double [WITHSCORES] [LIMIT <offset:integer count:integer>]",
        history: &[
            ("2.1.6", "`min` and `max` can be exclusive."),
        ],
        deprecated_since: "6.2.0",
        replaced_by: "`ZRANGE` with the `REV` and `BYSCORE` arguments",
        ..Command::DEFAULT
    },
    Command {
        name: "zrangebylex",
        arity: -4,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrangebylex,
        group: "sorted-set",
        since: "2.8.9",
        summary: "Returns members in a sorted set within a lexicographical range.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        syntax: "key min max [LIMIT <offset:integer count:integer>]",
        deprecated_since: "6.2.0",
        replaced_by: "`ZRANGE` with the `BYLEX` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "zrevrangebylex",
        arity: -4,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrevrangebylex,
        group: "sorted-set",
        since: "2.8.9",
        summary: "Returns members in a sorted set within a lexicographical range in reverse order.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).",
        syntax: "key max min [LIMIT <offset:integer count:integer>]",
        deprecated_since: "6.2.0",
        replaced_by: "`ZRANGE` with the `REV` and `BYLEX` arguments",
        ..Command::DEFAULT
    },
    Command {
        name: "zrevrange",
        arity: -4,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrevrange,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Returns members in a sorted set within a range of indexes in reverse order.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
        syntax: "key start:integer stop:integer [WITHSCORES]",
        deprecated_since: "6.2.0",
        replaced_by: "`ZRANGE` with the `REV` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "zrem",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: zrem,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
        complexity: "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
        syntax: "key member ...",
        history: &[
            ("2.4.0", "Accepts multiple elements."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "zremrangebyrank",
        arity: 4,
        flags: WRITE,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: zremrangebyrank,
        group: "sorted-set",
        since: "2.0.0",
        summary: "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        syntax: "key start:integer stop:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "zremrangebyscore",
        arity: 4,
        flags: WRITE,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: zremrangebyscore,
        group: "sorted-set",
        since: "1.2.0",
        summary: "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        syntax: "key min:double max:double",
        ..Command::DEFAULT
    },
    Command {
        name: "zremrangebylex",
        arity: 4,
        flags: WRITE,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: zremrangebylex,
        group: "sorted-set",
        since: "2.8.9",
        summary: "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
        complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.",
        syntax: "key min max",
        ..Command::DEFAULT
    },
    Command {
        name: "zpopmin",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: zpopmin,
        group: "sorted-set",
        since: "5.0.0",
        summary: "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
        syntax: "key [count:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "zpopmax",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: zpopmax,
        group: "sorted-set",
        since: "5.0.0",
        summary: "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
        complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.",
        syntax: "key [count:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "zmpop",
        arity: -4,
        flags: WRITE,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RW | ACCESS | DELETE)],
        handler: zmpop,
        group: "sorted-set",
        since: "7.0.0",
        summary: "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
        complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.",
        syntax: "numkeys:integer key ... where:<MIN | MAX> [COUNT count:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "zrandmember",
        arity: -2,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zrandmember,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Returns one or more random members from a sorted set.",
        complexity: "O(N) where N is the number of members returned",
        syntax: "key options:[count:integer [WITHSCORES]]",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "zunion",
        arity: -3,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RO | ACCESS)],
        handler: zunion,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Returns the union of multiple sorted sets.",
        complexity: "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
        syntax: "numkeys:integer key ... [WEIGHTS weight:integer ...] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
        ..Command::DEFAULT
    },
    Command {
        name: "zinter",
        arity: -3,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RO | ACCESS)],
        handler: zinter,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Returns the intersect of multiple sorted sets.",
        complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
        syntax: "numkeys:integer key ... [WEIGHTS weight:integer ...] [AGGREGATE <SUM | MIN | MAX>] [WITHSCORES]",
        ..Command::DEFAULT
    },
    Command {
        name: "zdiff",
        arity: -3,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RO | ACCESS)],
        handler: zdiff,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Returns the difference between multiple sorted sets.",
        complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
        syntax: "numkeys:integer key ... [WITHSCORES]",
        ..Command::DEFAULT
    },
    Command {
        name: "zunionstore",
        arity: -4,
        flags: WRITE | DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).keynum(0, 1, 1).flags(RO | ACCESS),
        ],
        handler: zunionstore,
        group: "sorted-set",
        since: "2.0.0",
        summary: "Stores the union of multiple sorted sets in a key.",
        complexity: "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
        syntax: "destination:key numkeys:integer key ... [WEIGHTS weight:integer ...] [AGGREGATE <SUM | MIN | MAX>]",
        ..Command::DEFAULT
    },
    Command {
        name: "zinterstore",
        arity: -4,
        flags: WRITE | DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).keynum(0, 1, 1).flags(RO | ACCESS),
        ],
        handler: zinterstore,
        group: "sorted-set",
        since: "2.0.0",
        summary: "Stores the intersect of multiple sorted sets in a key.",
        complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
        syntax: "destination:key numkeys:integer key ... [WEIGHTS weight:integer ...] [AGGREGATE <SUM | MIN | MAX>]",
        ..Command::DEFAULT
    },
    Command {
        name: "zdiffstore",
        arity: -4,
        flags: WRITE | DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).keynum(0, 1, 1).flags(RO | ACCESS),
        ],
        handler: zdiffstore,
        group: "sorted-set",
        since: "6.2.0",
        summary: "Stores the difference of multiple sorted sets in a key.",
        complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
        syntax: "destination:key numkeys:integer key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "zintercard",
        arity: -3,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RO | ACCESS)],
        handler: zintercard,
        group: "sorted-set",
        since: "7.0.0",
        summary: "Returns the number of members of the intersect of multiple sorted sets.",
        complexity: "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
        syntax: "numkeys:integer key ... [LIMIT limit:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "zscan",
        arity: -3,
        flags: READONLY,
        acl: acl::SORTEDSET,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: zscan,
        group: "sorted-set",
        since: "2.8.0",
        summary: "Iterates over members and scores of a sorted set.",
        complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        syntax: "key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
];

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

fn limits(ctx: &Ctx<'_>) -> ZLimits {
    let l = ctx.srv.encoding.get();
    ZLimits {
        max_entries: l.zset_max_listpack_entries,
        max_value: l.zset_max_listpack_value,
    }
}

/// The sorted set in an entry, or WRONGTYPE.
pub fn as_zset(e: &Entry) -> Result<&ZSet, CmdError> {
    match e.value() {
        ValueRef::Other(Value::ZSet(z)) => Ok(z),
        _ => Err(err::WRONGTYPE.into()),
    }
}

/// The sorted set in an entry, mutably, or WRONGTYPE.
pub fn as_zset_mut(e: &mut Entry) -> Result<&mut ZSet, CmdError> {
    match e.value_mut() {
        Some(Value::ZSet(z)) => Ok(z),
        _ => Err(err::WRONGTYPE.into()),
    }
}

/// Read-lookup a sorted set: None when the key is missing.
fn read_zset<'s>(
    ctx: &Ctx<'_>,
    shard: &'s mut Shard,
    key: &[u8],
) -> Result<Option<&'s ZSet>, CmdError> {
    match ctx.lookup(shard, key) {
        None => Ok(None),
        Some(e) => as_zset(e).map(Some),
    }
}

/// Delete `key` if its sorted set became empty (emitting "del").
fn delete_if_empty(ctx: &Ctx<'_>, shard: &mut Shard, key: &[u8]) {
    let db = ctx.db();
    let empty = shard
        .db(db)
        .find(key)
        .is_some_and(|e| matches!(e.value(), ValueRef::Other(Value::ZSet(z)) if z.is_empty()));
    if empty {
        shard.db_mut(db).remove(key);
        ctx.modified(shard, key, "del");
    }
}

/// Store `z` at `key` as SET does (overwriting any type, clearing the TTL), or delete `key` when `z` is empty.
/// Returns the stored length.
fn store_result(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    z: ZSet,
    event: &'static str,
) -> usize {
    let db = ctx.db();
    let n = z.len();
    // Drop an expired key first so the deletion notice below is only sent for live keys.
    let existed = ctx.lookup_write(shard, key).is_some();
    if n > 0 {
        let e = Entry::new(key, Value::ZSet(Box::new(z)), ctx.lru_clock());
        shard.db_mut(db).upsert(e);
        ctx.modified(shard, key, event);
    } else if existed {
        shard.db_mut(db).remove(key);
        ctx.modified(shard, key, "del");
    }
    n
}

/// One element of a reply: member, plus its score when `withscores` (a [member, score] pair in RESP3).
#[inline]
fn emit(r: &mut Reply<'_>, m: &[u8], s: f64, withscores: bool) {
    if withscores && r.resp3 {
        r.array(2);
    }
    r.bulk(m);
    if withscores {
        r.double(s);
    }
}

/// Array header for `n` elements.
#[inline]
fn emit_header(r: &mut Reply<'_>, n: usize, withscores: bool) {
    r.array(if withscores && !r.resp3 { n * 2 } else { n });
}

fn parse_long(b: &[u8]) -> Result<i64, CmdError> {
    parse::int(b)
}

/// `LIMIT offset count`, as SORT and the ZRANGE family read it: when `word` is LIMIT and two arguments
/// follow it, reads them as integers (the offset first, so its error wins). `Ok(None)`, with nothing read,
/// otherwise: the callers then treat `word` as an unknown option.
pub(crate) fn limit_option(word: &[u8], a: &mut Argv<'_>) -> Result<Option<(i64, i64)>, CmdError> {
    if parse::eq(word, "limit") && a.remaining() >= 2 {
        let offset = a.int()?;
        let count = a.int()?;
        Ok(Some((offset, count)))
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------------------
// ZADD / ZINCRBY

fn zadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut Ctx<'_>, args: Args<'_>, incr_cmd: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    // The option words up to the first that is not one (ZINCRBY reads them too, as Redis does).
    let mut cond = Cond::default();
    let (mut incr, mut ch) = (incr_cmd, false);
    while let Some(word) = a.peek() {
        if cond.accept(word) {
        } else if parse::eq(word, "ch") {
            ch = true;
        } else if parse::eq(word, "incr") {
            incr = true;
        } else {
            break;
        }
        a.opt();
    }
    let f = AddFlags {
        nx: cond.nx,
        xx: cond.xx,
        gt: cond.gt,
        lt: cond.lt,
        incr,
    };
    // score member pairs
    let pairs = a.rest();
    let elements = pairs.len();
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(err::SYNTAX.into());
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return Err("ERR XX and NX options at the same time are not compatible".into());
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err("ERR GT, LT, and/or NX options at the same time are not compatible".into());
    }
    if f.incr && elements > 1 {
        return Err("ERR INCR option supports a single increment-element pair".into());
    }
    let mut scores = Vec::with_capacity(elements);
    for score in pairs.iter().step_by(2) {
        scores.push(parse::float(score)?);
    }
    let lim = limits(ctx);
    let db = ctx.db();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let created = match ctx.lookup_write(&mut shard, key) {
        Some(e) => {
            as_zset_mut(e)?.maybe_convert(elements, &lim);
            false
        }
        None => {
            if f.xx {
                drop(shard);
                if f.incr {
                    ctx.reply().null();
                } else {
                    ctx.reply().int(0);
                }
                return Ok(());
            }
            let first_member = pairs.try_get(1).map_or(0, <[u8]>::len);
            let z = ZSet::with_hint(elements, first_member, &lim);
            let e = Entry::new(key, Value::ZSet(Box::new(z)), ctx.lru_clock());
            shard.db_mut(db).insert_new(e);
            true
        }
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0);
    let mut last = 0.0;
    let mut nan = false;
    {
        let e = shard
            .db_mut(db)
            .find_mut(key)
            .ok_or_else(|| CmdError::from(err::WRONGTYPE))?;
        let z = as_zset_mut(e)?;
        for (m, &score) in pairs.iter().skip(1).step_by(2).zip(&scores) {
            match z.add(m, score, f, &lim) {
                Err(_) => {
                    nan = true;
                    break;
                }
                Ok((o, s)) => {
                    match o {
                        AddOutcome::Added => added += 1,
                        AddOutcome::Updated => updated += 1,
                        AddOutcome::Unchanged | AddOutcome::Skipped => {}
                    }
                    if o != AddOutcome::Skipped {
                        processed += 1;
                    }
                    last = s;
                }
            }
        }
    }
    if added > 0 || updated > 0 {
        ctx.modified(&mut shard, key, if f.incr { "zincr" } else { "zadd" });
    }
    if created {
        delete_if_empty(ctx, &mut shard, key);
    }
    drop(shard);
    if nan {
        return Err("ERR resulting score is not a number (NaN)".into());
    }
    if f.incr {
        if processed > 0 {
            ctx.reply().double(last);
        } else {
            ctx.reply().null();
        }
    } else {
        ctx.reply().int(if ch { added + updated } else { added });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Point reads

fn zscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, member) = (a.next()?, a.next()?);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let s = read_zset(ctx, &mut shard, key)?.and_then(|z| z.score(member));
    drop(shard);
    match s {
        Some(s) => ctx.reply().double(s),
        None => ctx.reply().null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let members = a.rest();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let z = read_zset(ctx, &mut shard, key)?;
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    r.array(members.len());
    for m in members.iter() {
        match z.and_then(|z| z.score(m)) {
            Some(s) => r.double(s),
            None => r.null(),
        }
    }
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = read_zset(ctx, &mut shard, key)?.map_or(0, |z| z.len());
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let range = ScoreRange::parse(a.next()?, a.next()?).ok_or(NOT_FLOAT_RANGE)?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = read_zset(ctx, &mut shard, key)?.map_or(0, |z| {
        let (lo, hi) = z.score_ranks(&range);
        hi - lo
    });
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let range = LexRange::parse(a.next()?, a.next()?).ok_or(NOT_LEX_RANGE)?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = read_zset(ctx, &mut shard, key)?.map_or(0, |z| {
        let (lo, hi) = z.lex_ranks(&range);
        hi - lo
    });
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zrank_generic(ctx, args, false, "zrank")
}

fn zrevrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zrank_generic(ctx, args, true, "zrevrank")
}

fn zrank_generic(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool, name: &str) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, member) = (a.next()?, a.next()?);
    if a.remaining() > 1 {
        return Err(format!("ERR wrong number of arguments for '{name}' command").into());
    }
    let withscore = match a.opt() {
        None => false,
        Some(w) if parse::eq(w, "withscore") => true,
        Some(_) => return Err(err::SYNTAX.into()),
    };
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let found = read_zset(ctx, &mut shard, key)?.and_then(|z| {
        z.rank(member)
            .map(|(r, s)| (if rev { z.len() - 1 - r } else { r }, s))
    });
    drop(shard);
    let mut r = ctx.reply();
    match (found, withscore) {
        (Some((rank, _)), false) => r.int(rank as i64),
        (Some((rank, s)), true) => {
            r.array(2);
            r.int(rank as i64);
            r.double(s);
        }
        (None, false) => r.null(),
        (None, true) => r.null_array(),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

enum Spec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

impl Spec {
    /// The range `min max` of a query of type `rt` (Auto and Rank: ranks), with Redis's errors.
    fn parse(rt: RangeType, min: &[u8], max: &[u8]) -> Result<Spec, CmdError> {
        Ok(match rt {
            RangeType::Score => Spec::Score(ScoreRange::parse(min, max).ok_or(NOT_FLOAT_RANGE)?),
            RangeType::Lex => Spec::Lex(LexRange::parse(min, max).ok_or(NOT_LEX_RANGE)?),
            RangeType::Auto | RangeType::Rank => Spec::Rank(parse_long(min)?, parse_long(max)?),
        })
    }
}

struct RangeQuery {
    spec: Spec,
    rev: bool,
    withscores: bool,
    offset: i64,
    limit: i64,
}

/// Parse the rest of a ZRANGE-family command, `a` placed after its source key: min and max, then the
/// options. Errors come in Redis's order: options first, then their combinations, then the range.
fn parse_range(
    a: &mut Argv<'_>,
    store: bool,
    mut rt: RangeType,
    mut dir: Direction,
) -> Result<RangeQuery, CmdError> {
    let (min, max) = (a.next()?, a.next()?);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    while let Some(word) = a.opt() {
        if !store && parse::eq(word, "withscores") {
            withscores = true;
        } else if let Some((o, l)) = limit_option(word, a)? {
            (offset, limit) = (o, l);
        } else if dir == Direction::Auto && parse::eq(word, "rev") {
            dir = Direction::Reverse;
        } else if rt == RangeType::Auto && parse::eq(word, "bylex") {
            rt = RangeType::Lex;
        } else if rt == RangeType::Auto && parse::eq(word, "byscore") {
            rt = RangeType::Score;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    if dir == Direction::Auto {
        dir = Direction::Forward;
    }
    if rt == RangeType::Auto {
        rt = RangeType::Rank;
    }
    if limit != -1 && rt == RangeType::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
                .into(),
        );
    }
    if withscores && rt == RangeType::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX".into());
    }
    let rev = dir == Direction::Reverse;
    let spec = if rev && rt != RangeType::Rank {
        Spec::parse(rt, max, min)?
    } else {
        Spec::parse(rt, min, max)?
    };
    Ok(RangeQuery {
        spec,
        rev,
        withscores,
        offset,
        limit,
    })
}

/// The ascending ranks [lo, hi) selected by a query, and whether to visit them in reverse.
fn query_ranks(z: &ZSet, q: &RangeQuery) -> (usize, usize) {
    let len = z.len() as i64;
    let (lo, hi) = match &q.spec {
        Spec::Rank(start, end) => {
            let (mut start, mut end) = (*start, *end);
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            if start < 0 {
                start = 0;
            }
            if start > end || start >= len {
                return (0, 0);
            }
            if end >= len {
                end = len - 1;
            }
            if q.rev {
                ((len - 1 - end) as usize, (len - start) as usize)
            } else {
                (start as usize, end as usize + 1)
            }
        }
        Spec::Score(r) => z.score_ranks(r),
        Spec::Lex(r) => z.lex_ranks(r),
    };
    if matches!(q.spec, Spec::Rank(..)) {
        return (lo, hi);
    }
    // LIMIT offset count (negative offset: nothing; negative count: no limit).
    if q.offset < 0 {
        return (0, 0);
    }
    let n = hi - lo;
    let skip = (q.offset as u64).min(n as u64) as usize;
    let take = if q.limit < 0 {
        n - skip
    } else {
        (q.limit as u64).min((n - skip) as u64) as usize
    };
    if q.rev {
        (hi - skip - take, hi - skip)
    } else {
        (lo + skip, lo + skip + take)
    }
}

fn range_generic(ctx: &mut Ctx<'_>, args: Args<'_>, rt: RangeType, dir: Direction) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let q = parse_range(&mut a, false, rt, dir)?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(z) = read_zset(ctx, &mut shard, key)? else {
        drop(shard);
        ctx.reply().array(0);
        return Ok(());
    };
    let (lo, hi) = query_ranks(z, &q);
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    emit_header(&mut r, hi - lo, q.withscores);
    z.for_range(lo, hi, q.rev, |m, s| emit(&mut r, m, s, q.withscores));
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_generic(ctx, args, RangeType::Auto, Direction::Auto)
}

fn zrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_generic(ctx, args, RangeType::Score, Direction::Forward)
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_generic(ctx, args, RangeType::Score, Direction::Reverse)
}

fn zrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_generic(ctx, args, RangeType::Lex, Direction::Forward)
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_generic(ctx, args, RangeType::Lex, Direction::Reverse)
}

fn zrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_generic(ctx, args, RangeType::Rank, Direction::Reverse)
}

fn zrangestore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (dst, src) = (a.next()?, a.next()?);
    let q = parse_range(&mut a, true, RangeType::Auto, Direction::Auto)?;
    let lim = limits(ctx);
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many([dst, src]);
    let picked: Vec<(Vec<u8>, f64)> = match read_zset(ctx, guard.shard(src), src)? {
        None => Vec::new(),
        Some(z) => {
            let (lo, hi) = query_ranks(z, &q);
            let mut v = Vec::with_capacity(hi - lo);
            z.for_range(lo, hi, q.rev, |m, s| v.push((m.to_vec(), s)));
            v
        }
    };
    // Redis 7.2 sizes the destination from the range's length, which a BYSCORE/BYLEX range does not know
    // in advance: it is then created with the skiplist encoding whatever its size.
    let lim = match q.spec {
        Spec::Rank(..) => lim,
        _ => ZLimits {
            max_entries: 0,
            ..lim
        },
    };
    let z = ZSet::from_pairs(picked.iter().map(|(m, s)| (m.as_slice(), *s)), &lim);
    let n = store_result(ctx, guard.shard(dst), dst, z, "zrangestore");
    drop(guard);
    ctx.reply().int(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Removal

fn zrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let mut n = 0;
    if let Some(e) = ctx.lookup_write(&mut shard, key) {
        let z = as_zset_mut(e)?;
        for m in a.rest().iter() {
            if z.remove(m).is_some() {
                n += 1;
                if z.is_empty() {
                    break;
                }
            }
        }
        if n > 0 {
            ctx.modified(&mut shard, key, "zrem");
            delete_if_empty(ctx, &mut shard, key);
        }
    }
    drop(shard);
    ctx.reply().int(n);
    Ok(())
}

fn remrange_generic(ctx: &mut Ctx<'_>, args: Args<'_>, kind: RangeType) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let spec = Spec::parse(kind, a.next()?, a.next()?)?;
    let event = match kind {
        RangeType::Score => "zremrangebyscore",
        RangeType::Lex => "zremrangebylex",
        _ => "zremrangebyrank",
    };
    let q = RangeQuery {
        spec,
        rev: false,
        withscores: false,
        offset: 0,
        limit: -1,
    };
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let mut n = 0;
    if let Some(e) = ctx.lookup_write(&mut shard, key) {
        let z = as_zset_mut(e)?;
        let (lo, hi) = query_ranks(z, &q);
        n = z.remove_ranks(lo, hi);
        if n > 0 {
            ctx.modified(&mut shard, key, event);
            delete_if_empty(ctx, &mut shard, key);
        }
    }
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange_generic(ctx, args, RangeType::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange_generic(ctx, args, RangeType::Score)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    remrange_generic(ctx, args, RangeType::Lex)
}

// ---------------------------------------------------------------------------------------------------------
// Pops (the core is shared with the blocking forms)

/// Pop up to `count` elements from the sorted set at `key` in a locked shard, deleting the key when it
/// becomes empty and signalling "zpopmin"/"zpopmax" (+ "del"). `Ok(None)` when the key does not exist;
/// WRONGTYPE for another type. `count` 0 pops nothing (but still checks the type).
pub fn pop_locked(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Option<Elems>, CmdError> {
    let Some(e) = ctx.lookup_write(shard, key) else {
        return Ok(None);
    };
    let z = as_zset_mut(e)?;
    let popped = z.pop(max, count);
    if !popped.is_empty() {
        ctx.modified(shard, key, if max { "zpopmax" } else { "zpopmin" });
        delete_if_empty(ctx, shard, key);
    }
    Ok(Some(popped))
}

/// ZPOPMIN/ZPOPMAX's reply: a flat [member, score, ...] array, or (RESP3, when a count was given) an array of
/// [member, score] pairs.
pub fn reply_pop(r: &mut Reply<'_>, elems: &[(Vec<u8>, f64)], count_given: bool) {
    let nested = r.resp3 && count_given;
    r.array(if nested { elems.len() } else { elems.len() * 2 });
    for (m, s) in elems {
        if nested {
            r.array(2);
        }
        r.bulk(m);
        r.double(*s);
    }
}

/// ZMPOP's reply: [key, [[member, score], ...]].
pub fn reply_mpop(r: &mut Reply<'_>, key: &[u8], elems: &[(Vec<u8>, f64)]) {
    r.array(2);
    r.bulk(key);
    r.array(elems.len());
    for (m, s) in elems {
        r.array(2);
        r.bulk(m);
        r.double(*s);
    }
}

fn zpop_generic(ctx: &mut Ctx<'_>, args: Args<'_>, max: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    if a.remaining() > 1 {
        return Err(err::SYNTAX.into());
    }
    let count_given = !a.is_done();
    let count = match a.opt() {
        Some(c) => parse::uint_or(c, "ERR value is out of range, must be positive")?,
        None => 1,
    };
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let popped = pop_locked(ctx, &mut shard, key, max, count)?;
    drop(shard);
    let mut r = ctx.reply();
    match popped {
        None => r.array(0),
        Some(v) => reply_pop(&mut r, &v, count_given),
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zpop_generic(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    zpop_generic(ctx, args, true)
}

fn zmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // LMPOP's parser, with MAX / MIN for LEFT / RIGHT.
    let p = super::lists::parse_mpop(&mut Argv::new(args), "max", "min")?;
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(p.keys.iter().copied());
    for &k in &p.keys {
        let shard = guard.shard(k);
        if let Some(v) = pop_locked(ctx, shard, k, p.first, p.count)? {
            drop(guard);
            reply_mpop(&mut ctx.reply(), k, &v);
            return Ok(());
        }
    }
    drop(guard);
    ctx.reply().null_array();
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// ZRANDMEMBER

fn zrandmember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let srv = ctx.srv;
    let Some(count) = a.opt() else {
        let mut shard = srv.keyspace.lock_key(key);
        let z = read_zset(ctx, &mut shard, key)?;
        let mut r = Reply::new(ctx.out, ctx.client.resp3);
        match z.and_then(|z| z.random(rand::random())) {
            Some((m, _)) => r.bulk(m),
            None => r.null(),
        }
        return Ok(());
    };
    let l = parse::int(count)?;
    if l == i64::MIN {
        return Err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                .into(),
        );
    }
    let withscores = match (a.opt(), a.is_done()) {
        (None, _) => false,
        (Some(w), true) if parse::eq(w, "withscores") => true,
        _ => return Err(err::SYNTAX.into()),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err("ERR value is out of range".into());
    }
    let mut shard = srv.keyspace.lock_key(key);
    let z = read_zset(ctx, &mut shard, key)?;
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    let Some(z) = z else {
        r.array(0);
        return Ok(());
    };
    if l == 0 {
        r.array(0);
        return Ok(());
    }
    let size = z.len();
    if l < 0 {
        let n = l.unsigned_abs() as usize;
        emit_header(&mut r, n, withscores);
        for _ in 0..n {
            if let Some((m, s)) = z.random(rand::random()) {
                emit(&mut r, m, s, withscores);
            }
        }
        return Ok(());
    }
    let n = l as usize;
    if n >= size {
        emit_header(&mut r, size, withscores);
        z.for_range(0, size, false, |m, s| emit(&mut r, m, s, withscores));
        return Ok(());
    }
    // Distinct sample of n ranks (Floyd's algorithm), then shuffled.
    let mut picked = std::collections::HashSet::with_capacity(n);
    let mut order = Vec::with_capacity(n);
    for j in size - n..size {
        let t = (rand::random::<u64>() % (j as u64 + 1)) as usize;
        let x = if picked.insert(t) {
            t
        } else {
            picked.insert(j);
            j
        };
        order.push(x);
    }
    for i in (1..order.len()).rev() {
        let k = (rand::random::<u64>() % (i as u64 + 1)) as usize;
        order.swap(i, k);
    }
    emit_header(&mut r, n, withscores);
    for rank in order {
        if let Some((m, s)) = z.get(rank) {
            emit(&mut r, m, s, withscores);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF (+STORE) / ZINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(a: Aggregate, target: &mut f64, v: f64) {
    match a {
        Aggregate::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *target {
                *target = v;
            }
        }
        Aggregate::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

/// One input: its elements (member -> score) or None for a missing key, and its weight.
struct Input {
    elems: Option<Vec<(Vec<u8>, f64)>>,
    weight: f64,
}

impl Input {
    fn len(&self) -> usize {
        self.elems.as_ref().map_or(0, |v| v.len())
    }
}

/// Read the elements of a sorted set (or a set, with score 1) for a set operation.
fn read_input(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    write: bool,
) -> Result<Option<Elems>, CmdError> {
    let e = if write {
        ctx.lookup_write(shard, key)
    } else {
        ctx.lookup(shard, key)
    };
    let Some(e) = e else { return Ok(None) };
    match e.value() {
        ValueRef::Other(Value::ZSet(z)) => Ok(Some(z.to_vec())),
        // A plain set is a valid input: every member scores 1 (WEIGHTS then apply as usual).
        ValueRef::Other(Value::Set(s)) => Ok(Some(s.iter().map(|m| (m.to_vec(), 1.0)).collect())),
        _ => Err(err::WRONGTYPE.into()),
    }
}

/// `[destination] numkeys key... [options]` of ZUNION, ZINTER, ZDIFF, their STORE forms (`store`: a
/// destination comes first) and ZINTERCARD (`cardinality_only`).
fn setop_generic(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    store: bool,
    op: SetOp,
    cardinality_only: bool,
    name: &str,
) -> CmdResult {
    let mut a = Argv::new(args);
    let dst = if store { Some(a.next()?) } else { None };
    let setnum = parse_long(a.next()?)?;
    if setnum < 1 {
        return Err(format!("ERR at least 1 input key is needed for '{name}' command").into());
    }
    if setnum as u64 > a.remaining() as u64 {
        return Err(err::SYNTAX.into());
    }
    let setnum = setnum as usize;
    let keys = a.take(setnum)?;
    let lim = limits(ctx);
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(keys.iter().chain(dst));
    let mut inputs = Vec::with_capacity(setnum);
    for k in keys.iter() {
        let elems = read_input(ctx, guard.shard(k), k, dst.is_some())?;
        inputs.push(Input { elems, weight: 1.0 });
    }
    // Options.
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    // Options (read once the inputs are, as Redis does: a WRONGTYPE input wins over a syntax error).
    while let Some(word) = a.opt() {
        if op != SetOp::Diff
            && !cardinality_only
            && a.remaining() >= setnum
            && parse::eq(word, "weights")
        {
            for inp in inputs.iter_mut() {
                inp.weight = ferrodis_protocol::num::parse_f64(a.next()?)
                    .ok_or(CmdError::from("ERR weight value is not a float"))?;
            }
        } else if op != SetOp::Diff
            && !cardinality_only
            && !a.is_done()
            && parse::eq(word, "aggregate")
        {
            let v = a.next()?;
            agg = if parse::eq(v, "sum") {
                Aggregate::Sum
            } else if parse::eq(v, "min") {
                Aggregate::Min
            } else if parse::eq(v, "max") {
                Aggregate::Max
            } else {
                return Err(err::SYNTAX.into());
            };
        } else if dst.is_none() && !cardinality_only && parse::eq(word, "withscores") {
            withscores = true;
        } else if cardinality_only && !a.is_done() && parse::eq(word, "limit") {
            limit = parse::uint_or(a.next()?, "ERR LIMIT can't be negative")?;
        } else {
            return Err(err::SYNTAX.into());
        }
    }

    // Compute.
    let result: Vec<(Vec<u8>, f64)> = match op {
        SetOp::Diff => {
            let first = inputs[0].elems.take().unwrap_or_default();
            let others: Vec<std::collections::HashSet<&[u8]>> = inputs[1..]
                .iter()
                .filter_map(|i| i.elems.as_ref())
                .map(|v| v.iter().map(|(m, _)| m.as_slice()).collect())
                .collect();
            first
                .into_iter()
                .filter(|(m, _)| !others.iter().any(|o| o.contains(m.as_slice())))
                .collect()
        }
        SetOp::Inter => {
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| inputs[i].len());
            if inputs[order[0]].len() == 0 {
                Vec::new()
            } else {
                let maps: Vec<HashMap<&[u8], f64>> = order[1..]
                    .iter()
                    .map(|&i| {
                        inputs[i]
                            .elems
                            .as_ref()
                            .map(|v| v.iter().map(|(m, s)| (m.as_slice(), *s)).collect())
                            .unwrap_or_default()
                    })
                    .collect();
                let first = &inputs[order[0]];
                let mut out = Vec::new();
                for (m, s) in first.elems.as_ref().into_iter().flatten() {
                    let mut score = first.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let mut ok = true;
                    for (k, map) in maps.iter().enumerate() {
                        match map.get(m.as_slice()) {
                            Some(&v) => {
                                let mut v = inputs[order[k + 1]].weight * v;
                                if v.is_nan() {
                                    v = 0.0;
                                }
                                aggregate(agg, &mut score, v);
                            }
                            None => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    if ok {
                        out.push((m.clone(), score));
                        if cardinality_only && limit > 0 && out.len() >= limit {
                            break;
                        }
                    }
                }
                out
            }
        }
        SetOp::Union => {
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| inputs[i].len());
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for &i in &order {
                let w = inputs[i].weight;
                for (m, s) in inputs[i].elems.as_ref().into_iter().flatten() {
                    let mut v = w * s;
                    if v.is_nan() {
                        v = 0.0;
                    }
                    match acc.get_mut(m.as_slice()) {
                        Some(t) => aggregate(agg, t, v),
                        None => {
                            acc.insert(m.clone(), v);
                        }
                    }
                }
            }
            acc.into_iter().collect()
        }
    };

    if cardinality_only {
        drop(guard);
        ctx.reply().int(result.len() as i64);
        return Ok(());
    }
    let z = ZSet::from_pairs(result.iter().map(|(m, s)| (m.as_slice(), *s)), &lim);
    if let Some(d) = dst {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        let n = store_result(ctx, guard.shard(d), d, z, event);
        drop(guard);
        ctx.reply().int(n as i64);
        return Ok(());
    }
    drop(guard);
    let mut r = ctx.reply();
    emit_header(&mut r, z.len(), withscores);
    z.for_range(0, z.len(), false, |m, s| emit(&mut r, m, s, withscores));
    Ok(())
}

fn zunion(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, false, SetOp::Union, false, "zunion")
}

fn zinter(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, false, SetOp::Inter, false, "zinter")
}

fn zdiff(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, false, SetOp::Diff, false, "zdiff")
}

fn zunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, true, SetOp::Union, false, "zunionstore")
}

fn zinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, true, SetOp::Inter, false, "zinterstore")
}

fn zdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, true, SetOp::Diff, false, "zdiffstore")
}

fn zintercard(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    setop_generic(ctx, args, false, SetOp::Inter, true, "zintercard")
}

// ---------------------------------------------------------------------------------------------------------
// ZSCAN

fn zscan(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let cursor = parse::cursor(a.next()?)?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(z) = read_zset(ctx, &mut shard, key)? else {
        drop(shard);
        let mut r = ctx.reply();
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return Ok(());
    };
    // Redis reads the options only once the key is found and of the right type.
    let ScanOpts { pattern, count, .. } = ScanOpts::parse(&mut a, ScanKind::Plain)?;
    let count = count as usize;
    let mut items: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut next = cursor;
    if z.is_compact() {
        z.scan(0, |m, s| items.push((m.to_vec(), s)));
        next = 0;
    } else {
        let mut budget = count.saturating_mul(10);
        loop {
            next = z.scan(next, |m, s| items.push((m.to_vec(), s)));
            budget = budget.saturating_sub(1);
            if next == 0 || budget == 0 || items.len() >= count {
                break;
            }
        }
    }
    drop(shard);
    if let Some(p) = pattern {
        items.retain(|(m, _)| glob::matches(p, m, false));
    }
    let mut r = ctx.reply();
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(items.len() * 2);
    let mut buf = Vec::with_capacity(24);
    for (m, s) in &items {
        r.bulk(m);
        buf.clear();
        ferrodis_protocol::num::format_double(*s, &mut buf);
        r.bulk(&buf);
    }
    Ok(())
}
