//! Versioned schema migrations, applied in order inside one transaction
//! each, recorded in SQLite's `user_version`.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// Each entry moves the schema from version `index` to `index + 1`.
/// Replicated tables carry `hlc` (see `hlc.rs`), `origin` (node name) and
/// `deleted` (tombstone) columns for last-writer-wins merging.
const MIGRATIONS: &[&str] = &[
    // 1: the foundation tables.
    "
    CREATE TABLE nodes (
        name      TEXT PRIMARY KEY,
        ipv4      TEXT,
        ipv6      TEXT,
        latitude  REAL,
        longitude REAL,
        healthy   INTEGER NOT NULL DEFAULT 1,
        hlc       INTEGER NOT NULL,
        origin    TEXT NOT NULL,
        deleted   INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE keys (
        fingerprint TEXT PRIMARY KEY,
        public_key  TEXT NOT NULL,
        comment     TEXT NOT NULL DEFAULT '',
        hlc         INTEGER NOT NULL,
        origin      TEXT NOT NULL,
        deleted     INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE domains (
        name            TEXT PRIMARY KEY,
        repo            TEXT NOT NULL,
        active_revision TEXT,
        hlc             INTEGER NOT NULL,
        origin          TEXT NOT NULL,
        deleted         INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE revisions (
        domain     TEXT NOT NULL,
        root       TEXT NOT NULL,
        manifest   TEXT NOT NULL,
        config     TEXT NOT NULL,
        source     TEXT NOT NULL,
        branch     TEXT,
        created_ms INTEGER NOT NULL,
        hlc        INTEGER NOT NULL,
        origin     TEXT NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (domain, root)
    );
    CREATE INDEX revisions_by_age ON revisions (domain, created_ms);
    ",
    // 2: `_acme-challenge` TXT values the DNS server publishes for DNS-01.
    "
    CREATE TABLE acme_challenges (
        name    TEXT NOT NULL,
        value   TEXT NOT NULL,
        hlc     INTEGER NOT NULL,
        origin  TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, value)
    );
    ",
    // 3: pushed repositories, their branch and tag heads, and previews.
    "
    CREATE TABLE repos (
        name       TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        hlc        INTEGER NOT NULL,
        origin     TEXT NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE refs (
        repo    TEXT NOT NULL,
        name    TEXT NOT NULL,
        target  TEXT NOT NULL,
        hlc     INTEGER NOT NULL,
        origin  TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (repo, name)
    );
    CREATE TABLE previews (
        host    TEXT PRIMARY KEY,
        domain  TEXT NOT NULL,
        repo    TEXT NOT NULL,
        branch  TEXT NOT NULL,
        root    TEXT NOT NULL,
        hlc     INTEGER NOT NULL,
        origin  TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX previews_by_branch ON previews (repo, branch);
    ",
    // 4: certificates with their keys, ACME accounts, and who is ordering
    // what (so exactly one node orders per domain, and another takes over).
    "
    CREATE TABLE acme_accounts (
        directory   TEXT PRIMARY KEY,
        credentials TEXT NOT NULL,
        hlc         INTEGER NOT NULL,
        origin      TEXT NOT NULL,
        deleted     INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE certificates (
        domain       TEXT PRIMARY KEY,
        names        TEXT NOT NULL,
        chain_pem    TEXT NOT NULL,
        key_pem      TEXT NOT NULL,
        not_before_ms INTEGER NOT NULL,
        not_after_ms INTEGER NOT NULL,
        directory    TEXT NOT NULL,
        issued_by    TEXT NOT NULL,
        hlc          INTEGER NOT NULL,
        origin       TEXT NOT NULL,
        deleted      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE cert_orders (
        domain        TEXT PRIMARY KEY,
        node          TEXT NOT NULL,
        since_ms      INTEGER NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        hlc           INTEGER NOT NULL,
        origin        TEXT NOT NULL,
        deleted       INTEGER NOT NULL DEFAULT 0
    );
    ",
    // 5: the mesh: each node's WireGuard key, mesh addresses, WireGuard
    // endpoint and RPC address; one-time join tokens (local, by hash);
    // indexes for pushing this node's own rows.
    "
    ALTER TABLE nodes ADD COLUMN wg_public_key TEXT;
    ALTER TABLE nodes ADD COLUMN mesh_ipv4 TEXT;
    ALTER TABLE nodes ADD COLUMN mesh_ipv6 TEXT;
    ALTER TABLE nodes ADD COLUMN endpoint TEXT;
    ALTER TABLE nodes ADD COLUMN rpc_addr TEXT;
    CREATE TABLE join_tokens (
        hash       TEXT PRIMARY KEY,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX revisions_by_origin ON revisions (origin, hlc);
    ",
    // 6: an order's progress travels with its row, so the node that takes
    // it over finishes the same order: its URL at the CA, the certificate
    // key once finalisation needs it, and the step it reached.
    "
    ALTER TABLE cert_orders ADD COLUMN order_url TEXT;
    ALTER TABLE cert_orders ADD COLUMN key_pem TEXT;
    ALTER TABLE cert_orders ADD COLUMN stage TEXT;
    ",
    // 7: what a revision's WebAssembly needs beyond its manifest travels
    // with its row, so a replica serves it as its origin does.
    "
    ALTER TABLE revisions ADD COLUMN extras TEXT NOT NULL DEFAULT '';
    ",
    // 8: the lines of a revision's `_redirects` and `_headers` that were
    // skipped travel with its row, so `deploys` shows them on every node.
    "
    ALTER TABLE revisions ADD COLUMN warnings TEXT NOT NULL DEFAULT '';
    ",
    // 9: per domain, the hash of the password that guards its previews and
    // permalinks, and the key of the cookies a correct password earns.
    "
    CREATE TABLE preview_passwords (
        domain     TEXT PRIMARY KEY,
        hash       TEXT NOT NULL,
        cookie_key TEXT NOT NULL,
        set_ms     INTEGER NOT NULL,
        hlc        INTEGER NOT NULL,
        origin     TEXT NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0
    );
    ",
    // 10: TLS session ticket keys, replicated so a ticket one node sealed
    // opens on every other.
    "
    CREATE TABLE tls_ticket_keys (
        id         TEXT PRIMARY KEY,
        secret     TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        hlc        INTEGER NOT NULL,
        origin     TEXT NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0
    );
    ",
];

/// Brings `conn` to the latest schema version.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(err)?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}
