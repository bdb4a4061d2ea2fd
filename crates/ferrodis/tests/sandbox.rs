//! The script sandbox against hostile scripts: bytecode is never loaded, scripts cannot change what other
//! scripts see (on any worker thread), replies of any size convert without loss, and scripts that exhaust
//! the native stack or memory get an error while the server stays up. Texts as Redis 7.2 gives them.

mod common;

use common::Server;
use std::time::Duration;

/// A precompiled Lua 5.1 chunk header (what `string.dump` output starts with).
const BYTECODE: &[u8] = b"\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00";

#[test]
fn bytecode_is_never_loaded() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    assert_eq!(
        c.args(&[b"EVAL", BYTECODE, b"0"]),
        b"-ERR Error compiling script (new function): user_script:1: unexpected symbol near 'char(27)'\r\n"
    );
    let mut lib = b"#!lua name=x\n".to_vec();
    lib.extend_from_slice(BYTECODE);
    assert_eq!(
        c.args(&[b"FUNCTION", b"LOAD", &lib]),
        b"-ERR Error compiling function: user_function:2: unexpected symbol near 'char(27)'\r\n"
    );
    // string.dump works, but what it makes cannot be loaded back, by loadstring or by load.
    assert_eq!(
        c.call(&[
            "EVAL",
            "local f, e = loadstring(string.dump(function() return 1 end)) return {type(f), e}",
            "0"
        ]),
        "*2\r\n$3\r\nnil\r\n$53\r\n[string \"\x1bLuaQ\"]:1: unexpected symbol near 'char(27)'\r\n"
    );
    assert_eq!(
        c.call(&[
            "EVAL",
            "local s, i = string.dump(function() return 1 end), 0 \
             local f, e = load(function() i = i + 1 if i == 1 then return s end end) return {type(f), e}",
            "0"
        ]),
        "*2\r\n$3\r\nnil\r\n$43\r\n(load):1: unexpected symbol near 'char(27)'\r\n"
    );
    // Source text still loads through both.
    assert_eq!(
        c.call(&["EVAL", "return loadstring('return 7')()", "0"]),
        ":7\r\n"
    );
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
}

/// Attempts to change the environment every later script would see, each refused as Redis refuses
/// writes to its read-only tables.
const ATTACKS: &[&str] = &[
    "getmetatable(_G).__index = function(t, k) return 'pwned' end",
    "rawset(getmetatable(_G), '__index', function() return 'pwned' end)",
    "setmetatable(_G, {})",
    "getmetatable('').__index = {upper = function() return 'pwned' end}",
    "getmetatable('').__index.upper = function() return 'pwned' end",
    "rawset(getmetatable(''), '__index', {})",
    "setmetatable(getmetatable(''), {__index = function() return 'pwned' end})",
    "string.upper = function() return 'pwned' end",
    "redis.call = function() return 'pwned' end",
    "rawset(redis, 'call', function() return 'pwned' end)",
    "_G.redis = {}",
    "cjson.encode = nil",
];

/// What a script sees of the shared environment; must be the same before and after the attacks.
const PROBE: &str = "return {('a'):upper(), string.upper('b'), redis.call('PING'), type(redis.call), \
    type(getmetatable(redis)), type(getmetatable('')), tostring(getmetatable('').__index == string), \
    cjson.encode({1}), type(rawget(_G, 'pwned'))}";

