//! Client-side caching (CLIENT TRACKING): being written.

use crate::client::Client;
use crate::cmd::Command;
use crate::notify::KeyEvent;
use crate::server::Server;
use ferrodis_protocol::Args;

/// A client's tracking settings (mode, redirect, prefixes, caching flags).
#[derive(Debug, Default)]
pub struct Tracking {}

/// Record the keys a read-only command of a tracking client read.
pub fn note_read(srv: &Server, client: &mut Client, cmd: &Command, args: &Args<'_>) {
    let _ = (srv, client, cmd, args);
}

/// Send invalidations for keys a command modified (`writer` is the client that wrote them: NOLOOP).
pub fn invalidate(srv: &Server, writer: &Client, events: &[KeyEvent]) {
    let _ = (srv, writer, events);
}
