//! Per-client limits of the SSH endpoint: connections per client address,
//! and failed authentication attempts per client address a minute over
//! all its connections (the per-connection count is russh's
//! `max_auth_attempts`). A client over either is told why on a line before
//! the SSH version exchange (RFC 4253 §4.2 allows such lines) and closed;
//! every refusal is counted for `status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::config::SshLimits;
use crate::limits::{Buckets, ConnectionGuard, Connections, Counters, Limited, Taken, client_key};

/// Why a connection is refused before SSH starts, as the client reads it.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"too many connections from your address; retry later\r\n";
pub const TOO_MANY_FAILURES: &[u8] =
    b"too many failed authentication attempts from your address; retry in a minute\r\n";

/// The SSH endpoint's client limits.
pub struct SshGuard {
    pub settings: SshLimits,
    connections: Arc<Connections>,
    failures: Buckets,
    counters: Arc<Counters>,
}

impl SshGuard {
    pub fn new(settings: SshLimits, counters: Arc<Counters>) -> Arc<SshGuard> {
        let per_minute = settings.auth_failures_per_minute;
        Arc::new(SshGuard {
            connections: Connections::new(settings.connections_per_client),
            failures: Buckets::with_rate(f64::from(per_minute) / 60.0, per_minute),
            settings,
            counters,
        })
    }

    /// A connection slot for `peer`, or the line telling it why not
    /// (counted).
    pub fn admit(&self, peer: SocketAddr) -> Result<ConnectionGuard, &'static [u8]> {
        let key = key(peer);
        if !self.failures.has_token(key, Instant::now()) {
            self.counters.count(Limited::SshAuth);
            return Err(TOO_MANY_FAILURES);
        }
        self.connections.open(key).ok_or_else(|| {
            self.counters.count(Limited::SshConnections);
            TOO_MANY_CONNECTIONS
        })
    }

    /// Records a refused authentication attempt from `peer`, the
    /// `attempts`th of its connection; false when the client is over its
    /// budget and the connection should end now (counted).
    pub fn failed(&self, peer: SocketAddr, attempts: u32) -> bool {
        let over_client = matches!(
            self.failures.take(key(peer), Instant::now()),
            Taken::Refused { .. }
        );
        let over_connection = attempts >= self.settings.auth_attempts_per_connection;
        if over_client || over_connection {
            self.counters.count(Limited::SshAuth);
            return false;
        }
        true
    }

    /// Counts a connection refused because every connection slot is taken.
    pub fn count_full(&self) {
        self.counters.count(Limited::SshConnections);
    }
}

fn key(peer: SocketAddr) -> u128 {
    client_key(peer.ip(), 32, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_client_over_its_failures_is_refused_and_another_is_not() {
        let settings = SshLimits {
            auth_failures_per_minute: 3,
            auth_attempts_per_connection: 100,
            ..SshLimits::default()
        };
        let guard = SshGuard::new(settings, Arc::new(Counters::default()));
        let a = peer("198.51.100.1:5000");
        assert!(guard.admit(a).is_ok());
        assert!(guard.failed(a, 1));
        assert!(guard.failed(a, 2));
        assert!(guard.failed(a, 3));
        assert!(!guard.failed(a, 4));
        assert_eq!(guard.admit(a).err(), Some(TOO_MANY_FAILURES));
        assert!(guard.admit(peer("198.51.100.2:5000")).is_ok());
        assert_eq!(guard.counters.view().ssh_auth, 2);
    }

    #[test]
    fn a_connection_ends_at_its_attempt_limit() {
        let settings = SshLimits {
            auth_attempts_per_connection: 2,
            ..SshLimits::default()
        };
        let guard = SshGuard::new(settings, Arc::new(Counters::default()));
        let a = peer("198.51.100.1:5000");
        assert!(guard.failed(a, 1));
        assert!(!guard.failed(a, 2));
    }

    #[test]
    fn connections_per_client_are_capped() {
        let settings = SshLimits {
            connections_per_client: 1,
            ..SshLimits::default()
        };
        let guard = SshGuard::new(settings, Arc::new(Counters::default()));
        let held = guard.admit(peer("198.51.100.1:1"));
        assert!(held.is_ok());
        assert_eq!(
            guard.admit(peer("198.51.100.1:2")).err(),
            Some(TOO_MANY_CONNECTIONS)
        );
        drop(held);
        assert!(guard.admit(peer("198.51.100.1:3")).is_ok());
    }
}
