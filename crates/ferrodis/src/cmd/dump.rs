//! Serialization commands: DUMP and RESTORE (RDB payloads, interchangeable with Redis's).

use super::argv::Argv;
use super::spec::{self, ACCESS, OW, RO, UPDATE};
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::cmd::acl;
use crate::keyspace::entry::lru_clock;
use crate::persist::rdb;
use crate::types::Value;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "dump",
        arity: 2,
        flags: READONLY,
        acl: acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: dump,
        group: "generic",
        since: "2.6.0",
        summary: "Returns a serialized representation of the value stored at a key.",
        complexity: "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).",
        syntax: "key",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "restore",
        arity: -4,
        flags: WRITE | DENYOOM,
        acl: acl::DANGEROUS | acl::KEYSPACE,
        keys: &[spec::index(1).range(0, 1, 0).flags(OW | UPDATE)],
        handler: restore,
        group: "generic",
        since: "2.6.0",
        summary: "Creates a key from the serialized representation of a value.",
        complexity: "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).",
        syntax: "key ttl:integer serialized-value [REPLACE@3.0.0] [ABSTTL@5.0.0] [IDLETIME seconds:integer@5.0.0] [FREQ frequency:integer@5.0.0]",
        history: &[
            ("3.0.0", "Added the `REPLACE` modifier."),
            ("5.0.0", "Added the `ABSTTL` modifier."),
            ("5.0.0", "Added the `IDLETIME` and `FREQ` options."),
        ],
        ..Command::DEFAULT
    },
];

fn dump(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let compress = ctx.srv.config.read().persist.rdbcompression;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let payload = ctx
        .lookup(&mut shard, key)
        .map(|e| rdb::dump_payload(e.value(), compress));
    drop(shard);
    match payload {
        Some(p) => ctx.reply().bulk(&p),
        None => ctx.reply().null(),
    }
    Ok(())
}

/// Options after the payload.
#[derive(Default, Debug, PartialEq, Eq)]
struct RestoreOpts {
    replace: bool,
    absttl: bool,
    idle: Option<i64>,
    freq: Option<i64>,
}

