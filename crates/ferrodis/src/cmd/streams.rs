//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID XREAD XREADGROUP XGROUP XACK XPENDING
//! XCLAIM XAUTOCLAIM XINFO.
//!
//! Locking: every command but XREAD/XREADGROUP touches one key and locks its shard. XREAD/XREADGROUP lock
//! all their keys with `lock_many`; with BLOCK and nothing to return they register a waiter (see
//! cmd::blocking::block) whose serve function runs inside the writer's lock (XADD's `ctx.modified`), reads
//! the new entries and, for a group, advances the group and its PEL there too.

use super::blocking::block;
use super::blocking::ServeFn;
use super::spec::{self, ACCESS, DELETE, INSERT, RO, RW, UPDATE};
use super::{acl, err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::keyspace::blocking::Serve;
use crate::keyspace::entry::{Entry, ValueRef};
use crate::keyspace::{Lookup, Shard};
use crate::types::stream::{
    self, parse_id, parse_strict_id, EntryRef, IdSpec, Stream, StreamId, TrimStrategy,
};
use crate::types::Value;
use ferrodis_protocol::{num, Args, Reply};
use std::time::Duration;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "xadd",
        arity: -5,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STREAM,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | UPDATE).notes("UPDATE instead of INSERT because of the optional trimming feature"),
        ],
        handler: xadd,
        group: "stream",
        since: "5.0.0",
        summary: "Appends a new message to a stream. Creates the key if it doesn't exist.",
        complexity: "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
        syntax: "key [NOMKSTREAM@6.2.0] trim:[strategy:<MAXLEN | MINID@6.2.0> operator:[==equal | ~=approximately] threshold [LIMIT count:integer@6.2.0]] id-selector:<*=auto-id | id> data:<field value> ...",
        history: &[
            ("6.2.0", "Added the `NOMKSTREAM` option, `MINID` trimming strategy and the `LIMIT` option."),
            ("7.0.0", "Added support for the `<ms>-*` explicit ID form."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "xlen",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: xlen,
        group: "stream",
        since: "5.0.0",
        summary: "Return the number of messages in a stream.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "xrange",
        arity: -4,
        flags: READONLY,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: xrange,
        group: "stream",
        since: "5.0.0",
        summary: "Returns the messages from a stream within a range of IDs.",
        complexity: "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
        syntax: "key start end [COUNT count:integer]",
        history: &[
            ("6.2.0", "Added exclusive ranges."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "xrevrange",
        arity: -4,
        flags: READONLY,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: xrevrange,
        group: "stream",
        since: "5.0.0",
        summary: "Returns the messages from a stream within a range of IDs in reverse order.",
        complexity: "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
        syntax: "key end start [COUNT count:integer]",
        history: &[
            ("6.2.0", "Added exclusive ranges."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "xdel",
        arity: -3,
        flags: WRITE | FAST,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: xdel,
        group: "stream",
        since: "5.0.0",
        summary: "Returns the number of messages after removing them from a stream.",
        complexity: "O(1) for each single item to delete in the stream, regardless of the stream size.",
        syntax: "key id ...",
        ..Command::DEFAULT
    },
    Command {
        name: "xtrim",
        arity: -4,
        flags: WRITE,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: xtrim,
        group: "stream",
        since: "5.0.0",
        summary: "Deletes messages from the beginning of a stream.",
        complexity: "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.",
        syntax: "key trim:<strategy:<MAXLEN | MINID@6.2.0> operator:[==equal | ~=approximately] threshold [LIMIT count:integer@6.2.0]>",
        history: &[
            ("6.2.0", "Added the `MINID` trimming strategy and the `LIMIT` option."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "xsetid",
        arity: -3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: xsetid,
        group: "stream",
        since: "5.0.0",
        summary: "An internal command for replicating stream values.",
        complexity: "O(1)",
        syntax: "key last-id [ENTRIESADDED entries-added:integer@7.0.0] [MAXDELETEDID max-deleted-id@7.0.0]",
        history: &[
            ("7.0.0", "Added the `entries_added` and `max_deleted_entry_id` arguments."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "xread",
        arity: -4,
        flags: READONLY | BLOCKING,
        acl: acl::STREAM,
        keys: &[spec::keyword("STREAMS", 1).range(-1, 1, 2).flags(RO | ACCESS)],
        handler: xread,
        group: "stream",
        since: "5.0.0",
        summary: "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.",
        syntax: "[COUNT count:integer] [BLOCK milliseconds:integer] STREAMS <key ... id ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "xreadgroup",
        arity: -7,
        flags: WRITE | BLOCKING,
        acl: acl::STREAM,
        keys: &[spec::keyword("STREAMS", 4).range(-1, 1, 2).flags(RO | ACCESS)],
        handler: xreadgroup,
        group: "stream",
        since: "5.0.0",
        summary: "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.",
        complexity: "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.",
        syntax: "GROUP group-block:<group consumer> [COUNT count:integer] [BLOCK milliseconds:integer] [NOACK] STREAMS <key ... id ...>",
        ..Command::DEFAULT
    },
    Command {
        name: "xack",
        arity: -4,
        flags: WRITE | FAST,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: xack,
        group: "stream",
        since: "5.0.0",
        summary: "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
        complexity: "O(1) for each message ID processed.",
        syntax: "key group id ...",
        ..Command::DEFAULT
    },
    Command {
        name: "xpending",
        arity: -3,
        flags: READONLY,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: xpending,
        group: "stream",
        since: "5.0.0",
        summary: "Returns the information and entries from a stream consumer group's pending entries list.",
        complexity: "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
        syntax: "key group filters:[[IDLE min-idle-time:integer@6.2.0] start end count:integer [consumer]]",
        history: &[
            ("6.2.0", "Added the `IDLE` option and exclusive range intervals."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "xclaim",
        arity: -6,
        flags: WRITE | FAST,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: xclaim,
        group: "stream",
        since: "5.0.0",
        summary: "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
        complexity: "O(log N) with N being the number of messages in the PEL of the consumer group.",
        syntax: "key group consumer min-idle-time id ... [IDLE ms:integer] [TIME unix-time-milliseconds:unix-time] [RETRYCOUNT count:integer] [FORCE] [JUSTID] [LASTID lastid]",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "xautoclaim",
        arity: -6,
        flags: WRITE | FAST,
        acl: acl::STREAM,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | DELETE)],
        handler: xautoclaim,
        group: "stream",
        since: "6.2.0",
        summary: "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
        complexity: "O(1) if COUNT is small.",
        syntax: "key group consumer min-idle-time start [COUNT count:integer] [JUSTID]",
        history: &[
            ("7.0.0", "Added an element to the reply array, containing deleted entries the command cleared from the PEL"),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "xgroup",
        arity: -2,
        subcommands: XGROUP_SUBCOMMANDS,
        group: "stream",
        since: "5.0.0",
        summary: "A container for consumer groups commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
    Command {
        name: "xinfo",
        arity: -2,
        subcommands: XINFO_SUBCOMMANDS,
        group: "stream",
        since: "5.0.0",
        summary: "A container for stream introspection commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
];

static XGROUP_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "create",
        arity: -5,
        flags: WRITE | DENYOOM,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RW | INSERT)],
        handler: xgroup_create,
        group: "stream",
        since: "5.0.0",
        summary: "Creates a consumer group.",
        complexity: "O(1)",
        syntax:
            "key group id-selector:<id | $=new-id> [MKSTREAM] [ENTRIESREAD entries-read:integer]",
        history: &[("7.0.0", "Added the `entries_read` named argument.")],
        ..Command::DEFAULT
    },
    Command {
        name: "createconsumer",
        arity: 5,
        flags: WRITE | DENYOOM,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RW | INSERT)],
        handler: xgroup_createconsumer,
        group: "stream",
        since: "6.2.0",
        summary: "Creates a consumer in a consumer group.",
        complexity: "O(1)",
        syntax: "key group consumer",
        ..Command::DEFAULT
    },
    Command {
        name: "delconsumer",
        arity: 5,
        flags: WRITE,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RW | DELETE)],
        handler: xgroup_delconsumer,
        group: "stream",
        since: "5.0.0",
        summary: "Deletes a consumer from a consumer group.",
        complexity: "O(1)",
        syntax: "key group consumer",
        ..Command::DEFAULT
    },
    Command {
        name: "destroy",
        arity: 4,
        flags: WRITE,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RW | DELETE)],
        handler: xgroup_destroy,
        group: "stream",
        since: "5.0.0",
        summary: "Destroys a consumer group.",
        complexity:
            "O(N) where N is the number of entries in the group's pending entries list (PEL).",
        syntax: "key group",
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::STREAM,
        handler: xgroup_help,
        group: "stream",
        since: "5.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "setid",
        arity: -5,
        flags: WRITE,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RW | UPDATE)],
        handler: xgroup_setid,
        group: "stream",
        since: "5.0.0",
        summary: "Sets the last-delivered ID of a consumer group.",
        complexity: "O(1)",
        syntax:
            "key group id-selector:<id | $=new-id> [ENTRIESREAD entriesread:integer/entries-read]",
        history: &[("7.0.0", "Added the optional `entries_read` argument.")],
        ..Command::DEFAULT
    },
];

