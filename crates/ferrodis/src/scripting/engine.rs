//! The per-thread Lua state and script execution: Redis's Lua environment (protected globals, the `redis`
//! table, libraries), `redis.call` through the command table, RESP <-> Lua conversions, error formatting,
//! the busy-script hook.

use super::convert::{lua_to_resp, resp_to_lua};
use super::{sandbox, sflags, BusyFlags, Scripting, BUSY_EVAL, BUSY_FUNCTION};
use crate::client::Client;
use crate::cmd::{self, flags, BatchClock, Registry};
use crate::server::Server;
use ferrodis_protocol::{Args, Reply};
use mlua::{
    ffi, Function, HookTriggers, Lua, MultiValue, RegistryKey, StdLib, Table, Value, VmState,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// Chunk name of our own Lua code (frames skipped when locating an error).
const INTERNAL: &str = "@ferrodis";

pub const KILLED_MSG: &str = "ERR Script killed by user with SCRIPT KILL...";
/// Redis 7 sends the same text after FUNCTION KILL.
pub const KILLED_FN_MSG: &str = KILLED_MSG;

/// An error raised as a Redis error table (`{err=...}`), without a position prefix. `counted`: the error
/// of a command run by `redis.call`, already counted in errorstats (the table says so to the final reply).
#[derive(Debug)]
pub struct TableErr {
    pub msg: String,
    pub counted: bool,
}

impl std::fmt::Display for TableErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for TableErr {}

/// Raise `{err=msg}` (msg with its code, e.g. "ERR ...").
pub fn table_err<T>(msg: impl Into<String>) -> mlua::Result<T> {
    Err(mlua::Error::external(TableErr {
        msg: msg.into(),
        counted: false,
    }))
}

/// How Rust code raised an error.
enum Raised {
    Text,
    Table,
    /// A table whose error errorstats counted already.
    CountedTable,
}

/// The message of an error raised by Rust code.
fn error_text(e: &mlua::Error) -> (String, Raised) {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(m) => (m.clone(), Raised::Text),
        mlua::Error::ExternalError(x) => match x.downcast_ref::<TableErr>() {
            Some(t) if t.counted => (t.msg.clone(), Raised::CountedTable),
            Some(t) => (t.msg.clone(), Raised::Table),
            None => (x.to_string(), Raised::Text),
        },
        mlua::Error::WithContext { cause, .. } => error_text(cause),
        other => (other.to_string(), Raised::Text),
    }
}

/// What the running script's `redis.call` needs (set for the duration of a run on this thread).
pub struct Exec {
    pub srv: *const Arc<Server>,
    pub client: *mut Client,
    pub read_only: bool,
    pub allow_oom: bool,
    pub is_function: bool,
    pub resp3: bool,
    pub clock: BatchClock,
    pub events: Vec<crate::notify::KeyEvent>,
    /// When the script started ([`crate::server::mono_ns`]).
    pub start_ns: u64,
    pub threshold_ms: u64,
    pub killed: bool,
    pub wrote: bool,
    /// Past the busy threshold: its entry in `Scripting::busy_list` (id and flags).
    pub busy: Option<(u64, Arc<BusyFlags>)>,
    /// When the hook last served this thread's other connections.
    last_served_ns: u64,
    pub name: Arc<str>,
    pub argv: Vec<Vec<u8>>,
    scratch: Vec<u8>,
}

thread_local! {
    static EXEC: Cell<*mut Exec> = const { Cell::new(std::ptr::null_mut()) };
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
    static RAND: Cell<u64> = const { Cell::new(0) };
    /// This thread's Lua memory as last added to `Scripting::lua_memory`.
    static LAST_MEM: Cell<u64> = const { Cell::new(0) };
    /// Functions registered by the library being loaded.
    static LOADING: RefCell<Option<Vec<Registered>>> = const { RefCell::new(None) };
}

/// A function registered by `redis.register_function` during a library load.
pub struct Registered {
    pub name: String,
    pub func: Function,
    pub flags: u32,
    pub desc: Option<String>,
}

fn with_exec<R>(f: impl FnOnce(&mut Exec) -> R) -> Option<R> {
    let p = EXEC.with(|e| e.get());
    if p.is_null() {
        None
    } else {
        // SAFETY: set by `run_script` to a live Exec for the duration of the script on this thread; Lua
        // callbacks run synchronously inside it and never nest.
        Some(f(unsafe { &mut *p }))
    }
}

/// One worker thread's Lua state.
pub struct State {
    pub lua: Lua,
    /// The environment scripts run in (proxy of the globals).
    env: Table,
    run: Function,
    /// Registry references of the prelude's error handler (`__redis__err__handler`, the message
    /// handler of every run) and of [`run_entry`].
    handler_ref: c_int,
    entry_ref: c_int,
    /// Registry references of the strings "KEYS" and "ARGV".
    names_ref: [c_int; 2],
    make_lib_env: Function,
    finish_lib_env: Function,
    /// Compiled EVAL scripts by SHA.
    compiled: HashMap<[u8; 40], RegistryKey, foldhash::fast::RandomState>,
    compiled_epoch: u64,
    /// Loaded functions by name, for library generation `lib_gen`.
    pub functions: HashMap<String, RegistryKey>,
    pub lib_gen: u64,
    /// Bytes of this state's heap (kept by its allocator).
    heap: &'static sandbox::HeapCounter,
}

const PRELUDE: &str = r#"
local G, dbg, conv, killed, setfenv = ...
local type, tostring, error, rawget = type, tostring, error, rawget
local setmetatable_, setfenv_ = setmetatable, setfenv
local pcall_, xpcall_, loadstring_, load_ = pcall, xpcall, loadstring, load
local next_, byte_ = next, string.byte
local protected = setmetatable_({}, {__mode = 'k'})
local real = setmetatable_({}, {__mode = 'k'})
-- What getmetatable shows for a protected table (nil: none, as Redis shows for its library tables).
local shown_mt = setmetatable_({}, {__mode = 'k'})
local function ro() error('Attempt to modify a readonly table', 2) end
local function proxy(t)
  local p = setmetatable_({}, {__index = t, __newindex = ro})
  protected[p] = true
  real[p] = t
  return p
end
-- A chunk that starts like bytecode is parsed as text (and so refused, as Redis does).
local function is_binary(s) return type(s) == 'string' and byte_(s, 1) == 27 end
local function frame()
  local lvl = 3
  local i = dbg.getinfo(lvl, 'Sl')
  while i and (i.what == 'C' or i.what == 'tail' or i.source == '@ferrodis') do
    lvl = lvl + 1
    i = dbg.getinfo(lvl, 'Sl')
  end
  return i
end
local function handler(err)
  local i = frame()
  if type(err) == 'userdata' then
    local m, tbl, counted = conv(err)
    if tbl then
      err = {err = m}
      if counted then err.ignore_error_stats_update = true end
    else
      local where = ''
      if i then where = i.short_src .. ':' .. i.currentline .. ': ' end
      err = {err = 'ERR ' .. where .. m}
    end
  elseif protected[err] then
    -- A read-only table raised as the error: the handler cannot add the location to it (Redis's
    -- handler fails on that write), so say so without failing again on every level of the error.
    err = {err = 'ERR Attempt to modify a readonly table'}
  elseif type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
