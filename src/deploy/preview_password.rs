//! Preview passwords: an operator sets or clears one per domain (admin
//! `preview-password`), the store keeps its argon2id hash in a replicated
//! row, and the deployer publishes every domain's into
//! `live::PreviewGuards`, which HTTP checks preview and permalink requests
//! against. Replicated rows are published through
//! [`Deployer::refresh_preview_passwords`], as the mesh does for pointers.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::{DeployError, Deployer};
use crate::live::{PreviewGuard, hash_password, new_cookie_key};
use crate::store::PreviewPasswordRow;

/// Whether a domain's previews have a password, as `deploys` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewProtection {
    /// When the password was set (Unix milliseconds); `None`: open.
    pub set_ms: Option<u64>,
}

impl Deployer {
    /// Guards `domain`'s previews and permalinks with `password` (replacing
    /// any password, so visitors let in by the old one must log in again).
    pub fn set_preview_password(&self, domain: &str, password: &str) -> Result<(), DeployError> {
        if self.store.revisions(domain)?.is_empty() {
            return Err(DeployError::UnknownDomain(domain.to_string()));
        }
        let hash = hash_password(password)?;
        let set_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.store.set_preview_password(&PreviewPasswordRow {
            domain: domain.to_string(),
            hash,
            cookie_key: new_cookie_key(),
            set_ms,
        })?;
        info!(domain, "preview password set");
        self.refresh_preview_passwords()
    }

    /// Opens `domain`'s previews again; whether a password was set.
    pub fn clear_preview_password(&self, domain: &str) -> Result<bool, DeployError> {
        let cleared = self.store.clear_preview_password(domain)?;
        if cleared {
            info!(domain, "preview password cleared");
        }
        self.refresh_preview_passwords()?;
        Ok(cleared)
    }

    /// Whether `domain`'s previews have a password, and since when.
    pub fn preview_protection(&self, domain: &str) -> Result<PreviewProtection, DeployError> {
        Ok(PreviewProtection {
            set_ms: self.store.preview_password(domain)?.map(|row| row.set_ms),
        })
    }

    /// Publishes the stored passwords (after a local change or
    /// replicated rows). A row that does not parse guards nothing and is
    /// logged: setting the password again repairs it.
    pub fn refresh_preview_passwords(&self) -> Result<(), DeployError> {
        let rows = self.store.preview_passwords()?;
        let guards = rows
            .iter()
            .filter_map(|row| {
                PreviewGuard::new(&row.domain, &row.hash, &row.cookie_key, row.set_ms)
                    .map_err(
                        |e| warn!(domain = %row.domain, error = %e, "preview password not applied"),
                    )
                    .ok()
            })
            .collect();
        self.guards.publish(guards);
        Ok(())
    }
}
