//! String commands: GET, SET, SETNX, SETEX, PSETEX, MGET, MSET, MSETNX, GETSET, GETDEL, GETEX, APPEND, STRLEN,
//! INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, GETRANGE, SETRANGE, SUBSTR, LCS.

use super::argv::Argv;
use super::spec::{self, ACCESS, DELETE, INSERT, OW, RO, RW, UPDATE, VARIABLE_FLAGS};
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx, KeyRef};
use crate::cmd::acl;
use crate::keyspace::entry::Entry;
use crate::types::strings::{self as st, LdError};
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: get,
        group: "string",
        since: "1.0.0",
        summary: "Returns the string value of a key.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "set",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE | VARIABLE_FLAGS).notes("RW and ACCESS due to the optional `GET` argument"),
        ],
        get_keys: Some(set_keys),
        handler: set,
        group: "string",
        since: "1.0.0",
        summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        complexity: "O(1)",
        syntax: "key value condition:[NX | XX]@2.6.12 [GET@6.2.0] expiration:[EX seconds:integer@2.6.12 | PX milliseconds:integer@2.6.12 | EXAT unix-time-seconds:unix-time@6.2.0 | PXAT unix-time-milliseconds:unix-time@6.2.0 | KEEPTTL@6.0.0]",
        history: &[
            ("2.6.12", "Added the `EX`, `PX`, `NX` and `XX` options."),
            ("6.0.0", "Added the `KEEPTTL` option."),
            ("6.2.0", "Added the `GET`, `EXAT` and `PXAT` option."),
            ("7.0.0", "Allowed the `NX` and `GET` options to be used together."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "setnx",
        arity: 3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(OW | INSERT)],
        handler: setnx,
        group: "string",
        since: "1.0.0",
        summary: "Set the string value of a key only when the key doesn't exist.",
        complexity: "O(1)",
        syntax: "key value",
        deprecated_since: "2.6.12",
        replaced_by: "`SET` with the `NX` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "setex",
        arity: 4,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(OW | UPDATE)],
        handler: setex,
        group: "string",
        since: "2.0.0",
        summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
        complexity: "O(1)",
        syntax: "key seconds:integer value",
        deprecated_since: "2.6.12",
        replaced_by: "`SET` with the `EX` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "psetex",
        arity: 4,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(OW | UPDATE)],
        handler: psetex,
        group: "string",
        since: "2.6.0",
        summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
        complexity: "O(1)",
        syntax: "key milliseconds:integer value",
        deprecated_since: "2.6.12",
        replaced_by: "`SET` with the `PX` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "mget",
        arity: -2,
        flags: READONLY | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO | ACCESS)],
        handler: mget,
        group: "string",
        since: "1.0.0",
        summary: "Atomically returns the string values of one or more keys.",
        complexity: "O(N) where N is the number of keys to retrieve.",
        syntax: "key ...",
        tips: &["request_policy:multi_shard"],
        ..Command::DEFAULT
    },
    Command {
        name: "mset",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: &[spec::index(1).range(-1, 2, 0).flags(OW | UPDATE)],
        handler: mset,
        group: "string",
        since: "1.0.1",
        summary: "Atomically creates or modifies the string values of one or more keys.",
        complexity: "O(N) where N is the number of keys to set.",
        syntax: "data:<key value> ...",
        tips: &["request_policy:multi_shard", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "msetnx",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: &[spec::index(1).range(-1, 2, 0).flags(OW | INSERT)],
        handler: msetnx,
        group: "string",
        since: "1.0.1",
        summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        complexity: "O(N) where N is the number of keys to set.",
        syntax: "data:<key value> ...",
        ..Command::DEFAULT
    },
    Command {
        name: "getset",
        arity: 3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: getset,
        group: "string",
        since: "1.0.0",
        summary: "Returns the previous string value of a key after setting it to a new value.",
        complexity: "O(1)",
        syntax: "key value",
        deprecated_since: "6.2.0",
        replaced_by: "`SET` with the `!GET` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "getdel",
        arity: 2,
        flags: WRITE | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)],
        handler: getdel,
        group: "string",
        since: "6.2.0",
        summary: "Returns the string value of a key after deleting the key.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "getex",
        arity: -2,
        flags: WRITE | FAST,
        acl: acl::STRING,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE).notes("RW and UPDATE because it changes the TTL"),
        ],
        handler: getex,
        group: "string",
        since: "6.2.0",
        summary: "Returns the string value of a key after setting its expiration time.",
        complexity: "O(1)",
        syntax: "key expiration:[EX seconds:integer | PX milliseconds:integer | EXAT unix-time-seconds:unix-time | PXAT unix-time-milliseconds:unix-time | PERSIST]",
        ..Command::DEFAULT
    },
    Command {
        name: "append",
        arity: 3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | INSERT)],
        handler: append,
        group: "string",
        since: "2.0.0",
        summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        complexity: "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.",
        syntax: "key value",
        ..Command::DEFAULT
    },
    Command {
        name: "strlen",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO)],
        handler: strlen,
        group: "string",
        since: "2.2.0",
        summary: "Returns the length of a string value.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "incr",
        arity: 2,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: incr,
        group: "string",
        since: "1.0.0",
        summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "decr",
        arity: 2,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: decr,
        group: "string",
        since: "1.0.0",
        summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "incrby",
        arity: 3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: incrby,
        group: "string",
        since: "1.0.0",
        summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        complexity: "O(1)",
        syntax: "key increment:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "decrby",
        arity: 3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: decrby,
        group: "string",
        since: "1.0.0",
        summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
        complexity: "O(1)",
        syntax: "key decrement:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "incrbyfloat",
        arity: 3,
        flags: WRITE | DENYOOM | FAST,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: incrbyfloat,
        group: "string",
        since: "2.6.0",
        summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
        complexity: "O(1)",
        syntax: "key increment:double",
        ..Command::DEFAULT
    },
    Command {
        name: "getrange",
        arity: 4,
        flags: READONLY,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: getrange,
        group: "string",
        since: "2.4.0",
        summary: "Returns a substring of the string stored at a key.",
        complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
        syntax: "key start:integer end:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "setrange",
        arity: 4,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: setrange,
        group: "string",
        since: "2.2.0",
        summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
        complexity: "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
        syntax: "key offset:integer value",
        ..Command::DEFAULT
    },
    Command {
        name: "substr",
        arity: 4,
        flags: READONLY,
        acl: acl::STRING,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: getrange,
        group: "string",
        since: "1.0.0",
        summary: "Returns a substring from a string value.",
        complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
        syntax: "key start:integer end:integer",
        deprecated_since: "2.0.0",
        replaced_by: "`GETRANGE`",
        ..Command::DEFAULT
    },
    Command {
        name: "lcs",
        arity: -3,
        flags: READONLY,
        acl: acl::STRING,
        keys: &[spec::index(1).range(1, 1, 0).flags(RO | ACCESS)],
        handler: lcs,
        group: "string",
        since: "7.0.0",
        summary: "Finds the longest common substring.",
        complexity: "O(N*M) where N and M are the lengths of s1 and s2, respectively",
        syntax: "key1:key key2:key#0 [LEN] [IDX] [MINMATCHLEN min-match-len:integer] [WITHMATCHLEN]",
        ..Command::DEFAULT
    },
];