local function fixp(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if killed() then error(e, 0) end
  if type(e) == 'userdata' then
    e = (conv(e))
  elseif type(e) == 'table' then
    local m = rawget(e, 'err')
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
local function fixx(ok, ...)
  if not ok and killed() then error((...), 0) end
  return ok, ...
end
local P = setmetatable_({}, {__index = G, __newindex = ro})
protected[P] = true
real[P] = G
G.next = function(t, k) return next_(real[t] or t, k) end
local mynext = G.next
G.pairs = function(t) return mynext, t, nil end
protected[G] = true
G.pcall = function(...) return fixp(pcall_(...)) end
G.xpcall = function(f, h) return fixx(xpcall_(f, h)) end
G.loadstring = function(s, n)
  if is_binary(s) then s, n = ' ' .. s, n or s end
  local f, e = loadstring_(s, n)
  if f then setfenv_(f, P) end
  return f, e
end
G.load = function(fn, n)
  if type(fn) == 'function' then
    local reader, first = fn, true
    fn = function()
      local s = reader()
      if first then
        first = false
        if is_binary(s) then return ' ' .. s end
      end
      return s
    end
  end
  local f, e = load_(fn, n)
  if f then setfenv_(f, P) end
  return f, e
end
for _, name in ipairs({'string', 'math', 'table', 'redis', 'cjson', 'bit', 'struct', 'cmsgpack', 'coroutine'}) do
  if rawget(G, name) ~= nil then G[name] = proxy(G[name]) end
end
-- The metatables scripts can reach are read-only for them: the strings' (shared by every script on
-- this thread) and the globals' (whose real __index would lead to the writable globals table).
local string_mt = getmetatable('')
string_mt.__index = G.string
local string_mt_view = proxy(string_mt)
local globals_mt_view = proxy({__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end, __newindex = ro})
shown_mt[P] = globals_mt_view
-- rawset, setmetatable and getmetatable are guarded in C (sandbox.rs) with these tables.
local reg = dbg.getregistry()
reg['ferrodis.protected'] = protected
reg['ferrodis.shown_mt'] = shown_mt
reg['ferrodis.string_mt'] = string_mt
reg['ferrodis.string_mt_view'] = string_mt_view
G._G = P
G.__redis__err__handler = handler
setmetatable_(G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = ro,
})
local function run(f)
  return xpcall_(f, handler)
end
local function run_fn(f, k, a)
  return xpcall_(function() return f(k, a) end, handler)
end
-- Library loading: the library's environment sees only what Redis allows at load time, then (once
-- loaded) the full script environment.
local load_names = {'string', 'math', 'table', 'cjson', 'bit', 'struct', 'cmsgpack', 'tonumber', 'tostring',
  'type', 'pairs', 'ipairs', 'next', 'select', 'unpack', 'rawget', 'rawequal', 'getmetatable', 'assert'}
local function make_lib_env(lredis)
  local base = {}
  for _, n in ipairs(load_names) do base[n] = rawget(G, n) end
  setmetatable_(lredis, {__index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end})
  base.redis = proxy(lredis)
  setmetatable_(base, {__index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end})
  local env = setmetatable_({}, {__index = base, __newindex = ro})
  protected[env] = true
  return env
end
local function finish_lib_env(env)
  setmetatable_(env, {__index = P, __newindex = ro})
end
return P, run, run_fn, make_lib_env, finish_lib_env
"#;

/// Redis's rand48 (math.random): 48-bit LCG.
fn rand48_next() -> i32 {
    RAND.with(|r| {
        let x = r.get().wrapping_mul(0x5DEECE66D).wrapping_add(0xB) & ((1u64 << 48) - 1);
        r.set(x);
        (x >> 17) as i32
    })
}

fn rand48_seed(seed: i32) {
    RAND.with(|r| r.set((((seed as u32 as u64) << 16) | 0x330E) & ((1u64 << 48) - 1)));
}

/// C's `%.17g` (how Redis turns Lua numbers into command arguments).
pub fn fmt_g17(x: f64) -> String {
    extern "C" {
        fn snprintf(buf: *mut std::ffi::c_char, n: usize, fmt: *const std::ffi::c_char, ...)
            -> i32;
    }
    let mut buf = [0u8; 64];
    // SAFETY: buffer and format are valid; %.17g of a double fits in 64 bytes.
    let n = unsafe {
        snprintf(
            buf.as_mut_ptr() as *mut std::ffi::c_char,
            buf.len(),
            c"%.17g".as_ptr(),
            x,
        )
    };
    String::from_utf8_lossy(&buf[..(n.max(0) as usize).min(63)]).into_owned()
}

/// C's `(long long)` cast of a double as x86 does it (out of range and NaN give i64::MIN).
pub fn num_to_i64(n: f64) -> i64 {
    const LIM: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-LIM..LIM).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn seed_initial() {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    rand48_seed((t ^ (t >> 32)) as i32);
}

