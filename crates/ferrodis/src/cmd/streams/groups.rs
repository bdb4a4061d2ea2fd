//! XGROUP: consumer groups and their consumers.

use super::*;

// ---------------------------------------------------------------------------------------------------------
// XGROUP

/// The value of ENTRIESREAD (XGROUP CREATE and SETID): an integer ≥ 0, or -1 for "unknown" (`None`).
pub(super) fn entries_read_arg(a: &mut Argv<'_>) -> Result<Option<u64>, CmdError> {
    let v = a.int()?;
    if v < 0 && v != -1 {
        return Err("ERR value for ENTRIESREAD must be positive or -1".into());
    }
    Ok((v >= 0).then_some(v as u64))
}

pub(super) const NEED_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

pub(super) fn no_such_group(key: &[u8], g: &[u8]) -> CmdError {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(g),
        String::from_utf8_lossy(key)
    )
    .into()
}

pub(super) fn xgroup_create(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 1);
    let sub = a.next()?;
    let key = a.next()?;
    let g = a.next()?;
    let idb = a.next()?;
    let mut mkstream = false;
    let mut entries_read = None;
    // As Redis: the options first, then the key, then the argument count, then the ID.
    while let Some(opt) = a.opt() {
        if parse::eq(opt, "mkstream") {
            mkstream = true;
        } else if parse::eq(opt, "entriesread") && !a.is_done() {
            entries_read = entries_read_arg(&mut a)?;
        } else {
            return Err(subcommand_syntax(sub, "XGROUP"));
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
    if args.len() > 8 {
        return Err(subcommand_syntax(sub, "XGROUP"));
    }
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
pub(super) fn with_group<T>(
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

pub(super) fn xgroup_setid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 1);
    let sub = a.next()?;
    let key = a.next()?;
    let g = a.next()?;
    let idb = a.next()?;
    // As Redis: the argument count and ENTRIESREAD first, then the key and group, then the ID (`$`, or an
    // ID where `-` and `+` are the smallest and largest).
    let entries_read = match a.remaining() {
        0 => None,
        2 if a.eat("entriesread") => entries_read_arg(&mut a)?,
        _ => return Err(subcommand_syntax(sub, "XGROUP")),
    };
    with_group(ctx, key, g, Some("xgroup-setid"), |s, _| {
        let id = if idb == b"$" {
            s.last_id
        } else {
            parse_id(idb, 0, true).map_err(cmd_err)?
        };
        if let Some(gr) = s.groups.get_mut(g) {
            gr.last_id = id;
            gr.entries_read = entries_read;
        }
        Ok(((), true))
    })?;
    ctx.reply().ok();
    Ok(())
}

pub(super) fn xgroup_destroy(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 2);
    let (key, g) = (a.next()?, a.next()?);
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

pub(super) fn xgroup_createconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 2);
    let (key, g, c) = (a.next()?, a.next()?, a.next()?);
    let created = with_group(ctx, key, g, Some("xgroup-createconsumer"), |s, now| {
        let gr = s.groups.get_mut(g).expect("group checked");
        let (_, created) = gr.consumer_mut(c, now);
        Ok((created, created))
    })?;
    ctx.reply().int(created as i64);
    Ok(())
}

pub(super) fn xgroup_delconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 2);
    let (key, g, c) = (a.next()?, a.next()?, a.next()?);
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

pub(super) const XGROUP_HELP: &[&str] = &[
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
    "    Print this help.",
];

pub(super) fn help(ctx: &mut Ctx<'_>, lines: &[&str]) -> CmdResult {
    let mut r = ctx.reply();
    r.array(lines.len());
    for l in lines {
        r.simple(l);
    }
    Ok(())
}

pub(super) fn xgroup_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help(ctx, XGROUP_HELP)
}
