//! Health: every node probes every peer every [`PROBE_INTERVAL`] over the
//! mesh (an RPC ping, then an HTTP request and a DNS query to the addresses
//! the ping reports) and, after [`FAILURES_TO_DOWN`] failed probes in a row,
//! marks the peer unhealthy in its own store, so its DNS stops answering
//! with it; [`SUCCESSES_TO_UP`] good probes mark it healthy again.
//!
//! Each node acts on its own view (health is not replicated): a node cut
//! off from a peer stops sending visitors there even if others still reach
//! it, and no coordination is needed to decide. The bound: beats come
//! every [`SUSPECT_INTERVAL`] whatever the previous round took; a peer is
//! probed at most `PROBE_INTERVAL` after it stopped, fails within
//! `PROBE_TIMEOUT` (its ping goes unanswered), and, suspect from then on,
//! is probed again on every beat, so it leaves the others' answers within
//! `PROBE_INTERVAL + (FAILURES_TO_DOWN - 1) × SUSPECT_INTERVAL +
//! PROBE_TIMEOUT` = 5 seconds, inside the documented 7 (plus resolver
//! caching of the DNS TTL). Healthy peers cost one probe per
//! `PROBE_INTERVAL`, as before; only a failing one is probed faster.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::messages::PATH_PING;
use super::rpc::RpcError;
use super::service::{Mesh, Peer};
use crate::shutdown::Shutdown;

/// Time between probes of a peer in good standing (or already down).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Time between probes of a suspect peer: one whose last probe failed but
/// which is not marked down yet. Checking it again sooner is what keeps a
/// stopped node's time in DNS answers well inside the documented 7 s,
/// whatever the phase of the stop against the probes.
pub const SUSPECT_INTERVAL: Duration = Duration::from_secs(1);
/// How long each check of a round may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Failed rounds in a row before a peer is marked down.
pub const FAILURES_TO_DOWN: u32 = 3;
/// Good rounds in a row before a peer marked down is marked up.
pub const SUCCESSES_TO_UP: u32 = 2;

/// What a ping answers: the addresses the peer serves visitors on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    pub node: String,
    pub http: SocketAddr,
    pub dns: Option<SocketAddr>,
    /// The peer is about to stop (an upgrade, a removal): take it out of
    /// DNS answers now rather than after failed probes. Absent from older
    /// nodes' pongs.
    #[serde(default)]
    pub draining: bool,
}

/// Consecutive results for one peer.
#[derive(Debug, Default, Clone, Copy)]
struct Streak {
    failures: u32,
    successes: u32,
}

/// Probes every peer until shutdown: each every [`PROBE_INTERVAL`], a
/// suspect one every [`SUSPECT_INTERVAL`].
pub async fn probe_loop(mesh: Arc<Mesh>, mut shutdown: Shutdown) {
    let mut streaks: HashMap<String, Streak> = HashMap::new();
    let mut last_probed: HashMap<String, Instant> = HashMap::new();
    // Rounds start on a fixed beat, not a pause after each round: a round
    // spent waiting out a dead peer's timeout must not stretch the bound.
    let mut beat = tokio::time::interval_at(
        tokio::time::Instant::now() + SUSPECT_INTERVAL,
        SUSPECT_INTERVAL,
    );
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = shutdown.wait() => return,
        }
        let now = Instant::now();
        let peers = mesh.peers();
        streaks.retain(|name, _| peers.iter().any(|p| p.name == *name));
        last_probed.retain(|name, _| peers.iter().any(|p| p.name == *name));
        let mut round = JoinSet::new();
        for peer in peers {
            let streak = streaks.get(&peer.name).copied().unwrap_or_default();
            if !due(streak, last_probed.get(&peer.name).copied(), now) {
                continue;
            }
            last_probed.insert(peer.name.clone(), now);
            let mesh = mesh.clone();
            round.spawn(async move {
                let result = probe(&mesh, &peer).await;
                (peer.name, result)
            });
        }
        let mut results = Vec::new();
        loop {
            tokio::select! {
                done = round.join_next() => match done {
                    Some(Ok(result)) => results.push(result),
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = shutdown.wait() => { round.shutdown().await; return; }
            }
        }
        for (name, result) in results {
            let streak = streaks.entry(name.clone()).or_default();
            match result {
                Ok(()) => {
                    streak.failures = 0;
                    streak.successes += 1;
                    if streak.successes == SUCCESSES_TO_UP {
                        mark(&mesh, &name, true, None).await;
                    }
                }
                Err(ProbeError::Draining) => {
                    // It said so itself: no need to wait for failures.
                    streak.successes = 0;
                    if streak.failures < FAILURES_TO_DOWN {
                        streak.failures = FAILURES_TO_DOWN;
                        mark(&mesh, &name, false, Some(ProbeError::Draining)).await;
                    }
                }
                Err(why) => {
                    streak.successes = 0;
                    streak.failures += 1;
                    if streak.failures == FAILURES_TO_DOWN {
                        mark(&mesh, &name, false, Some(why)).await;
                    }
                }
            }
        }
    }
}