impl State {
    fn new() -> mlua::Result<State> {
        // SAFETY: the debug library is only kept for our own error handler (removed from the globals).
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                mlua::LuaOptions::default(),
            )
        };
        let heap = sandbox::install(&lua)?;
        super::convert::pin_reply_fields(&lua)?;
        seed_initial();
        let g = lua.globals();
        let dbg: Table = g.raw_get("debug")?;
        // Deterministic-sequence math.random / math.randomseed (Redis's rand48).
        let math: Table = g.raw_get("math")?;
        math.raw_set(
            "random",
            lua.create_function(|_, args: MultiValue| {
                let r = f64::from(rand48_next() % i32::MAX) / f64::from(i32::MAX);
                let nums: Vec<f64> = args
                    .iter()
                    .map(|v| match v {
                        Value::Integer(i) => Ok(*i as f64),
                        Value::Number(n) => Ok(*n),
                        Value::String(s) => s
                            .to_str()
                            .ok()
                            .and_then(|s| s.trim().parse::<f64>().ok())
                            .ok_or(()),
                        _ => Err(()),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        mlua::Error::RuntimeError(
                            "bad argument #1 to 'random' (number expected)".into(),
                        )
                    })?;
                match nums.len() {
                    0 => Ok(r),
                    1 => {
                        let u = nums[0].floor();
                        if u < 1.0 {
                            return Err(mlua::Error::RuntimeError(
                                "bad argument #1 to 'random' (interval is empty)".into(),
                            ));
                        }
                        Ok((r * u).floor() + 1.0)
                    }
                    2 => {
                        let l = nums[0].floor();
                        let u = nums[1].floor();
                        if l > u {
                            return Err(mlua::Error::RuntimeError(
                                "bad argument #2 to 'random' (interval is empty)".into(),
                            ));
                        }
                        Ok((r * (u - l + 1.0)).floor() + l)
                    }
                    _ => Err(mlua::Error::RuntimeError(
                        "wrong number of arguments".into(),
                    )),
                }
            })?,
        )?;
        math.raw_set(
            "randomseed",
            lua.create_function(|_, seed: f64| {
                rand48_seed(num_to_i64(seed) as i32);
                Ok(())
            })?,
        )?;
        // Library tables written in Rust by their own modules.
        register_libraries(&lua)?;
        g.raw_set("redis", build_redis_table(&lua)?)?;
        // (message, raised as a table, counted already)
        let conv = lua.create_function(|_, v: Value| {
            Ok(match v {
                Value::Error(e) => match error_text(&e) {
                    (m, Raised::Text) => (m, false, false),
                    (m, Raised::Table) => (m, true, false),
                    (m, Raised::CountedTable) => (m, true, true),
                },
                other => (other.to_string().unwrap_or_default(), false, false),
            })
        })?;
        let killed = lua.create_function(|_, ()| Ok(with_exec(|e| e.killed).unwrap_or(false)))?;
        let prelude = lua.load(PRELUDE).set_name(INTERNAL).into_function()?;
        let (env, run, _run_fn, make_lib_env, finish_lib_env): (
            Table,
            Function,
            Function,
            Function,
            Function,
        ) = prelude.call((g.clone(), dbg, conv, killed, g.raw_get::<Value>("setfenv")?))?;
        let handler: Function = g.raw_get("__redis__err__handler")?;
        // SAFETY: stack operations on the new state, balanced; the references live as long as it.
        let (handler_ref, entry_ref, names_ref) = lua.exec_raw_lua(|raw| unsafe {
            let l = raw.state();
            ffi::lua_checkstack(l, 2);
            raw.push(&handler)?;
            let h = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            ffi::lua_pushcfunction(l, run_entry);
            let e = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            ffi::lua_pushstring(l, c"KEYS".as_ptr());
            let k = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            ffi::lua_pushstring(l, c"ARGV".as_ptr());
            let a = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            Ok::<_, mlua::Error>((h, e, [k, a]))
        })?;
        sandbox::guard_table_functions(&lua)?;
        for name in [
            "debug", "print", "dofile", "loadfile", "getfenv", "setfenv", "newproxy", "module",
            "require", "package", "io", "os",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(100_000),
            |_lua, _dbg| hook(),
        )?;
        // What building the environment left behind is garbage: start each state at its real size.
        lua.gc_collect()?;
        lua.gc_collect()?;
        Ok(State {
            lua,
            env,
            run,
            handler_ref,
            entry_ref,
            names_ref,
            make_lib_env,
            finish_lib_env,
            compiled: HashMap::default(),
            compiled_epoch: 0,
            functions: HashMap::new(),
            lib_gen: u64::MAX,
            heap,
        })
    }

    /// Compile an EVAL script body (chunk `@user_script`) into a function running in the script
    /// environment. The error is Redis's compile error text.
    pub fn compile(&self, body: &[u8]) -> Result<Function, String> {
        let mut src;
        let body = if body.starts_with(b"#!") {
            src = body.to_vec();
            src[0] = b'-';
            src[1] = b'-';
            &src[..]
        } else {
            body
        };
        let f = self
            .lua
            .load(&*sandbox::text_only(body))
            .set_name("@user_script")
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    syntax_text(&e)
                )
            })?;
        f.set_environment(self.env.clone())
            .map_err(|e| format!("ERR {e}"))?;
        Ok(f)
    }

    /// The compiled function of a cached script, compiling it into this state if needed.
    pub fn script_fn(
        &mut self,
        scripting: &Scripting,
        sha: &[u8; 40],
        body: &[u8],
    ) -> Result<Function, String> {
        let epoch = scripting.scripts_epoch.load(Relaxed);
        if epoch != self.compiled_epoch {
            for (_, k) in self.compiled.drain() {
                let _ = self.lua.remove_registry_value(k);
            }
            self.compiled_epoch = epoch;
            let _ = self.lua.gc_collect();
        }
        if let Some(k) = self.compiled.get(sha) {
            if let Ok(f) = self.lua.registry_value::<Function>(k) {
                return Ok(f);
            }
        }
        let f = self.compile(body)?;
        if let Ok(k) = self.lua.create_registry_value(f.clone()) {
            self.compiled.insert(*sha, k);
        }
        Ok(f)
    }

    /// Run a library's code in a load-time environment and collect its registered functions. On
    /// success the functions' environment becomes the full script environment.
    pub fn load_library_code(&self, body: &[u8]) -> Result<Vec<Registered>, String> {
        let mut src = body.to_vec();
        if src.starts_with(b"#!") {
            src[0] = b'-';
            src[1] = b'-';
        }
        let f = self
            .lua
            .load(&*sandbox::text_only(&src))
            .set_name("@user_function")
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", syntax_text(&e)))?;
        let lredis = build_load_redis_table(&self.lua).map_err(|e| format!("ERR {e}"))?;
        let env: Table = self
            .make_lib_env
            .call(lredis)
            .map_err(|e| format!("ERR {e}"))?;
        f.set_environment(env.clone())
            .map_err(|e| format!("ERR {e}"))?;
        LOADING.with(|l| *l.borrow_mut() = Some(Vec::new()));
        let r: mlua::Result<(bool, Value)> = self.run.call(f);
        let regs = LOADING.with(|l| l.borrow_mut().take()).unwrap_or_default();
        match r {
            Ok((true, _)) => {}
            Ok((false, e)) => {
                let msg = match &e {
                    Value::Table(t) => t
                        .raw_get::<String>("err")
                        .unwrap_or_else(|_| "ERR unknown error".into()),
                    _ => "ERR unknown error".into(),
                };
                return Err(format!("ERR Error registering functions: {msg}"));
            }
            Err(e) => {
                return Err(format!(
                    "ERR Error registering functions: ERR {}",
                    error_text(&e).0
                ))
            }
        }
        let _ = self.finish_lib_env.call::<()>(env);
        Ok(regs)
    }
}

/// Install cjson, cmsgpack, bit and struct (written in Rust by their own modules).
fn register_libraries(lua: &Lua) -> mlua::Result<()> {
    super::cjson::register(lua)?;
    super::cmsgpack::register(lua)?;
    super::bit::register(lua)?;
    super::structlib::register(lua)?;
    Ok(())
}

/// The message of a compile error as Lua reports it ("user_script:1: ...").
fn syntax_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => error_text(other).0,
    }
}

/// Run `f` with this thread's Lua state (created on first use).
pub fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Result<R, String> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some(State::new().map_err(|e| format!("ERR Lua state: {e}"))?);
        }
        Ok(f(s.as_mut().expect("state just created")))
    })
}

/// How often (at most) a busy script's hook serves the other connections of its thread.
const SERVE_EVERY_NS: u64 = 1_000_000;

