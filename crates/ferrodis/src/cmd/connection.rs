//! Connection commands: PING, ECHO, SELECT, HELLO, AUTH, CLIENT, QUIT, RESET.

use super::{flags::*, CmdResult, Command, Ctx};
use crate::cmd::acl;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[Command {
    name: "ping",
    arity: -1,
    flags: FAST,
    acl: acl::CONNECTION,
    handler: ping,
    group: "connection",
    since: "1.0.0",
    summary: "Returns the server's liveliness response.",
    complexity: "O(1)",
    syntax: "[message]",
    tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
    ..Command::DEFAULT
}];

fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        1 => ctx.reply().simple("PONG"),
        2 => ctx.reply().bulk(args.get(1)),
        _ => return Err("ERR wrong number of arguments for 'ping' command".into()),
    }
    Ok(())
}
