//! XACK, XPENDING, XCLAIM, XAUTOCLAIM: the pending entries lists of consumer groups.

use super::*;

// ---------------------------------------------------------------------------------------------------------
// XACK XPENDING XCLAIM XAUTOCLAIM

pub(super) fn xack(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, g) = (a.next()?, a.next()?);
    let ids = a.rest();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    // As Redis: no key or no group acknowledges nothing, whatever the IDs; else every ID is checked before
    // any is acknowledged.
    let n = match ctx.lookup_write(&mut shard, key) {
        None => 0,
        Some(e) => match stream_mut(e)?.groups.get_mut(g) {
            None => 0,
            Some(gr) => {
                let ids = ids.iter().map(strict_id).collect::<Result<Vec<_>, _>>()?;
                ids.iter().filter(|id| gr.ack(**id)).count()
            }
        },
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

pub(super) fn xpending(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, g) = (a.next()?, a.next()?);
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(err::SYNTAX.into());
    }
    // The extended form `[IDLE ms] start end count [consumer]`, parsed in Redis's order (count before the
    // bounds); anything after the consumer is ignored, as Redis does.
    let mut ext: Option<PendingQuery<'_>> = None;
    if !a.is_done() {
        let mut min_idle = 0i64;
        if a.eat("idle") {
            min_idle = a.int()?;
            if a.remaining() < 3 {
                return Err(err::SYNTAX.into());
            }
        }
        let (sb, eb) = (a.next()?, a.next()?);
        let count = count_arg(&mut a)?;
        let start = range_bound(sb, true)?;
        let end = range_bound(eb, false)?;
        let consumer = a.opt();
        ext = Some((min_idle.max(0) as u64, start, end, count, consumer));
    }
    let srv = ctx.srv;
    let now = ctx.now_ms;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        return Err(nogroup(key, g));
    };
    let s = stream_ref(e)?;
    let Some(gr) = s.groups.get(g) else {
        return Err(nogroup(key, g));
    };
    let mut r = Reply::new(ctx.out, ctx.client.resp3);
    match ext {
        None => {
            r.array(4);
            r.int(gr.pel.len() as i64);
            if gr.pel.is_empty() {
                r.null();
                r.null();
                r.null_array();
            } else {
                id_bulk(&mut r, *gr.pel.keys().next().expect("nonempty"));
                id_bulk(&mut r, *gr.pel.keys().next_back().expect("nonempty"));
                let with: Vec<_> = gr
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pending.is_empty())
                    .collect();
                r.array(with.len());
                for (name, c) in with {
                    r.array(2);
                    r.bulk(name);
                    r.bulk(c.pending.len().to_string().as_bytes());
                }
            }
        }
        Some((min_idle, start, end, count, consumer)) => {
            let mut rows = Vec::new();
            if start <= end && count > 0 {
                let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
                    Some(c) => match gr.consumers.get(c) {
                        Some(c) => Box::new(c.pending.range(start..=end).copied()),
                        None => Box::new(std::iter::empty()),
                    },
                    None => Box::new(gr.pel.range(start..=end).map(|(k, _)| *k)),
                };
                for id in ids {
                    let Some(p) = gr.pel.get(&id) else { continue };
                    let idle = now.saturating_sub(p.delivery_time);
                    if min_idle > 0 && idle < min_idle {
                        continue;
                    }
                    rows.push((id, p, idle));
                    if rows.len() >= count {
                        break;
                    }
                }
            }
            r.array(rows.len());
            for (id, p, idle) in rows {
                r.array(4);
                id_bulk(&mut r, id);
                r.bulk(&p.consumer);
                r.int(idle as i64);
                r.int(p.delivery_count as i64);
            }
        }
    }
    Ok(())
}

/// XCLAIM/XAUTOCLAIM: the key must be a stream (WRONGTYPE) with the group (NOGROUP).
pub(super) fn check_claim_group(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    g: &[u8],
) -> Result<(), CmdError> {
    let group_ok = match ctx.lookup_write(shard, key) {
        Some(e) => stream_ref(e)?.groups.contains_key(g),
        None => false,
    };
    if group_ok {
        Ok(())
    } else {
        Err(nogroup(key, g))
    }
}

