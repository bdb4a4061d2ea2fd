//! String commands: GET, SET and friends.

use super::{err, flags::*, parse, Command, CmdResult, Ctx, KeySpec};
use crate::cmd::acl;
use crate::keyspace::entry::Entry;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: 2,
        flags: READONLY | FAST,
        acl: acl::STRING,
        keys: KeySpec::ONE,
        handler: get,
        group: "string",
        since: "1.0.0",
        summary: "Returns the string value of a key.",
        complexity: "O(1)",
        syntax: "key",
        ..Command::DEFAULT
    },
    Command {
        name: "set",
        arity: -3,
        flags: WRITE | DENYOOM,
        acl: acl::STRING,
        keys: KeySpec::ONE,
        handler: set,
        group: "string",
        since: "1.0.0",
        summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        complexity: "O(1)",
        syntax: "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
        ..Command::DEFAULT
    },
];

fn get(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let mut shard = ctx.srv.keyspace.lock_key(key);
    match ctx.lookup(&mut shard, key) {
        None => ctx.reply().null(),
        Some(e) => match e.as_str() {
            Some(s) => ctx.reply().bulk(s),
            None => return Err(err::WRONGTYPE.into()),
        },
    }
    Ok(())
}

/// Expiry options shared by SET and GETEX.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TtlOpt {
    None,
    KeepTtl,
    /// Absolute unix ms.
    At(u64),
    Persist,
}

/// Parse "EX n" / "PX n" / "EXAT n" / "PXAT n" at `args[i]`; returns the absolute expiry in ms.
/// Errors as Redis: non-integer or <= 0 -> "invalid expire time in 'set' command"; overflow likewise.
pub fn parse_expire(
    ctx: &Ctx<'_>,
    unit: &[u8],
    val: &[u8],
    cmd: &str,
) -> Result<u64, super::CmdError> {
    let n = parse::int(val)?;
    let invalid = || -> super::CmdError { format!("ERR invalid expire time in '{cmd}' command").into() };
    if n <= 0 {
        return Err(invalid());
    }
    let (ms, relative) = if parse::eq(unit, "ex") {
        (n.checked_mul(1000).ok_or_else(invalid)?, true)
    } else if parse::eq(unit, "px") {
        (n, true)
    } else if parse::eq(unit, "exat") {
        (n.checked_mul(1000).ok_or_else(invalid)?, false)
    } else {
        (n, false)
    };
    let abs = if relative {
        ms.checked_add(ctx.now_ms as i64).ok_or_else(invalid)?
    } else {
        ms
    };
    Ok(abs as u64)
}

fn set(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let key = args.get(1);
    let val = args.get(2);
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut ttl = TtlOpt::None;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i);
        let next = args.try_get(i + 1);
        if parse::eq(a, "nx") && !xx {
            nx = true;
        } else if parse::eq(a, "xx") && !nx {
            xx = true;
        } else if parse::eq(a, "get") {
            get = true;
        } else if parse::eq(a, "keepttl") && ttl == TtlOpt::None {
            ttl = TtlOpt::KeepTtl;
        } else if (parse::eq(a, "ex") || parse::eq(a, "px") || parse::eq(a, "exat") || parse::eq(a, "pxat"))
            && ttl == TtlOpt::None
            && next.is_some()
        {
            ttl = TtlOpt::At(parse_expire(ctx, a, next.unwrap(), "set")?);
            i += 1;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    let lru = ctx.lru_clock();
    let mut shard = ctx.srv.keyspace.lock_key(key);
    let existing = ctx.lookup_write(&mut shard, key);
    let mut old: Option<Option<Vec<u8>>> = None;
    if get {
        old = Some(match &existing {
            None => None,
            Some(e) => match e.as_str() {
                Some(s) => Some(s.to_vec()),
                None => return Err(err::WRONGTYPE.into()),
            },
        });
    }
    let exists = existing.is_some();
    if (nx && exists) || (xx && !exists) {
        match old {
            Some(o) => reply_opt_bulk(ctx, o.as_deref()),
            None => ctx.reply().null(),
        }
        return Ok(());
    }
    let table = shard.db_mut(ctx.client.db);
    match table.find_mut(key) {
        Some(e) => {
            let had = e.expire_at().is_some();
            e.set_str(val);
            match ttl {
                TtlOpt::KeepTtl => {}
                TtlOpt::At(t) => e.set_expire_at(Some(t)),
                _ => e.set_expire_at(None),
            }
            let has = e.expire_at().is_some();
            table.note_ttl_change(had, has);
        }
        None => {
            let mut e = Entry::new_str(key, val, lru);
            if let TtlOpt::At(t) = ttl {
                e.set_expire_at(Some(t));
            }
            table.insert_new(e);
        }
    }
    drop(shard);
    ctx.modified(key, "set");
    match old {
        Some(o) => reply_opt_bulk(ctx, o.as_deref()),
        None => ctx.reply().ok(),
    }
    Ok(())
}

fn reply_opt_bulk(ctx: &mut Ctx<'_>, v: Option<&[u8]>) {
    match v {
        Some(s) => ctx.reply().bulk(s),
        None => ctx.reply().null(),
    }
}
