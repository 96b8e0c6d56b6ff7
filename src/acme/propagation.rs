//! Waits until the DNS servers a validator may ask answer a challenge's
//! TXT values, so a validator that asks right after `set_ready` finds them
//! wherever it lands: in a cluster that is every healthy node's public DNS
//! address, since the domain's NS records name them all. The queries go
//! through the real listeners (UDP), exactly as a validator's would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::warn;

use crate::store::NodeRow;

/// Time between two checks.
const INTERVAL: Duration = Duration::from_millis(100);
/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// After this long, the nodes still lagging are logged (once).
const LAG_REPORT: Duration = Duration::from_secs(5);

/// One DNS server that must answer before the CA validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node it belongs to.
    pub node: String,
    pub addr: SocketAddr,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.node, self.addr)
    }
}

/// The DNS servers to check: this node's own listener (`own`, reached on
/// loopback when it listens on every address) and each other healthy
/// node's public addresses at the same port, in the address families the
/// own listener serves (nodes share one DNS listen setting: the NS records
/// give addresses, not ports, and a node listening on `0.0.0.0` answers no
/// IPv6 query).
pub fn targets(own_node: &str, own: Option<SocketAddr>, nodes: &[NodeRow]) -> Vec<Target> {
    let mut targets = Vec::new();
    let Some(own) = own else {
        return targets;
    };
    let local = match own.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], own.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], own.port()))
        }
        _ => own,
    };
    targets.push(Target {
        node: own_node.to_string(),
        addr: local,
    });
    // `[::]` also takes IPv4 on Linux by default; a specific address only
    // its own family.
    let (v4, v6) = match own.ip() {
        IpAddr::V4(_) => (true, false),
        IpAddr::V6(ip) if ip.is_unspecified() => (true, true),
        IpAddr::V6(_) => (false, true),
    };
    for node in nodes {
        let place = &node.place;
        if place.name == own_node || !node.healthy {
            continue;
        }
        let addresses = [
            place.ipv4.map(IpAddr::V4).filter(|_| v4),
            place.ipv6.map(IpAddr::V6).filter(|_| v6),
        ];
        for ip in addresses.into_iter().flatten() {
            targets.push(Target {
                node: place.name.clone(),
                addr: SocketAddr::new(ip, own.port()),
            });
        }
    }
    targets
}

/// Returns once every target `current` lists answers every value of
/// `expected` at `name`; after `limit`, returns the targets that still do
/// not (empty: all do). `current` is asked again every round, so a node
/// that goes down (or comes up) meanwhile stops (or starts) counting.
/// Targets still lagging after a few seconds are logged and handed to
/// `report` (once).
pub async fn wait_all(
    current: &(dyn Fn() -> Vec<Target> + Sync),
    report: &(dyn Fn(&[Target]) + Sync),
    name: &str,
    expected: &[String],
    limit: Duration,
) -> Vec<Target> {
    let started = tokio::time::Instant::now();
    let deadline = started + limit;
    let expected: Arc<Vec<String>> = Arc::new(expected.to_vec());
    let mut answered: Vec<Target> = Vec::new();
    let mut reported = false;
    let mut id: u16 = 1;
    loop {
        let lagging: Vec<Target> = current()
            .into_iter()
            .filter(|t| !answered.contains(t))
            .collect();
        let mut checks = JoinSet::new();
        for (i, target) in lagging.iter().enumerate() {
            let (addr, name, expected) = (target.addr, name.to_string(), expected.clone());
            let query_id = id.wrapping_add(i as u16);
            checks.spawn(async move {
                let answers = txt_values(addr, &name, query_id).await;
                let ok = answers.is_some_and(|v| expected.iter().all(|e| v.contains(e)));
                (i, ok)
            });
        }
        id = id.wrapping_add(lagging.len() as u16);
        while let Some(result) = checks.join_next().await {
            if let Ok((i, true)) = result
                && let Some(target) = lagging.get(i)
            {
                answered.push(target.clone());
            }
        }
        let lagging: Vec<Target> = lagging
            .into_iter()
            .filter(|t| !answered.contains(t))
            .collect();
        if lagging.is_empty() {
            return lagging;
        }
        let now = tokio::time::Instant::now();
        if !reported && (now >= started + LAG_REPORT || now >= deadline) {
            reported = true;
            let names: Vec<String> = lagging.iter().map(Target::to_string).collect();
            warn!(%name, lagging = ?names, "waiting for these nodes' DNS to answer the ACME challenge");
            report(&lagging);
        }
        if now >= deadline {
            return lagging;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// The TXT strings `dns` answers at `name`, or `None` on any failure.
async fn txt_values(dns: SocketAddr, name: &str, id: u16) -> Option<Vec<String>> {
    let qname = Name::from_ascii(format!("{name}.")).ok()?;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(qname, RecordType::TXT));
    let bytes = message.to_vec().ok()?;
    let bind: SocketAddr = if dns.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).await.ok()?;
    socket.send_to(&bytes, dns).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(QUERY_TIMEOUT, socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let reply = Message::from_vec(&buf[..len]).ok()?;
    if reply.metadata.id != id {
        return None;
    }
    Some(
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodePlace;

    fn node(name: &str, ipv4: Option<&str>, ipv6: Option<&str>, healthy: bool) -> NodeRow {
        NodeRow {
            place: NodePlace {
                name: name.into(),
                ipv4: ipv4.and_then(|a| a.parse().ok()),
                ipv6: ipv6.and_then(|a| a.parse().ok()),
                latitude: None,
                longitude: None,
            },
            healthy,
        }
    }

    #[test]
    fn every_healthy_node_is_checked_at_each_of_its_addresses() {
        let nodes = [
            node("a", Some("192.0.2.1"), None, true),
            node("b", Some("192.0.2.2"), Some("2001:db8::2"), true),
            node("c", Some("192.0.2.3"), None, false),
            node("d", Some("not an address"), None, true),
        ];
        let listed = |own: SocketAddr| -> Vec<String> {
            targets("a", Some(own), &nodes)
                .iter()
                .map(Target::to_string)
                .collect()
        };
        assert_eq!(
            listed(SocketAddr::from(([0u16; 8], 53))),
            ["a ([::1]:53)", "b (192.0.2.2:53)", "b ([2001:db8::2]:53)"]
        );
        // A listener on IPv4 only: other nodes are asked over IPv4 only.
        assert_eq!(
            listed(SocketAddr::from(([0, 0, 0, 0], 53))),
            ["a (127.0.0.1:53)", "b (192.0.2.2:53)"]
        );
        assert!(targets("a", None, &nodes).is_empty());
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_reported_as_lagging() {
        // A bound socket that never replies: the check must give up.
        let silent = UdpSocket::bind("127.0.0.1:0").await.ok();
        let Some(addr) = silent.as_ref().and_then(|s| s.local_addr().ok()) else {
            panic!("cannot bind a loopback UDP socket");
        };
        let target = Target {
            node: "quiet".into(),
            addr,
        };
        let list = || vec![target.clone()];
        let reported = std::sync::Mutex::new(Vec::new());
        let report = |lagging: &[Target]| {
            if let Ok(mut r) = reported.lock() {
                r.extend_from_slice(lagging);
            }
        };
        let lagging = wait_all(
            &list,
            &report,
            "_acme-challenge.example.com",
            &["value".to_string()],
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(lagging, std::slice::from_ref(&target));
        let reported = reported.into_inner().unwrap_or_default();
        assert_eq!(
            reported,
            [target],
            "the lagging node is reported for status"
        );
    }
}
