//! XINFO STREAM / GROUPS / CONSUMERS / HELP.

use super::*;

pub(super) const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Print this help.",
];
pub(super) fn xinfo_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help(ctx, XINFO_HELP)
}

// ---------------------------------------------------------------------------------------------------------
// XINFO

pub(super) fn xinfo_stream(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 1);
    let sub = a.next()?;
    let key = a.next()?;
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        return Err(err::NO_SUCH_KEY.into());
    };
    let s = stream_ref(e)?;
    // As Redis: the key first, then `[FULL [COUNT n]]` (COUNT 0 or negative: everything).
    let (full, count) = match a.remaining() {
        0 => (false, 10),
        1 if a.eat("full") => (true, 10),
        3 if a.eat("full") && a.eat("count") => (true, count_arg(&mut a)?),
        _ => return Err(subcommand_syntax(sub, "XINFO")),
    };
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
        group_position(&mut r, s, gr);
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

pub(super) fn xinfo_groups(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::at(args, 2).next()?;
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
        group_position(&mut r, s, gr);
    }
    Ok(())
}

pub(super) fn xinfo_consumers(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 2);
    let (key, g) = (a.next()?, a.next()?);
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

/// A group's position in the stream, as XINFO STREAM FULL and XINFO GROUPS print it: last-delivered-id,
/// entries-read and lag.
fn group_position(r: &mut Reply<'_>, s: &Stream, gr: &crate::types::stream::Group) {
    r.bulk(b"last-delivered-id");
    id_bulk(r, gr.last_id);
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
