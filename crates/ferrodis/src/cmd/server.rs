//! Server and admin commands: COMMAND, INFO, CONFIG, DEBUG, DBSIZE, FLUSHDB, FLUSHALL, TIME, SHUTDOWN.

use super::argv::Argv;
use super::connection::help_reply;
use super::{
    acl, docs, err, flags, flags::*, parse, spec, CmdError, CmdResult, Command, Ctx, KeyRef,
    Registry,
};
use crate::keyspace::entry::{Entry, ValueRef, EMBSTR_LIMIT};
use crate::keyspace::table::Table;
use ferrodis_protocol::{num, Args, Reply};
use std::sync::atomic::Ordering::Relaxed;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "command",
        arity: -1,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_all,
        subcommands: COMMAND_SUBCOMMANDS,
        group: "server",
        since: "2.8.13",
        summary: "Returns detailed information about all commands.",
        complexity: "O(N) where N is the total number of Redis commands",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "dbsize",
        arity: 1,
        flags: READONLY | FAST,
        acl: acl::KEYSPACE,
        handler: dbsize,
        group: "server",
        since: "1.0.0",
        summary: "Returns the number of keys in the database.",
        complexity: "O(1)",
        tips: &["request_policy:all_shards", "response_policy:agg_sum"],
        ..Command::DEFAULT
    },
    Command {
        name: "flushdb",
        arity: -1,
        flags: WRITE,
        acl: acl::DANGEROUS | acl::KEYSPACE,
        handler: flushdb,
        group: "server",
        since: "1.0.0",
        summary: "Remove all keys from the current database.",
        complexity: "O(N) where N is the number of keys in the selected database",
        syntax: "flush-type:[ASYNC@4.0.0 | SYNC@6.2.0]",
        history: &[
            ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
            ("6.2.0", "Added the `SYNC` flushing mode modifier."),
        ],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "flushall",
        arity: -1,
        flags: WRITE,
        acl: acl::DANGEROUS | acl::KEYSPACE,
        handler: flushall,
        group: "server",
        since: "1.0.0",
        summary: "Removes all keys from all databases.",
        complexity: "O(N) where N is the total number of keys in all databases",
        syntax: "flush-type:[ASYNC@4.0.0 | SYNC@6.2.0]",
        history: &[
            ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
            ("6.2.0", "Added the `SYNC` flushing mode modifier."),
        ],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "time",
        arity: 1,
        flags: LOADING | STALE | FAST,
        handler: time,
        group: "server",
        since: "2.6.0",
        summary: "Returns the server time.",
        complexity: "O(1)",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "config",
        arity: -2,
        subcommands: CONFIG_SUBCOMMANDS,
        group: "server",
        since: "2.0.0",
        summary: "A container for server configuration commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
    Command {
        name: "info",
        arity: -1,
        flags: LOADING | STALE,
        acl: acl::DANGEROUS,
        handler: info,
        group: "server",
        since: "1.0.0",
        summary: "Returns information and statistics about the server.",
        complexity: "O(1)",
        syntax: "[section ...]",
        history: &[
            ("7.0.0", "Added support for taking multiple section arguments."),
        ],
        tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"],
        ..Command::DEFAULT
    },
    Command {
        name: "debug",
        arity: -2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED,
        handler: debug,
        group: "server",
        since: "1.0.0",
        summary: "A container for debugging commands.",
        complexity: "Depends on subcommand.",
        syscmd: true,
        ..Command::DEFAULT
    },
    Command {
        name: "shutdown",
        arity: -1,
        flags: ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        handler: shutdown,
        group: "server",
        since: "1.0.0",
        summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.",
        complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        syntax: "save-selector:[NOSAVE | SAVE] [NOW@7.0.0] [FORCE@7.0.0] [ABORT@7.0.0]",
        history: &[
            ("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers."),
        ],
        ..Command::DEFAULT
    },
];

