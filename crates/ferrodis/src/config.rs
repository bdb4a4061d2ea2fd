//! Configuration: a redis.conf-style file plus `--directive value ...` flags, with Redis's directive names.
//! One table ([`DIRECTIVES`]) drives file parsing, flags, CONFIG GET, CONFIG SET and CONFIG REWRITE.

use std::path::PathBuf;

/// One client class's client-output-buffer-limit: hard bytes, soft bytes, soft seconds (0 = no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub unixsocket: String,
    pub unixsocketperm: u32,
    pub databases: usize,
    pub requirepass: Option<Vec<u8>>,
    pub maxclients: usize,
    pub timeout: u64,
    pub tcp_keepalive: u64,
    pub loglevel: String,
    pub logfile: String,
    pub dir: String,
    pub protected_mode: bool,
    pub threads: usize,
    pub hz: u32,
    pub proto_max_bulk_len: u64,
    /// `hll-sparse-max-bytes`: the largest sparse HyperLogLog (header included) before it becomes dense.
    pub hll_sparse_max_bytes: u64,
    pub client_query_buffer_limit: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
    pub active_expire: bool,
    /// Compact-encoding thresholds of collections.
    pub encoding: crate::types::EncodingLimits,
    /// Who may run DEBUG.
    pub enable_debug_command: Permit,
    /// Who may CONFIG SET the protected directives (`dir`, `dbfilename`).
    pub enable_protected_configs: Permit,
    /// Who may run MODULE (accepted for compatibility; Ferrodis has no MODULE command).
    pub enable_module_command: Permit,
    /// `notify-keyspace-events` as [`crate::events`] flag bits.
    pub notify_keyspace_events: u32,
    /// client-output-buffer-limit per class: normal, replica, pubsub.
    pub client_output_buffer_limit: [OutputLimit; 3],
    /// Most keys the client-side caching table remembers (0 = no limit); see crate::tracking.
    pub tracking_table_max_keys: u64,
    /// The config file we were started with (CONFIG REWRITE target).
    pub config_file: Option<PathBuf>,
    /// RDB and AOF settings.
    pub persist: PersistConfig,
    /// `busy-reply-threshold` (alias `lua-time-limit`), milliseconds.
    pub busy_reply_threshold: u64,
}

/// Persistence settings (Redis's directive names and defaults).
#[derive(Clone, Debug)]
pub struct PersistConfig {
    /// `save` points: (seconds, changes).
    pub save: Vec<(u64, u64)>,
    pub dbfilename: String,
    pub rdbcompression: bool,
    pub rdbchecksum: bool,
    pub stop_writes_on_bgsave_error: bool,
    pub appendonly: bool,
    pub appendfilename: String,
    pub appenddirname: String,
    /// "always", "everysec" or "no".
    pub appendfsync: String,
    pub aof_use_rdb_preamble: bool,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    pub aof_load_truncated: bool,
    pub aof_timestamp_enabled: bool,
    pub no_appendfsync_on_rewrite: bool,
}

impl Default for PersistConfig {
    fn default() -> Self {
        PersistConfig {
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            dbfilename: "dump.rdb".into(),
            rdbcompression: true,
            rdbchecksum: true,
            stop_writes_on_bgsave_error: true,
            appendonly: false,
            appendfilename: "appendonly.aof".into(),
            appenddirname: "appendonlydir".into(),
            appendfsync: "everysec".into(),
            aof_use_rdb_preamble: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            aof_load_truncated: true,
            aof_timestamp_enabled: false,
            no_appendfsync_on_rewrite: false,
        }
    }
}

/// `save` arguments: "" (none) or pairs of seconds and changes, as one string or several words.
fn parse_save(args: &[String]) -> Result<Vec<(u64, u64)>, String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    words
        .chunks(2)
        .map(|w| match (w[0].parse::<i64>(), w[1].parse::<i64>()) {
            (Ok(a), Ok(b)) if a >= 0 && b >= 0 => Ok((a as u64, b as u64)),
            _ => Err("Invalid save parameters".to_string()),
        })
        .collect()
}

fn bool_str(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: vec!["*".into(), "-::*".into()],
            unixsocket: String::new(),
            unixsocketperm: 0,
            databases: 16,
            requirepass: None,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            loglevel: "notice".into(),
            logfile: String::new(),
            dir: std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| ".".into()),
            protected_mode: true,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            hz: 10,
            proto_max_bulk_len: 512 * 1024 * 1024,
            hll_sparse_max_bytes: 3000,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            active_expire: true,
            encoding: crate::types::EncodingLimits::default(),
            enable_debug_command: Permit::No,
            enable_protected_configs: Permit::No,
            enable_module_command: Permit::No,
            notify_keyspace_events: 0,
            client_output_buffer_limit: DEFAULT_OUTPUT_LIMITS,
            tracking_table_max_keys: 1_000_000,
            config_file: None,
            persist: PersistConfig::default(),
            busy_reply_threshold: 5000,
        }
    }
}