/// The count hook: busy detection, serving this thread's other connections while busy (Redis's
/// processEventsWhileBlocked), SCRIPT KILL / FUNCTION KILL.
fn hook() -> mlua::Result<VmState> {
    let serve = with_exec(|e| {
        if e.killed {
            return Err(());
        }
        if e.busy.is_none() {
            let elapsed = crate::server::mono_ns().saturating_sub(e.start_ns) / 1_000_000;
            if elapsed < e.threshold_ms {
                return Ok(None);
            }
            // SAFETY: see `with_exec`.
            let srv = unsafe { &*e.srv };
            let flags = Arc::new(BusyFlags::default());
            flags.wrote.store(e.wrote, Relaxed);
            let kind = if e.is_function {
                BUSY_FUNCTION
            } else {
                BUSY_EVAL
            };
            let running = super::RunningInfo {
                name: e.name.to_string(),
                argv: e.argv.clone(),
                start: Instant::now() - std::time::Duration::from_millis(elapsed),
            };
            let id = srv.scripting.busy_begin(kind, flags.clone(), running);
            e.busy = Some((id, flags));
            crate::log::warning(&format!(
                "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the {} command.",
                if e.is_function { "FUNCTION KILL" } else { "SCRIPT KILL" }
            ));
        }
        let now = crate::server::mono_ns();
        if now.saturating_sub(e.last_served_ns) < SERVE_EVERY_NS {
            return Ok(None);
        }
        e.last_served_ns = now;
        Ok(Some(e.srv))
    });
    let killed = match serve {
        Some(Err(())) => true,
        Some(Ok(Some(srv))) => {
            // Outside `with_exec`: the commands served here belong to other clients (none of them may
            // run a script: EVAL and FCALL are refused while busy).
            // SAFETY: see `with_exec`.
            if let Some(hook) = super::BUSY_HOOK.get() {
                hook(unsafe { &*srv });
            }
            with_exec(|e| {
                let k = e.busy.as_ref().is_some_and(|(_, f)| f.kill.load(Relaxed));
                e.killed |= k;
                e.killed
            })
            .unwrap_or(false)
        }
        _ => false,
    };
    if killed {
        let f = with_exec(|e| e.is_function).unwrap_or(false);
        table_err(if f { KILLED_FN_MSG } else { KILLED_MSG })
    } else {
        Ok(VmState::Continue)
    }
}

fn log_level_ok(l: i64) -> bool {
    (0..=3).contains(&l)
}

fn lua_arg_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(n) => Some(fmt_g17(*n).into_bytes()),
        _ => None,
    }
}

fn redis_log(args: &MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return table_err("ERR redis.log() requires two arguments or more.");
    }
    let level = match &args[0] {
        Value::Integer(i) => *i,
        Value::Number(n) => *n as i64,
        _ => return table_err("ERR First argument must be a number (log level)."),
    };
    if !log_level_ok(level) {
        return table_err("ERR Invalid debug level.");
    }
    let mut msg = String::new();
    for (i, a) in args.iter().skip(1).enumerate() {
        if i > 0 {
            msg.push(' ');
        }
        if let Some(b) = lua_arg_bytes(a) {
            msg.push_str(&String::from_utf8_lossy(&b));
        }
    }
    match level {
        3 => crate::log::warning(&msg),
        _ => crate::log::notice(&msg),
    }
    Ok(())
}

pub(super) fn error_reply_table(lua: &Lua, s: &[u8]) -> mlua::Result<Table> {
    // "-CODE msg" keeps its code; anything else gets ERR.
    let full = if let Some(rest) = s.strip_prefix(b"-") {
        match rest.iter().position(|&c| c == b' ') {
            Some(sp) => {
                let mut v = rest[..sp].to_vec();
                v.push(b' ');
                v.extend_from_slice(trim_crlf(&rest[sp + 1..]));
                v
            }
            None => {
                let mut v = b"ERR ".to_vec();
                v.extend_from_slice(trim_crlf(rest));
                v
            }
        }
    } else {
        let mut v = b"ERR ".to_vec();
        v.extend_from_slice(trim_crlf(s));
        v
    };
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&full)?)?;
    Ok(t)
}

fn trim_crlf(mut s: &[u8]) -> &[u8] {
    while let Some((&c, rest)) = s.split_first() {
        if c == b'\r' || c == b'\n' {
            s = rest;
        } else {
            break;
        }
    }
    while let Some((&c, rest)) = s.split_last() {
        if c == b'\r' || c == b'\n' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn set_common_fields(lua: &Lua, r: &Table) -> mlua::Result<()> {
    r.raw_set("REDIS_VERSION", crate::server::REDIS_VERSION)?;
    let num = crate::server::REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .fold(0i64, |a, p| (a << 8) | p);
    r.raw_set("REDIS_VERSION_NUM", num)?;
    r.raw_set("LOG_DEBUG", 0)?;
    r.raw_set("LOG_VERBOSE", 1)?;
    r.raw_set("LOG_NOTICE", 2)?;
    r.raw_set("LOG_WARNING", 3)?;
    r.raw_set(
        "log",
        lua.create_function(|_, args: MultiValue| redis_log(&args))?,
    )?;
    Ok(())
}

fn build_load_redis_table(lua: &Lua) -> mlua::Result<Table> {
    let r = lua.create_table()?;
    set_common_fields(lua, &r)?;
    r.raw_set(
        "register_function",
        lua.create_function(|_, args: MultiValue| register_function(args))?,
    )?;
    Ok(r)
}

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

const NAME_ERR: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn register_function(args: MultiValue) -> mlua::Result<()> {
    let (name, func, flags, desc) = match args.len() {
        1 => {
            let Value::Table(t) = &args[0] else {
                return table_err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let mut name = None;
            let mut func = None;
            let mut flags = 0u32;
            let mut desc = None;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let Value::String(k) = k else {
                    return table_err(
                        "ERR named argument key given to redis.register_function is not a string",
                    );
                };
                match k.as_bytes().as_ref() {
                    b"function_name" => match v {
                        Value::String(s) => name = Some(s.as_bytes().to_vec()),
                        _ => return table_err("ERR function_name argument given to redis.register_function must be a string"),
                    },
                    b"description" => match v {
                        Value::String(s) => desc = Some(s.to_string_lossy()),
                        _ => return table_err("ERR description argument given to redis.register_function must be a string"),
                    },
                    b"callback" => match v {
                        Value::Function(f) => func = Some(f),
                        _ => return table_err("ERR callback argument given to redis.register_function must be a function"),
                    },
                    b"flags" => match v {
                        Value::Table(ft) => {
                            for f in ft.sequence_values::<Value>() {
                                let f = f?;
                                let bit = match &f {
                                    Value::String(s) => sflags::by_name(&s.to_string_lossy()),
                                    _ => None,
                                };
                                match bit {
                                    Some(b) => flags |= b,
                                    None => return table_err("ERR unknown flag given"),
                                }
                            }
                        }
                        _ => return table_err("ERR flags argument to redis.register_function must be a table representing function flags"),
                    },
                    _ => return table_err("ERR unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return table_err("ERR redis.register_function must get a function name argument");
            };
            let Some(func) = func else {
                return table_err("ERR redis.register_function must get a callback argument");
            };
            (name, func, flags, desc)
        }
        2 => {
            let name = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                _ => {
                    return table_err(
                        "ERR first argument to redis.register_function must be a string",
                    )
                }
            };
            let Value::Function(f) = &args[1] else {
                return table_err(
                    "ERR second argument to redis.register_function must be a function",
                );
            };
            (name, f.clone(), 0, None)
        }
        _ => return table_err("ERR wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return table_err(NAME_ERR);
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    LOADING.with(|l| {
        let mut l = l.borrow_mut();
        let Some(list) = l.as_mut() else {
            return table_err(
                "ERR redis.register_function can only be called on FUNCTION LOAD command",
            );
        };
        if list.iter().any(|r| r.name == name) {
            return table_err("ERR Function already exists in the library");
        }
        list.push(Registered {
            name,
            func,
            flags,
            desc,
        });
        Ok(())
    })
}

fn build_redis_table(lua: &Lua) -> mlua::Result<Table> {
    let r = lua.create_table()?;
    set_common_fields(lua, &r)?;
    r.raw_set("REPL_NONE", 0)?;
    r.raw_set("REPL_AOF", 1)?;
    r.raw_set("REPL_SLAVE", 2)?;
    r.raw_set("REPL_REPLICA", 2)?;
    r.raw_set("REPL_ALL", 3)?;
    r.raw_set(
        "call",
        lua.create_function(|lua, args: CallArgs| redis_call(lua, args, true))?,
    )?;
    r.raw_set(
        "pcall",
        lua.create_function(|lua, args: CallArgs| redis_call(lua, args, false))?,
    )?;
    r.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
            (1, Some(Value::String(s))) => {
                let b = s.as_bytes();
                if b.first() == Some(&b'-') {
                    error_reply_table(lua, &b)
                } else {
                    let mut v = b"-".to_vec();
                    v.extend_from_slice(&b);
                    error_reply_table(lua, &v)
                }
            }
            _ => error_reply_table(lua, b"wrong number or type of arguments"),
        })?,
    )?;
    r.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
            (1, Some(Value::String(s))) => {
                let t = lua.create_table()?;
                t.raw_set("ok", s.clone())?;
                Ok(t)
            }
            _ => error_reply_table(lua, b"wrong number or type of arguments"),
        })?,
    )?;
    r.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return table_err("ERR wrong number of arguments");
            }
            let b = lua_arg_bytes(&args[0]).unwrap_or_default();
            lua.create_string(super::sha1_hex(&b))
        })?,
    )?;
    r.raw_set(
        "setresp",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return table_err("ERR redis.setresp() requires one argument.");
            }
            let v = int_or_minus_one(&args[0]);
            if v != 2 && v != 3 {
                return table_err("ERR RESP version must be 2 or 3.");
            }
            with_exec(|e| e.resp3 = v == 3);
            Ok(())
        })?,
    )?;
    r.raw_set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return table_err("ERR redis.set_repl() requires one argument.");
            }
            let v = int_or_minus_one(&args[0]);
            if !(0..=3).contains(&v) {
                return table_err(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
            }
            Ok(())
        })?,
    )?;
    r.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    r.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    r.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    r.raw_set(
        "acl_check_cmd",
        lua.create_function(|_, args: MultiValue| {
            if args.is_empty() {
                return table_err(
                    "ERR Please specify at least one argument for this redis lib call",
                );
            }
            let mut argv = Vec::new();
            for a in args.iter() {
                match lua_arg_bytes(a) {
                    Some(b) => argv.push(b),
                    None => {
                        return table_err(
                            "ERR Lua redis lib command arguments must be strings or integers",
                        )
                    }
                }
            }
            let reg = Registry::get();
            let Some(id) = reg.lookup(&argv[0]) else {
                return table_err("ERR Invalid command passed to redis.acl_check_cmd()");
            };
            let cmd = reg.command(id);
            if !cmd.subcommands.is_empty()
                && argv.len() >= 2
                && reg.lookup_sub(id, &argv[1]).is_none()
            {
                return table_err("ERR Invalid command passed to redis.acl_check_cmd()");
            }
            Ok(true)
        })?,
    )?;
    Ok(r)
}

