//! Value types stored in the keyspace. Each data type lives in its own module as a plain Rust type with unit
//! tests; nothing here knows about sockets, locks or the command table.
//!
//! Also the small utilities every layer above uses and that depend on nothing of the server: [`mem`]
//! (allocation guards), [`glob`] (Redis glob matching), [`log`] (log lines; the server sets the level) and
//! [`clock`] (the wall clock).

pub mod clock;
pub mod glob;
pub mod log;
pub mod mem;

pub mod dict;
pub mod hash;
pub mod list;
pub mod set;
pub mod stream;
pub mod strings;
pub mod zset;

/// A non-inline value. Small strings never reach this type: they are packed into the keyspace entry.
#[derive(Clone, Debug)]
pub enum Value {
    Str(Vec<u8>),
    Hash(Box<hash::Hash>),
    List(Box<list::List>),
    Set(Box<set::Set>),
    ZSet(Box<zset::ZSet>),
    Stream(Box<stream::Stream>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports for a collection (strings are decided by the keyspace entry).
    pub fn collection_encoding(&self) -> &'static str {
        match self {
            Value::Str(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }
}

/// Thresholds for compact encodings (Redis's *-max-listpack-* / set-max-intset-entries directives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingLimits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// list-max-listpack-size: > 0 entries per node, < 0 size class (-1 = 4 KB ... -5 = 64 KB).
    pub list_max_listpack_size: i64,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
        }
    }
}
