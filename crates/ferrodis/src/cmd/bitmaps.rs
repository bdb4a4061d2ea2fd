//! Bitmap commands on the string type: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP (AND OR XOR NOT, and Redis
//! 8.2's DIFF DIFF1 ANDOR ONE), BITFIELD, BITFIELD_RO.
//!
//! Everything follows Redis 7.2.4's bitops.c: argument errors before the key is looked up, the same error
//! texts, a new or grown string zero-filled, the value left `raw` by any write, "setbit" events only when a
//! bit changed. Counting and combining work on 64-bit words.

use super::argv::Argv;
use super::spec::{self, ACCESS, OW, RO, RW, UPDATE, VARIABLE_FLAGS};
use super::strings::{grow_string, string_oom};
use super::{acl, err, flags::*, parse, CmdError, CmdResult, Command, Ctx, KeyRef};
use crate::keyspace::entry::Entry;
use crate::keyspace::{shard_of, Shard};
use crate::types::Value;
use ferrodis_protocol::Args;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "setbit",
        arity: 4,
        flags: WRITE | DENYOOM,
        acl: acl::BITMAP,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | ACCESS | UPDATE)],
        handler: setbit,
        group: "bitmap",
        since: "2.2.0",
        summary: "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
        complexity: "O(1)",
        syntax: "key offset:integer value:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "getbit",
        arity: 3,
        flags: READONLY | FAST,
        acl: acl::BITMAP,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: getbit,
        group: "bitmap",
        since: "2.2.0",
        summary: "Returns a bit value by offset.",
        complexity: "O(1)",
        syntax: "key offset:integer",
        ..Command::DEFAULT
    },
    Command {
        name: "bitcount",
        arity: -2,
        flags: READONLY,
        acl: acl::BITMAP,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: bitcount,
        group: "bitmap",
        since: "2.6.0",
        summary: "Counts the number of set bits (population counting) in a string.",
        complexity: "O(N)",
        syntax: "key range:[start:integer end:integer unit:[BYTE | BIT]@7.0.0]",
        history: &[("7.0.0", "Added the `BYTE|BIT` option.")],
        ..Command::DEFAULT
    },
    Command {
        name: "bitpos",
        arity: -3,
        flags: READONLY,
        acl: acl::BITMAP,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: bitpos,
        group: "bitmap",
        since: "2.8.7",
        summary: "Finds the first set (1) or clear (0) bit in a string.",
        complexity: "O(N)",
        syntax: "key bit:integer range:[start:integer end-unit-block:[end:integer unit:[BYTE | BIT]@7.0.0]]",
        history: &[("7.0.0", "Added the `BYTE|BIT` option.")],
        ..Command::DEFAULT
    },
    Command {
        name: "bitop",
        arity: -4,
        flags: WRITE | DENYOOM,
        acl: acl::BITMAP,
        keys: &[
            spec::index(2).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(3).range(-1, 1, 0).flags(RO | ACCESS),
        ],
        handler: bitop,
        group: "bitmap",
        since: "2.6.0",
        summary: "Performs bitwise operations on multiple strings, and stores the result.",
        complexity: "O(N)",
        // Redis 7.2.4's documented operations; DIFF, DIFF1, ANDOR and ONE (Redis 8.2) are accepted too
        // (docs/design/compatibility.md).
        syntax: "operation:<AND | OR | XOR | NOT> destkey:key key ...",
        ..Command::DEFAULT
    },
    Command {
        name: "bitfield",
        arity: -2,
        flags: WRITE | DENYOOM,
        acl: acl::BITMAP,
        keys: &[spec::index(1)
            .range(0, 1, 0)
            .flags(RW | ACCESS | UPDATE | VARIABLE_FLAGS)
            .notes("This command allows both access and modification of the key")],
        get_keys: Some(bitfield_keys),
        handler: bitfield,
        group: "bitmap",
        since: "3.2.0",
        summary: "Performs arbitrary bitfield integer operations on strings.",
        complexity: "O(1) for each subcommand specified",
        syntax: "key operation:[GET get-block:<encoding offset:integer> | write:<[OVERFLOW overflow-block:<WRAP | SAT | FAIL>] write-operation:<SET set-block:<encoding offset:integer value:integer> | INCRBY incrby-block:<encoding offset:integer increment:integer>>>] ...",
        ..Command::DEFAULT
    },
    Command {
        name: "bitfield_ro",
        arity: -2,
        flags: READONLY | FAST,
        acl: acl::BITMAP,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: bitfield_ro,
        group: "bitmap",
        since: "6.0.0",
        summary: "Performs arbitrary read-only bitfield integer operations on strings.",
        complexity: "O(1) for each subcommand specified",
        syntax: "key [GET get-block:<encoding offset:integer>] ...+",
        ..Command::DEFAULT
    },
];

