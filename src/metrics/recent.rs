//! Per-minute totals of the last minutes (requests, bytes, server errors)
//! in a small ring of atomics, so `maki stats` can show recent traffic
//! without a time-series store. A slot is claimed by the first record of
//! its minute; a record racing that claim may land in the old minute, an
//! error of one request at a minute's edge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Minutes kept, the current one included.
pub const MINUTES: usize = 16;

#[derive(Default)]
struct Slot {
    /// The Unix minute the counts belong to.
    minute: AtomicU64,
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// The ring of one domain.
#[derive(Default)]
pub struct Recent {
    slots: [Slot; MINUTES],
}

/// The totals of one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Minute {
    /// Unix time of the minute's start, in minutes.
    pub minute: u64,
    pub requests: u64,
    pub bytes: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
}

/// The current Unix minute.
pub fn now_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

impl Recent {
    /// Counts one request now.
    pub fn record(&self, bytes: u64, error: bool) {
        self.record_at(now_minute(), bytes, error);
    }

    fn record_at(&self, minute: u64, bytes: u64, error: bool) {
        let slot = &self.slots[(minute % MINUTES as u64) as usize];
        let held = slot.minute.load(Ordering::Acquire);
        if held != minute
            && slot
                .minute
                .compare_exchange(held, minute, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.requests.store(0, Ordering::Relaxed);
            slot.bytes.store(0, Ordering::Relaxed);
            slot.errors.store(0, Ordering::Relaxed);
        }
        slot.requests.fetch_add(1, Ordering::Relaxed);
        slot.bytes.fetch_add(bytes, Ordering::Relaxed);
        if error {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The totals of the `minutes` minutes up to and including `now`,
    /// oldest first; minutes without requests are zero.
    pub fn last(&self, now: u64, minutes: usize) -> Vec<Minute> {
        let minutes = minutes.clamp(1, MINUTES);
        (0..minutes as u64)
            .rev()
            .filter_map(|back| now.checked_sub(back))
            .map(|minute| {
                let slot = &self.slots[(minute % MINUTES as u64) as usize];
                if slot.minute.load(Ordering::Acquire) != minute {
                    return Minute {
                        minute,
                        ..Minute::default()
                    };
                }
                Minute {
                    minute,
                    requests: slot.requests.load(Ordering::Relaxed),
                    bytes: slot.bytes.load(Ordering::Relaxed),
                    errors: slot.errors.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_kept_apart_and_old_ones_are_reused() {
        let r = Recent::default();
        r.record_at(1000, 10, false);
        r.record_at(1000, 5, true);
        r.record_at(1002, 7, false);
        let last = r.last(1002, 3);
        assert_eq!(
            last[0],
            Minute {
                minute: 1000,
                requests: 2,
                bytes: 15,
                errors: 1
            }
        );
        assert_eq!(last[1].requests, 0);
        assert_eq!(last[2].bytes, 7);
        // 1016 reuses 1000's slot, starting from zero.
        r.record_at(1016, 1, false);
        assert_eq!(r.last(1016, 1)[0].requests, 1);
        assert_eq!(r.last(1016, MINUTES)[0].minute, 1001);
    }
}
