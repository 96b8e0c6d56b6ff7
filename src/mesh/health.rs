//! Health: each node decides for itself which peers its DNS answers with
//! (health is not replicated: a node cut off from a peer stops sending
//! visitors there even if others still reach it, and no coordination is
//! needed to decide), while what the cluster spends on probing stays the
//! same per node whatever the number of nodes, as in SWIM.
//!
//! A probe of a peer is an RPC ping, then an HTTP request and a DNS query
//! to the addresses the ping reports. Beats come every [`BEAT`], on the
//! wall clock's whole seconds. On each beat a node probes one peer in
//! good standing, chosen by [`scheduled`]: every node sorts the members by
//! name and probes the one `1 + beat mod (n - 1)` places after itself, so
//! with clocks that agree within a beat every node is probed by exactly
//! one other on every beat, and each node sends and answers one probe per
//! beat however many nodes there are (with skewed clocks each peer is
//! still probed once every `n - 1` beats by each node).
//!
//! When a probe of a peer in good standing fails, the prober asks
//! [`HELPERS`] other peers to probe it too (SWIM's indirect probe, so a bad
//! link between two nodes does not condemn a healthy peer in everyone's
//! eyes). If none of them reaches it, the prober tells every other peer
//! that it suspects it: events, not idle traffic, cost O(n). From then on
//! each node that failed to reach the peer, was asked to, or was told,
//! probes it itself every beat; it marks it down in its own store after
//! [`FAILURES_TO_DOWN`] failures in a row, a helper's failed probe
//! counting the prober's failure with its own, and a suspicion (the
//! prober's and helpers' failures) counting as all but one: each node
//! still needs one failed probe of its own. Peers marked down are probed
//! every [`DOWN_INTERVAL`] by every node, so a restarted node is answered
//! again after [`SUCCESSES_TO_UP`] good probes. A draining node says so in
//! its pings and tells every peer at its next beat, so each probes it at
//! once and drops it.
//!
//! The bound, for a node that stops just after a probe: its prober of the
//! next beat probes it within `BEAT` and fails within [`PROBE_TIMEOUT`];
//! the helpers' answers come within [`INDIRECT_TIMEOUT`], and then every
//! other node is told. A told node probes at once and fails within
//! `PROBE_TIMEOUT`: the last node marks it down within `BEAT +
//! PROBE_TIMEOUT + INDIRECT_TIMEOUT + PROBE_TIMEOUT` = 4.5 seconds after
//! it stopped, inside the documented 7 (plus resolver caching of the DNS
//! TTL). The others are sooner: a helper, failed when asked (two), probes
//! again at once (three) within `BEAT + 3 × PROBE_TIMEOUT`; the prober has
//! failed twice once the helpers answered, and its own probe on the next
//! beats makes three by then. When `d` nodes are down already, a stopped
//! node may wait `d` more beats for its first probe; with clocks that
//! disagree by more than a beat, up to `n - 1`.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::gossip::random_index;
use super::messages::{PATH_PING, PATH_PROBE, PATH_SUSPECT, ProbeReply, ProbeRequest, Suspicion};
use super::rpc::{Reply, RpcError, json_reply, json_request};
use super::service::{Mesh, Peer};
use crate::shutdown::Shutdown;

/// Time between beats: each beat a node probes one peer in good standing
/// and every suspect one.
pub const BEAT: Duration = Duration::from_secs(1);
/// Time between probes of a peer this node has marked down: what brings
/// a restarted node back.
pub const DOWN_INTERVAL: Duration = Duration::from_secs(2);
/// How long each check of a probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the prober waits for the helpers of an indirect probe: their
/// ping's timeout and a margin for the RPC around it.
pub const INDIRECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Peers asked to probe a peer whose direct probe failed.
pub const HELPERS: usize = 2;
/// Failed probes in a row before a peer is marked down.
pub const FAILURES_TO_DOWN: u32 = 3;
/// Good probes in a row before a peer marked down is marked up.
pub const SUCCESSES_TO_UP: u32 = 2;
/// How long after `drain` every peer has taken the node out of its DNS
/// answers: the next beat, the notice, a probe answered "draining".
pub const DRAIN_BOUND: Duration = Duration::from_secs(3);

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