static XINFO_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "consumers",
        arity: 4,
        flags: READONLY,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO | ACCESS)],
        handler: xinfo_consumers,
        group: "stream",
        since: "5.0.0",
        summary: "Returns a list of the consumers in a consumer group.",
        complexity: "O(1)",
        syntax: "key group",
        history: &[
            ("7.2.0", "Added the `inactive` field."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "groups",
        arity: 3,
        flags: READONLY,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO | ACCESS)],
        handler: xinfo_groups,
        group: "stream",
        since: "5.0.0",
        summary: "Returns a list of the consumer groups of a stream.",
        complexity: "O(1)",
        syntax: "key",
        history: &[
            ("7.0.0", "Added the `entries-read` and `lag` fields"),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::STREAM,
        handler: xinfo_help,
        group: "stream",
        since: "5.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "stream",
        arity: -3,
        flags: READONLY,
        acl: acl::STREAM,
        keys: &[spec::index(2).range(0, 1, 0).flags(RO | ACCESS)],
        handler: xinfo_stream,
        group: "stream",
        since: "5.0.0",
        summary: "Returns information about a stream.",
        complexity: "O(1)",
        syntax: "key full-block:[FULL [COUNT count:integer]]",
        history: &[
            ("6.0.0", "Added the `FULL` modifier."),
            ("7.0.0", "Added the `max-deleted-entry-id`, `entries-added`, `recorded-first-entry-id`, `entries-read` and `lag` fields"),
            ("7.2.0", "Added the `active-time` field, and changed the meaning of `seen-time`."),
        ],
        ..Command::DEFAULT
    },
];

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

/// An entry copied out of the stream: (ID, field/value pairs).
type OwnedEntry = (StreamId, Vec<(Vec<u8>, Vec<u8>)>);
/// An entry that may have been deleted (None), as history reads and claims return them.
type MaybeEntry = (StreamId, Option<Vec<(Vec<u8>, Vec<u8>)>>);
/// XPENDING's extended form: (min idle, start, end, count, consumer).
type PendingQuery<'a> = (u64, StreamId, StreamId, usize, Option<&'a [u8]>);

fn cmd_err(e: &'static str) -> CmdError {
    CmdError::from(e)
}

fn stream_ref(e: &Entry) -> Result<&Stream, CmdError> {
    match e.value() {
        ValueRef::Other(Value::Stream(s)) => Ok(s),
        _ => Err(err::WRONGTYPE.into()),
    }
}

fn stream_mut(e: &mut Entry) -> Result<&mut Stream, CmdError> {
    match e.value_mut() {
        Some(Value::Stream(s)) => Ok(s),
        _ => Err(err::WRONGTYPE.into()),
    }
}

