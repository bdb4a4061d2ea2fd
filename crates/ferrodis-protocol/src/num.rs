//! Number parsing and formatting with Redis's exact rules.

/// Parses a signed 64-bit integer exactly as Redis's `string2ll`: optional '-', no '+', no spaces,
/// no leading zeros (except "0" itself; "-0" is rejected), at most 20 characters, no overflow.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    if b == b"0" {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Parses a double as Redis's `string2d` (strtod) does when reading a command argument: the whole
/// input must be the number; empty input, leading whitespace, NaN, overflow to infinity and underflow
/// to zero are rejected; "inf", "+inf", "-inf", "infinity" (any case) are accepted.
/// Hexadecimal floats ("0x1p3"), which strtod accepts, are not supported.
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    let first = *b.first()?;
    if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let is_inf_literal = body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity");
    if v.is_infinite() && !is_inf_literal {
        // strtod: ERANGE with HUGE_VAL.
        return None;
    }
    if v == 0.0 {
        // strtod: ERANGE with a zero result, i.e. a non-zero mantissa that underflowed.
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        if mantissa.bytes().any(|c| matches!(c, b'1'..=b'9')) {
            return None;
        }
    }
    Some(v)
}
/// The digits of a C hexadecimal float after its `0x`: `hexdigits[.hexdigits][(p|P)[+-]digits]`, as `strtod`
/// reads them. Returns the magnitude (infinite when out of range; digits beyond 56 bits of mantissa are kept
/// as a sticky bit for rounding) and whether any mantissa digit was non-zero (to tell an underflow from a
/// zero); None when the text is not entirely such a number.
pub fn parse_hex_float(digits: &[u8]) -> Option<(f64, bool)> {
    let (mut mant, mut exp, mut count, mut dot, mut nonzero) = (0u64, 0i64, 0usize, false, false);
    let mut i = 0;
    while i < digits.len() {
        let c = digits[i];
        if c == b'.' && !dot {
            dot = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            count += 1;
            nonzero |= d != 0;
            if mant >> 56 == 0 {
                mant = (mant << 4) | u64::from(d);
                if dot {
                    exp -= 4;
                }
            } else {
                mant |= u64::from(d != 0);
                if !dot {
                    exp += 4;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if count == 0 {
        return None;
    }
    if let Some(e) = digits.get(i..).filter(|e| !e.is_empty()) {
        if !matches!(e[0], b'p' | b'P') {
            return None;
        }
        let (neg, ed) = match e.get(1) {
            Some(b'-') => (true, &e[2..]),
            Some(b'+') => (false, &e[2..]),
            _ => (false, &e[1..]),
        };
        if ed.is_empty() || !ed.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = ed
            .iter()
            .fold(0i64, |v, &d| (v * 10 + i64::from(d - b'0')).min(1 << 20));
        exp += if neg { -v } else { v };
    }
    // Scale in steps whose powers of two stay finite.
    let mut x = mant as f64;
    let mut e = exp.clamp(-4000, 4000);
    while e != 0 {
        let k = e.clamp(-1000, 1000);
        x *= 2f64.powi(k as i32);
        e -= k;
    }
    Some((x, nonzero))
}

/// Appends Redis 7.2's text for a double (`d2string`): "nan", "inf", "-inf", "0", "-0"; integral
/// values within ±2^62 as integers; otherwise the shortest round-trip digits laid out like Redis's
/// `fpconv_dtoa`: plain for moderate exponents ("0.0001", "1.5", "12345678901234567000"),
/// otherwise scientific with a minimal exponent ("1e+300", "1.5e-7", "1.2345e+25").
pub fn format_double(d: f64, out: &mut Vec<u8>) {
    if d.is_nan() {
        // d2string writes no sign for NaN (fpconv_dtoa does).
        out.extend_from_slice(b"nan");
        return;
    }
    const HALF: f64 = (i64::MAX / 2) as f64;
    if d != 0.0 && (-HALF..=HALF).contains(&d) {
        let i = d as i64;
        if i as f64 == d {
            out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            return;
        }
    }
    format_double_shortest(d, out);
}

/// Appends Redis 7.2's `fpconv_dtoa` text for a double (what [`format_double`] writes without its integer
/// shortcut, and what Lua numbers given to `redis.call` become): "nan" ("-nan" with the sign bit set),
/// "inf", "-inf", "0", "-0", else the shortest round-trip digits, plain or scientific ("10000000",
/// "1e+15", "0.1", "1.5e-10").
pub fn format_double_shortest(d: f64, out: &mut Vec<u8>) {
    if d.is_nan() {
        out.extend_from_slice(if d.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    if d.is_infinite() {
        out.extend_from_slice(if d < 0.0 { b"-inf" } else { b"inf" });
        return;
    }
    if d == 0.0 {
        out.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    if d < 0.0 {
        out.push(b'-');
    }
    // Shortest round-trip digits from ryu, re-laid out.
    let mut rb = ryu::Buffer::new();
    let text = rb.format_finite(d.abs()).as_bytes();
    let (mant, exp10) = match text.iter().position(|&c| c == b'e' || c == b'E') {
        Some(e) => {
            let es = std::str::from_utf8(&text[e + 1..]).unwrap_or("0");
            (&text[..e], es.parse::<i32>().unwrap_or(0))
        }
        None => (text, 0),
    };
    let mut digits = [0u8; 24];
    let mut nd = 0usize;
    let mut frac_digits = 0i32;
    let mut after_dot = false;
    for &c in mant {
        if c == b'.' {
            after_dot = true;
            continue;
        }
        if nd == 0 && c == b'0' {
            if after_dot {
                frac_digits += 1;
            }
            continue;
        }
        if nd < digits.len() {
            digits[nd] = c;
            nd += 1;
        }
        if after_dot {
            frac_digits += 1;
        }
    }
    // Value = digits * 10^k.
    let mut k = exp10 - frac_digits;
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
        k += 1;
    }
    if nd == 0 {
        digits[0] = b'0';
        nd = 1;
    }
    emit(&digits[..nd], k, out);
}

/// Lays out `digits * 10^k` with `fpconv_dtoa`'s rules.
fn emit(digits: &[u8], k: i32, out: &mut Vec<u8>) {
    let nd = digits.len() as i32;
    let exp = (k + nd - 1).abs();
    if k >= 0 && exp < nd + 7 {
        out.extend_from_slice(digits);
        out.resize(out.len() + k as usize, b'0');
        return;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let offset = nd + k;
        if offset <= 0 {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-offset) as usize, b'0');
            out.extend_from_slice(digits);
        } else {
            let o = offset as usize;
            out.extend_from_slice(&digits[..o]);
            out.push(b'.');
            out.extend_from_slice(&digits[o..]);
        }
        return;
    }
    out.push(digits[0]);
    if digits.len() > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..]);
    }
    out.push(b'e');
    out.push(if k + nd - 1 < 0 { b'-' } else { b'+' });
    out.extend_from_slice(itoa::Buffer::new().format(exp).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_floats_as_strtod_reads_them() {
        assert_eq!(parse_hex_float(b"1.8p3"), Some((12.0, true)));
        assert_eq!(parse_hex_float(b"10"), Some((16.0, true)));
        assert_eq!(parse_hex_float(b"0"), Some((0.0, false)));
        assert_eq!(parse_hex_float(b"1P-2"), Some((0.25, true)));
        assert_eq!(parse_hex_float(b"1p+1"), Some((2.0, true)));
        assert_eq!(
            parse_hex_float(b"1p99999").map(|v| v.0),
            Some(f64::INFINITY)
        );
        assert_eq!(parse_hex_float(b"1p-99999"), Some((0.0, true)));
        for bad in [&b""[..], b".", b"1p", b"1p+", b"1q", b"1.2.3", b"g"] {
            assert_eq!(parse_hex_float(bad), None, "{:?}", bad);
        }
    }

    fn fmt(d: f64) -> String {
        let mut v = Vec::new();
        format_double(d, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn i64_accepts() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"1"), Some(1));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"1234567890"), Some(1234567890));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn i64_rejects() {
        for s in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"-01",
            b"00",
            b"1a",
            b"a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"99999999999999999999",
            b"000000000000000000001",
            b"1.0",
            b"1e3",
            b"0x10",
        ] {
            assert_eq!(parse_i64(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn f64_parse() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-1.5"), Some(-1.5));
        assert_eq!(parse_f64(b"+1.5"), Some(1.5));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"5."), Some(5.0));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"1E-3"), Some(0.001));
        assert_eq!(parse_f64(b"007"), Some(7.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-INF"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"0"), Some(0.0));
        assert_eq!(parse_f64(b"-0"), Some(-0.0));
        assert_eq!(parse_f64(b"0e-500"), Some(0.0));
        assert_eq!(parse_f64(b"1.7976931348623157e308"), Some(f64::MAX));
        assert_eq!(parse_f64(b"5e-324"), Some(5e-324));
        for s in [
            &b""[..],
            b" 1",
            b"1 ",
            b"\t1",
            b"nan",
            b"NaN",
            b"-nan",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"abc",
            b"1e",
            b"1e+",
            b".",
            b"-",
            b"inff",
            b"infinit",
            b"1.5x",
            b"1\x00",
        ] {
            assert_eq!(parse_f64(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn double_format() {
        assert_eq!(fmt(0.0), "0");
        assert_eq!(fmt(-0.0), "-0");
        assert_eq!(fmt(f64::NAN), "nan");
        assert_eq!(fmt(f64::INFINITY), "inf");
        assert_eq!(fmt(f64::NEG_INFINITY), "-inf");
        assert_eq!(fmt(3.0), "3");
        assert_eq!(fmt(-3.0), "-3");
        assert_eq!(fmt(1.5), "1.5");
        assert_eq!(fmt(-1.5), "-1.5");
        assert_eq!(fmt(0.1), "0.1");
        assert_eq!(fmt(0.0001), "0.0001");
        assert_eq!(fmt(0.000001), "0.000001");
        assert_eq!(fmt(1e-7), "1e-7");
        assert_eq!(fmt(1.5e-7), "1.5e-7");
        assert_eq!(fmt(1e300), "1e+300");
        assert_eq!(fmt(-1e300), "-1e+300");
        assert_eq!(fmt(1e100), "1e+100");
        assert_eq!(fmt(1e19), "1e+19");
        assert_eq!(fmt(1e17), "100000000000000000");
        assert_eq!(fmt(1e21), "1e+21");
        assert_eq!(fmt(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(fmt(5e-324), "5e-324");
        assert_eq!(fmt(7.25125), "7.25125");
        assert_eq!(fmt(123.456), "123.456");
        assert_eq!(fmt(1.2345678901234567e19), "12345678901234567000");
        assert_eq!(fmt(1.2345e25), "1.2345e+25");
        assert_eq!(fmt(0.3), "0.3");
        assert_eq!(fmt(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(fmt(1.0e-5), "0.00001");
        assert_eq!(fmt(1.23e-5), "1.23e-5");
        assert_eq!(fmt(4611686018427387904.0), "4611686018427387904");
        assert_eq!(fmt(9.223372036854776e18), "9223372036854776000");
        assert_eq!(fmt(2.5e-3), "0.0025");
        assert_eq!(fmt(12.5e-3), "0.0125");
    }

    #[test]
    fn double_roundtrip() {
        for &d in &[
            0.1,
            1.0 / 3.0,
            2.0f64.sqrt(),
            1e-310,
            123456.789e-10,
            6.02214076e23,
            -7.5e-300,
        ] {
            let s = fmt(d);
            assert_eq!(s.parse::<f64>().unwrap(), d, "{s}");
        }
    }
}
