//! Hybrid logical clocks: timestamps that order replicated writes across
//! nodes even when wall clocks disagree a little.
//!
//! A stamp is wall-clock milliseconds in the high 48 bits and a counter in
//! the low 16, so it fits one SQLite INTEGER and compares as a number.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One HLC stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc(pub u64);

impl Hlc {
    /// Milliseconds since the Unix epoch this stamp was taken at (approximately).
    pub fn millis(self) -> u64 {
        self.0 >> 16
    }
}

/// The node's clock: never goes backwards, and moves past any stamp it has
/// seen from another node.
#[derive(Debug, Default)]
pub struct Clock {
    last: Mutex<u64>,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// A stamp later than every stamp this clock produced or observed.
    pub fn now(&self) -> Hlc {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            << 16;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = if wall > *last { wall } else { *last + 1 };
        Hlc(*last)
    }

    /// Records a stamp seen from another node so later local stamps sort after it.
    pub fn observe(&self, seen: Hlc) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last).max(seen.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase() {
        let clock = Clock::new();
        let mut prev = clock.now();
        for _ in 0..10_000 {
            let next = clock.now();
            assert!(next > prev);
            prev = next;
        }
    }

    #[test]
    fn observing_a_future_stamp_moves_the_clock_past_it() {
        let clock = Clock::new();
        let future = Hlc(clock.now().0 + (60_000 << 16));
        clock.observe(future);
        assert!(clock.now() > future);
    }
}