/// Parses the options after the payload (`a` placed on them): REPLACE, ABSTTL, IDLETIME seconds, FREQ
/// frequency, in any order and repeated at will, except that IDLETIME and FREQ exclude each other (a syntax
/// error, as in Redis).
fn parse_opts(a: &mut Argv<'_>) -> Result<RestoreOpts, CmdError> {
    let mut o = RestoreOpts::default();
    while let Some(word) = a.opt() {
        let more = !a.is_done();
        if parse::eq(word, "replace") {
            o.replace = true;
        } else if parse::eq(word, "absttl") {
            o.absttl = true;
        } else if parse::eq(word, "idletime") && more && o.freq.is_none() {
            let v = a.int()?;
            if v < 0 {
                return Err("ERR Invalid IDLETIME value, must be >= 0".into());
            }
            o.idle = Some(v);
        } else if parse::eq(word, "freq") && more && o.idle.is_none() {
            let v = a.int()?;
            if !(0..=255).contains(&v) {
                return Err("ERR Invalid FREQ value, must be >= 0 and <= 255".into());
            }
            o.freq = Some(v);
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    Ok(o)
}

fn restore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let ttl_arg = a.next()?;
    let payload = a.next()?;
    let o = parse_opts(&mut a)?;
    let db = ctx.client.db;
    let srv = ctx.srv;
    {
        // BUSYKEY comes before the TTL and payload checks, as in Redis.
        let mut shard = srv.keyspace.lock_key(key);
        if !o.replace && ctx.lookup_write(&mut shard, key).is_some() {
            return Err("BUSYKEY Target key name already exists.".into());
        }
    }
    let ttl = parse::int(ttl_arg)?;
    if ttl < 0 {
        return Err("ERR Invalid TTL value, must be >= 0".into());
    }
    let lim = srv.encoding.get();
    let value = rdb::parse_payload(payload, &lim)?;
    let expire_at = match ttl {
        0 => None,
        t if o.absttl => Some(t as u64),
        t => Some(ctx.now_ms.saturating_add(t as u64)),
    };
    // IDLETIME sets the access time unless the policy is LFU (FREQ would then set the LFU counter, which
    // we do not keep).
    let lfu = srv.config.read().maxmemory_policy.ends_with("-lfu");
    let clock = lru_clock(ctx.now_ms);
    let lru = match o.idle {
        Some(idle) if !lfu => clock.wrapping_sub(idle.min(1 << 29) as u32),
        _ => clock,
    };
    let field_ttls = matches!(&value, Value::Hash(h) if h.has_field_ttls());
    let mut shard = srv.keyspace.lock_key(key);
    if !o.replace && ctx.lookup_write(&mut shard, key).is_some() {
        return Err("BUSYKEY Target key name already exists.".into());
    }
    let deleted = o.replace && shard.db_mut(db).remove(key).is_some();
    if expire_at.is_some_and(|at| at <= ctx.now_ms) {
        // Already expired: the key is not created (an old one REPLACE removed stays deleted).
        if deleted {
            ctx.modified(&mut shard, key, "del");
            ctx.propagate_as(vec![vec![b"DEL".to_vec(), key.to_vec()]]);
        }
        drop(shard);
        ctx.reply().ok();
        return Ok(());
    }
    let mut e = rdb::make_entry(key, value, lru);
    e.set_lru(lru);
    e.set_expire_at(expire_at);
    shard.db_mut(db).insert_new(e);
    if field_ttls {
        shard.note_field_ttls(db, key);
    }
    ctx.modified(&mut shard, key, "restore");
    drop(shard);
    if let (Some(at), false) = (expire_at, o.absttl) {
        // Propagate the TTL as an absolute time.
        let mut argv: Vec<Vec<u8>> = Vec::with_capacity(args.len() + 1);
        argv.extend(args.window(0, 2).iter().map(|a| a.to_vec()));
        argv.push(at.to_string().into_bytes());
        argv.extend(args.skip(3).iter().map(|a| a.to_vec()));
        argv.push(b"ABSTTL".to_vec());
        ctx.propagate_as(vec![argv]);
    }
    ctx.reply().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(a: &[&str]) -> Result<RestoreOpts, String> {
        let mut all = vec!["restore", "k", "0", "payload"];
        all.extend_from_slice(a);
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for x in &all {
            spans.push((buf.len(), buf.len() + x.len()));
            buf.extend_from_slice(x.as_bytes());
        }
        let args = Args::from_parts(&buf, &spans);
        parse_opts(&mut Argv::at(args, 4)).map_err(|e| e.msg().to_string())
    }

    #[test]
    fn restore_options() {
        assert_eq!(opts(&[]).unwrap(), RestoreOpts::default());
        let o = opts(&["REPLACE", "absttl", "IDLETIME", "5"]).unwrap();
        assert!(o.replace && o.absttl && o.idle == Some(5));
        assert_eq!(
            opts(&["FREQ", "300"]).unwrap_err(),
            "ERR Invalid FREQ value, must be >= 0 and <= 255"
        );
        assert_eq!(
            opts(&["IDLETIME", "-1"]).unwrap_err(),
            "ERR Invalid IDLETIME value, must be >= 0"
        );
        assert_eq!(
            opts(&["IDLETIME", "1", "FREQ", "2"]).unwrap_err(),
            "ERR syntax error"
        );
        assert_eq!(opts(&["IDLETIME"]).unwrap_err(), "ERR syntax error");
        assert_eq!(opts(&["bogus"]).unwrap_err(), "ERR syntax error");
        assert_eq!(
            opts(&["FREQ", "x"]).unwrap_err(),
            "ERR value is not an integer or out of range"
        );
    }
}
