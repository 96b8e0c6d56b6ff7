//! The ACME account: created once per CA directory by whichever node
//! orders first, stored (with its key) as a replicated row so every node
//! orders under the same account.

use instant_acme::{Account, AccountBuilder, AccountCredentials, NewAccount};

use super::AcmeError;
use crate::config::AcmeSettings;
use crate::store::Store;

/// The account for `settings.directory`, restored from the store or
/// registered (and then stored).
pub async fn load_or_create(store: &Store, settings: &AcmeSettings) -> Result<Account, AcmeError> {
    let stored = store.acme_account(&settings.directory)?;
    if let Some(json) = stored {
        match serde_json::from_str::<AccountCredentials>(&json) {
            Ok(credentials) => {
                return builder(settings)?
                    .from_credentials(credentials)
                    .await
                    .map_err(|e| AcmeError::ca(&settings.directory, "restoring the account", e));
            }
            Err(e) => {
                // A new account is better than never ordering again.
                tracing::warn!(directory = %settings.directory, error = %e, "stored ACME account unreadable; registering a new one");
            }
        }
    }
    let contact = settings.contact.as_ref().map(|c| format!("mailto:{c}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder(settings)?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .map_err(|e| AcmeError::ca(&settings.directory, "registering an account", e))?;
    let json = serde_json::to_string(&credentials).map_err(AcmeError::Credentials)?;
    store.put_acme_account(&settings.directory, &json)?;
    tracing::info!(directory = %settings.directory, id = %account.id(), "ACME account registered");
    Ok(account)
}

/// An account builder trusting `ca_root` when given, else the system roots.
fn builder(settings: &AcmeSettings) -> Result<AccountBuilder, AcmeError> {
    match &settings.ca_root {
        Some(path) => Account::builder_with_root(path).map_err(|source| AcmeError::CaRoot {
            path: path.clone(),
            source,
        }),
        None => Account::builder().map_err(|source| AcmeError::CaRoot {
            path: "the system's root store".into(),
            source,
        }),
    }
}
