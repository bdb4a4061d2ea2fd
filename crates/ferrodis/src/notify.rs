//! Side effects of keyspace writes that run after the command, once its shard locks are released (fan-out
//! must never hold keyspace locks): keyspace notifications (`notify-keyspace-events`) and, later,
//! client-side caching invalidation.
//!
//! `Ctx::modified_in` records a [`KeyEvent`] only while some consumer is enabled (one relaxed load
//! otherwise); `cmd::execute` hands the recorded events to [`after_command`]. Active expiry calls
//! [`deliver`] with the keys it deleted, after releasing the shard lock.

pub use crate::events::*;
use crate::pubsub::Kind;
use crate::server::Server;
use std::sync::atomic::Ordering::Relaxed;

/// Deliver the events a command produced.
pub fn after_command(srv: &Server, events: &[KeyEvent]) {
    for e in events {
        notify(srv, e.event, &e.key, e.db);
    }
}

/// Publish one keyspace notification (if its class is enabled): `__keyspace@<db>__:<key>` with the event
/// as message, `__keyevent@<db>__:<event>` with the key as message.
pub fn notify(srv: &Server, event: &str, key: &[u8], db: usize) {
    let flags = srv.notify_flags.load(Relaxed);
    if flags & class_of(event) == 0 || !srv.pubsub.any_subscribers() {
        return;
    }
    let mut db_buf = itoa::Buffer::new();
    let db = db_buf.format(db).as_bytes();
    let mut ch = Vec::with_capacity(20 + key.len().max(event.len()));
    if flags & KEYSPACE != 0 {
        ch.extend_from_slice(b"__keyspace@");
        ch.extend_from_slice(db);
        ch.extend_from_slice(b"__:");
        ch.extend_from_slice(key);
        srv.pubsub.publish(Kind::Channel, &ch, event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        ch.clear();
        ch.extend_from_slice(b"__keyevent@");
        ch.extend_from_slice(db);
        ch.extend_from_slice(b"__:");
        ch.extend_from_slice(event.as_bytes());
        srv.pubsub.publish(Kind::Channel, &ch, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        assert_eq!(parse_flags(""), Some(0));
        assert_eq!(parse_flags("Kq"), None);
        assert_eq!(
            flags_to_string(parse_flags("Kmn$lshzxetdgE").unwrap()),
            "AKEm"
        );
        assert_eq!(flags_to_string(parse_flags("EKA").unwrap()), "AKE");
        assert_eq!(flags_to_string(parse_flags("Exg$").unwrap()), "g$xE");
        assert_eq!(flags_to_string(parse_flags("Kn").unwrap()), "nK");
        assert!(!active(parse_flags("K").unwrap()));
        assert!(!active(parse_flags("A").unwrap()));
        assert!(active(parse_flags("Ex").unwrap()));
    }

    #[test]
    fn classes() {
        assert_eq!(class_of("del"), GENERIC);
        assert_eq!(class_of("set"), STRING);
        assert_eq!(class_of("lpush"), LIST);
        assert_eq!(class_of("hset"), HASH);
        assert_eq!(class_of("zincr"), ZSET);
        assert_eq!(class_of("xadd"), STREAM);
        assert_eq!(class_of("expired"), EXPIRED);
        assert_eq!(class_of("srem"), SET);
    }
}