/// Redis's `enable-debug-command` / `enable-protected-configs` / `enable-module-command` values: who may
/// run a dangerous command or change a protected directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    No,
    Yes,
    /// Clients on a loopback address or the unix socket.
    Local,
}

impl Permit {
    fn parse(args: &[String]) -> Result<Permit, String> {
        match one(args)?.to_ascii_lowercase().as_str() {
            "no" => Ok(Permit::No),
            "yes" => Ok(Permit::Yes),
            "local" => Ok(Permit::Local),
            _ => Err("argument(s) must be one of the following: no, yes, local".into()),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Permit::No => "no",
            Permit::Yes => "yes",
            Permit::Local => "local",
        }
    }

    /// Does this setting let a client in? `local`: is it connected locally (see `Client::is_local`).
    pub fn allows(self, local: bool) -> bool {
        match self {
            Permit::No => false,
            Permit::Yes => true,
            Permit::Local => local,
        }
    }
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &[String]) -> Result<(), String>;

/// Directives CONFIG SET may change only where `enable-protected-configs` allows the client (Redis 7's
/// protected configs: the ones that choose where files are written).
const PROTECTED: &[&str] = &["dir", "dbfilename"];

pub struct Directive {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Can CONFIG SET change it at run time?
    pub mutable: bool,
    /// Hidden from CONFIG GET (secrets are still returned by Redis; kept for parity: false everywhere now).
    pub get: Getter,
    pub set: Setter,
}

impl Directive {
    /// Is it one of the [`PROTECTED`] directives?
    pub fn protected(&self) -> bool {
        PROTECTED.contains(&self.name)
    }
}

fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [v] => Ok(v),
        _ => Err("wrong number of arguments".into()),
    }
}

fn yes_no(args: &[String]) -> Result<bool, String> {
    match one(args)?.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn int_in(args: &[String], min: i64, max: i64) -> Result<i64, String> {
    let v: i64 = one(args)?
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if v < min || v > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(v)
}

/// Redis's memtoull: "1gb", "100mb", "4k", plain bytes.
pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| l.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((l.clone(), 1));
    let n: u64 = num.parse().ok()?;
    n.checked_mul(mul)
}

fn memory(args: &[String]) -> Result<u64, String> {
    parse_memory(one(args)?).ok_or_else(|| "argument must be a memory value".to_string())
}

const MEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Redis's default client-output-buffer-limit: normal 0 0 0, replica 256mb 64mb 60, pubsub 32mb 8mb 60.
pub const DEFAULT_OUTPUT_LIMITS: [OutputLimit; 3] = [
    OutputLimit {
        hard: 0,
        soft: 0,
        soft_secs: 0,
    },
    OutputLimit {
        hard: 256 << 20,
        soft: 64 << 20,
        soft_secs: 60,
    },
    OutputLimit {
        hard: 32 << 20,
        soft: 8 << 20,
        soft_secs: 60,
    },
];

const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Format client-output-buffer-limit as CONFIG GET prints it.
fn output_limits_string(l: &[OutputLimit; 3]) -> String {
    let mut s = String::new();
    for (name, l) in OUTPUT_CLASSES.iter().zip(l) {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&format!("{name} {} {} {}", l.hard, l.soft, l.soft_secs));
    }
    s
}

/// Parse "class hard soft seconds [class hard soft seconds ...]" (one argument or several words) onto the
/// current limits, as Redis does: all or nothing.
fn parse_output_limits(
    args: &[String],
    cur: &[OutputLimit; 3],
) -> Result<[OutputLimit; 3], String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = *cur;
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "replica" | "slave" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory(w[1]).ok_or_else(bad)?;
        let soft = parse_memory(w[2]).ok_or_else(bad)?;
        let secs: i64 = w[3].parse().map_err(|_| bad())?;
        if secs < 0 {
            return Err(bad().into());
        }
        out[class] = OutputLimit {
            hard,
            soft,
            soft_secs: secs as u64,
        };
    }
    Ok(out)
}

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];

