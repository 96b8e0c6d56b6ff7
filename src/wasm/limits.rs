//! Time, memory, body and concurrency limits of guest calls, with the
//! defaults used when `makiatto.toml` sets none.

use std::time::Duration;

use wasmtime::{StoreLimits, StoreLimitsBuilder};

/// How often the engine's epoch advances: the granularity of every timeout.
pub const TICK: Duration = Duration::from_millis(5);

/// Calls (function requests) running at once on a node; more wait.
pub const MAX_CONCURRENT: usize = 256;
/// The largest `max_memory_mb` a site may ask for; larger values are capped.
pub const MAX_MEMORY_MB: u64 = 1024;
/// Default wall-clock limit of one function request.
pub const FUNCTION_TIMEOUT_MS: u64 = 1000;
/// Default wall-clock limit of one transform of one file.
pub const TRANSFORM_TIMEOUT_MS: u64 = 5000;
/// Default memory of one instance.
pub const MEMORY_MB: u64 = 128;
/// Default largest file a transform is given; larger files stay as they are.
pub const TRANSFORM_FILE_KB: u64 = 10 * 1024;
/// The largest request body a function receives; larger requests get 413.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// The limits of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
}

impl Limits {
    /// Limits from optional config values, with `default_timeout_ms`.
    pub fn new(
        timeout_ms: Option<u64>,
        max_memory_mb: Option<u64>,
        default_timeout_ms: u64,
    ) -> Limits {
        let mb = max_memory_mb.unwrap_or(MEMORY_MB).min(MAX_MEMORY_MB);
        Limits {
            timeout: Duration::from_millis(timeout_ms.unwrap_or(default_timeout_ms)),
            memory_bytes: (mb as usize) << 20,
        }
    }

    /// Epoch ticks before the guest is interrupted (at least one).
    pub fn ticks(&self) -> u64 {
        (self.timeout.as_millis() / TICK.as_millis()).max(1) as u64 + 1
    }

    /// The resource limiter of one store.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.memory_bytes)
            .trap_on_grow_failure(true)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_memory_is_capped() {
        let l = Limits::new(None, None, FUNCTION_TIMEOUT_MS);
        assert_eq!(l.timeout, Duration::from_millis(FUNCTION_TIMEOUT_MS));
        assert_eq!(l.memory_bytes, (MEMORY_MB as usize) << 20);
        let capped = Limits::new(Some(10), Some(1 << 20), FUNCTION_TIMEOUT_MS);
        assert_eq!(capped.memory_bytes, (MAX_MEMORY_MB as usize) << 20);
        // A deadline of a fraction of a tick still leaves the guest a tick.
        assert!(Limits::new(Some(1), None, 0).ticks() >= 1);
        assert!(capped.ticks() >= 2);
    }
}
