//! Generic key commands.

use super::{flags::*, CmdResult, Command, Ctx, KeySpec};
use crate::cmd::acl;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[Command {
    name: "del",
    arity: -2,
    flags: WRITE,
    acl: acl::KEYSPACE,
    keys: KeySpec {
        first: 1,
        last: -1,
        step: 1,
    },
    handler: del,
    group: "generic",
    since: "1.0.0",
    summary: "Deletes one or more keys.",
    complexity: "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
    syntax: "key [key ...]",
    tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
    ..Command::DEFAULT
}];

fn del(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let keys = args.skip(1);
    let mut guard = ctx.srv.keyspace.lock_many(keys.iter());
    let mut n = 0;
    for k in keys.iter() {
        let shard = guard.shard(k);
        if ctx.lookup_write(shard, k).is_some() && shard.db_mut(ctx.client.db).remove(k).is_some() {
            n += 1;
            ctx.modified(k, "del");
        }
    }
    drop(guard);
    ctx.reply().int(n);
    Ok(())
}
