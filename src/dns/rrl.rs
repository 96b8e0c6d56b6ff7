//! Response rate limiting (RRL) for UDP, as Knot and BIND ship it: an
//! authoritative server answers any spoofed source, so without a limit it
//! can be aimed at a victim to multiply traffic. Each client prefix gets
//! `rate` responses a second; past that, every `slip`th response goes out
//! as an empty truncated answer (a real resolver then retries over TCP,
//! which a spoofed source cannot complete) and the rest are dropped.
//! Whitelisted prefixes are never limited. TCP is not limited here: its
//! handshake proves the source.
//!
//! Unlike Knot, buckets are kept per client prefix only, not per prefix
//! and answer name, so the default rate is set higher than Knot's.

use std::net::IpAddr;
use std::time::Instant;

use ipnetwork::IpNetwork;

use crate::config::DnsLimits;
use crate::limits::{Buckets, Taken, client_key};

/// What to do with one UDP query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it.
    Answer,
    /// Send an empty truncated answer instead.
    Slip,
    /// Send nothing.
    Drop,
}

/// The rate limiter of one DNS listener.
pub struct Rrl {
    /// `None` when `rate` is 0: RRL is off.
    buckets: Option<Buckets>,
    slip: u32,
    whitelist: Vec<IpNetwork>,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl Rrl {
    pub fn new(limits: &DnsLimits) -> Rrl {
        Rrl {
            // One second's worth at once: a resolver's burst after a cache
            // flush passes, a flood does not.
            buckets: (limits.rate > 0).then(|| Buckets::new(limits.rate, limits.rate)),
            slip: limits.slip,
            whitelist: limits.whitelist.clone(),
            ipv4_prefix: limits.ipv4_prefix,
            ipv6_prefix: limits.ipv6_prefix,
        }
    }

    /// What to do with a query from `client` at `now`.
    pub fn verdict(&self, client: IpAddr, now: Instant) -> Verdict {
        let Some(buckets) = &self.buckets else {
            return Verdict::Answer;
        };
        let client = client.to_canonical();
        if self.whitelist.iter().any(|net| net.contains(client)) {
            return Verdict::Answer;
        }
        match buckets.take(client_key(client, self.ipv4_prefix, self.ipv6_prefix), now) {
            Taken::Granted => Verdict::Answer,
            Taken::Refused { nth } if self.slip > 0 && nth.is_multiple_of(self.slip) => {
                Verdict::Slip
            }
            Taken::Refused { .. } => Verdict::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, slip: u32, whitelist: &[&str]) -> DnsLimits {
        DnsLimits {
            rate,
            slip,
            whitelist: whitelist
                .iter()
                .map(|w| w.parse().unwrap_or_else(|e| panic!("{w}: {e}")))
                .collect(),
            ..DnsLimits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn over_the_rate_every_slipth_response_is_truncated_and_the_rest_dropped() {
        let rrl = Rrl::new(&limits(3, 2, &[]));
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..7)
            .map(|_| rrl.verdict(ip("198.51.100.1"), now))
            .collect();
        use Verdict::*;
        assert_eq!(verdicts, [Answer, Answer, Answer, Drop, Slip, Drop, Slip]);
        // Another address of the same /24 shares the bucket; another /24 does not.
        assert_ne!(rrl.verdict(ip("198.51.100.77"), now), Answer);
        assert_eq!(rrl.verdict(ip("203.0.113.1"), now), Answer);
    }

    #[test]
    fn slip_zero_drops_all_and_one_truncates_all() {
        let now = Instant::now();
        let drop_all = Rrl::new(&limits(1, 0, &[]));
        drop_all.verdict(ip("198.51.100.1"), now);
        assert!((0..5).all(|_| drop_all.verdict(ip("198.51.100.1"), now) == Verdict::Drop));
        let slip_all = Rrl::new(&limits(1, 1, &[]));
        slip_all.verdict(ip("198.51.100.1"), now);
        assert!((0..5).all(|_| slip_all.verdict(ip("198.51.100.1"), now) == Verdict::Slip));
    }

    #[test]
    fn whitelisted_prefixes_and_rate_zero_are_never_limited() {
        let now = Instant::now();
        let rrl = Rrl::new(&limits(1, 1, &["198.51.100.0/24"]));
        assert!((0..100).all(|_| rrl.verdict(ip("198.51.100.9"), now) == Verdict::Answer));
        assert!((0..100).all(|_| rrl.verdict(ip("::ffff:198.51.100.9"), now) == Verdict::Answer));
        let off = Rrl::new(&limits(0, 1, &[]));
        assert!((0..100).all(|_| off.verdict(ip("203.0.113.9"), now) == Verdict::Answer));
    }
}
