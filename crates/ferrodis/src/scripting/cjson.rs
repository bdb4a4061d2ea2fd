//! Lua library `cjson` (written in Rust on mlua).
//!
//! Behaves like lua-cjson 2.1.0 as embedded in Redis 7.0: the same encoder (numbers with `%.14g`, `/` escaped,
//! empty tables as `{}`, sparse-array detection, nesting limits), the same decoder (tokenizer, error messages
//! with 1-based character positions, `null` as the NULL lightuserdata `cjson.null`) and the same configuration
//! functions. Object keys are emitted in Lua's `next` order, exactly as the C library does.
//!
//! Errors are raised as plain Lua strings from a C function, like `luaL_error` does: prefixed with the
//! calling script line (`user_script:1: ...`), and `bad argument` errors name the function as the caller
//! called it. This module also provides [`lua_fn`], the helper the other library modules use for that.

use mlua::{ffi, Function, LightUserData, Lua, MultiValue, Table, Value};
use std::ffi::c_int;
use std::sync::{Arc, Mutex};

/// Result of a library function: the values to return, or the error message to raise.
pub(crate) type LibResult = Result<MultiValue, String>;

/// Prefix of an error message raised without a position (as errors raised by the Lua core inside a C
/// function are, e.g. "table index is nil").
pub(crate) const RAW_ERROR: &str = "\u{0}raw:";

/// Creates a Lua function from `f` whose errors are raised as plain Lua strings carrying the caller's
/// position, as `luaL_error` in a C function does (`user_script:1: message`); messages starting with
/// [`RAW_ERROR`] are raised without the position.
pub(crate) fn lua_fn<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> LibResult + Send + 'static,
{
    let raw = lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
        Ok(mut v) if v.len() <= 64 => {
            v.push_front(Value::Boolean(true));
            Ok(v)
        }
        Ok(v) => {
            // Many results: hand them over in a table, unpacked by the Lua side (mlua's own stack use
            // would otherwise lower the number of values a C function can return).
            let n = v.len() as i64;
            let t = lua.create_sequence_from(v)?;
            Ok(MultiValue::from_vec(vec![
                Value::Integer(2),
                Value::Table(t),
                Value::Integer(n),
            ]))
        }
        Err(msg) if msg.starts_with(ARG_ERROR) => {
            // `\u{1}arg:N:message`: luaL_argerror, completed by the trampoline with the called name.
            let rest = &msg[ARG_ERROR.len()..];
            let (n, m) = rest.split_once(':').unwrap_or(("1", rest));
            Ok(MultiValue::from_vec(vec![
                Value::Integer(1),
                Value::Integer(n.parse().unwrap_or(1)),
                Value::String(lua.create_string(m)?),
            ]))
        }
        Err(msg) => match msg.strip_prefix(RAW_ERROR) {
            // An error raised by the Lua core inside the C library: no position prefix.
            Some(m) => Ok(MultiValue::from_vec(vec![
                Value::Integer(0),
                Value::String(lua.create_string(m)?),
            ])),
            None => Ok(MultiValue::from_vec(vec![
                Value::Boolean(false),
                Value::String(lua.create_string(msg)?),
            ])),
        },
    })?;
    // The raw function returns `true, values...`, `false, message`, `0, message` or `2, table, n`; a C
    // trampoline turns that into results or a Lua error raised from C, so that `luaL_where(L, 1)` names
    // the calling script line exactly as lua-cjson's `luaL_error` does (even after `return f(...)`).
    // SAFETY: the closure only pushes a C closure with the raw function (on the stack) as its upvalue.
    unsafe { lua.exec_raw::<Function>(raw, |state| ffi::lua_pushcclosure(state, trampoline, 1)) }
}

/// The C side of [`lua_fn`]. No Rust value with a destructor is alive when `lua_error` long-jumps out.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
    let n = ffi::lua_gettop(state);
    if ffi::lua_type(state, 1) == ffi::LUA_TBOOLEAN {
        if ffi::lua_toboolean(state, 1) != 0 {
            ffi::lua_remove(state, 1);
            return n - 1;
        }
        ffi::luaL_where(state, 1);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
    match ffi::lua_tointeger(state, 1) {
        0 => {
            ffi::lua_pushvalue(state, 2);
            ffi::lua_error(state)
        }
        1 => {
            // luaL_argerror: name the function as the caller called it ('?' when unknown, e.g. via pcall).
            let mut narg = ffi::lua_tointeger(state, 2) as i64;
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            let mut name: Option<Vec<u8>> = None;
            let mut method = false;
            if ffi::lua_getstack(state, 0, &mut ar) != 0
                && ffi::lua_getinfo(state, c"n".as_ptr(), &mut ar) != 0
            {
                if !ar.name.is_null() {
                    name = Some(std::ffi::CStr::from_ptr(ar.name).to_bytes().to_vec());
                }
                method = !ar.namewhat.is_null()
                    && std::ffi::CStr::from_ptr(ar.namewhat).to_bytes() == b"method";
            }
            let mut len = 0usize;
            let extra = ffi::lua_tolstring(state, 3, &mut len);
            let extra = if extra.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(extra as *const u8, len)
            };
            let name = name.unwrap_or_else(|| b"?".to_vec());
            if method {
                narg -= 1;
            }
            let msg = if method && narg == 0 {
                [b"calling '", &name[..], b"' on bad self (", extra, b")"].concat()
            } else {
                [
                    format!("bad argument #{narg} to '").as_bytes(),
                    &name[..],
                    b"' (",
                    extra,
                    b")",
                ]
                .concat()
            };
            ffi::luaL_where(state, 1);
            ffi::lua_pushlstring(state, msg.as_ptr() as *const _, msg.len());
            drop(msg);
            drop(name);
            ffi::lua_concat(state, 2);
            ffi::lua_error(state)
        }
        _ => {}
    }
    // `2, table, count`: unpack the table onto the stack.
    let count = ffi::lua_tointeger(state, 3) as c_int;
    ffi::lua_pushvalue(state, 2);
    ffi::lua_replace(state, 1);
    ffi::lua_settop(state, 1);
    if ffi::lua_checkstack(state, count) == 0 {
        ffi::lua_pushstring(state, c"stack overflow (too many results)".as_ptr());
        ffi::lua_error(state)
    }
    for i in 1..=count {
        ffi::lua_rawgeti(state, 1, i as _);
    }
    count
}