/// `redis.call` / `redis.pcall`.
/// A numeric argument as an integer (-1 for anything else).
fn int_or_minus_one(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        Value::Number(n) => *n as i64,
        _ => -1,
    }
}

/// Argument bytes and their spans.
type ArgBufs = (Vec<u8>, Vec<(usize, usize)>);

thread_local! {
    /// The argument buffers of `redis.call`, kept between calls.
    static CALL_BUFS: RefCell<ArgBufs> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The arguments of a `redis.call`: read straight off the Lua stack (as `%.17g` for a number, as Redis
/// does) into buffers reused from call to call.
struct CallArgs {
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// An argument was neither a string nor a number.
    bad: bool,
}

impl CallArgs {
    fn take() -> CallArgs {
        let (mut buf, mut spans) = CALL_BUFS.with(|c| std::mem::take(&mut *c.borrow_mut()));
        buf.clear();
        spans.clear();
        CallArgs {
            buf,
            spans,
            bad: false,
        }
    }

    fn give_back(self) {
        CALL_BUFS.with(|c| *c.borrow_mut() = (self.buf, self.spans));
    }

    fn push_number(&mut self, n: f64) {
        // As Redis 7.2 writes it (`format_double_shortest`); an integral number with fewer than 8 trailing zeros
        // comes out as the plain integer, which itoa writes faster.
        const LIM: f64 = 9_007_199_254_740_992.0; // 2^53
        let i = n as i64;
        if (-LIM..LIM).contains(&n)
            && (i as f64).to_bits() == n.to_bits()
            && (i == 0 || i % 100_000_000 != 0)
        {
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        } else {
            ferrodis_protocol::num::format_double_shortest(n, &mut self.buf);
        }
    }
}

impl mlua::FromLuaMulti for CallArgs {
    fn from_lua_multi(values: MultiValue, _lua: &Lua) -> mlua::Result<Self> {
        let mut a = CallArgs::take();
        for v in values.iter() {
            let start = a.buf.len();
            match v {
                Value::String(s) => a.buf.extend_from_slice(&s.as_bytes()),
                Value::Integer(i) => a.push_number(*i as f64),
                Value::Number(n) => a.push_number(*n),
                _ => a.bad = true,
            }
            a.spans.push((start, a.buf.len()));
        }
        Ok(a)
    }

    unsafe fn from_stack_args(
        nargs: c_int,
        _i: usize,
        _to: Option<&str>,
        lua: &mlua::state::RawLua,
    ) -> mlua::Result<Self> {
        let l = lua.state();
        let mut a = CallArgs::take();
        for k in 0..nargs {
            let idx = k - nargs;
            let start = a.buf.len();
            match ffi::lua_type(l, idx) {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(l, idx, &mut len);
                    // SAFETY: a Lua string of `len` bytes, alive while it is on the stack.
                    a.buf
                        .extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
                }
                ffi::LUA_TNUMBER => a.push_number(ffi::lua_tonumber(l, idx)),
                _ => a.bad = true,
            }
            a.spans.push((start, a.buf.len()));
        }
        Ok(a)
    }
}

/// What `redis.call` returns: a converted value, or a reply simple enough to push straight onto the
/// Lua stack (the reply buffer goes back to the running script's scratch).
enum CallRet {
    Value(Value),
    Bulk(Vec<u8>, usize, usize),
    Status(Vec<u8>, usize, usize),
    Int(i64),
    Null,
}

/// Recognise a reply that converts without building Lua values in Rust: a bulk string, a RESP2 null
/// bulk, an integer or a status.
fn simple_reply(b: Vec<u8>, resp3: bool) -> Result<CallRet, Vec<u8>> {
    let Some(nl) = memchr::memmem::find(b.get(1..).unwrap_or(&[]), b"\r\n").map(|i| i + 1) else {
        return Err(b);
    };
    let line = &b[1..nl];
    let single = b.len() == nl + 2;
    match b[0] {
        b':' if single => match ferrodis_protocol::num::parse_i64(line) {
            Some(n) => Ok(CallRet::Int(n)),
            None => Err(b),
        },
        b'+' if single => Ok(CallRet::Status(b, 1, nl)),
        b'$' => match ferrodis_protocol::num::parse_i64(line) {
            Some(-1) if single && !resp3 => Ok(CallRet::Null),
            Some(n) if n >= 0 && b.len() == nl + 2 + n as usize + 2 => {
                Ok(CallRet::Bulk(b, nl + 2, nl + 2 + n as usize))
            }
            _ => Err(b),
        },
        _ => Err(b),
    }
}

fn give_scratch(mut b: Vec<u8>) {
    b.clear();
    with_exec(|e| e.scratch = b);
}

impl mlua::IntoLuaMulti for CallRet {
    fn into_lua_multi(self, lua: &Lua) -> mlua::Result<MultiValue> {
        let v = match self {
            CallRet::Value(v) => v,
            CallRet::Bulk(b, s, e) => {
                let v = Value::String(lua.create_string(&b[s..e])?);
                give_scratch(b);
                v
            }
            CallRet::Status(b, s, e) => {
                let t = lua.create_table()?;
                t.raw_set("ok", lua.create_string(&b[s..e])?)?;
                give_scratch(b);
                Value::Table(t)
            }
            CallRet::Int(n) => Value::Number(n as f64),
            CallRet::Null => Value::Boolean(false),
        };
        v.into_lua_multi(lua)
    }

    unsafe fn push_into_stack_multi(self, lua: &mlua::state::RawLua) -> mlua::Result<c_int> {
        let l = lua.state();
        if ffi::lua_checkstack(l, 3) == 0 {
            return Err(mlua::Error::StackError);
        }
        match self {
            CallRet::Value(v) => lua.push_value(&v)?,
            CallRet::Bulk(b, s, e) => {
                ffi::lua_pushlstring(l, b[s..].as_ptr() as *const std::ffi::c_char, e - s);
                give_scratch(b);
            }
            CallRet::Status(b, s, e) => {
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushstring(l, c"ok".as_ptr());
                ffi::lua_pushlstring(l, b[s..].as_ptr() as *const std::ffi::c_char, e - s);
                ffi::lua_rawset(l, -3);
                give_scratch(b);
            }
            CallRet::Int(n) => ffi::lua_pushnumber(l, n as f64),
            CallRet::Null => ffi::lua_pushboolean(l, 0),
        }
        Ok(1)
    }
}

fn redis_call(lua: &Lua, args: CallArgs, raise: bool) -> mlua::Result<CallRet> {
    // An error of the call itself: `counted` when errorstats already counted it (a command that was
    // rejected or failed), so the script's reply does not count it again (Redis's
    // `ignore_error_stats_update`).
    let fail = |lua: &Lua, msg: &str, counted: bool| -> mlua::Result<CallRet> {
        if raise {
            Err(mlua::Error::external(TableErr {
                msg: msg.to_string(),
                counted,
            }))
        } else {
            let mut m = b"-".to_vec();
            m.extend_from_slice(msg.as_bytes());
            let t = error_reply_table(lua, &m)?;
            if counted {
                t.raw_set(IGNORE_STATS_FIELD, true)?;
            }
            Ok(CallRet::Value(Value::Table(t)))
        }
    };
    if args.spans.is_empty() {
        args.give_back();
        return fail(
            lua,
            "ERR Please specify at least one argument for this redis lib call",
            false,
        );
    }
    if args.bad {
        args.give_back();
        return fail(
            lua,
            "ERR Lua redis lib command arguments must be strings or integers",
            false,
        );
    }
    let res = with_exec(|e| {
        let r = exec_command(e, Args::from_parts(&args.buf, &args.spans));
        (r, e.resp3)
    });
    args.give_back();
    match res {
        None => fail(
            lua,
            "ERR redis.call can only be used while a script runs",
            false,
        ),
        Some((Err(msg), _)) => fail(lua, &msg, true),
        Some((Ok(bytes), resp3)) => {
            if bytes.first() == Some(&b'-') {
                let mut pos = 0;
                let v = resp_to_lua(lua, &bytes, &mut pos, resp3)?;
                give_scratch(bytes);
                if let Value::Table(t) = &v {
                    let m: String = t.raw_get("err")?;
                    return fail(lua, &m, true);
                }
                return Ok(CallRet::Value(v));
            }
            match simple_reply(bytes, resp3) {
                Ok(r) => Ok(r),
                Err(bytes) => {
                    let mut pos = 0;
                    let v = resp_to_lua(lua, &bytes, &mut pos, resp3)?;
                    give_scratch(bytes);
                    Ok(CallRet::Value(v))
                }
            }
        }
    }
}

/// [`convert::IGNORE_STATS`] as a Lua key.
const IGNORE_STATS_FIELD: &str = "ignore_error_stats_update";

/// Run one command for a script through `cmd::call`. Ok(its reply, an error reply included) or Err(why
/// it could not run); either way an error is counted in errorstats here, and a rejected command in its
/// `rejected_calls`, as for a client's command.
fn exec_command(e: &mut Exec, args: Args<'_>) -> Result<Vec<u8>, String> {
    // SAFETY: see `with_exec`: the caller's server and client outlive the script run.
    let srv = unsafe { &*e.srv };
    // SAFETY: as above.
    let client = unsafe { &mut *e.client };
    let id = match admit_from_script(e, srv, &args) {
        Ok(id) => id,
        Err((id, msg)) => {
            cmd::count_rejection(srv, client.worker, id, msg);
            return Err(msg.to_string());
        }
    };
    let cmd = Registry::get().command(id);
    let mut out = std::mem::take(&mut e.scratch);
    out.clear();
    let saved_resp = client.resp3;
    client.resp3 = e.resp3;
    let (_, events) = cmd::call(srv, client, &mut out, id, args, &mut e.clock);
    client.resp3 = saved_resp;
    if cmd.has(flags::WRITE) {
        e.wrote = true;
        if let Some((_, f)) = &e.busy {
            f.wrote.store(true, Relaxed);
        }
    }
    e.events.extend(events);
    Ok(out)
}

/// The checks a script's command passes before it runs (Redis's scriptCall): the command id, or the
/// command (when known) and the error.
fn admit_from_script(
    e: &Exec,
    srv: &Server,
    args: &Args<'_>,
) -> Result<usize, (Option<usize>, &'static str)> {
    const UNKNOWN: &str = "ERR Unknown Redis command called from script";
    let reg = Registry::get();
    let Some(mut id) = args.try_get(0).and_then(|name| reg.lookup(name)) else {
        return Err((None, UNKNOWN));
    };
    let top = reg.command(id);
    if let (false, Some(sub)) = (top.subcommands.is_empty(), args.try_get(1)) {
        match reg.lookup_sub(id, sub) {
            Some(s) => id = s,
            None => return Err((None, UNKNOWN)),
        }
    }
    let cmd = reg.command(id);
    let argc = args.len() as i32;
    if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
        return Err((
            Some(id),
            "ERR Wrong number of args calling Redis command from script",
        ));
    }
    if (cmd.has(flags::NOSCRIPT) || top.has(flags::NOSCRIPT))
        && !srv.scripting.allow_noscript.load(Relaxed)
    {
        return Err((
            Some(id),
            "ERR This Redis command is not allowed from script",
        ));
    }
    if cmd.has(flags::WRITE) {
        if e.read_only {
            return Err((
                Some(id),
                "ERR Write commands are not allowed from read-only scripts.",
            ));
        }
        if cmd.has(flags::DENYOOM) && !e.allow_oom && srv.over_maxmemory() {
            return Err((Some(id), cmd::err::OOM));
        }
    }
    Ok(id)
}