static COMMAND_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "count",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_count,
        group: "server",
        since: "2.8.13",
        summary: "Returns a count of commands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "docs",
        arity: -2,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_docs,
        group: "server",
        since: "7.0.0",
        summary: "Returns documentary information about one, multiple or all commands.",
        complexity: "O(N) where N is the number of commands to look up",
        syntax: "[command-name ...]",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "getkeys",
        arity: -3,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_getkeys,
        group: "server",
        since: "2.8.13",
        summary: "Extracts the key names from an arbitrary command.",
        complexity: "O(N) where N is the number of arguments to the command",
        syntax: "command [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "getkeysandflags",
        arity: -3,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_getkeysandflags,
        group: "server",
        since: "7.0.0",
        summary: "Extracts the key names and access flags for an arbitrary command.",
        complexity: "O(N) where N is the number of arguments to the command",
        syntax: "command [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_help,
        group: "server",
        since: "5.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "info",
        arity: -2,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_info,
        group: "server",
        since: "2.8.13",
        summary: "Returns information about one, multiple or all commands.",
        complexity: "O(N) where N is the number of commands to look up",
        syntax: "[command-name ...]",
        history: &[(
            "7.0.0",
            "Allowed to be called with no argument to get info on all commands.",
        )],
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "list",
        arity: -2,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: command_list,
        group: "server",
        since: "7.0.0",
        summary: "Returns a list of command names.",
        complexity: "O(N) where N is the total number of Redis commands",
        syntax: "[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern:pattern>]",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
];

static CONFIG_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: -3,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        handler: config_get,
        group: "server",
        since: "2.0.0",
        summary: "Returns the effective values of configuration parameters.",
        complexity: "O(N) when N is the number of configuration parameters provided",
        syntax: "parameter ...",
        history: &[(
            "7.0.0",
            "Added the ability to pass multiple pattern parameters in one call",
        )],
        ..Command::DEFAULT
    },
    Command {
        name: "set",
        arity: -4,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        handler: config_set,
        group: "server",
        since: "2.0.0",
        summary: "Sets configuration parameters in-flight.",
        complexity: "O(N) when N is the number of configuration parameters provided",
        syntax: "data:<parameter value> ...",
        history: &[(
            "7.0.0",
            "Added the ability to set multiple parameters in one call.",
        )],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "resetstat",
        arity: 2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        handler: config_resetstat,
        group: "server",
        since: "2.0.0",
        summary: "Resets the server's statistics.",
        complexity: "O(1)",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "rewrite",
        arity: 2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        handler: config_rewrite,
        group: "server",
        since: "2.8.0",
        summary: "Persists the effective configuration to file.",
        complexity: "O(1)",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        handler: config_help,
        group: "server",
        since: "5.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
];

// ------------------------------------------------------------------------------------------------------
// COMMAND
// ------------------------------------------------------------------------------------------------------

/// Flags in the order COMMAND INFO prints them (may_replicate is not shown, as in Redis).
const FLAG_ORDER: &[u32] = &[
    WRITE,
    READONLY,
    DENYOOM,
    ADMIN,
    PUBSUB,
    NOSCRIPT,
    BLOCKING,
    LOADING,
    STALE,
    SKIP_MONITOR,
    SKIP_SLOWLOG,
    FAST,
    NO_AUTH,
    NO_MANDATORY_KEYS,
    NO_ASYNC_LOADING,
    NO_MULTI,
    MOVABLEKEYS,
    ALLOW_BUSY,
];

fn flag_name(f: u32) -> &'static str {
    flags::NAMES
        .iter()
        .find(|(b, _)| *b == f)
        .map(|(_, n)| *n)
        .unwrap_or("")
}

/// A key spec flag set, as COMMAND INFO and GETKEYSANDFLAGS write it.
fn write_key_flags(r: &mut Reply<'_>, f: u16) {
    r.set(spec::NAMES.iter().filter(|(b, _)| f & b != 0).count());
    for (_, n) in spec::NAMES.iter().filter(|(b, _)| f & b != 0) {
        r.simple(n);
    }
}

