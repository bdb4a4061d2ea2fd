//! Lua library `bit` (written in Rust on mlua).
//!
//! Behaves like LuaBitOp 1.0.2 as embedded in Redis: 32-bit operations on numbers normalised the way the C
//! library does it (adding 2^52+2^51 and taking the low 32 bits, i.e. rounding to nearest even modulo 2^32),
//! results returned as signed 32-bit numbers.

use super::cjson::{arg_error, lua_fn, to_number, type_name, LibResult};
use mlua::{Lua, MultiValue, Value};

/// Normalises a number to 32 bits as LuaBitOp's `barg` does.
fn tobits(n: f64) -> u32 {
    (n + 6755399441055744.0).to_bits() as u32
}

/// luaL_checknumber + normalisation of argument `idx` (0-based).
fn barg(args: &MultiValue, idx: usize, name: &str) -> Result<u32, String> {
    match args.get(idx) {
        None => Err(arg_error(idx + 1, name, "number expected, got no value")),
        Some(v) => match to_number(v) {
            Some(n) => Ok(tobits(n)),
            None => Err(arg_error(
                idx + 1,
                name,
                &format!("number expected, got {}", type_name(v)),
            )),
        },
    }
}

fn ret(b: u32) -> LibResult {
    Ok(MultiValue::from_vec(vec![Value::Number(b as i32 as f64)]))
}

/// Registers the global `bit` table.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set("tobit", lua_fn(lua, |_, a| ret(barg(&a, 0, "tobit")?))?)?;
    t.set("bnot", lua_fn(lua, |_, a| ret(!barg(&a, 0, "bnot")?))?)?;
    t.set(
        "bswap",
        lua_fn(lua, |_, a| ret(barg(&a, 0, "bswap")?.swap_bytes()))?,
    )?;
    type Op = fn(u32, u32) -> u32;
    let variadic: [(&'static str, Op); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in variadic {
        t.set(
            name,
            lua_fn(lua, move |_, a| {
                let mut b = barg(&a, 0, name)?;
                // LuaBitOp checks the extra arguments from the last one down.
                for i in (1..a.len()).rev() {
                    b = op(b, barg(&a, i, name)?);
                }
                ret(b)
            })?,
        )?;
    }
    let shifts: [(&'static str, Op); 5] = [
        ("lshift", |b, n| b << n),
        ("rshift", |b, n| b >> n),
        ("arshift", |b, n| ((b as i32) >> n) as u32),
        ("rol", |b, n| b.rotate_left(n)),
        ("ror", |b, n| b.rotate_right(n)),
    ];
    for (name, op) in shifts {
        t.set(
            name,
            lua_fn(lua, move |_, a| {
                let b = barg(&a, 0, name)?;
                let n = barg(&a, 1, name)? & 31;
                ret(op(b, n))
            })?,
        )?;
    }
    t.set(
        "tohex",
        lua_fn(lua, |lua, a| {
            let mut b = barg(&a, 0, "tohex")?;
            let mut n: i64 = if a.len() < 2 {
                8
            } else {
                barg(&a, 1, "tohex")? as i32 as i64
            };
            let digits: &[u8; 16] = if n < 0 {
                n = -n;
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            let n = n.min(8) as usize;
            let mut buf = vec![0u8; n];
            for slot in buf.iter_mut().rev() {
                *slot = digits[(b & 15) as usize];
                b >>= 4;
            }
            let s = lua.create_string(&buf).map_err(|e| e.to_string())?;
            Ok(MultiValue::from_vec(vec![Value::String(s)]))
        })?,
    )?;
    lua.globals().set("bit", t)
}

#[cfg(test)]
mod tests {
    use super::super::cjson::tests::run;

    fn list(code: &str) -> String {
        run(&format!("local r = {{{code}}} for i = 1, #r do r[i] = tostring(r[i]) end return table.concat(r, ',')"))
    }

    #[test]
    fn bit_like_redis() {
        assert_eq!(
            list("bit.tobit(0xffffffff), bit.tobit(2^32+5), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit('12')"),
            "-1,5,2,2,-2,12"
        );
        assert_eq!(
            list("bit.tohex(255), bit.tohex(-1, -4), bit.tohex(255, 2), bit.tohex(1, 20), bit.tohex(0x12345678, 0), bit.tohex(1, 2^40)"),
            "000000ff,FFFF,ff,00000001,,"
        );
        assert_eq!(
            list("bit.band(0xff, 0x0f, 0x3), bit.bor(1,2,4), bit.bxor(3), bit.bnot(0), bit.lshift(1, 33), \
                  bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), \
                  bit.bswap(0x12345678)"),
            "3,7,3,-1,2,15,-16,878082066,2014458966,2018915346"
        );
        assert_eq!(
            run("return bit.band(1, 'x')"),
            "ERR user_script:1: bad argument #2 to 'band' (number expected, got string)"
        );
        assert_eq!(
            run("return bit.band()"),
            "ERR user_script:1: bad argument #1 to 'band' (number expected, got no value)"
        );
        assert_eq!(list("bit.tobit(1/0), bit.tobit(0/0)"), "0,0");
        assert_eq!(
            run("local n=0 for k in pairs(bit) do n=n+1 end return n"),
            "12"
        );
    }
}