/// The stream at `key` in database `db` of a locked shard, for serve functions (no stats, no LRU).
fn stream_in<'s>(
    shard: &'s mut Shard,
    db: usize,
    key: &[u8],
    now_ms: u64,
) -> Option<&'s mut Stream> {
    match shard.lookup_mut(db, key, now_ms) {
        Lookup::Found(e) => match e.value_mut() {
            Some(Value::Stream(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn id_bulk(r: &mut Reply<'_>, id: StreamId) {
    let mut b = itoa::Buffer::new();
    let mut s = Vec::with_capacity(42);
    s.extend_from_slice(b.format(id.ms).as_bytes());
    s.push(b'-');
    s.extend_from_slice(b.format(id.seq).as_bytes());
    r.bulk(&s);
}

fn reply_entry(r: &mut Reply<'_>, e: &EntryRef<'_>) {
    r.array(2);
    id_bulk(r, e.id);
    r.array(e.fields.len() * 2);
    for (f, v) in &e.fields {
        r.bulk(f);
        r.bulk(v);
    }
}

fn reply_entries(r: &mut Reply<'_>, es: &[EntryRef<'_>]) {
    r.array(es.len());
    for e in es {
        reply_entry(r, e);
    }
}

fn reply_opt_entry(r: &mut Reply<'_>, e: Option<EntryRef<'_>>) {
    match e {
        Some(e) => reply_entry(r, &e),
        None => r.null(),
    }
}

/// Parse a range bound, with Redis's errors for an exclusive bound that overflows.
fn range_bound(b: &[u8], start: bool) -> Result<StreamId, CmdError> {
    let missing = if start { 0 } else { u64::MAX };
    if let Some(rest) = b.strip_prefix(b"(") {
        let id = parse_id(rest, missing, false).map_err(cmd_err)?;
        return if start {
            id.incr()
                .ok_or_else(|| "ERR invalid start ID for the interval".into())
        } else {
            id.decr()
                .ok_or_else(|| "ERR invalid end ID for the interval".into())
        };
    }
    parse_id(b, missing, true).map_err(cmd_err)
}

fn strict_id(b: &[u8]) -> Result<StreamId, CmdError> {
    parse_strict_id(b).map_err(cmd_err)
}

fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    )
    .into()
}

fn encode(resp3: bool, f: impl FnOnce(&mut Reply<'_>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut Reply::new(&mut v, resp3));
    v
}

// ---------------------------------------------------------------------------------------------------------
// XADD / XTRIM argument parsing

struct TrimArgs {
    strategy: Option<TrimStrategy>,
    approx: bool,
    limit: usize,
    nomkstream: bool,
    /// Index of the first argument after the options (XADD: the ID).
    next: usize,
}

fn parse_trim_args(args: &Args<'_>, xadd: bool) -> Result<TrimArgs, CmdError> {
    let mut t = TrimArgs {
        strategy: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        next: args.len(),
    };
    let mut limit: Option<i64> = None;
    let mut i = 2;
    let n = args.len();
    while i < n {
        let more = n - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            break;
        }
        let maxlen = parse::eq(opt, "maxlen");
        if (maxlen || parse::eq(opt, "minid")) && more > 0 {
            if t.strategy.is_some() {
                return Err(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
                        .into(),
                );
            }
            t.approx = false;
            let next = args.get(i + 1);
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = args.get(i + 1);
            if maxlen {
                let m = parse::int(v)?;
                if m < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                t.strategy = Some(TrimStrategy::MaxLen(m as u64));
            } else {
                t.strategy = Some(TrimStrategy::MinId(strict_id(v)?));
            }
            i += 2;
        } else if parse::eq(opt, "limit") && more > 0 {
            let l = parse::int(args.get(i + 1))?;
            if l < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            limit = Some(l);
            i += 2;
        } else if xadd && parse::eq(opt, "nomkstream") {
            t.nomkstream = true;
            i += 1;
        } else if xadd {
            break;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    t.next = i;
    if limit.is_some_and(|l| l != 0) && t.strategy.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && t.strategy.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    match limit {
        Some(l) => {
            if !t.approx {
                return Err(
                    "ERR syntax error, LIMIT cannot be used without the special ~ option".into(),
                );
            }
            t.limit = l as usize;
        }
        None => {
            t.limit = if t.approx {
                100 * stream::CHUNK_MAX_ENTRIES
            } else {
                0
            };
        }
    }
    Ok(t)
}

/// An approximate trim (`~`) depends on how entries are grouped in memory, which a replay need not
/// reproduce: it propagates as the exact trim it amounted to.
fn exact_trim_argv(key: &[u8], s: &Stream) -> Vec<Vec<u8>> {
    match s.first_id() {
        Some(first) => vec![
            b"XTRIM".to_vec(),
            key.to_vec(),
            b"MINID".to_vec(),
            b"=".to_vec(),
            first.to_bytes(),
        ],
        None => vec![
            b"XTRIM".to_vec(),
            key.to_vec(),
            b"MAXLEN".to_vec(),
            b"=".to_vec(),
            b"0".to_vec(),
        ],
    }
}

fn trim_stream(s: &mut Stream, t: &TrimArgs) -> usize {
    match t.strategy {
        None => 0,
        Some(st) => s.trim(st, t.approx, t.limit),
    }
}

// ---------------------------------------------------------------------------------------------------------
// XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID

fn xadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let t = parse_trim_args(&args, true)?;
    let id_pos = t.next;
    if id_pos >= args.len() {
        return Err("ERR wrong number of arguments for 'xadd' command".into());
    }
    let spec = IdSpec::parse(args.get(id_pos)).map_err(cmd_err)?;
    let nf = args.len() - id_pos - 1;
    if nf < 2 || nf % 2 == 1 {
        return Err("ERR wrong number of arguments for 'xadd' command".into());
    }
    if spec == IdSpec::Explicit(StreamId::MIN) {
        return Err(stream::ID_ZERO.into());
    }
    let fields: Vec<(&[u8], &[u8])> = (id_pos + 1..args.len())
        .step_by(2)
        .map(|i| (args.get(i), args.get(i + 1)))
        .collect();
    let srv = ctx.srv;
    let db = ctx.db();
    let mut shard = srv.keyspace.lock_key(key);
    let exists = match ctx.lookup_write(&mut shard, key) {
        Some(e) => {
            stream_ref(e)?;
            true
        }
        None => false,
    };
    if !exists {
        if t.nomkstream {
            drop(shard);
            ctx.reply().null();
            return Ok(());
        }
        let e = Entry::new(key, Value::Stream(Box::default()), ctx.lru_clock());
        shard.db_mut(db).insert_new(e);
    }
    let Some(e) = shard.db_mut(db).find_mut(key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_mut(e)?;
    if s.last_id == StreamId::MAX {
        return Err(stream::EXHAUSTED.into());
    }
    let id = match s.add(spec, &fields, ctx.now_ms) {
        Ok(id) => id,
        Err(e) => {
            if !exists {
                shard.db_mut(db).remove(key);
            }
            return Err(e.into());
        }
    };
    let trimmed = trim_stream(s, &t);
    if t.approx && t.strategy.is_some() {
        // XADD without the trim options, then the exact trim.
        let mut v = vec![b"XADD".to_vec(), key.to_vec()];
        if t.nomkstream {
            v.push(b"NOMKSTREAM".to_vec());
        }
        v.push(id.to_bytes());
        v.extend(args.iter().skip(id_pos + 1).map(|a| a.to_vec()));
        let mut cmds = vec![v];
        if trimmed > 0 {
            cmds.push(exact_trim_argv(key, s));
        }
        ctx.propagate_as(cmds);
    } else if !matches!(spec, IdSpec::Explicit(_)) {
        // A generated ID (`*`, `ms-*`) propagates as the ID it became.
        let mut v: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        v[id_pos] = id.to_bytes();
        ctx.propagate_as(vec![v]);
    }
    ctx.modified(&mut shard, key, "xadd");
    if trimmed > 0 {
        ctx.modified(&mut shard, key, "xtrim");
    }
    drop(shard);
    id_bulk(&mut ctx.reply(), id);
    Ok(())
}

fn xlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = match ctx.lookup(&mut shard, key) {
        None => 0,
        Some(e) => stream_ref(e)?.len(),
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn xrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, true)
}

fn range_cmd(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool) -> CmdResult {
    let key = args.get(1);
    let (sa, ea) = if rev {
        (args.get(3), args.get(2))
    } else {
        (args.get(2), args.get(3))
    };
    let start = range_bound(sa, true)?;
    let end = range_bound(ea, false)?;
    let mut count: i64 = -1;
    let mut i = 4;
    while i < args.len() {
        if parse::eq(args.get(i), "count") && i + 1 < args.len() {
            count = parse::int(args.get(i + 1))?.max(0);
            i += 2;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().array(0);
        return Ok(());
    };
    let s = stream_ref(e)?;
    if count == 0 {
        ctx.reply().null_array();
        return Ok(());
    }
    let n = if count < 0 { 0 } else { count as usize };
    let es = if rev {
        s.rev_range(start, end, n)
    } else {
        s.range(start, end, n)
    };
    reply_entries(&mut ctx.reply(), &es);
    Ok(())
}

fn xdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let ids = args
        .iter()
        .skip(2)
        .map(strict_id)
        .collect::<Result<Vec<_>, _>>()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let s = stream_mut(e)?;
    let n = ids.iter().filter(|id| s.delete(**id)).count();
    if n > 0 {
        ctx.modified(&mut shard, key, "xdel");
    }
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn xtrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let t = parse_trim_args(&args, false)?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let s = stream_mut(e)?;
    let n = trim_stream(s, &t);
    if n > 0 {
        if t.approx {
            ctx.propagate_as(vec![exact_trim_argv(key, s)]);
        }
        ctx.modified(&mut shard, key, "xtrim");
    }
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn xsetid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let id = strict_id(args.get(2))?;
    let mut entries_added: Option<u64> = None;
    let mut max_xdel: Option<StreamId> = None;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i);
        if parse::eq(opt, "entriesadded") && more > 0 {
            let v = parse::int(args.get(i + 1))?;
            if v < 0 {
                return Err("ERR entries_added must be positive".into());
            }
            entries_added = Some(v as u64);
            i += 2;
        } else if parse::eq(opt, "maxdeletedid") && more > 0 {
            let m = strict_id(args.get(i + 1))?;
            if id < m {
                return Err(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
                        .into(),
                );
            }
            max_xdel = Some(m);
            i += 2;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_mut(e)?;
    if let Some(last) = s.last_entry().map(|e| e.id) {
        if id < last {
            return Err(
                "ERR The ID specified in XSETID is smaller than the target stream top item".into(),
            );
        }
    }
    if let Some(n) = entries_added {
        if (s.len() as u64) > n {
            return Err(
                "ERR The entries_added specified in XSETID is smaller than the target stream length"
                    .into(),
            );
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if let Some(m) = max_xdel {
        s.max_deleted_id = m;
    }
    ctx.modified(&mut shard, key, "xsetid");
    drop(shard);
    ctx.reply().ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// XREAD / XREADGROUP

/// What XREAD/XREADGROUP asked for on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadFrom {
    /// Entries after this ID.
    After(StreamId),
    /// `+` (7.4): the last entry.
    Last,
    /// `>`: new entries for the group.
    New,
}

struct ReadArgs<'a> {
    count: usize,
    block: Option<Option<Duration>>,
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    keys: Vec<&'a [u8]>,
    ids: Vec<&'a [u8]>,
}

fn parse_read_args<'a>(args: &Args<'a>, group_cmd: bool) -> Result<ReadArgs<'a>, CmdError> {
    let mut r = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let n = args.len();
    let mut i = 1;
    let mut streams_at = 0;
    while i < n {
        let more = n - 1 - i;
        let opt = args.get(i);
        if parse::eq(opt, "block") && more > 0 {
            let ms = num::parse_i64(args.get(i + 1)).ok_or(CmdError::from(
                "ERR timeout is not an integer or out of range",
            ))?;
            if ms < 0 {
                return Err("ERR timeout is negative".into());
            }
            r.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
            i += 2;
        } else if parse::eq(opt, "count") && more > 0 {
            r.count = parse::int(args.get(i + 1))?.max(0) as usize;
            i += 2;
        } else if parse::eq(opt, "streams") && more > 0 {
            streams_at = i + 1;
            let rest = n - streams_at;
            if !rest.is_multiple_of(2) {
                return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            break;
        } else if parse::eq(opt, "group") && more >= 2 {
            if !group_cmd {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            r.group = Some((args.get(i + 1), args.get(i + 2)));
            i += 3;
        } else if parse::eq(opt, "noack") {
            if !group_cmd {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            r.noack = true;
            i += 1;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    if streams_at == 0 {
        return Err(err::SYNTAX.into());
    }
    if group_cmd && r.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    let half = (n - streams_at) / 2;
    r.keys = (streams_at..streams_at + half)
        .map(|i| args.get(i))
        .collect();
    r.ids = (streams_at + half..n).map(|i| args.get(i)).collect();
    Ok(r)
}

fn xread(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_cmd(ctx, args, false)
}

fn xreadgroup(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_cmd(ctx, args, true)
}

/// Serve a group read of new entries (`>`) on a locked stream: entries after the group's last ID, up to
/// `count`; advances the group and (unless `noack`) adds them to the PEL of `consumer`.
fn group_read_new(
    s: &mut Stream,
    group: &[u8],
    consumer: &[u8],
    count: usize,
    noack: bool,
    now_ms: u64,
) -> Vec<OwnedEntry> {
    let Some(g) = s.groups.get(group) else {
        return Vec::new();
    };
    let from = g.last_id.incr();
    let es: Vec<OwnedEntry> = match from {
        None => Vec::new(),
        Some(f) => s
            .range(f, StreamId::MAX, count)
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    e.fields
                        .iter()
                        .map(|(a, b)| (a.to_vec(), b.to_vec()))
                        .collect(),
                )
            })
            .collect(),
    };
    for (id, _) in &es {
        s.group_delivered(group, *id);
    }
    if let Some(g) = s.groups.get_mut(group) {
        let (c, _) = g.consumer_mut(consumer, now_ms);
        c.seen_time = now_ms;
        if !es.is_empty() {
            c.active_time = Some(now_ms);
        }
        if !noack {
            for (id, _) in &es {
                g.assign(*id, consumer, now_ms, 1);
            }
        }
    }
    es
}

/// What a group read changed, in replayable form (AOF), as Redis propagates it: one `XCLAIM ... FORCE
/// JUSTID` per entry now pending (with its delivery time and count), then `XGROUP SETID` for the group's
/// last delivered ID when `new` entries were read.
fn propagate_group_read(
    w: &Ctx<'_>,
    s: &Stream,
    (key, group, consumer): (&[u8], &[u8], &[u8]),
    ids: &[StreamId],
    new: bool,
    created: bool,
) {
    let Some(g) = s.groups.get(group) else {
        return;
    };
    if created {
        w.propagate_after(vec![
            b"XGROUP".to_vec(),
            b"CREATECONSUMER".to_vec(),
            key.to_vec(),
            group.to_vec(),
            consumer.to_vec(),
        ]);
    }
    for id in ids {
        if let Some(p) = g.pel.get(id) {
            w.propagate_after(vec![
                b"XCLAIM".to_vec(),
                key.to_vec(),
                group.to_vec(),
                consumer.to_vec(),
                b"0".to_vec(),
                id.to_bytes(),
                b"TIME".to_vec(),
                p.delivery_time.to_string().into_bytes(),
                b"RETRYCOUNT".to_vec(),
                p.delivery_count.to_string().into_bytes(),
                b"FORCE".to_vec(),
                b"JUSTID".to_vec(),
            ]);
        }
    }
    if new {
        let mut v = vec![
            b"XGROUP".to_vec(),
            b"SETID".to_vec(),
            key.to_vec(),
            group.to_vec(),
            g.last_id.to_bytes(),
        ];
        if let Some(n) = g.entries_read {
            v.push(b"ENTRIESREAD".to_vec());
            v.push(n.to_string().into_bytes());
        }
        w.propagate_after(v);
    }
}

fn has_consumer(s: &Stream, group: &[u8], consumer: &[u8]) -> bool {
    s.groups
        .get(group)
        .is_some_and(|g| g.consumers.contains_key(consumer))
}

fn reply_owned_entries(r: &mut Reply<'_>, es: &[OwnedEntry]) {
    r.array(es.len());
    for (id, fields) in es {
        r.array(2);
        id_bulk(r, *id);
        r.array(fields.len() * 2);
        for (f, v) in fields {
            r.bulk(f);
            r.bulk(v);
        }
    }
}

fn read_cmd(ctx: &mut Ctx<'_>, args: Args<'_>, group_cmd: bool) -> CmdResult {
    let ra = parse_read_args(&args, group_cmd)?;
    let srv = ctx.srv;
    let db = ctx.db();
    let now = ctx.now_ms;
    let mut guard = srv.keyspace.lock_many(ra.keys.iter().copied());
    // Resolve the IDs (and check types / groups) first, as Redis does.
    let mut from = Vec::with_capacity(ra.keys.len());
    for (k, idb) in ra.keys.iter().zip(&ra.ids) {
        let shard = guard.shard(k);
        let s = match ctx.lookup(shard, k) {
            Some(e) => Some(stream_ref(e)?),
            None => None,
        };
        if let Some((g, _)) = ra.group {
            if !s.is_some_and(|s| s.groups.contains_key(g)) {
                return Err(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(g)
                )
                .into());
            }
        }
        let f = if *idb == b"$" {
            if group_cmd {
                return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
            }
            ReadFrom::After(s.map_or(StreamId::MIN, |s| s.last_id))
        } else if *idb == b">" {
            if !group_cmd {
                return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
            }
            ReadFrom::New
        } else if *idb == b"+" && !group_cmd {
            ReadFrom::Last
        } else {
            ReadFrom::After(strict_id(idb)?)
        };
        from.push(f);
    }
    // Serve what is available now.
    let mut served: Vec<u8> = Vec::new();
    let mut nserved = 0;
    let resp3 = ctx.client.resp3;
    for (i, k) in ra.keys.iter().enumerate() {
        let shard = guard.shard(k);
        let Some(s) = stream_in(shard, db, k, now) else {
            continue;
        };
        let mut r = Reply::new(&mut served, resp3);
        match (from[i], ra.group) {
            (ReadFrom::Last, _) => {
                let Some(e) = s.last_entry() else { continue };
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                r.array(1);
                reply_entry(&mut r, &e);
            }
            (ReadFrom::After(id), None) => {
                let Some(f) = id.incr() else { continue };
                let es = s.range(f, StreamId::MAX, ra.count);
                if es.is_empty() {
                    continue;
                }
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                reply_entries(&mut r, &es);
            }
            (ReadFrom::New, Some((g, c))) => {
                let existed = has_consumer(s, g, c);
                let es = group_read_new(s, g, c, ra.count, ra.noack, now);
                let created = !existed && has_consumer(s, g, c);
                if created || !es.is_empty() {
                    let ids: Vec<StreamId> = es.iter().map(|(id, _)| *id).collect();
                    propagate_group_read(ctx, s, (k, g, c), &ids, !es.is_empty(), created);
                }
                if es.is_empty() {
                    continue;
                }
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                reply_owned_entries(&mut r, &es);
            }
            (ReadFrom::After(start), Some((g, c))) => {
                // History: this consumer's pending entries from `start`.
                let existed = has_consumer(s, g, c);
                let mut out: Vec<MaybeEntry> = Vec::new();
                let ids: Vec<StreamId> = match s.groups.get(g).and_then(|gr| gr.consumers.get(c)) {
                    Some(cons) => cons
                        .pending
                        .range(start..)
                        .take(if ra.count == 0 { usize::MAX } else { ra.count })
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                for id in ids {
                    let fields = s.get(id).map(|e| {
                        e.fields
                            .iter()
                            .map(|(a, b)| (a.to_vec(), b.to_vec()))
                            .collect::<Vec<_>>()
                    });
                    out.push((id, fields));
                }
                if let Some(gr) = s.groups.get_mut(g) {
                    for (id, _) in &out {
                        if let Some(p) = gr.pel.get_mut(id) {
                            p.delivery_time = now;
                            p.delivery_count += 1;
                        }
                    }
                    let (cons, _) = gr.consumer_mut(c, now);
                    cons.seen_time = now;
                }
                let ids: Vec<StreamId> = out.iter().map(|(id, _)| *id).collect();
                propagate_group_read(ctx, s, (k, g, c), &ids, false, !existed);
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                r.array(out.len());
                for (id, f) in &out {
                    r.array(2);
                    id_bulk(&mut r, *id);
                    match f {
                        Some(f) => {
                            r.array(f.len() * 2);
                            for (a, b) in f {
                                r.bulk(a);
                                r.bulk(b);
                            }
                        }
                        None => r.null_array(),
                    }
                }
            }
            _ => continue,
        }
        nserved += 1;
    }
    if nserved > 0 {
        let mut r = ctx.reply();
        if resp3 {
            r.map(nserved);
        } else {
            r.array(nserved);
        }
        ctx.out.extend_from_slice(&served);
        return Ok(());
    }
    let Some(timeout) = ra.block else {
        ctx.reply().null_array();
        return Ok(());
    };
    // Block: a writer serves us inside its lock.
    let count = ra.count;
    let keys_owned: Vec<Vec<u8>> = ra.keys.iter().map(|k| k.to_vec()).collect();
    let group = ra.group.map(|(g, c)| (g.to_vec(), c.to_vec()));
    let noack = ra.noack;
    let serve: ServeFn = Box::new(move |shard, db, key, w| {
        let Some(i) = keys_owned.iter().position(|k| k == key) else {
            return Serve::Skip;
        };
        let Some(s) = stream_in(shard, db, key, w.now_ms) else {
            if group.is_some() && shard.get(db, key, w.now_ms).is_none() {
                return Serve::Served(encode(resp3, |r| {
                    r.error("UNBLOCKED the stream key no longer exists")
                }));
            }
            return Serve::Skip;
        };
        let reply = match (&group, from[i]) {
            (Some((g, c)), _) => {
                if !s.groups.contains_key(g) {
                    return Serve::Served(encode(resp3, |r| {
                        r.error("NOGROUP the consumer group this client was blocked on no longer exists")
                    }));
                }
                let es = group_read_new(s, g, c, count, noack, w.now_ms);
                if es.is_empty() {
                    return Serve::Skip;
                }
                let ids: Vec<StreamId> = es.iter().map(|(id, _)| *id).collect();
                propagate_group_read(w, s, (key, g, c), &ids, true, false);
                encode(resp3, |r| {
                    if resp3 {
                        r.map(1);
                    } else {
                        r.array(1);
                        r.array(2);
                    }
                    r.bulk(key);
                    reply_owned_entries(r, &es);
                })
            }
            (None, ReadFrom::After(id)) => {
                let Some(f) = id.incr() else {
                    return Serve::Skip;
                };
                let es = s.range(f, StreamId::MAX, count);
                if es.is_empty() {
                    return Serve::Skip;
                }
                encode(resp3, |r| {
                    if resp3 {
                        r.map(1);
                    } else {
                        r.array(1);
                        r.array(2);
                    }
                    r.bulk(key);
                    reply_entries(r, &es);
                })
            }
            (None, _) => {
                // `+` on an empty stream: the first entry added.
                let Some(e) = s.last_entry() else {
                    return Serve::Skip;
                };
                encode(resp3, |r| {
                    if resp3 {
                        r.map(1);
                    } else {
                        r.array(1);
                        r.array(2);
                    }
                    r.bulk(key);
                    r.array(1);
                    reply_entry(r, &e);
                })
            }
        };
        Serve::Served(reply)
    });
    let null = encode(resp3, |r| r.null_array());
    let keys = ra.keys.clone();
    block(ctx, &mut guard, args, &keys, timeout, null, serve);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// XGROUP

fn subcommand_syntax(args: &Args<'_>, cmd: &str) -> CmdError {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(args.get(1)),
        cmd
    )
    .into()
}

fn entries_read_arg(b: &[u8]) -> Result<Option<u64>, CmdError> {
    let v = parse::int(b)?;
    if v < 0 && v != -1 {
        return Err("ERR value for ENTRIESREAD must be positive or -1".into());
    }
    Ok((v >= 0).then_some(v as u64))
}

const NEED_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

fn no_such_group(key: &[u8], g: &[u8]) -> CmdError {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(g),
        String::from_utf8_lossy(key)
    )
    .into()
}

fn xgroup_create(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g) = (args.get(2), args.get(3));
    let mut mkstream = false;
    let mut entries_read = None;
    if args.len() > 8 {
        return Err(subcommand_syntax(&args, "XGROUP"));
    }
    let mut i = 5;
    while i < args.len() {
        let opt = args.get(i);
        if parse::eq(opt, "mkstream") {
            mkstream = true;
            i += 1;
        } else if parse::eq(opt, "entriesread") && i + 1 < args.len() {
            entries_read = entries_read_arg(args.get(i + 1))?;
            i += 2;
        } else {
            return Err(subcommand_syntax(&args, "XGROUP"));
        }
    }
    let srv = ctx.srv;
    let db = ctx.db();
    let mut shard = srv.keyspace.lock_key(key);
    let exists = match ctx.lookup_write(&mut shard, key) {
        Some(e) => {
            stream_ref(e)?;
            true
        }
        None => false,
    };
    if !exists && !mkstream {
        return Err(NEED_KEY.into());
    }
    let idb = args.get(4);
    let id = if idb == b"$" {
        None
    } else {
        Some(strict_id(idb)?)
    };
    if !exists {
        let e = Entry::new(key, Value::Stream(Box::default()), ctx.lru_clock());
        shard.db_mut(db).insert_new(e);
    }
    let Some(e) = shard.db_mut(db).find_mut(key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_mut(e)?;
    if s.groups.contains_key(g) {
        return Err("BUSYGROUP Consumer Group name already exists".into());
    }
    let id = id.unwrap_or(s.last_id);
    s.groups.insert(
        g.to_vec(),
        stream::Group {
            last_id: id,
            entries_read,
            ..Default::default()
        },
    );
    ctx.modified(&mut shard, key, "xgroup-create");
    drop(shard);
    ctx.reply().ok();
    Ok(())
}

/// Lock the key's shard and run `f` on the stream's group (NOGROUP / key errors as XGROUP gives them).
fn with_group<T>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    g: &[u8],
    event: Option<&'static str>,
    f: impl FnOnce(&mut Stream, u64) -> Result<(T, bool), CmdError>,
) -> Result<T, CmdError> {
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        return Err(NEED_KEY.into());
    };
    let s = stream_mut(e)?;
    if !s.groups.contains_key(g) {
        return Err(no_such_group(key, g));
    }
    let (v, changed) = f(s, ctx.now_ms)?;
    if changed {
        if let Some(ev) = event {
            ctx.modified(&mut shard, key, ev);
        }
    }
    Ok(v)
}

