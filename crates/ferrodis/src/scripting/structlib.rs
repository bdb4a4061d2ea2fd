//! Lua library `structlib` (written in Rust on mlua).
