//! One lock per repository for everything on this node that moves its
//! refs: a push (ref checks, deploy and ref update happen under it) and
//! replication following the `refs` rows.
//!
//! Without a shared lock, replication could move a ref between a push's
//! check of the old id and its update, failing a push whose deploy already
//! went live. The two users live in different subsystems (`git/` and
//! `mesh/`), so the node hands both the same [`RepoLocks`] through its
//! services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Every repository lock of one node, by repository name. Grows only by
/// repository names, which are bounded by what authorised keys push; the
/// locks guard no data.
#[derive(Debug, Default)]
pub struct RepoLocks {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl RepoLocks {
    /// No lock handed out yet.
    pub fn new() -> RepoLocks {
        RepoLocks::default()
    }

    /// The lock of repository `name`.
    pub fn of(&self, name: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(name.to_string()).or_default().clone()
    }
}
