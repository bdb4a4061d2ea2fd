//! Snapshot commands: SAVE, BGSAVE, LASTSAVE (RDB; see crate::persist::save).

use super::argv::Argv;
use super::{acl, flags::*, parse, CmdResult, Command, Ctx};
use crate::persist::save;
use ferrodis_protocol::Args;
use std::sync::atomic::Ordering::Relaxed;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "save",
        arity: 1,
        flags: ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        handler: save_cmd,
        group: "server",
        since: "1.0.0",
        summary: "Synchronously saves the database(s) to disk.",
        complexity: "O(N) where N is the total number of keys in all databases",
        ..Command::DEFAULT
    },
    Command {
        name: "bgsave",
        arity: -1,
        flags: ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        handler: bgsave_cmd,
        group: "server",
        since: "1.0.0",
        summary: "Asynchronously saves the database(s) to disk.",
        complexity: "O(1)",
        syntax: "[SCHEDULE@3.2.2]",
        history: &[("3.2.2", "Added the `SCHEDULE` option.")],
        ..Command::DEFAULT
    },
    Command {
        name: "lastsave",
        arity: 1,
        flags: LOADING | STALE | FAST,
        acl: acl::ADMIN | acl::DANGEROUS,
        handler: lastsave,
        group: "server",
        since: "1.0.0",
        summary: "Returns the Unix timestamp of the last successful save to disk.",
        complexity: "O(1)",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
];

fn save_cmd(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    save::save(ctx.srv)?;
    ctx.reply().ok();
    Ok(())
}

fn bgsave_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // BGSAVE [SCHEDULE]
    let mut a = Argv::new(args);
    let schedule = match a.opt() {
        None => false,
        Some(w) if parse::eq(w, "schedule") && a.is_done() => true,
        Some(_) => return Err(super::err::SYNTAX.into()),
    };
    let st = &ctx.srv.persist.rdb;
    if st.bgsave_in_progress.load(Relaxed) {
        return Err(if schedule {
            "ERR Another BGSAVE already in progress"
        } else {
            "ERR Background save already in progress"
        }
        .into());
    }
    if ctx.srv.keyspace.snapshot_running() {
        // An AOF rewrite holds the snapshot.
        if !schedule {
            return Err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into());
        }
        st.scheduled.store(true, Relaxed);
        ctx.reply().simple("Background saving scheduled");
        return Ok(());
    }
    save::bgsave(ctx.srv)?;
    ctx.reply().simple("Background saving started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let t = ctx.srv.persist.rdb.last_save.load(Relaxed);
    ctx.reply().int(t as i64);
    Ok(())
}
