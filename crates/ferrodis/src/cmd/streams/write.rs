//! XADD, XDEL, XTRIM, XSETID: the writes that add or remove entries (and the MAXLEN/MINID trimming
//! XADD and XTRIM share).

use super::*;

// ---------------------------------------------------------------------------------------------------------
// XADD / XTRIM argument parsing

pub(super) struct TrimArgs {
    strategy: Option<TrimStrategy>,
    approx: bool,
    limit: usize,
    nomkstream: bool,
    /// Index of the first argument after the options (XADD: the ID).
    next: usize,
}

pub(super) fn parse_trim_args(args: &Args<'_>, xadd: bool) -> Result<TrimArgs, CmdError> {
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
pub(super) fn exact_trim_argv(key: &[u8], s: &Stream) -> Vec<Vec<u8>> {
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

pub(super) fn trim_stream(s: &mut Stream, t: &TrimArgs) -> usize {
    match t.strategy {
        None => 0,
        Some(st) => s.trim(st, t.approx, t.limit),
    }
}

// ---------------------------------------------------------------------------------------------------------
// XADD XLEN XRANGE XREVRANGE XDEL XTRIM XSETID

pub(super) fn xadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
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

pub(super) fn xdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
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

pub(super) fn xtrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
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

pub(super) fn xsetid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
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