/// Prefix of a luaL_argerror error (`\u{1}arg:N:message`), completed with the called function's name.
pub(crate) const ARG_ERROR: &str = "\u{1}arg:";

/// `bad argument #n to 'name' (msg)`, as luaL_argerror formats it: the name is the one the caller used for
/// the function (`_name` is what it usually is, kept for readability at call sites).
pub(crate) fn arg_error(n: usize, _name: &str, msg: &str) -> String {
    format!("{ARG_ERROR}{n}:{msg}")
}

/// Lua's type name of a value as `lua_typename` reports it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::UserData(_) => "userdata",
        _ => "userdata",
    }
}

/// The numeric value of a Lua number (or None).
pub(crate) fn num_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `lua_tonumber` semantics: numbers, and strings that convert to numbers.
pub(crate) fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => lua_str2number(&s.as_bytes()),
        _ => num_of(v),
    }
}

/// Lua 5.1's `luaO_str2d`: strtod (decimal, inf/nan, hex via strtoul) with surrounding whitespace.
pub(crate) fn lua_str2number(s: &[u8]) -> Option<f64> {
    let (v, used) = c_strtod(s)?;
    let mut end = used;
    let mut v = v;
    if end < s.len() && (s[end] == b'x' || s[end] == b'X') {
        // Lua 5.1 retries with strtoul(s, 16) when strtod stopped at an 'x'.
        let t = std::str::from_utf8(s)
            .ok()?
            .trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
        let digits: String = t.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if digits.is_empty() {
            return None;
        }
        v = u64::from_str_radix(&digits, 16)
            .map(|x| x as u32 as f64)
            .unwrap_or(u32::MAX as f64);
        let prefix_len = s.len() - t.len();
        end = prefix_len + digits.len();
    }
    while end < s.len() && matches!(s[end], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        end += 1;
    }
    if end != s.len() {
        return None;
    }
    Some(v)
}

