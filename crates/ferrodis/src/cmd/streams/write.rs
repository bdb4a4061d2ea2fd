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
}

/// The trimming options XADD and XTRIM share, `MAXLEN|MINID [=|~] threshold [LIMIT count]`, and XADD's
/// NOMKSTREAM. XTRIM reads every argument left in `a`; XADD stops at its ID (`*`, or the first word that is
/// not an option), leaving `a` on it.
pub(super) fn parse_trim_args(a: &mut Argv<'_>, xadd: bool) -> Result<TrimArgs, CmdError> {
    let mut t = TrimArgs {
        strategy: None,
        approx: false,
        limit: 0,
        nomkstream: false,
    };
    let mut limit: Option<i64> = None;
    while let Some(opt) = a.peek() {
        if xadd && opt == b"*" {
            break;
        }
        let has_value = a.remaining() > 1;
        let maxlen = parse::eq(opt, "maxlen");
        if (maxlen || parse::eq(opt, "minid")) && has_value {
            a.opt();
            if t.strategy.is_some() {
                return Err(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
                        .into(),
                );
            }
            // `~` or `=` is an operator only when a threshold follows it.
            t.approx = false;
            if a.remaining() >= 2 {
                if a.eat("~") {
                    t.approx = true;
                } else {
                    a.eat("=");
                }
            }
            if maxlen {
                let m = a.int()?;
                if m < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                t.strategy = Some(TrimStrategy::MaxLen(m as u64));
            } else {
                t.strategy = Some(TrimStrategy::MinId(strict_id(a.next()?)?));
            }
        } else if parse::eq(opt, "limit") && has_value {
            a.opt();
            let l = a.int()?;
            if l < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            limit = Some(l);
        } else if xadd && parse::eq(opt, "nomkstream") {
            a.opt();
            t.nomkstream = true;
        } else if xadd {
            break;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
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

const XADD_ARITY: &str = "ERR wrong number of arguments for 'xadd' command";

pub(super) fn xadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let t = parse_trim_args(&mut a, true)?;
    let id_pos = a.pos();
    let spec = IdSpec::parse(a.next_or(XADD_ARITY)?).map_err(cmd_err)?;
    let pairs = a.rest();
    let nf = pairs.len();
    if nf < 2 || nf % 2 == 1 {
        return Err(XADD_ARITY.into());
    }
    if spec == IdSpec::Explicit(StreamId::MIN) {
        return Err(stream::ID_ZERO.into());
    }
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(nf / 2);
    let mut it = pairs.iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        fields.push((f, v));
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
        v.extend(pairs.iter().map(|a| a.to_vec()));
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
    let mut a = Argv::new(args);
    let key = a.next()?;
    let ids = a.rest();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup_write(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let s = stream_mut(e)?;
    // As Redis: the key first (none: 0, whatever the IDs), then every ID before any is deleted.
    let ids = ids.iter().map(strict_id).collect::<Result<Vec<_>, _>>()?;
    let n = ids.iter().filter(|id| s.delete(**id)).count();
    if n > 0 {
        ctx.modified(&mut shard, key, "xdel");
    }
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

pub(super) fn xtrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let t = parse_trim_args(&mut a, false)?;
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
    let mut a = Argv::new(args);
    let key = a.next()?;
    let id = strict_id(a.next()?)?;
    let mut entries_added: Option<u64> = None;
    let mut max_xdel: Option<StreamId> = None;
    while let Some(opt) = a.opt() {
        let has_value = !a.is_done();
        if parse::eq(opt, "entriesadded") && has_value {
            let v = a.int()?;
            if v < 0 {
                return Err("ERR entries_added must be positive".into());
            }
            entries_added = Some(v as u64);
        } else if parse::eq(opt, "maxdeletedid") && has_value {
            let m = strict_id(a.next()?)?;
            if id < m {
                return Err(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
                        .into(),
                );
            }
            max_xdel = Some(m);
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
    if id < s.max_deleted_id {
        return Err(
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id".into(),
        );
    }
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
