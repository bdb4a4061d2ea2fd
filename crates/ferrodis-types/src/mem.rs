//! Guards for allocations sized by a client or a file. Linux overcommits (and jemalloc maps with
//! `MAP_NORESERVE`), so a fallible reservation alone rarely fails: a huge buffer is granted, then killed by
//! the OOM killer when it is filled. A single buffer larger than the machine's memory can never be
//! filled, so it is refused up front; the reservation itself is fallible too.

use std::sync::OnceLock;

/// The machine's physical memory in bytes (`MemTotal`), 0 when unknown.
pub fn total_system_memory() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
        .unwrap_or(0)
}

/// The largest single buffer worth trying: the machine's memory (read once), or no limit if unknown.
fn ceiling() -> u64 {
    static CEILING: OnceLock<u64> = OnceLock::new();
    *CEILING.get_or_init(|| match total_system_memory() {
        0 => u64::MAX,
        n => n,
    })
}

/// Whether a buffer of `bytes` bytes could possibly be held in memory.
pub fn can_hold(bytes: u64) -> bool {
    bytes <= ceiling()
}

/// A buffer that could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// Grow `v` by `additional` elements' worth of capacity, or fail (nothing changed) when that is more than
/// the machine could hold or the allocator refuses.
pub fn try_reserve<T>(v: &mut Vec<T>, additional: usize) -> Result<(), OutOfMemory> {
    let bytes = v
        .len()
        .checked_add(additional)
        .and_then(|n| n.checked_mul(std::mem::size_of::<T>().max(1)))
        .ok_or(OutOfMemory)?;
    if !can_hold(bytes as u64) {
        return Err(OutOfMemory);
    }
    v.try_reserve_exact(additional).map_err(|_| OutOfMemory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_more_than_the_machine() {
        let mut v: Vec<u8> = Vec::new();
        assert!(try_reserve(&mut v, usize::MAX).is_err());
        assert!(try_reserve(&mut v, 1 << 62).is_err());
        let mut w: Vec<u64> = vec![1];
        assert!(try_reserve(&mut w, usize::MAX / 4).is_err());
        assert_eq!(w, vec![1]);
        assert!(try_reserve(&mut v, 4096).is_ok());
        assert!(v.capacity() >= 4096);
        assert!(!can_hold(u64::MAX));
        assert!(can_hold(0));
    }
}
