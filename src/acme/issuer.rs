//! Which node orders a domain's certificate: a pure function of the node
//! table, health, the order row and the time, so every node reaches the
//! same answer alone and exactly one node orders in the steady state.
//!
//! Nodes are ranked per domain by rendezvous hashing (blake3 of domain and
//! node name), which spreads domains over nodes and keeps each domain's
//! ranking stable when unrelated nodes come and go. Without an order in
//! flight the first healthy node in the ranking orders. An order in flight
//! stays with its node while that node is healthy and shows progress; each
//! `timeout` without progress passes it to the next healthy node in the
//! ranking, and an unhealthy node's order passes at once.

use crate::store::{CertOrder, NodeRow};

/// The node that should order `domain`'s certificate now, or `None` when
/// no node is healthy.
pub fn issuer<'a>(
    domain: &str,
    nodes: &'a [NodeRow],
    order: Option<&CertOrder>,
    now_ms: u64,
    timeout_ms: u64,
) -> Option<&'a str> {
    let ranking = ranking(domain, nodes);
    let healthy = |i: usize| ranking.get(i).is_some_and(|n| n.healthy);
    let start = match order {
        // The holder's place, healthy or not: the order passes on from it.
        Some(order) => ranking.iter().position(|n| n.place.name == order.node),
        None => None,
    };
    let Some(start) = start else {
        return ranking
            .iter()
            .find(|n| n.healthy)
            .map(|n| n.place.name.as_str());
    };
    // Healthy nodes in ranking order starting at the holder (included when
    // healthy), wrapping around.
    let candidates: Vec<usize> = (0..ranking.len())
        .map(|k| (start + k) % ranking.len())
        .filter(|&i| healthy(i))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let since = order.map_or(now_ms, |o| o.since_ms);
    let turns = now_ms.saturating_sub(since) / timeout_ms.max(1);
    let pick = candidates[(turns % candidates.len() as u64) as usize];
    ranking.get(pick).map(|n| n.place.name.as_str())
}

