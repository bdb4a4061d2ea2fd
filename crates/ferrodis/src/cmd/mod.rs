//! The declarative command table (DESIGN.md §3) and dispatch.
//!
//! Every command is one [`Command`] entry in its family module's `COMMANDS` slice plus one handler. Dispatch,
//! arity and unknown-command errors, key extraction for locking, ACL categories, `COMMAND INFO/DOCS/GETKEYS`
//! all read this table.

pub mod aof;
pub mod blocking;
pub mod connection;
pub mod docs;
pub mod dump;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod persistence;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

use crate::client::Client;
use crate::server::Server;
use ferrodis_protocol::{Args, Reply};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A Redis error reply, message including its code ("ERR ...", "WRONGTYPE ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

impl CmdError {
    pub fn msg(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for CmdError {
    fn from(s: &'static str) -> Self {
        CmdError(Cow::Borrowed(s))
    }
}

impl From<String> for CmdError {
    fn from(s: String) -> Self {
        CmdError(Cow::Owned(s))
    }
}

pub type CmdResult = Result<(), CmdError>;

/// Common error replies, byte for byte as Redis sends them.
pub mod err {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    pub const NOAUTH: &str = "NOAUTH Authentication required.";
    pub const MAX_CLIENTS: &str = "ERR max number of clients reached";
    pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
    pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
}

pub type Handler = fn(&mut Ctx<'_>, Args<'_>) -> CmdResult;

/// Command flags, as COMMAND INFO names them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const MOVABLEKEYS: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    pub const SENTINEL: u32 = 1 << 18;
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;
    /// Refused unless `enable-debug-command` lets the client in (Redis's CMD_PROTECTED, which COMMAND
    /// INFO does not show either). Only DEBUG: Ferrodis has no MODULE command.
    pub const PROTECTED: u32 = 1 << 20;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
    ];
}

/// ACL categories beyond those implied by flags.
pub mod acl {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    pub const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "@keyspace"),
        (READ, "@read"),
        (WRITE, "@write"),
        (SET, "@set"),
        (SORTEDSET, "@sortedset"),
        (LIST, "@list"),
        (HASH, "@hash"),
        (STRING, "@string"),
        (BITMAP, "@bitmap"),
        (HYPERLOGLOG, "@hyperloglog"),
        (GEO, "@geo"),
        (STREAM, "@stream"),
        (PUBSUB, "@pubsub"),
        (ADMIN, "@admin"),
        (FAST, "@fast"),
        (SLOW, "@slow"),
        (BLOCKING, "@blocking"),
        (DANGEROUS, "@dangerous"),
        (CONNECTION, "@connection"),
        (TRANSACTION, "@transaction"),
        (SCRIPTING, "@scripting"),
    ];
}

/// Where a command's keys are (the legacy first/last/step triple of COMMAND INFO; `last` < 0 counts from the
/// end, e.g. -1 = last argument).
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

impl KeySpec {
    pub const NONE: KeySpec = KeySpec {
        first: 0,
        last: 0,
        step: 0,
    };
    pub const ONE: KeySpec = KeySpec {
        first: 1,
        last: 1,
        step: 1,
    };
}

pub struct Command {
    /// Lower-case name ("get"; for a subcommand, the subcommand name: "setname").
    pub name: &'static str,
    /// Redis arity: N = exactly N args (name included), -N = at least N.
    pub arity: i32,
    pub flags: u32,
    /// Explicit ACL categories; flag-implied ones (@write, @read, @fast/@slow, @admin...) are added.
    pub acl: u32,
    pub keys: KeySpec,
    /// For commands whose keys are counted by a `numkeys` argument (SINTERCARD, ZUNIONSTORE, LMPOP, ...): the
    /// index of that argument; the keys follow it. 0 = none. Combined with `keys` (e.g. a STORE destination).
    pub numkeys_arg: usize,
    /// Key finder for commands whose keys no spec describes (SORT ... STORE dst): argument positions.
    pub keys_fn: Option<fn(&Args<'_>) -> Vec<usize>>,
    pub handler: Handler,
    pub subcommands: &'static [Command],
    // Documentation, printed by COMMAND DOCS.
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// Argument syntax in the redis.io style, e.g. "key value [NX | XX] [GET] [EX seconds | PX milliseconds]".
    /// Lower-case words are named arguments, UPPER-case words are tokens. See [`docs`].
    pub syntax: &'static str,
    pub tips: &'static [&'static str],
    /// For deprecated commands (COMMAND DOCS doc_flags "deprecated"): the version and the replacement.
    pub deprecated_since: &'static str,
    pub replaced_by: &'static str,
}

