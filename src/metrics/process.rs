//! What the process uses, read from `/proc/self` at scrape time.

/// Resident set size in bytes, if `/proc` says.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Open file descriptors, if `/proc` says.
pub fn open_files() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_has_memory_and_files() {
        assert!(super::resident_bytes().is_some_and(|b| b > 0));
        assert!(super::open_files().is_some_and(|n| n >= 3));
    }
}