/// Whether a peer is probed in the round starting `now`: a suspect one
/// (failed, not down yet) every beat, any other once [`PROBE_INTERVAL`]
/// has passed since its last probe (with half a beat of slack, so a beat
/// that fires a little early does not skip it).
fn due(streak: Streak, last: Option<Instant>, now: Instant) -> bool {
    let suspect = streak.failures > 0 && streak.failures < FAILURES_TO_DOWN;
    suspect || last.is_none_or(|at| now.duration_since(at) + SUSPECT_INTERVAL / 2 >= PROBE_INTERVAL)
}

async fn mark(mesh: &Mesh, name: &str, healthy: bool, why: Option<ProbeError>) {
    let store = mesh.store().clone();
    let peer = name.to_string();
    let changed = tokio::task::spawn_blocking(move || {
        let was = store
            .nodes()
            .ok()?
            .into_iter()
            .find(|n| n.place.name == peer)
            .map(|n| n.healthy)?;
        store.set_node_health(&peer, healthy).ok()?;
        Some(was != healthy)
    })
    .await
    .ok()
    .flatten();
    if changed == Some(true) {
        if healthy {
            info!(peer = name, "peer healthy again: DNS answers with it");
        } else {
            let reason = why.map(|e| e.to_string()).unwrap_or_default();
            warn!(
                peer = name,
                reason = reason.as_str(),
                "peer unhealthy: DNS stops answering with it"
            );
        }
    }
}

/// Why a probe of a peer failed.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("the peer is draining before a planned stop")]
    Draining,
    #[error("ping timed out")]
    PingTimeout,
    #[error("ping: {0}")]
    Ping(#[source] RpcError),
    #[error("HTTP {0} timed out")]
    HttpTimeout(SocketAddr),
    #[error("HTTP {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("DNS {0} timed out")]
    DnsTimeout(SocketAddr),
    #[error("DNS {addr}: {source}")]
    Dns {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// One round against `peer`: ping, then its HTTP and DNS listeners.
async fn probe(mesh: &Mesh, peer: &Peer) -> Result<(), ProbeError> {
    let call = mesh
        .client()
        .call_json::<_, Pong>(peer.addr, PATH_PING, &serde_json::Value::Null);
    let pong = tokio::time::timeout(PROBE_TIMEOUT, call)
        .await
        .map_err(|_| ProbeError::PingTimeout)?
        .map_err(ProbeError::Ping)?;
    if pong.draining {
        return Err(ProbeError::Draining);
    }
    let http = reachable(pong.http, peer.addr);
    tokio::time::timeout(PROBE_TIMEOUT, http_check(http))
        .await
        .map_err(|_| ProbeError::HttpTimeout(http))?
        .map_err(|source| ProbeError::Http { addr: http, source })?;
    if let Some(dns) = pong.dns {
        let dns = reachable(dns, peer.addr);
        tokio::time::timeout(PROBE_TIMEOUT, dns_check(dns))
            .await
            .map_err(|_| ProbeError::DnsTimeout(dns))?
            .map_err(|source| ProbeError::Dns { addr: dns, source })?;
    }
    Ok(())
}

/// A listener bound to the unspecified address is reached at the peer's
/// mesh (RPC) address.
fn reachable(addr: SocketAddr, rpc: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(rpc.ip(), addr.port())
    } else {
        addr
    }
}

/// Any HTTP response at all means the server is up.
async fn http_check(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"HEAD / HTTP/1.1\r\nHost: health.invalid\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(std::io::Error::other("not an HTTP response"))
    }
}

/// Any DNS response to our id means the server is up (a refusal included:
/// the root is not one of its zones).
async fn dns_check(addr: SocketAddr) -> std::io::Result<()> {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    let id = (super::service::now_ms() as u16).to_be_bytes();
    // Header (id, RD=0, one question), then root, type SOA, class IN.
    let query = [id[0], id[1], 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1];
    socket.send_to(&query, addr).await?;
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        if from == addr && n >= 12 && buf[..2] == id && buf[2] & 0x80 != 0 {
            return Ok(());
        }
    }
}

/// This node's answer to a ping.
pub fn pong(mesh: &Mesh) -> Pong {
    Pong {
        node: mesh.name().to_string(),
        http: mesh.listeners().http,
        dns: mesh.listeners().dns,
        draining: mesh.is_draining(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streak(failures: u32) -> Streak {
        Streak {
            failures,
            successes: 0,
        }
    }

    #[test]
    fn a_new_peer_is_probed_at_once() {
        assert!(due(streak(0), None, Instant::now()));
    }

    #[test]
    fn a_peer_in_good_standing_is_probed_every_other_beat() {
        let start = Instant::now();
        let beat = |n: u32| start + SUSPECT_INTERVAL * n;
        assert!(!due(streak(0), Some(start), beat(1)));
        assert!(due(streak(0), Some(start), beat(2)));
        // A beat firing a little early still probes it.
        assert!(due(
            streak(0),
            Some(start),
            beat(2) - Duration::from_millis(100)
        ));
    }

    #[test]
    fn a_suspect_peer_is_probed_every_beat_until_it_is_down() {
        let start = Instant::now();
        let next = start + SUSPECT_INTERVAL;
        for failures in 1..FAILURES_TO_DOWN {
            assert!(
                due(streak(failures), Some(start), next),
                "{failures} failures"
            );
        }
        // Once down, it is probed at the normal pace again.
        assert!(!due(streak(FAILURES_TO_DOWN), Some(start), next));
        assert!(!due(streak(FAILURES_TO_DOWN + 4), Some(start), next));
    }
}
