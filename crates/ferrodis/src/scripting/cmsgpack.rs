//! Lua library `cmsgpack` (written in Rust on mlua).
