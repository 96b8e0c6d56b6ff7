//! Keeping the last N revisions per domain and collecting what no kept
//! revision references.

use std::collections::HashSet;

use tracing::info;

use super::{DeployError, Deployer, materialise};
use crate::cas::GcStats;

/// Forgets revisions of `domains` beyond the newest `keep` (never the active
/// one), then collects garbage if anything was forgotten.
pub(super) fn prune(deployer: &Deployer, domains: &[&str]) -> Result<(), DeployError> {
    let mut forgot = false;
    for domain in domains {
        let revisions = deployer.store.revisions(domain)?;
        let mut kept = 0;
        for rev in revisions {
            if rev.active || kept < deployer.keep.saturating_sub(1) {
                if !rev.active {
                    kept += 1;
                }
                continue;
            }
            deployer.store.forget_revision(domain, &rev.root)?;
            forgot = true;
        }
    }
    if forgot {
        let stats = collect(deployer)?;
        info!(
            objects = stats.objects_removed,
            bytes = stats.bytes_freed,
            "garbage collected"
        );
    }
    Ok(())
}

/// Removes revision directories and objects no kept revision references.
pub(super) fn collect(deployer: &Deployer) -> Result<GcStats, DeployError> {
    let mut live = HashSet::new();
    let mut roots = HashSet::new();
    for rev in deployer.store.all_revisions()? {
        // A revision known from a peer but not yet fetched has nothing
        // here to keep.
        let Ok(manifest) = deployer.read_manifest(&rev.manifest) else {
            continue;
        };
        for (_, entry) in manifest.iter() {
            live.insert(entry.hash);
        }
        if let Ok(hash) = blake3::Hash::from_hex(&rev.manifest) {
            live.insert(hash);
        }
        roots.insert(rev.root);
    }
    let dirs = std::fs::read_dir(&deployer.revs).map_err(|source| DeployError::Io {
        context: "cannot list",
        path: deployer.revs.clone(),
        source,
    })?;
    for dir in dirs.flatten() {
        let name = dir.file_name();
        let name = name.to_string_lossy();
        if !roots.contains(name.as_ref()) {
            materialise::remove(&dir.path())?;
        }
    }
    Ok(deployer.cas.gc(&live)?)
}
