//! Lua library `cmsgpack` (written in Rust on mlua).
//!
//! Behaves like lua-cmsgpack 0.4.0 as embedded in Redis 7.0: `pack` (several arguments → concatenated
//! encodings), `unpack`, `unpack_one`, `unpack_limit`, with the same encoding choices (integral doubles as the
//! smallest integer encoding, others as float32 when exact else float64, tables as arrays when their keys are
//! exactly 1..n, nesting deeper than 16 tables encoded as nil) and the same error messages, including the Lua
//! stack limits the C library runs into (emulated by counting the slots it would use). Decoding is iterative, so
//! no input can overflow the native stack.

use super::cjson::{arg_error, fmt_g, lua_fn, num_of, to_number, type_name, LibResult, RAW_ERROR};
use mlua::{Lua, MultiValue, Table, Value};

/// Tables nested deeper than this are encoded as nil (LUACMSGPACK_MAX_NESTING).
const MAX_NESTING: usize = 16;
/// LUAI_MAXCSTACK of Lua 5.1: the most stack slots a C function may use.
const MAX_CSTACK: usize = 8000;

/// Registers the global `cmsgpack` table.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set("pack", lua_fn(lua, pack)?)?;
    t.set(
        "unpack",
        lua_fn(lua, |lua, args| unpack_entry(lua, args, "unpack"))?,
    )?;
    t.set(
        "unpack_one",
        lua_fn(lua, |lua, args| unpack_entry(lua, args, "unpack_one"))?,
    )?;
    t.set(
        "unpack_limit",
        lua_fn(lua, |lua, args| unpack_entry(lua, args, "unpack_limit"))?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    lua.globals().set("cmsgpack", t)
}

