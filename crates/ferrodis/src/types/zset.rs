//! The zset value type (placeholder: being written).

#[derive(Clone, Debug, Default)]
pub struct ZSet {}

impl ZSet {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
