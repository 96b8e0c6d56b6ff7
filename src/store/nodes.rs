//! The cluster's nodes: addresses, coordinates and the health flag DNS
//! answers by. Until the mesh replicates this table, it is filled from
//! `node.toml` (this node and its `[[nodes]]`) and health is set by the
//! `node health` admin command.

use rusqlite::params;

use super::{Store, StoreError, query_err};
use crate::config::NodePlace;

/// One node as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Name, public addresses and coordinates, as the node stated them.
    pub place: NodePlace,
    /// Whether the node should receive visitors.
    pub healthy: bool,
}

impl Store {
    /// Records `node`'s addresses and coordinates. A node already known
    /// keeps its health flag: configuration does not say whether a node is
    /// up, and restarting must not revive a node an operator marked down.
    pub fn upsert_node(&self, node: &NodeRow) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "INSERT INTO nodes (name, ipv4, ipv6, latitude, longitude, healthy, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)
                 ON CONFLICT (name) DO UPDATE SET
                   ipv4 = excluded.ipv4, ipv6 = excluded.ipv6,
                   latitude = excluded.latitude, longitude = excluded.longitude,
                   hlc = excluded.hlc, origin = excluded.origin, deleted = 0
                 WHERE nodes.ipv4 IS NOT excluded.ipv4 OR nodes.ipv6 IS NOT excluded.ipv6
                    OR nodes.latitude IS NOT excluded.latitude
                    OR nodes.longitude IS NOT excluded.longitude OR nodes.deleted = 1",
                params![
                    node.place.name,
                    node.place.ipv4.map(|a| a.to_string()),
                    node.place.ipv6.map(|a| a.to_string()),
                    node.place.latitude,
                    node.place.longitude,
                    node.healthy,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("recording a node"))?;
        if changed > 0 {
            self.dns_changed();
        }
        Ok(())
    }

    /// Sets `name`'s health flag; returns false if no such node is known.
    /// Health is this node's own view of its peers: it is not stamped, so
    /// it never replicates and never outranks a peer's change to the row.
    pub fn set_node_health(&self, name: &str, healthy: bool) -> Result<bool, StoreError> {
        let conn = self.conn();
        let known = conn
            .execute(
                "UPDATE nodes SET healthy = healthy WHERE name = ?1 AND deleted = 0",
                params![name],
            )
            .map_err(query_err("setting a node's health"))?;
        let changed = conn
            .execute(
                "UPDATE nodes SET healthy = ?2 WHERE name = ?1 AND deleted = 0 AND healthy IS NOT ?2",
                params![name, healthy],
            )
            .map_err(query_err("setting a node's health"))?;
        drop(conn);
        if changed > 0 {
            self.dns_changed();
        }
        Ok(known > 0)
    }

    /// Every live node, by name.
    pub fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, ipv4, ipv6, latitude, longitude, healthy FROM nodes
                 WHERE deleted = 0 ORDER BY name",
            )
            .map_err(query_err("listing nodes"))?;
        let rows = stmt
            .query_map([], |row| {
                // Addresses are stored as text (the replicated column type);
                // one that does not parse is as good as none.
                let ipv4: Option<String> = row.get(1)?;
                let ipv6: Option<String> = row.get(2)?;
                Ok(NodeRow {
                    place: NodePlace {
                        name: row.get(0)?,
                        ipv4: ipv4.and_then(|a| a.parse().ok()),
                        ipv6: ipv6.and_then(|a| a.parse().ok()),
                        latitude: row.get(3)?,
                        longitude: row.get(4)?,
                    },
                    healthy: row.get(5)?,
                })
            })
            .map_err(query_err("listing nodes"))?;
        rows.collect::<Result<_, _>>()
            .map_err(query_err("listing nodes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let store = Store::open(&dir.path().join("state.sqlite"), "london")
            .unwrap_or_else(|e| panic!("open: {e}"));
        (dir, store)
    }

    fn london() -> NodeRow {
        NodeRow {
            place: NodePlace {
                name: "london".into(),
                ipv4: Some([192, 0, 2, 1].into()),
                ipv6: None,
                latitude: Some(51.51),
                longitude: Some(-0.13),
            },
            healthy: true,
        }
    }

    #[test]
    fn upsert_keeps_the_health_flag_and_announces_changes() {
        let (_dir, store) = store();
        let changes = store.subscribe_dns();
        store
            .upsert_node(&london())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(changes.has_changed().unwrap_or(false));
        assert_eq!(store.set_node_health("london", false).ok(), Some(true));
        let mut moved = london();
        moved.place.ipv4 = Some([192, 0, 2, 9].into());
        store.upsert_node(&moved).unwrap_or_else(|e| panic!("{e}"));
        let nodes = store.nodes().unwrap_or_default();
        assert_eq!(nodes.len(), 1);
        assert_eq!(
            nodes[0].place.ipv4.map(|a| a.to_string()).as_deref(),
            Some("192.0.2.9")
        );
        assert!(
            !nodes[0].healthy,
            "a config reload must not revive a node marked down"
        );
    }

    #[test]
    fn rewriting_the_same_node_is_not_a_change() {
        let (_dir, store) = store();
        store
            .upsert_node(&london())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut changes = store.subscribe_dns();
        changes.mark_unchanged();
        store
            .upsert_node(&london())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!changes.has_changed().unwrap_or(true));
    }

    #[test]
    fn health_of_an_unknown_node_is_refused() {
        let (_dir, store) = store();
        assert_eq!(store.set_node_health("nowhere", false).ok(), Some(false));
    }
}
