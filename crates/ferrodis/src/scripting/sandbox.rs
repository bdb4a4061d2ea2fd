//! What keeps a hostile script from taking the process down or escaping the sandbox, below the Lua
//! environment itself (which `engine.rs` protects with read-only tables):
//! - an allocator that reports failure to Lua (which raises "not enough memory") instead of aborting, and
//!   counts the state's heap for INFO;
//! - text-only chunks: precompiled bytecode is never loaded (a crafted chunk can forge pointers);
//! - a bound on the recursion of Lua's pattern matcher, which recurses once per quantified pattern item
//!   on the native stack and has no limit of its own;
//! - rawset, setmetatable and getmetatable as C functions that refuse (or hide) the environment's read-only
//!   tables and otherwise run the originals in their own call frame, so their errors read as Redis's.

use mlua::{ffi, Lua};
use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// The first byte of a precompiled Lua chunk (ESC).
const BINARY_SIGNATURE: u8 = 0x1b;

/// A chunk as the loader must see it: a chunk starting with the bytecode signature gets one leading
/// space, so Lua's loader parses it as source text and rejects it with the lexer's error ("unexpected
/// symbol near 'char(27)'"), the error Redis gives since it stopped loading bytecode.
pub fn text_only(chunk: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if chunk.first() == Some(&BINARY_SIGNATURE) {
        let mut v = Vec::with_capacity(chunk.len() + 1);
        v.push(b' ');
        v.extend_from_slice(chunk);
        std::borrow::Cow::Owned(v)
    } else {
        std::borrow::Cow::Borrowed(chunk)
    }
}

/// Bytes of one Lua state's heap, kept by its allocator (the state is used by one thread only).
pub type HeapCounter = Cell<usize>;

/// Lua's allocator: Rust's global allocator with the layout mlua uses (so blocks allocated before the
/// switch are freed correctly), returning NULL on failure: Lua turns that into a "not enough memory"
/// error, where mlua's own allocator would abort the process. `ud` is the state's [`HeapCounter`].
unsafe extern "C" fn lua_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the leaked counter given to lua_setallocf, used by this state's thread only.
    let heap = unsafe { &*(ud as *const HeapCounter) };
    let old = if ptr.is_null() { 0 } else { osize };
    if nsize == 0 {
        if !ptr.is_null() {
            // SAFETY: `ptr` was allocated by this allocator (or mlua's, same layout) with size `osize`.
            unsafe {
                std::alloc::dealloc(
                    ptr as *mut u8,
                    Layout::from_size_align_unchecked(osize, ffi::SYS_MIN_ALIGN),
                )
            };
            heap.set(heap.get().saturating_sub(osize));
        }
        return std::ptr::null_mut();
    }
    let Ok(new_layout) = Layout::from_size_align(nsize, ffi::SYS_MIN_ALIGN) else {
        return std::ptr::null_mut();
    };
    // SAFETY: as above; the layouts are valid (checked for the new size).
    let p = unsafe {
        if ptr.is_null() {
            std::alloc::alloc(new_layout)
        } else {
            std::alloc::realloc(
                ptr as *mut u8,
                Layout::from_size_align_unchecked(osize, ffi::SYS_MIN_ALIGN),
                nsize,
            )
        }
    };
    if !p.is_null() {
        heap.set(heap.get().saturating_sub(old) + nsize);
    }
    p as *mut c_void
}

/// Most nested quantified items (and captures) a pattern may have: the matcher recurses once per item
/// on the native stack. Redis 7.2 survives 100,000 (and crashes somewhat above); worker threads have
/// stack for this many (`WORKER_STACK_BYTES`), a longer pattern gets "pattern too complex".
pub const MAX_PATTERN_DEPTH: usize = 250_000;

/// Native stack of a thread that runs scripts: room for `MAX_PATTERN_DEPTH` levels of the pattern
/// matcher (its deepest path uses under 100 bytes per level) plus everything else a command needs.
pub const WORKER_STACK_BYTES: usize = 64 << 20;

/// Patterns shorter than this cannot nest deep enough to matter and are not scanned.
const SCAN_PATTERNS_FROM: usize = 4096;

