//! Lua library `bit` (written in Rust on mlua).