/// What other nodes said about a peer, waiting for the probe loop.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Notice {
    /// A node failed to reach `node`, and so did the peers it asked (or
    /// `node` is draining and said so itself).
    Suspect(String),
    /// This node probed `node` because another asked it to.
    Asked { node: String, reached: bool },
}

/// Notices from the RPC handlers to this node's probe loop.
#[derive(Default)]
pub struct Notices {
    queue: Mutex<Vec<Notice>>,
    wake: Notify,
}

impl Notices {
    fn push(&self, notice: Notice) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notice);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// This node's view of one peer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PeerState {
    /// Failed probes in a row (counting others' failures as the module doc
    /// says); [`FAILURES_TO_DOWN`] or more: marked down.
    failures: u32,
    /// Good probes in a row.
    successes: u32,
    /// When its last probe started.
    last_probe: Option<Instant>,
    /// A probe of it is running.
    busy: bool,
}

impl PeerState {
    fn suspect(&self) -> bool {
        self.failures > 0 && self.failures < FAILURES_TO_DOWN
    }

    fn down(&self) -> bool {
        self.failures >= FAILURES_TO_DOWN
    }

    /// Whether it is probed in the beat starting `now`, besides being
    /// scheduled: a suspect one on every beat, one marked down every
    /// [`DOWN_INTERVAL`] (with half a beat of slack, so a beat that fires
    /// a little early does not skip it).
    fn due(&self, now: Instant) -> bool {
        let since = |every: Duration| {
            self.last_probe
                .is_none_or(|at| now.duration_since(at) + BEAT / 2 >= every)
        };
        !self.busy && ((self.suspect() && since(BEAT)) || (self.down() && since(DOWN_INTERVAL)))
    }

    /// Others' failures to reach it, counted as `count` of this node's
    /// own (never lowering a count already higher, never marking down).
    fn failed_elsewhere(&mut self, count: u32) {
        if !self.down() && self.failures < count {
            self.failures = count;
            self.successes = 0;
        }
    }
}

/// The peer `own` probes on beat `beat`, of `members` (every member's name,
/// this node's included, sorted): the one `1 + beat mod (n - 1)` places
/// after it, so on each beat the members probe each other in a cycle
/// that is a permutation without fixed points.
pub fn scheduled<'a>(members: &'a [String], own: &str, beat: u64) -> Option<&'a str> {
    let n = members.len();
    if n < 2 {
        return None;
    }
    let at = members.iter().position(|m| m == own)?;
    let shift = 1 + (beat % (n as u64 - 1)) as usize;
    Some(members[(at + shift) % n].as_str())
}

/// What a finished task of the probe loop reports.
enum Outcome {
    Probed {
        peer: String,
        result: Result<(), ProbeError>,
    },
    /// The helpers asked about `peer`: whether one reached it, and those
    /// that answered they did not.
    Indirect {
        peer: String,
        asked: Vec<String>,
        reached: bool,
    },
    /// Notices sent.
    Told,
}

/// The wall clock's current second, rounded, as the beat's number.
fn beat_number() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + BEAT / 2).as_secs()
}

/// Time until the wall clock's next whole second.
fn until_next_beat() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    BEAT - Duration::from_nanos(u64::from(now.subsec_nanos()) % BEAT.as_nanos() as u64)
}