fn xgroup_setid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g) = (args.get(2), args.get(3));
    let mut entries_read = None;
    match args.len() {
        5 => {}
        7 if parse::eq(args.get(5), "entriesread") => {
            entries_read = entries_read_arg(args.get(6))?;
        }
        _ => return Err(subcommand_syntax(&args, "XGROUP")),
    }
    let idb = args.get(4);
    let id = if idb == b"$" {
        None
    } else {
        Some(strict_id(idb)?)
    };
    with_group(ctx, key, g, Some("xgroup-setid"), |s, _| {
        let id = id.unwrap_or(s.last_id);
        if let Some(gr) = s.groups.get_mut(g) {
            gr.last_id = id;
            gr.entries_read = entries_read;
        }
        Ok(((), true))
    })?;
    ctx.reply().ok();
    Ok(())
}

fn xgroup_destroy(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g) = (args.get(2), args.get(3));
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        return Err(NEED_KEY.into());
    };
    let s = stream_mut(e)?;
    let removed = s.groups.remove(g).is_some();
    if removed {
        ctx.modified(&mut shard, key, "xgroup-destroy");
    }
    drop(shard);
    ctx.reply().int(removed as i64);
    Ok(())
}

fn xgroup_createconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g, c) = (args.get(2), args.get(3), args.get(4));
    let created = with_group(ctx, key, g, Some("xgroup-createconsumer"), |s, now| {
        let gr = s.groups.get_mut(g).expect("group checked");
        let (_, created) = gr.consumer_mut(c, now);
        Ok((created, created))
    })?;
    ctx.reply().int(created as i64);
    Ok(())
}

