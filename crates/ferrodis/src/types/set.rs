//! The set value type (placeholder: being written).

#[derive(Clone, Debug, Default)]
pub struct Set {}

impl Set {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