/// Probes peers until shutdown, as the module doc says.
pub async fn probe_loop(mesh: Arc<Mesh>, mut shutdown: Shutdown) {
    let mut states = initial_states(&mesh).await;
    let mut running: JoinSet<Outcome> = JoinSet::new();
    let mut draining = false;
    let mut next_beat = tokio::time::Instant::now() + until_next_beat();
    loop {
        let mut beat = false;
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat) => {
                beat = true;
                next_beat = tokio::time::Instant::now() + until_next_beat();
            }
            _ = mesh.health_notices().wake.notified() => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(outcome) = done {
                    settle(&mesh, &mut states, &mut running, outcome).await;
                }
            }
            _ = shutdown.wait() => { running.shutdown().await; return; }
        }
        let now = Instant::now();
        for notice in mesh.health_notices().take() {
            let (node, count) = match &notice {
                Notice::Suspect(node) => (node, FAILURES_TO_DOWN - 1),
                Notice::Asked {
                    node,
                    reached: false,
                } => (node, FAILURES_TO_DOWN - 1),
                Notice::Asked {
                    node,
                    reached: true,
                } => {
                    if let Some(state) = states.get_mut(node) {
                        state.last_probe = Some(now);
                        record(&mesh, node, state, Ok(())).await;
                    }
                    continue;
                }
            };
            let Some(state) = states.get_mut(node) else {
                continue;
            };
            debug!(peer = %node, ?notice, "health notice");
            state.failed_elsewhere(count);
            if !state.busy
                && state.suspect()
                && let Some(peer) = mesh.peers().into_iter().find(|p| p.name == *node)
            {
                // Told, or asked and failed: probe it again at once rather
                // than at the next beat.
                spawn_probe(&mesh, &mut running, peer, state, now);
            }
        }
        if !beat {
            continue;
        }
        let peers = mesh.peers();
        states.retain(|name, _| peers.iter().any(|p| p.name == *name));
        for peer in &peers {
            states.entry(peer.name.clone()).or_default();
        }
        let mut members: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
        members.push(mesh.name().to_string());
        members.sort();
        let target = scheduled(&members, mesh.name(), beat_number()).map(str::to_string);
        for peer in &peers {
            let Some(state) = states.get_mut(&peer.name) else {
                continue;
            };
            let routine = target.as_deref() == Some(peer.name.as_str()) && state.failures == 0;
            if (routine && !state.busy) || state.due(now) {
                spawn_probe(&mesh, &mut running, peer.clone(), state, now);
            }
        }
        if mesh.is_draining() && !draining {
            // Tell every peer now, rather than at each one's next probe.
            let everyone: Vec<Peer> = peers.clone();
            let notice = Suspicion {
                node: mesh.name().to_string(),
            };
            let mesh = mesh.clone();
            running.spawn(async move {
                tell(&mesh, &everyone, &notice).await;
                Outcome::Told
            });
        }
        draining = mesh.is_draining();
    }
}