/// SET's key finder (Redis's setGetKeys): with GET the old value is read too.
fn set_keys(args: &Args<'_>, out: &mut Vec<KeyRef>) -> bool {
    let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
    out.push(KeyRef {
        pos: 1,
        flags: if get {
            RW | ACCESS | UPDATE
        } else {
            OW | UPDATE
        },
    });
    true
}

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TtlOpt {
    /// Clear any TTL (plain SET).
    None,
    KeepTtl,
    /// Absolute unix ms.
    At(u64),
    Persist,
}

/// Which option set the SET/GETEX parser accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OptKind {
    Set,
    GetEx,
}

/// Expiry units and bases.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpUnit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

#[derive(Default)]
struct ExtOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpUnit, &'a [u8])>,
}

/// Parse SET's or GETEX's options (the rest of `a`, after the key and, for SET, the value) with Redis's rules:
/// NX/XX exclude each other, one kind of expiry (repeating the same one is allowed, the last wins),
/// KEEPTTL/PERSIST exclude any expiry. Only syntax is checked here; the expiry value is validated later, as
/// Redis does. The one parser of the EX/PX/EXAT/PXAT/KEEPTTL/PERSIST and NX/XX/GET option set.
fn parse_ext_opts<'a>(a: &mut Argv<'a>, kind: OptKind) -> Result<ExtOpts<'a>, CmdError> {
    let mut o = ExtOpts::default();
    let is_set = kind == OptKind::Set;
    while let Some(word) = a.opt() {
        let unit = o.expire.map(|(u, _)| u);
        if is_set && parse::eq(word, "nx") && !o.xx {
            o.nx = true;
        } else if is_set && parse::eq(word, "xx") && !o.nx {
            o.xx = true;
        } else if is_set && parse::eq(word, "get") {
            o.get = true;
        } else if is_set && parse::eq(word, "keepttl") && !o.persist && unit.is_none() {
            o.keepttl = true;
        } else if !is_set && parse::eq(word, "persist") && !o.keepttl && unit.is_none() {
            o.persist = true;
        } else {
            let u = if parse::eq(word, "ex") {
                ExpUnit::Ex
            } else if parse::eq(word, "px") {
                ExpUnit::Px
            } else if parse::eq(word, "exat") {
                ExpUnit::ExAt
            } else if parse::eq(word, "pxat") {
                ExpUnit::PxAt
            } else {
                return Err(err::SYNTAX.into());
            };
            if o.keepttl || o.persist || unit.is_some_and(|x| x != u) {
                return Err(err::SYNTAX.into());
            }
            // A missing value is a syntax error too.
            o.expire = Some((u, a.next()?));
        }
    }
    Ok(o)
}

