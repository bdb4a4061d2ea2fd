//! The clocks, in the units the server keeps times in. Both are read with one `clock_gettime` and no
//! 128-bit arithmetic: they run once per command.

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Wall-clock unix time in milliseconds.
pub fn unix_ms() -> u64 {
    read(libc::CLOCK_REALTIME) / 1_000_000
}

/// Wall-clock unix time in microseconds.
pub fn unix_us() -> u64 {
    read(libc::CLOCK_REALTIME) / 1_000
}

/// Monotonic time in nanoseconds (the clock `std::time::Instant` reads), as a plain number: a duration
/// is one subtraction.
pub fn mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_agree_with_std() {
        let std_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(unix_ms().abs_diff(std_ms) < 1000);
        assert!(unix_us() / 1000 >= std_ms.saturating_sub(1000));
        let a = mono_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(mono_ns() - a >= 2_000_000);
    }
}
