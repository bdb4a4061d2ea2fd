//! Persistence: the RDB file format (read and write, Redis-compatible), snapshots without fork, AOF.

pub mod rdb;