/// BITFIELD's key finder (Redis's bitfieldGetKeys): read-only when every subcommand is a GET (or
/// OVERFLOW); anything else, a syntax error included, counts as a write.
fn bitfield_keys(args: &Args<'_>, out: &mut Vec<KeyRef>) -> bool {
    let mut readonly = true;
    let mut a = Argv::at(*args, 2);
    while let Some(w) = a.opt() {
        let rem = a.remaining();
        if parse::eq(w, "get") && rem >= 2 {
            let _ = a.take(2);
        } else if (parse::eq(w, "set") || parse::eq(w, "incrby")) && rem >= 3 {
            readonly = false;
            break;
        } else if parse::eq(w, "overflow") && rem >= 1 {
            let _ = a.opt();
        } else {
            readonly = false;
            break;
        }
    }
    out.push(KeyRef {
        pos: 1,
        flags: if readonly {
            RO | ACCESS
        } else {
            RW | ACCESS | UPDATE
        },
    });
    true
}

// ---------------------------------------------------------------------------------------------------------
// Shared pieces

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";
const BITFIELD_TYPE_ERR: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// The smallest value CONFIG SET accepts for proto-max-bulk-len: offsets below it need no config read.
const MIN_PROTO_MAX_BULK_LEN: u64 = 1024 * 1024;

/// Redis's getBitOffsetFromArgument: a bit offset, `#n` meaning `n * bits` when `hash` (BITFIELD), at most
/// proto-max-bulk-len bytes in.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8], hash: bool, bits: u32) -> Result<u64, CmdError> {
    let use_hash = hash && bits > 0 && arg.len() > 1 && arg[0] == b'#';
    let digits = if use_hash { &arg[1..] } else { arg };
    let mut off = parse::int(digits).map_err(|_| CmdError::from(BIT_OFFSET_ERR))?;
    if use_hash {
        off = off.wrapping_mul(i64::from(bits));
    }
    if off < 0 {
        return Err(BIT_OFFSET_ERR.into());
    }
    let off = off as u64;
    if (off >> 3) >= MIN_PROTO_MAX_BULK_LEN
        && (off >> 3) >= ctx.srv.config.read().proto_max_bulk_len
    {
        return Err(BIT_OFFSET_ERR.into());
    }
    Ok(off)
}

/// A BITFIELD type: `i1`..`i64` or `u1`..`u63` (Redis reads the width up to a NUL byte).
fn bitfield_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(BITFIELD_TYPE_ERR.into()),
    };
    let rest = &arg[1..];
    let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
    match parse::int(rest) {
        Ok(b) if b >= 1 && b <= if signed { 64 } else { 63 } => Ok((signed, b as u32)),
        _ => Err(BITFIELD_TYPE_ERR.into()),
    }
}

/// Zero-extend `s` to `len` bytes. Capacity grows as Redis's sdsMakeRoomFor does (double below 1 MB, then
/// 1 MB more), so a bitmap grown bit by bit is not copied at every step; refused past the machine's memory.
fn grow_zero(s: &mut Vec<u8>, len: usize) -> CmdResult {
    if len <= s.len() {
        return Ok(());
    }
    if len > s.capacity() {
        let greedy = if len < 1024 * 1024 {
            len.saturating_mul(2)
        } else {
            len.saturating_add(1024 * 1024)
        };
        if crate::mem::try_reserve(s, greedy - s.len()).is_err() {
            grow_string(s, len as u64)?;
        }
    }
    s.resize(len, 0);
    Ok(())
}

/// Redis's lookupStringForBitCommand: the string at `key`, created or zero-extended so that bit `maxbit`
/// is inside it. `f` works on its bytes; returns (whether the key was created or grew, `f`'s result).
fn with_bit_string<R>(
    ctx: &Ctx<'_>,
    shard: &mut Shard,
    key: &[u8],
    maxbit: u64,
    f: impl FnOnce(&mut [u8], bool) -> R,
) -> Result<(bool, R), CmdError> {
    let len = (maxbit >> 3) + 1;
    match ctx.lookup_write(shard, key) {
        Some(e) => {
            let Some(cur) = e.as_str() else {
                return Err(err::WRONGTYPE.into());
            };
            let old = cur.len() as u64;
            if len > old && !crate::mem::can_hold(len) {
                return Err(string_oom(len));
            }
            super::strings::with_raw_bytes(e, |v| {
                grow_zero(v, len as usize)?;
                let grew = len > old;
                Ok((grew, f(v, grew)))
            })
        }
        None => {
            if !crate::mem::can_hold(len) {
                return Err(string_oom(len));
            }
            let mut v = Vec::new();
            grow_string(&mut v, len)?;
            v.resize(len as usize, 0);
            let r = f(&mut v, true);
            let mut e = Entry::new(key, Value::Str(v), ctx.lru_clock());
            e.mark_raw();
            shard.db_mut(ctx.db()).insert_new(e);
            Ok((true, r))
        }
    }
}

