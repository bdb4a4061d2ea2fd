//! XLEN, XRANGE, XREVRANGE and XREAD/XREADGROUP, including blocking reads: the serve function a writer runs
//! for a blocked reader, inside its lock.

use super::*;

pub(super) fn xlen(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = Argv::new(args).next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let n = match ctx.lookup(&mut shard, key) {
        None => 0,
        Some(e) => stream_ref(e)?.len(),
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

pub(super) fn xrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, false)
}

pub(super) fn xrevrange(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    range_cmd(ctx, args, true)
}

pub(super) fn range_cmd(ctx: &mut Ctx<'_>, args: Args<'_>, rev: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let (b1, b2) = (a.next()?, a.next()?);
    let (sa, ea) = if rev { (b2, b1) } else { (b1, b2) };
    let start = range_bound(sa, true)?;
    let end = range_bound(ea, false)?;
    // `[COUNT n]`, a later one wins; none: no limit.
    let mut count: Option<usize> = None;
    while let Some(opt) = a.opt() {
        if parse::eq(opt, "count") && !a.is_done() {
            count = Some(count_arg(&mut a)?);
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().array(0);
        return Ok(());
    };
    let s = stream_ref(e)?;
    if count == Some(0) {
        ctx.reply().null_array();
        return Ok(());
    }
    let n = count.unwrap_or(0);
    let es = if rev {
        s.rev_range(start, end, n)
    } else {
        s.range(start, end, n)
    };
    reply_entries(&mut ctx.reply(), &es);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// XREAD / XREADGROUP

/// What XREAD/XREADGROUP asked for on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadFrom {
    /// Entries after this ID.
    After(StreamId),
    /// `+` (7.4): the last entry.
    Last,
    /// `>`: new entries for the group.
    New,
}

pub(super) struct ReadArgs<'a> {
    count: usize,
    block: Option<Option<Duration>>,
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    keys: Vec<&'a [u8]>,
    ids: Vec<&'a [u8]>,
}

