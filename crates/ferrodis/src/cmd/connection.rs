//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, CLIENT, QUIT, RESET.

use super::argv::Argv;
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::client::{ClientInfo, ReplyMode};
use crate::cmd::acl;
use ferrodis_protocol::{num, Args};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "ping",
        arity: -1,
        flags: FAST,
        acl: acl::CONNECTION,
        handler: ping,
        group: "connection",
        since: "1.0.0",
        summary: "Returns the server's liveliness response.",
        complexity: "O(1)",
        syntax: "[message]",
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "echo",
        arity: 2,
        flags: LOADING | STALE | FAST,
        acl: acl::CONNECTION,
        handler: echo,
        group: "connection",
        since: "1.0.0",
        summary: "Returns the given string.",
        complexity: "O(1)",
        syntax: "message",
        ..Command::DEFAULT
    },
    Command {
        name: "quit",
        arity: -1,
        flags: NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        acl: acl::CONNECTION,
        handler: quit,
        group: "connection",
        since: "1.0.0",
        summary: "Closes the connection.",
        complexity: "O(1)",
        deprecated_since: "7.2.0",
        replaced_by: "just closing the connection",
        ..Command::DEFAULT
    },
    Command {
        name: "reset",
        arity: 1,
        flags: NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        acl: acl::CONNECTION,
        handler: reset,
        group: "connection",
        since: "6.2.0",
        summary: "Resets the connection.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "select",
        arity: 2,
        flags: LOADING | STALE | FAST,
        acl: acl::CONNECTION,
        handler: select,
        group: "connection",
        since: "1.0.0",
        summary: "Changes the selected database.",
        complexity: "O(1)",
        syntax: "index:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "hello",
        arity: -1,
        flags: NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        acl: acl::CONNECTION,
        handler: hello,
        group: "connection",
        since: "6.0.0",
        summary: "Handshakes with the Redis server.",
        complexity: "O(1)",
        syntax: "arguments:[protover:integer [AUTH <username password>] [SETNAME clientname]]",
        history: &[
            ("6.2.0", "`protover` made optional; when called without arguments the command reports the current connection's context."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "auth",
        arity: -2,
        flags: NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        acl: acl::CONNECTION,
        handler: auth,
        group: "connection",
        since: "1.0.0",
        summary: "Authenticates the connection.",
        complexity: "O(N) where N is the number of passwords defined for the user",
        syntax: "[username@6.0.0] password",
        history: &[
            ("6.0.0", "Added ACL style (username and password)."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "client",
        arity: -2,
        subcommands: CLIENT_SUBCOMMANDS,
        group: "connection",
        since: "2.4.0",
        summary: "A container for client connection commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
];

static CLIENT_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "id",
        arity: 2,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_id,
        group: "connection",
        since: "5.0.0",
        summary: "Returns the unique client ID of the connection.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "setname",
        arity: 3,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_setname,
        group: "connection",
        since: "2.6.9",
        summary: "Sets the connection name.",
        complexity: "O(1)",
        syntax: "connection-name",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "getname",
        arity: 2,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_getname,
        group: "connection",
        since: "2.6.9",
        summary: "Returns the name of the connection.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "list",
        arity: -2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_list,
        group: "connection",
        since: "2.4.0",
        summary: "Lists open connections.",
        complexity: "O(N) where N is the number of client connections",
        syntax: "[TYPE client-type:<NORMAL | MASTER | REPLICA | PUBSUB>@5.0.0] [ID client-id:integer@6.2.0 ...]",
        history: &[
            ("2.8.12", "Added unique client `id` field."),
            ("5.0.0", "Added optional `TYPE` filter."),
            ("6.0.0", "Added `user` field."),
            ("6.2.0", "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter."),
            ("7.0.0", "Added `resp`, `multi-mem`, `rbs` and `rbp` fields."),
            ("7.0.3", "Added `ssub` field."),
        ],
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "info",
        arity: 2,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_info,
        group: "connection",
        since: "6.2.0",
        summary: "Returns information about the connection.",
        complexity: "O(1)",
        tips: &["nondeterministic_output"],
        ..Command::DEFAULT
    },
    Command {
        name: "kill",
        arity: -3,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_kill,
        group: "connection",
        since: "2.4.0",
        summary: "Terminates open connections.",
        complexity: "O(N) where N is the number of client connections",
        syntax: "filter:<old-format/ip:port!2.8.12 | new-format:<[ID client-id:integer@2.8.12] | [TYPE client-type:<NORMAL | MASTER@3.2.0 | SLAVE | REPLICA@5.0.0 | PUBSUB>@2.8.12] | [USER username] | [ADDR addr/ip:port] | [LADDR laddr/ip:port@6.2.0] | [SKIPME <YES | NO>]> ...>",
        history: &[
            ("2.8.12", "Added new filter format."),
            ("2.8.12", "`ID` option."),
            ("3.2.0", "Added `master` type in for `TYPE` option."),
            ("5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward compatibility."),
            ("6.2.0", "`LADDR` option."),
        ],
        ..Command::DEFAULT
    },
    Command {
        name: "setinfo",
        arity: 4,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_setinfo,
        group: "connection",
        since: "7.2.0",
        summary: "Sets information specific to the client or connection.",
        complexity: "O(1)",
        syntax: "attr:<LIB-NAME libname | LIB-VER libver>",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..Command::DEFAULT
    },
    Command {
        name: "reply",
        arity: 3,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_reply,
        group: "connection",
        since: "3.2.0",
        summary: "Instructs the server whether to reply to commands.",
        complexity: "O(1)",
        syntax: "action:<ON | OFF | SKIP>",
        ..Command::DEFAULT
    },
    Command {
        name: "no-evict",
        arity: 3,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_no_evict,
        group: "connection",
        since: "7.0.0",
        summary: "Sets the client eviction mode of the connection.",
        complexity: "O(1)",
        syntax: "enabled:<ON | OFF>",
        ..Command::DEFAULT
    },
    Command {
        name: "unblock",
        arity: -3,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_unblock,
        group: "connection",
        since: "5.0.0",
        summary: "Unblocks a client blocked by a blocking command from a different connection.",
        complexity: "O(log N) where N is the number of client connections",
        syntax: "client-id:integer unblock-type:[TIMEOUT | ERROR]",
        ..Command::DEFAULT
    },
    Command {
        name: "no-touch",
        arity: 3,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_no_touch,
        group: "connection",
        since: "7.2.0",
        summary: "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
        complexity: "O(1)",
        syntax: "enabled:<ON | OFF>",
        ..Command::DEFAULT
    },
    Command {
        name: "tracking",
        arity: -3,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: super::tracking::client_tracking,
        group: "connection",
        since: "6.0.0",
        summary: "Controls server-assisted client-side caching for the connection.",
        complexity: "O(1). Some options may introduce additional complexity.",
        syntax: "status:<ON | OFF> [REDIRECT client-id:integer] [PREFIX prefix ...+] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
        ..Command::DEFAULT
    },
    Command {
        name: "caching",
        arity: 3,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: super::tracking::client_caching,
        group: "connection",
        since: "6.0.0",
        summary: "Instructs the server whether to track the keys in the next request.",
        complexity: "O(1)",
        syntax: "mode:<YES | NO>",
        ..Command::DEFAULT
    },
    Command {
        name: "getredir",
        arity: 2,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: super::tracking::client_getredir,
        group: "connection",
        since: "6.0.0",
        summary: "Returns the client ID to which the connection's tracking notifications are redirected.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "trackinginfo",
        arity: 2,
        flags: NOSCRIPT | LOADING | STALE,
        acl: acl::CONNECTION,
        handler: super::tracking::client_trackinginfo,
        group: "connection",
        since: "6.2.0",
        summary: "Returns information about server-assisted client-side caching for the connection.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: acl::CONNECTION,
        handler: client_help,
        group: "connection",
        since: "5.0.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
];

fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let msg = a.opt();
    if !a.is_done() {
        return Err("ERR wrong number of arguments for 'ping' command".into());
    }
    if !ctx.client.resp3 && ctx.client.subscribed() {
        // RESP2 subscribed mode: ["pong", message-or-""].
        let mut r = ctx.reply();
        r.array(2);
        r.bulk(b"pong");
        r.bulk(msg.unwrap_or(b""));
        return Ok(());
    }
    match msg {
        None => ctx.reply().simple("PONG"),
        Some(m) => ctx.reply().bulk(m),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let msg = Argv::new(args).next()?;
    ctx.reply().bulk(msg);
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.reply().ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

fn set_db(ctx: &mut Ctx<'_>, db: usize) {
    ctx.client.db = db;
    ctx.client.info.db.store(db as u64, Relaxed);
}

fn set_resp(ctx: &mut Ctx<'_>, resp3: bool) {
    ctx.client.resp3 = resp3;
    ctx.client
        .info
        .resp
        .store(if resp3 { 3 } else { 2 }, Relaxed);
}

fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    crate::cmd::pubsub::unsubscribe_all(ctx);
    ctx.client.multi = None;
    crate::cmd::transactions::unwatch(ctx.srv, ctx.client);
    crate::tracking::disable(ctx.srv, ctx.client);
    set_db(ctx, 0);
    set_resp(ctx, false);
    ctx.client.reply_mode = ReplyMode::On;
    ctx.client.no_evict = false;
    ctx.client.no_touch = false;
    ctx.client.info.no_evict.store(false, Relaxed);
    ctx.client.info.no_touch.store(false, Relaxed);
    *ctx.client.info.name.lock() = None;
    ctx.client.authenticated = ctx.srv.config.read().requirepass.is_none();
    ctx.reply().simple("RESET");
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let id = Argv::new(args).int()?;
    if id < i32::MIN as i64 || id > i32::MAX as i64 {
        return Err(
            "ERR value is out of range, value must between -2147483648 and 2147483647".into(),
        );
    }
    if id < 0 || id as usize >= ctx.srv.keyspace.databases() {
        return Err(err::DB_INDEX.into());
    }
    set_db(ctx, id as usize);
    ctx.reply().ok();
    Ok(())
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Check credentials against the only user there is, "default" (password = requirepass, or any password
/// when none is set, as Redis's `nopass` default user).
fn authenticate(ctx: &mut Ctx<'_>, user: &[u8], pass: &[u8]) -> CmdResult {
    if user != b"default" {
        return Err(WRONGPASS.into());
    }
    let ok = match &ctx.srv.config.read().requirepass {
        None => true,
        Some(p) => constant_time_eq(p, pass),
    };
    if !ok {
        return Err(WRONGPASS.into());
    }
    ctx.client.authenticated = true;
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn auth(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // AUTH password | AUTH username password
    let mut a = Argv::new(args);
    let first = a.next()?;
    let second = a.opt();
    a.finish()?;
    match second {
        None => {
            if ctx.srv.config.read().requirepass.is_none() {
                return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
            }
            authenticate(ctx, b"default", first)?;
        }
        Some(pass) => authenticate(ctx, first, pass)?,
    }
    ctx.reply().ok();
    Ok(())
}

/// Redis's rule for client names and library attributes: printable ASCII without spaces.
fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// Redis's validateClientName.
fn check_name(name: &[u8]) -> CmdResult {
    if !valid_attr(name) {
        return Err(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        );
    }
    Ok(())
}

fn set_name(ctx: &mut Ctx<'_>, name: &[u8]) -> CmdResult {
    check_name(name)?;
    *ctx.client.info.name.lock() = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

fn hello(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // HELLO [protover [AUTH username password] [SETNAME clientname]]
    let mut a = Argv::new(args);
    let mut ver = None;
    if let Some(v) = a.opt() {
        let v = num::parse_i64(v).ok_or_else(|| {
            CmdError::from("ERR Protocol version is not an integer or out of range")
        })?;
        if !(2..=3).contains(&v) {
            return Err("NOPROTO unsupported protocol version".into());
        }
        ver = Some(v);
    }
    let mut creds = None;
    let mut name = None;
    while let Some(opt) = a.opt() {
        if parse::eq(opt, "auth") && a.remaining() >= 2 {
            creds = Some((a.next()?, a.next()?));
        } else if parse::eq(opt, "setname") && !a.is_done() {
            // The name is checked as it is read (before any AUTH), as Redis does.
            let n = a.next()?;
            check_name(n)?;
            name = Some(n);
        } else {
            return Err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            )
            .into());
        }
    }
    if let Some((user, pass)) = creds {
        authenticate(ctx, user, pass)?;
    }
    if !ctx.client.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(n) = name {
        set_name(ctx, n)?;
    }
    if let Some(v) = ver {
        set_resp(ctx, v == 3);
    }
    let proto = if ctx.client.resp3 { 3 } else { 2 };
    let id = ctx.client.id as i64;
    let mut r = ctx.reply();
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(crate::info::REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(proto);
    r.bulk(b"id");
    r.int(id);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
    Ok(())
}

// ------------------------------------------------------------------------------------------------------
// CLIENT
// ------------------------------------------------------------------------------------------------------

fn client_id(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let id = ctx.client.id as i64;
    ctx.reply().int(id);
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_name(ctx, Argv::at(args, 2).next()?)?;
    ctx.reply().ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let name = ctx.client.info.name.lock().clone();
    match name {
        Some(n) => ctx.reply().bulk(&n),
        None => ctx.reply().null(),
    }
    Ok(())
}

/// The CLIENT LIST line of a client; `current` names the running command for the calling client.
fn describe(ctx: &Ctx<'_>, c: &ClientInfo, current: &str) -> String {
    let reg = super::Registry::get();
    let (tflags, redir) = crate::tracking::list_fields(c.id);
    if c.id == ctx.client.id {
        return c.describe(-1, current, (&tflags, redir));
    }
    let last = c.last_cmd.load(Relaxed) as usize;
    let name = if last < reg.len() {
        reg.full_name(last)
    } else {
        "NULL"
    };
    c.describe(-1, name, (&tflags, redir))
}

fn client_info(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let info = ctx.client.info.clone();
    let mut s = describe(ctx, &info, "client|info");
    s.push('\n');
    ctx.reply().verbatim("txt", s.as_bytes());
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Master,
    Replica,
    Pubsub,
}

fn client_type(name: &[u8]) -> Result<ClientType, CmdError> {
    let l = name.to_ascii_lowercase();
    Ok(match &l[..] {
        b"normal" => ClientType::Normal,
        b"master" => ClientType::Master,
        b"replica" | b"slave" => ClientType::Replica,
        b"pubsub" => ClientType::Pubsub,
        _ => {
            return Err(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(name)
            )
            .into())
        }
    })
}

/// The type of a connection: a client with any subscription is a pubsub client (as Redis's
/// CLIENT_PUBSUB flag), every other one is normal until replication exists.
fn type_of(c: &ClientInfo) -> ClientType {
    if c.subs.iter().any(|s| s.load(Relaxed) > 0) {
        ClientType::Pubsub
    } else {
        ClientType::Normal
    }
}

fn snapshot(ctx: &Ctx<'_>) -> Vec<Arc<ClientInfo>> {
    ctx.srv.clients.lock().values().cloned().collect()
}

fn client_list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // CLIENT LIST [TYPE type | ID id [id ...]]
    let mut want_type = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut a = Argv::at(args, 2);
    match a.opt() {
        None => {}
        Some(w) if parse::eq(w, "type") && a.remaining() == 1 => {
            want_type = Some(client_type(a.next()?)?);
        }
        Some(w) if parse::eq(w, "id") && !a.is_done() => {
            let mut v = Vec::new();
            for id in a.rest() {
                // Any integer is an ID; one no client has (0, negative) just matches nothing.
                match num::parse_i64(id) {
                    Some(n) if n > 0 => v.push(n as u64),
                    Some(_) => {}
                    None => return Err("ERR Invalid client ID".into()),
                }
            }
            ids = Some(v);
        }
        Some(_) => return Err(err::SYNTAX.into()),
    }
    let all = snapshot(ctx);
    let mut out = String::new();
    let emit = |c: &ClientInfo, out: &mut String| {
        out.push_str(&describe(ctx, c, "client|list"));
        out.push('\n');
    };
    match ids {
        Some(ids) => {
            for id in ids {
                if let Some(c) = all.iter().find(|c| c.id == id) {
                    emit(c, &mut out);
                }
            }
        }
        None => {
            for c in &all {
                if want_type.is_none_or(|t| t == type_of(c)) {
                    emit(c, &mut out);
                }
            }
        }
    }
    ctx.reply().verbatim("txt", out.as_bytes());
    Ok(())
}

#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    typ: Option<ClientType>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo) -> bool {
        self.id.is_none_or(|id| c.id == id)
            && self.typ.is_none_or(|t| t == type_of(c))
            && self.addr.as_deref().is_none_or(|a| a == c.addr.as_bytes())
            && self
                .laddr
                .as_deref()
                .is_none_or(|a| a == c.laddr.as_bytes())
    }
}

fn client_kill(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // CLIENT KILL addr (the old form) | CLIENT KILL option value [option value ...]
    let mut a = Argv::at(args, 2);
    let old_form = a.remaining() == 1;
    let mut f = KillFilter {
        skipme: !old_form,
        ..KillFilter::default()
    };
    if old_form {
        f.addr = Some(a.next()?.to_vec());
    } else {
        while let Some(opt) = a.opt() {
            // Every option takes a value (an unknown option is a syntax error all the same).
            let val = a.next()?;
            if parse::eq(opt, "id") {
                match num::parse_i64(val) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                }
            } else if parse::eq(opt, "type") {
                f.typ = Some(client_type(val)?);
            } else if parse::eq(opt, "addr") {
                f.addr = Some(val.to_vec());
            } else if parse::eq(opt, "laddr") {
                f.laddr = Some(val.to_vec());
            } else if parse::eq(opt, "user") {
                if val != b"default" {
                    return Err(
                        format!("ERR No such user '{}'", String::from_utf8_lossy(val)).into(),
                    );
                }
            } else if parse::eq(opt, "skipme") {
                if parse::eq(val, "yes") {
                    f.skipme = true;
                } else if parse::eq(val, "no") {
                    f.skipme = false;
                } else {
                    return Err(err::SYNTAX.into());
                }
            } else {
                return Err(err::SYNTAX.into());
            }
        }
    }
    let mut killed = 0i64;
    for c in snapshot(ctx) {
        if !f.matches(&c) {
            continue;
        }
        if c.id == ctx.client.id {
            if f.skipme {
                continue;
            }
            ctx.client.close_after_reply = true;
        } else {
            c.request_kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err("ERR No such client".into());
        }
        ctx.reply().ok();
    } else {
        ctx.reply().int(killed);
    }
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::at(args, 2);
    let (attr, val) = (a.next()?, a.next()?);
    let (slot, what) = if parse::eq(attr, "lib-name") {
        (&ctx.client.info.lib_name, "lib-name")
    } else if parse::eq(attr, "lib-ver") {
        (&ctx.client.info.lib_ver, "lib-ver")
    } else {
        return Err(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )
        .into());
    };
    if !valid_attr(val) {
        return Err(
            format!("ERR {what} cannot contain spaces, newlines or special characters.").into(),
        );
    }
    *slot.lock() = String::from_utf8_lossy(val).into_owned();
    ctx.reply().ok();
    Ok(())
}

