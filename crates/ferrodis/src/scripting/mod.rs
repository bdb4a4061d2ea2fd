//! Lua scripting (EVAL and FUNCTION): the Lua 5.1 environment Redis provides, conversions between Lua values
//! and RESP replies, the script cache and the function libraries.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};

/// Shared scripting state (one per server).
#[derive(Default)]
pub struct Scripting {
    /// Set while a script has run past `busy-reply-threshold`: 0 = none, [`BUSY_EVAL`] or
    /// [`BUSY_FUNCTION`]. Other clients' commands (except those flagged allow-busy) get a BUSY error.
    pub busy: AtomicU8,
    /// SCRIPT KILL / FUNCTION KILL asked the busy script to stop.
    pub kill: AtomicBool,
}

pub const BUSY_EVAL: u8 = 1;
pub const BUSY_FUNCTION: u8 = 2;

impl Scripting {
    pub fn new() -> Self {
        Self::default()
    }

    /// The error other clients get while a script is busy, if one is.
    #[inline]
    pub fn busy_error(&self) -> Option<&'static str> {
        match self.busy.load(Relaxed) {
            0 => None,
            BUSY_EVAL => Some(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            ),
            _ => Some(
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
            ),
        }
    }
}
