//! One lock per repository for everything in this process that moves its
//! refs: a push (ref checks, deploy and ref update happen under it) and
//! replication following the `refs` rows.
//!
//! Without a shared lock, replication could move a ref between a push's
//! check of the old id and its update, failing a push whose deploy already
//! went live. The locks are process-wide, keyed by the repositories
//! directory and name, because the two users live in different subsystems
//! (`git/` and `mesh/`) that share nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// Every repository lock handed out. Grows only by repository names, which
/// are bounded by what authorised keys push; the locks guard no data.
static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The lock of repository `name` under `repos`.
pub fn repo_lock(repos: &Path, name: &str) -> Arc<Mutex<()>> {
    let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.entry(repos.join(name)).or_default().clone()
}
