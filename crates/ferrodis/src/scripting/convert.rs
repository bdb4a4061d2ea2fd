//! Conversions between RESP replies and Lua values, as Redis makes them: a command's reply becomes the
//! value `redis.call` returns, and a script's result becomes its reply. Both are lossless for replies of
//! any size (limited by memory only); what cannot be converted becomes an error, never a shorter reply.

use super::engine::{error_reply_table, num_to_i64};
use ferrodis_protocol::Reply;
use mlua::{ffi, Lua, Value};
use std::ffi::{c_int, CStr};

/// Largest table pre-sized from a reply's element count (larger ones grow as elements arrive).
const PRESIZE_MAX: usize = 1 << 20;

/// Convert one RESP reply at `pos` into a Lua value as Redis does.
pub fn resp_to_lua(lua: &Lua, b: &[u8], pos: &mut usize, resp3: bool) -> mlua::Result<Value> {
    let bad = || mlua::Error::RuntimeError("bad reply".into());
    let line_end = |pos: usize| -> mlua::Result<usize> {
        memchr::memmem::find(&b[pos..], b"\r\n")
            .map(|i| pos + i)
            .ok_or_else(bad)
    };
    let t = *b.get(*pos).ok_or_else(bad)?;
    let end = line_end(*pos)?;
    let line = &b[*pos + 1..end];
    *pos = end + 2;
    let num =
        |l: &[u8]| -> mlua::Result<i64> { ferrodis_protocol::num::parse_i64(l).ok_or_else(bad) };
    Ok(match t {
        b'+' => {
            let tb = lua.create_table()?;
            tb.raw_set("ok", lua.create_string(line)?)?;
            Value::Table(tb)
        }
        b'-' => Value::Table(error_reply_table(lua, &[b"-", line].concat())?),
        b':' => Value::Number(num(line)? as f64),
        b'$' | b'=' => {
            let n = num(line)?;
            if n < 0 {
                return Ok(null_reply(resp3));
            }
            let n = n as usize;
            let data = b.get(*pos..*pos + n).ok_or_else(bad)?;
            *pos += n + 2;
            if t == b'=' {
                let tb = lua.create_table()?;
                let inner = lua.create_table()?;
                let (fmt, s) = if data.len() >= 4 {
                    (&data[..3], &data[4..])
                } else {
                    (&b""[..], data)
                };
                inner.raw_set("format", lua.create_string(fmt)?)?;
                inner.raw_set("string", lua.create_string(s)?)?;
                tb.raw_set("verbatim_string", inner)?;
                Value::Table(tb)
            } else {
                Value::String(lua.create_string(data)?)
            }
        }
        b'*' | b'>' => {
            let n = num(line)?;
            if n < 0 {
                return Ok(null_reply(resp3));
            }
            let tb = lua.create_table_with_capacity((n as usize).min(PRESIZE_MAX), 0)?;
            for i in 0..n as usize {
                let v = resp_to_lua(lua, b, pos, resp3)?;
                tb.raw_set(i + 1, v)?;
            }
            Value::Table(tb)
        }
        b'%' | b'|' => {
            let n = num(line)?;
            let inner = lua.create_table()?;
            for _ in 0..n {
                let k = resp_to_lua(lua, b, pos, resp3)?;
                let v = resp_to_lua(lua, b, pos, resp3)?;
                if !matches!(k, Value::Nil) {
                    inner.raw_set(k, v)?;
                }
            }
            if t == b'|' {
                // Attributes are not passed to scripts: the reply follows.
                return resp_to_lua(lua, b, pos, resp3);
            }
            let tb = lua.create_table()?;
            tb.raw_set("map", inner)?;
            Value::Table(tb)
        }
        b'~' => {
            let n = num(line)?;
            let inner = lua.create_table()?;
            for _ in 0..n {
                let k = resp_to_lua(lua, b, pos, resp3)?;
                if !matches!(k, Value::Nil) {
                    inner.raw_set(k, true)?;
                }
            }
            let tb = lua.create_table()?;
            tb.raw_set("set", inner)?;
            Value::Table(tb)
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(line == b"t"),
        b',' => {
            let s = std::str::from_utf8(line).map_err(|_| bad())?;
            let d = match s {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                _ => s.parse::<f64>().map_err(|_| bad())?,
            };
            let tb = lua.create_table()?;
            tb.raw_set("double", d)?;
            Value::Table(tb)
        }
        b'(' => {
            let tb = lua.create_table()?;
            tb.raw_set("big_number", lua.create_string(line)?)?;
            Value::Table(tb)
        }
        _ => return Err(bad()),
    })
}

/// A null bulk or array reply as Lua sees it: nil in RESP3, false in RESP2.
fn null_reply(resp3: bool) -> Value {
    if resp3 {
        Value::Nil
    } else {
        Value::Boolean(false)
    }
}

/// Table fields a script result is checked for, in Redis's order. They are kept alive in the registry
/// (`pin_reply_fields`) so that looking them up never allocates during a conversion.
const REPLY_FIELDS: [&CStr; 9] = [
    c"err",
    c"ok",
    c"double",
    c"big_number",
    c"verbatim_string",
    c"format",
    c"string",
    c"map",
    c"set",
];

/// Keep the field-name strings of `REPLY_FIELDS` alive for the state's lifetime.
pub fn pin_reply_fields(lua: &Lua) -> mlua::Result<()> {
    let names: Vec<&str> = REPLY_FIELDS
        .iter()
        .map(|c| c.to_str().expect("ASCII field name"))
        .collect();
    lua.set_named_registry_value("ferrodis.reply_fields", lua.create_sequence_from(names)?)
}

/// A table being written as an aggregate reply (its Lua values sit at the top of the Lua stack).
enum Frame {
    /// An array; `next` is the index of the next element. Stack: table.
    Array { next: i64 },
    /// A `{map=...}`: stack: table, map, last key. `value_next`: the key was written, its value is next.
    Map { value_next: bool },
    /// A `{set=...}`: stack: table, set, last member.
    Set,
}

/// The field of an error table that says its error was counted already: the error of a command run by
/// `redis.call`/`redis.pcall` (Redis's name; scripts can see it).
pub const IGNORE_STATS: &CStr = c"ignore_error_stats_update";

/// An error line written into a script's reply: its text and whether errorstats counted it already.
pub struct ErrorLine {
    pub msg: String,
    pub counted: bool,
}

/// Write a script's Lua result as a reply, as Redis converts it. `script_resp3`: the script's
/// `redis.setresp` protocol (decides how booleans go out). Iterative, with the values on the Lua stack
/// (never held as references, which are limited): nesting is bounded by Lua's stack limit ("reached lua
/// stack limit" in place of what is deeper, as in Redis), size only by memory.
/// Returns the error lines it wrote (error tables, at any depth), for the caller to count.
pub fn lua_to_resp(lua: &Lua, v: &Value, r: &mut Reply<'_>, script_resp3: bool) -> Vec<ErrorLine> {
    let mut errors = Vec::new();
    // Scalars need no Lua stack.
    match v {
        Value::String(s) => r.bulk(&s.as_bytes()),
        Value::Integer(i) => r.int(*i),
        Value::Number(n) => r.int(num_to_i64(*n)),
        Value::Boolean(b) => write_bool(r, *b, script_resp3),
        Value::Table(_) => {}
        _ => r.null(),
    }
    if !matches!(v, Value::Table(_)) {
        return errors;
    }
    let start = r.buf.len();
    // SAFETY: the closure runs in a protected call on this state with `v` pushed on the stack; it only
    // uses raw accesses, which call no metamethods, and leaves the stack as it found it.
    let res = unsafe {
        lua.exec_raw::<()>(v.clone(), |l| {
            // Redis converts with one more slot of its stack in use than this call frame has: the
            // same nesting reaches the limit.
            ffi::lua_pushnil(l);
            ffi::lua_insert(l, -2);
            let mut frames: Vec<Frame> = Vec::new();
            if let Some(f) = open_top(l, r, script_resp3, &mut errors) {
                frames.push(f);
            }
            while let Some(top) = frames.last_mut() {
                let opened = match top {
                    Frame::Array { next } => {
                        ffi::lua_rawgeti(l, -1, *next as _);
                        if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                            ffi::lua_pop(l, 2);
                            frames.pop();
                            continue;
                        }
                        *next += 1;
                        open_top(l, r, script_resp3, &mut errors)
                    }
                    Frame::Map { value_next: true } => {
                        *top = Frame::Map { value_next: false };
                        open_top(l, r, script_resp3, &mut errors)
                    }
                    Frame::Map { value_next: false } => {
                        if ffi::lua_next(l, -2) == 0 {
                            ffi::lua_pop(l, 2);
                            frames.pop();
                            continue;
                        }
                        // table, map, key, value -> key copy on top (the key stays for lua_next).
                        ffi::lua_pushvalue(l, -2);
                        *top = Frame::Map { value_next: true };
                        open_top(l, r, script_resp3, &mut errors)
                    }
                    Frame::Set => {
                        if ffi::lua_next(l, -2) == 0 {
                            ffi::lua_pop(l, 2);
                            frames.pop();
                            continue;
                        }
                        ffi::lua_pop(l, 1);
                        ffi::lua_pushvalue(l, -1);
                        open_top(l, r, script_resp3, &mut errors)
                    }
                };
                if let Some(f) = opened {
                    frames.push(f);
                }
            }
            ffi::lua_pop(l, 1);
        })
    };
    if res.is_err() {
        // Only growing the Lua stack can fail (out of memory): no partial reply goes out.
        r.buf.truncate(start);
        r.error("ERR not enough memory converting the script's reply");
        errors.clear();
        errors.push(ErrorLine {
            msg: "ERR not enough memory converting the script's reply".into(),
            counted: false,
        });
    }
    errors
}

