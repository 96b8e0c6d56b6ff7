//! How often each limit was applied since the node started: what `status`
//! shows, so an operator sees that clients are being limited and by which
//! rule.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// One count per limit a listener applies.
#[derive(Default)]
pub struct Counters {
    dns_dropped: AtomicU64,
    dns_slipped: AtomicU64,
    dns_tcp_refused: AtomicU64,
    dns_formerr: AtomicU64,
    http_rate: AtomicU64,
    http_connections: AtomicU64,
    http_timeouts: AtomicU64,
    http_body_too_large: AtomicU64,
    ssh_auth: AtomicU64,
    ssh_connections: AtomicU64,
}

/// Which limit was applied.
#[derive(Debug, Clone, Copy)]
pub enum Limited {
    /// A DNS response over the rate, not sent.
    DnsDropped,
    /// A DNS response over the rate, sent as an empty truncated answer.
    DnsSlipped,
    /// A DNS TCP connection over the caps, closed at once.
    DnsTcpRefused,
    /// A DNS message too short or malformed, answered FORMERR.
    DnsFormErr,
    /// An HTTP request over the client's rate, answered 429.
    HttpRate,
    /// An HTTP connection over the client's cap, answered 429 and closed.
    HttpConnections,
    /// An HTTP request or response that took too long, closed.
    HttpTimeout,
    /// An HTTP request body over the size limit, answered 413.
    HttpBodyTooLarge,
    /// An SSH connection closed for too many authentication attempts.
    SshAuth,
    /// An SSH connection over the caps, closed at once.
    SshConnections,
}

/// A copy of the counts, as `status --json` prints them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CountersView {
    pub dns_dropped: u64,
    pub dns_slipped: u64,
    pub dns_tcp_refused: u64,
    pub dns_formerr: u64,
    pub http_rate: u64,
    pub http_connections: u64,
    pub http_timeouts: u64,
    pub http_body_too_large: u64,
    pub ssh_auth: u64,
    pub ssh_connections: u64,
}

impl Counters {
    /// Counts one application of `limit`.
    pub fn count(&self, limit: Limited) {
        self.cell(limit).fetch_add(1, Ordering::Relaxed);
    }

    fn cell(&self, limit: Limited) -> &AtomicU64 {
        match limit {
            Limited::DnsDropped => &self.dns_dropped,
            Limited::DnsSlipped => &self.dns_slipped,
            Limited::DnsTcpRefused => &self.dns_tcp_refused,
            Limited::DnsFormErr => &self.dns_formerr,
            Limited::HttpRate => &self.http_rate,
            Limited::HttpConnections => &self.http_connections,
            Limited::HttpTimeout => &self.http_timeouts,
            Limited::HttpBodyTooLarge => &self.http_body_too_large,
            Limited::SshAuth => &self.ssh_auth,
            Limited::SshConnections => &self.ssh_connections,
        }
    }

    /// The counts now.
    pub fn view(&self) -> CountersView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersView {
            dns_dropped: get(&self.dns_dropped),
            dns_slipped: get(&self.dns_slipped),
            dns_tcp_refused: get(&self.dns_tcp_refused),
            dns_formerr: get(&self.dns_formerr),
            http_rate: get(&self.http_rate),
            http_connections: get(&self.http_connections),
            http_timeouts: get(&self.http_timeouts),
            http_body_too_large: get(&self.http_body_too_large),
            ssh_auth: get(&self.ssh_auth),
            ssh_connections: get(&self.ssh_connections),
        }
    }
}

impl CountersView {
    /// The `status` line: each nonzero count by name, or that nothing was
    /// limited.
    pub fn line(&self) -> String {
        let named = [
            ("dns dropped", self.dns_dropped),
            ("dns slipped", self.dns_slipped),
            ("dns tcp refused", self.dns_tcp_refused),
            ("dns formerr", self.dns_formerr),
            ("http 429 rate", self.http_rate),
            ("http 429 connections", self.http_connections),
            ("http timeouts", self.http_timeouts),
            ("http 413", self.http_body_too_large),
            ("ssh auth", self.ssh_auth),
            ("ssh connections", self.ssh_connections),
        ];
        let parts: Vec<String> = named
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        if parts.is_empty() {
            "limited: none".to_string()
        } else {
            format!("limited: {}", parts.join(", "))
        }
    }
}