impl Command {
    pub const DEFAULT: Command = Command {
        name: "",
        arity: -1,
        flags: 0,
        acl: 0,
        keys: KeySpec::NONE,
        numkeys_arg: 0,
        keys_fn: None,
        handler: unknown_subcommand_handler,
        subcommands: &[],
        group: "generic",
        since: "1.0.0",
        summary: "",
        complexity: "",
        syntax: "",
        tips: &[],
        deprecated_since: "",
        replaced_by: "",
    };

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// ACL categories: explicit plus those Redis derives from the flags.
    pub fn acl_categories(&self) -> u32 {
        let mut c = self.acl;
        if self.has(flags::WRITE) {
            c |= acl::WRITE;
        }
        if self.has(flags::READONLY) && self.acl & acl::SCRIPTING == 0 {
            c |= acl::READ;
        }
        if self.has(flags::ADMIN) {
            c |= acl::ADMIN | acl::DANGEROUS;
        }
        if self.has(flags::PUBSUB) {
            c |= acl::PUBSUB;
        }
        if self.has(flags::FAST) {
            c |= acl::FAST;
        }
        if self.has(flags::BLOCKING) {
            c |= acl::BLOCKING;
        }
        if c & acl::FAST == 0 {
            c |= acl::SLOW;
        }
        c
    }

    /// Positions of the key arguments of a command line (COMMAND GETKEYS, cluster checks), including keys
    /// counted by a `numkeys` argument. A bad numkeys yields the legacy-spec keys only.
    pub fn key_positions_in(&self, args: &Args<'_>) -> Vec<usize> {
        if let Some(f) = self.keys_fn {
            return f(args);
        }
        let mut pos = self.key_positions(args.len());
        let at = self.numkeys_arg;
        if at > 0 {
            if let Some(n) = args.try_get(at).and_then(ferrodis_protocol::num::parse_i64) {
                if n > 0 && at + (n as usize) < args.len() {
                    pos.extend(at + 1..=at + n as usize);
                }
            }
        }
        pos
    }

    /// Positions of the key arguments given only the argument count (the legacy first/last/step spec).
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
        let ks = self.keys;
        if ks.first <= 0 {
            return Vec::new();
        }
        let last = if ks.last < 0 {
            argc as i32 + ks.last
        } else {
            ks.last
        };
        let step = ks.step.max(1) as usize;
        (ks.first as usize..=last.max(0) as usize)
            .step_by(step)
            .filter(|&i| i < argc)
            .collect()
    }
}

fn unknown_subcommand_handler(_: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    Err("ERR unknown subcommand".into())
}

/// Every command family's table.
pub fn families() -> [&'static [Command]; 17] {
    [
        aof::COMMANDS,
        strings::COMMANDS,
        keys::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        blocking::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        sort::COMMANDS,
        server::COMMANDS,
        connection::COMMANDS,
        transactions::COMMANDS,
        pubsub::COMMANDS,
        streams::COMMANDS,
        scripting::COMMANDS,
        dump::COMMANDS,
        persistence::COMMANDS,
    ]
}

/// Dense index of every command and subcommand (for per-command statistics).
pub struct Registry {
    by_name: HashMap<&'static str, usize, foldhash::fast::FixedState>,
    /// (full name like "client|list", command, parent)
    pub all: Vec<(String, &'static Command)>,
    sub_index: HashMap<(usize, &'static str), usize, foldhash::fast::FixedState>,
}

impl Registry {
    fn build() -> Registry {
        let mut r = Registry {
            by_name: HashMap::default(),
            all: Vec::new(),
            sub_index: HashMap::default(),
        };
        for fam in families() {
            for c in fam {
                let id = r.all.len();
                r.all.push((c.name.to_string(), c));
                r.by_name.insert(c.name, id);
                for s in c.subcommands {
                    let sid = r.all.len();
                    r.all.push((format!("{}|{}", c.name, s.name), s));
                    r.sub_index.insert((id, s.name), sid);
                }
            }
        }
        r
    }

    pub fn get() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(Registry::build)
    }

    /// Look up a top-level command by name, case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let lname = std::str::from_utf8(&buf[..name.len()]).ok()?;
        self.by_name.get(lname).copied()
    }

