//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! EXEC is two-phase locking (docs/design/execution-model.md): it collects the keys of every queued command (and the watched
//! keys), locks all their shards in ascending order — or the whole keyspace when a command's keys cannot be
//! known in advance — checks the watches under those locks, then runs the queued commands with the locks
//! held for the whole transaction (`Keyspace::hold`), so other clients on every thread see all of it or
//! nothing. Key events are delivered after the locks are released.
//!
//! WATCH registers the client's flag on each key's shard; any writer of the key sets it inside its shard
//! lock (`Ctx::modified_in`), so a write that happens before EXEC takes its locks is always seen.

use super::spec::{self, RO};
use super::{call, flags::*, BatchClock, CmdResult, Command, Ctx, Registry};
use crate::client::{Client, MultiState, Queued, WatchSet, WatchedKey};
use crate::cmd::acl;
use crate::server::Server;
use ferrodis_protocol::{Args, Reply};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "multi",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        acl: acl::TRANSACTION,
        handler: multi,
        group: "transactions",
        since: "1.2.0",
        summary: "Starts a transaction.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "exec",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        acl: acl::TRANSACTION,
        handler: exec,
        group: "transactions",
        since: "1.2.0",
        summary: "Executes all commands in a transaction.",
        complexity: "Depends on commands in the transaction",
        ..Command::DEFAULT
    },
    Command {
        name: "discard",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        acl: acl::TRANSACTION,
        handler: discard,
        group: "transactions",
        since: "2.0.0",
        summary: "Discards a transaction.",
        complexity: "O(N), when N is the number of queued commands",
        ..Command::DEFAULT
    },
    Command {
        name: "watch",
        arity: -2,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        acl: acl::TRANSACTION,
        keys: &[spec::index(1).range(-1, 1, 0).flags(RO)],
        handler: watch,
        group: "transactions",
        since: "2.2.0",
        summary: "Monitors changes to keys to determine the execution of a transaction.",
        complexity: "O(1) for every key.",
        syntax: "key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "unwatch",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        acl: acl::TRANSACTION,
        handler: unwatch_cmd,
        group: "transactions",
        since: "2.2.0",
        summary: "Forgets about watched keys of a transaction.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
];

/// Commands that act immediately even inside MULTI instead of being queued.
pub fn runs_in_multi(cmd: &Command) -> bool {
    matches!(
        cmd.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Queue a command (its arguments copied) for EXEC.
pub fn queue(client: &mut Client, id: usize, args: &Args<'_>) {
    // One exact allocation for the line (growing it argument by argument reallocated several times).
    let mut argv = Vec::with_capacity(args.iter().map(|a| a.len()).sum());
    let mut spans = Vec::with_capacity(args.len());
    for a in args.iter() {
        spans.push((argv.len(), argv.len() + a.len()));
        argv.extend_from_slice(a);
    }
    if let Some(m) = client.multi.as_mut() {
        m.flags |= Registry::get().command(id).flags;
        m.queued.push(Queued { id, argv, spans });
    }
}

fn multi(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err("ERR MULTI calls can not be nested".into());
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.reply().ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err("ERR DISCARD without MULTI".into());
    }
    unwatch(ctx.srv, ctx.client);
    ctx.reply().ok();
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err("ERR WATCH inside MULTI is not allowed".into());
    }
    let db = ctx.client.db;
    let ws = ctx.client.watch.get_or_insert_with(|| WatchSet {
        flag: Arc::new(AtomicBool::new(false)),
        keys: Vec::new(),
    });
    for key in args.iter().skip(1) {
        if ws.keys.iter().any(|w| w.db == db && w.key == key) {
            continue;
        }
        let mut shard = ctx.srv.keyspace.lock_key(key);
        let existed = shard.get(db, key, ctx.now_ms).is_some();
        shard.add_watch(db, key, &ws.flag);
        drop(shard);
        ws.keys.push(WatchedKey {
            db,
            key: key.to_vec(),
            existed,
        });
    }
    ctx.reply().ok();
    Ok(())
}

fn unwatch_cmd(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    unwatch(ctx.srv, ctx.client);
    ctx.reply().ok();
    Ok(())
}

