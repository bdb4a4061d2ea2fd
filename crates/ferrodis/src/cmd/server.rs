//! Server and admin commands: COMMAND, INFO, CONFIG, DEBUG, DBSIZE, FLUSHDB, FLUSHALL, TIME, SHUTDOWN.

use super::Command;

pub static COMMANDS: &[Command] = &[];