    pub fn lookup_sub(&self, parent: usize, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let lname = std::str::from_utf8(&buf[..name.len()]).ok()?;
        self.sub_index.get(&(parent, lname)).copied()
    }

    pub fn command(&self, id: usize) -> &'static Command {
        self.all[id].1
    }

    pub fn full_name(&self, id: usize) -> &str {
        &self.all[id].0
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Top-level commands in table order.
    pub fn top_level(&self) -> impl Iterator<Item = &'static Command> + '_ {
        families().into_iter().flat_map(|f| f.iter())
    }

    /// The command (or subcommand) a rejected command line is accounted to in commandstats.
    fn rejected_id(&self, args: &Args<'_>) -> Option<usize> {
        let id = self.lookup(args.get(0))?;
        match args.try_get(1) {
            Some(sub) if !self.command(id).subcommands.is_empty() => {
                Some(self.lookup_sub(id, sub).unwrap_or(id))
            }
            _ => Some(id),
        }
    }

    /// Resolve a command line to a command id, producing Redis's unknown-command / unknown-subcommand / arity
    /// errors.
    pub fn resolve(&self, args: &Args<'_>) -> Result<usize, CmdError> {
        let name = args.get(0);
        let Some(id) = self.lookup(name) else {
            return Err(unknown_command(args));
        };
        let cmd = self.command(id);
        if !cmd.subcommands.is_empty() && args.len() >= 2 {
            let Some(sid) = self.lookup_sub(id, args.get(1)) else {
                return Err(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    trunc(args.get(1), 128),
                    cmd.name.to_ascii_uppercase()
                )
                .into());
            };
            check_arity(self.command(sid), self.full_name(sid), args.len())?;
            return Ok(sid);
        }
        check_arity(cmd, cmd.name, args.len())?;
        Ok(id)
    }
}

fn check_arity(cmd: &Command, full: &str, argc: usize) -> CmdResult {
    let a = cmd.arity;
    if (a > 0 && argc as i32 != a) || (argc as i32) < -a {
        return Err(format!("ERR wrong number of arguments for '{full}' command").into());
    }
    Ok(())
}

fn trunc(b: &[u8], n: usize) -> Cow<'_, str> {
    String::from_utf8_lossy(&b[..b.len().min(n)])
}

pub fn unknown_command(args: &Args<'_>) -> CmdError {
    let mut rest = String::new();
    for a in args.iter().skip(1) {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        rest.push('\'');
        rest.push_str(&trunc(a, room));
        rest.push_str("' ");
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {}",
        trunc(args.get(0), 128),
        rest
    )
    .into()
}

/// What a handler gets: the server, its client, the reply buffer, and the time the batch started.
pub struct Ctx<'a> {
    pub srv: &'a Arc<Server>,
    pub client: &'a mut Client,
    pub out: &'a mut Vec<u8>,
    /// Unix time in milliseconds, sampled once per command (Redis caches it per command too, so a command
    /// sees one consistent "now").
    pub now_ms: u64,
    /// Key events recorded by this command (see crate::notify), delivered after it.
    pub events: std::cell::RefCell<Vec<crate::notify::KeyEvent>>,
    /// How this command's effects are propagated (AOF).
    pub prop: std::cell::RefCell<Propagation>,
}

/// One command line, as propagated.
pub type Argv = Vec<Vec<u8>>;

/// What a command hands to the AOF (and later replicas) once it ran: by default the command as received if
/// it changed anything. Handlers whose own form would not replay to the same result (relative TTLs, random
/// picks, generated IDs, floats...) replace it; effects on other keys (expired keys deleted on access,
/// blocked clients served) are added around it.
#[derive(Default)]
pub struct Propagation {
    /// Number of `Ctx::modified` calls: a command that changed nothing propagates only `before`/`after`.
    pub changes: u64,
    /// The commands that stand for this one, when set.
    pub replace: Option<Vec<Argv>>,
    /// Effects propagated before it (DEL of a key found expired).
    pub before: Vec<Argv>,
    /// Effects propagated after it (pops served to blocked clients).
    pub after: Vec<Argv>,
}

impl Propagation {
    pub fn is_empty(&self) -> bool {
        self.changes == 0 && self.before.is_empty() && self.after.is_empty()
    }
}

