//! The declarative command table (docs/design/commands.md) and dispatch.
//!
//! Every command is one [`Command`] entry in its family module's `COMMANDS` slice plus one handler. Dispatch,
//! arity and unknown-command errors, key extraction for locking, ACL categories, `COMMAND INFO/DOCS/GETKEYS`
//! all read this table.

pub mod aof;
pub mod argv;
pub mod bitmaps;
pub mod blocking;
pub mod connection;
pub mod docs;
pub mod dump;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod keys;
pub mod lists;
pub mod persistence;
pub mod pubsub;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod tracking;
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

/// Redis-style key specs (COMMAND INFO's `key_specs`): where a command's keys are and how it uses them.
///
/// A spec is a begin_search step (an argument index, or the position after a keyword) and a find_keys step (a
/// range from there, or a count read from a `numkeys` argument), with flags. A table entry lists them with the
/// `const fn` builders: `spec::index(1).range(0, 1, 0).flags(RW | ACCESS | DELETE)`,
/// `spec::keyword("STREAMS", 1).range(-1, 1, 2).flags(RO | ACCESS)`, `spec::index(2).keynum(0, 1, 1)...`.
/// The legacy first/last/step triple and the `movablekeys` flag of COMMAND INFO are derived from them
/// ([`Command::legacy_range`], [`Command::movable_keys`]).
pub mod spec {
    // Key spec flags (Redis's CMD_KEY_*), in the order COMMAND INFO names them.
    pub const RO: u16 = 1 << 0;
    pub const RW: u16 = 1 << 1;
    pub const OW: u16 = 1 << 2;
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    pub const NOT_KEY: u16 = 1 << 8;
    pub const INCOMPLETE: u16 = 1 << 9;
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    pub const NAMES: &[(u16, &str)] = &[
        (RW, "RW"),
        (RO, "RO"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];

    /// Where the search for keys starts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Begin {
        /// At this argument index.
        Index(i32),
        /// After `keyword`, searched from argument `startfrom` (negative: from the end, backwards).
        Keyword {
            keyword: &'static str,
            startfrom: i32,
        },
        Unknown,
    }

    /// How the keys are found from the begin_search position.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Find {
        /// Keys up to `lastkey` (relative; negative: from the end) every `keystep`; with `lastkey` -1 and
        /// `limit` > 0, only 1/limit of the remaining arguments.
        Range {
            lastkey: i32,
            keystep: i32,
            limit: i32,
        },
        /// The key count is at `keynumidx`, the first key at `firstkey` (both relative), every `keystep`.
        Keynum {
            keynumidx: i32,
            firstkey: i32,
            keystep: i32,
        },
        Unknown,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct KeySpec {
        pub begin: Begin,
        pub find: Find,
        pub flags: u16,
        pub notes: &'static str,
    }

    pub const fn index(i: i32) -> Begin {
        Begin::Index(i)
    }

    pub const fn keyword(keyword: &'static str, startfrom: i32) -> Begin {
        Begin::Keyword { keyword, startfrom }
    }

    /// A spec whose keys no rule describes (the command's key finder does).
    pub const fn unknown() -> KeySpec {
        KeySpec {
            begin: Begin::Unknown,
            find: Find::Unknown,
            flags: 0,
            notes: "",
        }
    }

    impl Begin {
        pub const fn range(self, lastkey: i32, keystep: i32, limit: i32) -> KeySpec {
            KeySpec {
                begin: self,
                find: Find::Range {
                    lastkey,
                    keystep,
                    limit,
                },
                flags: 0,
                notes: "",
            }
        }

        pub const fn keynum(self, keynumidx: i32, firstkey: i32, keystep: i32) -> KeySpec {
            KeySpec {
                begin: self,
                find: Find::Keynum {
                    keynumidx,
                    firstkey,
                    keystep,
                },
                flags: 0,
                notes: "",
            }
        }
    }

    impl KeySpec {
        pub const fn flags(mut self, flags: u16) -> KeySpec {
            self.flags = flags;
            self
        }

        pub const fn notes(mut self, notes: &'static str) -> KeySpec {
            self.notes = notes;
            self
        }