// ---------------------------------------------------------------------------------------------------------
// Encoder

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    // IS_INT64_EQUIVALENT: finite and (int64_t)n == n (out-of-range conversions give INT64_MIN on x86).
    if (-9223372036854775808.0..9223372036854775808.0).contains(&n) && n.trunc() == n {
        encode_int(out, n as i64);
    } else {
        let f = n as f32;
        if f as f64 == n {
            out.push(0xca);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        } else {
            out.push(0xcb);
            out.extend_from_slice(&n.to_bits().to_be_bytes());
        }
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// table_is_an_array: every key a positive number equal to an `int`, and max key == count.
fn encode_value(out: &mut Vec<u8>, v: &Value, level: usize) -> Result<(), String> {
    let le = |e: mlua::Error| e.to_string();
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(_) | Value::Number(_) => encode_number(out, num_of(v).unwrap_or(0.0)),
        Value::Table(t) if level < MAX_NESTING => {
            // First pass over the keys only (a table of any size never holds more than one pair at a
            // time): an array has exactly the keys 1..n.
            let mut n: usize = 0;
            let mut max: i64 = 0;
            let mut array = true;
            for p in t.pairs::<Value, Value>() {
                let (k, _) = p.map_err(le)?;
                n += 1;
                if array {
                    match num_of(&k) {
                        Some(x) if x > 0.0 && x < 2147483648.0 && x.trunc() == x => {
                            max = max.max(x as i64)
                        }
                        _ => array = false,
                    }
                }
            }
            if array && max == n as i64 {
                encode_header(out, n, 0x90, 0xdc, 0xdd);
                for i in 1..=n {
                    let item: Value = t.get(i as i64).map_err(le)?;
                    encode_value(out, &item, level + 1)?;
                }
            } else {
                encode_header(out, n, 0x80, 0xde, 0xdf);
                for p in t.pairs::<Value, Value>() {
                    let (k, val) = p.map_err(le)?;
                    encode_value(out, &k, level + 1)?;
                    encode_value(out, &val, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack(lua: &Lua, args: MultiValue) -> LibResult {
    if args.is_empty() {
        return Err(arg_error(0, "pack", "MessagePack pack needs input."));
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode_value(&mut out, v, 0)?;
    }
    let s = lua.create_string(&out).map_err(|e| e.to_string())?;
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

// ---------------------------------------------------------------------------------------------------------
// Decoder

enum DecErr {
    Eof,
    BadFmt,
    Lua(String),
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Lua stack slots the C decoder would be using (for its stack-overflow errors).
    used: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn need(&self, n: usize) -> Result<(), DecErr> {
        if self.left() < n {
            Err(DecErr::Eof)
        } else {
            Ok(())
        }
    }

    fn be(&self, at: usize, n: usize) -> u64 {
        let mut v = 0u64;
        for k in 0..n {
            v = (v << 8) | self.data[self.pos + at + k] as u64;
        }
        v
    }

    fn check_stack(&self, msg: &str) -> Result<(), DecErr> {
        if self.used + 1 > MAX_CSTACK {
            return Err(DecErr::Lua(format!("stack overflow ({msg})")));
        }
        Ok(())
    }

    /// Decodes one value (iteratively).
    fn decode(&mut self, lua: &Lua) -> Result<Value, DecErr> {
        enum Frame {
            Arr {
                t: Table,
                idx: i64,
                remaining: u64,
            },
            Map {
                t: Table,
                remaining: u64,
                key: Option<Value>,
            },
        }
        let le = |e: mlua::Error| DecErr::Lua(e.to_string());
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Decode the next value: a scalar, or the header of a container.
            self.check_stack(
                "too many return values at once; use unpack_one or unpack_limit instead.",
            )?;
            self.need(1)?;
            let b = self.data[self.pos];
            let mut container: Option<(bool, u64)> = None; // (is_array, count)
            let scalar: Option<Value> = match b {
                0xcc | 0xd0 => {
                    self.need(2)?;
                    let x = self.data[self.pos + 1];
                    self.pos += 2;
                    Some(Value::Number(if b == 0xcc {
                        x as f64
                    } else {
                        x as i8 as f64
                    }))
                }
                0xcd | 0xd1 => {
                    self.need(3)?;
                    let x = self.be(1, 2) as u16;
                    self.pos += 3;
                    Some(Value::Number(if b == 0xcd {
                        x as f64
                    } else {
                        x as i16 as f64
                    }))
                }
                0xce | 0xd2 => {
                    self.need(5)?;
                    let x = self.be(1, 4) as u32;
                    self.pos += 5;
                    Some(Value::Number(if b == 0xce {
                        x as f64
                    } else {
                        x as i32 as f64
                    }))
                }
                0xcf | 0xd3 => {
                    self.need(9)?;
                    let x = self.be(1, 8);
                    self.pos += 9;
                    // Both push a lua_Integer (int64): uint64 values above INT64_MAX wrap negative.
                    Some(Value::Number(x as i64 as f64))
                }
                0xc0 => {
                    self.pos += 1;
                    Some(Value::Nil)
                }
                0xc3 | 0xc2 => {
                    self.pos += 1;
                    Some(Value::Boolean(b == 0xc3))
                }
                0xca => {
                    self.need(5)?;
                    let x = f32::from_bits(self.be(1, 4) as u32);
                    self.pos += 5;
                    Some(Value::Number(x as f64))
                }
                0xcb => {
                    self.need(9)?;
                    let x = f64::from_bits(self.be(1, 8));
                    self.pos += 9;
                    Some(Value::Number(x))
                }
                0xd9..=0xdb => {
                    let n = match b {
                        0xd9 => 1,
                        0xda => 2,
                        _ => 4,
                    };
                    self.need(1 + n)?;
                    let l = self.be(1, n) as usize;
                    self.need(1 + n + l)?;
                    let start = self.pos + 1 + n;
                    let s = lua
                        .create_string(&self.data[start..start + l])
                        .map_err(le)?;
                    self.pos = start + l;
                    Some(Value::String(s))
                }
                0xdc..=0xdf => {
                    let n = if b == 0xdc || b == 0xde { 2 } else { 4 };
                    self.need(1 + n)?;
                    let l = self.be(1, n);
                    self.pos += 1 + n;
                    container = Some((b <= 0xdd, l));
                    None
                }
                _ if b & 0x80 == 0 => {
                    self.pos += 1;
                    Some(Value::Number(b as f64))
                }
                _ if b & 0xe0 == 0xe0 => {
                    self.pos += 1;
                    Some(Value::Number(b as i8 as f64))
                }
                _ if b & 0xe0 == 0xa0 => {
                    let l = (b & 0x1f) as usize;
                    self.need(1 + l)?;
                    let s = lua
                        .create_string(&self.data[self.pos + 1..self.pos + 1 + l])
                        .map_err(le)?;
                    self.pos += 1 + l;
                    Some(Value::String(s))
                }
                _ if b & 0xf0 == 0x90 || b & 0xf0 == 0x80 => {
                    self.pos += 1;
                    container = Some((b & 0xf0 == 0x90, (b & 0x0f) as u64));
                    None
                }
                _ => return Err(DecErr::BadFmt),
            };
            let mut v = match scalar {
                Some(v) => {
                    self.used += 1;
                    v
                }
                None => {
                    let (is_arr, count) = container.unwrap_or((true, 0));
                    let t = lua.create_table().map_err(le)?;
                    self.used += 1;
                    if is_arr {
                        self.check_stack("in function mp_decode_to_lua_array")?;
                    }
                    if count == 0 {
                        Value::Table(t)
                    } else {
                        if is_arr {
                            self.used += 1; // the index
                            stack.push(Frame::Arr {
                                t,
                                idx: 1,
                                remaining: count,
                            });
                        } else {
                            stack.push(Frame::Map {
                                t,
                                remaining: count,
                                key: None,
                            });
                        }
                        continue;
                    }
                }
            };
            // Attach the completed value to its parents.
            loop {
                match stack.last_mut() {
                    None => return Ok(v),
                    Some(Frame::Arr { t, idx, remaining }) => {
                        t.raw_set(*idx, v).map_err(le)?;
                        self.used -= 2;
                        *remaining -= 1;
                        if *remaining == 0 {
                            v = Value::Table(t.clone());
                            stack.pop();
                            continue;
                        }
                        *idx += 1;
                        self.used += 1;
                        break;
                    }
                    Some(Frame::Map { t, remaining, key }) => {
                        let Some(k) = key.take() else {
                            *key = Some(v);
                            break;
                        };
                        match &k {
                            Value::Nil => {
                                return Err(DecErr::Lua(format!("{RAW_ERROR}table index is nil")))
                            }
                            Value::Number(n) if n.is_nan() => {
                                return Err(DecErr::Lua(format!("{RAW_ERROR}table index is NaN")));
                            }
                            _ => {}
                        }
                        t.raw_set(k, v).map_err(le)?;
                        self.used -= 2;
                        *remaining -= 1;
                        if *remaining == 0 {
                            v = Value::Table(t.clone());
                            stack.pop();
                            continue;
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// luaL_optinteger / luaL_checkinteger, truncated to a C int as lua-cmsgpack stores it.
fn int_arg(args: &MultiValue, idx: usize, name: &str, optional: bool) -> Result<i32, String> {
    match args.get(idx) {
        None | Some(Value::Nil) if optional => Ok(0),
        v => {
            let v = v.cloned().unwrap_or(Value::Nil);
            match to_number(&v) {
                Some(n) => {
                    let i = if n.is_finite() && n.abs() < 9.2e18 {
                        n as i64
                    } else {
                        i64::MIN
                    };
                    Ok(i as i32)
                }
                None => {
                    let got = if idx >= args.len() {
                        "no value"
                    } else {
                        type_name(&v)
                    };
                    Err(arg_error(
                        idx + 1,
                        name,
                        &format!("number expected, got {got}"),
                    ))
                }
            }
        }
    }
}

fn unpack_entry(lua: &Lua, args: MultiValue, name: &str) -> LibResult {
    let data: Vec<u8> = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            fmt_g(num_of(v).unwrap_or(0.0), 14).into_bytes()
        }
        other => {
            let got = other.map(type_name).unwrap_or("no value");
            return Err(arg_error(1, name, &format!("string expected, got {got}")));
        }
    };
    let (limit, offset) = match name {
        "unpack" => (0, 0),
        "unpack_one" => (1, int_arg(&args, 1, name, true)?),
        _ => {
            let limit = int_arg(&args, 1, name, false)?;
            (limit, int_arg(&args, 2, name, true)?)
        }
    };
    unpack_full(lua, &data, limit, offset)
}

fn unpack_full(lua: &Lua, data: &[u8], limit: i32, offset: i32) -> LibResult {
    let decode_all = limit == 0 && offset == 0;
    let len = data.len();
    if offset < 0 || limit < 0 {
        return Err(format!(
            "Invalid request to unpack with offset of {offset} and limit of {}.",
            len as i32
        ));
    }
    if offset as usize > len {
        return Err(format!(
            "Start offset {offset} greater than input length {}.",
            len as i32
        ));
    }
    let limit = if decode_all { i32::MAX } else { limit };
    let mut c = Cursor {
        data,
        pos: offset as usize,
        used: 1,
    };
    let mut out = Vec::new();
    let mut cnt = 0;
    while c.left() > 0 && cnt < limit {
        match c.decode(lua) {
            Ok(v) => out.push(v),
            Err(DecErr::Eof) => return Err("Missing bytes in input.".into()),
            Err(DecErr::BadFmt) => return Err("Bad data format in input.".into()),
            Err(DecErr::Lua(m)) => return Err(m),
        }
        cnt += 1;
    }
    if !decode_all {
        let next = if c.left() == 0 {
            -1
        } else {
            (len - c.left()) as i64
        };
        out.insert(0, Value::Integer(next));
    }
    Ok(MultiValue::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::super::cjson::tests::run;

    /// Hex of the packed string.
    fn hex(code: &str) -> String {
        run(&format!(
            "return ({code}):gsub('.', function(c) return string.format('%02x', c:byte()) end)"
        ))
    }

    #[test]
    fn pack_like_redis() {
        assert_eq!(hex("cmsgpack.pack({})"), "90");
        assert_eq!(
            hex("cmsgpack.pack(1,-1,200,-200,70000,-70000,5000000000,0.5,0.1,1/0,0/0,true,false,nil,'abc',\
                 string.rep('x',40), {1,2}, {a=1})"),
            format!(
                "01ffccc8d1ff38ce00011170d2fffeee90cf000000012a05f200ca3f000000cb3fb999999999999aca7f800000\
                 cbfff8000000000000c3c2c0a3616263d928{}92010281a16101",
                "78".repeat(40)
            )
        );
        assert_eq!(
            hex("cmsgpack.pack(2^63, -2^63, 2^64, 1e300)"),
            "ca5f000000d38000000000000000ca5f800000cb7e37e43c8800759c"
        );
        assert_eq!(hex("(function() local t={} local c=t for i=1,20 do c[1]={} c=c[1] end return cmsgpack.pack(t) end)()"),
            format!("{}c0", "91".repeat(16)));
        assert_eq!(hex("cmsgpack.pack({[1]=1,[3]=3})"), "8201010303");
        assert_eq!(
            run("return cmsgpack.pack()"),
            "ERR user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"
        );
        assert_eq!(
            run("return cmsgpack._NAME..cmsgpack._VERSION..cmsgpack._COPYRIGHT..cmsgpack._DESCRIPTION"),
            "cmsgpacklua-cmsgpack 0.4.0Copyright (C) 2012, Salvatore SanfilippoMessagePack C implementation for Lua"
        );
    }

    #[test]
    fn unpack_like_redis() {
        assert_eq!(
            run("return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')"),
            "-1"
        );
        assert_eq!(
            run("return cmsgpack.unpack('\\193')"),
            "ERR user_script:1: Bad data format in input."
        );
        assert_eq!(
            run("return cmsgpack.unpack('\\146\\1')"),
            "ERR user_script:1: Missing bytes in input."
        );
        assert_eq!(
            run("return cmsgpack.unpack(string.rep('\\145', 5000)..'\\0')"),
            "ERR user_script:1: stack overflow (in function mp_decode_to_lua_array)"
        );
        assert_eq!(
            run("return #{cmsgpack.unpack(string.rep('\\0', 10000))}"),
            "ERR user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
        );
        assert_eq!(
            run("return #{cmsgpack.unpack(string.rep('\\0', 7990))}"),
            "7990"
        );
        assert_eq!(
            run("return table.concat({cmsgpack.unpack_one(cmsgpack.pack(1,2,3))}, ',')"),
            "1,1"
        );
        assert_eq!(
            run("return table.concat({cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 2)}, ',')"),
            "-1,3"
        );
        assert_eq!(
            run("return table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2)}, ',')"),
            "2,1,2"
        );
        assert_eq!(
            run("return table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 0)}, ',')"),
            "1,2,3"
        );
        assert_eq!(
            run("return cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 10)"),
            "ERR user_script:1: Start offset 10 greater than input length 3."
        );
        assert_eq!(
            run("return cmsgpack.unpack_one(cmsgpack.pack(1,2,3), -1)"),
            "ERR user_script:1: Invalid request to unpack with offset of -1 and limit of 3."
        );
        assert_eq!(
            run("return cmsgpack.unpack('\\129\\192\\1')"),
            "ERR table index is nil"
        );
        assert_eq!(run("return select('#', cmsgpack.unpack(''))"), "0");
        assert_eq!(
            run("return cmsgpack.unpack()"),
            "ERR user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"
        );
        assert_eq!(run("return cmsgpack.unpack_limit('', 1)"), "-1");
        assert_eq!(
            run("return cmsgpack.unpack_limit('abc', 'x')"),
            "ERR user_script:1: bad argument #2 to 'unpack_limit' (number expected, got string)"
        );
        assert_eq!(
            run("local t = cmsgpack.unpack(cmsgpack.pack({a={1,2,{b='x'}}, c=1.5})) return t.a[3].b .. t.c"),
            "x1.5"
        );
        assert_eq!(
            run("return select(2, cmsgpack.unpack(cmsgpack.pack(false, 1)))"),
            "1"
        );
        // Malformed lengths never panic.
        assert_eq!(
            run("return cmsgpack.unpack('\\219\\255\\255\\255\\255')"),
            "ERR user_script:1: Missing bytes in input."
        );
        assert_eq!(
            run("return cmsgpack.unpack('\\221\\255\\255\\255\\255')"),
            "ERR user_script:1: Missing bytes in input."
        );
    }
}