fn client_reply(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let a = Argv::at(args, 2).next()?;
    if parse::eq(a, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply().ok();
    } else if parse::eq(a, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if parse::eq(a, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(err::SYNTAX.into());
    }
    Ok(())
}

fn on_off(a: &[u8]) -> Result<bool, CmdError> {
    if parse::eq(a, "on") {
        Ok(true)
    } else if parse::eq(a, "off") {
        Ok(false)
    } else {
        Err(err::SYNTAX.into())
    }
}

fn client_no_evict(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = on_off(Argv::at(args, 2).next()?)?;
    ctx.client.no_evict = on;
    ctx.client.info.no_evict.store(on, Relaxed);
    ctx.reply().ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = on_off(Argv::at(args, 2).next()?)?;
    ctx.client.no_touch = on;
    ctx.client.info.no_touch.store(on, Relaxed);
    ctx.reply().ok();
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: end another client's blocking command as if it timed out, or with an
/// UNBLOCKED error. 1 if that client was blocked, else 0.
fn client_unblock(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let sub = a.next()?;
    let id_arg = a.next()?;
    let reason = a.opt();
    if !a.is_done() {
        // Redis knows no CLIENT UNBLOCK of more than 4 arguments.
        return Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        )
        .into());
    }
    // The reason is checked before the ID, as Redis does.
    let error = match reason {
        None => false,
        Some(r) if parse::eq(r, "timeout") => false,
        Some(r) if parse::eq(r, "error") => true,
        Some(_) => return Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into()),
    };
    let id = parse::int(id_arg)?;
    let target = ctx.srv.clients.lock().get(&(id as u64)).cloned();
    let waiter = target.and_then(|c| c.waiter.lock().clone());
    let done = match waiter {
        Some(w) if error => w.unblock_with_error(),
        Some(w) => {
            let cancelled = w.cancel();
            if cancelled {
                w.wake();
            }
            cancelled
        }
        None => false,
    };
    ctx.reply().int(i64::from(done));
    Ok(())
}

/// Write a HELP reply: the header line, the given lines, and the trailing HELP entry, as status replies.
pub fn help_reply(ctx: &mut Ctx<'_>, cmd: &str, lines: &[&str]) {
    let mut r = ctx.reply();
    r.array(lines.len() + 3);
    r.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        r.simple(l);
    }
    r.simple("HELP");
    r.simple("    Print this help.");
}

fn client_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    help_reply(
        ctx,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "    * ID <client-id> [<client-id> ...]",
            "      Return clients with the specified IDs.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}