fn xgroup_delconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g, c) = (args.get(2), args.get(3), args.get(4));
    let pending = with_group(ctx, key, g, Some("xgroup-delconsumer"), |s, _| {
        let gr = s.groups.get_mut(g).expect("group checked");
        Ok(match gr.delete_consumer(c) {
            Some(n) => (n, true),
            None => (0, false),
        })
    })?;
    ctx.reply().int(pending as i64);
    Ok(())
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn help(ctx: &mut Ctx<'_>, lines: &[&str]) -> CmdResult {
    let mut r = ctx.reply();
    r.array(lines.len());
    for l in lines {
        r.simple(l);
    }
    Ok(())
}

fn xgroup_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help(ctx, XGROUP_HELP)
}

fn xinfo_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help(ctx, XINFO_HELP)
}

// ---------------------------------------------------------------------------------------------------------
// XACK XPENDING XCLAIM XAUTOCLAIM

fn xack(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g) = (args.get(1), args.get(2));
    let ids = args
        .iter()
        .skip(3)
        .map(strict_id)
        .collect::<Result<Vec<_>, _>>()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let s = stream_mut(e)?;
    let n = match s.groups.get_mut(g) {
        None => 0,
        Some(gr) => ids.iter().filter(|id| gr.ack(**id)).count(),
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn xpending(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g) = (args.get(1), args.get(2));
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(err::SYNTAX.into());
    }
    let mut ext: Option<PendingQuery<'_>> = None;
    if n >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if parse::eq(args.get(3), "idle") {
            min_idle = parse::int(args.get(4))?;
            if n < 8 {
                return Err(err::SYNTAX.into());
            }
            at += 2;
        }
        if at + 2 >= n {
            return Err(err::SYNTAX.into());
        }
        let count = parse::int(args.get(at + 2))?.max(0) as usize;
        let start = range_bound(args.get(at), true)?;
        let end = range_bound(args.get(at + 1), false)?;
        let consumer = (n > at + 3).then(|| args.get(at + 3));
        if n > at + 4 {
            return Err(err::SYNTAX.into());
        }
        ext = Some((min_idle.max(0) as u64, start, end, count, consumer));
    }
    let srv = ctx.srv;
    let now = ctx.now_ms;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        return Err(nogroup(key, g));
    };
    let s = stream_ref(e)?;
    let Some(gr) = s.groups.get(g) else {
        return Err(nogroup(key, g));
    };
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    match ext {
        None => {
            r.array(4);
            r.int(gr.pel.len() as i64);
            if gr.pel.is_empty() {
                r.null();
                r.null();
                r.null_array();
            } else {
                id_bulk(&mut r, *gr.pel.keys().next().expect("nonempty"));
                id_bulk(&mut r, *gr.pel.keys().next_back().expect("nonempty"));
                let with: Vec<_> = gr
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pending.is_empty())
                    .collect();
                r.array(with.len());
                for (name, c) in with {
                    r.array(2);
                    r.bulk(name);
                    r.bulk(c.pending.len().to_string().as_bytes());
                }
            }
        }
        Some((min_idle, start, end, count, consumer)) => {
            let mut rows = Vec::new();
            if start <= end && count > 0 {
                let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
                    Some(c) => match gr.consumers.get(c) {
                        Some(c) => Box::new(c.pending.range(start..=end).copied()),
                        None => Box::new(std::iter::empty()),
                    },
                    None => Box::new(gr.pel.range(start..=end).map(|(k, _)| *k)),
                };
                for id in ids {
                    let Some(p) = gr.pel.get(&id) else { continue };
                    let idle = now.saturating_sub(p.delivery_time);
                    if min_idle > 0 && idle < min_idle {
                        continue;
                    }
                    rows.push((id, p, idle));
                    if rows.len() >= count {
                        break;
                    }
                }
            }
            r.array(rows.len());
            for (id, p, idle) in rows {
                r.array(4);
                id_bulk(&mut r, id);
                r.bulk(&p.consumer);
                r.int(idle as i64);
                r.int(p.delivery_count as i64);
            }
        }
    }
    Ok(())
}

