//! Cluster membership: each node's WireGuard public key, mesh addresses,
//! WireGuard endpoint and RPC address, kept in the replicated node table
//! beside the addresses DNS answers with; and `node remove`'s tombstone.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, query_err};

/// How one node is reached over the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Member {
    pub name: String,
    /// Base64 WireGuard public key, when the node runs a WireGuard device.
    pub wg_public_key: Option<String>,
    pub mesh_ipv4: Option<String>,
    pub mesh_ipv6: Option<String>,
    /// `host:port` other nodes send WireGuard packets to.
    pub endpoint: Option<String>,
    /// `ip:port` of its mesh RPC.
    pub rpc_addr: Option<String>,
}

impl Store {
    /// Records how `member` is reached (a stamped, replicated write); creates
    /// the node row when it is new. Unchanged values are not rewritten.
    pub fn set_member(&self, member: &Member) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO nodes (name, wg_public_key, mesh_ipv4, mesh_ipv6, endpoint, rpc_addr,
                                    hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)
                 ON CONFLICT (name) DO UPDATE SET
                   wg_public_key = excluded.wg_public_key, mesh_ipv4 = excluded.mesh_ipv4,
                   mesh_ipv6 = excluded.mesh_ipv6, endpoint = excluded.endpoint,
                   rpc_addr = excluded.rpc_addr, hlc = excluded.hlc,
                   origin = excluded.origin, deleted = 0
                 WHERE nodes.wg_public_key IS NOT excluded.wg_public_key
                    OR nodes.mesh_ipv4 IS NOT excluded.mesh_ipv4
                    OR nodes.mesh_ipv6 IS NOT excluded.mesh_ipv6
                    OR nodes.endpoint IS NOT excluded.endpoint
                    OR nodes.rpc_addr IS NOT excluded.rpc_addr OR nodes.deleted = 1",
                params![
                    member.name,
                    member.wg_public_key,
                    member.mesh_ipv4,
                    member.mesh_ipv6,
                    member.endpoint,
                    member.rpc_addr,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("recording a cluster member"))?;
        self.dns_changed();
        Ok(())
    }

    /// Every live node's mesh identity, by name.
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, wg_public_key, mesh_ipv4, mesh_ipv6, endpoint, rpc_addr
                 FROM nodes WHERE deleted = 0 ORDER BY name",
            )
            .map_err(query_err("listing members"))?;
        stmt.query_map([], |row| {
            Ok(Member {
                name: row.get(0)?,
                wg_public_key: row.get(1)?,
                mesh_ipv4: row.get(2)?,
                mesh_ipv6: row.get(3)?,
                endpoint: row.get(4)?,
                rpc_addr: row.get(5)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(query_err("listing members"))
    }

    /// Tombstones node `name` (`node remove`); whether it was live.
    pub fn remove_node(&self, name: &str) -> Result<bool, StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE nodes SET deleted = 1, hlc = ?2, origin = ?3
                 WHERE name = ?1 AND deleted = 0",
                params![name, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("removing a node"))?;
        if changed > 0 {
            self.dns_changed();
        }
        Ok(changed > 0)
    }

    /// Records a one-time join token by its hash, valid until `expires_ms`.
    pub fn add_join_token(&self, hash: &str, expires_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO join_tokens (hash, expires_ms) VALUES (?1, ?2)",
                params![hash, expires_ms],
            )
            .map_err(query_err("recording a join token"))?;
        Ok(())
    }

    /// Uses up the join token with `hash`: true once, if it was unexpired at
    /// `now_ms`. Expired tokens are dropped on the way.
    pub fn take_join_token(&self, hash: &str, now_ms: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        conn.execute("DELETE FROM join_tokens WHERE expires_ms < ?1", [now_ms])
            .map_err(query_err("expiring join tokens"))?;
        let found: Option<i64> = conn
            .query_row(
                "DELETE FROM join_tokens WHERE hash = ?1 RETURNING expires_ms",
                [hash],
                |row| row.get(0),
            )
            .optional()
            .map_err(query_err("using a join token"))?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_recorded_removed_and_tokens_work_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store =
            Store::open(&dir.path().join("s.sqlite"), "a").unwrap_or_else(|e| panic!("{e}"));
        let member = Member {
            name: "b".into(),
            rpc_addr: Some("127.0.0.1:7070".into()),
            ..Member::default()
        };
        store.set_member(&member).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.members().unwrap_or_default(), vec![member]);
        assert!(store.remove_node("b").unwrap_or(false));
        assert!(store.members().unwrap_or_default().is_empty());
        store
            .add_join_token("h", i64::MAX)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.take_join_token("h", 0).unwrap_or(false));
        assert!(!store.take_join_token("h", 0).unwrap_or(true));
        store
            .add_join_token("old", 5)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!store.take_join_token("old", 10).unwrap_or(true));
    }
}
