//! Stream commands: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID XREAD XREADGROUP XGROUP XACK XPENDING
//! XCLAIM XAUTOCLAIM XINFO.
//!
//! Locking: every command but XREAD/XREADGROUP touches one key and locks its shard. XREAD/XREADGROUP lock
//! all their keys with `lock_many`; with BLOCK and nothing to return they register a waiter (see
//! cmd::blocking::block) whose serve function runs inside the writer's lock (XADD's `ctx.modified`), reads
//! the new entries and, for a group, advances the group and its PEL there too.
//!
//! This module holds the command tables and the pieces the handlers share; the handlers are in `write`
//! (XADD XDEL XTRIM XSETID), `read` (XLEN XRANGE XREVRANGE XREAD XREADGROUP, blocking reads), `groups`
//! (XGROUP), `pending` (XACK XPENDING XCLAIM XAUTOCLAIM) and `info` (XINFO).

use super::argv::Argv;
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

mod groups;
mod info;
mod pending;
mod read;
mod write;

use groups::*;
use info::*;
use pending::*;
use read::*;
use write::*;

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

/// The value of a COUNT (XRANGE/XREVRANGE, XREAD/XREADGROUP, XINFO STREAM FULL, XPENDING's count): an
/// integer, a negative one read as 0.
fn count_arg(a: &mut Argv<'_>) -> Result<usize, CmdError> {
    Ok(a.int()?.max(0) as usize)
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`, with the
/// subcommand as the client typed it (Redis's addReplySubcommandSyntaxError). XGROUP, XINFO and FUNCTION
/// use it.
pub(crate) fn subcommand_syntax(sub: &[u8], cmd: &str) -> CmdError {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd
    )
    .into()
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