/// `nodes` ordered by their rendezvous weight for `domain` (highest first).
fn ranking<'a>(domain: &str, nodes: &'a [NodeRow]) -> Vec<&'a NodeRow> {
    let mut ranked: Vec<(blake3::Hash, &NodeRow)> = nodes
        .iter()
        .map(|n| {
            let mut h = blake3::Hasher::new();
            h.update(domain.as_bytes());
            h.update(&[0]);
            h.update(n.place.name.as_bytes());
            (h.finalize(), n)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.as_bytes()
            .cmp(a.0.as_bytes())
            .then_with(|| a.1.place.name.cmp(&b.1.place.name))
    });
    ranked.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodePlace;

    const TIMEOUT: u64 = 60_000;

    fn node(name: &str, healthy: bool) -> NodeRow {
        NodeRow {
            place: NodePlace {
                name: name.into(),
                ipv4: Some([192, 0, 2, 1].into()),
                ipv6: None,
                latitude: None,
                longitude: None,
            },
            healthy,
        }
    }

    fn three() -> Vec<NodeRow> {
        vec![
            node("london", true),
            node("tokyo", true),
            node("virginia", true),
        ]
    }

    fn order(node: &str, since_ms: u64) -> CertOrder {
        CertOrder {
            domain: "example.com".into(),
            node: node.into(),
            since_ms,
            attempts: 0,
            last_error: None,
        }
    }

    fn ranked(domain: &str, nodes: &[NodeRow]) -> Vec<String> {
        ranking(domain, nodes)
            .iter()
            .map(|n| n.place.name.clone())
            .collect()
    }

    #[test]
    fn every_node_picks_the_same_issuer_whatever_the_table_order() {
        let nodes = three();
        let mut reversed = nodes.clone();
        reversed.reverse();
        let a = issuer("example.com", &nodes, None, 0, TIMEOUT);
        let b = issuer("example.com", &reversed, None, 0, TIMEOUT);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(a, Some("london"));
    }

    /// Written down once, so a change of hash or ordering across versions
    /// (which would move issuers between nodes of a mixed cluster) fails.
    #[test]
    fn the_ranking_is_the_one_written_down() {
        let nodes = three();
        assert_eq!(
            ranked("example.com", &nodes),
            ["london", "tokyo", "virginia"]
        );
        assert_eq!(
            ranked("site0.example", &nodes),
            ["virginia", "london", "tokyo"]
        );
        assert_eq!(
            ranked("site4.example", &nodes),
            ["tokyo", "virginia", "london"]
        );
    }

    #[test]
    fn domains_spread_over_nodes() {
        let nodes = three();
        let issuers: std::collections::BTreeSet<&str> = (0..30)
            .filter_map(|i| {
                let domain = format!("site{i}.example");
                issuer(&domain, &nodes, None, 0, TIMEOUT)
                    .and_then(|n| nodes.iter().find(|x| x.place.name == n))
                    .map(|n| n.place.name.as_str())
            })
            .collect();
        assert_eq!(issuers.len(), 3, "30 domains all went to {issuers:?}");
    }

    #[test]
    fn an_order_in_flight_stays_with_its_node_until_the_timeout() {
        let nodes = three();
        let order_of = ranked("example.com", &nodes);
        // Even a node that is not first keeps an order it holds: no second
        // order is placed while it makes progress.
        let holder = &order_of[1];
        let o = order(holder, 1_000);
        for now in [1_000, 30_000, 1_000 + TIMEOUT - 1] {
            assert_eq!(
                issuer("example.com", &nodes, Some(&o), now, TIMEOUT),
                Some(holder.as_str())
            );
        }
        // Then the next node in the ranking, then the one after.
        assert_eq!(
            issuer("example.com", &nodes, Some(&o), 1_000 + TIMEOUT, TIMEOUT),
            Some(order_of[2].as_str())
        );
        assert_eq!(
            issuer(
                "example.com",
                &nodes,
                Some(&o),
                1_000 + 2 * TIMEOUT,
                TIMEOUT
            ),
            Some(order_of[0].as_str())
        );
    }

    #[test]
    fn a_retry_scheduled_in_the_future_keeps_the_order() {
        let nodes = three();
        let holder = &ranked("example.com", &nodes)[0];
        let o = order(holder, 10 * TIMEOUT);
        assert_eq!(
            issuer("example.com", &nodes, Some(&o), TIMEOUT, TIMEOUT),
            Some(holder.as_str())
        );
    }

    #[test]
    fn an_unhealthy_holder_is_replaced_at_once() {
        let mut nodes = three();
        let order_of = ranked("example.com", &nodes);
        let holder = order_of[0].clone();
        for n in &mut nodes {
            if n.place.name == holder {
                n.healthy = false;
            }
        }
        let o = order(&holder, 1_000);
        assert_eq!(
            issuer("example.com", &nodes, Some(&o), 1_001, TIMEOUT),
            Some(order_of[1].as_str())
        );
        // Without an order, the first healthy node.
        assert_eq!(
            issuer("example.com", &nodes, None, 1_001, TIMEOUT),
            Some(order_of[1].as_str())
        );
    }

    #[test]
    fn no_healthy_node_means_no_issuer() {
        let nodes = vec![node("london", false), node("tokyo", false)];
        assert_eq!(issuer("example.com", &nodes, None, 0, TIMEOUT), None);
        let o = order("london", 0);
        assert_eq!(issuer("example.com", &nodes, Some(&o), 0, TIMEOUT), None);
    }

    #[test]
    fn an_order_by_a_forgotten_node_goes_to_the_first_healthy_node() {
        let nodes = three();
        let o = order("gone", 0);
        assert_eq!(
            issuer("example.com", &nodes, Some(&o), 1, TIMEOUT),
            issuer("example.com", &nodes, None, 1, TIMEOUT)
        );
    }
}
