//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO.
//!
//! A script runs on the caller's worker thread in that thread's Lua state (crate::scripting::engine),
//! isolated from every other client by a keyspace script scope (docs/design/execution-model.md): scripts not known to stay
//! inside their declared keys run exclusively; those seen to stay inside run with their keys' shards held.

use crate::cmd::argv::Argv;
use crate::cmd::flags::*;
use crate::cmd::spec::{self, ACCESS, RO, RW, UPDATE};
use crate::cmd::streams::subcommand_syntax;
use crate::cmd::{acl, parse, CmdError, CmdResult, Command, Ctx};
use crate::scripting::{
    self, engine, functions, sflags, POLICY_CLEAN, POLICY_DIRTY, POLICY_UNKNOWN,
};
use ferrodis_protocol::{Args, Reply};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

pub static COMMANDS: &[Command] = &[
    Command {
        name: "eval",
        arity: -3,
        flags: NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        acl: acl::SCRIPTING,
        keys: &[spec::index(2)
            .keynum(0, 1, 1)
            .flags(RW | ACCESS | UPDATE)
            .notes(
                "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE",
            )],
        handler: eval,
        group: "scripting",
        since: "2.6.0",
        summary: "Executes a server-side Lua script.",
        complexity: "Depends on the script that is executed.",
        syntax: "script numkeys:integer [key ...] [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "evalsha",
        arity: -3,
        flags: NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        acl: acl::SCRIPTING,
        keys: &[spec::index(2).keynum(0, 1, 1).flags(RW | ACCESS | UPDATE)],
        handler: evalsha,
        group: "scripting",
        since: "2.6.0",
        summary: "Executes a server-side Lua script by SHA1 digest.",
        complexity: "Depends on the script that is executed.",
        syntax: "sha1 numkeys:integer [key ...] [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "eval_ro",
        arity: -3,
        flags: READONLY | NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        acl: acl::SCRIPTING,
        keys: &[spec::index(2).keynum(0, 1, 1).flags(RO | ACCESS).notes(
            "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        )],
        handler: eval_ro,
        group: "scripting",
        since: "7.0.0",
        summary: "Executes a read-only server-side Lua script.",
        complexity: "Depends on the script that is executed.",
        syntax: "script numkeys:integer [key ...] [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "evalsha_ro",
        arity: -3,
        flags: READONLY | NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        acl: acl::SCRIPTING,
        keys: &[spec::index(2).keynum(0, 1, 1).flags(RO | ACCESS)],
        handler: evalsha_ro,
        group: "scripting",
        since: "7.0.0",
        summary: "Executes a read-only server-side Lua script by SHA1 digest.",
        complexity: "Depends on the script that is executed.",
        syntax: "sha1 numkeys:integer [key ...] [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "fcall",
        arity: -3,
        flags: NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        acl: acl::SCRIPTING,
        keys: &[spec::index(2)
            .keynum(0, 1, 1)
            .flags(RW | ACCESS | UPDATE)
            .notes(
                "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE",
            )],
        handler: fcall,
        group: "scripting",
        since: "7.0.0",
        summary: "Invokes a function.",
        complexity: "Depends on the function that is executed.",
        syntax: "function numkeys:integer [key ...] [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "fcall_ro",
        arity: -3,
        flags: READONLY | NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        acl: acl::SCRIPTING,
        keys: &[spec::index(2).keynum(0, 1, 1).flags(RO | ACCESS).notes(
            "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS",
        )],
        handler: fcall_ro,
        group: "scripting",
        since: "7.0.0",
        summary: "Invokes a read-only function.",
        complexity: "Depends on the function that is executed.",
        syntax: "function numkeys:integer [key ...] [arg ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "script",
        arity: -2,
        subcommands: SCRIPT_SUBCOMMANDS,
        group: "scripting",
        since: "2.6.0",
        summary: "A container for Lua scripts management commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
    Command {
        name: "function",
        arity: -2,
        subcommands: FUNCTION_SUBCOMMANDS,
        group: "scripting",
        since: "7.0.0",
        summary: "A container for function commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
];

static SCRIPT_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "debug",
        arity: 3,
        flags: NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: script_debug,
        group: "scripting",
        since: "3.2.0",
        summary: "Sets the debug mode of server-side Lua scripts.",
        complexity: "O(1)",
        syntax: "mode:<YES | SYNC | NO>",
        ..Command::DEFAULT
    },
    Command {
        name: "exists",
        arity: -3,
        flags: NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: script_exists,
        group: "scripting",
        since: "2.6.0",
        summary: "Determines whether server-side Lua scripts exist in the script cache.",
        complexity: "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
        syntax: "sha1 ...",
        tips: &["request_policy:all_shards", "response_policy:agg_logical_and"],
        ..Command::DEFAULT
    },
    Command {
        name: "flush",
        arity: -2,
        flags: NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: script_flush,
        group: "scripting",
        since: "2.6.0",
        summary: "Removes all server-side Lua scripts from the script cache.",
        complexity: "O(N) with N being the number of scripts in cache",
        syntax: "flush-type:[ASYNC | SYNC]@6.2.0",
        history: &[
            ("6.2.0", "Added the `ASYNC` and `SYNC` flushing mode modifiers."),
        ],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::SCRIPTING,
        handler: script_help,
        group: "scripting",
        since: "5.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "kill",
        arity: 2,
        flags: NOSCRIPT | ALLOW_BUSY,
        acl: acl::SCRIPTING,
        handler: script_kill,
        group: "scripting",
        since: "2.6.0",
        summary: "Terminates a server-side Lua script during execution.",
        complexity: "O(1)",
        tips: &["request_policy:all_shards", "response_policy:one_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "load",
        arity: 3,
        flags: NOSCRIPT | STALE,
        acl: acl::SCRIPTING,
        handler: script_load,
        group: "scripting",
        since: "2.6.0",
        summary: "Loads a server-side Lua script to the script cache.",
        complexity: "O(N) with N being the length in bytes of the script body.",
        syntax: "script",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
];

static FUNCTION_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "delete",
        arity: 3,
        flags: WRITE | NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: function_delete,
        group: "scripting",
        since: "7.0.0",
        summary: "Deletes a library and its functions.",
        complexity: "O(1)",
        syntax: "library-name",
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "dump",
        arity: 2,
        flags: NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: function_dump,
        group: "scripting",
        since: "7.0.0",
        summary: "Dumps all libraries into a serialized binary payload.",
        complexity: "O(N) where N is the number of functions",
        ..Command::DEFAULT
    },
    Command {
        name: "flush",
        arity: -2,
        flags: WRITE | NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: function_flush,
        group: "scripting",
        since: "7.0.0",
        summary: "Deletes all libraries and functions.",
        complexity: "O(N) where N is the number of functions deleted",
        syntax: "flush-type:[ASYNC | SYNC]",
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::SCRIPTING,
        handler: function_help,
        group: "scripting",
        since: "7.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "kill",
        arity: 2,
        flags: NOSCRIPT | ALLOW_BUSY,
        acl: acl::SCRIPTING,
        handler: function_kill,
        group: "scripting",
        since: "7.0.0",
        summary: "Terminates a function during execution.",
        complexity: "O(1)",
        tips: &["request_policy:all_shards", "response_policy:one_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "list",
        arity: -2,
        flags: NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: function_list,
        group: "scripting",
        since: "7.0.0",
        summary: "Returns information about all libraries.",
        complexity: "O(N) where N is the number of functions",
        syntax: "[LIBRARYNAME library-name-pattern] [WITHCODE]",
        tips: &["nondeterministic_output_order"],
        ..Command::DEFAULT
    },
    Command {
        name: "load",
        arity: -3,
        flags: WRITE | DENYOOM | NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: function_load,
        group: "scripting",
        since: "7.0.0",
        summary: "Creates a library.",
        complexity: "O(1) (considering compilation time is redundant)",
        syntax: "[REPLACE] function-code",
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "restore",
        arity: -3,
        flags: WRITE | DENYOOM | NOSCRIPT,
        acl: acl::SCRIPTING,
        handler: function_restore,
        group: "scripting",
        since: "7.0.0",
        summary: "Restores all libraries from a payload.",
        complexity: "O(N) where N is the number of functions on the payload",
        syntax: "serialized-value policy:[FLUSH | APPEND | REPLACE]",
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "stats",
        arity: 2,
        flags: NOSCRIPT | ALLOW_BUSY,
        acl: acl::SCRIPTING,
        handler: function_stats,
        group: "scripting",
        since: "7.0.0",
        summary: "Returns information about a function during execution.",
        complexity: "O(1)",
        tips: &[
            "nondeterministic_output",
            "request_policy:all_shards",
            "response_policy:special",
        ],
        ..Command::DEFAULT
    },
];

const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";
const RO_WRITE_ERR: &str = "ERR Can not execute a script with write flag using *_ro command.";

/// EVAL's and FCALL's `numkeys key... arg...` (`bad_int`: the error for a numkeys that is not an integer):
/// the keys and the arguments.
pub(crate) fn keys_and_args<'a>(
    a: &mut Argv<'a>,
    bad_int: &'static str,
) -> Result<(Args<'a>, Args<'a>), CmdError> {
    let n = ferrodis_protocol::num::parse_i64(a.next()?).ok_or(bad_int)?;
    if n > a.remaining() as i64 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    if n < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    let keys = a.take(n as usize)?;
    Ok((keys, a.rest()))
}

fn eval(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// Compile-check a script body and add it to the cache.
fn cache_script(
    ctx: &Ctx<'_>,
    body: &[u8],
) -> Result<std::sync::Arc<scripting::Script>, crate::cmd::CmdError> {
    let sha = scripting::sha1_hex(body);
    let s = &ctx.srv.scripting;
    if let Some(sc) = s.script(&sha) {
        return Ok(sc);
    }
    let flags = scripting::parse_shebang(body)?;
    engine::with_state(|st| st.compile(body).map(|_| ()))??;
    Ok(s.add_script(sha, body, flags))
}

fn eval_generic(ctx: &mut Ctx<'_>, args: Args<'_>, by_sha: bool, ro: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let body = a.next()?;
    if by_sha && body.len() != 40 {
        return Err(NOSCRIPT_ERR.into());
    }
    let (keys, argv) = keys_and_args(&mut a, crate::cmd::err::NOT_INTEGER)?;
    let script = if by_sha {
        ctx.srv.scripting.script(body).ok_or(NOSCRIPT_ERR)?
    } else {
        cache_script(ctx, body)?
    };
    let flags = script.flags;
    check_flags(ctx, flags, ro)?;
    let sha = script.sha;
    let body = script.body.clone();
    let name = script.name.clone();
    let srv = ctx.srv.clone();
    run(
        ctx,
        &args,
        (keys, argv),
        ro,
        flags,
        false,
        name,
        &script.policy,
        |st| st.script_fn(&srv.scripting, &sha, &body),
    )
}

fn fcall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, args: Args<'_>, ro: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let name: std::sync::Arc<str> = String::from_utf8_lossy(a.next()?).into();
    let meta = ctx
        .srv
        .scripting
        .libs
        .read()
        .funcs
        .get(&*name)
        .cloned()
        .ok_or("ERR Function not found")?;
    let (keys, argv) = keys_and_args(&mut a, "ERR Bad number of keys provided")?;
    let flags = meta.flags | sflags::EXPLICIT;
    check_flags(ctx, flags, ro)?;
    let srv = ctx.srv.clone();
    let fname = name.clone();
    run(
        ctx,
        &args,
        (keys, argv),
        ro,
        flags,
        true,
        name,
        &meta.policy,
        move |st| {
            functions::sync_state(&srv.scripting, st);
            let k = st.functions.get(&*fname).ok_or("ERR Function not found")?;
            st.lua
                .registry_value::<mlua::Function>(k)
                .map_err(|e| format!("ERR {e}"))
        },
    )
}

/// Run a script or function under its isolation scope, writing its reply.
#[allow(clippy::too_many_arguments)]
fn run(
    ctx: &mut Ctx<'_>,
    args: &Args<'_>,
    (keys, argv): (Args<'_>, Args<'_>),
    ro: bool,
    flags: u32,
    is_function: bool,
    name: std::sync::Arc<str>,
    policy: &AtomicU8,
    get: impl FnOnce(&mut engine::State) -> Result<mlua::Function, String>,
) -> CmdResult {
    let srv = ctx.srv.clone();
    let keys: Vec<&[u8]> = keys.iter().collect();
    let argv: Vec<&[u8]> = argv.iter().collect();
    let nested = ctx.client.in_exec;
    let pol = policy.load(Relaxed);
    let exclusive = pol != POLICY_CLEAN;
    let give_up = || srv.scripting.busy.load(Relaxed) != 0;
    // After an exclusive scope this worker is outside the keyspace gate: the connection loop enters it
    // again before its next command.
    let Some(scope) = srv.keyspace.script_scope(&keys, exclusive, &give_up) else {
        return Err(srv
            .scripting
            .busy_error()
            .unwrap_or(scripting::BUSY_EVAL_ERR)
            .into());
    };
    let r = engine::with_state(|st| {
        let func = get(st)?;
        let params = engine::RunParams {
            srv: &srv,
            client: ctx.client,
            out: ctx.out,
            func,
            keys,
            args: argv,
            read_only: ro,
            flags,
            is_function,
            name,
            cmd_id: ctx.id,
            argv: if is_function {
                args.iter().map(|a| a.to_vec()).collect()
            } else {
                Vec::new()
            },
        };
        Ok::<_, String>(engine::run_script(st, params))
    });
    let deviated = scope.deviated();
    drop(scope);
    if !nested {
        if deviated {
            policy.store(POLICY_DIRTY, Relaxed);
        } else if pol == POLICY_UNKNOWN {
            policy.store(POLICY_CLEAN, Relaxed);
        }
    }
    let (outcome, events) = r??;
    ctx.events.borrow_mut().extend(events);
    match outcome {
        engine::Outcome::Replied => Ok(()),
        engine::Outcome::Fatal(e) => Err(e.into()),
    }
}

fn check_flags(ctx: &Ctx<'_>, flags: u32, ro: bool) -> CmdResult {
    if flags & sflags::EXPLICIT != 0 && flags & sflags::NO_WRITES == 0 {
        if ro {
            return Err(RO_WRITE_ERR.into());
        }
        if flags & sflags::ALLOW_OOM == 0 && ctx.srv.over_maxmemory() {
            return Err(crate::cmd::err::OOM.into());
        }
    }
    Ok(())
}

fn script_debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let a = Argv::at(args, 2).next()?;
    if parse::eq(a, "no") {
        ctx.reply().ok();
        Ok(())
    } else if parse::eq(a, "yes") || parse::eq(a, "sync") {
        Err("ERR SCRIPT DEBUG is not supported by this server".into())
    } else {
        Err("ERR Use SCRIPT DEBUG YES/SYNC/NO".into())
    }
}

fn script_exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let s = &ctx.srv.scripting;
    let found: Vec<bool> = args.iter().skip(2).map(|a| s.script(a).is_some()).collect();
    let mut r = ctx.reply();
    r.array(found.len());
    for f in found {
        r.int(i64::from(f));
    }
    Ok(())
}