/// Forget all watched keys (UNWATCH, EXEC, DISCARD, RESET, disconnect).
pub fn unwatch(srv: &Server, client: &mut Client) {
    if let Some(ws) = client.watch.take() {
        for w in &ws.keys {
            srv.keyspace
                .lock_key(&w.key)
                .remove_watch(w.db, &w.key, &ws.flag);
        }
    }
}

fn exec(ctx: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    let Some(m) = ctx.client.multi.take() else {
        return Err("ERR EXEC without MULTI".into());
    };
    if m.errored {
        unwatch(ctx.srv, ctx.client);
        return Err("EXECABORT Transaction discarded because of previous errors.".into());
    }
    let srv = ctx.srv;
    let reg = Registry::get();
    // Phase 1: every shard the transaction can touch, in ascending order.
    // The keys are borrowed from the queued lines and the watch set (no copies).
    let mut keys: Vec<&[u8]> = Vec::with_capacity(m.queued.len() + 1);
    let mut everything = false;
    for q in &m.queued {
        let cmd = reg.command(q.id);
        let args = Args::from_parts(&q.argv, &q.spans);
        let pos = cmd.key_positions_in(&args);
        let keyless_data_command = pos.is_empty() && (cmd.has(WRITE) || cmd.has(READONLY));
        // A script may touch keys it did not declare, SORT ... BY/GET keys named by data: everything held.
        let unknown_keys = cmd.has_unknown_keys()
            || (cmd.has(MOVABLEKEYS) && cmd.acl_categories() & crate::cmd::acl::SCRIPTING != 0);
        if keyless_data_command || unknown_keys {
            everything = true;
            break;
        }
        keys.extend(pos.into_iter().map(|i| {
            let (a, b) = q.spans[i];
            &q.argv[a..b]
        }));
    }
    if let Some(ws) = &ctx.client.watch {
        keys.extend(ws.keys.iter().map(|w| &w.key[..]));
    }
    let guard = if everything {
        srv.keyspace.lock_all()
    } else {
        srv.keyspace.lock_many(keys.iter().copied())
    };
    drop(keys);
    let held = srv.keyspace.hold(guard);
    // The watches, checked under the locks: touched, or gone since WATCH (expired, flushed).
    if let Some(ws) = &ctx.client.watch {
        let touched = ws.flag.load(Ordering::Acquire)
            || ws.keys.iter().any(|w| {
                w.existed
                    && srv
                        .keyspace
                        .lock_key(&w.key)
                        .get(w.db, &w.key, ctx.now_ms)
                        .is_none()
            });
        if touched {
            drop(held);
            unwatch(srv, ctx.client);
            ctx.reply().null_array();
            return Ok(());
        }
    }
    // Phase 2: run everything with the locks held.
    let mut clock = BatchClock::new();
    let mut events = Vec::new();
    Reply::new(ctx.out, ctx.client.resp3).array(m.queued.len());
    ctx.client.in_exec = true;
    for q in &m.queued {
        let args = Args::from_parts(&q.argv, &q.spans);
        let cmd = reg.command(q.id);
        // Memory was checked when EXEC was admitted (by the queued commands' flags); like Redis, the
        // transaction then runs whole.
        let (ok, ev) = call(srv, ctx.client, ctx.out, q.id, args, &mut clock);
        if ok && cmd.has(READONLY) && ctx.client.tracking.is_some() {
            crate::tracking::note_read(srv, ctx.client, &args, || cmd.key_positions_in(&args));
        }
        events.extend(ev);
    }
    // Clients blocked on keys the transaction made ready are served now that it ran entirely, under its
    // locks; their pops join its AOF block.
    events.extend(super::serve_ready_keys(srv, ctx.id, ctx.client, &clock));
    ctx.client.in_exec = false;
    // The transaction's commands go to the AOF as one MULTI/EXEC block, before the locks go.
    srv.persist.aof.flush_exec();
    drop(held);
    unwatch(srv, ctx.client);
    // Delivered after the locks are gone; `execute` delivers EXEC's own (none).
    if !events.is_empty() {
        crate::notify::after_command(srv, &events);
        crate::tracking::invalidate(srv, ctx.client, &events);
    }
    Ok(())
}
