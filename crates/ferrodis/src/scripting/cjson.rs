//! Lua library `cjson` (written in Rust on mlua).
