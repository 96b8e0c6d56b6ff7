//! Token buckets per client prefix, in a fixed-size table (as Knot's RRL
//! keeps them): memory stays bounded however many clients there are, and
//! clients whose keys hash to one slot share its bucket. The hash is keyed
//! per process, so a client cannot choose a victim's slot.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Instant;

/// Slots in a table: 16384 buckets of 32 bytes, half a megabyte.
const SLOTS: usize = 1 << 14;

/// What taking a token from a client's bucket gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Under the rate: serve the client.
    Granted,
    /// Over the rate; `nth` counts the refusals since the bucket was last
    /// granted (1 for the first), so a caller can act on every Nth one.
    Refused { nth: u32 },
}

/// One bucket: tokens left and when they were last topped up.
#[derive(Clone, Copy)]
struct Slot {
    tokens: f64,
    /// `None` until the first take: a new bucket starts full.
    last: Option<Instant>,
    refused: u32,
}

/// A table of token buckets refilled at `rate` tokens a second up to
/// `burst`.
pub struct Buckets {
    rate: f64,
    burst: f64,
    slots: Box<[Mutex<Slot>]>,
    hasher: RandomState,
}

impl Buckets {
    /// Buckets granting `rate` a second on average and `burst` at once
    /// (at least one).
    pub fn new(rate: u32, burst: u32) -> Buckets {
        Buckets::with_rate(f64::from(rate), burst)
    }

    /// Buckets refilled at `rate` tokens a second, which may be a fraction.
    pub fn with_rate(rate: f64, burst: u32) -> Buckets {
        let slot = Slot {
            tokens: 0.0,
            last: None,
            refused: 0,
        };
        Buckets {
            rate,
            burst: f64::from(burst.max(1)),
            slots: (0..SLOTS).map(|_| Mutex::new(slot)).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Takes one token from `key`'s bucket at `now`.
    pub fn take(&self, key: u128, now: Instant) -> Taken {
        let mut slot = self.refilled(key, now);
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            slot.refused = 0;
            Taken::Granted
        } else {
            slot.refused = slot.refused.saturating_add(1);
            Taken::Refused { nth: slot.refused }
        }
    }

    /// Whether `key`'s bucket holds a token at `now`, taking none.
    pub fn has_token(&self, key: u128, now: Instant) -> bool {
        self.refilled(key, now).tokens >= 1.0
    }

    /// `key`'s slot, locked, topped up to `now`.
    fn refilled(&self, key: u128, now: Instant) -> std::sync::MutexGuard<'_, Slot> {
        let index = (self.hasher.hash_one(key) as usize) % self.slots.len();
        // A poisoned slot only means a panic elsewhere mid-update; its
        // numbers are still usable.
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.tokens = match slot.last {
            None => self.burst,
            Some(last) => {
                let elapsed = now.saturating_duration_since(last).as_secs_f64();
                (slot.tokens + elapsed * self.rate).min(self.burst)
            }
        };
        slot.last = Some(now);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_granted_then_refused_then_refilled_at_the_rate() {
        let buckets = Buckets::new(10, 5);
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(buckets.take(1, start), Taken::Granted);
        }
        assert_eq!(buckets.take(1, start), Taken::Refused { nth: 1 });
        assert_eq!(buckets.take(1, start), Taken::Refused { nth: 2 });
        // A tenth of a second at 10 a second is one token.
        let later = start + Duration::from_millis(100);
        assert_eq!(buckets.take(1, later), Taken::Granted);
        assert_eq!(buckets.take(1, later), Taken::Refused { nth: 1 });
    }

    #[test]
    fn clients_have_their_own_buckets() {
        let buckets = Buckets::new(1, 1);
        let now = Instant::now();
        assert_eq!(buckets.take(1, now), Taken::Granted);
        assert!(matches!(buckets.take(1, now), Taken::Refused { .. }));
        // Another key almost always lands in another slot; try a few so a
        // shared slot cannot fail the test.
        let granted = (2..10).filter(|k| buckets.take(*k, now) == Taken::Granted);
        assert!(granted.count() >= 6);
    }

    #[test]
    fn a_rate_of_zero_grants_only_the_burst() {
        let buckets = Buckets::new(0, 2);
        let now = Instant::now();
        assert_eq!(buckets.take(7, now), Taken::Granted);
        assert_eq!(buckets.take(7, now), Taken::Granted);
        let later = now + Duration::from_secs(3600);
        assert!(matches!(buckets.take(7, later), Taken::Refused { .. }));
    }
}