/// Every peer in good standing, except those this node's store has
/// marked down (probed at the down pace from the start, so a restart of
/// this node does not slow their return).
async fn initial_states(mesh: &Mesh) -> HashMap<String, PeerState> {
    let store = mesh.store().clone();
    let nodes = tokio::task::spawn_blocking(move || store.nodes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    nodes
        .into_iter()
        .filter(|n| n.place.name != mesh.name())
        .map(|n| {
            let failures = if n.healthy { 0 } else { FAILURES_TO_DOWN };
            (
                n.place.name,
                PeerState {
                    failures,
                    ..PeerState::default()
                },
            )
        })
        .collect()
}

fn spawn_probe(
    mesh: &Arc<Mesh>,
    running: &mut JoinSet<Outcome>,
    peer: Peer,
    state: &mut PeerState,
    now: Instant,
) {
    state.busy = true;
    state.last_probe = Some(now);
    let mesh = mesh.clone();
    running.spawn(async move {
        let result = probe(&mesh, &peer).await;
        Outcome::Probed {
            peer: peer.name,
            result,
        }
    });
}

/// Acts on a finished task: counts a probe's result (a peer in good
/// standing that failed goes to the helpers), and a failed indirect probe
/// is counted and told to every other peer.
async fn settle(
    mesh: &Arc<Mesh>,
    states: &mut HashMap<String, PeerState>,
    running: &mut JoinSet<Outcome>,
    outcome: Outcome,
) {
    match outcome {
        Outcome::Probed { peer, result } => {
            let Some(state) = states.get_mut(&peer) else {
                return;
            };
            state.busy = false;
            let fresh_failure = state.failures == 0 && result.is_err();
            record(mesh, &peer, state, result).await;
            if fresh_failure && !state.down() {
                let helpers = pick_helpers(mesh, states, &peer);
                let mesh = mesh.clone();
                running.spawn(async move { indirect(&mesh, peer, helpers).await });
            }
        }
        Outcome::Indirect {
            peer,
            asked,
            reached,
        } => {
            let Some(state) = states.get_mut(&peer) else {
                return;
            };
            if reached || asked.is_empty() || !state.suspect() {
                // A bad link from here, or it answered since: this node's
                // own probes decide.
                return;
            }
            let failures = state.failures + 1;
            record(
                mesh,
                &peer,
                state,
                Err(ProbeError::Unreached {
                    helpers: asked.len(),
                }),
            )
            .await;
            info!(
                peer = %peer,
                failures,
                helpers = asked.len(),
                "neither this node nor the peers it asked reach the peer: telling every node to probe it"
            );
            let others: Vec<Peer> = mesh
                .peers()
                .into_iter()
                .filter(|p| p.name != peer && !asked.contains(&p.name))
                .collect();
            let mesh = mesh.clone();
            running.spawn(async move {
                tell(&mesh, &others, &Suspicion { node: peer }).await;
                Outcome::Told
            });
        }
        Outcome::Told => {}
    }
}

/// Counts one result of this node's about `peer`, marking it down or up
/// when a streak is complete.
async fn record(mesh: &Mesh, peer: &str, state: &mut PeerState, result: Result<(), ProbeError>) {
    match result {
        Ok(()) => {
            state.failures = 0;
            state.successes += 1;
            if state.successes == SUCCESSES_TO_UP {
                mark(mesh, peer, true, None).await;
            }
        }
        Err(ProbeError::Draining) => {
            // It said so itself: no need to wait for failures.
            state.successes = 0;
            if state.failures < FAILURES_TO_DOWN {
                state.failures = FAILURES_TO_DOWN;
                mark(mesh, peer, false, Some(ProbeError::Draining)).await;
            }
        }
        Err(why) => {
            state.successes = 0;
            state.failures += 1;
            if state.failures == FAILURES_TO_DOWN {
                mark(mesh, peer, false, Some(why)).await;
            }
        }
    }
}

/// Up to [`HELPERS`] peers other than `target`, at random, those in good
/// standing first.
fn pick_helpers(mesh: &Mesh, states: &HashMap<String, PeerState>, target: &str) -> Vec<Peer> {
    let mut good = Vec::new();
    let mut other = Vec::new();
    for peer in mesh.peers() {
        if peer.name == target {
            continue;
        }
        match states.get(&peer.name) {
            Some(s) if s.failures > 0 => other.push(peer),
            _ => good.push(peer),
        }
    }
    let mut helpers = Vec::new();
    for pool in [&mut good, &mut other] {
        while helpers.len() < HELPERS && !pool.is_empty() {
            helpers.push(pool.swap_remove(random_index(pool.len())));
        }
    }
    helpers
}

/// Asks `helpers` to probe `peer`, all at once: whether any reached it,
/// and which answered that they did not (a helper that does not answer in
/// time is no evidence either way: the trouble may be this node's).
async fn indirect(mesh: &Arc<Mesh>, peer: String, helpers: Vec<Peer>) -> Outcome {
    let mut asks = JoinSet::new();
    for helper in helpers {
        let mesh = mesh.clone();
        let request = ProbeRequest { node: peer.clone() };
        asks.spawn(async move {
            let call = mesh
                .client()
                .call_json::<_, ProbeReply>(helper.addr, PATH_PROBE, &request);
            match tokio::time::timeout(INDIRECT_TIMEOUT, call).await {
                Ok(Ok(reply)) => (helper.name, Some(reply.reached)),
                _ => (helper.name, None),
            }
        });
    }
    let mut reached = false;
    let mut asked = Vec::new();
    while let Some(done) = asks.join_next().await {
        match done {
            Ok((_, Some(true))) => reached = true,
            Ok((name, Some(false))) => asked.push(name),
            _ => {}
        }
    }
    Outcome::Indirect {
        peer,
        asked,
        reached,
    }
}

/// Sends `notice` to every one of `peers` at once (best effort: a peer
/// that misses it still probes the node on its own schedule).
async fn tell(mesh: &Arc<Mesh>, peers: &[Peer], notice: &Suspicion) {
    let mut sends = JoinSet::new();
    for peer in peers {
        let mesh = mesh.clone();
        let addr = peer.addr;
        let notice = notice.clone();
        sends.spawn(async move {
            let call = mesh
                .client()
                .call_json::<_, serde_json::Value>(addr, PATH_SUSPECT, &notice);
            let _ = tokio::time::timeout(PROBE_TIMEOUT, call).await;
        });
    }
    while sends.join_next().await.is_some() {}
}

/// Answers another node's request to probe a peer (an indirect probe),
/// and counts the result in this node's own view.
pub async fn answer_probe(mesh: Arc<Mesh>, body: &[u8]) -> Reply {
    let request: ProbeRequest = match json_request(body, "probe request") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Some(peer) = mesh.peers().into_iter().find(|p| p.name == request.node) else {
        return Reply::error(
            hyper::StatusCode::NOT_FOUND,
            format!("{} is not a member this node knows", request.node),
        );
    };
    // Answer before the asking node stops waiting.
    let reached = tokio::time::timeout(INDIRECT_TIMEOUT - BEAT / 4, probe(&mesh, &peer))
        .await
        .is_ok_and(|r| r.is_ok());
    mesh.health_notices().push(Notice::Asked {
        node: peer.name,
        reached,
    });
    json_reply(&ProbeReply { reached })
}

/// Takes another node's suspicion of a peer (or a draining node's word
/// about itself) to this node's probe loop.
pub fn answer_suspicion(mesh: &Mesh, body: &[u8]) -> Reply {
    let notice: Suspicion = match json_request(body, "suspicion") {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    if notice.node != mesh.name() {
        mesh.health_notices().push(Notice::Suspect(notice.node));
    }
    json_reply(&serde_json::Value::Null)
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
    #[error("unreachable from here and from the {helpers} peers asked to probe it")]
    Unreached { helpers: usize },
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
    use std::collections::HashSet;

    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn every_node_is_probed_by_exactly_one_other_on_every_beat() {
        for n in 2..=9 {
            let members = names(n);
            for beat in 0..(3 * n as u64) {
                let mut probed = HashSet::new();
                for own in &members {
                    let target = scheduled(&members, own, beat).expect("a target");
                    assert_ne!(target, own, "{n} nodes, beat {beat}: {own} probes itself");
                    assert!(
                        probed.insert(target),
                        "{n} nodes, beat {beat}: {target} twice"
                    );
                }
                assert_eq!(probed.len(), n);
            }
        }
    }

    #[test]
    fn each_node_probes_every_peer_within_n_minus_one_beats() {
        let members = names(6);
        for own in &members {
            let seen: HashSet<&str> = (100..105)
                .filter_map(|beat| scheduled(&members, own, beat))
                .collect();
            assert_eq!(seen.len(), 5, "{own} probed {seen:?}");
        }
    }

    #[test]
    fn no_target_alone_or_when_not_a_member() {
        assert_eq!(scheduled(&names(1), "n0", 7), None);
        assert_eq!(scheduled(&names(3), "elsewhere", 7), None);
    }

    fn state(failures: u32, last: Option<Instant>) -> PeerState {
        PeerState {
            failures,
            last_probe: last,
            ..PeerState::default()
        }
    }

    #[test]
    fn a_suspect_peer_is_probed_every_beat_and_a_down_one_every_other() {
        let start = Instant::now();
        let beat = |n: u32| start + BEAT * n;
        for failures in 1..FAILURES_TO_DOWN {
            assert!(state(failures, Some(start)).due(beat(1)), "{failures}");
            // A beat firing a little early still probes it.
            assert!(state(failures, Some(start)).due(beat(1) - Duration::from_millis(100)));
        }
        assert!(!state(FAILURES_TO_DOWN, Some(start)).due(beat(1)));
        assert!(state(FAILURES_TO_DOWN, Some(start)).due(beat(2)));
        // In good standing: only when scheduled.
        assert!(!state(0, Some(start)).due(beat(5)));
        // Never two probes of one peer at once.
        let mut busy = state(1, Some(start));
        busy.busy = true;
        assert!(!busy.due(beat(3)));
    }

    #[test]
    fn others_failures_leave_one_for_this_node_and_never_lower_a_count() {
        let mut s = state(0, None);
        s.successes = 1;
        s.failed_elsewhere(FAILURES_TO_DOWN - 1);
        assert_eq!((s.failures, s.successes), (FAILURES_TO_DOWN - 1, 0));
        assert!(s.suspect());
        let mut down = state(FAILURES_TO_DOWN + 2, None);
        down.failed_elsewhere(FAILURES_TO_DOWN - 1);
        assert_eq!(down.failures, FAILURES_TO_DOWN + 2);
    }
}
