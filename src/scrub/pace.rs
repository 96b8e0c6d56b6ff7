//! Keeping a scrub gentle: its reads go at the idle I/O priority (the
//! kernel serves them only when nothing else waits for the disk) and
//! within a byte rate, so a scrub never competes with visitors.

use std::time::{Duration, Instant};

/// Holds reads to `rate` bytes per second on average.
pub struct Pacer {
    rate: u64,
    started: Instant,
    read: u64,
}

impl Pacer {
    /// A pacer for `rate` bytes per second (at least 1).
    pub fn new(rate: u64) -> Pacer {
        Pacer {
            rate: rate.max(1),
            started: Instant::now(),
            read: 0,
        }
    }

    /// Counts `n` bytes just read, sleeping while reads are ahead of the
    /// rate.
    pub fn pace(&mut self, n: usize) {
        self.read += n as u64;
        let ahead = self.ahead(self.started.elapsed());
        if !ahead.is_zero() {
            std::thread::sleep(ahead);
        }
    }

    /// How far reads are ahead of the rate `elapsed` after the start.
    fn ahead(&self, elapsed: Duration) -> Duration {
        Duration::from_secs_f64(self.read as f64 / self.rate as f64).saturating_sub(elapsed)
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.read
    }
}

/// Puts the calling thread's I/O in the idle class (`ioprio_set`), so the
/// disk serves it only when no one else is waiting. Best effort: a kernel
/// or scheduler without I/O classes leaves the rate alone to keep it gentle.
pub fn idle_io_priority() {
    /// `IOPRIO_WHO_PROCESS`: with 0, the calling thread.
    const WHO_PROCESS: libc::c_int = 1;
    /// `IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT`.
    const CLASS_IDLE: libc::c_int = 3 << 13;
    // SAFETY: ioprio_set takes three integers and touches no memory of
    // ours; its only effect is on this thread's I/O scheduling.
    let result = unsafe { libc::syscall(libc::SYS_ioprio_set, WHO_PROCESS, 0, CLASS_IDLE) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the scrub's I/O priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ahead_of_the_rate_wait_for_it() {
        let mut pacer = Pacer::new(1_000_000);
        pacer.read = 100_000;
        // 100 kB at 1 MB/s take a tenth of a second.
        assert_eq!(
            pacer.ahead(Duration::from_millis(40)),
            Duration::from_millis(60)
        );
        assert_eq!(pacer.ahead(Duration::from_millis(150)), Duration::ZERO);
    }
}