/// Set bits in 64-bit words, then in the bytes left.
fn popcount(s: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has the instruction (checked just above).
            return unsafe { popcount_hw(s) };
        }
    }
    popcount_words(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn popcount_hw(s: &[u8]) -> u64 {
    popcount_words(s)
}

#[inline(always)]
fn popcount_words(s: &[u8]) -> u64 {
    let mut blocks = s.chunks_exact(32);
    let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
    for blk in &mut blocks {
        let w = |i: usize| u64::from_ne_bytes(blk[i..i + 8].try_into().unwrap_or([0; 8]));
        a += u64::from(w(0).count_ones());
        b += u64::from(w(8).count_ones());
        c += u64::from(w(16).count_ones());
        d += u64::from(w(24).count_ones());
    }
    let mut n = a + b + c + d;
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        n += u64::from(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])).count_ones());
    }
    for &x in words.remainder() {
        n += u64::from(x.count_ones());
    }
    n
}

/// Redis's redisBitpos: the first bit equal to `bit` in `s`; not found: -1 for a set bit, the bit just
/// past the end for a clear one (the string reads as zero-padded on the right).
fn first_bit(s: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u8 } else { 0xff };
    let skip_word = if bit { 0u64 } else { u64::MAX };
    let mut i = 0;
    while i + 8 <= s.len() {
        let w = u64::from_be_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
        if w != skip_word {
            let x = if bit { w } else { !w };
            return (i as i64) * 8 + i64::from(x.leading_zeros());
        }
        i += 8;
    }
    while i < s.len() {
        if s[i] != skip {
            let x = if bit { s[i] } else { !s[i] };
            return (i as i64) * 8 + i64::from(x.leading_zeros());
        }
        i += 1;
    }
    if bit {
        -1
    } else {
        (s.len() as i64) * 8
    }
}

/// The optional BYTE|BIT unit of BITCOUNT/BITPOS.
fn parse_unit(w: &[u8]) -> Result<bool, CmdError> {
    if parse::eq(w, "bit") {
        Ok(true)
    } else if parse::eq(w, "byte") {
        Ok(false)
    } else {
        Err(err::SYNTAX.into())
    }
}