/// An upper bound of how deep the matcher can recurse on `pat`: each recursion consumes one of these
/// pattern characters.
fn pattern_depth_bound(pat: &[u8]) -> usize {
    pat.iter()
        .filter(|&&c| matches!(c, b'?' | b'*' | b'+' | b'-' | b'(' | b')'))
        .count()
}

/// The string library's own pattern functions (find, match, gmatch, gsub), captured once.
static PATTERN_FNS: OnceLock<[ffi::lua_CFunction; 4]> = OnceLock::new();
const PATTERN_NAMES: [&str; 4] = ["find", "match", "gmatch", "gsub"];

/// The guarded version of pattern function `I`: checks the pattern (argument 2), then runs the original
/// on the same stack and call frame, so its argument errors read exactly as before.
unsafe extern "C-unwind" fn guarded<const I: usize>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state; the original functions were captured before any guard
    // was installed.
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, 2, &mut len);
            let plain = I == 0 && ffi::lua_toboolean(l, 4) != 0;
            if len >= SCAN_PATTERNS_FROM
                && !plain
                && pattern_depth_bound(std::slice::from_raw_parts(p as *const u8, len))
                    > MAX_PATTERN_DEPTH
            {
                // No Rust value that needs dropping is alive here: lua_error unwinds past this frame.
                ffi::lua_pushstring(l, c"pattern too complex".as_ptr());
                ffi::lua_error(l);
            }
        }
        let fns = PATTERN_FNS.get().expect("pattern functions captured");
        (fns[I])(l)
    }
}

/// Switch a new state to the failing allocator and install the pattern guards in its string table.
/// Returns the state's heap counter (it lives as long as the process: the state may outlive any owner).
pub fn install(lua: &Lua) -> mlua::Result<&'static HeapCounter> {
    // SAFETY: the state is new and not running; the allocator is compatible with mlua's (same layout),
    // and the captured pattern functions are the string library's C functions.
    let heap: &'static HeapCounter = Box::leak(Box::new(Cell::new(lua.used_memory())));
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi::lua_setallocf(l, lua_alloc, heap as *const HeapCounter as *mut c_void);
        })?;
    }
    let string: mlua::Table = lua.globals().raw_get("string")?;
    capture(lua, &string, PATTERN_NAMES, &PATTERN_FNS)?;
    set_guards(
        lua,
        &string,
        PATTERN_NAMES,
        [guarded::<0>, guarded::<1>, guarded::<2>, guarded::<3>],
    )?;
    Ok(heap)
}

/// The base library's rawset, setmetatable and getmetatable, captured once.
static TABLE_FNS: OnceLock<[ffi::lua_CFunction; 3]> = OnceLock::new();
const TABLE_FN_NAMES: [&str; 3] = ["rawset", "setmetatable", "getmetatable"];

/// Push `registry[name][arg 1]` (the environment's tables, registered by the prelude).
unsafe fn push_lookup(l: *mut ffi::lua_State, name: &std::ffi::CStr) {
    // SAFETY: called from a C function with stack room (LUA_MINSTACK); the registry key exists (so the
    // name is interned and looking it up does not allocate).
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, name.as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_rawget(l, -2);
        ffi::lua_remove(l, -2);
    }
}

/// Whether argument 1 is one of the environment's read-only tables.
unsafe fn arg1_protected(l: *mut ffi::lua_State) -> bool {
    // SAFETY: see `push_lookup`.
    unsafe {
        push_lookup(l, c"ferrodis.protected");
        let p = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_pop(l, 1);
        p
    }
}

/// rawset and setmetatable (`I` = 0, 1): refused on a read-only table, else the original, run in this
/// call frame so its argument errors read as before.
unsafe extern "C-unwind" fn guarded_write<const I: usize>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua; the originals were captured before the guards were installed.
    unsafe {
        if arg1_protected(l) {
            // No Rust value that needs dropping is alive here: lua_error unwinds past this frame.
            ffi::lua_pushstring(l, c"Attempt to modify a readonly table".as_ptr());
            ffi::lua_error(l);
        }
        (TABLE_FNS.get().expect("table functions captured")[I])(l)
    }
}

