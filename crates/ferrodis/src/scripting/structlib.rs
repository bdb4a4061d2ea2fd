//! Lua library `struct` (written in Rust on mlua).
//!
//! Behaves like lua-struct 0.2 as embedded in Redis 7.0: `struct.pack`, `struct.unpack`, `struct.size` with the
//! format language `<` `>` (endianness), `!n` (max alignment), `x` (padding), `b/B h/H l/L T i/In I/In`
//! (integers of 1, 2, 8, 8, 4 or n bytes, n up to 32), `f`/`d` (floats), `cn`/`c0` (fixed strings), `s`
//! (NUL-terminated string) and spaces, on a little-endian 64-bit host, with the same error messages and the
//! same quirks (integers wider than 8 bytes are not sign-extended when packed, the format stops at a NUL).

use super::cjson::{arg_error, fmt_g, lua_fn, num_of, to_number, type_name, LibResult};
use mlua::{Lua, MultiValue, Value};

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;
/// LUAI_MAXCSTACK of Lua 5.1.
const MAX_CSTACK: usize = 8000;

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

struct Fmt<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Fmt<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn getnum(&mut self, df: usize) -> Result<usize, String> {
        if !self.peek().is_ascii_digit() {
            return Ok(df);
        }
        let mut a: i64 = 0;
        while self.peek().is_ascii_digit() {
            let d = (self.peek() - b'0') as i64;
            if a > i32::MAX as i64 / 10 || a * 10 > i32::MAX as i64 - d {
                return Err("integral size overflow".into());
            }
            a = a * 10 + d;
            self.pos += 1;
        }
        Ok(a as usize)
    }

    fn optsize(&mut self, opt: u8) -> Result<usize, String> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' => 8,
            b'T' => 8,
            b'f' => 4,
            b'd' => 8,
            b'x' => 1,
            b'c' => self.getnum(1)?,
            b'i' | b'I' => {
                let sz = self.getnum(4)?;
                if sz > MAXINTSIZE {
                    return Err(format!(
                        "integral size {sz} is larger than limit of {MAXINTSIZE}"
                    ));
                }
                sz
            }
            _ => 0,
        })
    }

    fn controloptions(&mut self, opt: u8, h: &mut Header, name: &str) -> Result<(), String> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.getnum(MAXALIGN)?;
                if a == 0 || a & (a - 1) != 0 {
                    return Err(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
            }
            _ => {
                let c = String::from_utf8_lossy(&[opt]).into_owned();
                return Err(arg_error(1, name, &format!("invalid format option '{c}'")));
            }
        }
        Ok(())
    }
}

/// gettoalign (returns a C int, hence the truncation).
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> i32 {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)) as i32
}

/// The format string as a C string (up to the first NUL).
fn format_arg(args: &MultiValue, name: &str) -> Result<Vec<u8>, String> {
    let mut v = string_arg(args, 0, name)?;
    if let Some(p) = v.iter().position(|&b| b == 0) {
        v.truncate(p);
    }
    Ok(v)
}

/// luaL_checklstring of argument `idx` (0-based); `missing` is the type shown when it is absent.
fn string_arg_or(
    args: &MultiValue,
    idx: usize,
    name: &str,
    missing: &str,
) -> Result<Vec<u8>, String> {
    match args.get(idx) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            Ok(fmt_g(num_of(v).unwrap_or(0.0), 14).into_bytes())
        }
        Some(v) => Err(arg_error(
            idx + 1,
            name,
            &format!("string expected, got {}", type_name(v)),
        )),
        None => Err(arg_error(
            idx + 1,
            name,
            &format!("string expected, got {missing}"),
        )),
    }
}

fn string_arg(args: &MultiValue, idx: usize, name: &str) -> Result<Vec<u8>, String> {
    string_arg_or(args, idx, name, "no value")
}

/// What pack sees past its arguments: a nil marker right after them, nothing further.
fn missing_in_pack(args: &MultiValue, idx: usize) -> &'static str {
    if idx == args.len() {
        "nil"
    } else {
        "no value"
    }
}

