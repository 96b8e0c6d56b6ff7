//! Replicated rows: the one place rows cross between nodes.
//!
//! Every replicated table is listed here with its key and data columns.
//! Rows leave a node as [`Row`] values (what the mesh sends) and enter one
//! only through [`Store::apply_rows`], which merges last-writer-wins: a row
//! replaces the stored one when its HLC is higher, or equal with a higher
//! origin name, so every node keeps the same winner whatever order rows
//! arrive in, and applying a row twice changes nothing. Deletes are rows with
//! `deleted = 1` (tombstones), dropped after [`TOMBSTONE_TTL_MS`].

use std::collections::BTreeMap;

use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use super::table::{TABLES, Table, TableSpec, spec};
use super::{Hlc, Store, StoreError, query_err};

/// Tombstones older than this are removed: a week, far longer than any
/// node is expected to be away. A node away longer must be re-joined, or it
/// could bring back rows the others deleted.
pub const TOMBSTONE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// How far ahead of this node's clock a row's stamp may be before it is
/// refused: a peer with a wildly wrong clock must not drag every clock along.
pub const MAX_CLOCK_AHEAD_MS: u64 = 10 * 60 * 1000;

/// How many buckets a table's digest has.
pub const DIGEST_BUCKETS: usize = 32;

/// One cell as it travels: SQLite's integer, real, text or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    fn from_value(value: Value) -> Cell {
        match value {
            Value::Null | Value::Blob(_) => Cell::Null,
            Value::Integer(i) => Cell::Int(i),
            Value::Real(r) => Cell::Real(r),
            Value::Text(t) => Cell::Text(t),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::Integer(*i),
            Cell::Real(r) => Value::Real(*r),
            Cell::Text(t) => Value::Text(t.clone()),
        }
    }
}

/// One replicated row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The table's name as the wire spells it (see [`Table`]); text, so
    /// a row of a table this node does not know is refused alone.
    pub(super) table: String,
    /// Key column values, in the table's key column order.
    pub(super) key: Vec<Cell>,
    /// Data column values, in the table's data column order.
    pub(super) data: Vec<Cell>,
    pub hlc: u64,
    pub origin: String,
    pub deleted: bool,
}

impl Row {
    /// The table this row belongs to, if this node knows it.
    pub fn table(&self) -> Option<Table> {
        Table::from_name(&self.table)
    }

    /// The value of column `column`, if the table has it.
    pub(super) fn get(&self, column: &str) -> Option<&Cell> {
        let spec = spec(&self.table)?;
        spec.data
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.data.get(i))
            .or_else(|| {
                spec.key
                    .iter()
                    .position(|c| *c == column)
                    .and_then(|i| self.key.get(i))
            })
    }

    /// The text of column `column` (None when null or absent).
    pub(super) fn text(&self, column: &str) -> Option<&str> {
        match self.get(column) {
            Some(Cell::Text(t)) => Some(t),
            _ => None,
        }
    }

    /// Whether this row would replace `other` (same key) under
    /// last-writer-wins: higher HLC, then higher origin name.
    pub fn beats(&self, hlc: u64, origin: &str) -> bool {
        (self.hlc, self.origin.as_str()) > (hlc, origin)
    }
}

/// The version of one row, as digests list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The key, as its canonical JSON text.
    pub key: String,
    pub hlc: u64,
    pub origin: String,
}

/// Why a row from a peer was refused.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("unknown replicated table {0:?}")]
    UnknownTable(String),
    #[error("row of {table} has {found} {what} values, expected {expected}")]
    Arity {
        table: String,
        what: &'static str,
        found: usize,
        expected: usize,
    },
    #[error(
        "row of {table} from {origin} is stamped {ahead_ms} ms in the future; check that node's clock"
    )]
    Future {
        table: String,
        origin: String,
        ahead_ms: u64,
    },
    #[error("row of {table} has an invalid origin {origin:?}")]
    Origin { table: String, origin: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which digest bucket the key `key_json` falls in.
pub fn bucket_of(key_json: &str) -> usize {
    blake3::hash(key_json.as_bytes()).as_bytes()[0] as usize % DIGEST_BUCKETS
}

/// Canonical JSON text of a key (what digests compare).
pub fn key_json(key: &[Cell]) -> String {
    // Serialising plain cells cannot fail.
    serde_json::to_string(key).unwrap_or_default()
}

fn select_sql(spec: &TableSpec) -> String {
    let cols: Vec<&str> = spec.key.iter().chain(spec.data).copied().collect();
    format!(
        "SELECT {}, hlc, origin, deleted FROM {}",
        cols.join(", "),
        spec.name
    )
}

fn read_row(spec: &TableSpec, row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let nk = spec.key.len();
    let nd = spec.data.len();
    let mut key = Vec::with_capacity(nk);
    for i in 0..nk {
        key.push(Cell::from_value(row.get(i)?));
    }
    let mut data = Vec::with_capacity(nd);
    for i in nk..nk + nd {
        data.push(Cell::from_value(row.get(i)?));
    }
    let hlc: i64 = row.get(nk + nd)?;
    Ok(Row {
        table: spec.name.to_string(),
        key,
        data,
        hlc: hlc as u64,
        origin: row.get(nk + nd + 1)?,
        deleted: row.get(nk + nd + 2)?,
    })
}

fn table_rows(conn: &rusqlite::Connection, spec: &TableSpec) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&select_sql(spec))?;
    stmt.query_map([], |r| read_row(spec, r))?.collect()
}

