//! Blocking pops: BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! Each command first tries its non-blocking form under the shard locks of all its keys; if every key is
//! empty it registers a waiter on each key while still holding those locks (see keyspace::blocking) and the
//! connection waits. A writer serves the waiter inside its own lock through the serve function built here.

use super::{CmdError, Ctx};
use crate::client::Blocked;
use crate::keyspace::blocking::{ServeFn, Waiter};
use crate::keyspace::MultiGuard;
use ferrodis_protocol::{num, Args};
use std::time::{Duration, Instant};

/// Redis's blocking timeout: seconds as a float, 0 = forever; negative and non-numbers are errors.
pub fn parse_timeout(b: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs = num::parse_f64(b).ok_or(CmdError::from("ERR timeout is not a float or out of range"))?;
    // As Redis: to milliseconds, rounded up, then range and sign checks.
    let ms = (secs * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err("ERR timeout is out of range".into());
    }
    if ms < 0.0 {
        return Err("ERR timeout is negative".into());
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// Block the client on `keys` (whose shards `guard` holds): register one waiter in each key's queue and
/// tell the connection to wait. `timeout_reply` is sent if nothing arrives in time.
pub fn block(
    ctx: &mut Ctx<'_>,
    guard: &mut MultiGuard<'_>,
    args: Args<'_>,
    keys: &[&[u8]],
    timeout: Option<Duration>,
    timeout_reply: Vec<u8>,
    serve: ServeFn,
) {
    let db = ctx.client.db;
    let mut owned: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    owned.dedup();
    let waiter = Waiter::new(ctx.client.id, db, owned.clone(), serve);
    for k in &owned {
        guard.shard(k).add_waiter(db, k, waiter.clone());
    }
    ctx.client.blocked = Some(Blocked {
        waiter,
        deadline: timeout.map(|t| Instant::now() + t),
        timeout_reply,
        argv: args.iter().map(|a| a.to_vec()).collect(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(
            parse_timeout(b"0.1").unwrap(),
            Some(Duration::from_millis(100))
        );
        assert_eq!(parse_timeout(b"2").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_timeout(b"-1").unwrap_err().msg(),
            "ERR timeout is negative"
        );
        assert_eq!(
            parse_timeout(b"abc").unwrap_err().msg(),
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(
            parse_timeout(b"inf").unwrap_err().msg(),
            "ERR timeout is out of range"
        );
        assert_eq!(parse_timeout(b"-0.0001").unwrap(), None);
    }
}