impl<'a> Ctx<'a> {
    #[inline]
    pub fn reply(&mut self) -> Reply<'_> {
        Reply::new(self.out, self.client.resp3)
    }

    #[inline]
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// The LRU clock value stored in entries on access (seconds).
    #[inline]
    pub fn lru_clock(&self) -> u32 {
        crate::keyspace::entry::lru_clock(self.now_ms)
    }
}

/// Parse helpers shared by handlers.
pub mod parse {
    use super::{err, CmdError};
    use ferrodis_protocol::num;

    pub fn int(b: &[u8]) -> Result<i64, CmdError> {
        num::parse_i64(b).ok_or_else(|| err::NOT_INTEGER.into())
    }

    pub fn float(b: &[u8]) -> Result<f64, CmdError> {
        num::parse_f64(b).ok_or_else(|| err::NOT_FLOAT.into())
    }

    /// A non-negative integer that fits usize, else `msg`.
    pub fn uint_or(b: &[u8], msg: &'static str) -> Result<usize, CmdError> {
        match num::parse_i64(b) {
            Some(v) if v >= 0 => Ok(v as usize),
            _ => Err(msg.into()),
        }
    }

    /// A SCAN-family cursor as Redis parses it (C's strtoul: optional `+`/`-` sign, a `-` wraps, no
    /// blanks, the empty string is 0, out of range is an error).
    pub fn cursor(b: &[u8]) -> Result<u64, CmdError> {
        let bad = || CmdError::from("ERR invalid cursor");
        if b.is_empty() {
            return Ok(0);
        }
        let (neg, digits) = match b[0] {
            b'-' => (true, &b[1..]),
            b'+' => (false, &b[1..]),
            _ => (false, b),
        };
        if digits.is_empty() {
            return Err(bad());
        }
        let mut v: u64 = 0;
        for &c in digits {
            if !c.is_ascii_digit() {
                return Err(bad());
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or_else(bad)?;
        }
        Ok(if neg { v.wrapping_neg() } else { v })
    }

    #[inline]
    pub fn eq(a: &[u8], lit: &str) -> bool {
        a.eq_ignore_ascii_case(lit.as_bytes())
    }
}

/// Time for a batch of commands with one clock read per command: "now" for a command is the batch's wall
/// clock plus the monotonic time elapsed since, and each command's duration is the lap since the previous.
pub struct BatchClock {
    unix_ms: u64,
    start: std::time::Instant,
    last: std::time::Instant,
}

impl BatchClock {
    pub fn new() -> Self {
        let now = std::time::Instant::now();
        BatchClock {
            unix_ms: crate::server::unix_ms(),
            start: now,
            last: now,
        }
    }

    /// Wall-clock unix milliseconds at the start of the current command.
    pub fn now_ms(&self) -> u64 {
        self.unix_ms + (self.last - self.start).as_millis() as u64
    }

    /// Microseconds since the previous lap (the command just run); starts the next lap.
    pub fn lap_us(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let us = (now - self.last).as_micros() as u64;
        self.last = now;
        us
    }
}

impl Default for BatchClock {
    fn default() -> Self {
        Self::new()
    }
}

/// What a RESP2 client may run while subscribed.
const SUBSCRIBED_MODE_OK: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];

