//! The append-only file, in Redis 7's multi-part layout: `<dir>/<appenddirname>/` holds a manifest
//! (`<appendfilename>.manifest`), one base file (`.base.rdb` with an RDB body, or `.base.aof` in command
//! form) and the incremental files (`.incr.aof`) written since that base.
//!
//! Feeding: `cmd::call` hands each command's propagated form to [`Aof::feed`], which appends its RESP
//! encoding to an in-memory buffer under a short mutex (never any file I/O there; commands run inside
//! EXEC are collected per thread and go out as one MULTI/EXEC block). Commands feed after releasing their
//! shard locks, so each takes a ticket inside its lock ([`Aof::note_write`], called by `Ctx::modified_in`
//! and the `propagate_*` helpers) and the buffer emits in ticket order: two writes of one key reach the
//! file in the order they ran.
//!
//! Durability: before a worker sends the replies of a batch, [`Aof::durable_target`] writes what it fed
//! to the file (every mode: a killed process loses nothing acknowledged); with `appendfsync always` the
//! connection then awaits [`Aof::durable`] while the fsync thread writes and fsyncs everything buffered by
//! every connection so far and releases all of them at once — group commit. `everysec` fsyncs once a
//! second from the background thread; `no` never fsyncs.
//!
//! Rewrites (BGREWRITEAOF) never fork: a new incr file is opened while every shard is locked (and the gate
//! closed, so every command that ran before has been fed), a point-in-time snapshot is opened in the same
//! exclusive section, and the new base is written from it while commands keep flowing into the new incr
//! file. The manifest is then replaced atomically and the old files deleted.
//!
//! Here: INFO (the state, [`Aof`], is defined in crate::persist_state::aof, below the server). Submodules: `manifest` (manifest and file names), `feed` (feeding,
//! ordering, durability), `loading` (startup loading), `lifecycle` (start, background thread, enable/disable,
//! shutdown), `rewrite` (BGREWRITEAOF, base writers).

use super::{Argv, Propagation};
use crate::client::Client;
use crate::keyspace::snapshot::ShardSink;
use crate::server::{unix_ms, Server};
use crate::types::Value;
use ferrodis_protocol::Args;
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod feed;
mod lifecycle;
mod loading;
mod manifest;
mod rewrite;

pub use feed::*;
pub use lifecycle::*;
pub use loading::*;
use manifest::*;
pub use rewrite::*;

/// The state (a field of `Server.persist`), defined below the server (crate::persist_state).
pub use crate::persist_state::aof::*;

/// A base-file writer fed by a snapshot.
pub trait BaseWriter: ShardSink {
    /// Complete the file (trailer, flush; no fsync). Returns its size in bytes.
    fn finish(&self) -> Result<u64, String>;
}

// ---------------------------------------------------------------------------------------------------------
// INFO

/// INFO persistence lines for the AOF (after the RDB ones), as Redis 7.0 prints them.
pub fn info(srv: &Server, o: &mut String) {
    use std::fmt::Write as _;
    let aof = &srv.persist.aof;
    let st = &aof.stats;
    let on = aof.enabled();
    let running = st.rewrite_in_progress.load(Relaxed);
    let _ = write!(
        o,
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\n\
         aof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\n\
         aof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:0\r\n\
         aof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\n\
         module_fork_last_cow_size:0\r\n",
        on as u8,
        running as u8,
        (st.rewrite_scheduled.load(Relaxed) || st.initial_pending.load(Relaxed)) as u8,
        st.last_rewrite_time_sec.load(Relaxed),
        if running {
            (unix_ms().saturating_sub(st.rewrite_started_ms.load(Relaxed)) / 1000) as i64
        } else {
            -1
        },
        if st.last_rewrite_ok.load(Relaxed) {
            "ok"
        } else {
            "err"
        },
        st.rewrites.load(Relaxed),
        if st.last_write_ok.load(Relaxed) {
            "ok"
        } else {
            "err"
        },
    );
    if on {
        let pending = aof.buf.lock().data.len();
        let _ = write!(
            o,
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:0\r\n\
             aof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
            st.current_size.load(Relaxed),
            st.base_size.load(Relaxed),
            pending,
            st.delayed_fsync.load(Relaxed),
        );
    }
}

/// Whether the AOF is loading (INFO loading).
pub fn loading(srv: &Server) -> bool {
    srv.persist.aof.stats.loading.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.cur_incr_seq, 1);
        assert_eq!(m.render(), text);
        let q = Manifest::parse("file \"a b.aof\" seq 2 type i\n").unwrap();
        assert_eq!(q.incrs[0].name, "a b.aof");
        assert_eq!(q.render(), "file \"a b.aof\" seq 2 type i\n");
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("file x seq 2 type i\nfile y seq 1 type i\n").is_err());
        assert!(Manifest::parse("file x seq 1\n").is_err());
    }

    #[test]
    fn stream_parsing() {
        let mut data = Vec::new();
        encode_argv(&mut data, &[b"SET".as_slice(), b"k", b"v"]);
        data.extend_from_slice(b"#TS:123\r\n");
        encode_argv(&mut data, &[b"DEL".as_slice(), b"k"]);
        let mut seen = Vec::new();
        let r = parse_stream(&data, |a, end| {
            seen.push((a.iter().map(|x| x.to_vec()).collect::<Vec<_>>(), end));
            Ok(())
        })
        .unwrap();
        assert_eq!(r, Parsed::Complete);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].0, vec![b"DEL".to_vec(), b"k".to_vec()]);
        assert_eq!(seen[1].1, data.len());
        // Torn tail.
        let cut = &data[..data.len() - 3];
        let r = parse_stream(cut, |_, _| Ok(())).unwrap();
        assert!(matches!(r, Parsed::Truncated(_)));
        // Garbage in the middle.
        let mut bad = data.clone();
        bad.splice(0..0, b"xx\r\n".iter().copied());
        assert_eq!(parse_stream(&bad, |_, _| Ok(())).unwrap(), Parsed::Bad(0));
    }

    #[test]
    fn encode_is_resp() {
        let mut v = Vec::new();
        encode_argv(&mut v, &[b"SELECT".as_slice(), b"0"]);
        assert_eq!(v, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
    }
}