impl Store {
    /// Rows this node wrote (origin = this node) with a stamp above `after`,
    /// oldest first, at most `limit`.
    pub fn own_rows_since(&self, after: u64, limit: usize) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn();
        let mut out = Vec::new();
        for spec in &TABLES {
            let sql = format!(
                "{} WHERE origin = ?1 AND hlc > ?2 ORDER BY hlc LIMIT ?3",
                select_sql(spec)
            );
            let mut stmt = conn
                .prepare_cached(&sql)
                .map_err(query_err("reading rows to push"))?;
            let rows = stmt
                .query_map(
                    rusqlite::params![self.origin, after as i64, limit as i64],
                    |r| read_row(spec, r),
                )
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(query_err("reading rows to push"))?;
            out.extend(rows);
        }
        out.sort_by_key(|r| r.hlc);
        out.truncate(limit);
        Ok(out)
    }

    /// Every row of every replicated table, tombstones included (a joining
    /// node's snapshot).
    pub fn all_rows(&self) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn();
        let mut out = Vec::new();
        for spec in &TABLES {
            out.extend(table_rows(&conn, spec).map_err(query_err("reading a snapshot"))?);
        }
        Ok(out)
    }

    /// Every row of `table`, tombstones included.
    pub(super) fn rows_of(&self, table: Table) -> Result<Vec<Row>, StoreError> {
        table_rows(&self.conn(), table.spec()).map_err(query_err("reading a replicated table"))
    }

    /// The version of every row of `table`, grouped by digest bucket.
    pub fn versions(&self, table: Table) -> Result<Vec<Vec<Version>>, StoreError> {
        let mut buckets = vec![Vec::new(); DIGEST_BUCKETS];
        let spec = table.spec();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&select_sql(spec))
            .map_err(query_err("reading a digest"))?;
        let rows = stmt
            .query_map([], |r| read_row(spec, r))
            .map_err(query_err("reading a digest"))?;
        for row in rows {
            let row = row.map_err(query_err("reading a digest"))?;
            let key = key_json(&row.key);
            buckets[bucket_of(&key)].push(Version {
                key,
                hlc: row.hlc,
                origin: row.origin,
            });
        }
        for bucket in &mut buckets {
            bucket.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(buckets)
    }

    /// The rows of `table` with the given keys (canonical JSON text each);
    /// unknown keys are skipped.
    pub fn rows_by_key(&self, table: &str, keys: &[String]) -> Result<Vec<Row>, StoreError> {
        let Some(spec) = spec(table) else {
            return Ok(Vec::new());
        };
        let conn = self.conn();
        let where_key: Vec<String> = spec
            .key
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 1))
            .collect();
        let sql = format!("{} WHERE {}", select_sql(spec), where_key.join(" AND "));
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(query_err("reading rows by key"))?;
        let mut out = Vec::new();
        for key in keys {
            let Ok(cells) = serde_json::from_str::<Vec<Cell>>(key) else {
                continue;
            };
            if cells.len() != spec.key.len() {
                continue;
            }
            let values: Vec<Value> = cells.iter().map(Cell::to_value).collect();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), |r| read_row(spec, r))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(query_err("reading rows by key"))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// The version stored here of the row `row` would replace, if any.
    pub fn version_of(&self, row: &Row) -> Result<Option<(u64, String)>, StoreError> {
        let rows = self.rows_by_key(&row.table, &[key_json(&row.key)])?;
        Ok(rows.into_iter().next().map(|r| (r.hlc, r.origin)))
    }

    /// Checks `row` against its table's shape and this node's clock.
    fn check_row(&self, row: &Row) -> Result<&'static TableSpec, RowError> {
        let spec = spec(&row.table).ok_or_else(|| RowError::UnknownTable(row.table.clone()))?;
        for (what, found, expected) in [
            ("key", row.key.len(), spec.key.len()),
            ("data", row.data.len(), spec.data.len()),
        ] {
            if found != expected {
                return Err(RowError::Arity {
                    table: row.table.clone(),
                    what,
                    found,
                    expected,
                });
            }
        }
        if row.origin.is_empty() || row.origin.len() > 63 {
            return Err(RowError::Origin {
                table: row.table.clone(),
                origin: row.origin.clone(),
            });
        }
        let now = self.clock.now().millis();
        let at = Hlc(row.hlc).millis();
        if at > now + MAX_CLOCK_AHEAD_MS {
            return Err(RowError::Future {
                table: row.table.clone(),
                origin: row.origin.clone(),
                ahead_ms: at - now,
            });
        }
        Ok(spec)
    }

    /// Merges rows from a peer, last-writer-wins; returns those that changed
    /// this node's state. Rows that fail [`Store::check_row`] are skipped
    /// (the error of the first is returned after the others are applied).
    pub fn apply_rows(&self, rows: &[Row]) -> Result<Vec<Row>, RowError> {
        let mut applied = Vec::new();
        let mut first_error = None;
        let mut dns = false;
        {
            let mut conn = self.conn();
            let tx = conn
                .transaction()
                .map_err(query_err("applying replicated rows"))?;
            for row in rows {
                let spec = match self.check_row(row) {
                    Ok(spec) => spec,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        continue;
                    }
                };
                self.clock.observe(Hlc(row.hlc));
                let cols: Vec<&str> = spec.key.iter().chain(spec.data).copied().collect();
                let placeholders: Vec<String> =
                    (1..=cols.len() + 3).map(|i| format!("?{i}")).collect();
                let updates: Vec<String> = spec
                    .data
                    .iter()
                    .chain(&["hlc", "origin", "deleted"])
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                let sql = format!(
                    "INSERT INTO {t} ({cols}, hlc, origin, deleted) VALUES ({ph})
                     ON CONFLICT ({key}) DO UPDATE SET {updates}
                     WHERE excluded.hlc > {t}.hlc
                        OR (excluded.hlc = {t}.hlc AND excluded.origin > {t}.origin)",
                    t = spec.name,
                    cols = cols.join(", "),
                    ph = placeholders.join(", "),
                    key = spec.key.join(", "),
                    updates = updates.join(", "),
                );
                let mut values: Vec<Value> = row
                    .key
                    .iter()
                    .chain(&row.data)
                    .map(Cell::to_value)
                    .collect();
                values.push(Value::Integer(row.hlc as i64));
                values.push(Value::Text(row.origin.clone()));
                values.push(Value::Integer(row.deleted as i64));
                let changed = tx
                    .prepare_cached(&sql)
                    .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(values)))
                    .map_err(query_err("applying a replicated row"))?;
                if changed > 0 {
                    dns |= spec.dns;
                    applied.push(row.clone());
                }
            }
            tx.commit()
                .map_err(query_err("committing replicated rows"))?;
        }
        if dns {
            self.dns_changed();
        }
        if applied
            .iter()
            .any(|r| matches!(r.table(), Some(Table::Certificates | Table::TicketKeys)))
        {
            // TLS listeners reload their certificates and ticket keys only
            // on this.
            self.certs_changed();
        }
        match first_error {
            Some(e) if applied.is_empty() => Err(e),
            _ => Ok(applied),
        }
    }

    /// Removes tombstones older than [`TOMBSTONE_TTL_MS`]; returns how many.
    pub fn collect_tombstones(&self) -> Result<usize, StoreError> {
        let cutoff = self.clock.now().millis().saturating_sub(TOMBSTONE_TTL_MS) << 16;
        let conn = self.conn();
        let mut removed = 0;
        for spec in &TABLES {
            removed += conn
                .execute(
                    &format!("DELETE FROM {} WHERE deleted = 1 AND hlc < ?1", spec.name),
                    [cutoff as i64],
                )
                .map_err(query_err("collecting tombstones"))?;
        }
        Ok(removed)
    }

    /// A receiver that changes after every write to the database, local or
    /// replicated (the mesh pushes this node's new rows when it fires).
    pub fn subscribe_writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writes.subscribe()
    }
}