/// How a script's run ended.
pub enum Outcome {
    /// Its reply (an error reply included, counted as Redis counts it) is written.
    Replied,
    /// The Lua state could not be set up / the function could not be called: the error reply (the
    /// caller sends and counts it).
    Fatal(String),
}

/// Parameters of one run.
pub struct RunParams<'a> {
    pub srv: &'a Arc<Server>,
    pub client: &'a mut Client,
    pub out: &'a mut Vec<u8>,
    pub func: Function,
    pub keys: Vec<&'a [u8]>,
    pub args: Vec<&'a [u8]>,
    pub read_only: bool,
    pub flags: u32,
    pub is_function: bool,
    /// For error texts: the SHA (EVAL) or function name.
    pub name: Arc<str>,
    pub argv: Vec<Vec<u8>>,
    /// The command running the script (EVAL, FCALL, ...), which errors are accounted to.
    pub cmd_id: usize,
}

/// Run a compiled script / function on this thread's state, writing its reply (or error) to `out`.
/// Returns the key events of its commands (for delivery once its isolation scope is gone).
pub fn run_script(st: &mut State, p: RunParams<'_>) -> (Outcome, Vec<crate::notify::KeyEvent>) {
    let threshold_ms = p.srv.scripting.busy_threshold_ms.load(Relaxed);
    let resp3_caller = p.client.resp3;
    let saved_db = p.client.db;
    let saved_in_exec = p.client.in_exec;
    p.client.in_exec = true;
    // The busy timer starts with the script's command clock (one clock read less per script).
    let clock = BatchClock::new();
    let start_ns = clock.mono_ns();
    let mut exec = Exec {
        srv: p.srv as *const Arc<Server>,
        client: p.client as *mut Client,
        read_only: p.read_only || p.flags & sflags::NO_WRITES != 0,
        allow_oom: p.flags & sflags::ALLOW_OOM != 0,
        is_function: p.is_function,
        resp3: false,
        clock,
        events: Vec::new(),
        start_ns,
        threshold_ms: threshold_ms.max(1),
        killed: false,
        wrote: false,
        busy: None,
        last_served_ns: start_ns,
        name: p.name.clone(),
        argv: p.argv,
        scratch: Vec::new(),
    };
    EXEC.with(|e| e.set(&mut exec as *mut Exec));
    let result = call_protected(st, &p.func, &p.keys, &p.args, p.is_function);
    EXEC.with(|e| e.set(std::ptr::null_mut()));
    // SAFETY: the client pointer in `exec` is `p.client`, no longer used through it.
    let client = p.client;
    client.db = saved_db;
    if !saved_in_exec {
        // Clients blocked on keys the script made ready are served now that it ran entirely, under its
        // locks; their pops join its AOF block, which goes out while the locks are still held.
        let served = cmd::serve_ready_keys(p.srv, p.cmd_id, client, &exec.clock);
        exec.events.extend(served);
        p.srv.persist.aof.flush_exec();
    }
    client.in_exec = saved_in_exec;
    let mut r = Reply::new(p.out, resp3_caller);
    // Error replies are counted as Redis counts them: not again when a command run by the script failed
    // with it (already counted; the script's command fails all the same).
    let (srv, worker) = (p.srv, client.worker);
    let count = |msg: &str, counted: bool| {
        if counted {
            srv.workers[worker].cmds[p.cmd_id].failed.add(1);
        } else {
            srv.count_error_reply(worker, msg);
        }
    };
    let outcome = match result {
        Ok((true, v)) => {
            for e in lua_to_resp(&st.lua, &v, &mut r, exec.resp3) {
                count(&e.msg, e.counted);
            }
            Outcome::Replied
        }
        Ok((false, e)) => {
            let counted = matches!(&e, Value::Table(t) if matches!(t.raw_get::<Value>(IGNORE_STATS_FIELD), Ok(Value::Boolean(true))));
            let msg = error_reply_text(&e, &p.name, exec.killed, p.is_function);
            r.error(&msg);
            count(&msg, counted);
            Outcome::Replied
        }
        Err(mlua::Error::MemoryError(m)) => {
            let msg = format!("ERR Error running script {}, {m}", p.name);
            r.error(&msg);
            count(&msg, false);
            Outcome::Replied
        }
        Err(e) => Outcome::Fatal(format!("ERR {}", error_text(&e).0)),
    };
    if let Some((id, _)) = exec.busy.take() {
        p.srv.scripting.busy_end(id);
    }
    let mem = st.heap.get() as u64;
    let last = LAST_MEM.with(|m| m.replace(mem));
    if mem >= last {
        p.srv.scripting.lua_memory.fetch_add(mem - last, Relaxed);
    } else {
        p.srv.scripting.lua_memory.fetch_sub(last - mem, Relaxed);
    }
    (outcome, std::mem::take(&mut exec.events))
}