/// A Lua boolean: a RESP3 boolean for a `redis.setresp(3)` script, else true is 1 and false is null.
fn write_bool(r: &mut Reply<'_>, b: bool, resp3: bool) {
    if resp3 {
        r.boolean(b)
    } else if b {
        r.int(1)
    } else {
        r.null()
    }
}

/// The string (or number, converted) at `idx` as bytes.
unsafe fn bytes_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: the caller checked the value is a string; the bytes live while it stays on the stack.
    unsafe {
        let p = ffi::lua_tolstring(l, idx, &mut len);
        if p.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(p as *const u8, len)
    }
}

/// Push `t[name]` (raw) for the table on top and return its type.
unsafe fn field(l: *mut ffi::lua_State, name: &CStr, table: c_int) -> c_int {
    // SAFETY: `table` is a valid stack index of a table; the name string exists (pinned).
    unsafe {
        ffi::lua_pushstring(l, name.as_ptr());
        ffi::lua_rawget(l, table - 1);
        ffi::lua_type(l, -1)
    }
}

/// `bytes` up to its first NUL (C string semantics), CR/LF as spaces.
fn c_string_line(bytes: &[u8]) -> Vec<u8> {
    let end = memchr::memchr(0, bytes).unwrap_or(bytes.len());
    bytes[..end]
        .iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

/// Convert the value on top of the stack. Scalars and special tables are written and popped; an
/// aggregate writes its header and returns the frame that goes on with its elements.
unsafe fn open_top(
    l: *mut ffi::lua_State,
    r: &mut Reply<'_>,
    resp3: bool,
    errors: &mut Vec<ErrorLine>,
) -> Option<Frame> {
    // SAFETY: a value is on top of the stack; every push below is covered by the check.
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            r.error("ERR reached lua stack limit");
            errors.push(ErrorLine {
                msg: "ERR reached lua stack limit".into(),
                counted: false,
            });
            ffi::lua_pop(l, 1);
            return None;
        }
        match ffi::lua_type(l, -1) {
            ffi::LUA_TSTRING => r.bulk(bytes_at(l, -1)),
            ffi::LUA_TBOOLEAN => write_bool(r, ffi::lua_toboolean(l, -1) != 0, resp3),
            ffi::LUA_TNUMBER => r.int(num_to_i64(ffi::lua_tonumber(l, -1))),
            ffi::LUA_TTABLE => return open_table(l, r, errors),
            _ => r.null(),
        }
        ffi::lua_pop(l, 1);
        None
    }
}