fn number_arg_pack(args: &MultiValue, idx: usize) -> Result<f64, String> {
    match args.get(idx) {
        Some(v) => to_number(v).ok_or_else(|| {
            arg_error(
                idx + 1,
                "pack",
                &format!("number expected, got {}", type_name(v)),
            )
        }),
        None => Err(arg_error(
            idx + 1,
            "pack",
            &format!("number expected, got {}", missing_in_pack(args, idx)),
        )),
    }
}

/// C conversions of a double to unsigned/signed long as x86-64 performs them.
fn to_uint(n: f64) -> u64 {
    if n < 0.0 {
        // (Uinttype)(Inttype)n
        if n >= -9223372036854775808.0 {
            n as i64 as u64
        } else {
            i64::MIN as u64
        }
    } else if n < 9223372036854775808.0 {
        n as i64 as u64
    } else if n < 18446744073709551616.0 {
        ((n - 9223372036854775808.0) as i64 as u64) ^ (1 << 63)
    } else {
        // Out of range (or NaN): the conversion yields INT64_MIN, xor'ed back for the >= 2^63 path.
        if n.is_nan() {
            1 << 63
        } else {
            0
        }
    }
}

fn pack(lua: &Lua, args: MultiValue) -> LibResult {
    let name = "pack";
    let fmt = format_arg(&args, name)?;
    let mut f = Fmt { s: &fmt, pos: 0 };
    let mut h = Header::new();
    let mut arg = 1usize; // 0-based index of the next value
    let mut total: usize = 0;
    let mut out: Vec<u8> = Vec::new();
    while f.pos < fmt.len() {
        let opt = fmt[f.pos];
        f.pos += 1;
        let mut size = f.optsize(opt)?;
        let mut toalign = gettoalign(total, &h, opt, size);
        total = total.wrapping_add(toalign as isize as usize);
        while toalign > 0 {
            out.push(0);
            toalign -= 1;
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number_arg_pack(&args, arg)?;
                arg += 1;
                let mut value = to_uint(n);
                let mut buf = vec![0u8; size];
                if h.little {
                    for b in buf.iter_mut() {
                        *b = value as u8;
                        value = value.checked_shr(8).unwrap_or(0);
                    }
                } else {
                    for b in buf.iter_mut().rev() {
                        *b = value as u8;
                        value = value.checked_shr(8).unwrap_or(0);
                    }
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let x = number_arg_pack(&args, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    x.to_le_bytes()
                } else {
                    x.to_be_bytes()
                });
            }
            b'd' => {
                let x = number_arg_pack(&args, arg)?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    x.to_le_bytes()
                } else {
                    x.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = string_arg_or(&args, arg, name, missing_in_pack(&args, arg))?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // lua-struct reports the argument after the string.
                    return Err(arg_error(arg + 1, name, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => f.controloptions(opt, &mut h, name)?,
        }
        total = total.wrapping_add(size);
    }
    let s = lua.create_string(&out).map_err(|e| e.to_string())?;
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

fn getinteger(buf: &[u8], little: bool, signed: bool) -> f64 {
    let size = buf.len();
    let mut l: u64 = 0;
    let mut push = |b: u8| l = (l << 8) | b as u64;
    if little {
        buf.iter().rev().for_each(|&b| push(b));
    } else {
        buf.iter().for_each(|&b| push(b));
    }
    if !signed {
        return l as f64;
    }
    // The shift count is masked to 6 bits as x86 does.
    let shift = ((size as i64) * 8 - 1) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: MultiValue) -> LibResult {
    let name = "unpack";
    let fmt = format_arg(&args, name)?;
    let data = string_arg(&args, 1, name)?;
    let ld = data.len();
    let start: i64 = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(v) => match to_number(v) {
            Some(n) if n.is_finite() && n.abs() < 9.2e18 => n as i64,
            Some(_) => i64::MIN,
            None => {
                return Err(arg_error(
                    3,
                    name,
                    &format!("number expected, got {}", type_name(v)),
                ))
            }
        },
    };
    // size_t pos = luaL_optinteger(...); argcheck(pos > 0); pos-- (negative offsets wrap to huge values).
    let mut pos = start as u64 as usize;
    if pos == 0 {
        return Err(arg_error(3, name, "offset must be 1 or greater"));
    }
    pos -= 1;
    let mut f = Fmt { s: &fmt, pos: 0 };
    let mut h = Header::new();
    let mut out: Vec<Value> = Vec::new();
    let nargs = args.len();
    while f.pos < fmt.len() {
        let opt = fmt[f.pos];
        f.pos += 1;
        let mut size = f.optsize(opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size) as isize as usize);
        // (Where the C code's `pos + size` wraps around it would read out of bounds: an error here.)
        if pos.checked_add(size).is_none_or(|end| end > ld) {
            return Err(arg_error(2, name, "data string too short"));
        }
        if nargs + out.len() + 2 > MAX_CSTACK {
            return Err("stack overflow (too many results)".into());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push(Value::Number(getinteger(
                    &data[pos..pos + size],
                    h.little,
                    signed,
                )));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let x = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(x as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let x = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(x));
            }
            b'c' => {
                if size == 0 {
                    let prev = out.last().and_then(to_number);
                    let Some(n) = prev else {
                        return Err("format 'c0' needs a previous size".into());
                    };
                    out.pop();
                    // (size_t) of the double: negative values wrap to huge sizes.
                    size = if n < 0.0 {
                        if n >= -9.2e18 {
                            n as i64 as usize
                        } else {
                            usize::MAX
                        }
                    } else {
                        to_uint(n) as usize
                    };
                    if !(size <= ld && pos <= ld - size) {
                        return Err(arg_error(2, name, "data string too short"));
                    }
                }
                let s = lua
                    .create_string(&data[pos..pos + size])
                    .map_err(|e| e.to_string())?;
                out.push(Value::String(s));
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err("unfinished string in data".into());
                };
                size = e + 1;
                let s = lua
                    .create_string(&data[pos..pos + e])
                    .map_err(|e| e.to_string())?;
                out.push(Value::String(s));
            }
            _ => f.controloptions(opt, &mut h, name)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_vec(out))
}

