//! `state.sqlite`: the node's durable state.
//!
//! Small, replicated rows live here (nodes, keys, domains, revisions, repos,
//! refs, previews, preview passwords); file content never does (that is the CAS). Every
//! replicated row carries a hybrid logical clock stamp and its origin node so
//! the mesh can merge rows from other nodes by last-writer-wins, with deletes
//! kept as tombstones. Hot paths never query SQLite per request: they read
//! snapshots built from it.

mod acme;
mod certs;
mod hlc;
mod keys;
mod members;
mod migrations;
mod nodes;
mod preview_passwords;
mod previews;
mod replica;
mod repos;
mod revisions;
mod switch;
mod table;
mod tickets;
mod view;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use acme::AcmeChallenge;
pub use certs::{CertOrder, CertRow, OrderProgress};
pub use hlc::{Clock, Hlc};
pub use keys::KeyRow;
pub use members::Member;
pub use nodes::NodeRow;
pub use preview_passwords::PreviewPasswordRow;
pub use previews::PreviewPointer;
pub use replica::{Row, RowError, Version, bucket_hashes, by_key};
pub use repos::RepoRow;
pub use revisions::RevisionRow;
pub use switch::{DomainPointer, RefUpdate, Switch};
pub use table::Table;
pub use tickets::TicketKeyRow;
pub use view::{Pointer, PointerKind, ReplicatedRef, RowId};

/// Errors from the state database, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state database {path} has schema version {found}, newer than this makiatto ({known}); upgrade makiatto"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("state database query failed while {context}: {source}")]
    Query {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot make state database {path} private to this user: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database holds an invalid {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
}

/// The open state database of one node.
pub struct Store {
    /// One connection: writes are rare and small, and serialising them keeps
    /// HLC stamps in commit order.
    conn: Mutex<Connection>,
    /// Stamps every replicated write.
    clock: Clock,
    /// This node's name, recorded as the origin of rows it writes.
    origin: String,
    /// Counts writes to the rows DNS answers from (nodes, health, ACME
    /// challenges), so the DNS snapshot is rebuilt only when they change.
    dns_version: tokio::sync::watch::Sender<u64>,
    /// Counts writes to certificates, so TLS listeners reload only then.
    certs_version: tokio::sync::watch::Sender<u64>,
    /// Counts writes of any kind (SQLite's update hook), so the mesh can
    /// push this node's new rows as soon as they are committed.
    writes: tokio::sync::watch::Sender<u64>,
}

impl Store {
    /// Opens (creating if needed) `path`, in WAL mode, and migrates it to the
    /// current schema.
    pub fn open(path: &Path, origin: &str) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        // Certificate keys and the ACME account key live here: readable
        // by this node's user only, before SQLite creates its WAL files
        // (which copy the database's mode).
        certs::restrict_to_owner(path).map_err(|source| StoreError::Permissions {
            path: path.to_path_buf(),
            source,
        })?;
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        migrations::migrate(&mut conn, path)?;
        let writes = tokio::sync::watch::Sender::new(0u64);
        let hook_writes = writes.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, _: &str, _: i64| {
                hook_writes.send_modify(|v| *v = v.wrapping_add(1));
            },
        ))
        .map_err(open_err)?;
        Ok(Store {
            conn: Mutex::new(conn),
            clock: Clock::new(),
            origin: origin.to_string(),
            dns_version: tokio::sync::watch::Sender::new(0),
            certs_version: tokio::sync::watch::Sender::new(0),
            writes,
        })
    }

    /// A receiver that changes whenever nodes, their health or ACME
    /// challenges change.
    pub fn subscribe_dns(&self) -> tokio::sync::watch::Receiver<u64> {
        self.dns_version.subscribe()
    }

    fn dns_changed(&self) {
        self.dns_version.send_modify(|v| *v += 1);
    }

    /// This node's name as recorded in `origin` columns.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn query_err(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { context, source }
}