/// XCLAIM/XAUTOCLAIM's common start: the group must exist (NOGROUP), then the min-idle-time (negative = 0).
fn claim_prologue(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    g: &[u8],
    min_idle: &[u8],
    cmd: &str,
) -> Result<u64, CmdError> {
    let group_ok = match ctx.lookup_write(shard, key) {
        Some(e) => stream_ref(e)?.groups.contains_key(g),
        None => false,
    };
    if !group_ok {
        return Err(nogroup(key, g));
    }
    let v = num::parse_i64(min_idle)
        .ok_or_else(|| CmdError::from(format!("ERR Invalid min-idle-time argument for {cmd}")))?;
    Ok(v.max(0) as u64)
}

fn xclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g, consumer) = (args.get(1), args.get(2), args.get(3));
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let min_idle = claim_prologue(ctx, &mut shard, key, g, args.get(4), "XCLAIM")?;
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(args.get(j)) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut delivery_time: Option<i64> = None;
    let mut retry: Option<u64> = None;
    let mut last_id: Option<StreamId> = None;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if parse::eq(opt, "force") {
            force = true;
        } else if parse::eq(opt, "justid") {
            justid = true;
        } else if parse::eq(opt, "idle") && more > 0 {
            j += 1;
            let v = num::parse_i64(args.get(j)).ok_or(CmdError::from(
                "ERR Invalid IDLE option argument for XCLAIM",
            ))?;
            delivery_time = Some((now as i64).saturating_sub(v));
        } else if parse::eq(opt, "time") && more > 0 {
            j += 1;
            delivery_time = Some(num::parse_i64(args.get(j)).ok_or(CmdError::from(
                "ERR Invalid TIME option argument for XCLAIM",
            ))?);
        } else if parse::eq(opt, "retrycount") && more > 0 {
            j += 1;
            retry = Some(
                num::parse_i64(args.get(j))
                    .ok_or(CmdError::from(
                        "ERR Invalid RETRYCOUNT option argument for XCLAIM",
                    ))?
                    .max(0) as u64,
            );
        } else if parse::eq(opt, "lastid") && more > 0 {
            j += 1;
            last_id = Some(strict_id(args.get(j))?);
        } else {
            return Err(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )
            .into());
        }
        j += 1;
    }
    let dt = match delivery_time {
        Some(t) if t >= 0 && (t as u64) <= now => t as u64,
        _ => now,
    };
    let db = ctx.db();
    let Some(Value::Stream(s)) = shard.db_mut(db).find_mut(key).and_then(|e| e.value_mut()) else {
        return Err(nogroup(key, g));
    };
    let mut claimed: Vec<MaybeEntry> = Vec::new();
    let mut changed = false;
    let mut acked: Vec<StreamId> = Vec::new();
    let existed = has_consumer(s, g, consumer);
    let mut moved_last = false;
    if let Some(l) = last_id {
        let gr = s.groups.get_mut(g).expect("group");
        if l > gr.last_id {
            gr.last_id = l;
            changed = true;
            moved_last = true;
        }
    }
    for id in ids {
        let exists = s.contains(id);
        let gr = s.groups.get_mut(g).expect("group");
        let mut count = match gr.pel.get(&id) {
            Some(p) => {
                if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                    continue;
                }
                p.delivery_count
            }
            None => {
                if !force || !exists {
                    continue;
                }
                0
            }
        };
        if !exists {
            gr.ack(id);
            acked.push(id);
            changed = true;
            continue;
        }
        if let Some(rc) = retry {
            count = rc;
        } else if !justid {
            count += 1;
        }
        gr.assign(id, consumer, dt, count);
        let (c, _) = gr.consumer_mut(consumer, now);
        c.seen_time = now;
        c.active_time = Some(now);
        changed = true;
        let fields = if justid {
            None
        } else {
            s.get(id).map(|e| {
                e.fields
                    .iter()
                    .map(|(a, b)| (a.to_vec(), b.to_vec()))
                    .collect()
            })
        };
        claimed.push((id, fields));
    }
    if changed {
        // The effect with absolute delivery times (min-idle-time depends on the clock).
        let ids: Vec<StreamId> = claimed.iter().map(|(id, _)| *id).collect();
        let created = !existed && has_consumer(s, g, consumer);
        propagate_group_read(ctx, s, (key, g, consumer), &ids, moved_last, created);
        for id in acked {
            ctx.propagate_after(vec![
                b"XACK".to_vec(),
                key.to_vec(),
                g.to_vec(),
                id.to_bytes(),
            ]);
        }
    }
    drop(shard);
    let mut r = ctx.reply();
    r.array(claimed.len());
    for (id, f) in claimed {
        match f {
            None => id_bulk(&mut r, id),
            Some(f) => {
                r.array(2);
                id_bulk(&mut r, id);
                r.array(f.len() * 2);
                for (a, b) in &f {
                    r.bulk(a);
                    r.bulk(b);
                }
            }
        }
    }
    Ok(())
}