/// The `[ASYNC|SYNC]` of SCRIPT FLUSH and FUNCTION FLUSH, read from `a` (both flush synchronously):
/// `bad_mode` for another word, `extra()` when more than one argument is given.
fn flush_mode(
    mut a: Argv<'_>,
    bad_mode: &'static str,
    extra: impl FnOnce() -> CmdError,
) -> CmdResult {
    match a.opt() {
        None => Ok(()),
        Some(_) if !a.is_done() => Err(extra()),
        Some(m) if parse::eq(m, "sync") || parse::eq(m, "async") => Ok(()),
        Some(_) => Err(bad_mode.into()),
    }
}

fn script_flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    const BAD: &str = "ERR SCRIPT FLUSH only support SYNC|ASYNC option";
    flush_mode(Argv::at(args, 2), BAD, || BAD.into())?;
    ctx.srv.scripting.flush_scripts();
    ctx.reply().ok();
    Ok(())
}

fn script_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    crate::cmd::connection::help_reply(
        ctx,
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
    Ok(())
}

fn kill(ctx: &mut Ctx<'_>, function: bool) -> CmdResult {
    ctx.srv.scripting.kill_busy(function)?;
    ctx.reply().ok();
    Ok(())
}

fn script_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    kill(ctx, false)
}

