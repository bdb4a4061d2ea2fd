//! Hostile scripts against the sandbox, through the real command path of an in-process server: EVAL of
//! scripts assembled from Lua fragments that poke at the environment (metatables, loaders, bytecode, the
//! libraries, redis.call and reply conversions), or of raw bytes. Nothing may crash, and after every
//! script a probe must see exactly the environment it saw at the start (no script can tamper with what
//! later scripts see).
#![no_main]

use ferrodis::client::{Client, ClientInfo};
use ferrodis::cmd::{self, BatchClock};
use ferrodis::config::Config;
use ferrodis::server::Server;
use ferrodis_protocol::Args;
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Lua fragments a script is assembled from (one input byte picks one). Loops are bounded so that every
/// script ends; scripts running past the busy threshold are killed anyway.
const FRAGMENTS: &[&str] = &[
    "return ", "local a = ", "local b = ", "a = ", "a", "b", "(", ")", ",", "{", "}", "[1]", "[a]", ".",
    ":", "..", "+", "-", "*", "/", "%", "^", "#", "==", "~=", "<", " and ", " or ", " not ", " end ",
    " if a then ", " else ", " for i = 1, 3 do ", " function() ", " function(...) return ... end ",
    ";", "1", "0", "-1", "2^53", "1e308", "0/0", "'x'", "''", "'\\27LuaQ'", "'%'", "nil", "true",
    "false", "KEYS[1]", "ARGV[1]", "_G", "string", "getmetatable", "setmetatable", "rawset", "rawget",
    "rawequal", "loadstring", "load", "string.dump", "string.rep('a?', 50)", "string.rep('a', 100)",
    "string.rep", "string.find", "string.match", "string.gmatch", "string.gsub", "string.format",
    "string.byte", "string.char(27)", "string.sub", "string.upper", "cjson.encode", "cjson.decode",
    "cjson.encode_max_depth", "cjson.decode_max_depth", "cmsgpack.pack", "cmsgpack.unpack",
    "struct.pack", "struct.unpack", "bit.band", "bit.tohex", "redis.call", "redis.pcall",
    "redis.setresp(3)", "redis.setresp(2)", "redis.sha1hex", "redis.error_reply", "redis.status_reply",
    "redis.log", "unpack", "select", "next", "pairs", "ipairs", "tostring", "tonumber", "type", "error",
    "pcall", "xpcall", "assert", "coroutine.wrap", "coroutine.create", "coroutine.resume",
    "coroutine.yield", "table.concat", "table.insert", "table.remove", "table.sort", "math.huge",
    "math.random", "'set'", "'get'", "'del'", "'lrange'", "'hgetall'", "'smembers'", "'rpush'",
    "'hset'", "'sadd'", "'incr'", "'k'", "'l'", "'h'", "'s'", "0, -1", "{err='e'}", "{ok='o'}",
    "{map={a=1}}", "{set={x=true}}", "{double=1.5}", "{big_number='1'}",
    "{verbatim_string={format='txt', string='s'}}", "getmetatable('')", "getmetatable(_G)",
    "getmetatable(string)", "getmetatable(redis)", ".__index", "'__index'", "'__newindex'",
    "function(t, k) return 1 end", "redis", "cjson", "cmsgpack", "struct", "bit", "math", "table",
    "coroutine", "string.len", " a[#a + 1] = a ", " local t = {} t[1] = t return t ",
    " local t = {} for i = 1, 300 do t[i] = tostring(i) end ", " t ", "'upper'", "'find'",
];

/// What a script sees of the shared environment.
const PROBE: &[u8] = b"return {('a'):upper(), string.upper('b'), string.find('xay', 'a'), type(redis.call), \
    type(getmetatable(redis)), type(getmetatable(_G)), tostring(getmetatable('').__index == string), \
    cjson.encode({1, {a = 2}}), cmsgpack.pack(1), type(rawget(_G, 'a')), type(rawget(_G, 'b')), \
    redis.call('PING'), redis.sha1hex(''), select('#', loadstring(string.dump(function() end))), tostring(next({})), \
    type(pairs), math.huge}";

struct Harness {
    srv: Arc<Server>,
    probe: Vec<u8>,
}

fn run(srv: &Arc<Server>, client: &mut Client, args: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    for a in args {
        let start = buf.len();
        buf.extend_from_slice(a);
        spans.push((start, buf.len()));
    }
    let mut out = Vec::new();
    let mut clock = BatchClock::new();
    cmd::execute(srv, client, &mut out, Args::from_parts(&buf, &spans), &mut clock);
    out
}

fn new_client() -> Client {
    let info = ClientInfo::new(1, "127.0.0.1:1".into(), "127.0.0.1:2".into(), -1, false);
    Client::new(1, 0, Arc::new(info), true)
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let mut cfg = Config::default();
        cfg.persist.save.clear();
        ferrodis::init();
        let srv = Arc::new(Server::new(cfg, ferrodis::cmd::Registry::get().len()));
        srv.scripting.busy_threshold_ms.store(20, Relaxed);
        // Kill any script that runs past the busy threshold (the fragments' loops are bounded, but
        // nested ones can still take long).
        let watch = srv.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(5));
            if watch.scripting.busy.load(Relaxed) != 0 {
                for b in watch.scripting.busy_list.lock().iter() {
                    b.flags.kill.store(true, Relaxed);
                }
            }
        });
        let mut c = new_client();
        let probe = run(&srv, &mut c, &[b"EVAL", PROBE, b"0"]);
        assert!(probe.starts_with(b"*"), "{}", String::from_utf8_lossy(&probe));
        Harness { srv, probe }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let script: Vec<u8> = if mode & 1 == 0 {
        let mut s = Vec::new();
        for &b in rest {
            s.extend_from_slice(FRAGMENTS[b as usize % FRAGMENTS.len()].as_bytes());
            s.push(b' ');
        }
        s
    } else {
        rest.to_vec()
    };
    let mut c = new_client();
    if mode & 2 != 0 {
        run(&h.srv, &mut c, &[b"HELLO", b"3"]);
    }
    let reply = run(&h.srv, &mut c, &[b"EVAL", &script, b"2", b"k", b"l", b"a1"]);
    assert!(!reply.is_empty());
    // The environment is unchanged for the next script, from a fresh connection.
    let mut fresh = new_client();
    let probe = run(&h.srv, &mut fresh, &[b"EVAL", PROBE, b"0"]);
    assert_eq!(
        probe,
        h.probe,
        "the environment changed after: {}",
        String::from_utf8_lossy(&script)
    );
    run(&h.srv, &mut fresh, &[b"DEL", b"k", b"l", b"h", b"s", b"a1", b"x"]);
    // Every EVAL'd script stays cached (as in Redis 7.2): flush now and then to keep memory bounded.
    static RUNS: AtomicU64 = AtomicU64::new(0);
    if RUNS.fetch_add(1, Relaxed) % 4096 == 4095 {
        run(&h.srv, &mut fresh, &[b"SCRIPT", b"FLUSH"]);
    }
});