/// One key spec map of COMMAND INFO.
fn write_key_spec(r: &mut Reply<'_>, k: &spec::KeySpec) {
    use spec::{Begin, Find};
    r.map(3 + usize::from(!k.notes.is_empty()));
    if !k.notes.is_empty() {
        r.bulk(b"notes");
        r.bulk(k.notes.as_bytes());
    }
    r.bulk(b"flags");
    write_key_flags(r, k.flags);
    r.bulk(b"begin_search");
    r.map(2);
    r.bulk(b"type");
    match k.begin {
        Begin::Index(i) => {
            r.bulk(b"index");
            r.bulk(b"spec");
            r.map(1);
            r.bulk(b"index");
            r.int(i as i64);
        }
        Begin::Keyword { keyword, startfrom } => {
            r.bulk(b"keyword");
            r.bulk(b"spec");
            r.map(2);
            r.bulk(b"keyword");
            r.bulk(keyword.as_bytes());
            r.bulk(b"startfrom");
            r.int(startfrom as i64);
        }
        Begin::Unknown => {
            r.bulk(b"unknown");
            r.bulk(b"spec");
            r.map(0);
        }
    }
    r.bulk(b"find_keys");
    r.map(2);
    r.bulk(b"type");
    match k.find {
        Find::Range {
            lastkey,
            keystep,
            limit,
        } => {
            r.bulk(b"range");
            r.bulk(b"spec");
            r.map(3);
            r.bulk(b"lastkey");
            r.int(lastkey as i64);
            r.bulk(b"keystep");
            r.int(keystep as i64);
            r.bulk(b"limit");
            r.int(limit as i64);
        }
        Find::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => {
            r.bulk(b"keynum");
            r.bulk(b"spec");
            r.map(3);
            r.bulk(b"keynumidx");
            r.int(keynumidx as i64);
            r.bulk(b"firstkey");
            r.int(firstkey as i64);
            r.bulk(b"keystep");
            r.int(keystep as i64);
        }
        Find::Unknown => {
            r.bulk(b"unknown");
            r.bulk(b"spec");
            r.map(0);
        }
    }
}

fn write_command_info(r: &mut Reply<'_>, cmd: &Command, full: &str) {
    r.array(10);
    r.bulk(full.as_bytes());
    r.int(cmd.arity as i64);
    let fl: Vec<&str> = FLAG_ORDER
        .iter()
        .filter(|f| cmd.has(**f))
        .map(|f| flag_name(*f))
        .collect();
    r.set(fl.len());
    for f in fl {
        r.simple(f);
    }
    let (first, last, step) = cmd.legacy_range();
    r.int(first as i64);
    r.int(last as i64);
    r.int(step as i64);
    let cats = cmd.acl_categories();
    let names: Vec<&str> = acl::NAMES
        .iter()
        .filter(|(b, _)| cats & b != 0)
        .map(|(_, n)| *n)
        .collect();
    r.set(names.len());
    for n in names {
        r.simple(n);
    }
    r.set(cmd.tips.len());
    for t in cmd.tips {
        r.bulk(t.as_bytes());
    }
    r.set(cmd.keys.len());
    for k in cmd.keys {
        write_key_spec(r, k);
    }
    if cmd.subcommands.is_empty() {
        r.set(0);
    } else {
        r.array(cmd.subcommands.len());
    }
    for s in cmd.subcommands {
        write_command_info(r, s, &format!("{}|{}", full, s.name));
    }
}

/// Look a command up by name, accepting "parent|sub".
fn find_command(name: &[u8]) -> Option<(&'static Command, String)> {
    let reg = Registry::get();
    match name.iter().position(|&c| c == b'|') {
        None => reg
            .lookup(name)
            .map(|id| (reg.command(id), reg.full_name(id).to_string())),
        Some(p) => {
            let parent = reg.lookup(&name[..p])?;
            let sid = reg.lookup_sub(parent, &name[p + 1..])?;
            Some((reg.command(sid), reg.full_name(sid).to_string()))
        }
    }
}

fn command_all(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let reg = Registry::get();
    let all: Vec<&Command> = reg.top_level().collect();
    let mut r = ctx.reply();
    r.array(all.len());
    for c in all {
        write_command_info(&mut r, c, c.name);
    }
    Ok(())
}

fn command_count(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let n = Registry::get().top_level().count();
    ctx.reply().int(n as i64);
    Ok(())
}