fn invalid_expire(cmd: &str) -> CmdError {
    format!("ERR invalid expire time in '{cmd}' command").into()
}

/// Validate an expiry argument and turn it into absolute unix ms, with Redis's errors: not an integer ->
/// "value is not an integer or out of range"; <= 0, or overflowing -> "invalid expire time in '<cmd>' command".
fn expire_at(now_ms: u64, unit: ExpUnit, val: &[u8], cmd: &str) -> Result<u64, CmdError> {
    let n = parse::int(val)?;
    let seconds = matches!(unit, ExpUnit::Ex | ExpUnit::ExAt);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    let ms = if seconds { n * 1000 } else { n };
    let abs = if matches!(unit, ExpUnit::Ex | ExpUnit::Px) {
        ms.checked_add(now_ms as i64)
            .ok_or_else(|| invalid_expire(cmd))?
    } else {
        ms
    };
    Ok(abs as u64)
}

/// Overwrite an existing entry's string as Redis's setKey does: its TTL is cleared unless `ttl` keeps or sets
/// it. Returns (had a TTL, has a TTL) for `Table::note_ttl_change`.
fn overwrite_str(e: &mut Entry, val: &[u8], ttl: TtlOpt) -> (bool, bool) {
    let had = e.expire_at().is_some();
    e.set_str(val);
    match ttl {
        TtlOpt::KeepTtl => {}
        TtlOpt::At(t) => e.set_expire_at(Some(t)),
        TtlOpt::None | TtlOpt::Persist => e.set_expire_at(None),
    }
    (had, e.expire_at().is_some())
}

/// A new string entry with an optional absolute expiry.
fn new_str_entry(key: &[u8], val: &[u8], ttl: TtlOpt, lru: u32) -> Box<Entry> {
    let mut e = Entry::new_str(key, val, lru);
    if let TtlOpt::At(t) = ttl {
        e.set_expire_at(Some(t));
    }
    e
}

/// Store a string as Redis's setKey does, given the result of the caller's `ctx.lookup*` of the key (so an
/// expired entry is already gone): overwrite the existing entry or insert a new key. One hash lookup in the
/// common case; the volatile count stays exact.
macro_rules! store_str {
    ($shard:expr, $db:expr, $existing:expr, $key:expr, $val:expr, $ttl:expr, $lru:expr) => {
        match $existing {
            Some(e) => {
                let (had, has) = overwrite_str(e, $val, $ttl);
                if had != has {
                    $shard.db_mut($db).note_ttl_change(had, has);
                }
            }
            None => $shard
                .db_mut($db)
                .insert_new(new_str_entry($key, $val, $ttl, $lru)),
        }
    };
}

fn reply_opt_bulk(ctx: &mut Ctx<'_>, v: Option<&[u8]>) {
    match v {
        Some(s) => ctx.reply().bulk(s),
        None => ctx.reply().null(),
    }
}

fn max_bulk_len(ctx: &Ctx<'_>) -> u64 {
    ctx.srv.config.read().proto_max_bulk_len
}

/// Redis's checkStringLength: a string of `len + add` bytes must fit proto-max-bulk-len.
fn check_string_length(ctx: &Ctx<'_>, len: u64, add: u64) -> CmdResult {
    match len.checked_add(add) {
        Some(t) if t <= max_bulk_len(ctx) => Ok(()),
        _ => Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into()),
    }
}

