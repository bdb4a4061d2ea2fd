//! The hash value type (placeholder: being written).

#[derive(Clone, Debug, Default)]
pub struct Hash {}

impl Hash {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