fn size(_lua: &Lua, args: MultiValue) -> LibResult {
    let name = "size";
    let fmt = format_arg(&args, name)?;
    let mut f = Fmt { s: &fmt, pos: 0 };
    let mut h = Header::new();
    let mut pos: usize = 0;
    while f.pos < fmt.len() {
        let opt = fmt[f.pos];
        f.pos += 1;
        let size = f.optsize(opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size) as isize as usize);
        if opt == b's' {
            return Err(arg_error(1, name, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(1, name, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            f.controloptions(opt, &mut h, name)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(MultiValue::from_vec(vec![Value::Number(pos as i64 as f64)]))
}

/// Registers the global `struct` table.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set("pack", lua_fn(lua, pack)?)?;
    t.set("unpack", lua_fn(lua, unpack)?)?;
    t.set("size", lua_fn(lua, size)?)?;
    lua.globals().set("struct", t)
}

#[cfg(test)]
mod tests {
    use super::super::cjson::tests::run;

    fn hex(code: &str) -> String {
        run(&format!(
            "return ({code}):gsub('.', function(c) return string.format('%02x', c:byte()) end)"
        ))
    }

    fn list(code: &str) -> String {
        run(&format!("local r = {{{code}}} for i = 1, #r do r[i] = tostring(r[i]) end return table.concat(r, ',')"))
    }

    #[test]
    fn struct_like_redis() {
        assert_eq!(
            run("return struct.size('s')"),
            "ERR user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)"
        );
        assert_eq!(
            run("return struct.size('c0')"),
            "ERR user_script:1: bad argument #1 to 'size' (option 'c0' has no fixed size)"
        );
        assert_eq!(run("return struct.size('z')"), "0");
        assert_eq!(run("return struct.size('!4bi')"), "8");
        assert_eq!(run("return struct.size('bhlTfdi3I5x')"), "40");
        assert_eq!(run("return struct.size('i0c')"), "1");
        assert_eq!(
            run("return struct.pack('z', 1)"),
            "ERR user_script:1: bad argument #1 to 'pack' (invalid format option 'z')"
        );
        assert_eq!(
            run("return struct.pack('i', 'x')"),
            "ERR user_script:1: bad argument #2 to 'pack' (number expected, got string)"
        );
        assert_eq!(
            run("return struct.pack('i')"),
            "ERR user_script:1: bad argument #2 to 'pack' (number expected, got nil)"
        );
        assert_eq!(
            run("return struct.pack('c5', 'ab')"),
            "ERR user_script:1: bad argument #3 to 'pack' (string too short)"
        );
        assert_eq!(
            run("return struct.pack('!3i', 1)"),
            "ERR user_script:1: alignment 3 is not a power of 2"
        );
        assert_eq!(
            run("return struct.pack('!0bi', 1, 2)"),
            "ERR user_script:1: alignment 0 is not a power of 2"
        );
        assert_eq!(
            run("return struct.pack('i40', 1)"),
            "ERR user_script:1: integral size 40 is larger than limit of 32"
        );
        assert_eq!(
            run("return struct.pack('i99999999999', 1)"),
            "ERR user_script:1: integral size overflow"
        );
        assert_eq!(
            run("return struct.unpack('i', 'ab')"),
            "ERR user_script:1: bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(list("struct.unpack('', 'abcdef', 8)"), "8");
        assert_eq!(list("struct.unpack('', 'abcdef', -1)"), "-1");
        assert_eq!(
            run("return struct.unpack('b', 'abcdef', -1)"),
            "ERR user_script:1: bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            run("return struct.unpack('i', 'abcd', 0)"),
            "ERR user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)"
        );
        assert_eq!(
            run("return struct.unpack('s', 'abc')"),
            "ERR user_script:1: unfinished string in data"
        );
        assert_eq!(
            run("return struct.unpack('c0', 'abc')"),
            "ERR user_script:1: format 'c0' needs a previous size"
        );
        assert_eq!(list("struct.unpack('bc0', '\\2abc')"), "ab,4");
        assert_eq!(
            list("struct.unpack('>i2 <I2 b B', '\\255\\254\\255\\254\\255\\255')"),
            "-2,65279,-1,255,7"
        );
        assert_eq!(list("struct.unpack('i', 'abcdxyz', 2)"), "2019844962,6");
        assert_eq!(
            hex("struct.pack('>i16', -1)"),
            "0000000000000000ffffffffffffffff"
        );
        assert_eq!(
            hex("struct.pack('>d<f', 1.5, 2.5)"),
            "3ff800000000000000002040"
        );
        assert_eq!(hex("struct.pack('bi', 1, 2)"), "0102000000");
        assert_eq!(hex("struct.pack('!bi', 1, 2)"), "0100000002000000");
        assert_eq!(hex("struct.pack('s', 'ab')"), "616200");
        assert_eq!(hex("struct.pack('I', -1)"), "ffffffff");
        assert_eq!(hex("struct.pack('<i8', 2^63)"), "0000000000000080");
        assert_eq!(
            run(
                "return tostring(struct.unpack('>I8', '\\255\\255\\255\\255\\255\\255\\255\\255'))"
            ),
            "1.844674407371e+19"
        );
        assert_eq!(
            run("return struct.unpack('>i9', '\\255\\255\\255\\255\\255\\255\\255\\255\\255')"),
            "-1"
        );
        assert_eq!(
            run("local n=0 for k in pairs(struct) do n=n+1 end return n"),
            "3"
        );
        // Huge counts never panic or allocate absurdly.
        assert_eq!(
            run("return struct.pack('c2000000000', 'x')"),
            "ERR user_script:1: bad argument #3 to 'pack' (string too short)"
        );
        assert_eq!(
            run("return struct.unpack('c2000000000', 'x')"),
            "ERR user_script:1: bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            run("return #{struct.unpack(string.rep('b', 5000), string.rep('x', 5000))}"),
            "5001"
        );
    }
}
