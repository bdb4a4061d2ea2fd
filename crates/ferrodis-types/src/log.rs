//! Redis-style log lines: "pid:M 26 Nov 2026 04:38:40.123 * message", to stdout or `logfile`.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

static LEVEL: AtomicU8 = AtomicU8::new(2);
static FILE: OnceLock<Option<parking_lot::Mutex<std::fs::File>>> = OnceLock::new();

pub fn init(level: &str, logfile: &str) -> std::io::Result<()> {
    set_level(level);
    let file = if logfile.is_empty() {
        None
    } else {
        Some(parking_lot::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logfile)?,
        ))
    };
    let _ = FILE.set(file);
    Ok(())
}

pub fn set_level(level: &str) {
    let l = match level {
        "debug" => 0,
        "verbose" => 1,
        "notice" => 2,
        "warning" => 3,
        _ => 4,
    };
    LEVEL.store(l, Relaxed);
}

fn emit(level: u8, msg: &str) {
    if level < LEVEL.load(Relaxed) {
        return;
    }
    let mark = ['.', '-', '*', '#'][level.min(3) as usize];
    let line = format!(
        "{}:M {} {} {}\n",
        std::process::id(),
        timestamp(),
        mark,
        msg
    );
    match FILE.get().and_then(|f| f.as_ref()) {
        Some(f) => {
            let _ = f.lock().write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

pub fn debug(msg: &str) {
    emit(0, msg)
}
pub fn verbose(msg: &str) {
    emit(1, msg)
}
pub fn notice(msg: &str) {
    emit(2, msg)
}
pub fn warning(msg: &str) {
    emit(3, msg)
}

/// "26 Nov 2026 04:38:40.123" in UTC.
fn timestamp() -> String {
    let ms = crate::clock::unix_ms();
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let t = secs % 86400;
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        d,
        MON[(m - 1) as usize],
        y,
        t / 3600,
        t / 60 % 60,
        t % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_418), (2025, 11, 26));
    }
}