/// Run one request: resolve it in the table, check authentication, call the handler, account statistics,
/// write the reply (or error) to `out`, honouring CLIENT REPLY OFF/SKIP.
pub fn execute(
    srv: &Arc<Server>,
    client: &mut Client,
    out: &mut Vec<u8>,
    args: Args<'_>,
    clock: &mut BatchClock,
) {
    let reg = Registry::get();
    let stats = &srv.workers[client.worker];
    let start_len = out.len();
    let skipping = client.reply_mode == ReplyMode::SkipNext;
    if skipping {
        client.reply_mode = ReplyMode::On;
    }
    let mut ran_handler = false;
    let result = match reg.resolve(&args) {
        Err(e) => {
            if let Some(id) = reg.rejected_id(&args) {
                stats.cmds[id].rejected.add(1);
            }
            Err(e)
        }
        Ok(id) => {
            let cmd = reg.command(id);
            // Redis refuses a protected command even before asking for authentication.
            if cmd.has(flags::PROTECTED)
                && !srv
                    .config
                    .read()
                    .enable_debug_command
                    .allows(client.is_local())
            {
                stats.cmds[id].rejected.add(1);
                Err(err::DEBUG_NOT_ALLOWED.into())
            } else if !client.authenticated && !cmd.has(flags::NO_AUTH) {
                stats.cmds[id].rejected.add(1);
                Err(err::NOAUTH.into())
            } else if !client.resp3
                && client.subscribed()
                && !SUBSCRIBED_MODE_OK.contains(&cmd.name)
            {
                stats.cmds[id].rejected.add(1);
                Err(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    reg.full_name(id)
                )
                .into())
            } else if let Some(e) = srv
                .scripting
                .busy_error()
                .filter(|_| !cmd.has(flags::ALLOW_BUSY))
            {
                stats.cmds[id].rejected.add(1);
                if cmd.name == "exec" {
                    // Redis's execCommandAbort: the transaction is discarded with the reason.
                    client.multi = None;
                    transactions::unwatch(srv, client);
                    Err(format!("EXECABORT Transaction discarded because of: {e}").into())
                } else {
                    Err(e.into())
                }
            } else if client.multi.is_some() && !transactions::runs_in_multi(cmd) {
                if cmd.has(flags::NO_MULTI) {
                    stats.cmds[id].rejected.add(1);
                    Err("ERR Command not allowed inside a transaction".into())
                } else {
                    transactions::queue(client, id, &args);
                    Reply::new(out, client.resp3).simple("QUEUED");
                    Ok(())
                }
            } else if cmd.has(flags::WRITE) && crate::persist::save::refuse_writes(srv) {
                stats.cmds[id].rejected.add(1);
                Err(crate::persist::save::MISCONF.into())
            } else if cmd.has(flags::DENYOOM) && srv.over_maxmemory() {
                stats.cmds[id].rejected.add(1);
                Err(err::OOM.into())
            } else {
                ran_handler = true;
                if client.tracking.is_some() {
                    crate::tracking::before_command(client);
                }
                let (r, events) = run(srv, client, out, id, args, clock);
                if client.tracking.is_some() {
                    if r.is_ok() && cmd.has(flags::READONLY) {
                        crate::tracking::note_read(srv, client, cmd, &args);
                    }
                    crate::tracking::after_command(
                        client,
                        reg.full_name(id).starts_with("client|"),
                    );
                }
                if !events.is_empty() {
                    crate::notify::after_command(srv, &events);
                    crate::tracking::invalidate(srv, client, &events);
                }
                r
            }
        }
    };
    if result.is_err() && !ran_handler {
        // A command rejected while queueing makes EXEC fail (Redis's flagTransaction).
        if let Some(m) = client.multi.as_mut() {
            m.errored = true;
        }
    }
    if let Err(e) = result {
        Reply::new(out, client.resp3).error(e.msg());
        srv.record_error(e.msg());
        stats.error_replies.add(1);
    }
    stats.commands.add(1);
    if skipping || matches!(client.reply_mode, ReplyMode::Off | ReplyMode::SkipNext) {
        out.truncate(start_len);
    }
}

/// Run a resolved command's handler and account it in commandstats. Returns its result and the key events
/// it recorded (the caller delivers them once no shard lock is held).
pub fn run(
    srv: &Arc<Server>,
    client: &mut Client,
    out: &mut Vec<u8>,
    id: usize,
    args: Args<'_>,
    clock: &mut BatchClock,
) -> (CmdResult, Vec<crate::notify::KeyEvent>) {
    let cmd = Registry::get().command(id);
    let mut ctx = Ctx {
        srv,
        client,
        out,
        now_ms: clock.now_ms(),
        events: Default::default(),
        prop: Default::default(),
    };
    let db = ctx.client.db;
    let r = (cmd.handler)(&mut ctx, args);
    let events = ctx.events.into_inner();
    let prop = ctx.prop.into_inner();
    if !prop.is_empty() {
        crate::persist::propagate(srv, client, db, &args, prop);
    }
    let st = &srv.workers[client.worker].cmds[id];
    st.calls.add(1);
    st.usec.add(clock.lap_us());
    if r.is_err() {
        st.failed.add(1);
    }
    client
        .info
        .last_cmd
        .store(id as u32, std::sync::atomic::Ordering::Relaxed);
    (r, events)
}