/// C `strtod`: returns the value and the number of bytes consumed (None when nothing converts).
/// Accepts leading whitespace, sign, decimal with exponent, `inf`/`infinity`/`nan`, and hex floats.
pub(crate) fn c_strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let start = i;
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let rest = &s[i..];
    let lower = |n: usize| -> Vec<u8> {
        rest.iter()
            .take(n)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    if lower(3) == b"inf" {
        let n = if lower(8) == b"infinity" { 8 } else { 3 };
        let v = if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Some((v, i + n));
    }
    if lower(3) == b"nan" {
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let mut j = 4;
            while j < rest.len() && (rest[j].is_ascii_alphanumeric() || rest[j] == b'_') {
                j += 1;
            }
            if rest.get(j) == Some(&b')') {
                n = j + 1;
            }
        }
        let v = if neg { -f64::NAN } else { f64::NAN };
        return Some((v, i + n));
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        // Hex float.
        let mut j = 2;
        let mut mant: f64 = 0.0;
        let mut any = false;
        let mut exp: i64 = 0;
        while j < rest.len() && rest[j].is_ascii_hexdigit() {
            mant = mant * 16.0 + (rest[j] as char).to_digit(16).unwrap_or(0) as f64;
            any = true;
            j += 1;
        }
        if j < rest.len() && rest[j] == b'.' {
            j += 1;
            while j < rest.len() && rest[j].is_ascii_hexdigit() {
                mant = mant * 16.0 + (rest[j] as char).to_digit(16).unwrap_or(0) as f64;
                exp -= 4;
                any = true;
                j += 1;
            }
        }
        if !any {
            // Only the "0" converts.
            return Some((if neg { -0.0 } else { 0.0 }, i + 1));
        }
        if j < rest.len() && (rest[j] | 0x20) == b'p' {
            let mut k = j + 1;
            let mut eneg = false;
            if k < rest.len() && (rest[k] == b'+' || rest[k] == b'-') {
                eneg = rest[k] == b'-';
                k += 1;
            }
            if k < rest.len() && rest[k].is_ascii_digit() {
                let mut e: i64 = 0;
                while k < rest.len() && rest[k].is_ascii_digit() {
                    e = (e * 10 + (rest[k] - b'0') as i64).min(100_000);
                    k += 1;
                }
                exp += if eneg { -e } else { e };
                j = k;
            }
        }
        let v = mant * 2f64.powi(exp.clamp(-100_000, 100_000) as i32);
        return Some((if neg { -v } else { v }, i + j));
    }
    // Decimal.
    let mut j = 0;
    let mut digits = 0;
    while j < rest.len() && rest[j].is_ascii_digit() {
        j += 1;
        digits += 1;
    }
    if j < rest.len() && rest[j] == b'.' {
        j += 1;
        while j < rest.len() && rest[j].is_ascii_digit() {
            j += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if j < rest.len() && (rest[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < rest.len() && (rest[k] == b'+' || rest[k] == b'-') {
            k += 1;
        }
        if k < rest.len() && rest[k].is_ascii_digit() {
            while k < rest.len() && rest[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&s[start..i + j]).ok()?;
    let text = text.strip_prefix('+').unwrap_or(text);
    let text = if text.starts_with("-.")
        || text.starts_with('.')
        || text.ends_with('.')
        || text.contains(".e")
        || text.contains(".E")
    {
        std::borrow::Cow::Owned(text.replacen('.', ".0", 1).replacen("-.0", "-0.0", 1))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let text = if text.starts_with(".0") {
        format!("0{text}")
    } else {
        text.into_owned()
    };
    let v: f64 = text.parse().ok()?;
    Some((v, i + j))
}

/// C's `printf("%.*g", prec, x)`.
pub(crate) fn fmt_g(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    let p = prec.max(1);
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.*e}", p - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[derive(Clone)]
struct Config {
    encode_sparse_convert: bool,
    encode_sparse_ratio: i64,
    encode_sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    /// 0 = off, 1 = on, 2 = null.
    encode_invalid_numbers: i64,
    decode_invalid_numbers: bool,
    encode_keep_buffer: bool,
    encode_number_precision: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_sparse_convert: false,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: true,
            encode_keep_buffer: true,
            encode_number_precision: 14,
        }
    }
}

type Cfg = Arc<Mutex<Config>>;

fn cfg_get(cfg: &Cfg) -> Config {
    match cfg.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn cfg_set(cfg: &Cfg, f: impl FnOnce(&mut Config)) {
    match cfg.lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    }
}

/// Registers the global `cjson` table.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = new_module(lua)?;
    lua.globals().set("cjson", t)
}

fn new_module(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Cfg = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.set(
        "encode",
        lua_fn(lua, move |lua, args| encode(lua, &cfg_get(&c), args))?,
    )?;
    let c = cfg.clone();
    t.set(
        "decode",
        lua_fn(lua, move |lua, args| decode(lua, &cfg_get(&c), args))?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_sparse_array",
        lua_fn(lua, move |_, args| {
            let name = "encode_sparse_array";
            check_args(&args, 3, name)?;
            let mut cur = cfg_get(&c);
            enum_bool(&args, 0, name, &mut cur.encode_sparse_convert)?;
            int_opt(
                &args,
                1,
                name,
                &mut cur.encode_sparse_ratio,
                0,
                i32::MAX as i64,
            )?;
            int_opt(
                &args,
                2,
                name,
                &mut cur.encode_sparse_safe,
                0,
                i32::MAX as i64,
            )?;
            cfg_set(&c, |g| *g = cur.clone());
            Ok(MultiValue::from_vec(vec![
                Value::Boolean(cur.encode_sparse_convert),
                Value::Integer(cur.encode_sparse_ratio),
                Value::Integer(cur.encode_sparse_safe),
            ]))
        })?,
    )?;
    for (name, field) in [
        ("encode_max_depth", 0u8),
        ("decode_max_depth", 1),
        ("encode_number_precision", 2),
    ] {
        let c = cfg.clone();
        t.set(
            name,
            lua_fn(lua, move |_, args| {
                check_args(&args, 1, name)?;
                let mut cur = cfg_get(&c);
                let (slot, max) = match field {
                    0 => (&mut cur.encode_max_depth, i32::MAX as i64),
                    1 => (&mut cur.decode_max_depth, i32::MAX as i64),
                    _ => (&mut cur.encode_number_precision, 14),
                };
                int_opt(&args, 0, name, slot, 1, max)?;
                let v = *slot;
                cfg_set(&c, |g| *g = cur.clone());
                Ok(MultiValue::from_vec(vec![Value::Integer(v)]))
            })?,
        )?;
    }
    for (name, field) in [("encode_keep_buffer", 0u8), ("decode_invalid_numbers", 1)] {
        let c = cfg.clone();
        t.set(
            name,
            lua_fn(lua, move |_, args| {
                check_args(&args, 1, name)?;
                let mut cur = cfg_get(&c);
                let slot = if field == 0 {
                    &mut cur.encode_keep_buffer
                } else {
                    &mut cur.decode_invalid_numbers
                };
                enum_bool(&args, 0, name, slot)?;
                let v = *slot;
                cfg_set(&c, |g| *g = cur.clone());
                Ok(MultiValue::from_vec(vec![Value::Boolean(v)]))
            })?,
        )?;
    }
    let c = cfg.clone();
    t.set(
        "encode_invalid_numbers",
        lua_fn(lua, move |lua, args| {
            let name = "encode_invalid_numbers";
            check_args(&args, 1, name)?;
            let mut cur = cfg_get(&c);
            match args.front() {
                None | Some(Value::Nil) => {}
                Some(Value::Boolean(b)) => cur.encode_invalid_numbers = *b as i64,
                Some(v) => {
                    cur.encode_invalid_numbers = check_option(v, name, &["off", "on", "null"])?
                }
            }
            cfg_set(&c, |g| *g = cur.clone());
            let v = match cur.encode_invalid_numbers {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null").map_err(|e| e.to_string())?),
            };
            Ok(MultiValue::from_vec(vec![v]))
        })?,
    )?;
    t.set(
        "new",
        lua_fn(lua, |lua, _| {
            let m = new_module(lua).map_err(|e| e.to_string())?;
            Ok(MultiValue::from_vec(vec![Value::Table(m)]))
        })?,
    )?;
    t.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn check_args(args: &MultiValue, max: usize, name: &str) -> Result<(), String> {
    if args.len() > max {
        return Err(arg_error(max + 1, name, "found too many arguments"));
    }
    Ok(())
}

/// luaL_checkoption.
fn check_option(v: &Value, name: &str, options: &[&str]) -> Result<i64, String> {
    let s = match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => fmt_g(num_of(v).unwrap_or(0.0), 14).into_bytes(),
        other => {
            return Err(arg_error(
                1,
                name,
                &format!("string expected, got {}", type_name(other)),
            ))
        }
    };
    match options.iter().position(|o| o.as_bytes() == s.as_slice()) {
        Some(i) => Ok(i as i64),
        None => Err(arg_error(
            1,
            name,
            &format!("invalid option '{}'", String::from_utf8_lossy(&s)),
        )),
    }
}

fn enum_bool(args: &MultiValue, idx: usize, name: &str, slot: &mut bool) -> Result<(), String> {
    match args.get(idx) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *slot = *b,
        Some(v) => *slot = check_option(v, name, &["off", "on"])? == 1,
    }
    Ok(())
}

fn int_opt(
    args: &MultiValue,
    idx: usize,
    name: &str,
    slot: &mut i64,
    min: i64,
    max: i64,
) -> Result<(), String> {
    match args.get(idx) {
        None | Some(Value::Nil) => {}
        Some(v) => {
            let n = match to_number(v) {
                Some(n) => n,
                None => {
                    return Err(arg_error(
                        idx + 1,
                        name,
                        &format!("number expected, got {}", type_name(v)),
                    ));
                }
            };
            // lua_tointeger truncates (x87/SSE conversion; out of range gives INT64_MIN).
            let n = if n.is_finite() && n.abs() < 9.2e18 {
                n as i64
            } else {
                i64::MIN
            };
            if n < min || n > max {
                // luaL_argcheck always reports argument #1 here (as lua-cjson does).
                return Err(arg_error(
                    1,
                    name,
                    &format!("expected integer between {min} and {max}"),
                ));
            }
            *slot = n;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Encoder

fn encode(lua: &Lua, cfg: &Config, args: MultiValue) -> LibResult {
    if args.len() != 1 {
        return Err(arg_error(1, "encode", "expected 1 argument"));
    }
    let mut out = Vec::new();
    append_value(cfg, &mut out, &args[0], 0)?;
    let s = lua.create_string(&out).map_err(|e| e.to_string())?;
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

fn escape_of(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'/' => b"\\/",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x08 => b"\\b",
        0x0c => b"\\f",
        _ => return None,
    })
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &b in s {
        if let Some(e) = escape_of(b) {
            out.extend_from_slice(e);
        } else if b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("\\u{:04x}", b).as_bytes());
        } else {
            out.push(b);
        }
    }
    out.push(b'"');
}

fn append_number(cfg: &Config, out: &mut Vec<u8>, n: f64) -> Result<(), String> {
    match cfg.encode_invalid_numbers {
        0 => {
            if !n.is_finite() {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
        }
        1 => {
            if n.is_nan() {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
        }
        _ => {
            if !n.is_finite() {
                out.extend_from_slice(b"null");
                return Ok(());
            }
        }
    }
    out.extend_from_slice(fmt_g(n, cfg.encode_number_precision as usize).as_bytes());
    Ok(())
}

/// lua_array_length over the table's pairs: Some(len) when the table is an array with len > 0, None when it
/// is an object.
fn array_length(cfg: &Config, t: &Table) -> Result<Option<usize>, String> {
    let mut max: i32 = 0;
    let mut items_n: i64 = 0;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        match num_of(&k) {
            Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                if k > max as f64 {
                    // C's (int) conversion of an out-of-range double gives INT_MIN on x86.
                    max = if k < 2147483648.0 { k as i32 } else { i32::MIN };
                }
                items_n += 1;
            }
            _ => return Ok(None),
        }
    }
    if cfg.encode_sparse_ratio > 0
        && max as i64 > items_n.saturating_mul(cfg.encode_sparse_ratio)
        && max as i64 > cfg.encode_sparse_safe
    {
        if !cfg.encode_sparse_convert {
            return Err("Cannot serialise table: excessively sparse array".into());
        }
        return Ok(None);
    }
    Ok(if max > 0 { Some(max as usize) } else { None })
}

fn append_scalar(cfg: &Config, out: &mut Vec<u8>, v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => append_string(out, &s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => append_number(cfg, out, num_of(v).unwrap_or(0.0))?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                type_name(other)
            ))
        }
    }
    Ok(())
}