/// XREAD's `[COUNT n] [BLOCK ms] STREAMS key... id...` and XREADGROUP's `GROUP g c [COUNT n] [BLOCK ms]
/// [NOACK] STREAMS key... id...`, options in any order, a later one winning.
pub(super) fn parse_read_args<'a>(
    args: Args<'a>,
    group_cmd: bool,
) -> Result<ReadArgs<'a>, CmdError> {
    let mut r = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let mut a = Argv::new(args);
    let mut streams: Option<Args<'a>> = None;
    while let Some(opt) = a.opt() {
        let has_value = !a.is_done();
        if parse::eq(opt, "block") && has_value {
            let ms = num::parse_i64(a.next()?).ok_or(CmdError::from(
                "ERR timeout is not an integer or out of range",
            ))?;
            if ms < 0 {
                return Err("ERR timeout is negative".into());
            }
            r.block = Some((ms > 0).then(|| Duration::from_millis(ms as u64)));
        } else if parse::eq(opt, "count") && has_value {
            r.count = count_arg(&mut a)?;
        } else if parse::eq(opt, "streams") && has_value {
            let rest = a.rest();
            if !rest.len().is_multiple_of(2) {
                return Err(if group_cmd {
                    "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified."
                } else {
                    "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
                }
                .into());
            }
            streams = Some(rest);
            break;
        } else if parse::eq(opt, "group") && a.remaining() >= 2 {
            if !group_cmd {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            r.group = Some((a.next()?, a.next()?));
        } else if parse::eq(opt, "noack") {
            if !group_cmd {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            r.noack = true;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let Some(streams) = streams else {
        return Err(err::SYNTAX.into());
    };
    if group_cmd && r.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    let half = streams.len() / 2;
    r.keys = streams.window(0, half).iter().collect();
    r.ids = streams.skip(half).iter().collect();
    Ok(r)
}

pub(super) fn xread(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_cmd(ctx, args, false)
}

pub(super) fn xreadgroup(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    read_cmd(ctx, args, true)
}

/// Serve a group read of new entries (`>`) on a locked stream: entries after the group's last ID, up to
/// `count`; advances the group and (unless `noack`) adds them to the PEL of `consumer`.
pub(super) fn group_read_new(
    s: &mut Stream,
    group: &[u8],
    consumer: &[u8],
    count: usize,
    noack: bool,
    now_ms: u64,
) -> Vec<OwnedEntry> {
    let Some(g) = s.groups.get(group) else {
        return Vec::new();
    };
    let from = g.last_id.incr();
    let es: Vec<OwnedEntry> = match from {
        None => Vec::new(),
        Some(f) => s
            .range(f, StreamId::MAX, count)
            .into_iter()
            .map(|e| {
                (
                    e.id,
                    e.fields
                        .iter()
                        .map(|(a, b)| (a.to_vec(), b.to_vec()))
                        .collect(),
                )
            })
            .collect(),
    };
    for (id, _) in &es {
        s.group_delivered(group, *id);
    }
    if let Some(g) = s.groups.get_mut(group) {
        let (c, _) = g.consumer_mut(consumer, now_ms);
        c.seen_time = now_ms;
        if !es.is_empty() {
            c.active_time = Some(now_ms);
        }
        if !noack {
            for (id, _) in &es {
                g.assign(*id, consumer, now_ms, 1);
            }
        }
    }
    es
}

/// What a group read changed, in replayable form (AOF), as Redis propagates it: one `XCLAIM ... FORCE
/// JUSTID` per entry now pending (with its delivery time and count), then `XGROUP SETID` for the group's
/// last delivered ID when `new` entries were read.
pub(super) fn propagate_group_read(
    w: &Ctx<'_>,
    s: &Stream,
    (key, group, consumer): (&[u8], &[u8], &[u8]),
    ids: &[StreamId],
    new: bool,
    created: bool,
) {
    let Some(g) = s.groups.get(group) else {
        return;
    };
    if created {
        w.propagate_after(vec![
            b"XGROUP".to_vec(),
            b"CREATECONSUMER".to_vec(),
            key.to_vec(),
            group.to_vec(),
            consumer.to_vec(),
        ]);
    }
    for id in ids {
        if let Some(p) = g.pel.get(id) {
            w.propagate_after(vec![
                b"XCLAIM".to_vec(),
                key.to_vec(),
                group.to_vec(),
                consumer.to_vec(),
                b"0".to_vec(),
                id.to_bytes(),
                b"TIME".to_vec(),
                p.delivery_time.to_string().into_bytes(),
                b"RETRYCOUNT".to_vec(),
                p.delivery_count.to_string().into_bytes(),
                b"FORCE".to_vec(),
                b"JUSTID".to_vec(),
            ]);
        }
    }
    if new {
        let mut v = vec![
            b"XGROUP".to_vec(),
            b"SETID".to_vec(),
            key.to_vec(),
            group.to_vec(),
            g.last_id.to_bytes(),
        ];
        if let Some(n) = g.entries_read {
            v.push(b"ENTRIESREAD".to_vec());
            v.push(n.to_string().into_bytes());
        }
        w.propagate_after(v);
    }
}

pub(super) fn has_consumer(s: &Stream, group: &[u8], consumer: &[u8]) -> bool {
    s.groups
        .get(group)
        .is_some_and(|g| g.consumers.contains_key(consumer))
}

pub(super) fn reply_owned_entries(r: &mut Reply<'_>, es: &[OwnedEntry]) {
    r.array(es.len());
    for (id, fields) in es {
        r.array(2);
        id_bulk(r, *id);
        r.array(fields.len() * 2);
        for (f, v) in fields {
            r.bulk(f);
            r.bulk(v);
        }
    }
}

pub(super) fn read_cmd(ctx: &mut Ctx<'_>, args: Args<'_>, group_cmd: bool) -> CmdResult {
    let ra = parse_read_args(args, group_cmd)?;
    let srv = ctx.srv;
    let db = ctx.db();
    let now = ctx.now_ms;
    let mut guard = srv.keyspace.lock_many(ra.keys.iter().copied());
    // Resolve the IDs (and check types / groups) first, as Redis does.
    let mut from = Vec::with_capacity(ra.keys.len());
    for (k, idb) in ra.keys.iter().zip(&ra.ids) {
        let shard = guard.shard(k);
        let s = match ctx.lookup(shard, k) {
            Some(e) => Some(stream_ref(e)?),
            None => None,
        };
        if let Some((g, _)) = ra.group {
            if !s.is_some_and(|s| s.groups.contains_key(g)) {
                return Err(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(g)
                )
                .into());
            }
        }
        let f = if *idb == b"$" {
            if group_cmd {
                return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
            }
            ReadFrom::After(s.map_or(StreamId::MIN, |s| s.last_id))
        } else if *idb == b">" {
            if !group_cmd {
                return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
            }
            ReadFrom::New
        } else if *idb == b"+" && !group_cmd {
            ReadFrom::Last
        } else {
            ReadFrom::After(strict_id(idb)?)
        };
        from.push(f);
    }
    // Serve what is available now.
    let mut served: Vec<u8> = Vec::new();
    let mut nserved = 0;
    let resp3 = ctx.client.resp3;
    for (i, k) in ra.keys.iter().enumerate() {
        let shard = guard.shard(k);
        let Some(s) = stream_in(shard, db, k, now) else {
            continue;
        };
        let mut r = Reply::new(&mut served, resp3);
        match (from[i], ra.group) {
            (ReadFrom::Last, _) => {
                let Some(e) = s.last_entry() else { continue };
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                r.array(1);
                reply_entry(&mut r, &e);
            }
            (ReadFrom::After(id), None) => {
                let Some(f) = id.incr() else { continue };
                let es = s.range(f, StreamId::MAX, ra.count);
                if es.is_empty() {
                    continue;
                }
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                reply_entries(&mut r, &es);
            }
            (ReadFrom::New, Some((g, c))) => {
                let existed = has_consumer(s, g, c);
                let es = group_read_new(s, g, c, ra.count, ra.noack, now);
                let created = !existed && has_consumer(s, g, c);
                if created || !es.is_empty() {
                    let ids: Vec<StreamId> = es.iter().map(|(id, _)| *id).collect();
                    propagate_group_read(ctx, s, (k, g, c), &ids, !es.is_empty(), created);
                }
                if es.is_empty() {
                    continue;
                }
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                reply_owned_entries(&mut r, &es);
            }
            (ReadFrom::After(start), Some((g, c))) => {
                // History: this consumer's pending entries from `start`.
                let existed = has_consumer(s, g, c);
                let mut out: Vec<MaybeEntry> = Vec::new();
                let ids: Vec<StreamId> = match s.groups.get(g).and_then(|gr| gr.consumers.get(c)) {
                    Some(cons) => cons
                        .pending
                        .range(start..)
                        .take(if ra.count == 0 { usize::MAX } else { ra.count })
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                for id in ids {
                    let fields = s.get(id).map(|e| {
                        e.fields
                            .iter()
                            .map(|(a, b)| (a.to_vec(), b.to_vec()))
                            .collect::<Vec<_>>()
                    });
                    out.push((id, fields));
                }
                if let Some(gr) = s.groups.get_mut(g) {
                    for (id, _) in &out {
                        if let Some(p) = gr.pel.get_mut(id) {
                            p.delivery_time = now;
                            p.delivery_count += 1;
                        }
                    }
                    let (cons, _) = gr.consumer_mut(c, now);
                    cons.seen_time = now;
                }
                let ids: Vec<StreamId> = out.iter().map(|(id, _)| *id).collect();
                propagate_group_read(ctx, s, (k, g, c), &ids, false, !existed);
                if !resp3 {
                    r.array(2);
                }
                r.bulk(k);
                r.array(out.len());
                for (id, f) in &out {
                    r.array(2);
                    id_bulk(&mut r, *id);
                    match f {
                        Some(f) => {
                            r.array(f.len() * 2);
                            for (a, b) in f {
                                r.bulk(a);
                                r.bulk(b);
                            }
                        }
                        None => r.null_array(),
                    }
                }
            }
            _ => continue,
        }
        nserved += 1;
    }
    if nserved > 0 {
        let mut r = ctx.reply();
        if resp3 {
            r.map(nserved);
        } else {
            r.array(nserved);
        }
        ctx.out.extend_from_slice(&served);
        return Ok(());
    }
    let Some(timeout) = ra.block else {
        ctx.reply().null_array();
        return Ok(());
    };
    // Block: a writer serves us inside its lock.
    let count = ra.count;
    let keys_owned: Vec<Vec<u8>> = ra.keys.iter().map(|k| k.to_vec()).collect();
    let group = ra.group.map(|(g, c)| (g.to_vec(), c.to_vec()));
    let noack = ra.noack;
    let serve: ServeFn = Box::new(move |shard, db, key, w| {
        let Some(i) = keys_owned.iter().position(|k| k == key) else {
            return Serve::Skip;
        };
        let Some(s) = stream_in(shard, db, key, w.now_ms) else {
            if group.is_some() && shard.get(db, key, w.now_ms).is_none() {
                return Serve::Served(encode(resp3, |r| {
                    r.error("UNBLOCKED the stream key no longer exists")
                }));
            }
            return Serve::Skip;
        };
        let reply = match (&group, from[i]) {
            (Some((g, c)), _) => {
                if !s.groups.contains_key(g) {
                    return Serve::Served(encode(resp3, |r| {
                        r.error("NOGROUP the consumer group this client was blocked on no longer exists")
                    }));
                }
                let es = group_read_new(s, g, c, count, noack, w.now_ms);
                if es.is_empty() {
                    return Serve::Skip;
                }
                let ids: Vec<StreamId> = es.iter().map(|(id, _)| *id).collect();
                propagate_group_read(w, s, (key, g, c), &ids, true, false);
                encode(resp3, |r| {
                    if resp3 {
                        r.map(1);
                    } else {
                        r.array(1);
                        r.array(2);
                    }
                    r.bulk(key);
                    reply_owned_entries(r, &es);
                })
            }
            (None, ReadFrom::After(id)) => {
                let Some(f) = id.incr() else {
                    return Serve::Skip;
                };
                let es = s.range(f, StreamId::MAX, count);
                if es.is_empty() {
                    return Serve::Skip;
                }
                encode(resp3, |r| {
                    if resp3 {
                        r.map(1);
                    } else {
                        r.array(1);
                        r.array(2);
                    }
                    r.bulk(key);
                    reply_entries(r, &es);
                })
            }
            (None, _) => {
                // `+` on an empty stream: the first entry added.
                let Some(e) = s.last_entry() else {
                    return Serve::Skip;
                };
                encode(resp3, |r| {
                    if resp3 {
                        r.map(1);
                    } else {
                        r.array(1);
                        r.array(2);
                    }
                    r.bulk(key);
                    r.array(1);
                    reply_entry(r, &e);
                })
            }
        };
        Serve::Served(reply)
    });
    let null = encode(resp3, |r| r.null_array());
    let keys = ra.keys.clone();
    block(ctx, &mut guard, args, &keys, timeout, null, serve);
    Ok(())
}