        /// The common `index(i) range(0, 1, 0)` spec: its index.
        pub fn single_index(&self) -> Option<usize> {
            match (self.begin, self.find) {
                (
                    Begin::Index(i),
                    Find::Range {
                        lastkey: 0,
                        keystep: 1,
                        limit: 0,
                    },
                ) if i > 0 => Some(i as usize),
                _ => None,
            }
        }
    }
}

/// One key of a concrete command line: its argument position and its spec's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    pub pos: usize,
    pub flags: u16,
}

/// A command's own key finder (Redis's getkeys proc), used when its specs cannot find the keys (an unknown or
/// incomplete spec, or flags that depend on the arguments). Pushes the keys; returns false for a line it
/// cannot read.
pub type KeysFn = fn(&Args<'_>, &mut Vec<KeyRef>) -> bool;

pub struct Command {
    /// Lower-case name ("get"; for a subcommand, the subcommand name: "setname").
    pub name: &'static str,
    /// Redis arity: N = exactly N args (name included), -N = at least N.
    pub arity: i32,
    /// Command flags; `movablekeys` is not set here, it is derived from the key specs.
    pub flags: u32,
    /// Explicit ACL categories; flag-implied ones (@write, @read, @fast/@slow, @admin...) are added.
    pub acl: u32,
    /// Key specs, in Redis's order (COMMAND DOCS arguments refer to them by index).
    pub keys: &'static [spec::KeySpec],
    /// Key finder for when the specs are not enough (SORT ... STORE dst, SET's GET-dependent flags).
    pub get_keys: Option<KeysFn>,
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
    /// COMMAND DOCS history: (version, change).
    pub history: &'static [(&'static str, &'static str)],
    pub tips: &'static [&'static str],
    /// For deprecated commands (COMMAND DOCS doc_flags "deprecated"): the version and the replacement.
    pub deprecated_since: &'static str,
    pub replaced_by: &'static str,
    /// COMMAND DOCS doc_flags "syscmd".
    pub syscmd: bool,
}

impl Command {
    pub const DEFAULT: Command = Command {
        name: "",
        arity: -1,
        flags: 0,
        acl: 0,
        keys: &[],
        get_keys: None,
        handler: unknown_subcommand_handler,
        subcommands: &[],
        group: "generic",
        since: "1.0.0",
        summary: "",
        complexity: "",
        syntax: "",
        history: &[],
        tips: &[],
        deprecated_since: "",
        replaced_by: "",
        syscmd: false,
    };

    pub fn has(&self, flag: u32) -> bool {
        if flag == flags::MOVABLEKEYS {
            return self.movable_keys();
        }
        self.flags & flag != 0
    }

    /// Whether the key positions depend on the arguments (COMMAND INFO's `movablekeys`): derived from the
    /// specs as Redis does, i.e. some spec is not a plain index/range one, or a range spec that is incomplete,
    /// not of step 1, or not consecutive to the previous one.
    pub fn movable_keys(&self) -> bool {
        self.legacy().1
    }

    /// The legacy (first, last, step) triple of COMMAND INFO, derived from the specs.
    pub fn legacy_range(&self) -> (i32, i32, i32) {
        self.legacy().0
    }

    /// Redis's populateCommandLegacyRangeSpec: the legacy range and the movablekeys flag.
    fn legacy(&self) -> ((i32, i32, i32), bool) {
        use spec::{Begin, Find};
        let ks = self.keys;
        if ks.is_empty() {
            return ((0, 0, 0), false);
        }
        if let [k] = ks {
            if let (
                Begin::Index(pos),
                Find::Range {
                    lastkey, keystep, ..
                },
            ) = (k.begin, k.find)
            {
                let last = if lastkey >= 0 { pos + lastkey } else { lastkey };
                return ((pos, last, keystep), k.flags & spec::INCOMPLETE != 0);
            }
        }
        let mut movable = false;
        let (mut first, mut last, mut prev_last) = (i32::MAX, 0i32, 0i32);
        for k in ks {
            let (
                Begin::Index(pos),
                Find::Range {
                    lastkey, keystep, ..
                },
            ) = (k.begin, k.find)
            else {
                movable = true;
                continue;
            };
            if keystep != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            if k.flags & spec::INCOMPLETE != 0 {
                movable = true;
            }
            first = first.min(pos);
            let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
            // Unsigned comparison, as Redis does: a negative (from the end) lastkey wins.
            last = (last as u32).max(abs as u32) as i32;
            prev_last = last;
        }
        if first == i32::MAX {
            return ((0, 0, 0), true);
        }
        ((first, last, 1), movable)
    }