/// Negative indexes and clamping as Redis's BITCOUNT/BITPOS do: (start byte, end byte, first byte's
/// mask of bits outside the range, last byte's mask of bits outside the range).
fn clamp_range(len: i64, mut start: i64, mut end: i64, isbit: bool) -> (i64, i64, u8, u8) {
    let total = if isbit { len << 3 } else { len };
    if start < 0 {
        start = start.saturating_add(total);
    }
    if end < 0 {
        end = end.saturating_add(total);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    let (mut first, mut last) = (0u8, 0u8);
    if isbit && start <= end {
        first = (!((1u32 << (8 - (start & 7))) - 1) & 0xff) as u8;
        last = ((1u32 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    (start, end, first, last)
}

// ---------------------------------------------------------------------------------------------------------
// SETBIT / GETBIT

fn setbit(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let off = bit_offset(ctx, a.next()?, false, 0)?;
    let on = parse::int(a.next()?).map_err(|_| CmdError::from(BIT_VALUE_ERR))?;
    if on & !1 != 0 {
        return Err(BIT_VALUE_ERR.into());
    }
    let on = on == 1;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let byte = (off >> 3) as usize;
    let mask = 1u8 << (7 - (off & 7));
    let (grew, old) = with_bit_string(ctx, &mut shard, key, off, |s, _| {
        let old = s[byte] & mask != 0;
        if on {
            s[byte] |= mask;
        } else {
            s[byte] &= !mask;
        }
        old
    })?;
    if grew || old != on {
        ctx.modified(&mut shard, key, "setbit");
    }
    drop(shard);
    ctx.reply().int(i64::from(old));
    Ok(())
}

fn getbit(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let off = bit_offset(ctx, a.next()?, false, 0)?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let bit = match ctx.lookup(&mut shard, key) {
        None => false,
        Some(e) => {
            let s = e.as_str().ok_or(err::WRONGTYPE)?;
            let byte = off >> 3;
            byte < s.len() as u64 && s[byte as usize] & (1 << (7 - (off & 7))) != 0
        }
    };
    drop(shard);
    ctx.reply().int(i64::from(bit));
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// BITCOUNT / BITPOS

fn bitcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // Redis 7.2.4 looks the key up first: a missing key is 0 whatever the other arguments are.
    let mut a = Argv::new(args);
    let key = a.next()?;
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(0);
        return Ok(());
    };
    let s = e.as_str().ok_or(err::WRONGTYPE)?;
    let (start, end, first, last) = match a.remaining() {
        0 => (0, s.len() as i64 - 1, 0, 0),
        2 | 3 => {
            let start = a.int()?;
            let end = a.int()?;
            let isbit = match a.opt() {
                Some(w) => parse_unit(w)?,
                None => false,
            };
            if start < 0 && end < 0 && start > end {
                (1, 0, 0, 0)
            } else {
                clamp_range(s.len() as i64, start, end, isbit)
            }
        }
        _ => return Err(err::SYNTAX.into()),
    };
    let n = if start > end {
        0
    } else {
        let (st, en) = (start as usize, end as usize);
        let mut n = popcount(&s[st..=en]);
        n -= u64::from((s[st] & first).count_ones());
        n -= u64::from((s[en] & last).count_ones());
        n
    };
    drop(shard);
    ctx.reply().int(n as i64);
    Ok(())
}

fn bitpos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let bit = a.int()?;
    if bit != 0 && bit != 1 {
        return Err("ERR The bit argument must be 1 or 0.".into());
    }
    let bit = bit == 1;
    // Redis 7.2.4 looks the key up before it reads the range: a missing key is an infinite run of zeros.
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let Some(e) = ctx.lookup(&mut shard, key) else {
        drop(shard);
        ctx.reply().int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let s = e.as_str().ok_or(err::WRONGTYPE)?;
    let len = s.len() as i64;
    let mut end_given = false;
    let (start, end, first, last) = match a.remaining() {
        0 => (0, len - 1, 0, 0),
        1..=3 => {
            let start = a.int()?;
            let rest = a.rest();
            let isbit = match rest.try_get(1) {
                Some(unit) => parse_unit(unit)?,
                None => false,
            };
            let end = match rest.try_get(0) {
                Some(e) => {
                    end_given = true;
                    parse::int(e)?
                }
                None => len - 1,
            };
            clamp_range(len, start, end, isbit)
        }
        _ => return Err(err::SYNTAX.into()),
    };
    let pos = if start > end {
        -1
    } else {
        bitpos_in(s, start, end, first, last, bit, end_given)
    };
    drop(shard);
    ctx.reply().int(pos);
    Ok(())
}

/// The search part of Redis's bitposCommand, over bytes `start..=end` with the edge masks of a BIT range.
fn bitpos_in(
    s: &[u8],
    start: i64,
    end: i64,
    first: u8,
    last: u8,
    bit: bool,
    end_given: bool,
) -> i64 {
    let mut start = start as usize;
    let end = end as usize;
    let mut bytes = end - start + 1;
    let edge = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    let pos = 'found: {
        if first != 0 {
            let mut c = edge(s[start], first);
            if last != 0 && bytes == 1 {
                c = edge(c, last);
            }
            let pos = first_bit(&[c], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - usize::from(last != 0);
        if cur > 0 {
            let pos = first_bit(&s[start..start + cur], bit);
            if bytes == cur || (pos != -1 && pos != (cur as i64) << 3) {
                break 'found pos;
            }
            start += cur;
            bytes -= cur;
        }
        first_bit(&[edge(s[end], last)], bit)
    };
    if end_given && !bit && pos == (bytes as i64) << 3 {
        return -1;
    }
    if pos != -1 {
        pos + ((start as i64) << 3)
    } else {
        pos
    }
}

// ---------------------------------------------------------------------------------------------------------
// BITOP

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    And,
    Or,
    Xor,
    Not,
    Diff,
    Diff1,
    AndOr,
    One,
}

impl Op {
    fn parse(w: &[u8]) -> Option<Op> {
        const OPS: &[(&str, Op)] = &[
            ("and", Op::And),
            ("or", Op::Or),
            ("xor", Op::Xor),
            ("not", Op::Not),
            ("diff", Op::Diff),
            ("diff1", Op::Diff1),
            ("andor", Op::AndOr),
            ("one", Op::One),
        ];
        OPS.iter().find(|(n, _)| parse::eq(w, n)).map(|&(_, op)| op)
    }
}

/// Apply `f` word by word to `dst` and `src` (same length), then to the bytes left.
#[inline(always)]
fn combine(dst: &mut [u8], src: &[u8], f: impl Fn(u64, u64) -> u64) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (dw, sw) in (&mut d).zip(&mut s) {
        let x = u64::from_ne_bytes((&*dw).try_into().unwrap_or([0; 8]));
        let y = u64::from_ne_bytes(sw.try_into().unwrap_or([0; 8]));
        dw.copy_from_slice(&f(x, y).to_ne_bytes());
    }
    for (db, &sb) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *db = f(u64::from(*db), u64::from(sb)) as u8;
    }
}

/// Bytes of the result computed at a time: every source's slice of a block is folded into it while it is
/// in the L1 cache, so each source is read once and the result written once.
const BITOP_BLOCK: usize = 8192;

/// The result of BITOP `op` over `srcs` (each zero-padded to the longest), `maxlen` bytes long.
fn bitop_compute(op: Op, srcs: &[&[u8]], maxlen: usize) -> Result<Vec<u8>, CmdError> {
    let mut res: Vec<u8> = Vec::new();
    grow_string(&mut res, maxlen as u64)?;
    res.resize(maxlen, 0);
    let mut more = [0u8; BITOP_BLOCK];
    let mut parts: Vec<&[u8]> = Vec::with_capacity(srcs.len());
    for (b, out) in res.chunks_mut(BITOP_BLOCK).enumerate() {
        let lo = b * BITOP_BLOCK;
        let hi = lo + out.len();
        parts.clear();
        parts.extend(srcs.iter().map(|s| &s[lo.min(s.len())..hi.min(s.len())]));
        let n = out.len();
        bitop_block(op, &parts, out, &mut more[..n]);
    }
    Ok(res)
}

/// One block of BITOP: `res` (zeroed) gets `op` over `srcs`, each at most as long as `res` and zero-padded.
fn bitop_block(op: Op, srcs: &[&[u8]], res: &mut [u8], more: &mut [u8]) {
    let first = srcs.first().copied().unwrap_or_default();
    let others = srcs.get(1..).unwrap_or_default();
    // OR of every source but the first, for DIFF1 and ANDOR.
    let union_rest = |res: &mut [u8]| {
        for s in others {
            combine(res, s, |a, b| a | b);
        }
    };
    match op {
        Op::And => {
            res[..first.len()].copy_from_slice(first);
            for s in others {
                combine(res, s, |a, b| a & b);
                res[s.len()..].fill(0);
            }
        }
        Op::Or => {
            res[..first.len()].copy_from_slice(first);
            for s in others {
                combine(res, s, |a, b| a | b);
            }
        }
        Op::Xor => {
            res[..first.len()].copy_from_slice(first);
            for s in others {
                combine(res, s, |a, b| a ^ b);
            }
        }
        Op::Not => {
            res.fill(0xff);
            combine(res, first, |_, b| !b);
        }
        Op::Diff => {
            res[..first.len()].copy_from_slice(first);
            for s in others {
                combine(res, s, |a, b| a & !b);
            }
        }
        Op::Diff1 => {
            union_rest(res);
            combine(res, first, |a, b| a & !b);
        }
        Op::AndOr => {
            union_rest(res);
            combine(res, first, |a, b| a & b);
            res[first.len()..].fill(0);
        }
        Op::One => one_of(res, more, srcs),
    }
}

/// BITOP ONE: bits set in exactly one source (`more` collects the bits seen twice or more).
fn one_of(once: &mut [u8], more: &mut [u8], srcs: &[&[u8]]) {
    more.fill(0);
    once.fill(0);
    for s in srcs {
        let n = s.len();
        // more |= once & s
        let (o, m) = (&once[..n], &mut more[..n]);
        let mut mw = m.chunks_exact_mut(8);
        let mut ow = o.chunks_exact(8);
        let mut sw = s.chunks_exact(8);
        for ((mc, oc), sc) in (&mut mw).zip(&mut ow).zip(&mut sw) {
            let x = u64::from_ne_bytes((&*mc).try_into().unwrap_or([0; 8]));
            let y = u64::from_ne_bytes(oc.try_into().unwrap_or([0; 8]));
            let z = u64::from_ne_bytes(sc.try_into().unwrap_or([0; 8]));
            mc.copy_from_slice(&(x | (y & z)).to_ne_bytes());
        }
        for ((mb, &ob), &sb) in mw
            .into_remainder()
            .iter_mut()
            .zip(ow.remainder())
            .zip(sw.remainder())
        {
            *mb |= ob & sb;
        }
        combine(once, s, |a, b| a | b);
    }
    combine(once, more, |a, b| a & !b);
}

fn bitop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let opname = a.next()?;
    let op = Op::parse(opname).ok_or(err::SYNTAX)?;
    let dst = a.next()?;
    let keys = a.rest();
    if op == Op::Not && keys.len() != 1 {
        return Err("ERR BITOP NOT must be called with a single source key.".into());
    }
    if matches!(op, Op::Diff | Op::Diff1 | Op::AndOr) && keys.len() < 2 {
        return Err(format!(
            "ERR BITOP {} must be called with at least two source keys.",
            String::from_utf8_lossy(opname).to_ascii_uppercase()
        )
        .into());
    }
    let keys: Vec<&[u8]> = keys.iter().collect();
    let (srv, db, lru) = (ctx.srv, ctx.db(), ctx.lru_clock());
    let mut g = srv
        .keyspace
        .lock_many(std::iter::once(dst).chain(keys.iter().copied()));
    // Lookups in order (lazy expiry, statistics), the first source that is not a string fails.
    for k in &keys {
        if let Some(e) = ctx.lookup(g.shard(k), k) {
            if !e.is_str() {
                return Err(err::WRONGTYPE.into());
            }
        }
    }
    let res = {
        let mut idx: Vec<usize> = std::iter::once(dst)
            .chain(keys.iter().copied())
            .map(shard_of)
            .collect();
        idx.sort_unstable();
        idx.dedup();
        let shards: Vec<&Shard> = g.shards().map(|s| &*s).collect();
        let now = ctx.now_ms;
        let srcs: Vec<&[u8]> = keys
            .iter()
            .map(|k| {
                let i = idx.binary_search(&shard_of(k)).unwrap_or(0);
                shards[i]
                    .get(db, k, now)
                    .and_then(Entry::as_str)
                    .unwrap_or_default()
            })
            .collect();
        let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
        if maxlen == 0 {
            None
        } else {
            Some(bitop_compute(op, &srcs, maxlen)?)
        }
    };
    let shard = g.shard(dst);
    let existed = ctx.lookup_write(shard, dst).is_some();
    let n = res.as_ref().map_or(0, Vec::len);
    match res {
        Some(v) => {
            let mut e = Entry::new(dst, Value::Str(v), lru);
            e.mark_raw();
            shard.db_mut(db).upsert(e);
            ctx.modified(shard, dst, "set");
        }
        None if existed => {
            shard.db_mut(db).remove(dst);
            ctx.modified(shard, dst, "del");
        }
        None => {}
    }
    drop(g);
    ctx.reply().int(n as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// BITFIELD / BITFIELD_RO

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldOp {
    Get,
    Set,
    Incrby,
}

#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    offset: u64,
    value: i64,
    signed: bool,
    bits: u32,
    overflow: Overflow,
}

/// The unsigned `bits`-wide field at bit `offset` of `s` (zero past its end).
fn get_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    let byte = (offset >> 3) as usize;
    let mut w = [0u8; 16];
    let end = s.len().min(byte.saturating_add(9));
    if byte < end {
        w[..end - byte].copy_from_slice(&s[byte..end]);
    }
    // The 9 bytes as the top of a big-endian u128: the field starts `offset & 7` bits below its top.
    let x = u128::from_be_bytes(w);
    let shift = 128 - (offset & 7) as u32 - bits;
    ((x >> shift) as u64) & mask_of(bits)
}