fn command_info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    let mut r = ctx.reply();
    r.array(args.len() - 2);
    for name in args.iter().skip(2) {
        match find_command(name) {
            Some((c, full)) => write_command_info(&mut r, c, &full),
            None => r.null(),
        }
    }
    Ok(())
}

fn command_docs(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let found: Vec<(&Command, String)> = if args.len() == 2 {
        Registry::get()
            .top_level()
            .map(|c| (c, c.name.to_string()))
            .collect()
    } else {
        args.iter().skip(2).filter_map(find_command).collect()
    };
    let mut r = ctx.reply();
    r.map(found.len());
    for (c, full) in found {
        r.bulk(full.as_bytes());
        docs::write_docs(&mut r, c, &full);
    }
    Ok(())
}

fn command_list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]
    let reg = Registry::get();
    let mut a = Argv::at(args, 2);
    let filter = match a.opt() {
        None => None,
        Some(w) if parse::eq(w, "filterby") && a.remaining() == 2 => Some((a.next()?, a.next()?)),
        Some(_) => return Err(err::SYNTAX.into()),
    };
    let names: Vec<&str> = if let Some((kind, val)) = filter {
        if parse::eq(kind, "module") {
            Vec::new()
        } else if parse::eq(kind, "aclcat") {
            let cat = acl::NAMES
                .iter()
                .find(|(_, n)| n.as_bytes()[1..].eq_ignore_ascii_case(val))
                .map(|(b, _)| *b);
            match cat {
                None => Vec::new(),
                Some(b) => reg
                    .all
                    .iter()
                    .filter(|(_, c)| c.acl_categories() & b != 0)
                    .map(|(n, _)| n.as_str())
                    .collect(),
            }
        } else if parse::eq(kind, "pattern") {
            reg.all
                .iter()
                .filter(|(n, _)| crate::glob::matches(val, n.as_bytes(), true))
                .map(|(n, _)| n.as_str())
                .collect()
        } else {
            return Err(err::SYNTAX.into());
        }
    } else {
        reg.all.iter().map(|(n, _)| n.as_str()).collect()
    };
    let mut r = ctx.reply();
    r.array(names.len());
    for n in names {
        r.bulk(n.as_bytes());
    }
    Ok(())
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS: the keys of the command line after the subcommand, with their flags
/// (Redis's getKeysSubcommandImpl).
fn getkeys_of(args: &Args<'_>) -> Result<Vec<KeyRef>, CmdError> {
    const INVALID: &str = "ERR Invalid command specified";
    let sub = args.skip(2);
    let reg = Registry::get();
    let mut a = Argv::at(sub, 0);
    let id = reg.lookup(a.next_or(INVALID)?).ok_or(INVALID)?;
    let mut cmd = reg.command(id);
    if !cmd.subcommands.is_empty() {
        if let Some(name) = a.opt() {
            let sid = reg.lookup_sub(id, name).ok_or(INVALID)?;
            cmd = reg.command(sid);
        }
    }
    if !cmd.has_keys() {
        return Err("ERR The command has no key arguments".into());
    }
    let argc = sub.len() as i32;
    if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
        return Err("ERR Invalid number of arguments specified for command".into());
    }
    let mut keys = Vec::new();
    if (!cmd.keys_in(&sub, &mut keys) || keys.is_empty()) && !cmd.has(NO_MANDATORY_KEYS) {
        return Err("ERR Invalid arguments specified for command".into());
    }
    Ok(keys)
}

fn command_getkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = getkeys_of(&args)?;
    let sub = args.skip(2);
    let mut r = ctx.reply();
    r.array(keys.len());
    for k in keys {
        r.bulk(sub.try_get(k.pos).unwrap_or_default());
    }
    Ok(())
}

fn command_getkeysandflags(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = getkeys_of(&args)?;
    let sub = args.skip(2);
    let mut r = ctx.reply();
    r.array(keys.len());
    for k in keys {
        r.array(2);
        r.bulk(sub.try_get(k.pos).unwrap_or_default());
        write_key_flags(&mut r, k.flags);
    }
    Ok(())
}