#[test]
fn scripts_cannot_tamper_with_the_environment_on_any_thread() {
    let threads = 4;
    let srv = Server::start(&["--threads", &threads.to_string()]);
    // Enough connections that every worker thread (connections are spread by the kernel) gets several.
    let mut conns: Vec<_> = (0..8 * threads).map(|_| srv.raw()).collect();
    let expected = conns[0].call(&["EVAL", PROBE, "0"]);
    assert!(
        expected.starts_with("*9\r\n$1\r\nA\r\n$1\r\nB\r\n+PONG\r\n"),
        "{expected}"
    );
    for c in conns.iter_mut() {
        for attack in ATTACKS {
            let reply = c.call(&["EVAL", &format!("{attack} return 'done'"), "0"]);
            assert!(
                reply.contains("Attempt to modify a readonly table"),
                "{attack}: {reply}"
            );
        }
    }
    for c in conns.iter_mut() {
        assert_eq!(c.call(&["EVAL", PROBE, "0"]), expected);
        // A global that a script tried to create is not there for the next one.
        let r = c.call(&["EVAL", "pwned = 1", "0"]);
        assert!(r.contains("Attempt to modify a readonly table"), "{r}");
    }
    // What Redis shows of the metatables: none for library tables, read-only views for the others.
    let c = &mut conns[0];
    assert_eq!(
        c.call(&[
            "EVAL",
            "return {type(getmetatable(_G)), type(getmetatable(_G).__index)}",
            "0"
        ]),
        "*2\r\n$5\r\ntable\r\n$8\r\nfunction\r\n"
    );
    assert_eq!(
        c.call(&[
            "EVAL",
            "return tostring(getmetatable('') == getmetatable('x'))",
            "0"
        ]),
        "$4\r\ntrue\r\n"
    );
}