    /// Whether some spec describes a real key (Redis's doesCommandHaveKeys, with the key finder).
    pub fn has_keys(&self) -> bool {
        self.get_keys.is_some() || self.keys.iter().any(|k| k.flags & spec::NOT_KEY == 0)
    }

    /// Whether some key of this command cannot be found from its arguments alone (an unknown or incomplete
    /// spec: SORT's BY/GET patterns).
    pub fn has_unknown_keys(&self) -> bool {
        self.keys.iter().any(|k| {
            k.flags & spec::INCOMPLETE != 0
                || matches!(k.begin, spec::Begin::Unknown)
                || matches!(k.find, spec::Find::Unknown)
        })
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

    /// Positions of the key arguments of a command line (COMMAND GETKEYS, MULTI lock planning, tracking):
    /// [`Command::keys_in`] without the flags. A line whose keys cannot be read yields none.
    pub fn key_positions_in(&self, args: &Args<'_>) -> Vec<usize> {
        if let [k] = self.keys {
            if let Some(i) = k.single_index() {
                if k.flags & (spec::NOT_KEY | spec::VARIABLE_FLAGS) == 0 {
                    return if i < args.len() { vec![i] } else { Vec::new() };
                }
            }
        }
        let mut out = Vec::new();
        self.keys_in(args, &mut out);
        out.into_iter().map(|k| k.pos).collect()
    }

    /// The keys of a command line with their spec flags, as Redis's getKeysFromCommandWithSpecs finds them:
    /// from the specs when they are complete and their flags fixed, otherwise with the command's key finder.
    /// Returns false (and leaves `out` as it was) when the line's keys cannot be read (a bad numkeys, a
    /// missing keyword's keys).
    pub fn keys_in(&self, args: &Args<'_>, out: &mut Vec<KeyRef>) -> bool {
        let varflags = self
            .keys
            .iter()
            .any(|k| k.flags & spec::VARIABLE_FLAGS != 0);
        let has_spec = self.keys.iter().any(|k| k.flags & spec::NOT_KEY == 0);
        if has_spec && !varflags {
            let n = out.len();
            if keys_from_specs(self.keys, args, out) {
                return true;
            }
            out.truncate(n);
        }
        match self.get_keys {
            Some(f) => {
                let n = out.len();
                let ok = f(args, out);
                if !ok {
                    out.truncate(n);
                }
                ok
            }
            None => false,
        }
    }
}

/// Redis's getKeysUsingKeySpecs (without partial results): false when a spec cannot be applied to the line.
fn keys_from_specs(specs: &[spec::KeySpec], args: &Args<'_>, out: &mut Vec<KeyRef>) -> bool {
    use spec::{Begin, Find};
    let argc = args.len() as i64;
    for k in specs {
        if k.flags & spec::NOT_KEY != 0 {
            continue;
        }
        let first: i64 = match k.begin {
            Begin::Index(i) => i as i64,
            Begin::Keyword { keyword, startfrom } => {
                let found = if startfrom > 0 {
                    (startfrom as i64..argc).find(|&i| {
                        args.try_get(i as usize)
                            .is_some_and(|a| a.eq_ignore_ascii_case(keyword.as_bytes()))
                    })
                } else {
                    (1..argc + startfrom as i64 + 1).rev().find(|&i| {
                        args.try_get(i as usize)
                            .is_some_and(|a| a.eq_ignore_ascii_case(keyword.as_bytes()))
                    })
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            Begin::Unknown => return false,
        };
        let (first, last, step) = match k.find {
            Find::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey as i64
                } else if limit == 0 {
                    argc + lastkey as i64
                } else {
                    first + ((argc - first) / limit as i64 + lastkey as i64)
                };
                (first, last, keystep as i64)
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                let at = first + keynumidx as i64;
                if keynumidx as i64 >= argc || at >= argc {
                    return false;
                }
                match args
                    .try_get(at as usize)
                    .and_then(ferrodis_protocol::num::parse_i64)
                {
                    Some(n) if n >= 0 => {
                        let f = first + firstkey as i64;
                        // A huge count saturates (and then exceeds the line: no keys).
                        (f, f.saturating_add(n) - 1, keystep as i64)
                    }
                    _ => return false,
                }
            }
            Find::Unknown => return false,
        };
        if last >= argc || last < first || first >= argc {
            return false;
        }
        let mut i = first;
        while i <= last {
            out.push(KeyRef {
                pos: i as usize,
                flags: k.flags,
            });
            i += step.max(1);
        }
        if k.flags & spec::INCOMPLETE != 0 {
            return false;
        }
    }
    true
}

fn unknown_subcommand_handler(_: &mut Ctx<'_>, _: Args<'_>) -> CmdResult {
    Err("ERR unknown subcommand".into())
}

/// The command layer's own families, in table order. The crate root adds the families defined above this
/// layer (scripting's EVAL/FUNCTION commands) and installs the whole table with [`install`] at startup.
pub fn own_families() -> Vec<&'static [Command]> {
    vec![
        aof::COMMANDS,
        strings::COMMANDS,
        bitmaps::COMMANDS,
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
        dump::COMMANDS,
        persistence::COMMANDS,
        geo::COMMANDS,
        hyperloglog::COMMANDS,
    ]
}

