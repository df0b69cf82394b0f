//! Memory estimates before allocation: a run computes the bytes its sizes imply and asks
//! [`check`] before allocating, so that an impossible size is a clear error (exit 2) instead of an
//! allocation abort.

use crate::error::{Error, Result};

/// Bytes this process may allocate: the `--max-memory` override if given, else the machine's
/// available memory (`MemAvailable` of /proc/meminfo, capped by the address-space limit when one
/// is set), else 8 GiB where neither can be read.
pub fn available(max_memory: Option<u64>) -> u64 {
    if let Some(m) = max_memory {
        return m;
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let rlimit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max address space"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
        });
    match (meminfo, rlimit) {
        (Some(m), Some(r)) => m.min(r),
        (Some(m), None) => m,
        (None, Some(r)) => r,
        (None, None) => 8 << 30,
    }
}

/// Refuses a run whose estimate `bytes` exceeds what is available, naming `field` (the size that
/// drives it) and both numbers.
pub fn check(field: &str, bytes: u128, max_memory: Option<u64>) -> Result<()> {
    let avail = available(max_memory);
    if bytes > avail as u128 {
        return Err(Error::invalid(
            field,
            format!(
                "needs about {} of memory, more than the {} available{}",
                human(bytes),
                human(avail as u128),
                if max_memory.is_some() {
                    " (--max-memory)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

/// "1.5 GiB"-style sizes.
pub fn human(bytes: u128) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