fn xautoclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g, consumer) = (args.get(1), args.get(2), args.get(3));
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let min_idle = claim_prologue(ctx, &mut shard, key, g, args.get(4), "XAUTOCLAIM")?;
    let start = range_bound(args.get(5), true)?;
    let mut count: usize = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        if parse::eq(opt, "count") && more > 0 {
            j += 1;
            match num::parse_i64(args.get(j)) {
                Some(v) if (1..=i64::MAX / 10).contains(&v) => count = v as usize,
                _ => return Err("ERR COUNT must be > 0".into()),
            }
        } else if parse::eq(opt, "justid") {
            justid = true;
        } else {
            return Err(err::SYNTAX.into());
        }
        j += 1;
    }
    let db = ctx.db();
    let Some(Value::Stream(s)) = shard.db_mut(db).find_mut(key).and_then(|e| e.value_mut()) else {
        return Err(nogroup(key, g));
    };
    let mut attempts = count.saturating_mul(10);
    let mut claimed: Vec<MaybeEntry> = Vec::new();
    let mut deleted: Vec<StreamId> = Vec::new();
    let candidates: Vec<(StreamId, u64, u64)> = {
        let gr = s.groups.get(g).expect("group");
        gr.pel
            .range(start..)
            .map(|(id, p)| (*id, p.delivery_time, p.delivery_count))
            .collect()
    };
    let mut next = StreamId::MIN;
    let existed = has_consumer(s, g, consumer);
    let mut it = candidates.into_iter().peekable();
    while attempts > 0 && count > 0 {
        let Some((id, dtime, dcount)) = it.next() else {
            break;
        };
        attempts -= 1;
        if min_idle > 0 && now.saturating_sub(dtime) < min_idle {
            continue;
        }
        let exists = s.contains(id);
        let gr = s.groups.get_mut(g).expect("group");
        if !exists {
            gr.ack(id);
            deleted.push(id);
            continue;
        }
        gr.assign(id, consumer, now, if justid { dcount } else { dcount + 1 });
        let (c, _) = gr.consumer_mut(consumer, now);
        c.seen_time = now;
        c.active_time = Some(now);
        let fields = if justid {
            None
        } else {
            s.get(id).map(|e| {
                e.fields
                    .iter()
                    .map(|(a, b)| (a.to_vec(), b.to_vec()))
                    .collect()
            })
        };
        claimed.push((id, fields));
        count -= 1;
    }
    if let Some((id, _, _)) = it.peek() {
        next = *id;
    }
    // The consumer exists even when nothing was claimed.
    if let Some(gr) = s.groups.get_mut(g) {
        let (c, _) = gr.consumer_mut(consumer, now);
        c.seen_time = now;
    }
    let ids: Vec<StreamId> = claimed.iter().map(|(id, _)| *id).collect();
    propagate_group_read(ctx, s, (key, g, consumer), &ids, false, !existed);
    for id in &deleted {
        ctx.propagate_after(vec![
            b"XACK".to_vec(),
            key.to_vec(),
            g.to_vec(),
            id.to_bytes(),
        ]);
    }
    drop(shard);
    let mut r = ctx.reply();
    r.array(3);
    id_bulk(&mut r, next);
    r.array(claimed.len());
    for (id, f) in claimed {
        match f {
            None => id_bulk(&mut r, id),
            Some(f) => {
                r.array(2);
                id_bulk(&mut r, id);
                r.array(f.len() * 2);
                for (a, b) in &f {
                    r.bulk(a);
                    r.bulk(b);
                }
            }
        }
    }
    r.array(deleted.len());
    for id in deleted {
        id_bulk(&mut r, id);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// XINFO

fn xinfo_stream(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(2);
    let mut full = false;
    let mut count: usize = 10;
    match args.len() {
        3 => {}
        4 if parse::eq(args.get(3), "full") => full = true,
        6 if parse::eq(args.get(3), "full") && parse::eq(args.get(4), "count") => {
            full = true;
            let c = parse::int(args.get(5))?;
            count = if c <= 0 { 0 } else { c as usize };
        }
        _ => return Err(err::SYNTAX.into()),
    }
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_ref(e)?;
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    let first = s.first_id().unwrap_or(StreamId::MIN);
    r.map(if full { 9 } else { 10 });
    r.bulk(b"length");
    r.int(s.len() as i64);
    r.bulk(b"radix-tree-keys");
    r.int(s.chunk_count() as i64);
    r.bulk(b"radix-tree-nodes");
    r.int(s.chunk_count() as i64 + 1);
    r.bulk(b"last-generated-id");
    id_bulk(&mut r, s.last_id);
    r.bulk(b"max-deleted-entry-id");
    id_bulk(&mut r, s.max_deleted_id);
    r.bulk(b"entries-added");
    r.int(s.entries_added as i64);
    r.bulk(b"recorded-first-entry-id");
    id_bulk(&mut r, first);
    if !full {
        r.bulk(b"groups");
        r.int(s.groups.len() as i64);
        r.bulk(b"first-entry");
        reply_opt_entry(&mut r, s.first_entry());
        r.bulk(b"last-entry");
        reply_opt_entry(&mut r, s.last_entry());
        return Ok(());
    }
    r.bulk(b"entries");
    reply_entries(&mut r, &s.range(StreamId::MIN, StreamId::MAX, count));
    r.bulk(b"groups");
    r.array(s.groups.len());
    for (name, gr) in &s.groups {
        r.map(7);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"last-delivered-id");
        id_bulk(&mut r, gr.last_id);
        r.bulk(b"entries-read");
        match gr.entries_read {
            Some(n) => r.int(n as i64),
            None => r.null(),
        }
        r.bulk(b"lag");
        match s.group_lag(gr) {
            Some(n) => r.int(n as i64),
            None => r.null(),
        }
        r.bulk(b"pel-count");
        r.int(gr.pel.len() as i64);
        r.bulk(b"pending");
        let pel: Vec<_> = gr
            .pel
            .iter()
            .take(if count == 0 { usize::MAX } else { count })
            .collect();
        r.array(pel.len());
        for (id, p) in pel {
            r.array(4);
            id_bulk(&mut r, *id);
            r.bulk(&p.consumer);
            r.int(p.delivery_time as i64);
            r.int(p.delivery_count as i64);
        }
        r.bulk(b"consumers");
        r.array(gr.consumers.len());
        for (cname, c) in &gr.consumers {
            r.map(5);
            r.bulk(b"name");
            r.bulk(cname);
            r.bulk(b"seen-time");
            r.int(c.seen_time as i64);
            r.bulk(b"active-time");
            r.int(c.active_time.map_or(-1, |t| t as i64));
            r.bulk(b"pel-count");
            r.int(c.pending.len() as i64);
            r.bulk(b"pending");
            let ids: Vec<_> = c
                .pending
                .iter()
                .take(if count == 0 { usize::MAX } else { count })
                .collect();
            r.array(ids.len());
            for id in ids {
                let p = gr.pel.get(id);
                r.array(3);
                id_bulk(&mut r, *id);
                r.int(p.map_or(0, |p| p.delivery_time) as i64);
                r.int(p.map_or(0, |p| p.delivery_count) as i64);
            }
        }
    }
    let _ = now;
    Ok(())
}