fn mask_of(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Write the `bits`-wide field at bit `offset` of `s` (which holds it entirely).
fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    let byte = (offset >> 3) as usize;
    let lead = (offset & 7) as u32;
    let nbytes = (lead + bits).div_ceil(8) as usize;
    let mut w = [0u8; 16];
    w[..nbytes].copy_from_slice(&s[byte..byte + nbytes]);
    let shift = 128 - lead - bits;
    let mask = u128::from(mask_of(bits)) << shift;
    let x = (u128::from_be_bytes(w) & !mask) | ((u128::from(value) << shift) & mask);
    s[byte..byte + nbytes].copy_from_slice(&x.to_be_bytes()[..nbytes]);
}

fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_field(s, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Redis's checkSignedBitfieldOverflow: 0, or ±1 with the value to store for WRAP/SAT.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, i64) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (
            1,
            match ow {
                Overflow::Wrap => wrap(),
                _ => max,
            },
        )
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        (
            -1,
            match ow {
                Overflow::Wrap => wrap(),
                _ => min,
            },
        )
    } else {
        (0, 0)
    }
}

/// Redis's checkUnsignedBitfieldOverflow (`bits` ≤ 63).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, u64) {
    let max = mask_of(bits);
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & max;
    if value > max || (incr > 0 && incr > maxincr) {
        (
            1,
            match ow {
                Overflow::Wrap => wrap(),
                _ => max,
            },
        )
    } else if incr < 0 && incr < minincr {
        (
            -1,
            match ow {
                Overflow::Wrap => wrap(),
                _ => 0,
            },
        )
    } else {
        (0, 0)
    }
}