/// What [`run_entry`] gets of one run (through a light userdata).
struct RunArgs<'a> {
    keys: &'a [&'a [u8]],
    args: &'a [&'a [u8]],
    is_function: bool,
    /// Registry references of the strings "KEYS" and "ARGV".
    keys_name: c_int,
    argv_name: c_int,
}

/// Push a new array of `items`.
unsafe fn push_array(l: *mut ffi::lua_State, items: &[&[u8]]) {
    ffi::lua_createtable(l, items.len().min(i32::MAX as usize) as c_int, 0);
    for (i, it) in items.iter().enumerate() {
        ffi::lua_pushlstring(l, it.as_ptr() as *const std::ffi::c_char, it.len());
        ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
    }
}

/// The protected part of a run (called by `lua_pcall` under the prelude's error handler, so what fails
/// here fails as the script would): 1: a light userdata of [`RunArgs`], 2: the script or function. Builds
/// KEYS and ARGV (globals for a script, arguments for a function) and calls it for one result.
unsafe extern "C-unwind" fn run_entry(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `call_protected` passes a RunArgs that outlives this call. Nothing here needs dropping, so
    // a Lua error raised through this frame unwinds nothing of Rust's.
    let ra = &*(ffi::lua_touserdata(l, 1) as *const RunArgs);
    ffi::luaL_checkstack(l, 6, c"too many results".as_ptr());
    push_array(l, ra.keys);
    push_array(l, ra.args);
    let nargs = if ra.is_function {
        2
    } else {
        // The names come from the registry (interned once), not hashed again on every run.
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ra.argv_name as ffi::lua_Integer);
        ffi::lua_insert(l, -2);
        ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ra.keys_name as ffi::lua_Integer);
        ffi::lua_insert(l, -2);
        ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
        0
    };
    ffi::lua_call(l, nargs, 1);
    1
}