fn xinfo_groups(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(2);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_ref(e)?;
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    r.array(s.groups.len());
    for (name, gr) in &s.groups {
        r.map(6);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"consumers");
        r.int(gr.consumers.len() as i64);
        r.bulk(b"pending");
        r.int(gr.pel.len() as i64);
        r.bulk(b"last-delivered-id");
        id_bulk(&mut r, gr.last_id);
        r.bulk(b"entries-read");
        match gr.entries_read {
            Some(n) => r.int(n as i64),
            None => r.null(),
        }
        r.bulk(b"lag");
        match s.group_lag(gr) {
            Some(n) => r.int(n as i64),
            None => r.null(),
        }
    }
    Ok(())
}

fn xinfo_consumers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (key, g) = (args.get(2), args.get(3));
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_ref(e)?;
    let Some(gr) = s.groups.get(g) else {
        return Err(no_such_group(key, g));
    };
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    r.array(gr.consumers.len());
    for (name, c) in &gr.consumers {
        r.map(4);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"pending");
        r.int(c.pending.len() as i64);
        r.bulk(b"idle");
        r.int(now.saturating_sub(c.seen_time) as i64);
        r.bulk(b"inactive");
        r.int(c.active_time.map_or(-1, |t| now.saturating_sub(t) as i64));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for c in COMMANDS {
            assert!(!c.summary.is_empty(), "{}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(range_bound(b"-", true).unwrap(), StreamId::MIN);
        assert_eq!(range_bound(b"(5-0", true).unwrap(), StreamId::new(5, 1));
        assert_eq!(
            range_bound(b"(0-0", false).unwrap_err().msg(),
            "ERR invalid end ID for the interval"
        );
        assert_eq!(
            range_bound(b"(+", true).unwrap_err().msg(),
            stream::INVALID_ID
        );
    }
}
