//! A latency histogram of fixed buckets, one atomic per bucket, so
//! recording a duration takes no lock and allocates nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus `le`); the last,
/// `+Inf`, is implicit.
pub const BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counts of durations at or below each bound, their sum and count.
#[derive(Default)]
pub struct Histogram {
    /// Non-cumulative: `buckets[i]` counts durations in `(BOUNDS[i-1], BOUNDS[i]]`;
    /// the last counts those over every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

/// A copy of a histogram, cumulative as the exposition wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramView {
    /// `(le, cumulative count)`, `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    pub sum_secs: f64,
    pub count: u64,
}

impl Histogram {
    /// Records one duration.
    pub fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let index = BOUNDS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The histogram now.
    pub fn view(&self) -> HistogramView {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(BOUNDS.len() + 1);
        for (i, cell) in self.buckets.iter().enumerate() {
            running += cell.load(Ordering::Relaxed);
            buckets.push((BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), running));
        }
        HistogramView {
            // `+Inf`'s cumulative count is the count, by construction.
            count: running,
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_at_the_count() {
        let h = Histogram::default();
        h.record(Duration::from_micros(300));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(9));
        let v = h.view();
        assert_eq!(v.buckets[0], (0.0005, 1));
        assert_eq!(v.buckets[3], (0.005, 2));
        assert_eq!(v.buckets[11], (5.0, 2));
        assert_eq!(v.buckets[12].1, 3);
        assert!(v.buckets[12].0.is_infinite());
        assert_eq!(v.count, 3);
        assert!((v.sum_secs - 9.0033).abs() < 1e-9);
    }
}