fn function_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    kill(ctx, true)
}

fn script_load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let sc = cache_script(ctx, Argv::at(args, 2).next()?)?;
    ctx.reply().bulk(&sc.sha);
    Ok(())
}

fn function_load(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // `[REPLACE] code`: every argument before the last must be REPLACE.
    let mut a = Argv::at(args, 2);
    let mut replace = false;
    while a.remaining() > 1 {
        let opt = a.next()?;
        if parse::eq(opt, "replace") {
            replace = true;
        } else {
            return Err(
                format!("ERR Unknown option given: {}", String::from_utf8_lossy(opt)).into(),
            );
        }
    }
    let name = functions::load(&ctx.srv.scripting, a.next()?, replace)?;
    propagate_as_received(ctx);
    ctx.reply().bulk(name.as_bytes());
    Ok(())
}

/// FUNCTION LOAD/DELETE/FLUSH/RESTORE change no key but must reach the AOF as received.
fn propagate_as_received(ctx: &Ctx<'_>) {
    ctx.prop.borrow_mut().changes += 1;
}

fn function_delete(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    functions::delete(&ctx.srv.scripting, Argv::at(args, 2).next()?)?;
    propagate_as_received(ctx);
    ctx.reply().ok();
    Ok(())
}

fn function_flush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 1);
    let sub = a.next()?;
    flush_mode(
        a,
        "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
        || subcommand_syntax(sub, "FUNCTION"),
    )?;
    functions::flush(&ctx.srv.scripting);
    propagate_as_received(ctx);
    ctx.reply().ok();
    Ok(())
}