/// Runs `f` on a string value's bytes as a growable buffer, in place unless the value is packed with the key;
/// the value is `raw` afterwards (Redis's dbUnshareStringValue). For SETBIT, BITFIELD and the HyperLogLog
/// commands, which edit a string's bytes.
pub(super) fn with_raw_bytes<R>(e: &mut Entry, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    if let Some(crate::types::Value::Str(v)) = e.value_mut() {
        let r = f(v);
        e.mark_raw();
        return r;
    }
    let mut v = e.take_str_vec().unwrap_or_default();
    let r = f(&mut v);
    e.set_str_vec(v);
    e.mark_raw();
    r
}

/// Make room in `s` for a string of `total` bytes. With proto-max-bulk-len raised, a client can ask for
/// more than the machine has: that is an error reply (Redis aborts), never an abort.
pub(super) fn grow_string(s: &mut Vec<u8>, total: u64) -> CmdResult {
    let Ok(total) = usize::try_from(total) else {
        return Err(string_oom(total));
    };
    let extra = total.saturating_sub(s.len());
    crate::mem::try_reserve(s, extra).map_err(|_| string_oom(total as u64))
}

pub(super) fn string_oom(total: u64) -> CmdError {
    format!("ERR not enough memory for a string of {total} bytes").into()
}

// ---------------------------------------------------------------------------------------------------------
// GET / SET family

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    match ctx.lookup(&mut shard, key) {
        None => ctx.reply().null(),
        Some(e) => match e.as_str() {
            Some(s) => ctx.reply().bulk(s),
            None => return Err(err::WRONGTYPE.into()),
        },
    }
    Ok(())
}

/// What a SET-like command replies when it does (or does not) store the value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// +OK / null (SET, SETEX, PSETEX).
    Ok,
    /// :1 / :0 (SETNX).
    Int,
}

/// setGenericCommand: the shared body of SET, SETNX, SETEX and PSETEX.
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    val: &[u8],
    o: &ExtOpts<'_>,
    cmd: &str,
    how: SetReply,
) -> CmdResult {
    let when = match o.expire {
        Some((u, v)) => Some(expire_at(ctx.now_ms, u, v, cmd)?),
        None => None,
    };
    let lru = ctx.lru_clock();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let mut old: Option<Option<Vec<u8>>> = None;
    let existing = if o.get {
        let e = ctx.lookup(&mut shard, key);
        old = Some(match &e {
            None => None,
            Some(e) => Some(e.as_str().ok_or(err::WRONGTYPE)?.to_vec()),
        });
        e
    } else {
        ctx.lookup_write(&mut shard, key)
    };
    let exists = existing.is_some();
    if (o.nx && exists) || (o.xx && !exists) {
        drop(shard);
        match (old, how) {
            (Some(o), _) => reply_opt_bulk(ctx, o.as_deref()),
            (None, SetReply::Int) => ctx.reply().int(0),
            (None, SetReply::Ok) => ctx.reply().null(),
        }
        return Ok(());
    }
    let ttl = match when {
        Some(t) => TtlOpt::At(t),
        None if o.keepttl => TtlOpt::KeepTtl,
        None => TtlOpt::None,
    };
    let db = ctx.client.db;
    store_str!(shard, db, existing, key, val, ttl, lru);
    ctx.modified(&mut shard, key, "set");
    if let Some(t) = when {
        // SET with a TTL (and SETEX/PSETEX) also notifies "expire", as Redis does.
        ctx.key_event(db, key, "expire");
        // Replayed later, a relative TTL would count from the replay: propagate the absolute time.
        if !matches!(o.expire, Some((ExpUnit::PxAt, _))) {
            ctx.propagate_as(vec![vec![
                b"SET".to_vec(),
                key.to_vec(),
                val.to_vec(),
                b"PXAT".to_vec(),
                t.to_string().into_bytes(),
            ]]);
        }
    }
    drop(shard);
    match (old, how) {
        (Some(o), _) => reply_opt_bulk(ctx, o.as_deref()),
        (None, SetReply::Int) => ctx.reply().int(1),
        (None, SetReply::Ok) => ctx.reply().ok(),
    }
    Ok(())
}

fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, val) = (a.next()?, a.next()?);
    let o = parse_ext_opts(&mut a, OptKind::Set)?;
    set_generic(ctx, key, val, &o, "set", SetReply::Ok)
}

fn setnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, val) = (a.next()?, a.next()?);
    let o = ExtOpts {
        nx: true,
        ..Default::default()
    };
    set_generic(ctx, key, val, &o, "setnx", SetReply::Int)
}