fn command_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help_reply(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// Keyspace-wide commands
// ------------------------------------------------------------------------------------------------------

fn dbsize(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let n = ctx.srv.keyspace.dbsize(ctx.client.db);
    ctx.reply().int(n as i64);
    Ok(())
}

/// Parse FLUSHDB/FLUSHALL's optional ASYNC|SYNC; true = async.
fn flush_mode(args: Args<'_>) -> Result<bool, CmdError> {
    let mut a = Argv::new(args);
    let mode = a.opt();
    a.finish()?;
    match mode {
        None => Ok(false),
        Some(w) if parse::eq(w, "async") => Ok(true),
        Some(w) if parse::eq(w, "sync") => Ok(false),
        Some(_) => Err(err::SYNTAX.into()),
    }
}

/// Empty one database (`Some(db)`) or all of them, under the keyspace-wide lock. Returns the number of keys
/// removed. The old tables are freed after the locks are released (in the background for ASYNC).
fn flush(ctx: &Ctx<'_>, db: Option<usize>, lazy: bool) -> u64 {
    let mut old: Vec<Table> = Vec::new();
    let mut removed = 0u64;
    {
        let mut all = ctx.srv.keyspace.lock_all();
        for shard in all.shards() {
            let tables = shard.dbs_mut();
            let range = match db {
                Some(d) => d..d + 1,
                None => 0..tables.len(),
            };
            for t in &mut tables[range] {
                if !t.is_empty() {
                    removed += t.len() as u64;
                    old.push(t.clear());
                }
            }
        }
        // Its place in the AOF order, taken while everything is locked.
        ctx.srv.persist.aof.note_write();
    }
    if lazy && !old.is_empty() {
        let _ = std::thread::Builder::new()
            .name("ferrodis-lazyfree".into())
            .spawn(move || drop(old));
    } else {
        drop(old);
    }
    removed
}

fn flushdb(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lazy = flush_mode(args)?;
    let n = flush(ctx, Some(ctx.client.db), lazy);
    ctx.prop.borrow_mut().changes += 1; // propagated as is (AOF)
    ctx.srv.workers[ctx.client.worker].dirty.add(n);
    crate::tracking::flushed(ctx.srv); // client-side caching: null invalidation
    ctx.reply().ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let lazy = flush_mode(args)?;
    let n = flush(ctx, None, lazy);
    ctx.prop.borrow_mut().changes += 1; // propagated as is (AOF)
    ctx.srv.workers[ctx.client.worker].dirty.add(n + 1);
    crate::tracking::flushed(ctx.srv); // client-side caching: null invalidation
    ctx.reply().ok();
    Ok(())
}

fn time(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let us = crate::server::unix_us();
    let mut r = ctx.reply();
    r.array(2);
    r.bulk_int((us / 1_000_000) as i64);
    r.bulk_int((us % 1_000_000) as i64);
    Ok(())
}

fn shutdown(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
    let (mut nosave, mut save, mut abort, mut other) = (false, false, false, false);
    let mut a = Argv::new(args);
    while let Some(w) = a.opt() {
        if parse::eq(w, "nosave") {
            nosave = true;
        } else if parse::eq(w, "save") {
            save = true;
        } else if parse::eq(w, "now") || parse::eq(w, "force") {
            other = true;
        } else if parse::eq(w, "abort") {
            abort = true;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    if (nosave && save) || (abort && (nosave || save || other)) {
        return Err(err::SYNTAX.into());
    }
    if abort {
        return Err("ERR No shutdown in progress.".into());
    }
    // While a script is busy only SHUTDOWN NOSAVE goes through (the script's effects stay unsaved).
    if !nosave {
        if let Some(e) = ctx.srv.scripting.busy_error() {
            return Err(e.into());
        }
    }
    crate::log::warning("User requested shutdown...");
    if !nosave && (save || !ctx.srv.config.read().persist.save.is_empty()) {
        crate::log::notice("Saving the final RDB snapshot before exiting.");
        let path = crate::persist::save::rdb_path(ctx.srv);
        match crate::persist::save::save_to(ctx.srv, &path) {
            Ok(()) => crate::log::notice("DB saved on disk"),
            Err(e) => {
                crate::log::warning(&e);
                if !other {
                    crate::log::warning("Error trying to save the DB, can't exit.");
                    return Err("ERR Errors trying to SHUTDOWN. Check logs.".into());
                }
            }
        }
    }
    ctx.srv
        .persist
        .final_save_done
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // The connection is closed without a reply, as Redis does when it exits.
    ctx.srv.request_shutdown();
    ctx.client.close_after_reply = true;
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// CONFIG
// ------------------------------------------------------------------------------------------------------

fn has_glob(p: &[u8]) -> bool {
    p.iter().any(|c| matches!(c, b'*' | b'?' | b'['))
}

fn config_get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let cfg = ctx.srv.config.read().clone();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pat in args.iter().skip(2) {
        if !has_glob(pat) {
            let name = String::from_utf8_lossy(pat).into_owned();
            if let Some(d) = crate::config::find_directive(&name) {
                if !seen.contains(&d.name) {
                    seen.push(d.name);
                    out.push((name, (d.get)(&cfg)));
                }
            }
            continue;
        }
        for d in crate::config::DIRECTIVES {
            if seen.contains(&d.name) {
                continue;
            }
            if let Some(n) = std::iter::once(&d.name)
                .chain(d.aliases.iter())
                .find(|n| crate::glob::matches(pat, n.as_bytes(), true))
            {
                seen.push(d.name);
                out.push((n.to_string(), (d.get)(&cfg)));
            }
        }
    }
    let mut r = ctx.reply();
    r.map(out.len());
    for (k, v) in out {
        r.bulk(k.as_bytes());
        r.bulk(v.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // CONFIG SET parameter value [parameter value ...]
    if !args.len().is_multiple_of(2) {
        return Err(err::SYNTAX.into());
    }
    let mut a = Argv::at(args, 2);
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(a.remaining() / 2);
    while let Some(name) = a.opt() {
        let value = a.next()?;
        pairs.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    let protected_ok = ctx
        .srv
        .config
        .read()
        .enable_protected_configs
        .allows(ctx.client.is_local());
    // All or nothing: Config::set_all checks every pair before it changes anything.
    let old = ctx.srv.config.write().set_all(&pairs, protected_ok)?;
    ctx.srv.apply_config();
    // The AOF follows appendonly / appendfsync / aof-timestamp-enabled.
    let aof = &ctx.srv.persist.aof;
    aof.apply_config(&ctx.srv.config.read());
    let want = ctx.srv.config.read().persist.appendonly;
    if want && !aof.enabled() {
        if let Err(e) = crate::persist::aof::enable(ctx.srv) {
            // Redis rolls the whole CONFIG SET back when an apply step fails.
            crate::log::warning(&format!(
                "Failed applying new configuration (appendonly): {e}. Restoring previous settings."
            ));
            ctx.srv.config.write().restore(old);
            ctx.srv.apply_config();
            aof.apply_config(&ctx.srv.config.read());
            let name = pairs
                .iter()
                .rev()
                .map(|(n, _)| n.as_str())
                .find(|n| n.eq_ignore_ascii_case("appendonly"))
                .unwrap_or("appendonly");
            return Err(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - Unable to turn on AOF. Check server logs."
            )
            .into());
        }
    } else if !want && aof.enabled() {
        crate::persist::aof::disable(ctx.srv);
    }
    ctx.reply().ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    for w in ctx.srv.workers.iter() {
        w.reset();
    }
    ctx.srv.errorstats.lock().clear();
    ctx.srv.peak_memory.store(0, Relaxed);
    ctx.srv.refresh_memory();
    ctx.reply().ok();
    Ok(())
}

fn config_rewrite(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let cfg = ctx.srv.config.read().clone();
    cfg.rewrite()?;
    crate::log::notice("CONFIG REWRITE executed with success.");
    ctx.reply().ok();
    Ok(())
}

fn config_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help_reply(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// INFO
// ------------------------------------------------------------------------------------------------------

fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    crate::info::start_sampler(ctx.srv);
    let names: Vec<&[u8]> = args.iter().skip(1).collect();
    let sections = crate::info::select_sections(&names);
    let reg = super::Registry::get();
    let text = crate::info::generate(ctx.srv, &sections, &|id| reg.full_name(id));
    ctx.reply().verbatim("txt", text.as_bytes());
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// DEBUG
// ------------------------------------------------------------------------------------------------------

/// C's atoi: optional sign and leading digits, 0 when there are none.
fn atoi(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n: i64 = digits
        .bytes()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |acc, c| {
            acc.saturating_mul(10).saturating_add((c - b'0') as i64)
        });
    if neg {
        -n
    } else {
        n
    }
}

/// C's atof, approximately: the longest numeric prefix, 0 when there is none.
fn atof(b: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(b);
    let t = s.trim();
    (1..=t.len())
        .rev()
        .filter(|&i| t.is_char_boundary(i))
        .find_map(|i| t[..i].parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .unwrap_or(0.0)
}

/// Bytes Redis's RDB format needs for a string value (no LZF compression: an upper bound for long
/// compressible strings).
fn serialized_len(s: &[u8]) -> usize {
    if s.len() <= 11 {
        if let Some(v) = num::parse_i64(s) {
            if (i8::MIN as i64..=i8::MAX as i64).contains(&v) {
                return 2;
            } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
                return 3;
            } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                return 5;
            }
        }
    }
    let n = s.len();
    let hdr = if n < 1 << 6 {
        1
    } else if n < 1 << 14 {
        2
    } else if n <= u32::MAX as usize {
        5
    } else {
        9
    };
    hdr + n
}

fn string_encoding(e: &Entry, s: &[u8]) -> &'static str {
    if e.is_raw() {
        "raw"
    } else if s.len() <= 20 && num::parse_i64(s).is_some() {
        "int"
    } else if s.len() <= EMBSTR_LIMIT {
        "embstr"
    } else {
        "raw"
    }
}

fn debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // Who may run DEBUG (enable-debug-command) is checked before a command runs or is queued:
    // cmd::execute.
    let mut a = Argv::new(args);
    let sub = a.next()?;
    // How many arguments follow the subcommand.
    let n = a.remaining();
    if parse::eq(sub, "help") && n == 0 {
        help_reply(
            ctx,
            "DEBUG",
            &[
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. These are not propagated to",
                "    replicas. Cluster slots are not respected so keys not belonging to the",
                "    current node can be created in cluster mode.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SET-DISABLE-DENY-SCRIPTS <0|1>",
                "    For testing only: allow commands flagged noscript to run inside scripts (1) or",
                "    refuse them again (0, the default).",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        );
    } else if parse::eq(sub, "sleep") && n == 1 {
        let secs = atof(a.next()?);
        if secs > 0.0 {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(1e9)));
        }
        ctx.reply().ok();
    } else if parse::eq(sub, "reload") {
        // DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty the dataset, load the file back.
        let (mut noflush, mut nosave) = (false, false);
        while let Some(w) = a.opt() {
            if parse::eq(w, "merge") || parse::eq(w, "noflush") {
                noflush = true;
            } else if parse::eq(w, "nosave") {
                nosave = true;
            } else {
                return Err(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into(),
                );
            }
        }
        let path = crate::persist::save::rdb_path(ctx.srv);
        if !nosave {
            if let Err(e) = crate::persist::save::save_to(ctx.srv, &path) {
                crate::log::warning(&e);
                return Err("ERR".into());
            }
        }
        if !noflush {
            flush(ctx, None, false);
        }
        if let Err(e) = crate::persist::save::load_file(ctx.srv, &path) {
            crate::log::warning(&e);
            return Err("ERR Error trying to load the RDB dump, check server logs.".into());
        }
        crate::log::notice("DB reloaded by DEBUG RELOAD");
        ctx.reply().ok();
    } else if parse::eq(sub, "set-active-expire") && n == 1 {
        let on = atoi(a.next()?) != 0;
        ctx.srv.active_expire.store(on, Relaxed);
        ctx.reply().ok();
    } else if parse::eq(sub, "set-disable-deny-scripts") && n == 1 {
        let on = atoi(a.next()?) != 0;
        ctx.srv.scripting.allow_noscript.store(on, Relaxed);
        ctx.reply().ok();
    } else if parse::eq(sub, "object") && n == 1 {
        let key = a.next()?;
        let line = {
            let shard = ctx.srv.keyspace.lock_key(key);
            let Some(e) = shard.get(ctx.client.db, key, ctx.now_ms) else {
                return Err(err::NO_SUCH_KEY.into());
            };
            let (enc, slen) = match e.value() {
                ValueRef::Str(s) => (string_encoding(e, s), serialized_len(s)),
                ValueRef::Other(_) => ("raw", 0),
            };
            let lru = e.lru() as u64;
            format!(
                "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                e as *const Entry,
                enc,
                slen,
                lru & ((1 << 24) - 1),
                crate::keyspace::entry::lru_idle_secs(ctx.lru_clock(), lru as u32)
            )
        };
        ctx.reply().simple(&line);
    } else if parse::eq(sub, "populate") && (1..=3).contains(&n) {
        debug_populate(ctx, &mut a)?;
    } else {
        return Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(sub)
        )
        .into());
    }
    Ok(())
}

