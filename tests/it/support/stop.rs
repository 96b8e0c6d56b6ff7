//! The stop signal for threads that loop while a test changes a node
//! (readers polling it through deploys, rollbacks, restarts). Its guard
//! sets it when dropped, so a test that panics before it is done still ends
//! those loops (and a `thread::scope` around them returns instead of
//! waiting forever), and a deadline ends them even if nothing ever does.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Whether looping threads should go on.
pub struct Stop {
    stopped: AtomicBool,
    /// Past it, the loops end on their own.
    deadline: Instant,
    /// When the guard set the signal, to tell a timely stop from the
    /// deadline.
    stopped_at: OnceLock<Instant>,
}

/// Sets its [`Stop`] when dropped: at the end of the test's own work, or
/// while a panic unwinds past it.
pub struct StopGuard<'a>(&'a Stop);

impl Stop {
    /// A signal whose loops end by themselves `limit` from now.
    pub fn new(limit: Duration) -> Stop {
        Stop {
            stopped: AtomicBool::new(false),
            deadline: Instant::now() + limit,
            stopped_at: OnceLock::new(),
        }
    }

    /// Whether a loop goes on: not stopped, and the deadline not passed.
    pub fn running(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }

    /// The guard that stops the loops when it drops.
    pub fn guard(&self) -> StopGuard<'_> {
        StopGuard(self)
    }

    /// Whether the guard stopped the loops before the deadline ended them
    /// (false while neither happened).
    pub fn stopped_in_time(&self) -> bool {
        self.stopped_at.get().is_some_and(|at| *at < self.deadline)
    }
}

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.stopped_at.set(Instant::now());
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}