/// getmetatable: a read-only table shows what Redis shows for it (nothing for a library table, a
/// read-only view for the globals), and the strings' metatable is shown as its read-only view.
unsafe extern "C-unwind" fn guarded_getmetatable(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `guarded_write`.
    unsafe {
        if arg1_protected(l) {
            push_lookup(l, c"ferrodis.shown_mt");
            return 1;
        }
        let n = (TABLE_FNS.get().expect("table functions captured")[2])(l);
        if n == 1 {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"ferrodis.string_mt".as_ptr());
            let is_strings = ffi::lua_rawequal(l, -1, -2) != 0;
            ffi::lua_pop(l, 1);
            if is_strings {
                ffi::lua_pop(l, 1);
                ffi::lua_getfield(
                    l,
                    ffi::LUA_REGISTRYINDEX,
                    c"ferrodis.string_mt_view".as_ptr(),
                );
            }
        }
        n
    }
}

/// Capture the C functions `names` of table `t` into `slot` (the same in every state).
fn capture<const N: usize>(
    lua: &Lua,
    t: &mlua::Table,
    names: [&str; N],
    slot: &OnceLock<[ffi::lua_CFunction; N]>,
) -> mlua::Result<()> {
    let mut originals: Vec<ffi::lua_CFunction> = Vec::with_capacity(N);
    for name in names {
        let f: mlua::Function = t.raw_get(name)?;
        let mut cf = None;
        // SAFETY: reads the C function pointer of a library function (no allocation, no error).
        unsafe {
            lua.exec_raw::<()>(f, |l| {
                cf = ffi::lua_tocfunction(l, -1);
            })?;
        }
        originals.push(
            cf.ok_or_else(|| mlua::Error::RuntimeError(format!("{name} is not a C function")))?,
        );
    }
    let originals: [ffi::lua_CFunction; N] = originals
        .try_into()
        .map_err(|_| mlua::Error::RuntimeError("library functions".into()))?;
    let kept = slot.get_or_init(|| originals);
    if kept
        .iter()
        .zip(originals.iter())
        .any(|(a, b)| !std::ptr::fn_addr_eq(*a, *b))
    {
        return Err(mlua::Error::RuntimeError(
            "the Lua libraries differ between states".into(),
        ));
    }
    Ok(())
}

/// Replace `names` in `t` by the C functions `guards`.
fn set_guards<const N: usize>(
    lua: &Lua,
    t: &mlua::Table,
    names: [&str; N],
    guards: [ffi::lua_CFunction; N],
) -> mlua::Result<()> {
    for (name, g) in names.iter().zip(guards) {
        // SAFETY: `g` follows the lua_CFunction protocol.
        let f = unsafe { lua.create_c_function(g)? };
        t.raw_set(*name, f)?;
    }
    Ok(())
}

/// Install the guarded rawset, setmetatable and getmetatable in the globals (once the prelude has
/// registered the environment's read-only tables).
pub fn guard_table_functions(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    capture(lua, &g, TABLE_FN_NAMES, &TABLE_FNS)?;
    set_guards(
        lua,
        &g,
        TABLE_FN_NAMES,
        [guarded_write::<0>, guarded_write::<1>, guarded_getmetatable],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytecode_is_parsed_as_text() {
        assert_eq!(&*text_only(b"return 1"), b"return 1");
        assert_eq!(&*text_only(b"\x1bLuaQ"), b" \x1bLuaQ");
    }

    #[test]
    fn lua_heap_is_counted() {
        let lua = Lua::new();
        let heap = install(&lua).unwrap();
        let before = heap.get();
        assert!(before > 0);
        let big = lua.create_string(vec![b'x'; 1 << 20]).unwrap();
        lua.globals().raw_set("big", big).unwrap();
        assert!(heap.get() >= before + (1 << 20));
        lua.globals().raw_set("big", mlua::Value::Nil).unwrap();
        lua.gc_collect().unwrap();
        lua.gc_collect().unwrap();
        assert!(heap.get() < before + (1 << 19));
    }

    #[test]
    fn depth_bound_counts_quantifiers_and_captures() {
        assert_eq!(pattern_depth_bound(b"abc"), 0);
        assert_eq!(pattern_depth_bound(b"a?b*(c)+d-"), 6);
    }
}