use crate::client::ReplyMode;
use crate::keyspace::{entry::Entry, Lookup, Shard};

impl<'a> Ctx<'a> {
    /// Look a key up in a locked shard for a command that will read or modify it: lazily deletes an expired
    /// key (counting it), updates the access clock unless the client is in NO-TOUCH mode, and counts
    /// keyspace hits and misses.
    pub fn lookup<'s>(&self, shard: &'s mut Shard, key: &[u8]) -> Option<&'s mut Entry> {
        let stats = &self.srv.workers[self.client.worker];
        match shard.lookup_mut(self.client.db, key, self.now_ms) {
            Lookup::Found(e) => {
                if !self.client.no_touch {
                    e.set_lru(self.lru_clock());
                }
                stats.hits.add(1);
                Some(e)
            }
            Lookup::Expired => {
                stats.expired.add(1);
                stats.misses.add(1);
                self.key_event(self.client.db, key, "expired");
                self.propagate_before(vec![b"DEL".to_vec(), key.to_vec()]);
                None
            }
            Lookup::Missing => {
                stats.misses.add(1);
                self.key_event(self.client.db, key, "keymiss");
                None
            }
        }
    }

    /// Like [`Ctx::lookup`] for writes: no hit/miss accounting (Redis counts those for reads only).
    pub fn lookup_write<'s>(&self, shard: &'s mut Shard, key: &[u8]) -> Option<&'s mut Entry> {
        match shard.lookup_mut(self.client.db, key, self.now_ms) {
            Lookup::Found(e) => {
                if !self.client.no_touch {
                    e.set_lru(self.lru_clock());
                }
                Some(e)
            }
            Lookup::Expired => {
                self.srv.workers[self.client.worker].expired.add(1);
                self.key_event(self.client.db, key, "expired");
                self.propagate_before(vec![b"DEL".to_vec(), key.to_vec()]);
                None
            }
            Lookup::Missing => None,
        }
    }

    /// Every successful write to a key calls this once per key changed, WHILE STILL HOLDING the key's shard
    /// lock, with the keyspace event name Redis uses ("set", "del", "expire", "rename_from", ...). It is the
    /// single hook for the side effects of a modification that must be atomic with it: the dirty counter,
    /// serving clients blocked on the key, and (later) WATCH invalidation, keyspace notifications and
    /// client-side caching invalidation.
    pub fn modified(&self, shard: &mut Shard, key: &[u8], event: &'static str) {
        self.modified_in(shard, self.client.db, key, event);
    }

    /// [`Ctx::modified`] for a key in another database (COPY ... DB, MOVE).
    pub fn modified_in(&self, shard: &mut Shard, db: usize, key: &[u8], event: &'static str) {
        self.srv.workers[self.client.worker].dirty.add(1);
        self.srv.persist.aof.note_write();
        self.prop.borrow_mut().changes += 1;
        self.key_event(db, key, event);
        shard.touch_watched(db, key);
        shard.key_ready(db, key, self);
    }

    /// Record a key event for delivery after the command (notifications, invalidation), if anyone
    /// consumes them. `modified_in` calls this; events without a modification ("expired" on a lazy
    /// delete is reported as a modification too) may call it directly.
    pub fn key_event(&self, db: usize, key: &[u8], event: &'static str) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.srv.key_events.load(Relaxed) || self.srv.tracking_clients.load(Relaxed) > 0 {
            self.events.borrow_mut().push(crate::notify::KeyEvent {
                db,
                key: key.to_vec(),
                event,
            });
        }
    }

    /// Propagate `cmds` instead of this command (see [`Propagation`]).
    pub fn propagate_as(&self, cmds: Vec<Argv>) {
        self.prop.borrow_mut().replace = Some(cmds);
    }

    /// Propagate an effect before this command (e.g. DEL of a key found expired).
    pub fn propagate_before(&self, argv: Argv) {
        self.srv.persist.aof.note_write();
        self.prop.borrow_mut().before.push(argv);
    }

    /// Propagate an effect after this command (e.g. the pop that served a blocked client).
    pub fn propagate_after(&self, argv: Argv) {
        self.srv.persist.aof.note_write();
        self.prop.borrow_mut().after.push(argv);
    }

    /// Count keys removed because their TTL passed.
    pub fn count_expired(&self, n: u64) {
        self.srv.workers[self.client.worker].expired.add(n);
    }
}
