//! Value types stored in the keyspace. Each data type lives in its own module as a plain Rust type with unit
//! tests; nothing here knows about sockets, locks or the command table.

pub mod strings;

/// A non-inline value. Small strings never reach this type: they are packed into the keyspace entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }
}