fn bitfield(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

/// What one BITFIELD subcommand replies.
enum Out {
    Int(i64),
    Null,
}

/// Run the write subcommands (and the GETs between them) on `s`; returns the replies and how many writes
/// changed something.
fn run_fields(s: &mut [u8], ops: &[Field], grew: bool) -> (Vec<Out>, u64) {
    let mut out = Vec::with_capacity(ops.len());
    let mut changes = 0;
    for f in ops {
        match f.op {
            FieldOp::Get => out.push(Out::Int(if f.signed {
                get_signed(s, f.offset, f.bits)
            } else {
                get_field(s, f.offset, f.bits) as i64
            })),
            FieldOp::Set | FieldOp::Incrby => {
                let (ovf, old, new, ret) = if f.signed {
                    let old = get_signed(s, f.offset, f.bits);
                    let (ovf, new, ret) = if f.op == FieldOp::Incrby {
                        let (o, lim) = signed_overflow(old, f.value, f.bits, f.overflow);
                        let new = if o != 0 {
                            lim
                        } else {
                            old.wrapping_add(f.value)
                        };
                        (o, new, new)
                    } else {
                        let (o, lim) = signed_overflow(f.value, 0, f.bits, f.overflow);
                        (o, if o != 0 { lim } else { f.value }, old)
                    };
                    (ovf, old as u64, new as u64, ret)
                } else {
                    let old = get_field(s, f.offset, f.bits);
                    let (ovf, new, ret) = if f.op == FieldOp::Incrby {
                        let (o, lim) = unsigned_overflow(old, f.value, f.bits, f.overflow);
                        let new = if o != 0 {
                            lim
                        } else {
                            old.wrapping_add(f.value as u64)
                        };
                        (o, new, new as i64)
                    } else {
                        let v = f.value as u64;
                        let (o, lim) = unsigned_overflow(v, 0, f.bits, f.overflow);
                        (o, if o != 0 { lim } else { v }, old as i64)
                    };
                    (ovf, old, new, ret)
                };
                if ovf != 0 && f.overflow == Overflow::Fail {
                    out.push(Out::Null);
                } else {
                    out.push(Out::Int(ret));
                    set_field(s, f.offset, f.bits, new);
                    if grew || old != new {
                        changes += 1;
                    }
                }
            }
        }
    }
    (out, changes)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: Args<'_>, ro_cmd: bool) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let mut ops: Vec<Field> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest: u64 = 0;
    while let Some(w) = a.opt() {
        let rem = a.remaining();
        let op = if parse::eq(w, "get") && rem >= 2 {
            FieldOp::Get
        } else if parse::eq(w, "set") && rem >= 3 {
            FieldOp::Set
        } else if parse::eq(w, "incrby") && rem >= 3 {
            FieldOp::Incrby
        } else if parse::eq(w, "overflow") && rem >= 1 {
            let t = a.next()?;
            overflow = if parse::eq(t, "wrap") {
                Overflow::Wrap
            } else if parse::eq(t, "sat") {
                Overflow::Sat
            } else if parse::eq(t, "fail") {
                Overflow::Fail
            } else {
                return Err("ERR Invalid OVERFLOW type specified".into());
            };
            continue;
        } else {
            return Err(err::SYNTAX.into());
        };
        let (signed, bits) = bitfield_type(a.next()?)?;
        let offset = bit_offset(ctx, a.next()?, true, bits)?;
        let mut value = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + u64::from(bits) - 1);
            value = a.int()?;
        }
        ops.push(Field {
            op,
            offset,
            value,
            signed,
            bits,
            overflow,
        });
    }
    let srv = ctx.srv;
    if readonly {
        let mut shard = srv.keyspace.lock_key(key);
        let s: &[u8] = match ctx.lookup(&mut shard, key) {
            None => &[],
            Some(e) => e.as_str().ok_or(err::WRONGTYPE)?,
        };
        let vals: Vec<i64> = ops
            .iter()
            .map(|f| {
                if f.signed {
                    get_signed(s, f.offset, f.bits)
                } else {
                    get_field(s, f.offset, f.bits) as i64
                }
            })
            .collect();
        drop(shard);
        let mut r = ctx.reply();
        r.array(vals.len());
        for v in vals {
            r.int(v);
        }
        return Ok(());
    }
    if ro_cmd {
        return Err("ERR BITFIELD_RO only supports the GET subcommand".into());
    }
    let mut shard = srv.keyspace.lock_key(key);
    let (_, (out, changes)) = with_bit_string(ctx, &mut shard, key, highest, |s, grew| {
        run_fields(s, &ops, grew)
    })?;
    if changes > 0 {
        ctx.modified(&mut shard, key, "setbit");
        // Redis counts every write that changed something in `dirty`.
        ctx.srv.workers[ctx.client.worker].dirty.add(changes - 1);
    }
    drop(shard);
    let mut r = ctx.reply();
    r.array(out.len());
    for o in out {
        match o {
            Out::Int(v) => r.int(v),
            Out::Null => r.null(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut s = vec![0u8; 20];
        for bits in 1..=64u32 {
            for off in [0u64, 1, 5, 7, 8, 13, 63, 64, 71] {
                s.fill(0xa5);
                let v = 0x0123_4567_89ab_cdefu64 & mask_of(bits);
                set_field(&mut s, off, bits, v);
                assert_eq!(get_field(&s, off, bits), v, "bits {bits} off {off}");
                // Bits outside the field are untouched.
                for b in 0..s.len() as u64 * 8 {
                    if b < off || b >= off + u64::from(bits) {
                        let byte = s[(b >> 3) as usize];
                        let bit = byte >> (7 - (b & 7)) & 1;
                        assert_eq!(bit, 0xa5u8 >> (7 - (b & 7)) & 1);
                    }
                }
            }
        }
        assert_eq!(get_field(&[0xff], 4, 8), 0xf0);
        assert_eq!(get_signed(&[0xff], 0, 8), -1);
        assert_eq!(get_field(&[], 1000, 64), 0);
    }

    #[test]
    fn positions_and_counts() {
        assert_eq!(first_bit(&[0, 0, 0, 0, 0, 0, 0, 0, 1], true), 71);
        assert_eq!(first_bit(&[0xff; 9], false), 72);
        assert_eq!(first_bit(&[0; 3], true), -1);
        assert_eq!(first_bit(&[0xff, 0xfe], false), 15);
        let s: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let naive: u64 = s.iter().map(|b| u64::from(b.count_ones())).sum();
        assert_eq!(popcount(&s), naive);
        assert_eq!(
            popcount(&s[3..37]),
            s[3..37].iter().map(|b| u64::from(b.count_ones())).sum()
        );
    }

    #[test]
    fn bitop_ops() {
        // Across several blocks, with sources ending inside a block and inside a word.
        let a: Vec<u8> = (0..20_011u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let b: Vec<u8> = (0..9_003u32)
            .map(|i| (i.wrapping_mul(40_503) >> 5) as u8)
            .collect();
        let c: Vec<u8> = vec![0b0000_1111, 0xf0, 0x3c];
        let (a, b, c) = (&a[..], &b[..], &c[..]);
        let srcs = [a, b, c];
        let n = a.len();
        let pad = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
        for op in [
            Op::And,
            Op::Or,
            Op::Xor,
            Op::Diff,
            Op::Diff1,
            Op::AndOr,
            Op::One,
        ] {
            let r = bitop_compute(op, &srcs, n).unwrap();
            for (i, &got) in r.iter().enumerate().take(n) {
                let (x, y, z) = (pad(a, i), pad(b, i), pad(c, i));
                let want = match op {
                    Op::And => x & y & z,
                    Op::Or => x | y | z,
                    Op::Xor => x ^ y ^ z,
                    Op::Diff => x & !(y | z),
                    Op::Diff1 => !x & (y | z),
                    Op::AndOr => x & (y | z),
                    Op::One => (x ^ y ^ z) & !(x & y & z),
                    Op::Not => unreachable!(),
                };
                assert_eq!(got, want, "{op:?} byte {i}");
            }
        }
        let not = bitop_compute(Op::Not, &[b], b.len()).unwrap();
        assert!(not.iter().zip(b).all(|(x, y)| *x == !*y));
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), (1, -128));
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Sat), (1, 127));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), (-1, -128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (1, i64::MIN)
        );
        assert_eq!(signed_overflow(5, 10, 8, Overflow::Wrap), (0, 0));
        assert_eq!(unsigned_overflow(255, 1, 8, Overflow::Wrap), (1, 0));
        assert_eq!(unsigned_overflow(0, -1, 8, Overflow::Sat), (-1, 0));
        assert_eq!(unsigned_overflow(0, -1, 8, Overflow::Wrap), (-1, 255));
        assert!(bitfield_type(b"u64").is_err());
        assert_eq!(bitfield_type(b"i64").unwrap(), (true, 64));
        assert_eq!(bitfield_type(b"u63").unwrap(), (false, 63));
        assert!(bitfield_type(b"I8").is_err());
        assert!(bitfield_type(b"i0").is_err());
        assert!(bitfield_type(b"").is_err());
    }
}
