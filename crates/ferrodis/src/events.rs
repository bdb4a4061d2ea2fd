//! Key events and the `notify-keyspace-events` flags: what a write records ([`KeyEvent`]) and the event
//! classes, parsed and printed as CONFIG shows them. Plain data, below the server state: [`crate::notify`]
//! delivers the events, [`crate::config`] parses the flags, the server keeps them.

/// One modification of a key, with Redis's keyspace event name ("set", "del", "lpush", "expired", ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    pub db: usize,
    pub key: Vec<u8>,
    pub event: &'static str,
}

// Event classes and channels of `notify-keyspace-events`.
pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m
pub const MODULE: u32 = 1 << 13; // d
pub const NEW: u32 = 1 << 14; // n
/// What `A` stands for (key-miss and new-key events are not included, as in Redis).
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The event name of a change that WATCH and client tracking must see but that sends no keyspace
/// notification (PFCOUNT storing its cached cardinality, as Redis signals the key without notifying).
pub const NO_NOTIFICATION: &str = "";

/// Parse the flag letters of `notify-keyspace-events`; None on an unknown letter.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The canonical form CONFIG GET prints: classes (or `A`), then K, E, m.
pub fn flags_to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Whether these flags produce any notification at all (a channel kind and a class).
pub fn active(f: u32) -> bool {
    f & (KEYSPACE | KEYEVENT) != 0 && f & !(KEYSPACE | KEYEVENT) != 0
}

/// The class Redis files an event under.
pub fn class_of(event: &str) -> u32 {
    match event {
        NO_NOTIFICATION => 0,
        "expired" => EXPIRED,
        "evicted" => EVICTED,
        "keymiss" => KEY_MISS,
        "new" => NEW,
        "del" | "expire" | "rename_from" | "rename_to" | "copy_to" | "move_from" | "move_to"
        | "persist" | "restore" => GENERIC,
        "set" | "setrange" | "incrby" | "incrbyfloat" | "append" | "setbit" | "pfadd" => STRING,
        "lpush" | "rpush" | "lpop" | "rpop" | "linsert" | "lset" | "lrem" | "ltrim" | "lmove"
        | "sortstore" => LIST,
        "sadd" | "srem" | "spop" | "sinterstore" | "sunionstore" | "sdiffstore" => SET,
        "hset" | "hdel" | "hincrby" | "hincrbyfloat" | "hexpire" | "hexpired" | "hpersist" => HASH,
        "zadd" | "zincr" | "zrem" | "zremrangebyscore" | "zremrangebyrank" | "zremrangebylex"
        | "zpopmin" | "zpopmax" | "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore"
        | "georadiusstore" => ZSET,
        e if e.starts_with('x') => STREAM,
        _ => GENERIC,
    }
}
