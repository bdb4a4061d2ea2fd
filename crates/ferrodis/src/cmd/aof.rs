//! AOF commands: BGREWRITEAOF (see crate::persist::aof).

use super::{flags::*, CmdResult, Command, Ctx};
use crate::persist::aof;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[Command {
    name: "bgrewriteaof",
    arity: 1,
    flags: ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
    handler: bgrewriteaof,
    group: "server",
    since: "1.0.0",
    summary: "Asynchronously rewrites the append-only file to disk.",
    complexity: "O(1)",
    ..Command::DEFAULT
}];

fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    match aof::bgrewrite(ctx.srv) {
        Err(e) => Err(e.into()),
        Ok(true) => {
            ctx.reply()
                .simple("Background append only file rewriting started");
            Ok(())
        }
        Ok(false) => {
            ctx.reply()
                .simple("Background append only file rewriting scheduled");
            Ok(())
        }
    }
}