/// Deepest nesting the encoder and decoder accept whatever `encode_max_depth`/`decode_max_depth` say:
/// each level holds a few Lua references, which are limited (as the C library is limited by Lua's stack).
const NESTING_LIMIT: i64 = 1800;

/// Encodes `v` at nesting `depth` (0 for the root). Holds only the values on the path being encoded, so a
/// table of any size encodes; recursion is bounded by `NESTING_LIMIT`.
fn append_value(cfg: &Config, out: &mut Vec<u8>, v: &Value, depth: i64) -> Result<(), String> {
    let Value::Table(t) = v else {
        return append_scalar(cfg, out, v);
    };
    let le = |e: mlua::Error| e.to_string();
    let depth = depth + 1;
    if depth > cfg.encode_max_depth || depth > NESTING_LIMIT {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    match array_length(cfg, t)? {
        Some(len) => {
            out.push(b'[');
            for i in 1..=len {
                if i > 1 {
                    out.push(b',');
                }
                let item: Value = t.raw_get(i as i64).map_err(le)?;
                append_value(cfg, out, &item, depth)?;
            }
            out.push(b']');
        }
        None => {
            out.push(b'{');
            let mut first = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, val) = pair.map_err(le)?;
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::Integer(_) | Value::Number(_) => {
                        out.push(b'"');
                        append_number(cfg, out, num_of(&k).unwrap_or(0.0))?;
                        out.extend_from_slice(b"\":");
                    }
                    Value::String(s) => {
                        append_string(out, &s.as_bytes());
                        out.push(b':');
                    }
                    other => {
                        return Err(format!(
                            "Cannot serialise {}: table key must be a number or string",
                            type_name(other)
                        ));
                    }
                }
                append_value(cfg, out, &val, depth)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Decoder

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

fn tok_name(t: Tok) -> &'static str {
    match t {
        Tok::ObjBegin => "T_OBJ_BEGIN",
        Tok::ObjEnd => "T_OBJ_END",
        Tok::ArrBegin => "T_ARR_BEGIN",
        Tok::ArrEnd => "T_ARR_END",
        Tok::Str => "T_STRING",
        Tok::Number => "T_NUMBER",
        Tok::Boolean => "T_BOOLEAN",
        Tok::Null => "T_NULL",
        Tok::Colon => "T_COLON",
        Tok::Comma => "T_COMMA",
        Tok::End => "T_END",
        Tok::Error => "T_ERROR",
    }
}

struct Token {
    kind: Tok,
    index: usize,
    num: f64,
    boolean: bool,
    err: &'static str,
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    depth: i64,
    cfg: &'a Config,
    tmp: Vec<u8>,
}

impl<'a> Parser<'a> {
    /// Byte at `i`, with the C string's terminating NUL past the end.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.data.get(self.pos..self.pos + s.len()) == Some(s)
    }

    fn error_token(&self, tok: &mut Token, msg: &'static str) {
        tok.kind = Tok::Error;
        tok.index = self.pos;
        tok.err = msg;
    }

    fn is_invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let rest: Vec<u8> = (0..3)
            .map(|k| self.at(p + k).to_ascii_lowercase())
            .collect();
        rest == b"inf" || rest == b"nan"
    }

    fn next_number(&mut self, tok: &mut Token) {
        tok.kind = Tok::Number;
        match c_strtod(&self.data[self.pos.min(self.data.len())..]) {
            Some((v, used)) if used > 0 => {
                tok.num = v;
                self.pos += used;
            }
            _ => self.error_token(tok, "invalid number"),
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0u32;
        for k in 0..4 {
            let d = (self.at(at + k) as char).to_digit(16)?;
            v = v * 16 + d;
        }
        Some(v)
    }

    /// Decodes the `\u` escape at self.pos (pointing at the backslash).
    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut buf = [0u8; 4];
        let s = match char::from_u32(cp) {
            Some(c) => c.encode_utf8(&mut buf).as_bytes().to_vec(),
            None => return false,
        };
        self.tmp.extend_from_slice(&s);
        self.pos += len;
        true
    }

    fn next_string(&mut self, tok: &mut Token) {
        self.pos += 1;
        self.tmp.clear();
        loop {
            let ch = self.at(self.pos);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                self.error_token(tok, "unexpected end of string");
                return;
            }
            let mut out = ch;
            if ch == b'\\' {
                let e = self.at(self.pos + 1);
                out = match e {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        self.error_token(tok, "invalid unicode escape code");
                        return;
                    }
                    _ => {
                        self.error_token(tok, "invalid escape code");
                        return;
                    }
                };
                self.pos += 1;
            }
            self.tmp.push(out);
            self.pos += 1;
        }
        self.pos += 1;
        tok.kind = Tok::Str;
    }

    fn next_token(&mut self) -> Token {
        let mut tok = Token {
            kind: Tok::End,
            index: 0,
            num: 0.0,
            boolean: false,
            err: "",
        };
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        tok.index = self.pos;
        let ch = self.at(self.pos);
        let single = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            0 => {
                tok.kind = Tok::End;
                return tok;
            }
            _ => None,
        };
        if let Some(k) = single {
            tok.kind = k;
            self.pos += 1;
            return tok;
        }
        let unknown = matches!(
            ch,
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9'
        );
        if !unknown {
            self.error_token(&mut tok, "invalid token");
            return tok;
        }
        if ch == b'"' {
            self.next_string(&mut tok);
        } else if ch == b'-' || ch.is_ascii_digit() {
            if !self.cfg.decode_invalid_numbers && self.is_invalid_number() {
                self.error_token(&mut tok, "invalid number");
            } else {
                self.next_number(&mut tok);
            }
        } else if self.starts_with(b"true") {
            tok.kind = Tok::Boolean;
            tok.boolean = true;
            self.pos += 4;
        } else if self.starts_with(b"false") {
            tok.kind = Tok::Boolean;
            self.pos += 5;
        } else if self.starts_with(b"null") {
            tok.kind = Tok::Null;
            self.pos += 4;
        } else if self.cfg.decode_invalid_numbers && self.is_invalid_number() {
            self.next_number(&mut tok);
        } else {
            self.error_token(&mut tok, "invalid token");
        }
        tok
    }

    fn parse_error(&self, expected: &str, tok: &Token) -> String {
        let found = if tok.kind == Tok::Error {
            tok.err
        } else {
            tok_name(tok.kind)
        };
        format!(
            "Expected {expected} but found {found} at character {}",
            tok.index + 1
        )
    }

    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth || self.depth > NESTING_LIMIT {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.pos
            ));
        }
        Ok(())
    }

    fn scalar(&self, lua: &Lua, tok: &Token) -> Result<Option<Value>, String> {
        let le = |e: mlua::Error| e.to_string();
        Ok(Some(match tok.kind {
            Tok::Str => Value::String(lua.create_string(&self.tmp).map_err(le)?),
            Tok::Number => Value::Number(tok.num),
            Tok::Boolean => Value::Boolean(tok.boolean),
            Tok::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
            _ => return Ok(None),
        }))
    }

    /// Reads `"key" :` (the key token already read) and returns the key.
    fn object_key(&mut self, lua: &Lua, tok: &Token) -> Result<mlua::LuaString, String> {
        if tok.kind != Tok::Str {
            return Err(self.parse_error("object key string", tok));
        }
        let key = lua.create_string(&self.tmp).map_err(|e| e.to_string())?;
        let colon = self.next_token();
        if colon.kind != Tok::Colon {
            return Err(self.parse_error("colon", &colon));
        }
        Ok(key)
    }

    /// Parses one value starting with `tok` (iteratively: nesting never grows the native stack).
    fn value(&mut self, lua: &Lua, first: Token) -> Result<Value, String> {
        enum Frame {
            Arr { t: Table, i: i64 },
            Obj { t: Table, key: mlua::LuaString },
        }
        let le = |e: mlua::Error| e.to_string();
        let mut stack: Vec<Frame> = Vec::new();
        let mut tok = first;
        loop {
            let mut v = match self.scalar(lua, &tok)? {
                Some(v) => v,
                None => match tok.kind {
                    Tok::ObjBegin => {
                        self.descend()?;
                        let t = lua.create_table().map_err(le)?;
                        let nt = self.next_token();
                        if nt.kind == Tok::ObjEnd {
                            self.depth -= 1;
                            Value::Table(t)
                        } else {
                            let key = self.object_key(lua, &nt)?;
                            stack.push(Frame::Obj { t, key });
                            tok = self.next_token();
                            continue;
                        }
                    }
                    Tok::ArrBegin => {
                        self.descend()?;
                        let t = lua.create_table().map_err(le)?;
                        let nt = self.next_token();
                        if nt.kind == Tok::ArrEnd {
                            self.depth -= 1;
                            Value::Table(t)
                        } else {
                            stack.push(Frame::Arr { t, i: 1 });
                            tok = nt;
                            continue;
                        }
                    }
                    _ => return Err(self.parse_error("value", &tok)),
                },
            };
            // Attach the completed value to its parents, closing those that end here.
            loop {
                match stack.last_mut() {
                    None => return Ok(v),
                    Some(Frame::Arr { t, i }) => {
                        t.raw_set(*i, v).map_err(le)?;
                        *i += 1;
                        let nt = self.next_token();
                        if nt.kind == Tok::ArrEnd {
                            self.depth -= 1;
                            v = Value::Table(t.clone());
                            stack.pop();
                            continue;
                        }
                        if nt.kind != Tok::Comma {
                            return Err(self.parse_error("comma or array end", &nt));
                        }
                        tok = self.next_token();
                        break;
                    }
                    Some(Frame::Obj { t, key }) => {
                        t.raw_set(key.clone(), v).map_err(le)?;
                        let nt = self.next_token();
                        if nt.kind == Tok::ObjEnd {
                            self.depth -= 1;
                            v = Value::Table(t.clone());
                            stack.pop();
                            continue;
                        }
                        if nt.kind != Tok::Comma {
                            return Err(self.parse_error("comma or object end", &nt));
                        }
                        let kt = self.next_token();
                        *key = self.object_key(lua, &kt)?;
                        tok = self.next_token();
                        break;
                    }
                }
            }
        }
    }
}