#[test]
fn big_replies_convert_without_loss() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    let n = 100_000;
    // A list, a hash and a set larger than Lua's reference limit (8,000), built by a script.
    let fill = "for i = 1, tonumber(ARGV[1]), 1000 do local a, h, s = {}, {}, {} \
        for j = i, i + 999 do a[#a + 1] = 'e' .. j; h[#h + 1] = 'f' .. j; h[#h + 1] = 'v' .. j; s[#s + 1] = 'm' .. j end \
        redis.call('RPUSH', KEYS[1], unpack(a)) redis.call('HSET', KEYS[2], unpack(h)) redis.call('SADD', KEYS[3], unpack(s)) end \
        return redis.call('LLEN', KEYS[1])";
    assert_eq!(
        c.call(&["EVAL", fill, "3", "l", "h", "s", &n.to_string()]),
        format!(":{n}\r\n")
    );
    let count_elements = |reply: &[u8]| -> (String, usize) {
        let head_end = reply.windows(2).position(|w| w == b"\r\n").unwrap();
        let head = String::from_utf8_lossy(&reply[..head_end]).into_owned();
        let bulks = reply.windows(3).filter(|w| w == b"\r\n$").count();
        (head, bulks)
    };
    let reply = c.args(&[
        b"EVAL",
        b"return redis.call('LRANGE', KEYS[1], 0, -1)",
        b"1",
        b"l",
    ]);
    assert_eq!(count_elements(&reply), (format!("*{n}"), n));
    assert!(reply.ends_with(format!("$7\r\ne{n}\r\n").as_bytes()));
    let reply = c.args(&[
        b"EVAL",
        b"return redis.call('HGETALL', KEYS[1])",
        b"1",
        b"h",
    ]);
    assert_eq!(count_elements(&reply), (format!("*{}", 2 * n), 2 * n));
    let reply = c.args(&[
        b"EVAL",
        b"return redis.call('SMEMBERS', KEYS[1])",
        b"1",
        b"s",
    ]);
    assert_eq!(count_elements(&reply), (format!("*{n}"), n));
    // RESP3: the map and set types survive the round trip through Lua.
    c.call(&["HELLO", "3"]);
    let reply = c.args(&[
        b"EVAL",
        b"redis.setresp(3) return redis.call('HGETALL', KEYS[1])",
        b"1",
        b"h",
    ]);
    assert_eq!(count_elements(&reply), (format!("%{n}"), 2 * n));
    let reply = c.args(&[
        b"EVAL",
        b"redis.setresp(3) return redis.call('SMEMBERS', KEYS[1])",
        b"1",
        b"s",
    ]);
    assert_eq!(count_elements(&reply), (format!("~{n}"), n));
    // Tables built in Lua, and the libraries that walk tables.
    let reply = c.args(&[
        b"EVAL",
        b"local t = {} for i = 1, 200000 do t[i] = tostring(i) end return t",
        b"0",
    ]);
    assert_eq!(count_elements(&reply), ("*200000".into(), 200_000));
    assert_eq!(
        c.call(&[
            "EVAL",
            "local t = {} for i = 1, 50000 do t['k' .. i] = tostring(i) end \
             local n = 0 for _ in pairs(cjson.decode(cjson.encode(t))) do n = n + 1 end \
             local m = 0 for _ in pairs(cmsgpack.unpack(cmsgpack.pack(t))) do m = m + 1 end return {n, m}",
            "0"
        ]),
        "*2\r\n:50000\r\n:50000\r\n"
    );
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn pattern_recursion_is_bounded() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    // Redis 7.2 survives this one; so do we.
    assert_eq!(
        c.call(&[
            "EVAL",
            "return string.find(string.rep('a', 100000), string.rep('a?', 100000))",
            "0"
        ]),
        ":1\r\n"
    );
    // Redis 7.2 crashes on this one (native stack overflow); we refuse it.
    for f in ["find", "match", "gmatch", "gsub"] {
        let extra = if f == "gsub" { ", ''" } else { "" };
        let reply = c.call(&[
            "EVAL",
            &format!(
                "return type(string.{f}(string.rep('a', 1000000), string.rep('a?', 1000000){extra}))"
            ),
            "0",
        ]);
        assert!(
            reply.starts_with("-ERR pattern too complex"),
            "{f}: {reply}"
        );
    }
    // Argument errors read as before (the guard runs the library function in its own call frame).
    assert_eq!(
        c.call(&["EVAL", "return ('x'):find(nil)", "0"]),
        "-ERR user_script:1: bad argument #1 to 'find' (string expected, got nil) script: 2990872d990e04d1a90129edff21cde58a3c1aed, on @user_script:1.\r\n"
    );
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn script_out_of_memory_is_an_error() {
    // Under an address-space limit, Lua's allocations fail: the script gets Redis's error, the server
    // stays up.
    let bin = env!("CARGO_BIN_EXE_ferrodis");
    let srv = Server::spawn(
        "sh",
        &["-c", "ulimit -v 3000000 && exec \"$0\" \"$@\"", bin],
        &["--threads", "2"],
    );
    let mut c = srv.raw();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let big = "local s = string.rep('x', 2^29) return #(s .. s .. s)";
    let sha = c.call(&["SCRIPT", "LOAD", big]);
    let sha = sha.lines().nth(1).expect("sha");
    assert_eq!(
        c.call(&["EVAL", big, "0"]),
        format!("-ERR Error running script {sha}, not enough memory\r\n")
    );
    assert_eq!(
        c.call(&[
            "EVAL",
            &format!("return {{pcall(function() {big} end)}}"),
            "0"
        ]),
        "*2\r\n$-1\r\n$17\r\nnot enough memory\r\n"
    );
    assert_eq!(
        c.args(&[b"EVAL", b"return 'still here'", b"0"]),
        b"$10\r\nstill here\r\n"
    );
    // The Lua heap is counted in INFO memory.
    let info = c.call(&["INFO", "memory"]);
    let lua: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_lua:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory_lua");
    assert!(lua > 0, "{info}");
}

#[test]
fn library_wrappers_reach_the_real_functions() {
    // The sandbox wraps rawset, setmetatable, getmetatable, loadstring and load; each wrapper calls the
    // original (a wrapper that called itself used to recurse to the stack limit on every call).
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    assert_eq!(
        c.call(&[
            "EVAL",
            "local t = {} rawset(t, 1, 2) setmetatable(t, {__index = function() return 5 end}) \
             return {t[1], t[2], type(getmetatable(t)), loadstring('return 3')(), load(function() return nil end) and 4}",
            "0"
        ]),
        "*5\r\n:2\r\n:5\r\n$5\r\ntable\r\n:3\r\n:4\r\n"
    );
    assert_eq!(
        c.call(&["EVAL", "rawset('s')", "0"]),
        "-ERR user_script:1: bad argument #1 to 'rawset' (table expected, got string) script: c8efba6e8565eb927c6b61869e5530204a8d61a3, on @user_script:1.\r\n"
    );
}