/// DEBUG POPULATE count [prefix] [size], `a` placed on the count.
fn debug_populate(ctx: &mut Ctx<'_>, a: &mut Argv<'_>) -> CmdResult {
    let positive = |b: &[u8]| -> Result<u64, CmdError> {
        match num::parse_i64(b) {
            Some(v) if v >= 0 => Ok(v as u64),
            _ => Err("ERR value is out of range, must be positive".into()),
        }
    };
    let count = positive(a.next()?)?;
    // Redis sizes the table for all the keys first and fails the command when it cannot: a count whose
    // bucket array alone is more than the machine could hold gets its error.
    let buckets = count.saturating_add(ctx.srv.keyspace.dbsize(ctx.client.db) as u64);
    if !crate::mem::can_hold(buckets.saturating_mul(8)) {
        return Err("ERR OOM in dictTryExpand".into());
    }
    let prefix = a.opt().unwrap_or(b"key");
    let size = match a.opt() {
        Some(s) => positive(s)?,
        None => 0,
    };
    // The value buffer is allocated once (Redis aborts when it cannot be): refused when the machine
    // could not hold it, or could not hold `count` of them.
    let oom = || {
        CmdError::from(format!(
            "ERR not enough memory for {count} values of {size} bytes"
        ))
    };
    if count > 0 && !crate::mem::can_hold(size.saturating_mul(count)) {
        return Err(oom());
    }
    ctx.srv.keyspace.reserve(
        ctx.client.db,
        usize::try_from(buckets).unwrap_or(usize::MAX),
    );
    let size = size as usize;
    let lru = ctx.lru_clock();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut val = Vec::new();
    crate::mem::try_reserve(&mut val, size.max(27)).map_err(|_| oom())?;
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        val.clear();
        val.extend_from_slice(b"value:");
        val.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        if size > 0 {
            val.resize(size, 0);
        }
        let mut shard = ctx.srv.keyspace.lock_key(&key);
        if ctx.lookup_write(&mut shard, &key).is_some() {
            continue;
        }
        shard
            .db_mut(ctx.client.db)
            .insert_new(Entry::new_str(&key, &val, lru));
        ctx.modified(&mut shard, &key, "set");
        drop(shard);
    }
    ctx.reply().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_number_parsing() {
        assert_eq!(atoi(b"12x"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atof(b"0.5"), 0.5);
        assert_eq!(atof(b"x"), 0.0);
        assert_eq!(atof(b"1.5s"), 1.5);
        assert_eq!(atof(b"inf"), 0.0);
    }

    #[test]
    fn rdb_lengths() {
        assert_eq!(serialized_len(b"abc"), 4);
        assert_eq!(serialized_len(b"12345678901"), 12);
        assert_eq!(serialized_len(b"value:0"), 8);
        assert_eq!(serialized_len(b"100"), 2);
        assert_eq!(serialized_len(b"1000"), 3);
        assert_eq!(serialized_len(b"100000"), 5);
    }

    #[test]
    fn every_command_info_encodes() {
        crate::init();
        let reg = Registry::get();
        for (full, c) in &reg.all {
            let mut v = Vec::new();
            let mut r = Reply::new(&mut v, true);
            write_command_info(&mut r, c, full);
            docs::write_docs(&mut r, c, full);
            assert!(!v.is_empty());
        }
    }
}