/// Call a script (KEYS and ARGV set as globals) or a function (called with the two tables) under the
/// prelude's error handler, as `xpcall(f, handler)` would: (true, its first result) or (false, the
/// handler's error table, or the message of an error raised without it, as out-of-memory is). Done with
/// the Lua API directly (no Lua wrapper frame, no tables built through mlua).
fn call_protected(
    st: &State,
    func: &Function,
    keys: &[&[u8]],
    args: &[&[u8]],
    is_function: bool,
) -> mlua::Result<(bool, Value)> {
    let ra = RunArgs {
        keys,
        args,
        is_function,
        keys_name: st.names_ref[0],
        argv_name: st.names_ref[1],
    };
    st.lua.exec_raw_lua(|raw| {
        // SAFETY: plain stack operations on this thread's state (room checked first); the stack is
        // back at `top` when this returns.
        unsafe {
            let l = raw.state();
            let top = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 8) == 0 {
                return Err(mlua::Error::StackError);
            }
            ffi::lua_rawgeti(
                l,
                ffi::LUA_REGISTRYINDEX,
                st.handler_ref as ffi::lua_Integer,
            );
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, st.entry_ref as ffi::lua_Integer);
            ffi::lua_pushlightuserdata(l, &ra as *const RunArgs as *mut std::ffi::c_void);
            if let Err(e) = raw.push(func) {
                ffi::lua_settop(l, top);
                return Err(e);
            }
            let status = ffi::lua_pcall(l, 2, 1, top + 1);
            let v = raw.pop::<Value>();
            ffi::lua_settop(l, top);
            Ok((status == 0, v?))
        }
    })
}

/// The error reply of a failed script: `msg script: <name>, on <source>:<line>.`
fn error_reply_text(e: &Value, name: &str, killed: bool, is_function: bool) -> String {
    let (msg, source, line) = match e {
        Value::Table(t) => {
            let msg = match t.raw_get::<Value>("err") {
                Ok(Value::String(s)) => s.to_string_lossy(),
                Ok(Value::Integer(i)) => i.to_string(),
                Ok(Value::Number(n)) => fmt_g17(n),
                _ => "ERR unknown error".into(),
            };
            let source = match t.raw_get::<Value>("source") {
                Ok(Value::String(s)) => Some(s.to_string_lossy()),
                _ => None,
            };
            let line = match t.raw_get::<Value>("line") {
                Ok(Value::Integer(i)) => Some(i.to_string()),
                Ok(Value::Number(n)) => Some((n as i64).to_string()),
                _ => None,
            };
            (msg, source, line)
        }
        // Not a table: the error handler did not run (Lua raises out-of-memory without it).
        other => {
            let m = other.to_string().unwrap_or_default();
            let m: String = m.chars().take(100).collect();
            (format!("ERR Error running script {name}, {m}"), None, None)
        }
    };
    let msg = if killed && !msg.starts_with("ERR Script killed") {
        (if is_function {
            KILLED_FN_MSG
        } else {
            KILLED_MSG
        })
        .to_string()
    } else {
        msg
    };
    match (source, line) {
        (Some(s), Some(l)) => format!("{msg} script: {name}, on {s}:{l}."),
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17() {
        assert_eq!(fmt_g17(3.5), "3.5");
        assert_eq!(fmt_g17(0.1), "0.10000000000000001");
        assert_eq!(fmt_g17(1e20), "1e+20");
        assert_eq!(fmt_g17(3.0), "3");
        assert_eq!(fmt_g17(f64::INFINITY), "inf");
    }

    #[test]
    fn casts() {
        assert_eq!(num_to_i64(3.99), 3);
        assert_eq!(num_to_i64(-3.99), -3);
        assert_eq!(num_to_i64(f64::NAN), i64::MIN);
        assert_eq!(num_to_i64(2f64.powi(63)), i64::MIN);
        assert_eq!(num_to_i64(f64::INFINITY), i64::MIN);
    }

    #[test]
    fn numbers_for_redis_call_as_redis_72_writes_them() {
        // Redis 7.2.4's output for each, through SET then GET.
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (3.5, "3.5"),
            (1e20, "1e+20"),
            (123456789012.5, "123456789012.5"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.5e-10, "1.5e-10"),
            (1e15, "1e+15"),
            (12345678901234567890.0, "12345678901234567000"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (1e7, "10000000"),
            (-2.25, "-2.25"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-1e-5, "-0.00001"),
            (2f64.powi(63), "9223372036854776000"),
            (-0.0, "-0"),
        ];
        for (x, want) in cases {
            let mut out = Vec::new();
            ferrodis_protocol::num::format_double_shortest(*x, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), *want, "{x}");
        }
    }

    #[test]
    fn rand48_matches_redis() {
        rand48_seed(42);
        let r = f64::from(rand48_next() % i32::MAX) / f64::from(i32::MAX);
        assert_eq!(fmt_g17(r).get(..14), Some("0.744525000334"));
    }

    fn conv(resp: &[u8], resp3: bool) -> Vec<u8> {
        let lua = Lua::new();
        let mut pos = 0;
        let v = resp_to_lua(&lua, resp, &mut pos, resp3).unwrap();
        assert_eq!(pos, resp.len());
        let mut out = Vec::new();
        lua_to_resp(&lua, &v, &mut Reply::new(&mut out, resp3), resp3);
        out
    }

    #[test]
    fn round_trips() {
        assert_eq!(conv(b":5\r\n", false), b":5\r\n");
        assert_eq!(conv(b"$3\r\nabc\r\n", false), b"$3\r\nabc\r\n");
        assert_eq!(conv(b"$-1\r\n", false), b"$-1\r\n");
        assert_eq!(conv(b"+OK\r\n", false), b"+OK\r\n");
        assert_eq!(conv(b"-ERR x\r\n", false), b"-ERR x\r\n");
        assert_eq!(conv(b"-WRONGTYPE y z\r\n", false), b"-WRONGTYPE y z\r\n");
        assert_eq!(
            conv(b"*2\r\n:1\r\n$1\r\na\r\n", false),
            b"*2\r\n:1\r\n$1\r\na\r\n"
        );
        assert_eq!(conv(b"*-1\r\n", false), b"$-1\r\n");
        assert_eq!(conv(b"_\r\n", true), b"_\r\n");
        assert_eq!(conv(b",1.5\r\n", true), b",1.5\r\n");
        assert_eq!(conv(b"#t\r\n", true), b"#t\r\n");
        assert_eq!(conv(b"(123\r\n", true), b"(123\r\n");
        assert_eq!(
            conv(b"%1\r\n$1\r\na\r\n:1\r\n", true),
            b"%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(conv(b"~1\r\n$1\r\na\r\n", true), b"~1\r\n$1\r\na\r\n");
        assert_eq!(conv(b"=7\r\ntxt:abc\r\n", true), b"=7\r\ntxt:abc\r\n");
        // An array stops at the first nil.
        assert_eq!(conv(b"*3\r\n:1\r\n_\r\n:2\r\n", true), b"*1\r\n:1\r\n");
    }

    #[test]
    fn self_referencing_table_hits_the_stack_limit_like_redis() {
        let lua = Lua::new();
        let t: Table = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        let mut out = Vec::new();
        lua_to_resp(
            &lua,
            &Value::Table(t),
            &mut Reply::new(&mut out, false),
            false,
        );
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("*1\r\n").count(), 7995);
        assert!(text.ends_with("-ERR reached lua stack limit\r\n"));
    }

    #[test]
    fn error_reply_codes() {
        let lua = Lua::new();
        let t = error_reply_table(&lua, b"-MY x").unwrap();
        assert_eq!(t.raw_get::<String>("err").unwrap(), "MY x");
        let t = error_reply_table(&lua, b"-x").unwrap();
        assert_eq!(t.raw_get::<String>("err").unwrap(), "ERR x");
        let t = error_reply_table(&lua, b"plain\r\n").unwrap();
        assert_eq!(t.raw_get::<String>("err").unwrap(), "ERR plain");
    }
}