/// XCLAIM/XAUTOCLAIM's min-idle-time (negative = 0).
pub(super) fn min_idle_arg(a: &mut Argv<'_>, cmd: &str) -> Result<u64, CmdError> {
    let v = num::parse_i64(a.next()?)
        .ok_or_else(|| CmdError::from(format!("ERR Invalid min-idle-time argument for {cmd}")))?;
    Ok(v.max(0) as u64)
}

pub(super) fn xclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, g, consumer) = (a.next()?, a.next()?, a.next()?);
    let now = ctx.now_ms;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    // As Redis: the group first, then min-idle-time, the IDs (up to the first argument that is not one),
    // then the options.
    check_claim_group(ctx, &mut shard, key, g)?;
    let min_idle = min_idle_arg(&mut a, "XCLAIM")?;
    let mut ids = Vec::new();
    while let Some(id) = a.peek().and_then(|b| parse_strict_id(b).ok()) {
        ids.push(id);
        a.opt();
    }
    let (mut force, mut justid) = (false, false);
    let mut delivery_time: Option<i64> = None;
    let mut retry: Option<u64> = None;
    let mut last_id: Option<StreamId> = None;
    while let Some(opt) = a.opt() {
        let has_value = !a.is_done();
        if parse::eq(opt, "force") {
            force = true;
        } else if parse::eq(opt, "justid") {
            justid = true;
        } else if parse::eq(opt, "idle") && has_value {
            let v = num::parse_i64(a.next()?).ok_or(CmdError::from(
                "ERR Invalid IDLE option argument for XCLAIM",
            ))?;
            delivery_time = Some((now as i64).saturating_sub(v));
        } else if parse::eq(opt, "time") && has_value {
            delivery_time = Some(num::parse_i64(a.next()?).ok_or(CmdError::from(
                "ERR Invalid TIME option argument for XCLAIM",
            ))?);
        } else if parse::eq(opt, "retrycount") && has_value {
            retry = Some(
                num::parse_i64(a.next()?)
                    .ok_or(CmdError::from(
                        "ERR Invalid RETRYCOUNT option argument for XCLAIM",
                    ))?
                    .max(0) as u64,
            );
        } else if parse::eq(opt, "lastid") && has_value {
            last_id = Some(strict_id(a.next()?)?);
        } else {
            return Err(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            )
            .into());
        }
    }
    let dt = match delivery_time {
        Some(t) if t >= 0 && (t as u64) <= now => t as u64,
        _ => now,
    };
    let db = ctx.db();
    let Some(Value::Stream(s)) = shard.db_mut(db).find_mut(key).and_then(|e| e.value_mut()) else {
        return Err(nogroup(key, g));
    };
    let mut claimed: Vec<MaybeEntry> = Vec::new();
    let mut changed = false;
    let mut acked: Vec<StreamId> = Vec::new();
    let existed = has_consumer(s, g, consumer);
    let mut moved_last = false;
    if let Some(l) = last_id {
        let gr = s.groups.get_mut(g).expect("group");
        if l > gr.last_id {
            gr.last_id = l;
            changed = true;
            moved_last = true;
        }
    }
    for id in ids {
        let exists = s.contains(id);
        let gr = s.groups.get_mut(g).expect("group");
        let mut count = match gr.pel.get(&id) {
            Some(p) => {
                if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                    continue;
                }
                p.delivery_count
            }
            None => {
                if !force || !exists {
                    continue;
                }
                0
            }
        };
        if !exists {
            gr.ack(id);
            acked.push(id);
            changed = true;
            continue;
        }
        if let Some(rc) = retry {
            count = rc;
        } else if !justid {
            count += 1;
        }
        gr.assign(id, consumer, dt, count);
        let (c, _) = gr.consumer_mut(consumer, now);
        c.seen_time = now;
        c.active_time = Some(now);
        changed = true;
        let fields = if justid {
            None
        } else {
            s.get(id).map(|e| {
                e.fields
                    .iter()
                    .map(|(a, b)| (a.to_vec(), b.to_vec()))
                    .collect()
            })
        };
        claimed.push((id, fields));
    }
    if changed {
        // The effect with absolute delivery times (min-idle-time depends on the clock).
        let ids: Vec<StreamId> = claimed.iter().map(|(id, _)| *id).collect();
        let created = !existed && has_consumer(s, g, consumer);
        propagate_group_read(ctx, s, (key, g, consumer), &ids, moved_last, created);
        for id in acked {
            ctx.propagate_after(vec![
                b"XACK".to_vec(),
                key.to_vec(),
                g.to_vec(),
                id.to_bytes(),
            ]);
        }
    }
    drop(shard);
    let mut r = ctx.reply();
    r.array(claimed.len());
    for (id, f) in claimed {
        match f {
            None => id_bulk(&mut r, id),
            Some(f) => {
                r.array(2);
                id_bulk(&mut r, id);
                r.array(f.len() * 2);
                for (a, b) in &f {
                    r.bulk(a);
                    r.bulk(b);
                }
            }
        }
    }
    Ok(())
}