unsafe fn open_table(
    l: *mut ffi::lua_State,
    r: &mut Reply<'_>,
    errors: &mut Vec<ErrorLine>,
) -> Option<Frame> {
    let [err, ok, double, big_number, verbatim, format, string, map, set] = REPLY_FIELDS;
    // SAFETY: a table is on top of the stack with room for 4 more values (checked by the caller).
    unsafe {
        // {err=...} and {ok=...}: an error or status line, the text as a C string.
        for (name, prefix) in [(err, b'-'), (ok, b'+')] {
            if field(l, name, -1) == ffi::LUA_TSTRING {
                let m = c_string_line(bytes_at(l, -1));
                r.buf.push(prefix);
                r.buf.extend_from_slice(&m);
                r.buf.extend_from_slice(b"\r\n");
                ffi::lua_pop(l, 1);
                if prefix == b'-' {
                    ffi::lua_pushstring(l, IGNORE_STATS.as_ptr());
                    ffi::lua_rawget(l, -2);
                    let counted = ffi::lua_toboolean(l, -1) != 0;
                    ffi::lua_pop(l, 1);
                    errors.push(ErrorLine {
                        msg: String::from_utf8_lossy(&m).into_owned(),
                        counted,
                    });
                }
                ffi::lua_pop(l, 1);
                return None;
            }
            ffi::lua_pop(l, 1);
        }
        if field(l, double, -1) == ffi::LUA_TNUMBER {
            r.double(ffi::lua_tonumber(l, -1));
            ffi::lua_pop(l, 2);
            return None;
        }
        ffi::lua_pop(l, 1);
        if field(l, big_number, -1) == ffi::LUA_TSTRING {
            let s = String::from_utf8_lossy(bytes_at(l, -1)).replace(['\r', '\n'], " ");
            r.big_number(&s);
            ffi::lua_pop(l, 2);
            return None;
        }
        ffi::lua_pop(l, 1);
        if field(l, verbatim, -1) == ffi::LUA_TTABLE {
            if field(l, format, -1) == ffi::LUA_TSTRING {
                if field(l, string, -2) == ffi::LUA_TSTRING {
                    let fmt = String::from_utf8_lossy(bytes_at(l, -2)).into_owned();
                    r.verbatim(&fmt, bytes_at(l, -1));
                    ffi::lua_pop(l, 4);
                    return None;
                }
                ffi::lua_pop(l, 1);
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
        for (name, is_map) in [(map, true), (set, false)] {
            if field(l, name, -1) == ffi::LUA_TTABLE {
                let mut n = 0usize;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pop(l, 1);
                    n += 1;
                }
                ffi::lua_pushnil(l);
                return Some(if is_map {
                    r.map(n);
                    Frame::Map { value_next: false }
                } else {
                    r.set(n);
                    Frame::Set
                });
            }
            ffi::lua_pop(l, 1);
        }
        // An array: the elements 1, 2, ... up to the first nil.
        let mut n: i64 = 0;
        loop {
            ffi::lua_rawgeti(l, -1, (n + 1) as _);
            let end = ffi::lua_type(l, -1) == ffi::LUA_TNIL;
            ffi::lua_pop(l, 1);
            if end {
                break;
            }
            n += 1;
        }
        r.array(n as usize);
        Some(Frame::Array { next: 1 })
    }
}