static FAMILIES: OnceLock<Vec<&'static [Command]>> = OnceLock::new();

/// Install the command table (every family, once, before the [`Registry`] is first used).
pub fn install(families: Vec<&'static [Command]>) {
    let _ = FAMILIES.set(families);
}

/// Every command family's table.
fn families() -> &'static [&'static [Command]] {
    FAMILIES
        .get()
        .expect("the command table is installed at startup (ferrodis::init)")
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
        for &fam in families() {
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
        let mut high = 0u8;
        for (d, s) in buf.iter_mut().zip(name) {
            high |= s;
            *d = s.to_ascii_lowercase();
        }
        // Command names are ASCII: anything else is no command (and no UTF-8 validation is needed).
        if high >= 0x80 {
            return None;
        }
        // SAFETY: every byte is ASCII, hence valid UTF-8.
        let lname = unsafe { std::str::from_utf8_unchecked(&buf[..name.len()]) };
        self.by_name.get(lname).copied()
    }

    pub fn lookup_sub(&self, parent: usize, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        let mut high = 0u8;
        for (d, s) in buf.iter_mut().zip(name) {
            high |= s;
            *d = s.to_ascii_lowercase();
        }
        // Command names are ASCII: anything else is no command (and no UTF-8 validation is needed).
        if high >= 0x80 {
            return None;
        }
        // SAFETY: every byte is ASCII, hence valid UTF-8.
        let lname = unsafe { std::str::from_utf8_unchecked(&buf[..name.len()]) };
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
        families().iter().flat_map(|f| f.iter())
    }

    /// The command (or subcommand) a rejected command line is accounted to in commandstats.
    fn rejected_id(&self, args: &Args<'_>) -> Option<usize> {
        let id = self.lookup(args.try_get(0)?)?;
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
        let Some(id) = args.try_get(0).and_then(|name| self.lookup(name)) else {
            return Err(unknown_command(args));
        };
        let cmd = self.command(id);
        if let (false, Some(sub)) = (cmd.subcommands.is_empty(), args.try_get(1)) {
            let Some(sid) = self.lookup_sub(id, sub) else {
                return Err(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    trunc(sub, 128),
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
        trunc(args.try_get(0).unwrap_or_default(), 128),
        rest
    )
    .into()
}

/// What a handler gets: the server, its client, the reply buffer, and the time the batch started.
pub struct Ctx<'a> {
    pub srv: &'a Arc<Server>,
    /// The command running (its id in the [`Registry`]).
    pub id: usize,
    pub client: &'a mut Client,
    pub out: &'a mut Vec<u8>,
    /// Unix time in milliseconds, sampled once per command (Redis caches it per command too, so a command
    /// sees one consistent "now").
    pub now_ms: u64,
    /// Key events recorded by this command (see crate::notify), delivered after it.
    pub events: std::cell::RefCell<Vec<crate::notify::KeyEvent>>,
    /// How this command's effects are propagated (AOF).
    pub prop: std::cell::RefCell<Propagation>,
    /// Inside a transaction or script: keys this command makes ready for blocked clients are kept
    /// (`ready`) and served when the outermost one ends ([`serve_ready_keys`]), not at once.
    pub defer_ready: bool,
    pub ready: std::cell::RefCell<Vec<(usize, Vec<u8>)>>,
}

pub use crate::persist::{Argv, Propagation};

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

pub use crate::server::BatchClock;

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

/// Run one request from a connection: resolve it in the table, check that it may run now (protected
/// commands, authentication, subscribed mode, a busy script, MULTI queueing, MISCONF, OOM), then [`call`]
/// it; honours CLIENT REPLY OFF/SKIP. Rejections are error replies counted against the command
/// (`rejected_calls`), as Redis counts them.
pub fn execute(
    srv: &Arc<Server>,
    client: &mut Client,
    out: &mut Vec<u8>,
    args: Args<'_>,
    clock: &mut BatchClock,
) {
    let reg = Registry::get();
    let start_len = out.len();
    let skipping = client.reply_mode == ReplyMode::SkipNext;
    if skipping {
        client.reply_mode = ReplyMode::On;
    }
    match reg
        .resolve(&args)
        .and_then(|id| admit(srv, client, id).map(|a| (id, a)))
    {
        Err(e) => {
            let id = reg.rejected_id(&args);
            if id.is_some_and(|id| reg.command(id).name == "exec") {
                // Redis's execCommandAbort: a refused EXEC discards the transaction, saying why.
                client.multi = None;
                transactions::unwatch(srv, client);
                let msg = format!("EXECABORT Transaction discarded because of: {}", e.msg());
                reject(srv, client, out, id, &msg);
            } else {
                reject(srv, client, out, id, e.msg());
                // A command rejected while queueing makes EXEC fail (Redis's flagTransaction).
                if let Some(m) = client.multi.as_mut() {
                    m.errored = true;
                }
            }
        }
        Ok((id, Admit::Queue)) => {
            transactions::queue(client, id, &args);
            Reply::new(out, client.resp3).simple("QUEUED");
        }
        Ok((id, Admit::Run)) => {
            let cmd = reg.command(id);
            if client.tracking.is_some() {
                crate::tracking::before_command(client);
            }
            let (ok, events) = call(srv, client, out, id, args, clock);
            if client.tracking.is_some() {
                if ok && cmd.has(flags::READONLY) {
                    crate::tracking::note_read(srv, client, &args, || cmd.key_positions_in(&args));
                }
                crate::tracking::after_command(client, reg.full_name(id).starts_with("client|"));
            }
            if !events.is_empty() {
                crate::notify::after_command(srv, &events);
                crate::tracking::invalidate(srv, client, &events);
            }
        }
    }
    srv.workers[client.worker].commands.add(1);
    if skipping || matches!(client.reply_mode, ReplyMode::Off | ReplyMode::SkipNext) {
        out.truncate(start_len);
    }
}

/// What a resolved command of a connection does next.
enum Admit {
    Run,
    /// Queued in the client's MULTI.
    Queue,
}

/// The checks a connection's command passes before it runs, in the order of Redis's processCommand.
fn admit(srv: &Server, client: &Client, id: usize) -> Result<Admit, CmdError> {
    let reg = Registry::get();
    let cmd = reg.command(id);
    // Redis refuses a protected command even before asking for authentication.
    if cmd.has(flags::PROTECTED)
        && !srv
            .config
            .read()
            .enable_debug_command
            .allows(client.is_local())
    {
        return Err(err::DEBUG_NOT_ALLOWED.into());
    }
    if !client.authenticated && !cmd.has(flags::NO_AUTH) {
        return Err(err::NOAUTH.into());
    }
    // EXEC stands for what it queued.
    let (mut write, mut denyoom) = (cmd.has(flags::WRITE), cmd.has(flags::DENYOOM));
    if let (Some(m), "exec") = (&client.multi, cmd.name) {
        write |= m.flags & flags::WRITE != 0;
        denyoom |= m.flags & flags::DENYOOM != 0;
    }
    // Over maxmemory, a transaction queues nothing more (EXEC, DISCARD, QUIT and RESET excepted).
    if (denyoom
        || (client.multi.is_some() && !matches!(cmd.name, "exec" | "discard" | "quit" | "reset")))
        && srv.over_maxmemory()
    {
        return Err(err::OOM.into());
    }
    if write && crate::persist::save::refuse_writes(srv) {
        return Err(crate::persist::save::MISCONF.into());
    }
    if !client.resp3 && client.subscribed() && !SUBSCRIBED_MODE_OK.contains(&cmd.name) {
        return Err(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            reg.full_name(id)
        )
        .into());
    }
    if let Some(e) = srv.scripting.busy_error() {
        if !cmd.has(flags::ALLOW_BUSY) {
            return Err(e.into());
        }
    }
    if client.multi.is_some() && !transactions::runs_in_multi(cmd) {
        if cmd.has(flags::NO_MULTI) {
            return Err("ERR Command not allowed inside a transaction".into());
        }
        return Ok(Admit::Queue);
    }
    Ok(Admit::Run)
}

/// Reply with the error of a command that did not run, counted (errorstats, total_error_replies) and
/// accounted to the command if it is known (`rejected_calls`).
pub fn reject(srv: &Server, client: &Client, out: &mut Vec<u8>, id: Option<usize>, msg: &str) {
    Reply::new(out, client.resp3).error(msg);
    count_rejection(srv, client.worker, id, msg);
}

/// Count the error of a command that did not run (the reply is the caller's: a script raises it): in
/// errorstats and total_error_replies, and in the command's `rejected_calls` when it is known.
pub fn count_rejection(srv: &Server, worker: usize, id: Option<usize>, msg: &str) {
    srv.count_error_reply(worker, msg);
    if srv.errors_since_mark(worker) {
        if let Some(id) = id {
            srv.workers[worker].cmds[id].rejected.add(1);
        }
    }
}

/// Write an error reply, counted in errorstats and total_error_replies.
pub fn error_reply(srv: &Server, client: &Client, out: &mut Vec<u8>, msg: &str) {
    Reply::new(out, client.resp3).error(msg);
    srv.count_error_reply(client.worker, msg);
}

/// Run a command that passed its checks: the single path of every command, whoever runs it (a
/// connection, EXEC, a script's `redis.call`, the AOF loader). It runs the handler, writes its error
/// reply if it failed, hands its effects to the AOF, accounts it in commandstats (a call during which an
/// error reply was counted failed) and keeps the keys it made ready for the end of the outermost
/// transaction or script. Returns whether the handler succeeded and the key events it recorded (the
/// caller delivers them once no shard lock is held).
pub fn call(
    srv: &Arc<Server>,
    client: &mut Client,
    out: &mut Vec<u8>,
    id: usize,
    args: Args<'_>,
    clock: &mut BatchClock,
) -> (bool, Vec<crate::notify::KeyEvent>) {
    let cmd = Registry::get().command(id);
    let mut ctx = Ctx {
        srv,
        id,
        defer_ready: client.in_exec,
        client,
        out,
        now_ms: clock.now_ms(),
        events: Default::default(),
        prop: Default::default(),
        ready: Default::default(),
    };
    let db = ctx.client.db;
    let checked = crate::keyspace::declared::checking().then(|| declare_keys(id, cmd, &args));
    let r = (cmd.handler)(&mut ctx, args);
    if let Some(outer) = checked {
        crate::keyspace::declared::set(outer);
    }
    if let Err(e) = &r {
        error_reply(srv, ctx.client, ctx.out, e.msg());
    }
    let events = ctx.events.into_inner();
    let prop = ctx.prop.into_inner();
    let ready = ctx.ready.into_inner();
    if !prop.is_empty() {
        crate::persist::propagate(srv, client, db, &args, prop);
    }
    if !ready.is_empty() {
        note_ready(client, ready);
    }
    let worker = client.worker;
    let st = &srv.workers[worker].cmds[id];
    st.calls.add(1);
    st.usec.add(clock.lap_us());
    if srv.errors_since_mark(worker) {
        st.failed.add(1);
    }
    client
        .info
        .last_cmd
        .store(id as u32, std::sync::atomic::Ordering::Relaxed);
    (r.is_ok(), events)
}

/// For the declared-keys check (`keyspace::declared`): the shards of the command's keys when its key specs
/// declare them all; returns the enclosing command's setting.
fn declare_keys(id: usize, cmd: &Command, args: &Args<'_>) -> Option<(&'static str, Vec<usize>)> {
    let mut keys = Vec::new();
    let declared = (cmd.has_keys() && !cmd.has_unknown_keys() && cmd.keys_in(args, &mut keys))
        .then(|| {
            let name = Registry::get().all[id].1.name;
            let shards = keys
                .iter()
                .filter_map(|k| args.try_get(k.pos).map(crate::keyspace::shard_of))
                .collect();
            (name, shards)
        });
    crate::keyspace::declared::set(declared)
}

fn note_ready(client: &mut Client, ready: Vec<(usize, Vec<u8>)>) {
    for k in ready {
        if !client.ready_keys.contains(&k) {
            client.ready_keys.push(k);
        }
    }
}

/// Redis's ready-keys rule: clients blocked on keys that a transaction or script made ready are served
/// once it has run entirely (so `MULTI; LPUSH l x; DEL l; EXEC` wakes nobody), while its locks are still
/// held, in the order the keys became ready. What serving changes joins the transaction's propagation.
/// `id`: the transaction's or script's command. Returns the key events of the pops.
pub fn serve_ready_keys(
    srv: &Arc<Server>,
    id: usize,
    client: &mut Client,
    clock: &BatchClock,
) -> Vec<crate::notify::KeyEvent> {
    let mut events = Vec::new();
    // The dispatcher's own locks (the keys the transaction or script made ready) are not the command's.
    let outer = crate::keyspace::declared::set(None);
    while !client.ready_keys.is_empty() {
        for (db, key) in std::mem::take(&mut client.ready_keys) {
            let mut out = Vec::new();
            let ctx = Ctx {
                srv,
                id,
                defer_ready: false,
                client,
                out: &mut out,
                now_ms: clock.now_ms(),
                events: Default::default(),
                prop: Default::default(),
                ready: Default::default(),
            };
            srv.keyspace.lock_key(&key).key_ready(db, &key, &ctx);
            events.extend(ctx.events.into_inner());
            let mut prop = ctx.prop.into_inner();
            let more = ctx.ready.into_inner();
            // The pops stand for themselves (`after`); nothing ran "as received".
            prop.changes = 0;
            if !prop.is_empty() {
                crate::persist::propagate(srv, client, db, &Args::from_parts(&[], &[]), prop);
            }
            note_ready(client, more);
        }
    }
    crate::keyspace::declared::set(outer);
    events
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
        self.count_change();
        self.key_event(db, key, event);
        shard.touch_watched(db, key);
        shard.key_ready(db, key, self);
    }

    /// Count one change of the dataset: the dirty counter, the command's place in the AOF order and its
    /// propagation. [`Ctx::modified_in`] does this for every key it signals; a change Redis counts without
    /// signalling a key (PFDEBUG TODENSE) calls it alone.
    pub fn count_change(&self) {
        self.srv.workers[self.client.worker].dirty.add(1);
        self.srv.persist.aof.note_write();
        self.prop.borrow_mut().changes += 1;
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