pub(super) fn xautoclaim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, g, consumer) = (a.next()?, a.next()?, a.next()?);
    let now = ctx.now_ms;
    // As Redis: every argument is parsed before the key and group are looked at.
    let min_idle = min_idle_arg(&mut a, "XAUTOCLAIM")?;
    let start = range_bound(a.next()?, true)?;
    let mut count: usize = 100;
    let mut justid = false;
    while let Some(opt) = a.opt() {
        if parse::eq(opt, "count") && !a.is_done() {
            // Redis's bound: LONG_MAX / max(sizeof(streamID), attempts factor 10).
            match num::parse_i64(a.next()?) {
                Some(v) if (1..=i64::MAX / 16).contains(&v) => count = v as usize,
                _ => return Err("ERR COUNT must be > 0".into()),
            }
        } else if parse::eq(opt, "justid") {
            justid = true;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    check_claim_group(ctx, &mut shard, key, g)?;
    let db = ctx.db();
    let Some(Value::Stream(s)) = shard.db_mut(db).find_mut(key).and_then(|e| e.value_mut()) else {
        return Err(nogroup(key, g));
    };
    let mut attempts = count.saturating_mul(10);
    let mut claimed: Vec<MaybeEntry> = Vec::new();
    let mut deleted: Vec<StreamId> = Vec::new();
    let candidates: Vec<(StreamId, u64, u64)> = {
        let gr = s.groups.get(g).expect("group");
        gr.pel
            .range(start..)
            .map(|(id, p)| (*id, p.delivery_time, p.delivery_count))
            .collect()
    };
    let mut next = StreamId::MIN;
    let existed = has_consumer(s, g, consumer);
    let mut it = candidates.into_iter().peekable();
    while attempts > 0 && count > 0 {
        let Some((id, dtime, dcount)) = it.next() else {
            break;
        };
        attempts -= 1;
        if min_idle > 0 && now.saturating_sub(dtime) < min_idle {
            continue;
        }
        let exists = s.contains(id);
        let gr = s.groups.get_mut(g).expect("group");
        if !exists {
            gr.ack(id);
            deleted.push(id);
            continue;
        }
        gr.assign(id, consumer, now, if justid { dcount } else { dcount + 1 });
        let (c, _) = gr.consumer_mut(consumer, now);
        c.seen_time = now;
        c.active_time = Some(now);
        let fields = if justid {
            None
        } else {
            s.get(id).map(|e| {
                e.fields
                    .iter()
                    .map(|(a, b)| (a.to_vec(), b.to_vec()))
                    .collect()
            })
        };
        claimed.push((id, fields));
        count -= 1;
    }
    if let Some((id, _, _)) = it.peek() {
        next = *id;
    }
    // The consumer exists even when nothing was claimed.
    if let Some(gr) = s.groups.get_mut(g) {
        let (c, _) = gr.consumer_mut(consumer, now);
        c.seen_time = now;
    }
    let ids: Vec<StreamId> = claimed.iter().map(|(id, _)| *id).collect();
    propagate_group_read(ctx, s, (key, g, consumer), &ids, false, !existed);
    for id in &deleted {
        ctx.propagate_after(vec![
            b"XACK".to_vec(),
            key.to_vec(),
            g.to_vec(),
            id.to_bytes(),
        ]);
    }
    drop(shard);
    let mut r = ctx.reply();
    r.array(3);
    id_bulk(&mut r, next);
    r.array(claimed.len());
    for (id, f) in claimed {
        match f {
            None => id_bulk(&mut r, id),
            Some(f) => {
                r.array(2);
                id_bulk(&mut r, id);
                r.array(f.len() * 2);
                for (a, b) in &f {
                    r.bulk(a);
                    r.bulk(b);
                }
            }
        }
    }
    r.array(deleted.len());
    for id in deleted {
        id_bulk(&mut r, id);
    }
    Ok(())
}
