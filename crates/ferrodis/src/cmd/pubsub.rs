//! Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, SSUBSCRIBE, SUNSUBSCRIBE,
//! SPUBLISH and the PUBSUB container. The registry lives in crate::pubsub.
//!
//! Confirmations are written to the reply buffer as RESP2 arrays / RESP3 pushes; messages travel through
//! the receivers' outboxes.

use super::argv::Argv;
use super::spec::{self, NOT_KEY};
use super::{flags::*, CmdResult, Command, Ctx};
use crate::pubsub::Kind;
use ferrodis_protocol::Args;
use std::sync::atomic::Ordering::Relaxed;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "subscribe",
        arity: -2,
        flags: PUBSUB | NOSCRIPT | LOADING | STALE,
        handler: subscribe,
        group: "pubsub",
        since: "2.0.0",
        summary: "Listens for messages published to channels.",
        complexity: "O(N) where N is the number of channels to subscribe to.",
        syntax: "channel ...",
        ..Command::DEFAULT
    },
    Command {
        name: "unsubscribe",
        arity: -1,
        flags: PUBSUB | NOSCRIPT | LOADING | STALE,
        handler: unsubscribe,
        group: "pubsub",
        since: "2.0.0",
        summary: "Stops listening to messages posted to channels.",
        complexity: "O(N) where N is the number of channels to unsubscribe.",
        syntax: "[channel ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "psubscribe",
        arity: -2,
        flags: PUBSUB | NOSCRIPT | LOADING | STALE,
        handler: psubscribe,
        group: "pubsub",
        since: "2.0.0",
        summary: "Listens for messages published to channels that match one or more patterns.",
        complexity: "O(N) where N is the number of patterns to subscribe to.",
        syntax: "pattern:pattern ...",
        ..Command::DEFAULT
    },
    Command {
        name: "punsubscribe",
        arity: -1,
        flags: PUBSUB | NOSCRIPT | LOADING | STALE,
        handler: punsubscribe,
        group: "pubsub",
        since: "2.0.0",
        summary: "Stops listening to messages published to channels that match one or more patterns.",
        complexity: "O(N) where N is the number of patterns to unsubscribe.",
        syntax: "[pattern:pattern ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "publish",
        arity: 3,
        flags: PUBSUB | LOADING | STALE | FAST,
        handler: publish,
        group: "pubsub",
        since: "2.0.0",
        summary: "Posts a message to a channel.",
        complexity: "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        syntax: "channel message",
        ..Command::DEFAULT
    },
    Command {
        name: "ssubscribe",
        arity: -2,
        flags: PUBSUB | NOSCRIPT | LOADING | STALE,
        keys: &[spec::index(1).range(-1, 1, 0).flags(NOT_KEY)],
        handler: ssubscribe,
        group: "pubsub",
        since: "7.0.0",
        summary: "Listens for messages published to shard channels.",
        complexity: "O(N) where N is the number of shard channels to subscribe to.",
        syntax: "shardchannel ...",
        ..Command::DEFAULT
    },
    Command {
        name: "sunsubscribe",
        arity: -1,
        flags: PUBSUB | NOSCRIPT | LOADING | STALE,
        keys: &[spec::index(1).range(-1, 1, 0).flags(NOT_KEY)],
        handler: sunsubscribe,
        group: "pubsub",
        since: "7.0.0",
        summary: "Stops listening to messages posted to shard channels.",
        complexity: "O(N) where N is the number of shard channels to unsubscribe.",
        syntax: "[shardchannel ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "spublish",
        arity: 3,
        flags: PUBSUB | LOADING | STALE | FAST,
        keys: &[spec::index(1).range(0, 1, 0).flags(NOT_KEY)],
        handler: spublish,
        group: "pubsub",
        since: "7.0.0",
        summary: "Post a message to a shard channel",
        complexity: "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        syntax: "shardchannel message",
        ..Command::DEFAULT
    },
    Command {
        name: "pubsub",
        arity: -2,
        subcommands: PUBSUB_SUBCOMMANDS,
        group: "pubsub",
        since: "2.8.0",
        summary: "A container for Pub/Sub commands.",
        complexity: "Depends on subcommand.",
        ..Command::DEFAULT
    },
];

