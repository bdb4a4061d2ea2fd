//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM,
//! LPOS, LMOVE, RPOPLPUSH, LMPOP.
//!
//! The blocking forms (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) are built elsewhere on the reusable cores
//! here, which work on already locked shards: [`pop_from`], [`push_to`], [`move_locked`], [`mpop_locked`].
//!
//! Locking: single-key commands lock one shard; LMOVE/RPOPLPUSH and LMPOP lock all their keys' shards at once
//! with `lock_many` (source and destination may be the same key or live in different shards).

use super::argv::Argv;
use super::hashes::range_long;
use super::spec::{self, ACCESS, DELETE, INSERT, RO, RW, UPDATE};
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::cmd::acl;
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::{Lookup, MultiGuard, Shard};
use crate::types::list::{Elem, List, Needle};
use crate::types::Value;
use ferrodis_protocol::{num, Args, Reply};

const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
const NUMKEYS: &str = "ERR numkeys should be greater than 0";
const COUNT_POSITIVE: &str = "ERR count should be greater than 0";
const POP_COUNT: &str = "ERR value is out of range, must be positive";
const INDEX_RANGE: &str = "ERR index out of range";

pub static COMMANDS: &[Command] = &[
    Command {
        name: "lpush",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: lpush,
        group: "list",
        since: "1.0.0",
        summary: "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        syntax: "key element ...",
        history: &[
            ("2.4.0", "Accepts multiple `element` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "rpush",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: rpush,
        group: "list",
        since: "1.0.0",
        summary: "Appends one or more elements to a list. Creates the key if it doesn't exist.",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        syntax: "key element ...",
        history: &[
            ("2.4.0", "Accepts multiple `element` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "lpushx",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: lpushx,
        group: "list",
        since: "2.2.0",
        summary: "Prepends one or more elements to a list only when the list exists.",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        syntax: "key element ...",
        history: &[
            ("4.0.0", "Accepts multiple `element` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "rpushx",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: rpushx,
        group: "list",
        since: "2.2.0",
        summary: "Appends an element to a list only when the list exists.",
        complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.",
        syntax: "key element ...",
        history: &[
            ("4.0.0", "Accepts multiple `element` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "lpop",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: lpop,
        group: "list",
        since: "1.0.0",
        summary: "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
        complexity: "O(N) where N is the number of elements returned",
        syntax: "key [count:integer@6.2.0]",
        history: &[
            ("6.2.0", "Added the `count` argument."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "rpop",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: rpop,
        group: "list",
        since: "1.0.0",
        summary: "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
        complexity: "O(N) where N is the number of elements returned",
        syntax: "key [count:integer@6.2.0]",
        history: &[
            ("6.2.0", "Added the `count` argument."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "llen",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: llen,
        group: "list",
        since: "1.0.0",
        summary: "Returns the length of a list.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "lrange",
        arity: 4,
        flags: READONLY,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: lrange,
        group: "list",
        since: "1.0.0",
        summary: "Returns a range of elements from a list.",
        complexity: "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
        syntax: "key start:integer stop:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "lindex",
        arity: 3,
        flags: READONLY,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: lindex,
        group: "list",
        since: "1.0.0",
        summary: "Returns an element from a list by its index.",
        complexity: "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).",
        syntax: "key index:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "lset",
        arity: 4,
        flags: WRITE | DENYOOM,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: lset,
        group: "list",
        since: "1.0.0",
        summary: "Sets the value of an element in a list by its index.",
        complexity: "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).",
        syntax: "key index:integer element",
        ..Command::DEFAULT
    },
    Command {
        name: "linsert",
        arity: 5,
        flags: WRITE | DENYOOM,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: linsert,
        group: "list",
        since: "2.2.0",
        summary: "Inserts an element before or after another element in a list.",
        complexity: "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
        syntax: "key where:<BEFORE | AFTER> pivot element",
        ..Command::DEFAULT
    },
    Command {
        name: "lrem",
        arity: 4,
        flags: WRITE,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: lrem,
        group: "list",
        since: "1.0.0",
        summary: "Removes elements from a list. Deletes the list if the last element was removed.",
        complexity: "O(N+M) where N is the length of the list and M is the number of elements removed.",
        syntax: "key count:integer element",
        ..Command::DEFAULT
    },
    Command {
        name: "ltrim",
        arity: 4,
        flags: WRITE,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: ltrim,
        group: "list",
        since: "1.0.0",
        summary: "Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
        complexity: "O(N) where N is the number of elements to be removed by the operation.",
        syntax: "key start:integer stop:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "lpos",
        arity: -3,
        flags: READONLY,
        acl: acl::LIST,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: lpos,
        group: "list",
        since: "6.0.6",
        summary: "Returns the index of matching elements in a list.",
        complexity: "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.",
        syntax: "key element [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]",
        ..Command::DEFAULT
    },
    Command {
        name: "lmove",
        arity: 5,
        flags: WRITE | DENYOOM,
        acl: acl::LIST,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(RW | INSERT),
        ],
        handler: lmove,
        group: "list",
        since: "6.2.0",
        summary: "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
        complexity: "O(1)",
        syntax: "source:key destination:key wherefrom:<LEFT | RIGHT> whereto:<LEFT | RIGHT>",
        ..Command::DEFAULT
    },
    Command {
        name: "rpoplpush",
        arity: 3,
        flags: WRITE | DENYOOM,
        acl: acl::LIST,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE),
            spec::index(2).range(0, 1, 0).flags(RW | INSERT),
        ],
        handler: rpoplpush,
        group: "list",
        since: "1.2.0",
        summary: "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
        complexity: "O(1)",
        syntax: "source:key destination:key",
        deprecated_since: "6.2.0",
        replaced_by: "`LMOVE` with the `RIGHT` and `LEFT` arguments",
        ..Command::DEFAULT
    },
    Command {
        name: "lmpop",
        arity: -4,
        flags: WRITE,
        acl: acl::LIST,
        keys: &[spec::index(1).keynum(0, 1, 1).flags(RW | ACCESS | DELETE)],
        handler: lmpop,
        group: "list",
        since: "7.0.0",
        summary: "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
        complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.",
        syntax: "numkeys:integer key ... where:<LEFT | RIGHT> [COUNT count:integer]",
        ..Command::DEFAULT
    },
];

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

/// The current `list-max-listpack-size`.
#[inline]
fn fill(ctx: &Ctx<'_>) -> i64 {
    ctx.srv.encoding.get().list_max_listpack_size
}

/// Look a key up for writing in database `db` of a locked shard (lazy expiry, access clock).
fn lookup_in<'s>(
    ctx: &Ctx<'_>,
    shard: &'s mut Shard,
    db: usize,
    key: &[u8],
) -> Option<&'s mut Entry> {
    if db == ctx.client.db {
        return ctx.lookup_write(shard, key);
    }
    match shard.lookup_mut(db, key, ctx.now_ms) {
        Lookup::Found(e) => Some(e),
        Lookup::Expired => {
            ctx.count_expired(1);
            None
        }
        Lookup::Missing => None,
    }
}

fn list_mut(e: &mut Entry) -> Result<&mut List, CmdError> {
    match e.value_mut() {
        Some(Value::List(l)) => Ok(l),
        _ => Err(err::WRONGTYPE.into()),
    }
}

fn list_ref(e: &Entry) -> Result<&List, CmdError> {
    match e.value() {
        ValueRef::Other(Value::List(l)) => Ok(l),
        _ => Err(err::WRONGTYPE.into()),
    }
}

/// Whether a key holds something other than a list.
fn wrong_type(e: &Entry) -> bool {
    !matches!(e.value(), ValueRef::Other(Value::List(_)))
}

#[inline]
fn reply_elem(r: &mut Reply<'_>, e: Elem<'_>) {
    match e {
        Elem::Int(i) => r.bulk_int(i),
        Elem::Str(s) => r.bulk(s),
    }
}

/// Reads one of two keywords (any case): true for `yes`, false for `no`, `ERR syntax error` otherwise or when
/// the argument is missing.
fn either(a: &mut Argv<'_>, yes: &str, no: &str) -> Result<bool, CmdError> {
    let b = a.next()?;
    if parse::eq(b, yes) {
        Ok(true)
    } else if parse::eq(b, no) {
        Ok(false)
    } else {
        Err(err::SYNTAX.into())
    }
}

/// Reads LEFT / RIGHT (true = left / head): LMOVE, BLMOVE, LMPOP, BLMPOP.
pub(crate) fn parse_side(a: &mut Argv<'_>) -> Result<bool, CmdError> {
    either(a, "left", "right")
}

/// A Redis list index (negative from the tail) as a position, if in range.
fn norm_index(i: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let j = if i < 0 { i + len } else { i };
    (0..len).contains(&j).then_some(j as usize)
}

/// Redis's start/stop clamping for LRANGE/LTRIM: the inclusive range of positions, or None if empty.
fn clamp_range(mut start: i64, mut end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
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
        return None;
    }
    if end >= len {
        end = len - 1;
    }
    Some((start as usize, end as usize))
}

// ---------------------------------------------------------------------------------------------------------
// Reusable cores (callable with a locked shard; also used by the blocking commands)

/// Push `elems` (in order) at the head (`left`) or tail of the list at `key` in database `db`, creating it
/// unless `create` is false. Emits "lpush"/"rpush". Returns the new length, or None when the key was missing
/// and `create` is false. Errors with WRONGTYPE for a non-list key.
pub fn push_to<'e, I>(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    db: usize,
    key: &[u8],
    elems: I,
    left: bool,
    create: bool,
) -> Result<Option<usize>, CmdError>
where
    I: IntoIterator<Item = &'e [u8]>,
    I::IntoIter: Clone,
{
    let fill = fill(ctx);
    let it = elems.into_iter();
    let (bytes, count) = it.clone().fold((0usize, 0usize), |(b, n), v| {
        (b.saturating_add(v.len()), n + 1)
    });
    let push_all = |l: &mut List| {
        l.prepare_grow(fill, bytes, count);
        for v in it {
            if left {
                l.push_front(v, fill);
            } else {
                l.push_back(v, fill);
            }
        }
        l.len()
    };
    let len = match lookup_in(ctx, shard, db, key) {
        Some(e) => push_all(list_mut(e)?),
        None if !create => return Ok(None),
        None => {
            let mut l = List::new();
            let len = push_all(&mut l);
            let e = Entry::new(key, Value::List(Box::new(l)), ctx.lru_clock());
            shard.db_mut(db).insert_new(e);
            len
        }
    };
    ctx.modified_in(shard, db, key, if left { "lpush" } else { "rpush" });
    Ok(Some(len))
}

/// Pop up to `count` elements from the head (`left`) or tail of the list at `key` in database `db`. Deletes
/// the key when it becomes empty. Emits "lpop"/"rpop" (and "del"). Returns None for a missing key (an empty
/// vector for `count` 0 on an existing list); WRONGTYPE for a non-list key.
pub fn pop_from(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    db: usize,
    key: &[u8],
    left: bool,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    let Some(e) = lookup_in(ctx, shard, db, key) else {
        return Ok(None);
    };
    let l = list_mut(e)?;
    if count == 0 {
        return Ok(Some(Vec::new()));
    }
    let items = l.pop_n(left, count);
    let emptied = l.is_empty();
    if !emptied {
        l.shrunk(fill(ctx));
    }
    ctx.modified_in(shard, db, key, if left { "lpop" } else { "rpop" });
    if emptied {
        shard.db_mut(db).remove(key);
        ctx.modified_in(shard, db, key, "del");
    }
    Ok(Some(items))
}

/// LMOVE's core with the shards of `src` and `dst` locked in `guard`: pops one element from `src`
/// (head if `from_left`) and pushes it onto `dst` (head if `to_left`); `src` and `dst` may be the same key.
/// Returns None when `src` is missing; WRONGTYPE when either key holds another type (`dst` is checked only
/// when `src` has an element, as Redis).
pub fn move_locked(
    ctx: &Ctx<'_>,
    guard: &mut MultiGuard<'_>,
    db: usize,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Vec<u8>>, CmdError> {
    let fill = fill(ctx);
    if src == dst {
        let shard = guard.shard(src);
        let Some(e) = lookup_in(ctx, shard, db, src) else {
            return Ok(None);
        };
        let l = list_mut(e)?;
        let Some(v) = (if from_left {
            l.pop_front()
        } else {
            l.pop_back()
        }) else {
            return Ok(None);
        };
        l.prepare_grow(fill, v.len(), 1);
        if to_left {
            l.push_front(&v, fill);
        } else {
            l.push_back(&v, fill);
        }
        ctx.modified_in(shard, db, dst, if to_left { "lpush" } else { "rpush" });
        ctx.modified_in(shard, db, src, if from_left { "lpop" } else { "rpop" });
        return Ok(Some(v));
    }
    // Check the source, then the destination's type, before changing anything.
    match lookup_in(ctx, guard.shard(src), db, src) {
        None => return Ok(None),
        Some(e) => {
            if list_ref(e)?.is_empty() {
                return Ok(None);
            }
        }
    }
    if let Some(e) = lookup_in(ctx, guard.shard(dst), db, dst) {
        if wrong_type(e) {
            return Err(err::WRONGTYPE.into());
        }
    }
    let shard = guard.shard(src);
    let Some(e) = lookup_in(ctx, shard, db, src) else {
        return Ok(None);
    };
    let l = list_mut(e)?;
    let Some(v) = (if from_left {
        l.pop_front()
    } else {
        l.pop_back()
    }) else {
        return Ok(None);
    };
    let emptied = l.is_empty();
    if !emptied {
        l.shrunk(fill);
    }
    push_to(ctx, guard.shard(dst), db, dst, [&v[..]], to_left, true)?;
    let shard = guard.shard(src);
    ctx.modified_in(shard, db, src, if from_left { "lpop" } else { "rpop" });
    if emptied {
        shard.db_mut(db).remove(src);
        ctx.modified_in(shard, db, src, "del");
    }
    Ok(Some(v))
}

/// What LMPOP popped: the index of the key in the key list, and the elements in pop order.
pub type Popped = (usize, Vec<Vec<u8>>);

/// LMPOP's core with the shards of all `keys` locked in `guard`: pops up to `count` elements from the first
/// non-empty list among `keys`. Returns (index in `keys`, elements), or None when every key is missing;
/// WRONGTYPE as soon as a key (in order) holds another type.
pub fn mpop_locked(
    ctx: &Ctx<'_>,
    guard: &mut MultiGuard<'_>,
    db: usize,
    keys: &[&[u8]],
    left: bool,
    count: usize,
) -> Result<Option<Popped>, CmdError> {
    for (i, &k) in keys.iter().enumerate() {
        if let Some(items) = pop_from(ctx, guard.shard(k), db, k, left, count)? {
            return Ok(Some((i, items)));
        }
    }
    Ok(None)
}

fn reply_items(ctx: &mut Ctx<'_>, items: &[Vec<u8>]) {
    let mut r = ctx.reply();
    r.array(items.len());
    for v in items {
        r.bulk(v);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Handlers

fn push_cmd(ctx: &mut Ctx<'_>, args: Args<'_>, left: bool, create: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let elems = a.rest();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let len = push_to(ctx, &mut shard, db, key, elems.iter(), left, create)?;
    drop(shard);
    ctx.reply().int(len.unwrap_or(0) as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_cmd(ctx, args, true, true)
}

fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_cmd(ctx, args, false, true)
}

fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_cmd(ctx, args, true, false)
}

fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_cmd(ctx, args, false, false)
}

fn pop_cmd(ctx: &mut Ctx<'_>, args: Args<'_>, left: bool) -> CmdResult {
    let mut a = Argv::new(args);
    if a.remaining() > 2 {
        let name = if left { "lpop" } else { "rpop" };
        return Err(format!("ERR wrong number of arguments for '{name}' command").into());
    }
    let key = a.next()?;
    let count = match a.opt() {
        Some(c) => Some(parse::uint_or(c, POP_COUNT)?),
        None => None,
    };
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let popped = pop_from(ctx, &mut shard, db, key, left, count.unwrap_or(1))?;
    drop(shard);
    match (popped, count) {
        (None, Some(_)) => ctx.reply().null_array(),
        (None, None) => ctx.reply().null(),
        (Some(items), Some(_)) => reply_items(ctx, &items),
        (Some(items), None) => match items.first() {
            Some(v) => ctx.reply().bulk(v),
            None => ctx.reply().null(),
        },
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_cmd(ctx, args, true)
}

fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_cmd(ctx, args, false)
}

fn llen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = match ctx.lookup(&mut shard, key) {
        None => 0,
        Some(e) => list_ref(e)?.len(),
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let start = a.int()?;
    let end = a.int()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().array(0);
        return Ok(());
    };
    let l = list_ref(e)?;
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    match clamp_range(start, end, l.len()) {
        None => r.array(0),
        Some((s, e)) => {
            r.array(e - s + 1);
            for x in l.range(s, e - s + 1) {
                reply_elem(&mut r, x);
            }
        }
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    // Redis reads the index only once the key is found and is a list.
    let index = a.next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().null();
        return Ok(());
    };
    let l = list_ref(e)?;
    let idx = parse::int(index)?;
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    match norm_index(idx, l.len()).and_then(|i| l.get(i)) {
        Some(x) => reply_elem(&mut r, x),
        None => r.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    // Redis reads the index only once the key is found and is a list.
    let index = a.next()?;
    let v = a.next()?;
    let fill = fill(ctx);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let l = list_mut(e)?;
    let idx = parse::int(index)?;
    let Some(i) = norm_index(idx, l.len()) else {
        // Redis converts the encoding before finding the index out of range.
        l.prepare_grow(fill, v.len(), 1);
        return Err(INDEX_RANGE.into());
    };
    l.set(i, v, fill);
    l.shrunk(fill);
    ctx.modified(&mut shard, key, "lset");
    drop(shard);
    ctx.reply().ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let after = either(&mut a, "after", "before")?;
    let (pivot, v) = (a.next()?, a.next()?);
    let fill = fill(ctx);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let l = list_mut(e)?;
    l.prepare_grow(fill, v.len(), 1);
    let reply = match l.find(&Needle::new(pivot)) {
        None => -1,
        Some(i) => {
            l.insert(if after { i + 1 } else { i }, v, fill);
            let n = l.len() as i64;
            ctx.modified(&mut shard, key, "linsert");
            n
        }
    };
    drop(shard);
    ctx.reply().int(reply);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let count = a.int()?;
    let elem = a.next()?;
    let db = ctx.client.db;
    let fill = fill(ctx);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let l = list_mut(e)?;
    let n = l.remove_matching(
        &Needle::new(elem),
        count.unsigned_abs() as usize,
        count >= 0,
    );
    let emptied = l.is_empty();
    if n > 0 {
        if !emptied {
            l.shrunk(fill);
        }
        ctx.modified(&mut shard, key, "lrem");
        if emptied {
            shard.db_mut(db).remove(key);
            ctx.modified(&mut shard, key, "del");
        }
    }
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let start = a.int()?;
    let end = a.int()?;
    let db = ctx.client.db;
    let fill = fill(ctx);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    if let Some(e) = ctx.lookup_write(&mut shard, key) {
        let l = list_mut(e)?;
        l.retain_range(clamp_range(start, end, l.len()));
        let emptied = l.is_empty();
        if !emptied {
            l.shrunk(fill);
        }
        ctx.modified(&mut shard, key, "ltrim");
        if emptied {
            shard.db_mut(db).remove(key);
            ctx.modified(&mut shard, key, "del");
        }
    }
    drop(shard);
    ctx.reply().ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let elem = a.next()?;
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    // Each option takes one value; a later one wins.
    while let Some(opt) = a.opt() {
        let has_value = !a.is_done();
        if parse::eq(opt, "rank") && has_value {
            rank = range_long(a.next()?)?;
            if rank == 0 {
                return Err(RANK_ZERO.into());
            }
        } else if parse::eq(opt, "count") && has_value {
            count = Some(a.uint_or("ERR COUNT can't be negative")? as i64);
        } else if parse::eq(opt, "maxlen") && has_value {
            maxlen = a.uint_or("ERR MAXLEN can't be negative")? as i64;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        match count {
            Some(_) => ctx.reply().array(0),
            None => ctx.reply().null(),
        }
        return Ok(());
    };
    let l = list_ref(e)?;
    let needle = Needle::new(elem);
    let len = l.len();
    let skip = rank.unsigned_abs() - 1; // matches to pass over before reporting
    let want = match count {
        None => 1,
        Some(0) => u64::MAX,
        Some(c) => c as u64,
    };
    let scan = if maxlen == 0 {
        len
    } else {
        (maxlen as u64).min(len as u64) as usize
    };
    let mut found: Vec<usize> = Vec::new();
    let mut seen: u64 = 0;
    let mut visit = |pos: usize, e: Elem<'_>| -> bool {
        if needle.matches(e) {
            seen += 1;
            if seen > skip {
                found.push(pos);
                if found.len() as u64 >= want {
                    return false;
                }
            }
        }
        true
    };
    if rank > 0 {
        for (i, e) in l.iter().take(scan).enumerate() {
            if !visit(i, e) {
                break;
            }
        }
    } else {
        for (i, e) in l.iter().rev().take(scan).enumerate() {
            if !visit(len - 1 - i, e) {
                break;
            }
        }
    }
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    match count {
        Some(_) => {
            r.array(found.len());
            for p in found {
                r.int(p as i64);
            }
        }
        None => match found.first() {
            Some(&p) => r.int(p as i64),
            None => r.null(),
        },
    }
    Ok(())
}

fn move_cmd(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> CmdResult {
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many([src, dst]);
    let v = move_locked(ctx, &mut guard, db, src, dst, from_left, to_left)?;
    drop(guard);
    match v {
        Some(v) => ctx.reply().bulk(&v),
        None => ctx.reply().null(),
    }
    Ok(())
}

fn lmove(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst) = (a.next()?, a.next()?);
    let from_left = parse_side(&mut a)?;
    let to_left = parse_side(&mut a)?;
    move_cmd(ctx, src, dst, from_left, to_left)
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (src, dst) = (a.next()?, a.next()?);
    move_cmd(ctx, src, dst, false, true)
}

/// Parsed `numkeys key ... <where> [COUNT count]` of LMPOP, BLMPOP, ZMPOP and BZMPOP.
pub(crate) struct MpopArgs<'a> {
    pub keys: Vec<&'a [u8]>,
    /// True for the first of the two `where` words (LEFT for the lists, MAX for BZMPOP).
    pub first: bool,
    pub count: usize,
}

/// Reads `numkeys key ... <where> [COUNT count]` (the rest of the request) with Redis's errors and their
/// order, `where` being `first` or `second` (LEFT/RIGHT for LMPOP and BLMPOP, MAX/MIN for BZMPOP): numkeys a
/// long ≥ 1, then the `where` word, then COUNT (a long ≥ 1) at most once.
pub(crate) fn parse_mpop<'a>(
    a: &mut Argv<'a>,
    first: &str,
    second: &str,
) -> Result<MpopArgs<'a>, CmdError> {
    let numkeys = match num::parse_i64(a.next()?) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(NUMKEYS.into()),
    };
    // The keys and the `where` word must all be there.
    if numkeys >= a.remaining() as u64 {
        return Err(err::SYNTAX.into());
    }
    let keys = a.take(numkeys as usize)?.iter().collect();
    let first = either(a, first, second)?;
    let mut count: Option<usize> = None;
    while let Some(word) = a.opt() {
        if count.is_none() && parse::eq(word, "count") && !a.is_done() {
            count = Some(match num::parse_i64(a.next()?) {
                Some(c) if c > 0 => c as usize,
                _ => return Err(COUNT_POSITIVE.into()),
            });
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    Ok(MpopArgs {
        keys,
        first,
        count: count.unwrap_or(1),
    })
}

fn lmpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let a = parse_mpop(&mut Argv::new(args), "left", "right")?;
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(a.keys.iter().copied());
    let res = mpop_locked(ctx, &mut guard, db, &a.keys, a.first, a.count)?;
    drop(guard);
    let mut r = ctx.reply();
    match res {
        None => r.null_array(),
        Some((i, items)) => {
            r.array(2);
            r.bulk(a.keys[i]);
            r.array(items.len());
            for v in &items {
                r.bulk(v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(3, 5, 3), None);
        assert_eq!(clamp_range(-1, -1, 3), Some((2, 2)));
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(norm_index(-1, 3), Some(2));
        assert_eq!(norm_index(-4, 3), None);
        assert_eq!(norm_index(3, 3), None);
        assert_eq!(norm_index(i64::MIN, 3), None);
    }

    #[test]
    fn table_entries_are_consistent() {
        for c in COMMANDS {
            assert!(!c.summary.is_empty() && !c.syntax.is_empty(), "{}", c.name);
            assert_eq!(c.group, "list");
        }
    }
}
