//! Pushes, deploys, builds and certificate orders: counts by result and
//! durations. These are rare events; atomics keep them out of any lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::histogram::Histogram;

/// How a push, build or order ended: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Ok,
    /// Refused for a reason the pusher can fix (a hook, a stale ref, a
    /// broken site config, a failed build).
    Refused,
    /// The node failed.
    Failed,
}

/// The `result` labels, in `Outcome` order.
pub const OUTCOMES: [&str; 3] = ["ok", "refused", "failed"];

/// Counts by outcome and a duration histogram.
#[derive(Default)]
pub struct Events {
    counts: [AtomicU64; OUTCOMES.len()],
    pub duration: Histogram,
}

impl Events {
    /// Counts one event that took `took`.
    pub fn record(&self, outcome: Outcome, took: Duration) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.duration.record(took);
    }

    /// Counts by outcome, in `OUTCOMES` order.
    pub fn counts(&self) -> [u64; OUTCOMES.len()] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }
}

/// The node's deploy-side counters.
#[derive(Default)]
pub struct DeployMetrics {
    /// Pushes received over SSH.
    pub pushes: Events,
    /// Site builds run for pushes.
    pub builds: Events,
    /// Certificate orders run by this node.
    pub orders: Events,
    /// Revisions activated by pushes.
    deploys: AtomicU64,
}

impl DeployMetrics {
    /// Counts `n` activated revisions.
    pub fn deployed(&self, n: usize) {
        self.deploys.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Revisions activated by pushes since start.
    pub fn deploys(&self) -> u64 {
        self.deploys.load(Ordering::Relaxed)
    }
}