static PUBSUB_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "channels",
        arity: -2,
        flags: PUBSUB | LOADING | STALE,
        handler: pubsub_channels,
        group: "pubsub",
        since: "2.8.0",
        summary: "Returns the active channels.",
        complexity: "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
        syntax: "[pattern:pattern]",
        ..Command::DEFAULT
    },
    Command {
        name: "numpat",
        arity: 2,
        flags: PUBSUB | LOADING | STALE,
        handler: pubsub_numpat,
        group: "pubsub",
        since: "2.8.0",
        summary: "Returns a count of unique pattern subscriptions.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "numsub",
        arity: -2,
        flags: PUBSUB | LOADING | STALE,
        handler: pubsub_numsub,
        group: "pubsub",
        since: "2.8.0",
        summary: "Returns a count of subscribers to channels.",
        complexity: "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
        syntax: "[channel ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        handler: pubsub_help,
        group: "pubsub",
        since: "6.2.0",
        summary: "Returns helpful text about the different subcommands.",
        complexity: "O(1)",
        ..Command::DEFAULT
    },
    Command {
        name: "shardchannels",
        arity: -2,
        flags: PUBSUB | LOADING | STALE,
        handler: pubsub_shardchannels,
        group: "pubsub",
        since: "7.0.0",
        summary: "Returns the active shard channels.",
        complexity: "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
        syntax: "[pattern:pattern]",
        ..Command::DEFAULT
    },
    Command {
        name: "shardnumsub",
        arity: -2,
        flags: PUBSUB | LOADING | STALE,
        handler: pubsub_shardnumsub,
        group: "pubsub",
        since: "7.0.0",
        summary: "Returns the count of subscribers of shard channels.",
        complexity: "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
        syntax: "[shardchannel ...]",
        ..Command::DEFAULT
    },
];

/// The count a confirmation carries: channels + patterns for the classic kinds, shard channels for the
/// sharded ones (as Redis 7 counts them).
fn count(ctx: &Ctx<'_>, kind: Kind) -> i64 {
    let s = &ctx.client.info.subs;
    match kind {
        Kind::Shard => s[2].load(Relaxed) as i64,
        _ => (s[0].load(Relaxed) + s[1].load(Relaxed)) as i64,
    }
}

fn confirm(ctx: &mut Ctx<'_>, name: &str, ch: Option<&[u8]>, n: i64) {
    let mut r = ctx.reply();
    r.push(3);
    r.bulk(name.as_bytes());
    match ch {
        Some(c) => r.bulk(c),
        None => r.null(),
    }
    r.int(n);
}

fn subscribe_to(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let name = kind.names().0;
    for ch in args.iter().skip(1) {
        ctx.srv.pubsub.subscribe(&ctx.client.info, kind, ch);
        let n = count(ctx, kind);
        confirm(ctx, name, Some(ch), n);
    }
    Ok(())
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let name = kind.names().1;
    let targets: Vec<Vec<u8>> = if args.len() > 1 {
        args.iter().skip(1).map(|a| a.to_vec()).collect()
    } else {
        ctx.srv.pubsub.subscriptions(ctx.client.id, kind)
    };
    if targets.is_empty() {
        let n = count(ctx, kind);
        confirm(ctx, name, None, n);
        return Ok(());
    }
    for ch in &targets {
        ctx.srv.pubsub.unsubscribe(&ctx.client.info, kind, ch);
        let n = count(ctx, kind);
        confirm(ctx, name, Some(ch), n);
    }
    Ok(())
}

/// Drop every subscription of the calling client (RESET).
pub fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    ctx.srv.pubsub.remove_client(ctx.client.id);
}

fn subscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    subscribe_to(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    unsubscribe_from(ctx, args, Kind::Shard)
}

/// PUBLISH / SPUBLISH channel message.
fn publish_to(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let mut a = Argv::new(args);
    let (channel, message) = (a.next()?, a.next()?);
    let n = ctx.srv.pubsub.publish(kind, channel, message);
    reply_published(ctx, n)
}

fn publish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    publish_to(ctx, args, Kind::Channel)
}

fn spublish(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    publish_to(ctx, args, Kind::Shard)
}

/// A RESP3 client publishing to a channel it subscribes to gets the count, then its own message right
/// after it (before the next command's reply), as from Redis 7.2.
fn reply_published(ctx: &mut Ctx<'_>, n: usize) -> CmdResult {
    ctx.reply().int(n as i64);
    if ctx.client.subscribed() {
        ctx.client.info.drain_outbox(ctx.out);
    }
    Ok(())
}

/// PUBSUB CHANNELS / SHARDCHANNELS [pattern].
fn list_channels(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let mut a = Argv::new(args);
    let sub = a.next()?;
    let pattern = a.opt();
    if !a.is_done() {
        return Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        )
        .into());
    }
    let chans = ctx.srv.pubsub.channels(kind, pattern);
    let mut r = ctx.reply();
    r.array(chans.len());
    for c in &chans {
        r.bulk(c);
    }
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    list_channels(ctx, args, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    list_channels(ctx, args, Kind::Shard)
}

fn numsub(ctx: &mut Ctx<'_>, args: Args<'_>, kind: Kind) -> CmdResult {
    let counts: Vec<usize> = args
        .iter()
        .skip(2)
        .map(|c| ctx.srv.pubsub.numsub(kind, c))
        .collect();
    let mut r = ctx.reply();
    r.array(counts.len() * 2);
    for (c, n) in args.iter().skip(2).zip(counts) {
        r.bulk(c);
        r.int(n as i64);
    }
    Ok(())
}

fn pubsub_numsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    numsub(ctx, args, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    numsub(ctx, args, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let n = ctx.srv.pubsub.numpat();
    ctx.reply().int(n as i64);
    Ok(())
}

fn pubsub_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    super::connection::help_reply(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}