fn decode(lua: &Lua, cfg: &Config, args: MultiValue) -> LibResult {
    if args.len() != 1 {
        return Err(arg_error(1, "decode", "expected 1 argument"));
    }
    let data: Vec<u8> = match &args[0] {
        Value::String(s) => s.as_bytes().to_vec(),
        v @ (Value::Integer(_) | Value::Number(_)) => {
            fmt_g(num_of(v).unwrap_or(0.0), 14).into_bytes()
        }
        other => {
            return Err(arg_error(
                1,
                "decode",
                &format!("string expected, got {}", type_name(other)),
            ))
        }
    };
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err("JSON parser does not support UTF-16 or UTF-32".into());
    }
    let mut p = Parser {
        data: &data,
        pos: 0,
        depth: 0,
        cfg,
        tmp: Vec::new(),
    };
    let tok = p.next_token();
    let v = p.value(lua, tok)?;
    let end = p.next_token();
    if end.kind != Tok::End {
        return Err(p.parse_error("the end", &end));
    }
    Ok(MultiValue::from_vec(vec![v]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `code` in a fresh Lua with all four libraries and returns its result as Redis would show a string
    /// (or the error message prefixed with "ERR user_script:1: ").
    pub(crate) fn run(code: &str) -> String {
        // On a thread with the stack scripts get in the server (the encoder recurses per nesting level).
        let code = code.to_string();
        std::thread::Builder::new()
            .stack_size(crate::scripting::sandbox::WORKER_STACK_BYTES)
            .spawn(move || run_here(&code))
            .unwrap()
            .join()
            .unwrap()
    }

    fn run_here(code: &str) -> String {
        let lua = Lua::new();
        register(&lua).unwrap();
        super::super::cmsgpack::register(&lua).unwrap();
        super::super::bit::register(&lua).unwrap();
        super::super::structlib::register(&lua).unwrap();
        match lua.load(code).set_name("@user_script").eval::<Value>() {
            Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            Ok(Value::Integer(i)) => i.to_string(),
            Ok(Value::Number(n)) => fmt_g(n, 17),
            Ok(Value::Boolean(b)) => b.to_string(),
            Ok(Value::Nil) => "nil".into(),
            Ok(other) => format!("<{}>", type_name(&other)),
            Err(e) => {
                let s = match &e {
                    mlua::Error::RuntimeError(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("ERR {}", s.lines().next().unwrap_or(""))
            }
        }
    }

    #[test]
    fn fmt_g_matches_printf() {
        assert_eq!(fmt_g(0.1, 14), "0.1");
        assert_eq!(fmt_g(1.0 / 3.0, 14), "0.33333333333333");
        assert_eq!(fmt_g(1e20, 14), "1e+20");
        assert_eq!(fmt_g(-0.0, 14), "-0");
        assert_eq!(fmt_g(2f64.powi(53), 14), "9.007199254741e+15");
        assert_eq!(fmt_g(-1.5e-7, 14), "-1.5e-07");
        assert_eq!(fmt_g(123456789012345678.0, 14), "1.2345678901235e+17");
        assert_eq!(fmt_g(100.0, 14), "100");
        assert_eq!(fmt_g(0.0001, 14), "0.0001");
        assert_eq!(fmt_g(1e15, 17), "1000000000000000");
    }

    #[test]
    fn encode_like_redis() {
        assert_eq!(run("return cjson.encode({1,2,3})"), "[1,2,3]");
        assert_eq!(run("return cjson.encode({})"), "{}");
        assert_eq!(
            run("return cjson.encode({a='x/y\\n\\1'})"),
            "{\"a\":\"x\\/y\\n\\u0001\"}"
        );
        assert_eq!(run("return cjson.encode(1e20)"), "1e+20");
        assert_eq!(
            run("return cjson.encode(0/0)"),
            "ERR user_script:1: Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(
            run("return cjson.encode({[1]=1,[2]=2,[12]=3})"),
            "ERR user_script:1: Cannot serialise table: excessively sparse array"
        );
        assert_eq!(
            run("return cjson.encode({[1]=1,[2]=2,[4]=3})"),
            "[1,2,null,3]"
        );
        assert_eq!(
            run("return cjson.encode({[true]=1})"),
            "ERR user_script:1: Cannot serialise boolean: table key must be a number or string"
        );
        assert_eq!(run("return cjson.encode({[1.5]=1})"), "{\"1.5\":1}");
        assert_eq!(
            run("return cjson.encode({[1e10]=1})"),
            "{\"10000000000\":1}"
        );
        assert_eq!(
            run("return cjson.encode({[1/0]=1})"),
            "ERR user_script:1: Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(run("return cjson.encode(cjson.null)"), "null");
        assert_eq!(
            run("local t={} local c=t for i=1,1001 do c[1]={} c=c[1] end return cjson.encode(t)"),
            "ERR user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        assert_eq!(
            run("return cjson.encode()"),
            "ERR user_script:1: bad argument #1 to 'encode' (expected 1 argument)"
        );
        assert_eq!(
            run("return cjson.encode(1, 2)"),
            "ERR user_script:1: bad argument #1 to 'encode' (expected 1 argument)"
        );
        assert_eq!(run("return cjson.encode({[-1]=1})"), "{\"-1\":1}");
        assert_eq!(
            run("return cjson.encode({1,2,a=1})"),
            "{\"1\":1,\"2\":2,\"a\":1}"
        );
        assert_eq!(
            run("return cjson.encode({a={}, b={1,2}, c='x'})"),
            "{\"a\":{},\"c\":\"x\",\"b\":[1,2]}"
        );
        assert_eq!(
            run("local t={} for i=1,20 do t['k'..i]=i end return cjson.encode(t)"),
            "{\"k16\":16,\"k19\":19,\"k11\":11,\"k17\":17,\"k15\":15,\"k20\":20,\"k10\":10,\"k8\":8,\"k1\":1,\
             \"k12\":12,\"k3\":3,\"k2\":2,\"k9\":9,\"k13\":13,\"k18\":18,\"k14\":14,\"k6\":6,\"k7\":7,\"k4\":4,\
             \"k5\":5}"
        );
        assert_eq!(run("return cjson.encode('\\127')"), "\"\\u007f\"");
        assert_eq!(
            run("return cjson.encode(print)"),
            "ERR user_script:1: Cannot serialise function: type not supported"
        );
    }

    #[test]
    fn config_like_redis() {
        assert_eq!(run("return cjson.encode_keep_buffer()"), "true");
        assert_eq!(run("return cjson.encode_max_depth()"), "1000");
        assert_eq!(run("return cjson.encode_invalid_numbers()"), "false");
        assert_eq!(run("return cjson.encode_number_precision()"), "14");
        assert_eq!(run("return cjson.decode_invalid_numbers()"), "true");
        assert_eq!(run("local a,b,c = cjson.encode_sparse_array(true, 2, 10) return tostring(a)..','..b..','..c"), "true,2,10");
        assert_eq!(
            run("return cjson.encode_number_precision(15)"),
            "ERR user_script:1: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"
        );
        assert_eq!(
            run("return cjson.encode_number_precision('x')"),
            "ERR user_script:1: bad argument #1 to 'encode_number_precision' (number expected, got string)"
        );
        assert_eq!(
            run("return cjson.encode_invalid_numbers('x')"),
            "ERR user_script:1: bad argument #1 to 'encode_invalid_numbers' (invalid option 'x')"
        );
        assert_eq!(
            run("local c=cjson.new() c.encode_invalid_numbers(true) return c.encode({1/0,-1/0,0/0})"),
            "[inf,-inf,nan]"
        );
        assert_eq!(
            run("local c=cjson.new() c.encode_invalid_numbers('null') return c.encode({1/0,0/0})"),
            "[null,null]"
        );
        assert_eq!(run("return cjson._NAME .. cjson._VERSION"), "cjson2.1.0");
    }

    #[test]
    fn decode_like_redis() {
        assert_eq!(
            run("return cjson.decode('x')"),
            "ERR user_script:1: Expected value but found invalid token at character 1"
        );
        assert_eq!(
            run("return cjson.decode('[1,2')"),
            "ERR user_script:1: Expected comma or array end but found T_END at character 5"
        );
        assert_eq!(run("return cjson.decode('{\"a\":1}').a"), "1");
        assert_eq!(run("return type(cjson.decode('null'))"), "userdata");
        assert_eq!(run("return cjson.decode('null') == cjson.null"), "true");
        assert_eq!(run("return cjson.decode('\"\\\\u00e9\"')"), "é");
        assert_eq!(
            run("return cjson.encode(cjson.decode('123456789012345678'))"),
            "1.2345678901235e+17"
        );
        assert_eq!(
            run("return cjson.decode('[1,]')"),
            "ERR user_script:1: Expected value but found T_ARR_END at character 4"
        );
        assert_eq!(
            run("return cjson.decode('')"),
            "ERR user_script:1: Expected value but found T_END at character 1"
        );
        assert_eq!(
            run("return cjson.decode('  [1] x')"),
            "ERR user_script:1: Expected the end but found invalid token at character 7"
        );
        assert_eq!(
            run("return cjson.decode('\"\\\\ud800\"')"),
            "ERR user_script:1: Expected value but found invalid unicode escape code at character 2"
        );
        assert_eq!(
            run("return cjson.decode('{\"a\" 1}')"),
            "ERR user_script:1: Expected colon but found T_NUMBER at character 6"
        );
        assert_eq!(
            run("return cjson.decode('{1:1}')"),
            "ERR user_script:1: Expected object key string but found T_NUMBER at character 2"
        );
        assert_eq!(run("return tostring(cjson.decode('nan'))"), "nan");
        assert_eq!(run("return cjson.decode('[1e400]')[1] == 1/0"), "true");
        assert_eq!(
            run("return cjson.decode('[[[')"),
            "ERR user_script:1: Expected value but found T_END at character 4"
        );
        assert_eq!(
            run("return cjson.decode({})"),
            "ERR user_script:1: bad argument #1 to 'decode' (string expected, got table)"
        );
        assert_eq!(run("return cjson.decode(12)"), "12");
        assert_eq!(
            run("return cjson.decode('\"a\\\\x\"')"),
            "ERR user_script:1: Expected value but found invalid escape code at character 3"
        );
        assert_eq!(
            run("return cjson.decode('\"abc')"),
            "ERR user_script:1: Expected value but found unexpected end of string at character 5"
        );
        assert_eq!(
            run("local ok,e = pcall(cjson.decode,'x') return type(e)"),
            "string"
        );
        assert_eq!(run("return cjson.decode('[0x10]')[1]"), "16");
        assert_eq!(
            run("return cjson.decode(string.rep('[', 1001))"),
            "ERR user_script:1: Found too many nested data structures (1001) at character 1001"
        );
        // Deep input does not crash.
        assert!(run("return cjson.decode(string.rep('[', 100000))")
            .starts_with("ERR user_script:1: Found too many"));
        assert_eq!(
            run("return #cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))"),
            "1"
        );
    }
}
