//! CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO: argument parsing and replies
//! (the tables and invalidation are in crate::tracking; the command table entries in connection.rs).

use super::argv::Argv;
use super::{err, parse, CmdResult, Ctx};
use ferrodis_protocol::Args;
use std::sync::atomic::Ordering::Relaxed;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn client_tracking(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut redirect, mut bcast, mut optin, mut optout, mut noloop) =
        (0u64, false, false, false, false);
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut a = Argv::at(args, 2);
    let on = a.next()?;
    // The options are all read before ON|OFF is looked at, as Redis does.
    while let Some(w) = a.opt() {
        let more = !a.is_done();
        if parse::eq(w, "redirect") && more {
            if redirect != 0 {
                return Err("ERR A client can only redirect to a single other client".into());
            }
            let id = a.int()?;
            if id <= 0 || !ctx.srv.clients.lock().contains_key(&(id as u64)) {
                return Err("ERR The client ID you want redirect to does not exist".into());
            }
            redirect = id as u64;
        } else if parse::eq(w, "bcast") {
            bcast = true;
        } else if parse::eq(w, "optin") {
            optin = true;
        } else if parse::eq(w, "optout") {
            optout = true;
        } else if parse::eq(w, "noloop") {
            noloop = true;
        } else if parse::eq(w, "prefix") && more {
            prefixes.push(a.next()?);
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    if parse::eq(on, "off") {
        crate::tracking::disable(ctx.srv, ctx.client);
        ctx.reply().ok();
        return Ok(());
    }
    if !parse::eq(on, "on") {
        return Err(err::SYNTAX.into());
    }
    let mode = crate::tracking::Mode {
        redirect,
        bcast,
        optin,
        optout,
        noloop,
    };
    crate::tracking::enable(ctx.srv, ctx.client, mode, prefixes)?;
    ctx.reply().ok();
    Ok(())
}

/// CLIENT CACHING YES|NO
pub fn client_caching(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let Some(t) = ctx.client.tracking.as_ref() else {
        return Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled".into());
    };
    let a = Argv::at(args, 2).next()?;
    if parse::eq(a, "yes") {
        if !t.target.optin {
            return Err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
                    .into(),
            );
        }
    } else if parse::eq(a, "no") {
        if !t.target.optout {
            return Err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
                    .into(),
            );
        }
    } else {
        return Err(err::SYNTAX.into());
    }
    t.caching.store(true, Relaxed);
    ctx.reply().ok();
    Ok(())
}

/// CLIENT GETREDIR
pub fn client_getredir(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let v = ctx
        .client
        .tracking
        .as_ref()
        .map_or(-1, |t| t.target.redirect as i64);
    ctx.reply().int(v);
    Ok(())
}

/// CLIENT TRACKINGINFO
pub fn client_trackinginfo(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let mut flags: Vec<&str> = Vec::new();
    let (redirect, prefixes) = match ctx.client.tracking.as_ref() {
        None => {
            flags.push("off");
            (-1, Vec::new())
        }
        Some(t) => {
            let g = &t.target;
            flags.push("on");
            if g.bcast {
                flags.push("bcast");
            }
            if g.optin {
                flags.push("optin");
            }
            if g.optout {
                flags.push("optout");
            }
            if t.caching.load(Relaxed) {
                flags.push(if g.optin { "caching-yes" } else { "caching-no" });
            }
            if g.noloop {
                flags.push("noloop");
            }
            if g.broken.load(Relaxed) {
                flags.push("broken_redirect");
            }
            (g.redirect as i64, g.prefixes.clone())
        }
    };
    let mut r = ctx.reply();
    r.map(3);
    r.bulk(b"flags");
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(redirect);
    r.bulk(b"prefixes");
    r.array(prefixes.len());
    for p in &prefixes {
        r.bulk(p);
    }
    Ok(())
}