/// SETEX / PSETEX key time value.
fn set_with_expire(ctx: &mut Ctx<'_>, args: Args<'_>, unit: ExpUnit, cmd: &str) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, time, val) = (a.next()?, a.next()?, a.next()?);
    let o = ExtOpts {
        expire: Some((unit, time)),
        ..Default::default()
    };
    set_generic(ctx, key, val, &o, cmd, SetReply::Ok)
}

fn setex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_with_expire(ctx, args, ExpUnit::Ex, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_with_expire(ctx, args, ExpUnit::Px, "psetex")
}

fn getset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, val) = (a.next()?, a.next()?);
    let o = ExtOpts {
        get: true,
        ..Default::default()
    };
    set_generic(ctx, key, val, &o, "getset", SetReply::Ok)
}

fn getdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    match ctx.lookup(&mut shard, key) {
        None => {
            drop(shard);
            ctx.reply().null();
        }
        Some(e) => {
            if !e.is_str() {
                return Err(err::WRONGTYPE.into());
            }
            let removed = shard.db_mut(ctx.client.db).remove(key);
            if removed.is_some() {
                ctx.modified(&mut shard, key, "del");
                ctx.propagate_as(vec![vec![b"DEL".to_vec(), key.to_vec()]]);
            }
            drop(shard);
            if let Some(e) = removed {
                ctx.reply().bulk(e.as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let o = parse_ext_opts(&mut a, OptKind::GetEx)?;
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().null();
        return Ok(());
    };
    let Some(s) = e.as_str() else {
        return Err(err::WRONGTYPE.into());
    };
    let when = match o.expire {
        Some((u, v)) => Some(expire_at(now, u, v, "getex")?),
        None => None,
    };
    let absolute = matches!(o.expire, Some((ExpUnit::ExAt | ExpUnit::PxAt, _)));
    let had_ttl = e.expire_at().is_some();
    ctx.reply().bulk(s);
    let event = match when {
        Some(t) if absolute && t <= now => {
            shard.db_mut(db).remove(key);
            Some("del")
        }
        Some(t) => {
            shard.db_mut(db).set_expire(key, Some(t));
            Some("expire")
        }
        None if o.persist && had_ttl => {
            shard.db_mut(db).set_expire(key, None);
            Some("persist")
        }
        None => None,
    };
    if let Some(ev) = event {
        ctx.modified(&mut shard, key, ev);
        // Propagated as the effect: DEL, PEXPIREAT with the absolute time, or PERSIST.
        let k = key.to_vec();
        ctx.propagate_as(vec![match (ev, when) {
            ("del", _) => vec![b"DEL".to_vec(), k],
            (_, Some(t)) => vec![b"PEXPIREAT".to_vec(), k, t.to_string().into_bytes()],
            _ => vec![b"PERSIST".to_vec(), k],
        }]);
    }
    drop(shard);
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = args.skip(1);
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(keys.iter());
    ctx.reply().array(keys.len());
    for k in keys.iter() {
        let shard = guard.shard(k);
        match ctx.lookup(shard, k).and_then(|e| e.as_str()) {
            Some(s) => ctx.reply().bulk(s),
            None => ctx.reply().null(),
        }
    }
    Ok(())
}

fn mset_generic(ctx: &mut Ctx<'_>, args: Args<'_>, nx: bool) -> CmdResult {
    if args.len().is_multiple_of(2) {
        let name = if nx { "msetnx" } else { "mset" };
        return Err(format!("ERR wrong number of arguments for '{name}' command").into());
    }
    let keys = args.skip(1);
    let key_iter = keys.iter().step_by(2);
    let db = ctx.client.db;
    let lru = ctx.lru_clock();
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many(key_iter.clone());
    if nx {
        for k in key_iter.clone() {
            if ctx.lookup_write(guard.shard(k), k).is_some() {
                drop(guard);
                ctx.reply().int(0);
                return Ok(());
            }
        }
    }
    // (An even number of arguments after the name: checked above.)
    let mut a = Argv::new(args);
    while let (Some(k), Some(v)) = (a.opt(), a.opt()) {
        let shard = guard.shard(k);
        let existing = ctx.lookup_write(shard, k);
        store_str!(shard, db, existing, k, v, TtlOpt::None, lru);
        ctx.modified(shard, k, "set");
    }
    drop(guard);
    if nx {
        ctx.reply().int(1);
    } else {
        ctx.reply().ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    mset_generic(ctx, args, false)
}

fn msetnx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    mset_generic(ctx, args, true)
}

// ---------------------------------------------------------------------------------------------------------
// APPEND / STRLEN / GETRANGE / SETRANGE

fn append(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, val) = (a.next()?, a.next()?);
    let lru = ctx.lru_clock();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let total = match ctx.lookup_write(&mut shard, key) {
        None => {
            shard.db_mut(db).insert_new(Entry::new_str(key, val, lru));
            val.len()
        }
        Some(e) => {
            let Some(cur) = e.as_str() else {
                return Err(err::WRONGTYPE.into());
            };
            check_string_length(ctx, cur.len() as u64, val.len() as u64)?;
            let total = cur.len() as u64 + val.len() as u64;
            if !crate::mem::can_hold(total) {
                return Err(string_oom(total));
            }
            let mut s = e.take_str_vec().unwrap_or_default();
            if let Err(err) = grow_string(&mut s, total) {
                // (Only when the allocator refuses: the value goes back as it was.)
                e.set_str_vec(s);
                return Err(err);
            }
            s.extend_from_slice(val);
            let n = s.len();
            e.set_str_vec(s);
            e.mark_raw();
            n
        }
    };
    ctx.modified(&mut shard, key, "append");
    drop(shard);
    ctx.reply().int(total as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = match ctx.lookup(&mut shard, key) {
        None => 0,
        Some(e) => e.as_str().ok_or(err::WRONGTYPE)?.len(),
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn getrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let (start, end) = (a.int()?, a.int()?);
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    match ctx.lookup(&mut shard, key) {
        None => ctx.reply().bulk(b""),
        Some(e) => {
            let s = e.as_str().ok_or(err::WRONGTYPE)?;
            match st::getrange_bounds(s.len(), start, end) {
                Some((a, b)) => ctx.reply().bulk(&s[a..=b]),
                None => ctx.reply().bulk(b""),
            }
        }
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let offset = a.int()?;
    let val = a.next()?;
    if offset < 0 {
        return Err("ERR offset is out of range".into());
    }
    let offset = offset as u64;
    let lru = ctx.lru_clock();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let total = match ctx.lookup_write(&mut shard, key) {
        None => {
            if val.is_empty() {
                drop(shard);
                ctx.reply().int(0);
                return Ok(());
            }
            check_string_length(ctx, offset, val.len() as u64)?;
            let mut s = Vec::new();
            grow_string(&mut s, offset + val.len() as u64)?;
            let off = offset as usize;
            s.resize(off, 0);
            s.extend_from_slice(val);
            let n = s.len();
            let mut e = Entry::new_str(key, b"", lru);
            e.set_str_vec(s);
            e.mark_raw();
            shard.db_mut(db).insert_new(e);
            n
        }
        Some(e) => {
            let Some(cur) = e.as_str() else {
                return Err(err::WRONGTYPE.into());
            };
            if val.is_empty() {
                let n = cur.len();
                drop(shard);
                ctx.reply().int(n as i64);
                return Ok(());
            }
            check_string_length(ctx, offset, val.len() as u64)?;
            let total = offset + val.len() as u64;
            if !crate::mem::can_hold(total) {
                return Err(string_oom(total));
            }
            let mut s = e.take_str_vec().unwrap_or_default();
            if let Err(err) = grow_string(&mut s, total) {
                // (Only when the allocator refuses: the value goes back as it was.)
                e.set_str_vec(s);
                return Err(err);
            }
            let off = offset as usize;
            if s.len() < off + val.len() {
                s.resize(off + val.len(), 0);
            }
            s[off..off + val.len()].copy_from_slice(val);
            let n = s.len();
            e.set_str_vec(s);
            e.mark_raw();
            n
        }
    };
    ctx.modified(&mut shard, key, "setrange");
    drop(shard);
    ctx.reply().int(total as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Counters

fn incr_decr(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> CmdResult {
    let lru = ctx.lru_clock();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let mut buf = itoa::Buffer::new();
    let new = match ctx.lookup_write(&mut shard, key) {
        None => {
            shard
                .db_mut(db)
                .insert_new(Entry::new_str(key, buf.format(by).as_bytes(), lru));
            by
        }
        Some(e) => {
            let cur = e.as_str().ok_or(err::WRONGTYPE)?;
            let v = parse::int(cur)?;
            let n = v.checked_add(by).ok_or(err::OVERFLOW)?;
            e.set_str(buf.format(n).as_bytes());
            n
        }
    };
    ctx.modified(&mut shard, key, "incrby");
    drop(shard);
    ctx.reply().int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    incr_decr(ctx, Argv::new(args).next()?, 1)
}

fn decr(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    incr_decr(ctx, Argv::new(args).next()?, -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, by) = (a.next()?, a.int()?);
    incr_decr(ctx, key, by)
}

fn decrby(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, by) = (a.next()?, a.int()?);
    if by == i64::MIN {
        return Err("ERR decrement would overflow".into());
    }
    incr_decr(ctx, key, -by)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, incr) = (a.next()?, a.next()?);
    let lru = ctx.lru_clock();
    let db = ctx.client.db;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let existing = ctx.lookup_write(&mut shard, key);
    let cur: &[u8] = match &existing {
        None => b"0",
        Some(e) => e.as_str().ok_or(err::WRONGTYPE)?,
    };
    let new = st::incr_by_float(cur, incr).map_err(|e| match e {
        LdError::Invalid => CmdError::from(err::NOT_FLOAT),
        LdError::NanOrInf => CmdError::from("ERR increment would produce NaN or Infinity"),
    })?;
    match existing {
        Some(e) => {
            e.set_str(new.as_bytes());
            e.mark_not_int();
        }
        None => {
            let mut e = Entry::new_str(key, new.as_bytes(), lru);
            e.mark_not_int();
            shard.db_mut(db).insert_new(e);
        }
    }
    ctx.modified(&mut shard, key, "incrbyfloat");
    // The float result, not the increment: replaying the sum could round differently.
    ctx.propagate_as(vec![vec![
        b"SET".to_vec(),
        key.to_vec(),
        new.as_bytes().to_vec(),
        b"KEEPTTL".to_vec(),
    ]]);
    drop(shard);
    ctx.reply().bulk(new.as_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// LCS

fn lcs(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut opts = Argv::new(args);
    let (k1, k2) = (opts.next()?, opts.next()?);
    let srv = ctx.srv;
    let mut guard = srv.keyspace.lock_many([k1, k2]);
    let a = ctx
        .lookup(guard.shard(k1), k1)
        .map(|e| e.as_str().map(<[u8]>::to_vec));
    let b = ctx
        .lookup(guard.shard(k2), k2)
        .map(|e| e.as_str().map(<[u8]>::to_vec));
    drop(guard);
    let (a, b) = match (a, b) {
        (Some(None), _) | (_, Some(None)) => {
            return Err("ERR The specified keys must contain string values".into())
        }
        (a, b) => (
            a.flatten().unwrap_or_default(),
            b.flatten().unwrap_or_default(),
        ),
    };
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    // The options are read once the keys are found, as Redis does (a wrong type wins over a bad option).
    while let Some(opt) = opts.opt() {
        if parse::eq(opt, "idx") {
            getidx = true;
        } else if parse::eq(opt, "len") {
            getlen = true;
        } else if parse::eq(opt, "withmatchlen") {
            withmatchlen = true;
        } else if parse::eq(opt, "minmatchlen") && !opts.is_done() {
            minmatchlen = opts.int()?.max(0);
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    if getidx && getlen {
        return Err("ERR If you want both the length and indexes, please just use IDX.".into());
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err("ERR String too long for LCS".into());
    }
    if st::lcs_table_bytes(a.len(), b.len()) > u128::from(max_bulk_len(ctx)) {
        return Err(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
        );
    }
    let trace = getidx || !getlen;
    let Some(r) = st::lcs(&a, &b, trace, minmatchlen as u64) else {
        return Err("ERR Insufficient memory, failed allocating transient memory for LCS".into());
    };
    let mut out = ctx.reply();
    if getidx {
        out.map(2);
        out.bulk(b"matches");
        out.array(r.matches.len());
        for m in &r.matches {
            out.array(2 + usize::from(withmatchlen));
            out.array(2);
            out.int(i64::from(m.a.0));
            out.int(i64::from(m.a.1));
            out.array(2);
            out.int(i64::from(m.b.0));
            out.int(i64::from(m.b.1));
            if withmatchlen {
                out.int(i64::from(m.len));
            }
        }
        out.bulk(b"len");
        out.int(i64::from(r.len));
    } else if getlen {
        out.int(i64::from(r.len));
    } else {
        out.bulk(&r.string);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::table::Table;

    /// Test shim: the same steps as `store_str!`, through a bare table.
    fn put_str(t: &mut Table, key: &[u8], val: &[u8], ttl: TtlOpt, lru: u32) {
        match t.find_mut(key) {
            Some(e) => {
                let (had, has) = overwrite_str(e, val, ttl);
                t.note_ttl_change(had, has);
            }
            None => t.insert_new(new_str_entry(key, val, ttl, lru)),
        }
    }

    #[test]
    fn put_str_keeps_volatile_count() {
        let mut t = Table::new();
        put_str(&mut t, b"k", b"v", TtlOpt::At(1000), 0);
        assert_eq!((t.len(), t.volatile_len()), (1, 1));
        put_str(&mut t, b"k", b"w", TtlOpt::KeepTtl, 0);
        assert_eq!(t.volatile_len(), 1);
        assert_eq!(t.find(b"k").unwrap().expire_at(), Some(1000));
        put_str(&mut t, b"k", b"x", TtlOpt::At(2000), 0);
        assert_eq!(t.volatile_len(), 1);
        assert_eq!(t.find(b"k").unwrap().expire_at(), Some(2000));
        put_str(&mut t, b"k", &[b'y'; 100], TtlOpt::None, 0);
        assert_eq!(t.volatile_len(), 0);
        assert_eq!(t.find(b"k").unwrap().as_str(), Some(&[b'y'; 100][..]));
        put_str(&mut t, b"k2", b"v", TtlOpt::KeepTtl, 0);
        assert_eq!((t.len(), t.volatile_len()), (2, 0));
        put_str(&mut t, b"k2", b"v", TtlOpt::At(5), 0);
        assert_eq!(t.volatile_len(), 1);
        t.remove(b"k2");
        assert_eq!((t.len(), t.volatile_len()), (1, 0));
    }

    #[test]
    fn expire_values() {
        let now = 1_700_000_000_000;
        assert_eq!(expire_at(now, ExpUnit::Ex, b"10", "set"), Ok(now + 10_000));
        assert_eq!(expire_at(now, ExpUnit::Px, b"10", "set"), Ok(now + 10));
        assert_eq!(expire_at(now, ExpUnit::ExAt, b"10", "set"), Ok(10_000));
        assert_eq!(expire_at(now, ExpUnit::PxAt, b"10", "set"), Ok(10));
        let inv = Err(invalid_expire("getex"));
        assert_eq!(expire_at(now, ExpUnit::Ex, b"0", "getex"), inv);
        assert_eq!(expire_at(now, ExpUnit::PxAt, b"-1", "getex"), inv);
        assert_eq!(
            expire_at(now, ExpUnit::Ex, b"9223372036854776", "getex"),
            inv
        );
        assert_eq!(
            expire_at(now, ExpUnit::Px, b"9223372036854775807", "getex"),
            inv
        );
        assert_eq!(
            expire_at(now, ExpUnit::Ex, b"x", "getex"),
            Err(err::NOT_INTEGER.into())
        );
    }

    fn args_of(words: &[&str]) -> (Vec<u8>, Vec<(usize, usize)>) {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for w in words {
            spans.push((buf.len(), buf.len() + w.len()));
            buf.extend_from_slice(w.as_bytes());
        }
        (buf, spans)
    }

    #[test]
    fn option_rules() {
        let ok = |w: &[&str], kind| {
            let (b, s) = args_of(w);
            let from = if kind == OptKind::Set { 3 } else { 2 };
            parse_ext_opts(&mut Argv::at(Args::from_parts(&b, &s), from), kind).is_ok()
        };
        assert!(ok(&["set", "k", "v", "EX", "1", "EX", "2"], OptKind::Set));
        assert!(ok(&["set", "k", "v", "nx", "get", "px", "1"], OptKind::Set));
        assert!(ok(&["set", "k", "v", "EX", "abc"], OptKind::Set)); // value checked later
        assert!(!ok(&["set", "k", "v", "EX", "1", "PX", "2"], OptKind::Set));
        assert!(!ok(&["set", "k", "v", "NX", "XX"], OptKind::Set));
        assert!(!ok(
            &["set", "k", "v", "KEEPTTL", "EXAT", "1"],
            OptKind::Set
        ));
        assert!(!ok(&["set", "k", "v", "PERSIST"], OptKind::Set));
        assert!(!ok(&["set", "k", "v", "PXAT"], OptKind::Set));
        assert!(ok(&["getex", "k", "PERSIST", "persist"], OptKind::GetEx));
        assert!(ok(&["getex", "k", "pxat", "5"], OptKind::GetEx));
        assert!(!ok(&["getex", "k", "PERSIST", "EX", "1"], OptKind::GetEx));
        assert!(!ok(&["getex", "k", "NX"], OptKind::GetEx));
        assert!(!ok(&["getex", "k", "GET"], OptKind::GetEx));
        assert!(!ok(&["getex", "k", "KEEPTTL"], OptKind::GetEx));
    }
}
