//! Serialization commands: DUMP and RESTORE (RDB payloads), and the persistence commands.

use super::Command;

pub static COMMANDS: &[Command] = &[];