/// Each bucket's hash over its versions: equal digests, equal tables.
pub fn bucket_hashes(buckets: &[Vec<Version>]) -> Vec<String> {
    buckets
        .iter()
        .map(|bucket| {
            let mut hasher = blake3::Hasher::new();
            for v in bucket {
                hasher.update(v.key.as_bytes());
                hasher.update(&[0]);
                hasher.update(&v.hlc.to_le_bytes());
                hasher.update(v.origin.as_bytes());
                hasher.update(&[0]);
            }
            hasher.finalize().to_hex().to_string()
        })
        .collect()
}

/// Versions by key, for comparing a peer's bucket with ours.
pub fn by_key(versions: &[Version]) -> BTreeMap<&str, &Version> {
    versions.iter().map(|v| (v.key.as_str(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyRow;

    fn store(dir: &tempfile::TempDir, name: &str) -> Store {
        Store::open(&dir.path().join(format!("{name}.sqlite")), name)
            .unwrap_or_else(|e| panic!("open: {e}"))
    }

    fn key(fingerprint: &str, comment: &str) -> KeyRow {
        KeyRow {
            fingerprint: fingerprint.into(),
            public_key: "ssh-ed25519 AAAA".into(),
            comment: comment.into(),
        }
    }

    #[test]
    fn rows_merge_last_writer_wins_in_any_order_and_twice() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = store(&dir, "a");
        let b = store(&dir, "b");
        a.add_key(&key("SHA256:k", "from a"))
            .unwrap_or_else(|e| panic!("{e}"));
        b.add_key(&key("SHA256:k", "from b"))
            .unwrap_or_else(|e| panic!("{e}"));
        let from_a = a.own_rows_since(0, 100).unwrap_or_default();
        let from_b = b.own_rows_since(0, 100).unwrap_or_default();
        let c = store(&dir, "c");
        let d = store(&dir, "d");
        c.apply_rows(&from_a).unwrap_or_else(|e| panic!("{e}"));
        c.apply_rows(&from_b).unwrap_or_else(|e| panic!("{e}"));
        d.apply_rows(&from_b).unwrap_or_else(|e| panic!("{e}"));
        d.apply_rows(&from_a).unwrap_or_else(|e| panic!("{e}"));
        assert!(d.apply_rows(&from_a).unwrap_or_default().is_empty());
        let kc = c.keys().unwrap_or_default();
        let kd = d.keys().unwrap_or_default();
        assert_eq!(kc, kd);
        assert_eq!(kc[0].comment, "from b", "b wrote last");
        assert_eq!(
            bucket_hashes(&c.versions(Table::Keys).unwrap_or_default()),
            bucket_hashes(&d.versions(Table::Keys).unwrap_or_default())
        );
    }

    #[test]
    fn equal_stamps_are_decided_by_origin_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = store(&dir, "s");
        let row = |origin: &str, comment: &str| Row {
            table: "keys".into(),
            key: vec![Cell::Text("SHA256:k".into())],
            data: vec![
                Cell::Text("ssh-ed25519 AAAA".into()),
                Cell::Text(comment.into()),
            ],
            hlc: 1 << 16,
            origin: origin.into(),
            deleted: false,
        };
        s.apply_rows(&[row("zeta", "z")])
            .unwrap_or_else(|e| panic!("{e}"));
        s.apply_rows(&[row("alpha", "a")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.keys().unwrap_or_default()[0].comment, "z");
    }

    #[test]
    fn tombstones_replicate_and_malformed_rows_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = store(&dir, "a");
        let b = store(&dir, "b");
        a.add_key(&key("SHA256:k", "x"))
            .unwrap_or_else(|e| panic!("{e}"));
        b.apply_rows(&a.own_rows_since(0, 10).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.keys().unwrap_or_default().len(), 1);
        a.remove_key("SHA256:k").unwrap_or_else(|e| panic!("{e}"));
        b.apply_rows(&a.own_rows_since(0, 10).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(b.keys().unwrap_or_default().is_empty());

        let bad = Row {
            table: "keys; DROP TABLE keys".into(),
            key: vec![],
            data: vec![],
            hlc: 1,
            origin: "x".into(),
            deleted: false,
        };
        assert!(matches!(
            b.apply_rows(&[bad]),
            Err(RowError::UnknownTable(_))
        ));
        let future = Row {
            table: "keys".into(),
            key: vec![Cell::Text("SHA256:f".into())],
            data: vec![Cell::Text("k".into()), Cell::Text(String::new())],
            hlc: u64::MAX,
            origin: "x".into(),
            deleted: false,
        };
        assert!(matches!(
            b.apply_rows(&[future]),
            Err(RowError::Future { .. })
        ));
    }
}