pub static DIRECTIVES: &[Directive] = &[
    Directive {
        name: "port",
        aliases: &[],
        mutable: false,
        get: |c| c.port.to_string(),
        set: |c, a| {
            c.port = int_in(a, 0, 65535)? as u16;
            Ok(())
        },
    },
    Directive {
        name: "bind",
        aliases: &[],
        mutable: false,
        get: |c| c.bind.join(" "),
        set: |c, a| {
            if a.is_empty() {
                return Err("wrong number of arguments".into());
            }
            c.bind = a.to_vec();
            Ok(())
        },
    },
    Directive {
        name: "unixsocket",
        aliases: &[],
        mutable: false,
        get: |c| c.unixsocket.clone(),
        set: |c, a| {
            c.unixsocket = one(a)?.to_string();
            Ok(())
        },
    },
    Directive {
        name: "unixsocketperm",
        aliases: &[],
        mutable: false,
        get: |c| format!("{:o}", c.unixsocketperm),
        set: |c, a| {
            c.unixsocketperm = u32::from_str_radix(one(a)?, 8)
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            Ok(())
        },
    },
    Directive {
        name: "databases",
        aliases: &[],
        mutable: false,
        get: |c| c.databases.to_string(),
        set: |c, a| {
            c.databases = int_in(a, 1, i32::MAX as i64)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "requirepass",
        aliases: &[],
        mutable: true,
        get: |c| {
            c.requirepass
                .as_deref()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default()
        },
        set: |c, a| {
            let v = one(a)?;
            c.requirepass = (!v.is_empty()).then(|| v.as_bytes().to_vec());
            Ok(())
        },
    },
    Directive {
        name: "tracking-table-max-keys",
        aliases: &[],
        mutable: true,
        get: |c| c.tracking_table_max_keys.to_string(),
        set: |c, a| {
            c.tracking_table_max_keys = int_in(a, 0, i64::MAX)? as u64;
            Ok(())
        },
    },
    Directive {
        name: "save",
        aliases: &[],
        mutable: true,
        get: |c| {
            c.persist
                .save
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
        set: |c, a| {
            c.persist.save = parse_save(a)?;
            Ok(())
        },
    },
    Directive {
        name: "dbfilename",
        aliases: &[],
        mutable: true,
        get: |c| c.persist.dbfilename.clone(),
        set: |c, a| {
            let v = one(a)?;
            if v.is_empty() || v.contains('/') {
                return Err("dbfilename can't be a path, just a filename".into());
            }
            c.persist.dbfilename = v.to_string();
            Ok(())
        },
    },
    Directive {
        name: "rdbcompression",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.rdbcompression),
        set: |c, a| {
            c.persist.rdbcompression = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "rdbchecksum",
        aliases: &[],
        mutable: false,
        get: |c| bool_str(c.persist.rdbchecksum),
        set: |c, a| {
            c.persist.rdbchecksum = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "stop-writes-on-bgsave-error",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.stop_writes_on_bgsave_error),
        set: |c, a| {
            c.persist.stop_writes_on_bgsave_error = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "appendonly",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.appendonly),
        set: |c, a| {
            c.persist.appendonly = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "appendfilename",
        aliases: &[],
        mutable: false,
        get: |c| c.persist.appendfilename.clone(),
        set: |c, a| {
            let v = one(a)?;
            if v.is_empty() || v.contains('/') {
                return Err("appendfilename can't be a path, just a filename".into());
            }
            c.persist.appendfilename = v.to_string();
            Ok(())
        },
    },
    Directive {
        name: "appenddirname",
        aliases: &[],
        mutable: false,
        get: |c| c.persist.appenddirname.clone(),
        set: |c, a| {
            let v = one(a)?;
            if v.is_empty() || v.contains('/') {
                return Err("appenddirname can't be a path, just a dirname".into());
            }
            c.persist.appenddirname = v.to_string();
            Ok(())
        },
    },
    Directive {
        name: "appendfsync",
        aliases: &[],
        mutable: true,
        get: |c| c.persist.appendfsync.clone(),
        set: |c, a| {
            let v = one(a)?.to_ascii_lowercase();
            if !["always", "everysec", "no"].contains(&v.as_str()) {
                return Err(
                    "argument(s) must be one of the following: always, everysec, no".into(),
                );
            }
            c.persist.appendfsync = v;
            Ok(())
        },
    },
    Directive {
        name: "aof-use-rdb-preamble",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.aof_use_rdb_preamble),
        set: |c, a| {
            c.persist.aof_use_rdb_preamble = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "auto-aof-rewrite-percentage",
        aliases: &[],
        mutable: true,
        get: |c| c.persist.auto_aof_rewrite_percentage.to_string(),
        set: |c, a| {
            c.persist.auto_aof_rewrite_percentage = int_in(a, 0, i32::MAX as i64)? as u64;
            Ok(())
        },
    },
    Directive {
        name: "auto-aof-rewrite-min-size",
        aliases: &[],
        mutable: true,
        get: |c| c.persist.auto_aof_rewrite_min_size.to_string(),
        set: |c, a| {
            c.persist.auto_aof_rewrite_min_size =
                parse_memory(one(a)?).ok_or("argument must be a memory value")?;
            Ok(())
        },
    },
    Directive {
        name: "aof-load-truncated",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.aof_load_truncated),
        set: |c, a| {
            c.persist.aof_load_truncated = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "aof-timestamp-enabled",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.aof_timestamp_enabled),
        set: |c, a| {
            c.persist.aof_timestamp_enabled = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "no-appendfsync-on-rewrite",
        aliases: &[],
        mutable: true,
        get: |c| bool_str(c.persist.no_appendfsync_on_rewrite),
        set: |c, a| {
            c.persist.no_appendfsync_on_rewrite = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "busy-reply-threshold",
        aliases: &["lua-time-limit"],
        mutable: true,
        get: |c| c.busy_reply_threshold.to_string(),
        set: |c, a| {
            c.busy_reply_threshold = int_in(a, 0, i64::MAX)? as u64;
            Ok(())
        },
    },
    Directive {
        name: "maxclients",
        aliases: &[],
        mutable: true,
        get: |c| c.maxclients.to_string(),
        set: |c, a| {
            c.maxclients = int_in(a, 1, i32::MAX as i64)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "timeout",
        aliases: &[],
        mutable: true,
        get: |c| c.timeout.to_string(),
        set: |c, a| {
            c.timeout = int_in(a, 0, i32::MAX as i64)? as u64;
            Ok(())
        },
    },
    Directive {
        name: "tcp-keepalive",
        aliases: &[],
        mutable: true,
        get: |c| c.tcp_keepalive.to_string(),
        set: |c, a| {
            c.tcp_keepalive = int_in(a, 0, i32::MAX as i64)? as u64;
            Ok(())
        },
    },
    Directive {
        name: "loglevel",
        aliases: &[],
        mutable: true,
        get: |c| c.loglevel.clone(),
        set: |c, a| {
            let v = one(a)?.to_ascii_lowercase();
            if !LOGLEVELS.contains(&v.as_str()) {
                return Err("argument(s) must be one of the following: debug, verbose, notice, warning, nothing".into());
            }
            c.loglevel = v;
            Ok(())
        },
    },
    Directive {
        name: "logfile",
        aliases: &[],
        mutable: false,
        get: |c| c.logfile.clone(),
        set: |c, a| {
            c.logfile = one(a)?.to_string();
            Ok(())
        },
    },
    Directive {
        name: "dir",
        aliases: &[],
        mutable: true,
        get: |c| c.dir.clone(),
        // Only checks the directory and records its full path; the process changes its working directory
        // when the whole change is applied (`Config::apply`, `Config::set_all`).
        set: |c, a| {
            let p = std::fs::canonicalize(one(a)?).map_err(|e| os_error_text(&e))?;
            if !p.is_dir() {
                return Err(os_error_text(&std::io::Error::from_raw_os_error(
                    libc::ENOTDIR,
                )));
            }
            c.dir = p.display().to_string();
            Ok(())
        },
    },
    Directive {
        name: "protected-mode",
        aliases: &[],
        mutable: true,
        get: |c| if c.protected_mode { "yes" } else { "no" }.into(),
        set: |c, a| {
            c.protected_mode = yes_no(a)?;
            Ok(())
        },
    },
    Directive {
        name: "threads",
        aliases: &["io-threads", "worker-threads"],
        mutable: false,
        get: |c| c.threads.to_string(),
        set: |c, a| {
            c.threads = int_in(a, 1, 1024)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "hz",
        aliases: &[],
        mutable: true,
        get: |c| c.hz.to_string(),
        set: |c, a| {
            c.hz = int_in(a, 0, i32::MAX as i64)?.clamp(1, 500) as u32;
            Ok(())
        },
    },
    Directive {
        name: "proto-max-bulk-len",
        aliases: &[],
        mutable: true,
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, a| {
            let v = memory(a)?;
            if v < 1024 * 1024 {
                return Err(
                    "argument must be between 1048576 and 9223372036854775807 inclusive".into(),
                );
            }
            c.proto_max_bulk_len = v;
            Ok(())
        },
    },
    Directive {
        name: "hll-sparse-max-bytes",
        aliases: &[],
        mutable: true,
        get: |c| c.hll_sparse_max_bytes.to_string(),
        set: |c, a| {
            let v = memory(a)?;
            if v > i64::MAX as u64 {
                return Err("argument must be between 0 and 9223372036854775807 inclusive".into());
            }
            c.hll_sparse_max_bytes = v;
            Ok(())
        },
    },
    Directive {
        name: "client-query-buffer-limit",
        aliases: &[],
        mutable: true,
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, a| {
            let v = memory(a)?;
            if v < 1024 * 1024 {
                return Err(
                    "argument must be between 1048576 and 9223372036854775807 inclusive".into(),
                );
            }
            c.client_query_buffer_limit = v;
            Ok(())
        },
    },
    Directive {
        name: "maxmemory",
        aliases: &[],
        mutable: true,
        get: |c| c.maxmemory.to_string(),
        set: |c, a| {
            c.maxmemory = memory(a)?;
            Ok(())
        },
    },
    Directive {
        name: "maxmemory-policy",
        aliases: &[],
        mutable: true,
        get: |c| c.maxmemory_policy.clone(),
        set: |c, a| {
            let v = one(a)?.to_ascii_lowercase();
            if !MEMORY_POLICIES.contains(&v.as_str()) {
                return Err("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".into());
            }
            c.maxmemory_policy = v;
            Ok(())
        },
    },
    Directive {
        name: "enable-debug-command",
        aliases: &[],
        mutable: false,
        get: |c| c.enable_debug_command.as_str().into(),
        set: |c, a| {
            c.enable_debug_command = Permit::parse(a)?;
            Ok(())
        },
    },
    Directive {
        name: "enable-protected-configs",
        aliases: &[],
        mutable: false,
        get: |c| c.enable_protected_configs.as_str().into(),
        set: |c, a| {
            c.enable_protected_configs = Permit::parse(a)?;
            Ok(())
        },
    },
    Directive {
        name: "enable-module-command",
        aliases: &[],
        mutable: false,
        get: |c| c.enable_module_command.as_str().into(),
        set: |c, a| {
            c.enable_module_command = Permit::parse(a)?;
            Ok(())
        },
    },
    Directive {
        name: "notify-keyspace-events",
        aliases: &[],
        mutable: true,
        get: |c| crate::events::flags_to_string(c.notify_keyspace_events),
        set: |c, a| {
            c.notify_keyspace_events = crate::events::parse_flags(one(a)?).ok_or_else(|| {
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()
            })?;
            Ok(())
        },
    },
    Directive {
        name: "client-output-buffer-limit",
        aliases: &[],
        mutable: true,
        get: |c| output_limits_string(&c.client_output_buffer_limit),
        set: |c, a| {
            c.client_output_buffer_limit = parse_output_limits(a, &c.client_output_buffer_limit)?;
            Ok(())
        },
    },
    Directive {
        name: "hash-max-listpack-entries",
        aliases: &["hash-max-ziplist-entries"],
        mutable: true,
        get: |c| c.encoding.hash_max_listpack_entries.to_string(),
        set: |c, a| {
            c.encoding.hash_max_listpack_entries = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "hash-max-listpack-value",
        aliases: &["hash-max-ziplist-value"],
        mutable: true,
        get: |c| c.encoding.hash_max_listpack_value.to_string(),
        set: |c, a| {
            c.encoding.hash_max_listpack_value = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "set-max-intset-entries",
        aliases: &[],
        mutable: true,
        get: |c| c.encoding.set_max_intset_entries.to_string(),
        set: |c, a| {
            c.encoding.set_max_intset_entries = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "set-max-listpack-entries",
        aliases: &[],
        mutable: true,
        get: |c| c.encoding.set_max_listpack_entries.to_string(),
        set: |c, a| {
            c.encoding.set_max_listpack_entries = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "set-max-listpack-value",
        aliases: &[],
        mutable: true,
        get: |c| c.encoding.set_max_listpack_value.to_string(),
        set: |c, a| {
            c.encoding.set_max_listpack_value = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "zset-max-listpack-entries",
        aliases: &["zset-max-ziplist-entries"],
        mutable: true,
        get: |c| c.encoding.zset_max_listpack_entries.to_string(),
        set: |c, a| {
            c.encoding.zset_max_listpack_entries = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "zset-max-listpack-value",
        aliases: &["zset-max-ziplist-value"],
        mutable: true,
        get: |c| c.encoding.zset_max_listpack_value.to_string(),
        set: |c, a| {
            c.encoding.zset_max_listpack_value = int_in(a, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Directive {
        name: "list-max-listpack-size",
        aliases: &["list-max-ziplist-size"],
        mutable: true,
        get: |c| c.encoding.list_max_listpack_size.to_string(),
        set: |c, a| {
            c.encoding.list_max_listpack_size = int_in(a, i32::MIN as i64, i32::MAX as i64)?;
            Ok(())
        },
    },
];

pub fn find_directive(name: &str) -> Option<&'static Directive> {
    let l = name.to_ascii_lowercase();
    DIRECTIVES
        .iter()
        .find(|d| d.name == l || d.aliases.contains(&l.as_str()))
}

/// Split a config line like Redis's sdssplitargs (quotes and escapes).
pub fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut p = ferrodis_protocol::RequestParser::new(ferrodis_protocol::Limits::default());
    let mut buf = line.as_bytes().to_vec();
    buf.push(b'\n');
    match p.parse(&buf) {
        Ok(Some(_)) => Ok(p
            .args(&buf)
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()),
        _ => Err("Unbalanced quotes in configuration line".into()),
    }
}

/// A fatal configuration error, printed like Redis's "FATAL CONFIG FILE ERROR" block.
#[derive(Debug)]
pub struct ConfigError(pub String);

/// An OS error as C's strerror writes it (Redis's texts), without Rust's " (os error N)".
fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Make `dir` the process's working directory, as Redis does.
fn change_dir(dir: &str) -> Result<(), String> {
    std::env::set_current_dir(dir).map_err(|e| os_error_text(&e))
}

/// CONFIG SET's error about one argument.
fn set_failed(name: &str, why: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
}

impl Config {
    /// One config-file line (or flag). `dir` takes effect at once, as in Redis.
    fn apply(&mut self, args: &[String]) -> Result<(), String> {
        let Some(d) = find_directive(&args[0]) else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        (d.set)(self, &args[1..])?;
        if d.name == "dir" {
            change_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Apply a config file's text. `source` names it in error messages.
    pub fn load_text(&mut self, text: &str, source: &str) -> Result<(), ConfigError> {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |msg: String| {
                ConfigError(format!(
                    "\n*** FATAL CONFIG FILE ERROR (Ferrodis {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}\n(in {})",
                    env!("CARGO_PKG_VERSION"),
                    n + 1,
                    line,
                    msg,
                    source
                ))
            };
            let args = split_line(line).map_err(fail)?;
            if args.is_empty() {
                continue;
            }
            if args[0].eq_ignore_ascii_case("include") {
                let path = args
                    .get(1)
                    .ok_or_else(|| fail("include needs a path".into()))?;
                let inc = std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("can't open included file: {e}")))?;
                self.load_text(&inc, path)?;
                continue;
            }
            self.apply(&args).map_err(fail)?;
        }
        Ok(())
    }

    /// Build a config from the command line: `ferrodis [config-file] [--directive args ...]`.
    pub fn from_args(argv: &[String]) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut rest = argv;
        if let Some(first) = argv.first() {
            if !first.starts_with("--") {
                let text = if first == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                        .map_err(|e| ConfigError(e.to_string()))?;
                    s
                } else {
                    std::fs::read_to_string(first).map_err(|e| {
                        ConfigError(format!(
                            "Fatal error, can't open config file '{first}': {e}"
                        ))
                    })?
                };
                cfg.config_file = (first != "-")
                    .then(|| std::fs::canonicalize(first).unwrap_or_else(|_| first.into()));
                cfg.load_text(&text, first)?;
                rest = &argv[1..];
            }
        }
        // Flags: "--port 7000 --bind a b" becomes the config lines "port 7000" and "bind a b".
        let mut text = String::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(name);
            } else {
                text.push(' ');
                text.push_str(&quote(a));
            }
        }
        cfg.load_text(&text, "command line")?;
        Ok(cfg)
    }

    /// CONFIG SET with one pair, as a client allowed to change protected directives.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.set_all(&[(name.to_string(), value.to_string())], true)
            .map(drop)
    }

    /// CONFIG SET name value [name value ...], all or nothing, as Redis 7 does it:
    /// 1. every name is checked in order (unknown, immutable, protected unless `protected_ok`, repeated);
    ///    the first problem is the error;
    /// 2. the values are set in order on a copy; the first invalid one is the error;
    /// 3. what lives outside `Config` is applied (the working directory); if that fails nothing changed.
    ///
    /// On success `self` holds the new settings and the old ones are returned, for [`Config::restore`]
    /// when a later step (the server's own apply) fails. On error `self` is unchanged.
    pub fn set_all(
        &mut self,
        pairs: &[(String, String)],
        protected_ok: bool,
    ) -> Result<Config, String> {
        let mut seen: Vec<String> = Vec::with_capacity(pairs.len());
        for (name, _) in pairs {
            let Some(d) = find_directive(name) else {
                return Err(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ));
            };
            if !d.mutable {
                return Err(set_failed(name, "can't set immutable config"));
            }
            if d.protected() && !protected_ok {
                return Err(set_failed(name, "can't set protected config"));
            }
            // Redis tells a directive from its alias here: "lua-time-limit 1 busy-reply-threshold 2" is
            // accepted (the last one wins), the same name twice (in any case) is not.
            let lower = name.to_ascii_lowercase();
            if seen.contains(&lower) {
                return Err(set_failed(name, "duplicate parameter"));
            }
            seen.push(lower);
        }
        let mut new = self.clone();
        let mut dir_name = None;
        for (name, value) in pairs {
            let d = find_directive(name).expect("checked above");
            let args = if d.name == "bind" {
                value.split_whitespace().map(String::from).collect()
            } else {
                vec![value.to_string()]
            };
            (d.set)(&mut new, &args).map_err(|e| set_failed(name, &e))?;
            if d.name == "dir" {
                dir_name = Some(name);
            }
        }
        if let Some(name) = dir_name {
            if new.dir != self.dir {
                change_dir(&new.dir).map_err(|e| set_failed(name, &e))?;
            }
        }
        Ok(std::mem::replace(self, new))
    }

    /// Undo a [`Config::set_all`]: put `old` back, working directory included.
    pub fn restore(&mut self, old: Config) {
        if old.dir != self.dir {
            if let Err(e) = change_dir(&old.dir) {
                crate::log::warning(&format!(
                    "Can't change the working directory back to {}: {e}",
                    old.dir
                ));
            }
        }
        *self = old;
    }

    /// CONFIG REWRITE: rewrite the config file with the current values of the directives that differ from
    /// the defaults, keeping comments and unrelated lines.
    pub fn rewrite(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Err("ERR The server is running without a config file".into());
        };
        let old = std::fs::read_to_string(path).unwrap_or_default();
        let defaults = Config::default();
        let mut out = Vec::new();
        let mut done = std::collections::HashSet::new();
        for line in old.lines() {
            let t = line.trim();
            let name = t.split_whitespace().next().unwrap_or("");
            match find_directive(name) {
                Some(d) if !t.starts_with('#') => {
                    if done.insert(d.name) {
                        out.push(format!("{} {}", d.name, quote(&(d.get)(self))));
                    }
                }
                _ => out.push(line.to_string()),
            }
        }
        for d in DIRECTIVES {
            if !done.contains(d.name) && (d.get)(self) != (d.get)(&defaults) {
                out.push(format!("{} {}", d.name, quote(&(d.get)(self))));
            }
        }
        let tmp = path.with_extension("rewrite.tmp");
        let mut text = out.join("\n");
        text.push('\n');
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("ERR Rewriting config file: {e}"))
    }
}

/// Quote a value for a config line when it needs it.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\')
    {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_and_file() {
        let c = Config::from_args(&args(&[
            "--port",
            "7000",
            "--bind",
            "127.0.0.1",
            "::1",
            "--requirepass",
            "s e",
        ]))
        .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.requirepass.as_deref(), Some(&b"s e"[..]));
        let mut c = Config::default();
        c.load_text("# c\nport 7001\nmaxmemory 1mb\n", "t").unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.maxmemory, 1 << 20);
        let e = c.load_text("port 1\nfoo bar\n", "x.conf").unwrap_err();
        assert!(e.0.contains("at line 2"), "{}", e.0);
        assert!(e.0.contains("Bad directive"), "{}", e.0);
    }

    #[test]
    fn config_set_errors() {
        let mut c = Config::default();
        assert!(c.set("port", "1").unwrap_err().contains("immutable"));
        assert!(c.set("nosuch", "1").unwrap_err().contains("Unknown option"));
        assert!(c.set("maxclients", "x").is_err());
        c.set("maxmemory", "2gb").unwrap();
        assert_eq!(c.maxmemory, 2 << 30);
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn get(c: &Config, name: &str) -> String {
        (find_directive(name).unwrap().get)(c)
    }

    #[test]
    fn protection_directives() {
        let c = Config::default();
        for name in [
            "enable-debug-command",
            "enable-protected-configs",
            "enable-module-command",
        ] {
            assert_eq!(get(&c, name), "no");
            assert!(!find_directive(name).unwrap().mutable);
        }
        let c = Config::from_args(&args(&[
            "--enable-debug-command",
            "LOCAL",
            "--enable-protected-configs",
            "yes",
            "--enable-module-command",
            "local",
        ]))
        .unwrap();
        assert_eq!(c.enable_debug_command, Permit::Local);
        assert_eq!(c.enable_protected_configs, Permit::Yes);
        assert_eq!(get(&c, "enable-module-command"), "local");
        let e = Config::default()
            .load_text("enable-debug-command maybe\n", "t")
            .unwrap_err();
        assert!(
            e.0.contains("argument(s) must be one of the following: no, yes, local"),
            "{}",
            e.0
        );
        assert!(Permit::Yes.allows(false) && Permit::Local.allows(true));
        assert!(!Permit::Local.allows(false) && !Permit::No.allows(true));
        let protected: Vec<&str> = DIRECTIVES
            .iter()
            .filter(|d| d.protected())
            .map(|d| d.name)
            .collect();
        assert_eq!(protected, ["dbfilename", "dir"]);
    }

    #[test]
    fn set_all_checks_everything_first() {
        let mut c = Config::default();
        let before = format!("{c:?}");
        let fails =
            |c: &mut Config, p: &[(&str, &str)], ok: bool| c.set_all(&pairs(p), ok).unwrap_err();
        assert_eq!(
            fails(&mut c, &[("dir", "/tmp")], false),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
        );
        assert_eq!(
            fails(&mut c, &[("timeout", "1"), ("dbfilename", "x")], false),
            "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config"
        );
        // The first problem in argument order wins; names before values.
        assert_eq!(
            fails(
                &mut c,
                &[("timeout", "x"), ("nosuch", "1"), ("port", "1")],
                true
            ),
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
        );
        assert_eq!(
            fails(&mut c, &[("databases", "1"), ("nosuch", "1")], true),
            "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
        );
        assert_eq!(
            fails(&mut c, &[("hz", "5"), ("Hz", "6"), ("nosuch", "1")], true),
            "ERR CONFIG SET failed (possibly related to argument 'Hz') - duplicate parameter"
        );
        assert_eq!(
            fails(&mut c, &[("timeout", "5"), ("hash-max-ziplist-entries", "x")], true),
            "ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-entries') - argument couldn't be parsed into an integer"
        );
        assert_eq!(
            fails(&mut c, &[("timeout", "5"), ("dir", "/nonexistent/ferrodis")], true),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory"
        );
        let file = std::env::current_exe().unwrap();
        assert_eq!(
            fails(&mut c, &[("dir", file.to_str().unwrap())], true),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - Not a directory"
        );
        assert_eq!(
            format!("{c:?}"),
            before,
            "a failed CONFIG SET changed nothing"
        );
        // A directive and its alias may both appear; the last one wins.
        let old = c
            .set_all(
                &pairs(&[
                    ("busy-reply-threshold", "1"),
                    ("lua-time-limit", "2"),
                    ("timeout", "3"),
                ]),
                false,
            )
            .unwrap();
        assert_eq!((c.busy_reply_threshold, c.timeout), (2, 3));
        assert_eq!(format!("{old:?}"), before);
        c.restore(old);
        assert_eq!(format!("{c:?}"), before);
    }

    #[test]
    fn output_buffer_limits() {
        let mut c = Config::default();
        let get = |c: &Config| (find_directive("client-output-buffer-limit").unwrap().get)(c);
        assert_eq!(
            get(&c),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        c.set(
            "client-output-buffer-limit",
            "pubsub 1mb 512kb 5 normal 1 2 3",
        )
        .unwrap();
        assert_eq!(
            get(&c),
            "normal 1 2 3 slave 268435456 67108864 60 pubsub 1048576 524288 5"
        );
        assert!(c
            .set("client-output-buffer-limit", "pubsub 1 2")
            .unwrap_err()
            .contains("Wrong number of arguments in buffer limit configuration."));
        assert!(c
            .set("client-output-buffer-limit", "master 1 2 3")
            .unwrap_err()
            .contains("Invalid client class"));
        assert!(c
            .set("client-output-buffer-limit", "pubsub x 2 3")
            .unwrap_err()
            .contains("Error in hard, soft"));
        c.load_text("client-output-buffer-limit replica 1 2 3\n", "t")
            .unwrap();
        assert_eq!(c.client_output_buffer_limit[1].hard, 1);
    }
}