fn function_dump(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let payload = functions::dump(&ctx.srv.scripting);
    ctx.reply().bulk(&payload);
    Ok(())
}

fn function_restore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 1);
    let sub = a.next()?;
    let payload = a.next()?;
    let policy = match a.opt() {
        None => functions::RestorePolicy::Append,
        Some(_) if !a.is_done() => return Err(subcommand_syntax(sub, "FUNCTION")),
        Some(p) => {
            if parse::eq(p, "append") {
                functions::RestorePolicy::Append
            } else if parse::eq(p, "replace") {
                functions::RestorePolicy::Replace
            } else if parse::eq(p, "flush") {
                functions::RestorePolicy::Flush
            } else {
                return Err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.".into());
            }
        }
    };
    functions::restore(&ctx.srv.scripting, payload, policy)?;
    propagate_as_received(ctx);
    ctx.reply().ok();
    Ok(())
}

fn function_list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // `[LIBRARYNAME pattern] [WITHCODE]`, in any order, each at most once.
    let mut a = Argv::at(args, 2);
    let mut pattern: Option<&[u8]> = None;
    let mut withcode = false;
    while let Some(opt) = a.opt() {
        if parse::eq(opt, "withcode") && !withcode {
            withcode = true;
        } else if parse::eq(opt, "libraryname") && pattern.is_none() {
            pattern = Some(a.next_or("ERR library name argument was not given")?);
        } else {
            return Err(format!("ERR Unknown argument {}", String::from_utf8_lossy(opt)).into());
        }
    }
    let libs = ctx.srv.scripting.libs.read();
    let selected: Vec<&functions::Library> = libs
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| crate::glob::matches(p, l.name.as_bytes(), false)))
        .collect();
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    r.array(selected.len());
    for l in selected {
        r.map(if withcode { 4 } else { 3 });
        r.bulk(b"library_name");
        r.bulk(l.name.as_bytes());
        r.bulk(b"engine");
        r.bulk(b"LUA");
        r.bulk(b"functions");
        r.array(l.functions.len());
        for f in l.functions.values() {
            r.map(3);
            r.bulk(b"name");
            r.bulk(f.name.as_bytes());
            r.bulk(b"description");
            match &f.desc {
                Some(d) => r.bulk(d.as_bytes()),
                None => r.null(),
            }
            r.bulk(b"flags");
            let names = functions::flag_names(f.flags);
            r.set(names.len());
            for n in names {
                r.simple(n);
            }
        }
        if withcode {
            r.bulk(b"library_code");
            r.bulk(&l.code);
        }
    }
    Ok(())
}

fn function_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let s = &ctx.srv.scripting;
    let running = s.running_function()?;
    let (nlibs, nfuncs) = {
        let l = s.libs.read();
        (l.libs.len(), l.function_count())
    };
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    r.map(2);
    r.bulk(b"running_script");
    match running {
        None => r.null(),
        Some(info) => {
            r.map(3);
            r.bulk(b"name");
            r.bulk(info.name.as_bytes());
            r.bulk(b"command");
            r.array(info.argv.len());
            for a in &info.argv {
                r.bulk(a);
            }
            r.bulk(b"duration_ms");
            r.int(info.start.elapsed().as_millis() as i64);
        }
    }
    r.bulk(b"engines");
    r.map(1);
    r.bulk(b"LUA");
    r.map(2);
    r.bulk(b"libraries_count");
    r.int(nlibs as i64);
    r.bulk(b"functions_count");
    r.int(nfuncs as i64);
    Ok(())
}

fn function_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    crate::cmd::connection::help_reply(
        ctx,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
    Ok(())
}
