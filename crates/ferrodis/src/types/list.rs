//! The list value type (placeholder: being written).

#[derive(Clone, Debug, Default)]
pub struct List {}

impl List {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
}
